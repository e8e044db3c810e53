"""Step Functions `TestState` in the embedded AWS (`step_functions_test_state.py`), through real boto3 calls: one
state runs, what AWS refuses is refused with AWS's answer, and the state's calls are made as its role."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from trainstack.embedded_aws.json_protocol import no_host_prefix
from trainstack.embedded_aws.testing import ROLE, unique

SYNC = "arn:aws:states:::sagemaker:createTrainingJob.sync"
TRAIN = {
    "Type": "Task",
    "QueryLanguage": "JSONata",
    "Resource": SYNC,
    "Arguments": "{% $request %}",
    "Assign": {"job": "{% $states.result %}"},
    "Retry": [{"ErrorEquals": ["SageMaker.ResourceLimitExceededException"], "MaxAttempts": 2}],
    "Catch": [{"ErrorEquals": ["SageMaker.AmazonSageMakerException"], "Next": "TrainRejected"}],
    "Next": "Trained",
}
REQUEST = {"TrainingJobName": "tj-1", "RoleArn": ROLE, "ResourceConfig": {"InstanceType": "ml.m5.xlarge"}}
JOB = {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/tj-1", "TrainingJobStatus": "Completed"}


def _refusal(sfn: Any, **request: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as refused:
        sfn.test_state(**request)
    return refused.value.response["Error"]["Code"], refused.value.response["Error"]["Message"]


@pytest.fixture
def sfn(embedded_aws: Any) -> Any:
    return embedded_aws.client("stepfunctions")


def test_a_pass_state_runs_with_its_input_and_names_its_next_state(sfn: Any) -> None:
    state = {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% $states.input.v * $factor %}", "Next": "N"}
    answer = sfn.test_state(
        definition=json.dumps(state), input='{"v": 21}', variables='{"factor": 2}', inspectionLevel="DEBUG"
    )
    assert (answer["status"], answer["output"], answer["nextState"]) == ("SUCCEEDED", "42", "N")
    assert json.loads(answer["inspectionData"]["input"]) == {"v": 21}
    assert json.loads(answer["inspectionData"]["variables"]) == {"factor": 2}
    info = sfn.test_state(definition=json.dumps(state), input='{"v": 1}', variables='{"factor": 3}')
    assert info["output"] == "3" and "inspectionData" not in info  # INFO, the default, shows no inspection data


def test_a_choice_names_the_branch_and_a_fail_state_fails(sfn: Any) -> None:
    choice = {
        "Type": "Choice",
        "QueryLanguage": "JSONata",
        "Choices": [{"Condition": "{% $states.input.v > 3 %}", "Next": "Big"}],
        "Default": "Small",
    }
    assert sfn.test_state(definition=json.dumps(choice), input='{"v": 4}')["nextState"] == "Big"
    assert sfn.test_state(definition=json.dumps(choice), input='{"v": 2}')["nextState"] == "Small"
    failed = sfn.test_state(definition=json.dumps({"Type": "Fail", "Error": "Bad", "Cause": "why"}))
    assert (failed["status"], failed["error"], failed["cause"]) == ("FAILED", "Bad", "why")
    assert "nextState" not in failed


def test_a_sync_task_with_a_mock_evaluates_its_request_and_calls_nothing(sfn: Any, embedded_aws: Any) -> None:
    answer = sfn.test_state(
        definition=json.dumps(TRAIN),
        variables=json.dumps({"request": REQUEST}),
        mock={"result": json.dumps(JOB)},
        inspectionLevel="DEBUG",
    )
    assert (answer["status"], answer["nextState"]) == ("SUCCEEDED", "Trained")
    data = answer["inspectionData"]
    assert json.loads(data["afterArguments"]) == REQUEST
    assert json.loads(data["result"]) == JOB
    assert json.loads(data["variables"]) == {"request": REQUEST, "job": JOB}
    # The mock stood in for SageMaker: no job was created.
    jobs = embedded_aws.client("sagemaker").list_training_jobs(NameContains="tj-1")["TrainingJobSummaries"]
    assert jobs == []


def test_a_state_named_in_a_whole_state_machine_runs_with_the_machine_query_language(sfn: Any) -> None:
    state = {key: value for key, value in TRAIN.items() if key != "QueryLanguage"}
    machine = {"QueryLanguage": "JSONata", "StartAt": "Train", "States": {"Train": state}}
    answer = sfn.test_state(
        definition=json.dumps(machine),
        stateName="Train",
        variables=json.dumps({"request": REQUEST}),
        mock={"result": json.dumps(JOB)},
        inspectionLevel="DEBUG",
    )
    assert answer["status"] == "SUCCEEDED" and json.loads(answer["inspectionData"]["afterArguments"]) == REQUEST
    code, message = _refusal(sfn, definition=json.dumps(machine), stateName="Missing", mock={"result": "{}"})
    assert code == "InvalidDefinition" and "no state named 'Missing'" in message
    code, _ = _refusal(sfn, definition=json.dumps(machine), mock={"result": "{}"})
    assert code == "InvalidDefinition"  # a whole machine without stateName


def test_a_mocked_error_is_retriable_caught_or_failed_as_the_state_handles_it(sfn: Any) -> None:
    def with_error(error: str) -> dict[str, Any]:
        return sfn.test_state(
            definition=json.dumps(TRAIN),
            variables=json.dumps({"request": REQUEST}),
            mock={"errorOutput": {"error": error, "cause": "the cause"}},
        )

    retried = with_error("SageMaker.ResourceLimitExceededException")
    assert retried["status"] == "RETRIABLE" and retried["error"] == "SageMaker.ResourceLimitExceededException"
    caught = with_error("SageMaker.AmazonSageMakerException")
    assert (caught["status"], caught["nextState"]) == ("CAUGHT_ERROR", "TrainRejected")
    assert json.loads(caught["output"]) == {"Error": "SageMaker.AmazonSageMakerException", "Cause": "the cause"}
    failed = with_error("SageMaker.ResourceNotFoundException")
    assert (failed["status"], failed["cause"]) == ("FAILED", "the cause") and "nextState" not in failed


def test_a_sync_task_without_a_mock_is_refused_and_a_task_needs_a_role(sfn: Any) -> None:
    code, message = _refusal(sfn, definition=json.dumps(TRAIN), roleArn=ROLE)
    assert code == "ValidationException"
    assert "the .sync service integration pattern only when a mock is specified" in message
    callback = {**TRAIN, "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken"}
    assert ".waitForTaskToken" in _refusal(sfn, definition=json.dumps(callback), roleArn=ROLE)[1]
    request_response = {**TRAIN, "Resource": "arn:aws:states:::sagemaker:createTrainingJob"}
    assert _refusal(sfn, definition=json.dumps(request_response)) == (
        "ValidationException",
        "RoleArn must be specified when testing a Task state",
    )


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        pytest.param(
            {"mock": {"result": "{}", "errorOutput": {"error": "E"}}},
            "A test mock should have only one of the following fields: [result, errorOutput].",
            id="result-and-error",
        ),
        pytest.param(
            {"mock": {"result": "{}"}, "revealSecrets": True},
            "TestState does not support RevealSecrets when a mock is specified.",
            id="reveal-secrets-with-mock",
        ),
        pytest.param({"mock": {"result": "{not json"}}, "Mocked result must be valid JSON", id="result-not-json"),
        pytest.param(
            {"mock": {"result": "{}"}},
            "Mock result schema validation error: Required field 'TrainingJobArn' is missing",
            id="strict-required-member",
        ),
        pytest.param(
            {"mock": {"result": '{"TrainingJobArn": 7}', "fieldValidationMode": "PRESENT"}},
            "Mock result schema validation error: Field 'TrainingJobArn' must be a string",
            id="present-member-type",
        ),
        pytest.param(
            {"mock": {"errorOutput": {"cause": "no error name"}}},
            "mock.errorOutput.error is required",
            id="error-output-without-error",
        ),
        pytest.param(
            {"context": "{}", "roleArn": ROLE},
            "context may only be specified if a mock is specified",
            id="context-without-mock",
        ),
        pytest.param(
            {"mock": {"result": "{}"}, "input": "x" * 262_145},
            "Member must have length less than or equal to 262144",
            id="input-too-long",
        ),
    ],
)
def test_what_aws_refuses_in_a_mocked_request_is_refused(sfn: Any, request_: dict[str, Any], expected: str) -> None:
    code, message = _refusal(sfn, definition=json.dumps(TRAIN), **request_)
    assert code == "ValidationException" and expected in message


def test_no_field_validation_takes_any_mocked_result(sfn: Any) -> None:
    answer = sfn.test_state(
        definition=json.dumps(TRAIN),
        variables=json.dumps({"request": REQUEST}),
        mock={"result": '{"anything": 1}', "fieldValidationMode": "NONE"},
    )
    assert answer["status"] == "SUCCEEDED" and json.loads(answer["output"]) == {"anything": 1}


def test_state_types_and_inputs_aws_does_not_run_are_refused(sfn: Any) -> None:
    pass_state = json.dumps({"Type": "Pass", "Next": "N"})
    assert _refusal(sfn, definition=pass_state, mock={"result": "{}"}) == (
        "ValidationException",
        "State type 'Pass' is not supported when a mock is specified",
    )
    map_state = {"Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}}
    assert _refusal(sfn, definition=json.dumps({**map_state, "End": True})) == (
        "InvalidDefinition",
        "TestState API does not support Map or Parallel states. Supported state types include: "
        "[Task, Wait, Pass, Succeed, Fail, Choice]",
    )
    assert _refusal(sfn, definition=pass_state, input="{not json")[0] == "InvalidExecutionInput"
    assert _refusal(sfn, definition="{not json")[0] == "InvalidDefinition"
    assert _refusal(sfn, definition=pass_state, inspectionLevel="LOUD")[0] == "ValidationException"


def _allow_everything_role(iam: Any, name: str) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    return str(arn)


def test_the_state_calls_as_its_role_and_iam_decides(sfn: Any, embedded_aws: Any) -> None:
    iam = embedded_aws.client("iam")
    name = unique("test-state-role")
    role = _allow_everything_role(iam, name)
    listing = {
        "Type": "Task",
        "QueryLanguage": "JSONata",
        "Resource": "arn:aws:states:::aws-sdk:sagemaker:listTrainingJobs",
        "Arguments": {"MaxResults": 1},
        "End": True,
    }
    only_describe = {"Effect": "Allow", "Action": "sagemaker:DescribeTrainingJob", "Resource": "*"}
    iam.put_role_policy(
        RoleName=name,
        PolicyName="p",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [only_describe]}),
    )
    denied = sfn.test_state(definition=json.dumps(listing), roleArn=role)
    assert denied["status"] == "FAILED"
    assert f"assumed-role/{name}/" in denied["cause"] and "sagemaker:ListTrainingJobs" in denied["cause"]
    allowed = {"Effect": "Allow", "Action": "sagemaker:ListTrainingJobs", "Resource": "*"}
    iam.put_role_policy(
        RoleName=name, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allowed]})
    )
    answer = sfn.test_state(definition=json.dumps(listing), roleArn=role)
    assert answer["status"] == "SUCCEEDED" and "TrainingJobSummaries" in json.loads(answer["output"])


def test_the_caller_needs_test_state_and_pass_role(embedded_aws: Any) -> None:
    iam = embedded_aws.client("iam")
    name = unique("test-state-caller")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}
        ],
    }
    caller_arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    only_test_state = {"Effect": "Allow", "Action": "states:TestState", "Resource": "*"}
    iam.put_role_policy(
        RoleName=name,
        PolicyName="p",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [only_test_state]}),
    )
    keys = embedded_aws.client("sts").assume_role(RoleArn=caller_arn, RoleSessionName="tester")["Credentials"]
    caller = boto3.client(
        "stepfunctions",
        endpoint_url=embedded_aws.endpoint_url,
        region_name=embedded_aws.region,
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
        config=no_host_prefix(),
    )
    pass_state = json.dumps({"Type": "Pass", "End": True})
    assert caller.test_state(definition=pass_state)["status"] == "SUCCEEDED"
    code, message = _refusal(caller, definition=pass_state, roleArn=ROLE)
    assert code == "AccessDeniedException" and "iam:PassRole" in message
