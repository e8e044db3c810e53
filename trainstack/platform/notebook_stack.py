"""Notebook: a locked-down SageMaker notebook instance for preparing data and starting runs."""

from __future__ import annotations

import base64
from importlib.resources.abc import Traversable

from aws_cdk import CfnOutput, Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from trainstack.config import EnvironmentConfig, ResourceNames
from trainstack.package_data import data_file
from trainstack.platform.constructs import trusted_services
from trainstack.platform.constructs.interactive_user import grant_interactive_user
from trainstack.platform.constructs.scoped_policy import ScopedPolicy
from trainstack.platform.network_stack import NetworkStack
from trainstack.platform.storage_stack import StorageStack
from trainstack.platform.training_stack import TrainingStack

LIFECYCLE_DIR = data_file("trainstack.platform", "notebook_lifecycle")


def render_on_start(resources_json: str, idle_minutes: int, lifecycle_dir: Traversable = LIFECYCLE_DIR) -> str:
    """The OnStart script: resource-name file plus the idle auto-stop systemd timer."""
    autostop = base64.b64encode((lifecycle_dir / "autostop.py").read_bytes()).decode()
    return (
        (lifecycle_dir / "on_start.sh")
        .read_text(encoding="utf-8")
        .replace("__AUTOSTOP_B64__", autostop)
        .replace("__IDLE_MINUTES__", str(idle_minutes))
        .replace("__RESOURCES_JSON__", resources_json)
    )


class NotebookStack(Stack):
    """Exposes `.notebook` and `.role`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        storage: StorageStack,
        network: NetworkStack,
        training: TrainingStack,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        names = ResourceNames.of(config)
        notebook_config = config.notebook

        self.role = iam.Role(
            self,
            "Role",
            role_name=names.notebook_role,
            assumed_by=trusted_services.notebook_instance(),
            description="trainstack: the notebook instance, for data preparation and starting runs",
        )
        self._grant(config, storage, training)

        resources = {
            "environment": config.name,
            "region": config.region,
            "data_bucket": storage.data_bucket.bucket_name,
            "artifacts_bucket": storage.artifacts_bucket.bucket_name,
            "kms_key_arn": storage.key.key_arn,
            "execution_role_arn": training.execution_role.role_arn,
            "image_uri": training.image_uri,
            "code_package_uri": training.code_package.s3_uri,
            "state_machine_arn": training.state_machine_arn,
            "subnet_ids": [subnet.subnet_id for subnet in network.subnets.subnets],
            "security_group_ids": [network.security_group.security_group_id],
            # Tags every job created from the notebook must carry (the role's CreateTrainingJob condition).
            "tags": config.platform_tags,
            # The notebook role may create only jobs named `<job_name_prefix>-...`.
            "job_name_prefix": config.training.job_name_prefix,
        }
        lifecycle = sagemaker.CfnNotebookInstanceLifecycleConfig(
            self,
            "Lifecycle",
            notebook_instance_lifecycle_config_name=f"{config.prefix}-lifecycle",
            on_start=[
                sagemaker.CfnNotebookInstanceLifecycleConfig.NotebookInstanceLifecycleHookProperty(
                    content=Fn.base64(
                        render_on_start(self.to_json_string(resources, space=2), notebook_config.idle_stop_minutes)
                    )
                )
            ],
        )
        self.notebook = sagemaker.CfnNotebookInstance(
            self,
            "Notebook",
            notebook_instance_name=names.notebook,
            instance_type=notebook_config.instance_type,
            role_arn=self.role.role_arn,
            kms_key_id=storage.key.key_id,
            volume_size_in_gb=notebook_config.volume_size_gb,
            direct_internet_access="Disabled",
            root_access="Disabled",
            subnet_id=network.subnets.subnets[0].subnet_id,
            security_group_ids=[network.security_group.security_group_id],
            lifecycle_config_name=lifecycle.attr_notebook_instance_lifecycle_config_name,
            platform_identifier=notebook_config.platform_identifier,
            instance_metadata_service_configuration=sagemaker.CfnNotebookInstance.InstanceMetadataServiceConfigurationProperty(
                minimum_instance_metadata_service_version="2"
            ),
        )
        # The lifecycle script calls AWS as this role at first start: its policy must be attached by then.
        self.notebook.node.add_dependency(self.policy)

        CfnOutput(
            self,
            "NotebookUrl",
            value=f"https://{config.region}.console.aws.amazon.com/sagemaker/home?region={config.region}"
            f"#/notebook-instances/openNotebook/{names.notebook}?view=lab",
        )

    def _grant(self, config: EnvironmentConfig, storage: StorageStack, training: TrainingStack) -> None:
        names = ResourceNames.of(config)
        self.policy = policy = ScopedPolicy(self, "Policy", roles=[self.role])
        grant_interactive_user(policy, config, key=storage.key, training=training)
        policy.allow(
            "StopWhenIdle",
            ["sagemaker:StopNotebookInstance", "sagemaker:DescribeNotebookInstance"],
            [names.arn("sagemaker", f"notebook-instance/{names.notebook}")],
        )
