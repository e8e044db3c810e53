"""One environment as one construct, for a CDK app that lays out its own stacks and stages.

`PlatformStage` is the same environment as a Stage of its own; both build it with `add_platform`, so the stacks,
their names and the rails on them (tags, permissions boundary, cdk-nag gate) are the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Environment, Tags, Validations
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from trainstack.config import EnvironmentConfig, NetworkMode, ResourceNames
from trainstack.platform.image_stack import ImageStack
from trainstack.platform.network_stack import NetworkStack
from trainstack.platform.notebook_stack import NotebookStack
from trainstack.platform.storage_stack import StorageStack
from trainstack.platform.studio_stack import StudioStack
from trainstack.platform.training_stack import TrainingStack


@dataclass(frozen=True)
class PlatformStacks:
    """An environment's stacks; `network`, `notebook` and `studio` are None when the environment has none."""

    storage: StorageStack
    network: NetworkStack | None
    image: ImageStack
    training: TrainingStack
    notebook: NotebookStack | None
    studio: StudioStack | None


def add_platform(scope: Construct, config: EnvironmentConfig, env: Environment | None = None) -> PlatformStacks:
    """Add an environment's stacks under `scope` (a Stage, or any construct inside one) with its rails: the
    platform's tags, a permissions boundary on every role, and a cdk-nag gate that fails synth on any
    unacknowledged finding. `env` is each stack's account and region; None inherits the enclosing Stage's."""
    names = ResourceNames.of(config)
    storage = StorageStack(scope, "Storage", stack_name=names.stack("storage"), env=env, config=config)
    network = None
    if config.network.mode is not NetworkMode.NONE:
        network = NetworkStack(
            scope, "Network", stack_name=names.stack("network"), env=env, config=config, key=storage.key
        )
    image = ImageStack(scope, "Image", stack_name=names.stack("image"), env=env, config=config, key=storage.key)
    training = TrainingStack(
        scope,
        "Training",
        stack_name=names.stack("training"),
        env=env,
        config=config,
        storage=storage,
        image=image,
        network=network,
    )
    notebook = None
    if config.notebook.enabled:
        assert network is not None  # the config model requires a network for the notebook
        notebook = NotebookStack(
            scope,
            "Notebook",
            stack_name=names.stack("notebook"),
            env=env,
            config=config,
            storage=storage,
            network=network,
            training=training,
        )
        # The notebook's resource file names the state machine, which the training stack creates.
        notebook.add_stack_dependency(training)
    studio = None
    if config.studio is not None:
        assert network is not None  # the config model requires a network for Studio
        studio = StudioStack(
            scope,
            "Studio",
            stack_name=names.stack("studio"),
            env=env,
            config=config,
            storage=storage,
            network=network,
            training=training,
        )
        # The roles' policies name the state machine and buckets by literal ARN.
        studio.add_stack_dependency(training)

    for key, value in config.all_tags.items():
        Tags.of(scope).add(key, value)
    # Every role gets a ceiling: the organisation's boundary when configured, else the platform's own.
    # The embedded environment runs on no account (moto does not evaluate boundaries).
    if config.permissions_boundary_arn:
        iam.PermissionsBoundary.of(scope).apply(
            iam.ManagedPolicy.from_managed_policy_arn(scope, "PermissionsBoundary", config.permissions_boundary_arn)
        )
    elif storage.boundary is not None:
        iam.PermissionsBoundary.of(scope).apply(storage.boundary)
    # Any unacknowledged AwsSolutions finding fails synth for these stacks.
    Validations.of(scope).add_plugins(AwsSolutionsChecks(scope))
    return PlatformStacks(
        storage=storage, network=network, image=image, training=training, notebook=notebook, studio=studio
    )


class TrainingPlatform(Construct):
    """The whole environment under one construct: place it in an app's own Stage (or the App) beside the app's
    stacks. Its stacks deploy to the environment's account and region; `.stacks` holds them (`.stacks.training`
    has the state machine, `.stacks.storage` the buckets and key)."""

    def __init__(self, scope: Construct, construct_id: str, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.stacks = add_platform(self, config, Environment(account=config.account, region=config.region))
