"""Each adapter does what AWS does, through the embedded endpoint (see test_embedded_aws_upstream_gaps.py for
the matching "moto alone still lacks it" checks)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest

from trainstack.config import load_environment
from trainstack.embedded_aws.cloudformation_template_url import bucket_and_key
from trainstack.embedded_aws.sagemaker_quotas import load_code_table, quota_name, synthesized_code
from trainstack.embedded_aws.testing import ROLE, unique, wait_for_execution


def run_machine(
    aws: Any, definition: dict[str, Any], execution_input: dict[str, Any] | None = None, name: str | None = "run"
) -> dict[str, Any]:
    sfn = aws.client("stepfunctions")
    arn = sfn.create_state_machine(name=unique("m"), definition=json.dumps(definition), roleArn=ROLE)
    kwargs = {"name": name} if name else {}
    started = sfn.start_execution(
        stateMachineArn=arn["stateMachineArn"], input=json.dumps(execution_input or {}), **kwargs
    )
    return wait_for_execution(sfn, started["executionArn"])


# --- JSONata (jsonata_evaluator.py) --------------------------------------------------------------------------

JSONATA_MACHINE = {
    "QueryLanguage": "JSONata",
    "StartAt": "Prepare",
    "States": {
        "Prepare": {
            "Type": "Pass",
            "Assign": {"count": "{% $count($states.input.items) %}", "label": "{% 'run-' & $states.input.label %}"},
            "Output": {
                "executionName": "{% $states.context.Execution.Name %}",
                "executionId": "{% $states.context.Execution.Id %}",
                "started": "{% $states.context.Execution.StartTime %}",
                "entered": "{% $states.context.State.EnteredTime %}",
                "doubled": "{% $map($states.input.items, function($v) { $v * 2 }) %}",
            },
            "Next": "Decide",
        },
        "Decide": {
            "Type": "Choice",
            "Choices": [{"Condition": "{% $count > 2 %}", "Next": "TooMany"}],
            "Default": "Flaky",
        },
        "TooMany": {"Type": "Fail", "Error": "{% 'TooMany' %}", "Cause": "{% 'got ' & $string($count) & ' items' %}"},
        "Flaky": {
            # A task that always fails: Retry counts, then Catch exposes $states.errorOutput.
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:servicequotas:getServiceQuota",
            "Arguments": {"ServiceCode": "sagemaker", "QuotaCode": "{% 'L-' & 'NOPE0000' %}"},
            "Retry": [
                {"ErrorEquals": ["ServiceQuotas.NoSuchResourceException"], "MaxAttempts": 1, "IntervalSeconds": 1}
            ],
            "Catch": [
                {
                    "ErrorEquals": ["States.ALL"],
                    "Next": "Done",
                    "Output": {
                        "error": "{% $states.errorOutput.Error %}",
                        "label": "{% $label %}",
                        "kept": "{% $states.input.doubled %}",
                    },
                }
            ],
            "End": True,
        },
        "Done": {"Type": "Pass", "End": True},
    },
}


def test_jsonata_arguments_output_assign_context_choice_and_catch(embedded_aws: Any) -> None:
    result = run_machine(embedded_aws, JSONATA_MACHINE, {"items": [1, 2], "label": "a"})
    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    assert output == {"error": "ServiceQuotas.NoSuchResourceException", "label": "run-a", "kept": [2, 4]}


def test_jsonata_context_and_fail_expressions(embedded_aws: Any) -> None:
    machine = json.loads(json.dumps(JSONATA_MACHINE))
    machine["States"]["Prepare"]["Next"] = "Show"
    machine["States"]["Show"] = {"Type": "Pass", "Next": "Decide"}
    result = run_machine(embedded_aws, machine, {"items": [1, 2, 3], "label": "b"}, name="ctx-run")
    assert result["status"] == "FAILED"
    assert (result["error"], result["cause"]) == ("TooMany", "got 3 items")
    history = embedded_aws.client("stepfunctions").get_execution_history(executionArn=result["executionArn"])
    exited = next(e for e in history["events"] if e["type"] == "PassStateExited")
    shown = json.loads(exited["stateExitedEventDetails"]["output"])
    assert shown["executionName"] == "ctx-run"
    assert shown["executionId"] == result["executionArn"]
    assert shown["started"].startswith("20") and shown["entered"].startswith("20")
    assert shown["doubled"] == [2, 4, 6]


def test_retry_count_is_in_the_context(embedded_aws: Any) -> None:
    machine = {
        "QueryLanguage": "JSONata",
        "StartAt": "Try",
        "States": {
            "Try": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:servicequotas:getServiceQuota",
                "Arguments": {"ServiceCode": "sagemaker", "QuotaCode": "L-NOPE0000"},
                "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 1}],
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Next": "Done",
                        "Output": {"retries": "{% $states.context.State.RetryCount %}"},
                    }
                ],
                "End": True,
            },
            "Done": {"Type": "Pass", "End": True},
        },
    }
    result = run_machine(embedded_aws, machine)
    assert json.loads(result["output"]) == {"retries": 2}


def _assign_then_output(variable: str, expression: str) -> dict[str, Any]:
    """State A assigns `$<variable>` from `expression`; state B outputs `{variable: $<variable>}`."""
    return {
        "QueryLanguage": "JSONata",
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Assign": {variable: expression}, "Next": "B"},
            "B": {"Type": "Pass", "Output": {variable: f"{{% ${variable} %}}"}, "End": True},
        },
    }


def test_string_variables_with_quotes_survive(embedded_aws: Any) -> None:
    machine = _assign_then_output("text", "{% $states.input.text %}")
    tricky = 'say "hi"\nand \\ leave'
    assert json.loads(run_machine(embedded_aws, machine, {"text": tricky})["output"]) == {"text": tricky}


def test_a_variable_named_like_the_function_moto_checks_a_result_with_is_still_a_variable(embedded_aws: Any) -> None:
    """moto checks a string result with `$type((<bindings>; <expression>))`; the evaluator binds the variables in a
    frame around that, except where the wrapper names one of them: `$type` there is JSONata's function."""
    result = run_machine(embedded_aws, _assign_then_output("type", "{% 'ml.g5.xlarge' %}"))
    assert json.loads(result["output"]) == {"type": "ml.g5.xlarge"}, result


