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

from trainstack.config import ResourceNames
from trainstack.platform.constructs import trusted_services
from trainstack.platform.constructs.code_package import CodePackage
from trainstack.platform.constructs.scoped_policy import ScopedPolicy
from trainstack.platform.storage_stack import ARTIFACT_PREFIXES

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# Where SageMaker publishes a job's MetricDefinitions metrics, as the execution role.
TRAINING_METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
# Services that call KMS with this role's credentials: S3 (SSE-KMS objects read and written by the job and
# by SageMaker's channel download and model upload) and SageMaker itself (volumes, output).
KMS_VIA_SERVICES = ("s3", "sagemaker")
# What a run logs to a SageMaker managed MLflow tracking server (Service Authorization Reference, prefix
# sagemaker-mlflow): transformers' MLflowCallback sets the experiment (GetExperimentByName, then
# CreateExperiment and GetExperiment when it is new), creates the run (CreateRun; GetRun when MLFLOW_RUN_ID
# resumes one), logs parameters, metrics and tags in batches (LogBatch) and ends the run (UpdateRun); the
# single-value calls are what a run's own code uses through mlflow.log_metric/log_param/set_tag. No AccessUI,
# no Search*, no Delete*, no model registry, no LogModel: a job writes its own run, it does not read or
# change others'. No sagemaker:DescribeMlflowTrackingServer: the sagemaker-mlflow plugin derives the
# endpoint (https://<region>.experiments.sagemaker.aws) from the ARN and signs each request for
# sagemaker-mlflow. Artifacts are not logged (HF_MLFLOW_LOG_ARTIFACTS stays unset): they would need the
# server's own S3 bucket, which the role cannot reach.
MLFLOW_LOGGING_ACTIONS = (
    "sagemaker-mlflow:GetExperimentByName",
    "sagemaker-mlflow:GetExperiment",
    "sagemaker-mlflow:CreateExperiment",
    "sagemaker-mlflow:CreateRun",
    "sagemaker-mlflow:GetRun",
    "sagemaker-mlflow:UpdateRun",
    "sagemaker-mlflow:LogBatch",
    "sagemaker-mlflow:LogMetric",
    "sagemaker-mlflow:LogParam",
    "sagemaker-mlflow:SetTag",
)


