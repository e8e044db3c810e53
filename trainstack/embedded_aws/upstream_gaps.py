"""Probe plain moto (no adapters) for each gap our adapters close; prints one JSON object.

Run in a fresh interpreter (`python -m trainstack.embedded_aws.upstream_gaps`): the adapters patch moto
process-wide, so only a process that never imported them sees moto as shipped. The tests assert that each
gap is still there; when a moto upgrade closes one, its test fails and names the adapter to drop.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import boto3
from moto.core.config import default_user_config
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.stepfunctions.parser.asl.component.intrinsic.jsonata import get_intrinsic_functions_declarations

from .json_protocol import endpoint_client

_ACCOUNT = "123456789012"
_ROLE = f"arn:aws:iam::{_ACCOUNT}:role/probe"
_PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}


def _client(url: str, service: str) -> Any:
    return endpoint_client(url, "us-east-1", service)


def _error(call: Callable[[], Any]) -> str | None:
    try:
        call()
    except Exception as error:  # the probe reports whatever moto does
        return f"{type(error).__name__}: {error}"[:300]
    return None


def _task(resource: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": resource, "Parameters": parameters, "End": True}},
    }


def _run_machine(url: str, definition: dict[str, Any], name: str | None = "probe") -> dict[str, Any]:
    sfn = _client(url, "stepfunctions")
    arn = sfn.create_state_machine(name=f"p{time.time_ns()}", definition=json.dumps(definition), roleArn=_ROLE)
    kwargs = {"name": name} if name else {}
    execution = sfn.start_execution(stateMachineArn=arn["stateMachineArn"], input="{}", **kwargs)["executionArn"]
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        time.sleep(0.1)
    cause = (described.get("cause") or "")[:300]
    output = (described.get("output") or "")[:300]
    return {
        "arn": execution,
        "status": described["status"],
        "error": described.get("error"),
        "cause": cause,
        "output": output,
    }


def _start(url: str, execution_input: str) -> str:
    sfn = _client(url, "stepfunctions")
    arn = sfn.create_state_machine(name=f"p{time.time_ns()}", definition=json.dumps(_PASS), roleArn=_ROLE)
    return sfn.start_execution(stateMachineArn=arn["stateMachineArn"], input=execution_input)["executionArn"]


def _probe_step_functions(url: str) -> dict[str, Any]:
    jsonata = {
        "QueryLanguage": "JSONata",
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Output": "{% 1 + 1 %}", "End": True}},
    }
    quotas = _task("arn:aws:states:::aws-sdk:servicequotas:listAWSDefaultServiceQuotas", {"ServiceCode": "vpc"})
    sync = _task("arn:aws:states:::sagemaker:createTrainingJob.sync", {"TrainingJobName": "probe"})
    return {
        "jsonata": _run_machine(url, jsonata),
        "servicequotas_aws_sdk": _run_machine(url, quotas),
        "sagemaker_sync": _run_machine(url, sync),
        "unnamed_execution_arn": _run_machine(url, _PASS, name=None)["arn"],
        "refused_name_status": _run_machine(url, _PASS, name="a:b")["status"],
        "oversized_input_error": _error(lambda: _start(url, json.dumps({"x": "x" * 262144}))),
        "deep_input_error": _error(lambda: _start(url, "[" * 1001 + "]" * 1001)),
        # moto cannot evaluate JSONata as shipped, so read the declaration it would prepend for `$hash`.
        "jsonata_hash_declaration": get_intrinsic_functions_declarations({"$hash"}),
        "validate_definition_error": _error(
            lambda: _client(url, "stepfunctions").validate_state_machine_definition(definition=json.dumps(_PASS))
        ),
        "test_state_error": _error(
            lambda: _client(url, "stepfunctions").test_state(definition=json.dumps({"Type": "Pass", "End": True}))
        ),
        "history_page": _history_page(url),
        "sdk_timestamp_error": _error(lambda: _run_machine(url, _listed_object(url))),
    }


def _listed_object(url: str) -> dict[str, Any]:
    """A machine whose aws-sdk result holds a timestamp: the LastModified of the one object in a bucket."""
    s3 = _client(url, "s3")
    bucket = f"p{time.time_ns()}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    return _task("arn:aws:states:::aws-sdk:s3:listObjectsV2", {"Bucket": bucket})


def _history_page(url: str) -> dict[str, Any]:
    """What one GetExecutionHistory of maxResults 1 answers for an execution of four events."""
    arn = _run_machine(url, _PASS)["arn"]
    page = _client(url, "stepfunctions").get_execution_history(executionArn=arn, maxResults=1)
    return {"events": len(page["events"]), "next_token": "nextToken" in page}


def _probe_sagemaker(url: str) -> dict[str, Any]:
    quotas = _client(url, "service-quotas")
    sagemaker = _client(url, "sagemaker")
    _client(url, "s3").create_bucket(Bucket="probe-bucket")
    sagemaker.create_training_job(
        TrainingJobName="probe",
        AlgorithmSpecification={"TrainingImage": "image", "TrainingInputMode": "File"},
        RoleArn=_ROLE,
        OutputDataConfig={"S3OutputPath": "s3://probe-bucket/out"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )
    return {
        "sagemaker_quota_error": _error(
            lambda: quotas.get_service_quota(ServiceCode="sagemaker", QuotaCode="L-33A961FD")
        ),
        "training_status_at_once": sagemaker.describe_training_job(TrainingJobName="probe")["TrainingJobStatus"],
        "stop_training_error": _error(lambda: sagemaker.stop_training_job(TrainingJobName="probe")),
    }


def _no_value_statements(url: str) -> list[Any]:
    """The trust policy's statements of a role whose second statement is Fn::If ... AWS::NoValue."""
    allow = {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
    role = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [allow, {"Fn::If": ["Never", allow, {"Ref": "AWS::NoValue"}]}],
            }
        },
    }
    template = {"Conditions": {"Never": {"Fn::Equals": ["a", "b"]}}, "Resources": {"Role": role}}
    cfn = _client(url, "cloudformation")
    cfn.create_stack(StackName="probe-novalue", TemplateBody=json.dumps(template))
    name = cfn.describe_stack_resource(StackName="probe-novalue", LogicalResourceId="Role")["StackResourceDetail"]
    document = _client(url, "iam").get_role(RoleName=name["PhysicalResourceId"])["Role"]["AssumeRolePolicyDocument"]
    return list(document["Statement"])