def test_unnamed_executions_get_a_uuid_name(embedded_aws: Any) -> None:  # execution_names.py
    machine = {
        "QueryLanguage": "JSONata",
        "StartAt": "A",
        "States": {"A": {"Type": "Pass", "Output": {"name": "{% $states.context.Execution.Name %}"}, "End": True}},
    }
    result = run_machine(embedded_aws, machine, name=None)
    name = json.loads(result["output"])["name"]
    assert len(name) == 36 and result["executionArn"].endswith(f":{name}")


# --- CloudFormation's AWS::NoValue in a list (cloudformation_no_value.py) -------------------------------------


def test_a_no_value_statement_is_dropped_and_the_role_is_refused_not_broken(embedded_aws: Any) -> None:
    """The CDK bootstrap template's trust policies: a Statement element that is `Fn::If` ... `AWS::NoValue`
    disappears, as on AWS; moto kept a null there and every AssumeRole of the role answered 500."""
    statement = {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
    trusted = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "sts:AssumeRole"}
    template = {
        "Conditions": {"HasTrustedAccounts": {"Fn::Equals": ["none", "some"]}},
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            statement,
                            {"Fn::If": ["HasTrustedAccounts", trusted, {"Ref": "AWS::NoValue"}]},
                        ],
                    }
                },
            }
        },
    }
    cloudformation = embedded_aws.client("cloudformation")
    stack = unique("novalue")
    cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    role = cloudformation.describe_stack_resource(StackName=stack, LogicalResourceId="Role")
    name = role["StackResourceDetail"]["PhysicalResourceId"]
    document = embedded_aws.client("iam").get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
    assert document["Statement"] == [statement]
    arn = embedded_aws.client("iam").get_role(RoleName=name)["Role"]["Arn"]
    with pytest.raises(embedded_aws.client("sts").exceptions.ClientError) as refused:
        embedded_aws.client("sts").assume_role(RoleArn=arn, RoleSessionName="probe")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


