"""Storage: the platform's KMS key and its data, artifacts and access-log buckets."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from trainstack.config import EnvironmentConfig, ResourceNames
from trainstack.platform.constructs.permissions_boundary import PlatformPermissionsBoundary
from trainstack.platform.constructs.secure_bucket import SecureBucketProps, secure_bucket
from trainstack.platform.nag import acknowledge

# Prefixes inside the artifacts bucket, shared with the execution role's policy and the state machine.
ARTIFACT_PREFIXES = {"output": "output/", "checkpoints": "checkpoints/", "code": "code/"}


class StorageStack(Stack):
    """Exposes `.key`, `.data_bucket`, `.artifacts_bucket`, `.access_log_bucket` and `.boundary` (the platform's
    permissions boundary, None where the configuration names one or the environment is embedded)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)
        names = ResourceNames.of(config)
        storage = config.storage

        self.key = kms.Key(
            self,
            "PlatformKey",
            alias=f"alias/{config.prefix}",
            description=f"trainstack {config.name}: data, artifacts, training volumes, notebook, logs",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # CloudWatch Logs encrypts this account's log groups (training logs, state machine, flow logs) with
        # this key; it must be allowed to, for log groups of this account and region only. Explicit actions:
        # AWS's example lists kms:Describe*, which never carries the encryption context, so never matches;
        # StringLike, not AWS's ArnLike: the encryption-context key is string-typed (IAM lint).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{config.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                    "kms:GenerateDataKey",
                    "kms:GenerateDataKeyWithoutPlaintext",
                ],
                resources=["*"],
                conditions={"StringLike": {"kms:EncryptionContext:aws:logs:arn": names.arn("logs", "log-group:*")}},
            )
        )
        # Alarms publish to the platform's encrypted notification topic.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": config.account}},
            )
        )

        self.access_log_bucket = secure_bucket(
            self,
            "AccessLogBucket",
            SecureBucketProps(
                bucket_name=names.access_log_bucket,
                encryption_key=None,
                access_log_bucket=None,
                lifecycle_rules=(
                    s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(storage.access_log_expiry_days)),
                ),
                incomplete_upload_expiry_days=storage.incomplete_upload_expiry_days,
                noncurrent_version_expiry_days=storage.noncurrent_version_expiry_days,
            ),
        )
        acknowledge(
            self.access_log_bucket,
            "AwsSolutions-S1",
            "This is the access-log bucket itself; logging it into itself would loop.",
        )
        self.data_bucket = secure_bucket(
            self,
            "DataBucket",
            SecureBucketProps(
                bucket_name=names.data_bucket,
                encryption_key=self.key,
                access_log_bucket=self.access_log_bucket,
                access_log_prefix="data/",
                incomplete_upload_expiry_days=storage.incomplete_upload_expiry_days,
                noncurrent_version_expiry_days=storage.noncurrent_version_expiry_days,
            ),
        )
        self.artifacts_bucket = secure_bucket(
            self,
            "ArtifactsBucket",
            SecureBucketProps(
                bucket_name=names.artifacts_bucket,
                encryption_key=self.key,
                access_log_bucket=self.access_log_bucket,
                access_log_prefix="artifacts/",
                lifecycle_rules=(
                    s3.LifecycleRule(
                        id="expire-old-checkpoints",
                        prefix=ARTIFACT_PREFIXES["checkpoints"],
                        expiration=Duration.days(storage.checkpoint_expiry_days),
                        noncurrent_version_expiration=Duration.days(1),
                    ),
                ),
                incomplete_upload_expiry_days=storage.incomplete_upload_expiry_days,
                noncurrent_version_expiry_days=storage.noncurrent_version_expiry_days,
            ),
        )

        # First stack of the stage, so every role of the later stacks can reference it.
        self.boundary: PlatformPermissionsBoundary | None = None
        if not config.permissions_boundary_arn and not config.embedded:
            self.boundary = PlatformPermissionsBoundary(self, "PermissionsBoundary", config=config)

        CfnOutput(self, "DataBucketName", value=self.data_bucket.bucket_name)
        CfnOutput(self, "ArtifactsBucketName", value=self.artifacts_bucket.bucket_name)
        CfnOutput(self, "KmsKeyArn", value=self.key.key_arn)
