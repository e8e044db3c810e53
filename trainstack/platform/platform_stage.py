"""One environment of the platform as a CDK Stage: its stacks, tags, permissions boundary and cdk-nag gate."""

from __future__ import annotations

from aws_cdk import Environment, Stage
from constructs import Construct

from trainstack.config import EnvironmentConfig
from trainstack.platform.image_stack import ImageStack
from trainstack.platform.network_stack import NetworkStack
from trainstack.platform.notebook_stack import NotebookStack
from trainstack.platform.storage_stack import StorageStack
from trainstack.platform.studio_stack import StudioStack
from trainstack.platform.training_platform import add_platform
from trainstack.platform.training_stack import TrainingStack


class PlatformStage(Stage):
    """A Stage named after the environment (`cdk deploy '<name>/*'`), in its account and region. Exposes each
    stack as an attribute; `.network`, `.notebook` and `.studio` are None when not configured."""

    def __init__(self, scope: Construct, config: EnvironmentConfig) -> None:
        super().__init__(scope, config.name, env=Environment(account=config.account, region=config.region))
        self.config = config
        self.stacks = add_platform(self, config)
        self.storage: StorageStack = self.stacks.storage
        self.network: NetworkStack | None = self.stacks.network
        self.image: ImageStack = self.stacks.image
        self.training: TrainingStack = self.stacks.training
        self.notebook: NotebookStack | None = self.stacks.notebook
        self.studio: StudioStack | None = self.stacks.studio