# --- aws-sdk integrations (aws_sdk_service_names.py) ----------------------------------------------------------


def _one_task(resource: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A JSONata machine of one Task state on `arn:aws:states:::<resource>`; its result is the output."""
    task = {"Type": "Task", "Resource": f"arn:aws:states:::{resource}", "Arguments": arguments, "End": True}
    return {"QueryLanguage": "JSONata", "StartAt": "T", "States": {"T": task}}


@pytest.mark.parametrize(
    ("resource", "arguments", "expect_key"),
    [
        ("aws-sdk:servicequotas:getServiceQuota", {"ServiceCode": "sagemaker", "QuotaCode": "L-33A961FD"}, "Quota"),
        (
            "aws-sdk:servicequotas:getAWSDefaultServiceQuota",
            {"ServiceCode": "sagemaker", "QuotaCode": "L-33A961FD"},
            "Quota",
        ),
        ("aws-sdk:servicequotas:listServiceQuotas", {"ServiceCode": "sagemaker", "MaxResults": 5}, "NextToken"),
        ("aws-sdk:sagemaker:listTrainingJobs", {"WarmPoolStatusEquals": "Available"}, "TrainingJobSummaries"),
    ],
)
def test_aws_sdk_integrations_answer(embedded_aws: Any, resource: str, arguments: dict, expect_key: str) -> None:
    result = run_machine(embedded_aws, _one_task(resource, arguments))
    assert result["status"] == "SUCCEEDED", result
    assert expect_key in json.loads(result["output"])


def test_aws_sdk_results_hold_timestamps_as_aws_writes_them(embedded_aws: Any) -> None:
    """step_functions_sdk_timestamps.py: a result with a timestamp in it (an object's LastModified) reaches the
    output as AWS's ISO 8601 string; moto's datetime made DescribeExecution answer 500."""
    s3 = embedded_aws.client("s3")
    bucket = unique("stamps")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    result = run_machine(embedded_aws, _one_task("aws-sdk:s3:listObjectsV2", {"Bucket": bucket}))
    assert result["status"] == "SUCCEEDED", result
    modified = json.loads(result["output"])["Contents"][0]["LastModified"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", modified), modified


def test_aws_sdk_sns_publish(embedded_aws: Any) -> None:
    topic = embedded_aws.client("sns").create_topic(Name=unique("t"))["TopicArn"]
    arguments = {"TopicArn": topic, "Message": "{% 'hello' %}"}
    result = run_machine(embedded_aws, _one_task("aws-sdk:sns:publish", arguments))
    assert "MessageId" in json.loads(result["output"])


# --- SageMaker quotas (sagemaker_quotas.py) ------------------------------------------------------------------


def test_quotas_come_from_the_local_config(embedded_aws: Any) -> None:
    quotas = embedded_aws.client("service-quotas")
    config = load_environment("local").quotas
    codes = load_code_table()["instance_types"]["ml.m5.xlarge"]
    applied = quotas.get_service_quota(ServiceCode="sagemaker", QuotaCode=codes["training_job_usage"])["Quota"]
    assert applied["QuotaName"] == "ml.m5.xlarge for training job usage"
    assert applied["Value"] == config.instances["ml.m5.xlarge"].training_job_usage
    longest = quotas.get_service_quota(ServiceCode="sagemaker", QuotaCode="L-33A961FD")["Quota"]
    assert (longest["QuotaName"], longest["Value"]) == (
        "Longest run time for a training job",
        config.longest_run_time_seconds,
    )


def test_unraised_quota_has_no_applied_value_but_a_default(embedded_aws: Any) -> None:
    quotas = embedded_aws.client("service-quotas")
    code = load_code_table()["instance_types"]["ml.m5.2xlarge"]["training_warm_pool_usage"]  # 0 in local.yaml
    with pytest.raises(quotas.exceptions.NoSuchResourceException):
        quotas.get_service_quota(ServiceCode="sagemaker", QuotaCode=code)
    default = quotas.get_aws_default_service_quota(ServiceCode="sagemaker", QuotaCode=code)["Quota"]
    assert default["Value"] == 0.0


def test_unknown_quota_code_is_no_such_resource(embedded_aws: Any) -> None:
    quotas = embedded_aws.client("service-quotas")
    with pytest.raises(quotas.exceptions.NoSuchResourceException):
        quotas.get_aws_default_service_quota(ServiceCode="sagemaker", QuotaCode="L-00000000")


def test_types_missing_from_the_table_are_found_by_name_with_pagination(embedded_aws: Any) -> None:
    quotas = embedded_aws.client("service-quotas")
    assert "ml.p4de.24xlarge" not in load_code_table()["instance_types"]
    pages = list(
        quotas.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker", PaginationConfig={"PageSize": 50})
    )
    assert len(pages) > 2
    by_name = {quota["QuotaName"]: quota for page in pages for quota in page["Quotas"]}
    name = quota_name("ml.p4de.24xlarge", "training_warm_pool_usage")
    assert by_name[name]["QuotaCode"] == synthesized_code(name)
    assert (
        by_name[name]["Value"]
        == load_environment("local").quotas.instances["ml.p4de.24xlarge"].training_warm_pool_usage
    )


def test_other_services_quotas_still_come_from_moto(embedded_aws: Any) -> None:
    quotas = embedded_aws.client("service-quotas").list_aws_default_service_quotas(ServiceCode="vpc")["Quotas"]
    assert quotas and all(quota["ServiceCode"] == "vpc" for quota in quotas)


# --- CloudFormation (cloudformation_*.py) --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://s3.us-east-1.amazonaws.com/my-bucket/a/b.json",
        "https://my-bucket.s3.us-east-1.amazonaws.com/a/b.json",
        "https://my-bucket.s3.amazonaws.com/a/b.json",
        "https://s3.amazonaws.com/my-bucket/a/b.json",
        "http://127.0.0.1:4566/my-bucket/a/b.json",
        "http://localhost:4566/my-bucket/a/b.json",
    ],
)
def test_template_urls_of_every_shape_resolve(url: str) -> None:
    assert bucket_and_key(url) == ("my-bucket", "a/b.json")


def _template_in_s3(aws: Any, template: dict[str, Any]) -> str:
    bucket = unique("templates")
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="t.json", Body=json.dumps(template))
    return f"{aws.endpoint_url}/{bucket}/t.json"


def test_change_sets_from_template_urls_export_outputs_to_the_next_stack(embedded_aws: Any) -> None:
    cfn = embedded_aws.client("cloudformation")
    export = unique("exported-topic")
    first = {
        "Resources": {"T": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"Arn": {"Value": {"Ref": "T"}, "Export": {"Name": export}}},
    }
    second = {
        "Resources": {
            "Q": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"Tags": [{"Key": "topic", "Value": {"Fn::ImportValue": export}}]},
            }
        }
    }
    for stack, template in ((unique("first"), first), (unique("second"), second)):
        cfn.create_change_set(
            StackName=stack,
            ChangeSetName="cdk-deploy-change-set",
            ChangeSetType="CREATE",
            TemplateURL=_template_in_s3(embedded_aws, template),
        )
        cfn.execute_change_set(StackName=stack, ChangeSetName="cdk-deploy-change-set")
        assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    exports = {item["Name"]: item["Value"] for item in cfn.list_exports()["Exports"]}
    assert exports[export].startswith("arn:aws:sns:")


def test_cloudformation_state_machines_execute(embedded_aws: Any) -> None:
    cfn = embedded_aws.client("cloudformation")
    name = unique("cfn-machine")
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "A",
        "States": {"A": {"Type": "Pass", "Output": "{% $states.input.x + 1 %}", "End": True}},
    }
    template = {
        "Resources": {
            "M": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {"StateMachineName": name, "RoleArn": ROLE, "DefinitionString": json.dumps(definition)},
            }
        }
    }
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    sfn = embedded_aws.client("stepfunctions")
    arn = f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}"
    started = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"x": 41}))
    assert wait_for_execution(sfn, started["executionArn"])["output"] == "42"


def test_cloudformation_kms_keys_keep_their_tags(embedded_aws: Any) -> None:
    cfn = embedded_aws.client("cloudformation")
    name = unique("kms")
    template = {
        "Resources": {
            "K": {
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "KeyPolicy": {"Version": "2012-10-17", "Statement": []},
                    "Tags": [{"Key": "team", "Value": "ml"}],
                },
            }
        }
    }
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    key_id = cfn.describe_stack_resource(StackName=name, LogicalResourceId="K")["StackResourceDetail"][
        "PhysicalResourceId"
    ]
    assert embedded_aws.client("kms").describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id
    tags = embedded_aws.client("kms").list_resource_tags(KeyId=key_id)["Tags"]
    assert {"TagKey": "team", "TagValue": "ml"} in tags


def test_validate_state_machine_definition_reports_what_it_can_check(embedded_aws: Any) -> None:
    sfn = embedded_aws.client("stepfunctions")
    good = {
        "QueryLanguage": "JSONata",
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Output": "{% 1 %}", "End": True}},
    }
    assert sfn.validate_state_machine_definition(definition=json.dumps(good))["result"] == "OK"
    bad = {
        "QueryLanguage": "JSONata",
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Output": "{% 1 + %}", "Next": "Missing"}},
    }
    answer = sfn.validate_state_machine_definition(definition=json.dumps(bad))
    assert answer["result"] == "FAIL"
    found = {(d["code"], d.get("location")) for d in answer["diagnostics"]}
    assert ("MISSING_TRANSITION_TARGET", "/States/P/Next") in found
    assert ("SCHEMA_VALIDATION_FAILED", "/States/P/Output") in found
    wrong_type = {"StartAt": "P", "States": {"P": {"Type": "Bogus", "End": True}}}
    assert sfn.validate_state_machine_definition(definition=json.dumps(wrong_type))["result"] == "FAIL"
    assert sfn.validate_state_machine_definition(definition="{not json")["diagnostics"][0]["code"] == (
        "INVALID_JSON_DESCRIPTION"
    )


def test_an_unsupported_resource_type_is_named_once_in_plain_words(
    embedded_aws: Any, caplog: pytest.LogCaptureFixture
) -> None:  # cloudformation_unsupported_types.py
    template = {"Resources": {f"T{i}": {"Type": "AWS::Bedrock::Agent", "Properties": {}} for i in range(3)}}
    cfn = embedded_aws.client("cloudformation")
    with caplog.at_level("WARNING"):
        for index in range(2):
            cfn.create_stack(StackName=unique(f"unsupported-{index}"), TemplateBody=json.dumps(template))
    lines = [r.getMessage() for r in caplog.records if "AWS::Bedrock::Agent" in r.getMessage()]
    assert lines == [
        "embedded AWS: AWS::Bedrock::Agent resources are accepted but not created (no local equivalent); "
        "see trainstack/embedded_aws/README.md"
    ]
    assert not any("No Moto CloudFormation support" in r.getMessage() for r in caplog.records)


def _output_machine(output: dict[str, str]) -> dict[str, Any]:
    """A JSONata machine of one Pass state whose output is `output`."""
    return {
        "QueryLanguage": "JSONata",
        "StartAt": "Hash",
        "States": {"Hash": {"Type": "Pass", "Output": output, "End": True}},
    }


def test_jsonata_hash_is_the_digest_step_functions_computes(embedded_aws: Any) -> None:  # jsonata_hash.py
    machine = _output_machine(
        {"sha256": "{% $hash($states.input.text, 'SHA-256') %}", "md5": "{% $hash($states.input.text, 'MD5') %}"}
    )
    result = run_machine(embedded_aws, machine, {"text": "trainstack"})
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {
        "sha256": hashlib.sha256(b"trainstack").hexdigest(),
        "md5": hashlib.md5(b"trainstack").hexdigest(),
    }


# --- History limit (step_functions_history_limit.py) ---------------------------------------------------------


def _counting_loop(iterations: int) -> dict[str, Any]:
    """1 + 4 × `iterations` + 2 events before ExecutionSucceeded: ExecutionStarted, Pass and Choice (entered,
    exited) per iteration, then the Succeed state. JSONPath: the cheapest steps moto evaluates."""
    return {
        "StartAt": "Count",
        "States": {
            "Count": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)"}, "Next": "More"},
            "More": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.i", "NumericLessThan": iterations, "Next": "Count"}],
                "Default": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }


@pytest.mark.slow
def test_the_history_ends_at_25000_events_as_on_aws(embedded_aws: Any) -> None:
    """Event 25,000 may be ExecutionSucceeded; any other makes it ExecutionFailed with States.Runtime."""
    from trainstack.embedded_aws.step_functions_history_limit import CAUSE, MAX_HISTORY_EVENTS

    sfn = embedded_aws.client("stepfunctions")
    started = {}
    # 6,249 iterations: 1 + 24,996 + 2 = 24,999 events, then ExecutionSucceeded is the 25,000th.
    # One more iteration: the 25,000th would be the Choice state's entry, so the execution fails there.
    for iterations in (6249, 6250):
        machine = sfn.create_state_machine(
            name=unique("history"), definition=json.dumps(_counting_loop(iterations)), roleArn=ROLE
        )["stateMachineArn"]
        started[iterations] = sfn.start_execution(stateMachineArn=machine, input='{"i": 0}')["executionArn"]
    for iterations, arn in started.items():
        described = wait_for_execution(sfn, arn, timeout=300)
        pages = sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
        events = [event for page in pages for event in page["events"]]
        assert len(events) == MAX_HISTORY_EVENTS, iterations
        if iterations == 6249:
            assert described["status"] == "SUCCEEDED"
            assert events[-1]["type"] == "ExecutionSucceeded"
        else:
            assert (described["status"], described["error"], described["cause"]) == ("FAILED", "States.Runtime", CAUSE)
            assert events[-1]["type"] == "ExecutionFailed"
            assert events[-1]["executionFailedEventDetails"] == {"error": "States.Runtime", "cause": CAUSE}


# --- History pages (step_functions_history_pages.py) ---------------------------------------------------------


def _moto_serialized_history(execution_arn: str) -> list[dict[str, Any]]:
    """The history as moto's own serializer writes it, parsed by botocore as a client would."""
    from botocore.parsers import create_parser
    from moto.core.responses import ActionContext, ActionResult
    from moto.core.serialize import get_serializer_class
    from moto.core.utils import get_service_model
    from moto.stepfunctions.responses import StepFunctionResponse, get_backend

    _, _, _, region, account, *_ = execution_arn.split(":")
    service = get_service_model("stepfunctions")
    operation = service.operation_model("GetExecutionHistory")
    history = get_backend(account, region).get_execution_history(execution_arn)
    context = ActionContext(service, operation, get_serializer_class("stepfunctions", "json"), StepFunctionResponse())
    _, headers, body = ActionResult(history).execute_result(context)
    response = {"body": body.encode(), "headers": headers, "status_code": 200}
    return create_parser("json").parse(response, operation.output_shape)["events"]


def test_the_history_comes_in_pages_as_moto_would_write_it_whole(embedded_aws: Any) -> None:
    """Map iterations, a caught task failure, Choice, Pass and Fail: paged forwards and backwards, the events
    are the ones moto's serializer writes; 0 means 100; more than 1000, or a token for other arguments, is
    refused as AWS refuses it; without execution data no event carries input or output."""
    sfn = embedded_aws.client("stepfunctions")
    caught_task = {
        **JSONATA_MACHINE["States"]["Flaky"],
        "Retry": [],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Stop"}],
    }
    machine = {
        "QueryLanguage": "JSONata",
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "Items": "{% $states.input.items %}",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Double",
                    "States": {"Double": {"Type": "Pass", "Output": "{% $states.input * 2 %}", "End": True}},
                },
                "Next": "Flaky",
            },
            "Flaky": caught_task,
            "Stop": {"Type": "Fail", "Error": "Stopped", "Cause": "after the map"},
        },
    }
    result = run_machine(embedded_aws, machine, {"items": list(range(40))})
    arn = result["executionArn"]
    whole = _moto_serialized_history(arn)
    assert len(whole) > 100 and {"MapIterationStarted", "TaskFailed", "ExecutionFailed"} <= {e["type"] for e in whole}

    def paged(**arguments: Any) -> list[dict[str, Any]]:
        pages = sfn.get_paginator("get_execution_history").paginate(executionArn=arn, **arguments)
        return [event for page in pages for event in page["events"]]

    assert paged(PaginationConfig={"PageSize": 7}) == whole
    assert paged(reverseOrder=True, PaginationConfig={"PageSize": 1000}) == whole[::-1]
    first = sfn.get_execution_history(executionArn=arn, maxResults=0)
    assert first["events"] == whole[:100] and "nextToken" in first

    bare = paged(includeExecutionData=False)
    assert [e["id"] for e in bare] == [e["id"] for e in whole]
    assert not any(
        key in details
        for event in bare
        for details in event.values()
        if isinstance(details, dict)
        for key in ("input", "output")
    )
    with pytest.raises(sfn.exceptions.ClientError, match="less than or equal to 1000"):
        sfn.get_execution_history(executionArn=arn, maxResults=1001)
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.get_execution_history(executionArn=arn, nextToken=first["nextToken"], reverseOrder=True)
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.get_execution_history(executionArn=arn, nextToken="not-a-token")