@dataclass(frozen=True)
class ExecutionRoleProps:
    """What `SageMakerExecutionRole` reads; no environment config needed."""

    names: ResourceNames
    """The environment's names: its data and artifacts buckets, the role's name, the account, region and
    partition of every ARN (`ResourceNames(prefix=, account=, region=)`). Required."""
    key: kms.IKey
    """The platform key the buckets, volumes and output are encrypted with. Required."""
    code_package: CodePackage
    """The training code's tarball (a CDK asset) the jobs download. Required."""
    pull_repository_arns: tuple[str, ...]
    """The ECR repositories the jobs may pull images from, and no others. Required."""
    job_pattern: str
    """The environment's jobs (`training-job/<job_name_prefix>-*`): SageMaker may assume the role for these
    only. Required."""
    vpc_id: str | None = None
    """Set when jobs run in a VPC: SageMaker then creates network interfaces as this role, in this VPC's
    `subnet_ids` with `security_group_ids`, and nowhere else. Default: None (SageMaker's network, no ENIs)."""
    subnet_ids: tuple[str, ...] = ()
    """With `vpc_id`: the subnets jobs run in. Default: none."""
    security_group_ids: tuple[str, ...] = ()
    """With `vpc_id`: the security groups of the jobs' network interfaces. Default: none."""
    mlflow_tracking_server_arn: str | None = None
    """The one SageMaker managed MLflow tracking server the jobs may log runs to. Default: None (no MLflow
    permissions)."""


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
            assumed_by=trusted_services.training_jobs(names, props.job_pattern),
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
        # No s3:DeleteObject on output/: a job cannot erase other jobs' models.
        policy.allow(
            "WriteModelsAndCheckpoints",
            ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            [
                names.bucket_arn(artifacts, f"{ARTIFACT_PREFIXES['output']}*"),
                names.bucket_arn(artifacts, f"{ARTIFACT_PREFIXES['checkpoints']}*"),
            ],
            wildcard_reason="each job writes under output/<job>/ and checkpoints/<job>/, named at run time",
        )
        # Checkpoint sync mirrors deletions: "If a checkpoint is deleted in the SageMaker AI container, it will also
        # be deleted in the S3 folder" (SageMaker Developer Guide, model-checkpoints.html). Hosts prune to
        # save_total_limit, so without this the sync's delete is refused and the run's prefix keeps every shard.
        policy.allow(
            "PruneCheckpoints",
            ["s3:DeleteObject"],
            [names.bucket_arn(artifacts, f"{ARTIFACT_PREFIXES['checkpoints']}*")],
            wildcard_reason="a run's checkpoint prefix checkpoints/<run>/ is named at run time",
        )
        policy.allow(
            "ReadCodePackages",
            ["s3:GetObject"],
            [names.bucket_arn(artifacts, f"{ARTIFACT_PREFIXES['code']}*")],
            wildcard_reason="runs bring their own code packages (run --source-dir, notebooks, the SDK) under code/",
        )
        policy.allow(
            "ReadPlatformCodePackage",
            ["s3:GetObject"],
            [
                f"arn:{names.partition}:s3:::{props.code_package.bucket_name}/{props.code_package.object_key}",
            ],
        )
        policy.allow(
            "UsePlatformKeyThroughServices",
            ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            [props.key.key_arn],
            conditions={
                "StringEquals": {
                    "kms:ViaService": [f"{service}.{names.region}.amazonaws.com" for service in KMS_VIA_SERVICES]
                }
            },
        )
        # Grants let SageMaker (and EBS under it) use the key for the job's volumes; only AWS services may
        # receive them, never a principal the job chooses.
        policy.allow(
            "GrantPlatformKeyToAwsServices",
            ["kms:CreateGrant"],
            [props.key.key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        )
        policy.allow(
            "PullTrainingImage",
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            list(props.pull_repository_arns),
        )
        policy.allow(
            "EcrLogin",
            ["ecr:GetAuthorizationToken"],
            ["*"],
            wildcard_reason="GetAuthorizationToken has no resource-level permissions",
        )
        policy.allow(
            "PublishTrainingMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            wildcard_reason="PutMetricData has no resource-level permissions; the namespace condition scopes it",
            conditions={"StringEquals": {"cloudwatch:namespace": TRAINING_METRICS_NAMESPACE}},
        )
        # No logs:CreateLogGroup: the group is created encrypted by the stack (constructs/training_log_group.py);
        # a job must not recreate it unencrypted and kept forever.
        policy.allow(
            "WriteTrainingLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [training_log_group_arn(names)],
            wildcard_reason="SageMaker writes one log stream per job and host inside this one log group",
        )
        if props.mlflow_tracking_server_arn:
            policy.allow("LogRunsToMlflow", list(MLFLOW_LOGGING_ACTIONS), [props.mlflow_tracking_server_arn])
        if props.vpc_id:
            self._network_interfaces(props)

    def _network_interfaces(self, props: ExecutionRoleProps) -> None:
        """ENIs for jobs in the VPC: created only in the platform's subnets with its group, and permissions
        and deletions only on interfaces in the platform's VPC (ec2:Vpc, a resource-level condition of the
        network-interface resource for these actions)."""
        names, policy = props.names, self.policy
        interfaces = names.arn("ec2", "network-interface/*")
        in_vpc = {"ArnEquals": {"ec2:Vpc": names.arn("ec2", f"vpc/{props.vpc_id}")}}
        # CreateNetworkInterface is authorized on the new interface, its subnet and its groups: naming the
        # subnets and the group confines the job's interfaces to them.
        policy.allow(
            "CreateJobNetworkInterfacesInPlatformSubnets",
            ["ec2:CreateNetworkInterface"],
            [interfaces]
            + [names.arn("ec2", f"subnet/{subnet}") for subnet in props.subnet_ids]
            + [names.arn("ec2", f"security-group/{group}") for group in props.security_group_ids],
            wildcard_reason="the job's network interfaces get their ids when SageMaker creates them",
        )
        policy.allow(
            "ManageJobNetworkInterfaces",
            [
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            [interfaces],
            wildcard_reason="the job's network interfaces get their ids when SageMaker creates them; ec2:Vpc "
            "limits them to the platform's VPC",
            conditions=in_vpc,
        )
        policy.allow(
            "DescribeNetwork",
            [
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeVpcs",
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
            ],
            ["*"],
            wildcard_reason="EC2 Describe calls have no resource-level permissions",
        )
