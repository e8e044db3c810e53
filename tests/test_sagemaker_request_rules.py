"""SageMaker's own rules in the embedded CreateTrainingJob: each violating request is sent through boto3 to the
embedded endpoint and must come back with SageMaker's error and wording; plus capacity, warm-pool matching and
the throttle switch."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.config import Config

from trainstack.embedded_aws.testing import job_request, throttle, unique, upload_script, wait_for_job
from trainstack.embedded_aws.training_capacity import WARM_POOL_MATCH, warm_pool_mismatches

TAG_PATTERN = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$"
SLEEPING = "import time\nprint('holding capacity', flush=True)\ntime.sleep(120)\n"


@pytest.fixture(scope="module")
def bucket(embedded_aws: Any) -> str:
    bucket_name = unique("rules")
    embedded_aws.client("s3").create_bucket(Bucket=bucket_name)
    # Pools left by other modules would shift the capacity arithmetic pinned down here.
    sagemaker = embedded_aws.client("sagemaker")
    for job in sagemaker.list_training_jobs(WarmPoolStatusEquals="Available", MaxResults=100)["TrainingJobSummaries"]:
        sagemaker.update_training_job(
            TrainingJobName=job["TrainingJobName"], ResourceConfig={"KeepAlivePeriodInSeconds": 0}
        )
    return bucket_name


def _channel(name: str, uri: str = "s3://bucket/datasets/train/") -> dict[str, Any]:
    return {"ChannelName": name, "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}}


def _resources(**overrides: Any) -> dict[str, Any]:
    return {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30, **overrides}


# (case id, request overrides, SageMaker's message or the part of it that names field and constraint)
VIOLATIONS = [
    (
        "tag-value-pattern",
        {"Tags": [{"Key": "run", "Value": "retrain(v2)"}]},
        "1 validation error detected: Value 'retrain(v2)' at 'tags.1.member.value' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {TAG_PATTERN}",
    ),
    (
        "103-hyperparameters",
        {"HyperParameters": {f"hp{index}": "1" for index in range(103)}},
        "at 'hyperParameters' failed to satisfy constraint: Member must have length less than or equal to 100",
    ),
    (
        "300-character-hyperparameter-name",
        {"HyperParameters": {"h" * 300: "1"}},
        "at 'hyperParameters' failed to satisfy constraint: Map keys must satisfy constraint: "
        "[Member must have length less than or equal to 256",
    ),
    (
        "2501-character-hyperparameter-value",
        {"HyperParameters": {"notes": "v" * 2501}},
        "at 'hyperParameters' failed to satisfy constraint: Map value must satisfy constraint: "
        "[Member must have length less than or equal to 2500",
    ),
    (
        "21-channels",
        {"InputDataConfig": [_channel(f"c{index}") for index in range(21)]},
        "at 'inputDataConfig' failed to satisfy constraint: Member must have length less than or equal to 20",
    ),
    (
        "600-character-environment-value",
        {"Environment": {"NOTES": "e" * 600}},
        "at 'environment' failed to satisfy constraint: Map value must satisfy constraint: "
        "[Member must have length less than or equal to 512",
    ),
    (
        "101-environment-entries",
        {"Environment": {f"V{index}": "1" for index in range(101)}},
        "at 'environment' failed to satisfy constraint: Member must have length less than or equal to 100",
    ),
    (
        "environment-name-pattern",
        {"Environment": {"1BAD-NAME": "x"}},
        "at 'environment' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length "
        "less than or equal to 512, Member must have length greater than or equal to 0, "
        "Member must satisfy regular expression pattern: [a-zA-Z_][a-zA-Z0-9_]*]",
    ),
    (
        "51-tags",
        {"Tags": [{"Key": f"k{index}", "Value": "v"} for index in range(51)]},
        "at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50",
    ),
    (
        "129-character-tag-key",
        {"Tags": [{"Key": "k" * 129, "Value": "v"}]},
        "at 'tags.1.member.key' failed to satisfy constraint: Member must have length less than or equal to 128",
    ),
    (
        "257-character-tag-value",
        {"Tags": [{"Key": "k", "Value": "v" * 257}]},
        "at 'tags.1.member.value' failed to satisfy constraint: Member must have length less than or equal to 256",
    ),
    (
        "aws-tag-prefix",
        {"Tags": [{"Key": "aws:team", "Value": "ml"}]},
        "Value 'aws:team' at 'tags.1.member.key' failed to satisfy constraint: User-defined tag keys cannot start "
        "with 'aws:'",
    ),
    (
        "1025-character-s3-uri",
        {"InputDataConfig": [_channel("train", "s3://bucket/" + "k" * 1013)]},
        "at 'inputDataConfig.1.member.dataSource.s3DataSource.s3Uri' failed to satisfy constraint: "
        "Member must have length less than or equal to 1024",
    ),
    (
        "s3-uri-pattern",
        {"OutputDataConfig": {"S3OutputPath": "bucket/output"}},
        "Value 'bucket/output' at 'outputDataConfig.s3OutputPath' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^(https|s3)://([^/]+)/?(.*)$",
    ),
    (
        "job-name-pattern",
        {"TrainingJobName": "run_1"},
        "Value 'run_1' at 'trainingJobName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$",
    ),
    (
        "instance-type-enum",
        {"ResourceConfig": _resources(InstanceType="ml.m5.huge")},
        "Value 'ml.m5.huge' at 'resourceConfig.instanceType' failed to satisfy constraint: "
        "Member must satisfy enum value set: [",
    ),
    (
        "keep-alive-over-3600",
        {"ResourceConfig": _resources(KeepAlivePeriodInSeconds=3601)},
        "at 'resourceConfig.keepAlivePeriodInSeconds' failed to satisfy constraint: "
        "Member must have value less than or equal to 3600",
    ),
    (
        "keep-alive-with-spot",
        {
            "ResourceConfig": _resources(KeepAlivePeriodInSeconds=60),
            "EnableManagedSpotTraining": True,
            "StoppingCondition": {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 600},
        },
        "Warm pools are not supported with managed spot training",
    ),
    (
        "spot-max-wait-below-max-runtime",
        {
            "EnableManagedSpotTraining": True,
            "StoppingCondition": {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 60},
        },
        "Invalid MaxWaitTimeInSeconds. It must be present and be greater than or equal to MaxRuntimeInSeconds",
    ),
    (
        "max-wait-without-spot",
        {"StoppingCondition": {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 600}},
        "Invalid MaxWaitTimeInSeconds. It is only supported when EnableManagedSpotTraining is set to true",
    ),
    (
        # HyperParameters keys and values are Java's `.*`: no line terminator, "\r" and U+2028 included.
        "hyperparameter-value-with-a-carriage-return",
        {"HyperParameters": {"note": "a\rb"}},
        "at 'hyperParameters' failed to satisfy constraint: Map value must satisfy constraint: [Member must have "
        "length less than or equal to 2500, Member must have length greater than or equal to 0, Member must satisfy "
        "regular expression pattern: .*]",
    ),
    (
        "hyperparameter-name-with-a-line-separator",
        {"HyperParameters": {"a\u2028b": "1"}},
        "at 'hyperParameters' failed to satisfy constraint: Map keys must satisfy constraint: [",
    ),
    (
        # botocore's ResourceConfig.VolumeKmsKeyId: no volume key on a type with local (NVMe) storage.
        "volume-key-on-local-storage",
        {
            "ResourceConfig": _resources(
                InstanceType="ml.p4de.24xlarge", VolumeKmsKeyId="arn:aws:kms:us-east-1:123456789012:key/v"
            )
        },
        "Invalid VolumeKmsKeyId. You can't request a VolumeKmsKeyId when using an instance type with local "
        "storage (ml.p4de.24xlarge)",
    ),
    (
        "two-errors-at-once",
        {"TrainingJobName": "run_1", "Tags": [{"Key": "run", "Value": "retrain(v2)"}]},
        "2 validation errors detected: Value 'run_1' at 'trainingJobName'",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), [case[1:] for case in VIOLATIONS], ids=[c[0] for c in VIOLATIONS])
def test_violating_request_gets_sagemakers_validation_error(
    embedded_aws: Any, bucket: str, overrides: dict[str, Any], message: str
) -> None:
    sagemaker = embedded_aws.client("sagemaker")
    request = job_request(unique("rule"), bucket, "s3://bucket/code/sourcedir.tar.gz", **overrides)
    with pytest.raises(sagemaker.exceptions.ClientError) as raised:
        sagemaker.create_training_job(**request)
    error = raised.value.response
    assert error["Error"]["Code"] == "ValidationException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert message in error["Error"]["Message"]
    # Nothing was created.
    assert not sagemaker.list_training_jobs(NameContains=request["TrainingJobName"])["TrainingJobSummaries"]


def test_a_missing_required_member_is_refused_as_null(embedded_aws: Any, bucket: str) -> None:
    # A raw API caller (client-side validation off) reaches SageMaker's own check.
    raw = embedded_aws.client("sagemaker", config=Config(parameter_validation=False))
    request = job_request(unique("rule"), bucket, "s3://bucket/code/sourcedir.tar.gz")
    request.pop("RoleArn")
    with pytest.raises(raw.exceptions.ClientError) as raised:
        raw.create_training_job(**request)
    assert raised.value.response["Error"]["Message"] == (
        "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null"
    )


# ----------------------------------------------------------------------------------------------- capacity


def test_spot_jobs_count_against_the_spot_quota(embedded_aws: Any, bucket: str) -> None:
    sagemaker = embedded_aws.client("sagemaker")
    request = job_request(
        unique("spot"),
        bucket,
        "s3://bucket/code/sourcedir.tar.gz",
        ResourceConfig=_resources(),
        EnableManagedSpotTraining=True,
        StoppingCondition={"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 1200},
    )
    with pytest.raises(sagemaker.exceptions.ResourceLimitExceeded) as raised:
        sagemaker.create_training_job(**request)
    # config/local.yaml gives ml.m5.xlarge no spot quota (0), while its on-demand quota is 4.
    assert raised.value.response["Error"]["Message"] == (
        "The account-level service limit 'ml.m5.xlarge for spot training job usage' is 0 Instances, with current "
        "utilization of 0 Instances and a request delta of 1 Instances. Please use AWS Service Quotas to request an "
        "increase for this quota. If AWS Service Quotas is not available, contact AWS support to request an "
        "increase for this quota."
    )


def test_running_instances_count_against_the_training_quota(embedded_aws: Any, bucket: str) -> None:
    sagemaker, s3 = embedded_aws.client("sagemaker"), embedded_aws.client("s3")
    holder = unique("holder")
    # ml.m5.2xlarge: training quota 4, warm-pool quota 0 (config/local.yaml).
    sagemaker.create_training_job(
        **job_request(
            holder,
            bucket,
            upload_script(s3, bucket, SLEEPING),
            ResourceConfig=_resources(InstanceType="ml.m5.2xlarge", InstanceCount=3),
        )
    )
    try:
        with pytest.raises(sagemaker.exceptions.ResourceLimitExceeded) as raised:
            sagemaker.create_training_job(
                **job_request(
                    unique("over"),
                    bucket,
                    "s3://bucket/code/sourcedir.tar.gz",
                    ResourceConfig=_resources(InstanceType="ml.m5.2xlarge", InstanceCount=2),
                )
            )
        assert (
            "'ml.m5.2xlarge for training job usage' is 4 Instances, with current utilization of 3 Instances and a "
            "request delta of 2 Instances." in raised.value.response["Error"]["Message"]
        )
    finally:
        sagemaker.stop_training_job(TrainingJobName=holder)
        wait_for_job(sagemaker, holder)


def test_retained_pools_count_but_a_reused_pool_is_not_counted_twice(embedded_aws: Any, bucket: str) -> None:
    sagemaker, s3 = embedded_aws.client("sagemaker"), embedded_aws.client("s3")
    code = upload_script(s3, bucket, "print('warm')\n")
    pooled = _resources(InstanceCount=2, KeepAlivePeriodInSeconds=600)
    first, second = unique("pool"), unique("reuse")
    # ml.m5.xlarge: training quota 4, warm-pool quota 2.
    sagemaker.create_training_job(**job_request(first, bucket, code, ResourceConfig=pooled))
    assert wait_for_job(sagemaker, first)["WarmPoolStatus"]["Status"] == "Available"
    try:
        with pytest.raises(sagemaker.exceptions.ResourceLimitExceeded) as raised:
            sagemaker.create_training_job(
                **job_request(unique("over"), bucket, code, ResourceConfig=_resources(InstanceCount=3))
            )
        assert "with current utilization of 2 Instances and a request delta of 3 Instances" in str(raised.value)
        # The matching job takes the pool over: its 2 instances are the pool's, 2 + 2 <= 4 is not asked.
        sagemaker.create_training_job(**job_request(second, bucket, code, ResourceConfig=pooled))
        assert sagemaker.describe_training_job(TrainingJobName=first)["WarmPoolStatus"]["ReusedByJob"] == second
        assert wait_for_job(sagemaker, second)["TrainingJobStatus"] == "Completed"
    finally:
        for name in (first, second):
            pool = sagemaker.describe_training_job(TrainingJobName=name).get("WarmPoolStatus", {})
            if pool.get("Status") == "Available":
                sagemaker.update_training_job(TrainingJobName=name, ResourceConfig={"KeepAlivePeriodInSeconds": 0})


# ----------------------------------------------------------------------------------------- warm-pool matching

_POOL_REQUEST: dict[str, Any] = {
    "RoleArn": "arn:aws:iam::123456789012:role/a",
    "ResourceConfig": _resources(
        VolumeKmsKeyId="arn:aws:kms:us-east-1:123456789012:key/a", KeepAlivePeriodInSeconds=60
    ),
    "VpcConfig": {"Subnets": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-a"]},
    "EnableInterContainerTrafficEncryption": False,
    "EnableNetworkIsolation": False,
}
_CHANGES: dict[str, dict[str, Any]] = {
    "RoleArn": {"RoleArn": "arn:aws:iam::123456789012:role/b"},
    "InstanceType": {"ResourceConfig": {**_POOL_REQUEST["ResourceConfig"], "InstanceType": "ml.m5.2xlarge"}},
    "InstanceCount": {"ResourceConfig": {**_POOL_REQUEST["ResourceConfig"], "InstanceCount": 2}},
    "VolumeSizeInGB": {"ResourceConfig": {**_POOL_REQUEST["ResourceConfig"], "VolumeSizeInGB": 31}},
    "VolumeKmsKeyId": {"ResourceConfig": {**_POOL_REQUEST["ResourceConfig"], "VolumeKmsKeyId": "key-b"}},
    "VpcConfig.Subnets": {"VpcConfig": {"Subnets": ["subnet-a"], "SecurityGroupIds": ["sg-a"]}},
    "VpcConfig.SecurityGroupIds": {"VpcConfig": {"Subnets": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-b"]}},
    "EnableInterContainerTrafficEncryption": {"EnableInterContainerTrafficEncryption": True},
    "EnableNetworkIsolation": {"EnableNetworkIsolation": True},
}


def test_every_attribute_aws_lists_is_compared_for_warm_pool_reuse() -> None:
    assert set(_CHANGES) == set(WARM_POOL_MATCH)


@pytest.mark.parametrize("attribute", WARM_POOL_MATCH)
def test_a_job_differing_in_one_attribute_does_not_reuse_the_pool(attribute: str) -> None:
    assert warm_pool_mismatches(_POOL_REQUEST, {**_POOL_REQUEST, **_CHANGES[attribute]}) == [attribute]


def test_subnet_and_security_group_order_does_not_matter_for_reuse() -> None:
    reordered = {**_POOL_REQUEST, "VpcConfig": {"Subnets": ["subnet-b", "subnet-a"], "SecurityGroupIds": ["sg-a"]}}
    assert warm_pool_mismatches(_POOL_REQUEST, reordered) == []


def test_a_job_on_another_volume_size_runs_cold_beside_the_pool(embedded_aws: Any, bucket: str) -> None:
    sagemaker, s3 = embedded_aws.client("sagemaker"), embedded_aws.client("s3")
    code = upload_script(s3, bucket, "print('warm')\n")
    first, other = unique("pool"), unique("cold")
    sagemaker.create_training_job(
        **job_request(first, bucket, code, ResourceConfig=_resources(KeepAlivePeriodInSeconds=600))
    )
    assert wait_for_job(sagemaker, first)["WarmPoolStatus"]["Status"] == "Available"
    try:
        sagemaker.create_training_job(
            **job_request(other, bucket, code, ResourceConfig=_resources(VolumeSizeInGB=31, KeepAlivePeriodInSeconds=1))
        )
        assert sagemaker.describe_training_job(TrainingJobName=first)["WarmPoolStatus"]["Status"] == "Available"
        wait_for_job(sagemaker, other)
    finally:
        sagemaker.update_training_job(TrainingJobName=first, ResourceConfig={"KeepAlivePeriodInSeconds": 0})
        time.sleep(1.5)  # the other job's 1 s pool expires on its own


# --------------------------------------------------------------------------------------------- throttling


def test_the_throttle_switch_throttles_the_next_n_calls_as_aws_does(embedded_aws: Any, bucket: str) -> None:
    sagemaker = embedded_aws.client("sagemaker", config=Config(retries={"total_max_attempts": 1}))
    quotas = embedded_aws.client("service-quotas", config=Config(retries={"total_max_attempts": 1}))
    invalid = job_request("run_1", bucket, "s3://bucket/code/sourcedir.tar.gz")
    throttle(embedded_aws.endpoint_url, "SageMaker.CreateTrainingJob", 2)
    throttle(embedded_aws.endpoint_url, "ServiceQuotas.GetAWSDefaultServiceQuota", 1)
    for _ in range(2):
        with pytest.raises(sagemaker.exceptions.ClientError) as raised:
            sagemaker.create_training_job(**invalid)
        response = raised.value.response
        assert (response["Error"]["Code"], response["Error"]["Message"]) == ("ThrottlingException", "Rate exceeded")
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # The count is used up: the same call now reaches SageMaker's own checks.
    with pytest.raises(sagemaker.exceptions.ClientError, match="ValidationException"):
        sagemaker.create_training_job(**invalid)
    with pytest.raises(quotas.exceptions.TooManyRequestsException):
        quotas.get_aws_default_service_quota(ServiceCode="sagemaker", QuotaCode="L-33A961FD")
    assert quotas.get_aws_default_service_quota(ServiceCode="sagemaker", QuotaCode="L-33A961FD")["Quota"]["Value"]


def test_the_throttle_switch_refuses_unknown_operations(embedded_aws: Any) -> None:
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as raised:
        throttle(embedded_aws.endpoint_url, "Lambda.Invoke", 1)
    assert raised.value.code == 400
