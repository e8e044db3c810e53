"""A team builds one piece of the platform without trainstack's YAML: each construct takes a small frozen props
object holding exactly what it reads."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import REPO_ROOT


def test_a_team_builds_buckets_and_the_log_group_from_props_alone() -> None:
    from aws_cdk import App, Environment, Stack
    from aws_cdk import aws_kms as kms
    from aws_cdk.assertions import Match, Template

    from trainstack.platform import (
        ResourceNames,
        SecureBucketProps,
        TrainingLogGroup,
        TrainingLogGroupProps,
        secure_bucket,
    )

    app = App(context=json.loads((REPO_ROOT / "cdk.json").read_text())["context"])
    stack = Stack(app, "TeamPieces", env=Environment(account="123456789012", region="eu-west-1"))
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    log_props = SecureBucketProps(bucket_name="team-access-logs", encryption_key=None, access_log_bucket=None)
    log_bucket = secure_bucket(stack, "AccessLogs", log_props)
    secure_bucket(
        stack,
        "Data",
        SecureBucketProps(
            bucket_name="team-data", encryption_key=key, access_log_bucket=log_bucket, access_log_prefix="data/"
        ),
    )
    names = ResourceNames(prefix="team", account="123456789012", region="eu-west-1")
    TrainingLogGroup(stack, "TrainingLogs", props=TrainingLogGroupProps(names=names, key=key, retention_days=30))
    template = Template.from_stack(stack)

    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": "team-data",
            "VersioningConfiguration": {"Status": "Enabled"},
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [Match.object_like({"BucketKeyEnabled": True})]},
            "LoggingConfiguration": Match.object_like({"LogFilePrefix": "data/"}),
            # The documented defaults: incomplete uploads 7 days, noncurrent versions 30 days.
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like({"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}),
                        Match.object_like({"NoncurrentVersionExpiration": {"NoncurrentDays": 30}}),
                    ]
                )
            },
        },
    )
    template.has_resource_properties(
        "AWS::S3::Bucket", {"BucketName": "team-access-logs", "BucketEncryption": Match.any_value()}
    )
    retention = [
        resource
        for resource in template.find_resources("Custom::AWS").values()
        if "PutRetentionPolicy" in json.dumps(resource)
    ]
    assert len(retention) == 1 and '\\"retentionInDays\\":30' in json.dumps(retention[0])


def test_props_are_frozen_and_document_each_default() -> None:
    import inspect

    from trainstack.platform import (
        ExecutionRoleProps,
        LoggedStateMachineProps,
        SecureBucketProps,
        TrainingLogGroupProps,
    )

    for props in (ExecutionRoleProps, LoggedStateMachineProps, SecureBucketProps, TrainingLogGroupProps):
        assert props.__dataclass_params__.frozen, props.__name__
        source = inspect.getsource(props)
        for field in dataclasses.fields(props):
            # Each prop is followed by its docstring, which names its default or says it is required.
            after = source.split(f"    {field.name}:", 1)[1].split('"""', 2)[1]
            expected = "Required" if field.default is dataclasses.MISSING else "Default:"
            assert expected in after, f"{props.__name__}.{field.name}"
    bucket = SecureBucketProps(bucket_name="b", encryption_key=None, access_log_bucket=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        bucket.bucket_name = "other"  # type: ignore[misc]
