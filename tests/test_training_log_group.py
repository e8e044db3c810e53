"""The training log group (/aws/sagemaker/TrainingJobs) is made by `cdk deploy` alone: encrypted with the platform
key and retained, whether it existed before or not (trainstack/platform/constructs/training_log_group.py), through
`AwsCustomResource` SDK calls that the embedded AWS makes as the provider's role
(trainstack/embedded_aws/cloudformation_custom_resources.py)."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from typing import Any

import botocore.exceptions
import pytest

from trainstack.config import load_environment

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
ACCOUNT, REGION = "123456789012", "us-east-1"


def _group(logs: Any, name: str = TRAINING_LOG_GROUP) -> dict[str, Any]:
    [group] = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    return group


def test_deploy_leaves_the_training_log_group_encrypted_and_retained(deployed_local_platform) -> None:
    group = _group(deployed_local_platform.aws.client("logs"))
    assert group["kmsKeyId"] == deployed_local_platform.outputs["KmsKeyArn"]
    assert group["retentionInDays"] == load_environment("local").training.log_retention_days


def test_the_stacks_make_the_group_with_no_step_after_cdk_deploy(synthesized) -> None:
    """Three SDK calls, in order, each allowed on this one group only; nothing deletes the account's group."""
    template = synthesized.template("dev", "training")
    resources = template["Resources"]
    calls = {}
    for logical_id, resource in resources.items():
        if resource["Type"] == "Custom::AWS" and logical_id.startswith("TrainingLogGroup"):
            create = json.loads(_joined(resource["Properties"]["Create"]))
            assert "Delete" not in resource["Properties"]
            calls[create["action"]] = create
    assert list(calls) == ["CreateLogGroup", "AssociateKmsKey", "PutRetentionPolicy"]
    assert calls["CreateLogGroup"]["ignoreErrorCodesMatching"] == "ResourceAlreadyExistsException"
    assert (
        calls["PutRetentionPolicy"]["parameters"]["retentionInDays"]
        == load_environment("dev").training.log_retention_days
    )
    policies = [r for r in resources.values() if r["Type"] == "AWS::IAM::Policy" and "CustomResourcePolicy" in str(r)]
    for policy in policies:
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert all(TRAINING_LOG_GROUP in arn for arn in statement["Resource"]), statement


def _joined(value: Any) -> str:
    """A `Fn::Join` with the tokens replaced by a placeholder: enough to read the call's shape."""
    if isinstance(value, str):
        return value
    return "".join(part if isinstance(part, str) else "TOKEN" for part in value["Fn::Join"][1])


# --- The embedded AWS runs Custom::AWS as the provider does ----------------------------------------------------


def _key_policy(logs_may_use_it: bool) -> str:
    statements = [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*"}]
    if logs_may_use_it:
        statements.append(
            {
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{REGION}.amazonaws.com"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": [{**s, "Resource": "*"} for s in statements]})


@pytest.fixture
def aws(embedded_aws) -> Any:
    """Clients of the shared embedded AWS; each test uses a log group of its own, not the training one, which
    the platform's jobs write into."""
    return embedded_aws.client


def _provider(aws: Any, actions: list[str], group: str) -> str:
    """A provider function (its code is never run offline) whose role may call `actions` on `group` only."""
    iam, name = aws("iam"), f"provider-{uuid.uuid4().hex[:8]}"
    trust = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    }
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    allowed = [
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}",
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:*",
    ]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": allowed}]}
    iam.put_role_policy(RoleName=name, PolicyName="calls", PolicyDocument=json.dumps(policy))
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.js", "exports.handler = async () => {};")
    return aws("lambda").create_function(
        FunctionName=name, Runtime="nodejs22.x", Role=role, Handler="index.handler", Code={"ZipFile": code.getvalue()}
    )["FunctionArn"]