def test_the_watcher_reads_a_history_longer_than_a_page(embedded_aws: Any) -> None:
    """`run --watch` (trainstack/progress.py) once read one page of 1,000 events: on AWS a run that waited for
    capacity for hours showed nothing after its 1,000th event. It reads newest first back to what it saw."""
    from trainstack.progress import RunWatcher

    sfn = embedded_aws.client("stepfunctions")
    machine = sfn.create_state_machine(name=unique("long"), definition=json.dumps(_counting_loop(300)), roleArn=ROLE)[
        "stateMachineArn"
    ]
    arn = sfn.start_execution(stateMachineArn=machine, input='{"i": 0}')["executionArn"]
    lines: list[str] = []
    watcher = RunWatcher(embedded_aws.client, arn, on_line=lines.append)
    watcher.poll()
    wait_for_execution(sfn, arn)
    watcher.poll()
    states = [line.split()[-1] for line in lines if line.startswith("state")]
    assert states == ["Count", "More"] * 300 + ["Done"]


def test_a_task_starts_an_execution_and_reads_its_arn(embedded_aws: Any) -> None:
    """What ContinueRun relies on (run_continuation.py; step_functions_start_execution.py): the optimized
    `states:startExecution` takes PascalCase arguments with an object Input and answers `ExecutionArn`; and
    `run --watch` (trainstack/progress.py) follows an execution that ended "Continued" into the next one."""
    from trainstack.progress import RunWatcher

    sfn = embedded_aws.client("stepfunctions")
    child = sfn.create_state_machine(
        name=unique("child"),
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn=ROLE,
    )["stateMachineArn"]
    name = unique("continued")
    parent = {
        "QueryLanguage": "JSONata",
        "StartAt": "Continue",
        "States": {
            "Continue": {
                "Type": "Task",
                "Resource": "arn:aws:states:::states:startExecution",
                "Arguments": {"StateMachineArn": child, "Name": name, "Input": {"carried": {"n": 1}}},
                "Output": '{% {"status": "Continued", "continuedIn": $states.result.ExecutionArn} %}',
                "End": True,
            }
        },
    }
    described = run_machine(embedded_aws, parent)
    assert described["status"] == "SUCCEEDED", described
    started = json.loads(described["output"])["continuedIn"]
    assert started.endswith(f":{name}")
    assert json.loads(sfn.describe_execution(executionArn=started)["input"]) == {"carried": {"n": 1}}

    lines: list[str] = []
    followed = RunWatcher(embedded_aws.client, described["executionArn"], on_line=lines.append).poll()
    assert followed["executionArn"] == started and any(f"continued in {name}" in line for line in lines)


