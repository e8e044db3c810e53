"""Probe plain moto (no adapters) for each gap our adapters close; prints one JSON object.

Run in a fresh interpreter (`python -m trainstack.embedded_aws.upstream_gaps`): the adapters patch moto
process-wide, so only a process that never imported them sees moto as shipped. The tests assert that each
gap is still there; when a moto upgrade closes one, its test fails and names the adapter to drop.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

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
    return {"arn": execution, "status": described["status"], "error": described.get("error"), "cause": cause}


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
        # moto cannot evaluate JSONata as shipped, so read the declaration it would prepend for `$hash`.
        "jsonata_hash_declaration": get_intrinsic_functions_declarations({"$hash"}),
        "validate_definition_error": _error(
            lambda: _client(url, "stepfunctions").validate_state_machine_definition(definition=json.dumps(_PASS))
        ),
    }


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
    return {
        "template_url_errors": template_url_errors,
        "cfn_state_machine_start_error": _error(
            lambda: _client(url, "stepfunctions").start_execution(stateMachineArn=arn)
        ),
        "change_set_exports": [export["Name"] for export in cfn.list_exports()["Exports"]],
        "kms_key_tags_error": _error(
            lambda: cfn.create_stack(StackName="probe-kms", TemplateBody=json.dumps({"Resources": {"K": key}}))
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
        return {**_probe_step_functions(url), **_probe_sagemaker(url), **_probe_cloudformation(url)}
    finally:
        server.stop()


if __name__ == "__main__":
    json.dump(probe(), sys.stdout, indent=1)
