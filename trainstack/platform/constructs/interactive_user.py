"""What a person working in an environment may do, granted alike to the notebook instance's role and to each
SageMaker Studio user profile's execution role: prepare data, start and watch runs, and create, update and stop
training jobs only inside the environment's guard rails.

One function for both so that Studio users stand under exactly the notebook's CreateTrainingJob and
UpdateTrainingJob rails (tests/test_studio_guard_rails.py evaluates them with the embedded IAM evaluator).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import aws_kms as kms

from trainstack.config import EnvironmentConfig, ResourceNames
from trainstack.platform.constructs.create_training_job_state import grant_training_jobs
from trainstack.platform.constructs.sagemaker_execution_role import training_log_group_arn
from trainstack.platform.constructs.scoped_policy import ScopedPolicy
from trainstack.platform.storage_stack import ARTIFACT_PREFIXES

if TYPE_CHECKING:
    from trainstack.platform.training_stack import TrainingStack


def grant_interactive_user(
    policy: ScopedPolicy, config: EnvironmentConfig, *, key: kms.IKey, training: TrainingStack
) -> None:
    names = ResourceNames.of(config)
    policy.allow(
        "PrepareData",
        ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
        [names.bucket_arn(names.data_bucket, "*")],
        wildcard_reason="the notebook uploads datasets and base-model weights anywhere in the data bucket",
    )
    policy.allow(
        "ReadArtifacts",
        ["s3:GetObject"],
        [names.bucket_arn(names.artifacts_bucket, "*")],
        wildcard_reason="the notebook downloads any trained model, checkpoint or code package to inspect it",
    )
    policy.allow(
        "UploadCodePackages",
        ["s3:PutObject"],
        [names.bucket_arn(names.artifacts_bucket, f"{ARTIFACT_PREFIXES['code']}*")],
        wildcard_reason="the SDK uploads one code package per job under code/",
    )
    policy.allow(
        "ListBuckets",
        ["s3:ListBucket", "s3:GetBucketLocation"],
        [names.bucket_arn(names.data_bucket), names.bucket_arn(names.artifacts_bucket)],
    )
    policy.allow(
        "UsePlatformKey",
        # SSE-KMS through S3 only: GenerateDataKey to upload, Decrypt to read (nothing calls KMS directly).
        ["kms:Decrypt", "kms:GenerateDataKey"],
        [key.key_arn],
    )
    policy.allow("StartRuns", ["states:StartExecution", "states:ListExecutions"], [training.state_machine_arn])
    policy.allow(
        "ReadRuns",
        ["states:DescribeExecution", "states:GetExecutionHistory", "states:StopExecution"],
        [training.execution_arn_pattern],
        wildcard_reason="executions of the platform's state machine are named at start time",
    )
    # Jobs launched with the SageMaker SDK; UpdateTrainingJob releases warm pools.
    grant_training_jobs(policy, config, training.job_target, may_update=True)
    policy.allow(
        "ReadTrainingLogs",
        ["logs:GetLogEvents", "logs:DescribeLogStreams", "logs:FilterLogEvents"],
        [training_log_group_arn(names)],
        wildcard_reason="one log stream per job and host inside the training log group",
    )
    policy.allow(
        "ListJobsAndQuotas",
        [
            "sagemaker:ListTrainingJobs",
            "servicequotas:GetServiceQuota",
            "servicequotas:GetAWSDefaultServiceQuota",
            "servicequotas:ListServiceQuotas",
        ],
        ["*"],
        wildcard_reason="List and Service Quotas read calls have no resource-level permissions",
    )