def test_jsonata_hash_digests_the_utf8_of_an_emoji_named_execution(embedded_aws: Any) -> None:  # jsonata_hash.py
    # Step Functions accepts an emoji in an execution name; JSONata holds it as a surrogate pair.
    machine = _output_machine(
        {
            "name": "{% $hash($states.context.Execution.Name, 'SHA-256') %}",
            "text": "{% $hash($states.input.text, 'MD5') %}",
        }
    )
    name = f"run-\N{GRINNING FACE}-{unique('e')}"
    result = run_machine(embedded_aws, machine, {"text": "\N{ROCKET} über"}, name=name)
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {
        "name": hashlib.sha256(name.encode("utf-8")).hexdigest(),
        "text": hashlib.md5("\N{ROCKET} über".encode()).hexdigest(),
    }


# --- StartExecution as AWS checks it (execution_names.py, execution_input_limits.py) ------------------------

PASS_MACHINE = {"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("a\u00a0b", "InvalidName"),  # no-break space: white space, which moto checks only as U+0020
        ("a\u2003b", "InvalidName"),
        ("a\ufffeb", "InvalidName"),
        ("a\uffffb", "InvalidName"),
        ("a b", "InvalidName"),
        ("a\u0000b", "InvalidName"),
        ("a\u0085b", "InvalidName"),
        ("run:1", "InvalidName"),
        ("run/1", "InvalidName"),
        ("run{1}", "InvalidName"),
        ("\N{GRINNING FACE}" * 41, "ValidationException"),  # 82 UTF-16 units: over 80
    ],
)
def test_execution_names_step_functions_refuses_are_refused(embedded_aws: Any, name: str, error: str) -> None:
    sfn = embedded_aws.client("stepfunctions")
    arn = sfn.create_state_machine(name=unique("m"), definition=json.dumps(PASS_MACHINE), roleArn=ROLE)
    with pytest.raises(sfn.exceptions.ClientError) as refused:
        sfn.start_execution(stateMachineArn=arn["stateMachineArn"], name=name, input="{}")
    assert refused.value.response["Error"]["Code"] == error


