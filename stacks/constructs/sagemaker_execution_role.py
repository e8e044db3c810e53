"""The role SageMaker training jobs run as, scoped to this environment's buckets, key, image and logs.

No AWS managed policy: AmazonSageMakerFullAccess grants every bucket with "sagemaker" in its name and
much more. Every statement names the platform's own resources; where IAM cannot be narrower, the
reason stands next to the statement.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.constructs.code_package import CodePackage
from stacks.constructs.scoped_policy import ScopedPolicy
from stacks.storage_stack import ARTIFACT_PREFIXES
from trainstack.config import ResourceNames

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


@dataclass(frozen=True)
class ExecutionRoleProps:
    names: ResourceNames
    key: kms.IKey
    code_package: CodePackage
    pull_repository_arns: list[str]
    # True when jobs run in the platform's VPC (SageMaker then creates network interfaces as this role).
    in_vpc: bool = False


def training_log_group_arn(names: ResourceNames) -> str:
    return names.arn("logs", f"log-group:{TRAINING_LOG_GROUP}:*")


class SageMakerExecutionRole(Construct):
    """Exposes `.role` and `.policy`."""

    def __init__(self, scope: Construct, construct_id: str, *, props: ExecutionRoleProps) -> None:
        super().__init__(scope, construct_id)
        names = props.names
        self.role = iam.Role(
            self,
            "Role",
            role_name=names.execution_role,
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="trainstack: SageMaker training jobs of this environment",
        )
        self.policy = policy = ScopedPolicy(self, "Policy", roles=[self.role])
        data, artifacts = names.data_bucket, names.artifacts_bucket

        policy.allow(
            "ReadTrainingData",
            # Current objects only: a channel is an S3 prefix, SageMaker reads no object versions.
            ["s3:GetObject"],
            [names.bucket_arn(data, "*")],
            wildcard_reason="jobs read any dataset or base model in the platform's data bucket; channels vary per run",
        )
        policy.allow(
            "ListBuckets",
            ["s3:ListBucket", "s3:GetBucketLocation"],
            [names.bucket_arn(data), names.bucket_arn(artifacts)],
        )
        policy.allow(
            "WriteModelsAndCheckpoints",
            ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            [
                names.bucket_arn(artifacts, f"{ARTIFACT_PREFIXES['output']}*"),
                names.bucket_arn(artifacts, f"{ARTIFACT_PREFIXES['checkpoints']}*"),
            ],
            wildcard_reason="each job writes under output/<job>/ and checkpoints/<job>/, named at run time",
        )
        policy.allow(
            "ReadCodePackages",
            ["s3:GetObject"],
            [names.bucket_arn(artifacts, f"{ARTIFACT_PREFIXES['code']}*")],
            wildcard_reason="code packages uploaded by notebooks and the SDK land under code/, one per package",
        )
        policy.allow(
            "ReadPlatformCodePackage",
            ["s3:GetObject"],
            [
                f"arn:{names.partition}:s3:::{props.code_package.bucket_name}/{props.code_package.object_key}",
            ],
        )
        policy.allow(
            "UsePlatformKey",
            ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"],
            [props.key.key_arn],
        )
        policy.allow(
            "PullTrainingImage",
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            props.pull_repository_arns,
        )
        policy.allow(
            "EcrLoginAndMetrics",
            ["ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"],
            ["*"],
            wildcard_reason="GetAuthorizationToken and PutMetricData have no resource-level permissions",
        )
        policy.allow(
            "WriteTrainingLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [training_log_group_arn(names)],
            wildcard_reason="SageMaker writes one log stream per job and host inside this one log group",
        )
        if props.in_vpc:
            policy.allow(
                "RunInVpc",
                [
                    "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                ],
                ["*"],
                wildcard_reason="SageMaker creates the job's network interfaces, whose ids do not exist beforehand",
            )
