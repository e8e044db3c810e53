"""One environment of the platform: its stacks, tags, permissions boundary and cdk-nag gate."""

from __future__ import annotations

from aws_cdk import Environment, Stage, Tags, Validations
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


class PlatformStage(Stage):
    """Exposes each stack as an attribute; `.network`, `.notebook` and `.studio` are None when not configured."""

    def __init__(self, scope: Construct, config: EnvironmentConfig) -> None:
        super().__init__(scope, config.name, env=Environment(account=config.account, region=config.region))
        names = ResourceNames.of(config)
        self.config = config

        self.storage = StorageStack(self, "Storage", stack_name=names.stack("storage"), config=config)
        self.network: NetworkStack | None = None
        if config.network.mode is not NetworkMode.NONE:
            self.network = NetworkStack(
                self, "Network", stack_name=names.stack("network"), config=config, key=self.storage.key
            )
        self.image = ImageStack(self, "Image", stack_name=names.stack("image"), config=config, key=self.storage.key)
        self.training = TrainingStack(
            self,
            "Training",
            stack_name=names.stack("training"),
            config=config,
            storage=self.storage,
            image=self.image,
            network=self.network,
        )
        self.notebook: NotebookStack | None = None
        if config.notebook.enabled:
            assert self.network is not None  # the config model requires a network for the notebook
            self.notebook = NotebookStack(
                self,
                "Notebook",
                stack_name=names.stack("notebook"),
                config=config,
                storage=self.storage,
                network=self.network,
                training=self.training,
            )
            # The notebook's resource file names the state machine, which the training stack creates.
            self.notebook.add_stack_dependency(self.training)
        self.studio: StudioStack | None = None
        if config.studio is not None:
            assert self.network is not None  # the config model requires a network for Studio
            self.studio = StudioStack(
                self,
                "Studio",
                stack_name=names.stack("studio"),
                config=config,
                storage=self.storage,
                network=self.network,
                training=self.training,
            )
            # The roles' policies name the state machine and buckets by literal ARN.
            self.studio.add_stack_dependency(self.training)

        for key, value in config.all_tags.items():
            Tags.of(self).add(key, value)
        # Every role gets a ceiling: the organisation's boundary when configured, else the platform's own.
        # The embedded environment runs on no account (moto does not evaluate boundaries).
        if config.permissions_boundary_arn:
            iam.PermissionsBoundary.of(self).apply(
                iam.ManagedPolicy.from_managed_policy_arn(self, "PermissionsBoundary", config.permissions_boundary_arn)
            )
        elif self.storage.boundary is not None:
            iam.PermissionsBoundary.of(self).apply(self.storage.boundary)
        # Any unacknowledged AwsSolutions finding fails synth for this stage.
        Validations.of(self).add_plugins(AwsSolutionsChecks(self))
