"""Grants of the platform roles that no test exercises in the embedded AWS, each with the reason it stays.

`tests/test_iam_enforcement.py::test_every_platform_grant_is_exercised_or_explained` fails on a grant that is
neither used by some test (as recorded by the embedded AWS's IAM evaluation) nor listed here, and on an entry
here whose grant is gone; the suite's table (`.bench/least-privilege.md`) shows both. Keys: (role, action).
"""

from __future__ import annotations

_STEP_FUNCTIONS_LOGGING = (
    "Step Functions itself delivers the execution log (level ALL) and X-Ray traces with it (CDK adds it for "
    "`logs`/`tracing_enabled`); the embedded Step Functions writes neither"
)
_VOLUME_KEY = (
    "SageMaker uses the platform key for the job's ML storage volume (VolumeKmsKeyId); the embedded AWS has no "
    "volumes, and its S3 path needs only GenerateDataKey/Decrypt"
)
_IMAGE_PULL = (
    "the image pull: the embedded AWS runs no container (local uses a DLC image in AWS's account, governed by "
    "that repository's policy)"
)
_VPC = "SageMaker creates and removes the job's network interfaces in the VPC; no interfaces exist offline"
_SDK_NOTEBOOK = (
    "notebook 03 launches jobs with the SageMaker SDK straight to SageMaker; its test checks and captures the "
    "request without sending it (and runs only where TRAINSTACK_SDK_PYTHON points at the SDK v3 environment)"
)
_OPERATOR_ON_NOTEBOOK = (
    "for looking at jobs, pools and quotas from the notebook instance (e.g. the operator CLI's `quotas`, "
    "`pools`); no tested notebook cell does, and the CLI tests run with the account's keys"
)

UNEXERCISED_GRANTS: dict[tuple[str, str], str] = {
    **{
        ("state machine", action): _STEP_FUNCTIONS_LOGGING
        for action in (
            "logs:CreateLogDelivery",
            "logs:DeleteLogDelivery",
            "logs:DescribeLogGroups",
            "logs:DescribeResourcePolicies",
            "logs:GetLogDelivery",
            "logs:ListLogDeliveries",
            "logs:PutResourcePolicy",
            "logs:UpdateLogDelivery",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
            "xray:PutTelemetryRecords",
            "xray:PutTraceSegments",
        )
    },
    ("state machine", "sagemaker:StopTrainingJob"): (
        "Step Functions stops the job when an execution is stopped mid-job (best effort); the embedded `.sync` "
        "does not react to StopExecution and no test stops one"
    ),
    ("execution role", "s3:GetBucketLocation"): (
        "SageMaker checks each S3 location's region when it accepts CreateTrainingJob; the embedded SageMaker does not"
    ),
    ("execution role", "s3:AbortMultipartUpload"): (
        "multipart uploads of large models and checkpoints; the test models fit in one PutObject"
    ),
    ("execution role", "s3:GetObject"): (
        "also granted on output/ and checkpoints/: a job restores checkpoints/<job>/ when it resumes (spot "
        "interruption, retry); test jobs always start fresh"
    ),
    ("execution role", "kms:CreateGrant"): _VOLUME_KEY,
    ("execution role", "kms:DescribeKey"): _VOLUME_KEY,
    ("execution role", "kms:Encrypt"): _VOLUME_KEY,
    ("execution role", "ecr:BatchCheckLayerAvailability"): _IMAGE_PULL,
    ("execution role", "ecr:BatchGetImage"): _IMAGE_PULL,
    ("execution role", "ecr:GetDownloadUrlForLayer"): _IMAGE_PULL,
    ("execution role", "ecr:GetAuthorizationToken"): _IMAGE_PULL,
    ("execution role", "cloudwatch:PutMetricData"): (
        "SageMaker publishes the MetricDefinitions' values as metrics; the embedded executor publishes none"
    ),
    ("execution role", "logs:DescribeLogStreams"): (
        "SageMaker's log agent looks up its streams; the embedded executor creates them without a lookup"
    ),
    **{
        ("execution role", action): _VPC
        for action in (
            "ec2:CreateNetworkInterface",
            "ec2:CreateNetworkInterfacePermission",
            "ec2:DeleteNetworkInterface",
            "ec2:DeleteNetworkInterfacePermission",
            "ec2:DescribeDhcpOptions",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSubnets",
            "ec2:DescribeVpcs",
        )
    },
    ("notebook role", "s3:AbortMultipartUpload"): (
        "uploads of real base-model weights are multipart; the tiny test model fits in one PutObject"
    ),
    ("notebook role", "s3:DeleteObject"): "replacing or removing a dataset from the notebook; notebook 01 only adds",
    ("notebook role", "s3:GetObject"): (
        "also granted on the data bucket, to inspect datasets and weights; the tested notebooks read artifacts only"
    ),
    ("notebook role", "s3:PutObject"): f"also granted on code/ of the artifacts bucket: {_SDK_NOTEBOOK}",
    ("notebook role", "s3:GetBucketLocation"): "the SageMaker SDK asks a bucket's region before uploading; "
    + _SDK_NOTEBOOK,
    ("notebook role", "s3:ListBucket"): (
        "also granted on the artifacts bucket, to browse outputs and checkpoints; the tested notebooks list data only"
    ),
    ("notebook role", "states:ListExecutions"): "listing earlier runs from the notebook; the tested cells start one",
    ("notebook role", "states:StopExecution"): "stopping a run from the notebook; no test stops one",
    ("notebook role", "sagemaker:AddTags"): _SDK_NOTEBOOK,
    ("notebook role", "sagemaker:ListTags"): _SDK_NOTEBOOK,
    ("notebook role", "sagemaker:StopTrainingJob"): _SDK_NOTEBOOK,
    ("notebook role", "sagemaker:UpdateTrainingJob"): "releasing a warm pool from the notebook; "
    + _OPERATOR_ON_NOTEBOOK,
    ("notebook role", "iam:PassRole"): _SDK_NOTEBOOK,
    ("notebook role", "logs:DescribeLogStreams"): "the SDK's train(logs=True) follows the streams; " + _SDK_NOTEBOOK,
    ("notebook role", "logs:GetLogEvents"): "the SDK's train(logs=True) follows the streams; " + _SDK_NOTEBOOK,
    ("notebook role", "sagemaker:ListTrainingJobs"): "quota and warm-pool checks before an SDK launch; "
    + _SDK_NOTEBOOK,
    ("notebook role", "servicequotas:GetAWSDefaultServiceQuota"): "quota checks before an SDK launch; " + _SDK_NOTEBOOK,
    ("notebook role", "servicequotas:GetServiceQuota"): "quota checks before an SDK launch; " + _SDK_NOTEBOOK,
    ("notebook role", "servicequotas:ListServiceQuotas"): "quota checks before an SDK launch; " + _SDK_NOTEBOOK,
    ("notebook role", "sagemaker:DescribeNotebookInstance"): (
        "the lifecycle configuration's idle auto-stop script runs on the instance itself, not in tests"
    ),
    ("notebook role", "sagemaker:StopNotebookInstance"): (
        "the lifecycle configuration's idle auto-stop script runs on the instance itself, not in tests"
    ),
}