def _probe_cloudformation(url: str) -> dict[str, Any]:
    s3 = _client(url, "s3")
    cfn = _client(url, "cloudformation")
    topic = {"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}
    s3.put_object(Bucket="probe-bucket", Key="t.json", Body=json.dumps(topic))
    urls = [f"{url}/probe-bucket/t.json", "https://s3.us-east-1.amazonaws.com/probe-bucket/t.json"]
    template_url_errors = {
        template_url: _error(
            lambda u=template_url, i=index: cfn.create_change_set(
                StackName=f"probe-url-{i}", ChangeSetName="c", TemplateURL=u, ChangeSetType="CREATE"
            )
        )
        for index, template_url in enumerate(urls)
    }
    properties = {"StateMachineName": "probe-cfn", "RoleArn": _ROLE, "DefinitionString": json.dumps(_PASS)}
    machine = {"Type": "AWS::StepFunctions::StateMachine", "Properties": properties}
    cfn.create_stack(StackName="probe-sfn", TemplateBody=json.dumps({"Resources": {"M": machine}}))
    arn = f"arn:aws:states:us-east-1:{_ACCOUNT}:stateMachine:probe-cfn"
    exporting = {
        "Resources": {"T": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"O": {"Value": {"Ref": "T"}, "Export": {"Name": "probe-export"}}},
    }
    cfn.create_change_set(
        StackName="probe-exports", ChangeSetName="c", TemplateBody=json.dumps(exporting), ChangeSetType="CREATE"
    )
    cfn.execute_change_set(StackName="probe-exports", ChangeSetName="c")
    key = {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {}, "Tags": [{"Key": "k", "Value": "v"}]}}
    parameter = {"Type": "AWS::SSM::Parameter", "Properties": {"Type": "String", "Value": "v", "Tags": {"k": "v"}}}
    return {
        "template_url_errors": template_url_errors,
        "cfn_state_machine_start_error": _error(
            lambda: _client(url, "stepfunctions").start_execution(stateMachineArn=arn)
        ),
        "change_set_exports": [export["Name"] for export in cfn.list_exports()["Exports"]],
        "kms_key_tags_error": _error(
            lambda: cfn.create_stack(StackName="probe-kms", TemplateBody=json.dumps({"Resources": {"K": key}}))
        ),
        "ssm_parameter_tags_error": _error(
            lambda: cfn.create_stack(StackName="probe-ssm", TemplateBody=json.dumps({"Resources": {"P": parameter}}))
        ),
        "no_value_statements": _no_value_statements(url),
    }


