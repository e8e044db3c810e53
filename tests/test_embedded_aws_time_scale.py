"""The time knob (trainstack/embedded_aws/time_scale.py): waits for the clock shrink, nothing else changes.

Each test would hang for an hour or a day in real time; under the knob it finishes within the usual waits.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from trainstack.embedded_aws import EmbeddedAws
from trainstack.embedded_aws.testing import (
    ROLE,
    job_request,
    seed_warm_pools,
    set_time_scale,
    time_scale,
    unique,
    wait_for_execution,
)
from trainstack.embedded_aws.time_scale import ENV_VAR, factor_from_environment


def _run(aws: Any, definition: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(name=unique("clock"), definition=json.dumps(definition), roleArn=ROLE)
    started = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")
    described = wait_for_execution(sfn, started["executionArn"], timeout=60)
    return described, sfn.get_execution_history(executionArn=started["executionArn"])["events"]


def test_a_day_long_wait_state_and_an_hour_of_retries_finish_under_the_knob(embedded_aws: Any) -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "WaitADay",
        "States": {
            "WaitADay": {"Type": "Wait", "Seconds": "{% 86400 %}", "Next": "WaitForTimestamp"},
            "WaitForTimestamp": {
                "Type": "Wait",
                "Timestamp": "{% $fromMillis($millis() + 3600000) %}",
                "Next": "Flaky",
            },
            "Flaky": {
                # Always fails: 3 retries 1200 s apart (an hour of backoff), then the Catch.
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:servicequotas:getServiceQuota",
                "Arguments": {"ServiceCode": "sagemaker", "QuotaCode": "L-NOPE0000"},
                "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3, "IntervalSeconds": 1200, "BackoffRate": 1}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}],
            },
            "Done": {"Type": "Succeed"},
        },
    }
    with time_scale(embedded_aws.endpoint_url, 1e-5):
        described, events = _run(embedded_aws, definition)
    assert described["status"] == "SUCCEEDED", described
    exited = [event["stateExitedEventDetails"]["name"] for event in events if event["type"] == "WaitStateExited"]
    assert exited == ["WaitADay", "WaitForTimestamp"]
    attempts = [event for event in events if event["type"] == "TaskFailed"]
    assert len(attempts) == 4  # the first try and its 3 retries all ran


def test_a_warm_pool_is_kept_for_its_scaled_keep_alive(embedded_aws: Any) -> None:
    sagemaker = embedded_aws.client("sagemaker")
    request = job_request(unique("kept"), "bucket", "s3://bucket/code/none.tar.gz")
    request["ResourceConfig"] = {
        "InstanceType": "ml.m5.xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 30,
        "KeepAlivePeriodInSeconds": 3600,
    }
    with time_scale(embedded_aws.endpoint_url, 1e-3):  # an hour's keep-alive lasts 3.6 s
        (arn,) = seed_warm_pools(embedded_aws.endpoint_url, request, 1)
        name = arn.rsplit("/", 1)[1]
        assert sagemaker.describe_training_job(TrainingJobName=name)["WarmPoolStatus"]["Status"] == "Available"
        deadline = time.monotonic() + 60
        while (status := sagemaker.describe_training_job(TrainingJobName=name)["WarmPoolStatus"]["Status"]) == (
            "Available"
        ) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert status == "Terminated"


def test_the_knob_answers_the_previous_factor_and_real_time_is_the_default(embedded_aws: Any) -> None:
    previous = set_time_scale(embedded_aws.endpoint_url, 0.5)
    try:
        assert set_time_scale(embedded_aws.endpoint_url, 0.25) == 0.5
    finally:
        set_time_scale(embedded_aws.endpoint_url, previous)
    with time_scale(embedded_aws.endpoint_url, 0.1):
        assert set_time_scale(embedded_aws.endpoint_url, 0.1) == 0.1
    assert set_time_scale(embedded_aws.endpoint_url, previous) == previous


@pytest.mark.parametrize("body", [{"factor": 0}, {"factor": 2}, {"factor": "fast"}, {}])
def test_the_knob_refuses_a_factor_outside_0_to_1(embedded_aws: Any, body: dict[str, Any]) -> None:
    request = urllib.request.Request(  # noqa: S310 - the embedded endpoint
        f"{embedded_aws.endpoint_url}/trainstack-api/time-scale", data=json.dumps(body).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)  # noqa: S310
    assert refused.value.code == 400
    assert "factor" in json.loads(refused.value.read())["message"]


def test_the_environment_variable_and_the_argument_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "0.01")
    assert factor_from_environment() == 0.01
    monkeypatch.setenv(ENV_VAR, "")
    assert factor_from_environment() == 1.0
    monkeypatch.setenv(ENV_VAR, "-1")
    with pytest.raises(ValueError, match=f"{ENV_VAR}: expected a number from 1e-06 to 1"):
        factor_from_environment()
    with pytest.raises(ValueError, match=r"EmbeddedAws\(time_scale=...\): expected a number"):
        EmbeddedAws(time_scale=3)