def _template(provider: str, group: str, key: str, retention: int) -> str:
    """The three calls of the construct, as CDK writes them (one Custom::AWS resource each)."""
    calls = [
        ("CreateLogGroup", {"kmsKeyId": key}, "ResourceAlreadyExistsException"),
        ("AssociateKmsKey", {"kmsKeyId": key}, None),
        ("PutRetentionPolicy", {"retentionInDays": retention}, None),
    ]
    resources, previous = {}, None
    for index, (action, parameters, ignored) in enumerate(calls):
        call = {
            "service": "@aws-sdk/client-cloudwatch-logs",
            "action": action,
            "parameters": {"logGroupName": group, **parameters},
            "physicalResourceId": {"id": group},
            **({"ignoreErrorCodesMatching": ignored} if ignored else {}),
        }
        resource: dict[str, Any] = {
            "Type": "Custom::AWS",
            "Properties": {"ServiceToken": provider, "Create": json.dumps(call), "Update": json.dumps(call)},
        }
        if previous:
            resource["DependsOn"] = [previous]
        resources[f"Call{index}"] = previous = resource
        previous = f"Call{index}"
    return json.dumps({"Resources": resources})


ALL_CALLS = ["logs:CreateLogGroup", "logs:AssociateKmsKey", "logs:PutRetentionPolicy"]


def _setup(aws: Any, actions: list[str] = ALL_CALLS) -> tuple[str, str, str]:
    group = f"/trainstack-test/{uuid.uuid4().hex}"
    key = aws("kms").create_key(Policy=_key_policy(logs_may_use_it=True))["KeyMetadata"]["Arn"]
    return group, key, _provider(aws, actions, group)


def test_an_absent_group_is_created_with_the_key_and_the_retention(aws) -> None:
    group, key, provider = _setup(aws)
    aws("cloudformation").create_stack(
        StackName=f"lg-{uuid.uuid4().hex[:8]}", TemplateBody=_template(provider, group, key, 30)
    )
    found = _group(aws("logs"), group)
    assert (found["kmsKeyId"], found["retentionInDays"]) == (key, 30)


def test_an_existing_unencrypted_group_gets_the_key_and_an_update_changes_the_retention(aws) -> None:
    group, key, provider = _setup(aws)
    aws("logs").create_log_group(logGroupName=group)  # as SageMaker creates it: no key, kept forever
    cfn, stack = aws("cloudformation"), f"lg-{uuid.uuid4().hex[:8]}"
    cfn.create_stack(StackName=stack, TemplateBody=_template(provider, group, key, 90))
    assert (_group(aws("logs"), group)["kmsKeyId"], _group(aws("logs"), group)["retentionInDays"]) == (key, 90)
    cfn.update_stack(StackName=stack, TemplateBody=_template(provider, group, key, 365))
    assert _group(aws("logs"), group)["retentionInDays"] == 365


def test_removing_the_stack_leaves_the_accounts_group_and_its_key(aws) -> None:
    """No Delete call: other environments and SageMaker write to the group, and the retained key keeps it readable."""
    group, key, provider = _setup(aws)
    cfn, stack = aws("cloudformation"), f"lg-{uuid.uuid4().hex[:8]}"
    cfn.create_stack(StackName=stack, TemplateBody=_template(provider, group, key, 30))
    cfn.delete_stack(StackName=stack)
    assert _group(aws("logs"), group)["kmsKeyId"] == key


def test_a_call_the_providers_role_may_not_make_fails_the_stack_as_on_aws(aws) -> None:
    """The call is made as the provider function's role: without logs:AssociateKmsKey the embedded IAM refuses
    it, and the deploy fails with CloudFormation's message for a FAILED custom resource."""
    group, key, provider = _setup(aws, ["logs:CreateLogGroup", "logs:PutRetentionPolicy"])
    aws("logs").create_log_group(logGroupName=group)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        aws("cloudformation").create_stack(
            StackName=f"lg-{uuid.uuid4().hex[:8]}", TemplateBody=_template(provider, group, key, 30)
        )
    message = str(raised.value)
    assert "Received response status [FAILED] from custom resource" in message
    assert "not authorized to perform: logs:AssociateKmsKey" in message
    assert "kmsKeyId" not in _group(aws("logs"), group)


def test_a_key_cloudwatch_logs_may_not_use_is_refused_as_on_aws(aws) -> None:
    logs, kms, name = aws("logs"), aws("kms"), f"/trainstack-test/{uuid.uuid4().hex}"
    key = kms.create_key(Policy=_key_policy(logs_may_use_it=False))["KeyMetadata"]["Arn"]
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        logs.create_log_group(logGroupName=name, kmsKeyId=key)
    logs.create_log_group(logGroupName=name)
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        logs.associate_kms_key(logGroupName=name, kmsKeyId=key)
