"""trainstack's platform as a library: build an environment from a typed config or any YAML file.

    from trainstack.platform import PlatformStage, TrainingPlatform, load_environment

    config = load_environment("environments/ml-dev.yaml")   # any path; `name:` must equal the file's stem
    PlatformStage(app, config)                              # the environment as a Stage of its own
    TrainingPlatform(my_stage, "Training", config)          # or as one construct in the app's own layout

The delivery pipeline deploys an app's environments in `pipeline.yaml`'s order, each as its stage:

    DeliveryPipelineStack(app, load_pipeline(Path("pipeline.yaml")), environments)

A piece alone, without trainstack's YAML: each construct takes a small frozen props object holding exactly what
it reads (`SecureBucketProps`, `ExecutionRoleProps`, `TrainingLogGroupProps`, `LoggedStateMachineProps`).

Everything named here is the public API, versioned semver (CHANGELOG.md) and snapshotted by
tests/test_public_api.py; the modules under it (stacks, `constructs/`) may change between minor versions.
"""

from __future__ import annotations

from trainstack.config import ConfigError, EnvironmentConfig, ResourceNames, load_environment, parse_environment
from trainstack.delivery_config import PipelineConfig, load_pipeline, parse_pipeline
from trainstack.platform.constructs.logged_state_machine import LoggedStateMachineProps, logged_state_machine
from trainstack.platform.constructs.sagemaker_execution_role import ExecutionRoleProps, SageMakerExecutionRole
from trainstack.platform.constructs.secure_bucket import SecureBucketProps, secure_bucket
from trainstack.platform.constructs.training_log_group import TrainingLogGroup, TrainingLogGroupProps
from trainstack.platform.delivery_pipeline import DeliveryPipelineStack
from trainstack.platform.platform_stage import PlatformStage
from trainstack.platform.training_platform import PlatformStacks, TrainingPlatform, add_platform

__all__ = [
    "ConfigError",
    "DeliveryPipelineStack",
    "EnvironmentConfig",
    "ExecutionRoleProps",
    "LoggedStateMachineProps",
    "PipelineConfig",
    "PlatformStacks",
    "PlatformStage",
    "ResourceNames",
    "SageMakerExecutionRole",
    "SecureBucketProps",
    "TrainingLogGroup",
    "TrainingLogGroupProps",
    "TrainingPlatform",
    "add_platform",
    "load_environment",
    "load_pipeline",
    "logged_state_machine",
    "parse_environment",
    "parse_pipeline",
    "secure_bucket",
]
