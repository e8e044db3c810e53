"""The training log group (/aws/sagemaker/TrainingJobs) ends every deploy encrypted with the platform key and with
the configured retention, whether it existed before or not (trainstack/training_log_group.py)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from trainstack.config import load_environment
from trainstack.training_log_group import TRAINING_LOG_GROUP, ensure_training_log_group


def _group(logs: Any, name: str = TRAINING_LOG_GROUP) -> dict[str, Any]:
    [group] = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    return group


def test_deploy_leaves_the_training_log_group_encrypted_and_retained(deployed_local_platform) -> None:
    logs = deployed_local_platform.aws.client("logs")
    group = _group(logs)
    assert group["kmsKeyId"] == deployed_local_platform.outputs["KmsKeyArn"]
    assert group["retentionInDays"] == load_environment("local").training.log_retention_days
    # A second deploy changes nothing.
    assert ensure_training_log_group(logs, group["kmsKeyId"], group["retentionInDays"]) == []


def _key_policy(logs_may_use_it: bool) -> str:
    statements = [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*"}]
    if logs_may_use_it:
        statements.append(
            {
                "Effect": "Allow",
                "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": [{**s, "Resource": "*"} for s in statements]})


@pytest.fixture
def aws(embedded_aws) -> Any:
    """Clients of the shared embedded AWS; each test uses a log group of its own, not the training one, which
    the platform's jobs write into."""
    return embedded_aws.client


def test_an_existing_unencrypted_group_gets_the_key_and_the_retention(aws) -> None:
    logs, kms, name = aws("logs"), aws("kms"), f"/trainstack-test/{uuid.uuid4().hex}"
    key = kms.create_key(Policy=_key_policy(logs_may_use_it=True))["KeyMetadata"]["Arn"]
    logs.create_log_group(logGroupName=name)  # as SageMaker creates it: no key, kept forever
    assert ensure_training_log_group(logs, key, 90, name) == ["platform key associated", "retention 90 days"]
    group = _group(logs, name)
    assert (group["kmsKeyId"], group["retentionInDays"]) == (key, 90)


def test_an_absent_group_is_created_with_the_key(aws) -> None:
    logs, kms, name = aws("logs"), aws("kms"), f"/trainstack-test/{uuid.uuid4().hex}"
    key = kms.create_key(Policy=_key_policy(logs_may_use_it=True))["KeyMetadata"]["Arn"]
    assert ensure_training_log_group(logs, key, 365, name) == ["created with the platform key", "retention 365 days"]
    assert _group(logs, name)["kmsKeyId"] == key


def test_a_key_cloudwatch_logs_may_not_use_is_refused_as_on_aws(aws) -> None:
    import botocore.exceptions

    logs, kms, name = aws("logs"), aws("kms"), f"/trainstack-test/{uuid.uuid4().hex}"
    key = kms.create_key(Policy=_key_policy(logs_may_use_it=False))["KeyMetadata"]["Arn"]
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        ensure_training_log_group(logs, key, 365, name)
    logs.create_log_group(logGroupName=name)
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        logs.associate_kms_key(logGroupName=name, kmsKeyId=key)