def _probe_logs(url: str) -> dict[str, Any]:
    logs, kms = _client(url, "logs"), _client(url, "kms")
    key = kms.create_key()["KeyMetadata"]["Arn"]  # the default key policy: CloudWatch Logs may not use it
    return {
        "logs_unusable_key_error": _error(lambda: logs.create_log_group(logGroupName="/probe/a", kmsKeyId=key)),
        "logs_associate_kms_key_error": _error(lambda: logs.associate_kms_key(logGroupName="/probe/a", kmsKeyId=key)),
    }


def _probe_iam(url: str) -> dict[str, Any]:
    """A role with no policy at all may still do anything; Step Functions tasks call as nobody in particular."""
    iam = _client(url, "iam")
    iam.create_role(RoleName="probe-empty", AssumeRolePolicyDocument="{}")
    keys = _client(url, "sts").assume_role(RoleArn=f"arn:aws:iam::{_ACCOUNT}:role/probe-empty", RoleSessionName="probe")
    credentials = keys["Credentials"]
    s3 = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    caller = _task("arn:aws:states:::aws-sdk:sts:getCallerIdentity", {})
    return {
        "policyless_role_list_buckets_error": _error(s3.list_buckets),
        "task_caller": _run_machine(url, caller, name="caller"),
    }