def test_an_emoji_name_of_80_utf16_units_is_accepted(embedded_aws: Any) -> None:
    result = run_machine(embedded_aws, PASS_MACHINE, name="\N{GRINNING FACE}" * 40)
    assert result["status"] == "SUCCEEDED", result


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_execution_input_over_256_kib_or_1000_levels_deep_is_refused_at_start(embedded_aws: Any) -> None:
    sfn = embedded_aws.client("stepfunctions")
    arn = sfn.create_state_machine(name=unique("m"), definition=json.dumps(PASS_MACHINE), roleArn=ROLE)[
        "stateMachineArn"
    ]
    cases = [
        (
            json.dumps({"x": "é" * 131070}, ensure_ascii=False),
            "ValidationException",
            "Member must have length less than or equal to 262144",
        ),
        (
            json.dumps({"x": json.loads(_nested(1000))}),
            "InvalidExecutionInput",
            "nesting depth (1001) exceeds the maximum allowed (1000)",
        ),
        (json.dumps({"tags": json.loads(_nested(2999))}), "InvalidExecutionInput", "(3000)"),
    ]
    for text, code, message in cases:
        with pytest.raises(sfn.exceptions.ClientError) as refused:
            sfn.start_execution(stateMachineArn=arn, name=unique("n"), input=text)
        assert refused.value.response["Error"]["Code"] == code and message in refused.value.response["Error"]["Message"]
    # The limits themselves are accepted, and the evaluator walks 1,000 levels without a RecursionError.
    machine = {
        "QueryLanguage": "JSONata",
        "StartAt": "A",
        "States": {"A": {"Type": "Pass", "Output": "{% $length($string($states.input)) %}", "End": True}},
    }
    deepest = json.loads(_nested(999))
    assert json.loads(run_machine(embedded_aws, machine, {"x": deepest})["output"]) == len(
        json.dumps({"x": deepest}, separators=(",", ":"))
    )
    fits = json.dumps({"x": "x" * 262130})  # moto sizes a state's output with é escaped: ASCII here
    assert len(fits.encode()) <= 262144
    started = sfn.start_execution(stateMachineArn=arn, name=unique("n"), input=fits)
    assert wait_for_execution(sfn, started["executionArn"])["status"] == "SUCCEEDED"
