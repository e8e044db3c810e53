"""Training: the SageMaker execution role, the code package, and the pipeline that starts jobs."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from trainstack.config import EnvironmentConfig, ResourceNames
from trainstack.package_data import training_code_dir
from trainstack.platform.constructs.code_package import CodePackage
from trainstack.platform.constructs.cost_budget import CostBudget
from trainstack.platform.constructs.create_training_job_state import TrainingJobTarget, job_name_pattern
from trainstack.platform.constructs.platform_dashboard import PlatformDashboard
from trainstack.platform.constructs.sagemaker_execution_role import ExecutionRoleProps, SageMakerExecutionRole
from trainstack.platform.constructs.training_log_group import (
    TrainingLogGroup,
    TrainingLogGroupProps,
    acknowledge_provider,
)
from trainstack.platform.constructs.training_pipeline import TrainingPipeline, example_input
from trainstack.platform.image_stack import ImageStack
from trainstack.platform.network_stack import NetworkStack
from trainstack.platform.storage_stack import StorageStack


class TrainingStack(Stack):
    """Exposes `.execution_role`, `.code_package`, `.pipeline`, `.state_machine`, `.dashboard` and `.budget`
    (None without a `budget:` block)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        storage: StorageStack,
        image: ImageStack,
        network: NetworkStack | None,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        names = ResourceNames.of(config)

        self.code_package = CodePackage(self, "CodePackage", source_dir=training_code_dir())
        self.execution_role = SageMakerExecutionRole(
            self,
            "ExecutionRole",
            props=ExecutionRoleProps(
                names=names,
                key=storage.key,
                code_package=self.code_package,
                pull_repository_arns=tuple(image.pull_repository_arns),
                job_pattern=job_name_pattern(config),
                vpc_id=network.vpc.vpc_id if network else None,
                subnet_ids=tuple(network.subnets.subnet_ids) if network else (),
                security_group_ids=(network.security_group.security_group_id,) if network else (),
                mlflow_tracking_server_arn=config.training.mlflow_tracking_server_arn,
            ),
        ).role
        # Policies name the buckets by literal ARN; make the ordering explicit.
        self.add_stack_dependency(storage)
        self.image_uri = image.image_uri
        self.state_machine_arn = names.arn("states", f"stateMachine:{names.state_machine}")
        self.execution_arn_pattern = names.arn("states", f"execution:{names.state_machine}:*")

        # What every job of the environment runs with; the notebook role's guard rails read it too.
        self.job_target = TrainingJobTarget(
            role_arn=self.execution_role.role_arn,
            image_uri=self.image_uri,
            code_uri=self.code_package.s3_uri,
            kms_key_arn=storage.key.key_arn,
            subnet_ids=network.subnets.subnet_ids if network else None,
            security_group_ids=[network.security_group.security_group_id] if network else None,
        )
        # Where every job logs: made here so that `cdk deploy` alone yields the whole platform.
        self.log_group = TrainingLogGroup(
            self,
            "TrainingLogGroup",
            props=TrainingLogGroupProps(
                names=names, key=storage.key, retention_days=config.training.log_retention_days
            ),
        )
        acknowledge_provider(self)
        self.pipeline = TrainingPipeline(self, "Pipeline", config=config, key=storage.key, target=self.job_target)
        self.state_machine = self.pipeline.state_machine
        self.dashboard = PlatformDashboard(
            self, "Dashboard", config=config, state_machine=self.state_machine, log_group=self.pipeline.log_group
        ).dashboard
        self.budget = CostBudget(self, "CostBudget", config=config).budget if config.budget else None

        CfnOutput(self, "ExecutionRoleArn", value=self.execution_role.role_arn)
        CfnOutput(self, "CodePackageUri", value=self.code_package.s3_uri)
        CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
        CfnOutput(
            self,
            "ConsoleUrl",
            description="Open, press Start execution, paste ExampleInput (or {}) and start.",
            value=f"https://{config.region}.console.aws.amazon.com/states/home?region={config.region}"
            f"#/statemachines/view/{self.state_machine_arn}",
        )
        CfnOutput(self, "ExampleInput", value=example_input(config))
        CfnOutput(self, "NotificationTopicArn", value=self.pipeline.topic.topic_arn)