def _probe_resource_policies(url: str) -> dict[str, Any]:
    cfn = _client(url, "cloudformation")
    policy = {"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}]}
    template = {
        "Resources": {
            "B": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "probe-policy-bucket"}},
            "BP": {"Type": "AWS::S3::BucketPolicy", "Properties": {"Bucket": {"Ref": "B"}, "PolicyDocument": policy}},
            "T": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "probe-policy-topic"}},
            "TP": {"Type": "AWS::SNS::TopicPolicy", "Properties": {"Topics": [{"Ref": "T"}], "PolicyDocument": policy}},
        }
    }
    cfn.create_stack(StackName="probe-policies", TemplateBody=json.dumps(template))
    s3 = _client(url, "s3")
    s3.create_bucket(Bucket="probe-tls-only")
    tls_only = {
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "s3:*",
                "Resource": ["arn:aws:s3:::probe-tls-only", "arn:aws:s3:::probe-tls-only/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ]
    }
    s3.put_bucket_policy(Bucket="probe-tls-only", Policy=json.dumps(tls_only))
    topic = f"arn:aws:sns:us-east-1:{_ACCOUNT}:probe-policy-topic"
    attributes = _client(url, "sns").get_topic_attributes(TopicArn=topic)["Attributes"]
    return {
        "cfn_bucket_policy_error": _error(lambda: _client(url, "s3").get_bucket_policy(Bucket="probe-policy-bucket")),
        "cfn_topic_policy": attributes.get("Policy", ""),
        # Signed requests over "TLS" are refused: moto ignores the Condition of the TLS-only statement.
        "tls_only_bucket_put_error": _error(lambda: s3.put_object(Bucket="probe-tls-only", Key="k", Body=b"x")),
    }


def _probe_events(url: str) -> dict[str, Any]:
    """Step Functions emits no status-change events; EventBridge cannot start a state machine."""
    events, sqs, sfn = _client(url, "events"), _client(url, "sqs"), _client(url, "stepfunctions")
    queue = sqs.create_queue(QueueName="probe-status-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # The control event shows the rule and queue deliver: only Step Functions' own events are missing.
    events.put_rule(Name="probe-status", EventPattern=json.dumps({"source": ["aws.states", "probe-control"]}))
    events.put_targets(Rule="probe-status", Targets=[{"Id": "q", "Arn": queue_arn}])
    _run_machine(url, _PASS, name="status-events")
    received = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
    events.put_events(Entries=[{"Source": "probe-control", "DetailType": "probe", "Detail": "{}"}])
    control = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
    machine = sfn.create_state_machine(name="probe-target", definition=json.dumps(_PASS), roleArn=_ROLE)
    events.put_rule(Name="probe-target", EventPattern=json.dumps({"source": ["probe"]}))
    events.put_targets(Rule="probe-target", Targets=[{"Id": "m", "Arn": machine["stateMachineArn"], "RoleArn": _ROLE}])
    return {
        "status_change_events_received": len(received),
        "control_events_received": len(control),
        "events_state_machine_target_error": _error(
            lambda: events.put_events(Entries=[{"Source": "probe", "DetailType": "probe", "Detail": "{}"}])
        ),
        "state_machine_target_executions": len(
            sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
        ),
    }


def _probe_deploy_time(url: str) -> dict[str, Any]:
    """An AWS::Lambda-backed Custom::AWS resource never completes (moto invokes the function in Docker and waits
    for its reply); an Amazon Linux 2 notebook instance is created although AWS stopped creating them."""
    import io
    import zipfile

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.js", "exports.handler = async () => {};")
    trust = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    }
    role = _client(url, "iam").create_role(RoleName="probe-provider", AssumeRolePolicyDocument=json.dumps(trust))
    function = _client(url, "lambda").create_function(
        FunctionName="probe-provider", Runtime="nodejs22.x", Role=role["Role"]["Arn"], Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
    )["FunctionArn"]  # fmt: skip
    call = {"service": "@aws-sdk/client-cloudwatch-logs", "action": "CreateLogGroup",
            "parameters": {"logGroupName": "/probe/custom"}, "physicalResourceId": {"id": "/probe/custom"}}  # fmt: skip
    resource = {"Type": "Custom::AWS", "Properties": {"ServiceToken": function, "Create": json.dumps(call)}}
    cfn = _client(url, "cloudformation")
    cfn.create_stack(StackName="probe-custom", TemplateBody=json.dumps({"Resources": {"C": resource}}))
    notebook = {"InstanceType": "ml.t3.medium", "RoleArn": _ROLE, "PlatformIdentifier": "notebook-al2-v3"}
    return {
        "custom_resource_stack_status": cfn.describe_stacks(StackName="probe-custom")["Stacks"][0]["StackStatus"],
        "al2_notebook_error": _error(
            lambda: _client(url, "sagemaker").create_notebook_instance(NotebookInstanceName="probe-al2", **notebook)
        ),
    }


def probe() -> dict[str, Any]:
    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    os.environ["MOTO_PORT"] = str(port)
    try:
        return {
            **_probe_step_functions(url),
            **_probe_sagemaker(url),
            **_probe_cloudformation(url),
            **_probe_logs(url),
            **_probe_iam(url),
            **_probe_resource_policies(url),
            **_probe_events(url),
            **_probe_deploy_time(url),
        }
    finally:
        server.stop()


if __name__ == "__main__":
    # moto prints (e.g. "error running docker" from the custom resource's Lambda thread): keep stdout the JSON.
    with contextlib.redirect_stdout(sys.stderr):
        found = probe()
    json.dump(found, sys.stdout, indent=1)
