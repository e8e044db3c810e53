"""Never leak a pool: a run aborted while its job trains leaves no job running and no warm pool Available.

On the deployed embedded platform: the pipeline's ABORTED status-change event (step_functions_status_events.py)
matches the cleanup rule, EventBridge starts the cleanup machine as the rule's role
(events_step_functions_targets.py), and the cleanup, as its own role under IAM, stops the job and ends its pool.
The embedded `.sync` task does not stop the job on abort (AWS tries, best effort), so here the cleanup is what
stops it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import pytest

from tests import test_pipeline_executions as executions
from tests.test_pipeline_executions import CONFIG, NAMES, QUICK, Platform, _release_pools
from trainstack.cli.executions import read_history

pytestmark = pytest.mark.slow
platform = executions.platform
T = TypeVar("T")
CLEANUP = NAMES.arn("states", f"stateMachine:{NAMES.state_machine}-pool-cleanup")


def _wait(condition: Callable[[], T], what: str, seconds: float) -> T:
    deadline = time.monotonic() + seconds
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {seconds:.0f} s"
        time.sleep(0.5)


def _history(platform: Platform, execution_arn: str) -> list[dict]:
    pages = platform.client("stepfunctions").get_paginator("get_execution_history")
    return [event for page in pages.paginate(executionArn=execution_arn) for event in page["events"]]


def _cleanup_of(platform: Platform, execution_arn: str) -> dict | None:
    sfn = platform.client("stepfunctions")
    for item in sfn.list_executions(stateMachineArn=CLEANUP)["executions"]:
        described = sfn.describe_execution(executionArn=item["executionArn"])
        event = json.loads(described["input"])
        if event.get("detail", {}).get("executionArn") == execution_arn and described["status"] != "RUNNING":
            return described
    return None


def test_an_aborted_run_leaves_no_job_running_and_no_pool_available(platform: Platform) -> None:
    """With its own job_name_prefix: the cleanup finds the run's jobs by its execution, not by a prefix."""
    _release_pools(platform)
    sfn, sagemaker = platform.client("stepfunctions"), platform.client("sagemaker")
    own_prefix = f"{CONFIG.training.job_name_prefix}-own"
    run_input = {
        "job_name_prefix": own_prefix,
        "keep_alive_seconds": 300,
        "hyperparameters": {**QUICK, "max_steps": 400, "save_steps": 400},
    }
    execution = sfn.start_execution(
        stateMachineArn=platform.state_machine_arn, name=f"abort-{uuid.uuid4().hex[:8]}", input=json.dumps(run_input)
    )["executionArn"]
    job = _wait(lambda: read_history(_history(platform, execution))["jobName"], "the run created no job", 120)

    # The history names the job when the task is scheduled, a moment before SageMaker has it; and a job stopped
    # before its cluster launched keeps no pool (SageMaker's rule): abort once it is Training.
    def training() -> bool:
        try:
            return sagemaker.describe_training_job(TrainingJobName=job)["SecondaryStatus"] == "Training"
        except sagemaker.exceptions.ClientError:  # not created yet
            return False

    _wait(training, f"{job} never trained", 120)
    sfn.stop_execution(executionArn=execution, error="Test", cause="aborted while its job trains")

    cleanup = _wait(lambda: _cleanup_of(platform, execution), "no cleanup ran for the aborted run", 60)
    assert cleanup["status"] == "SUCCEEDED", (cleanup.get("error"), cleanup.get("cause"))
    report = json.loads(cleanup["output"])
    assert report["execution"] == execution and report["executionStatus"] == "ABORTED"
    # The suffix derived from the event ends the job's name, which starts with the run's own prefix.
    assert job.startswith(f"{own_prefix}-") and job.endswith(f"-{report['runSuffix']}")
    # null or absent: the embedded AWS's JSONata binds a null variable as undefined, so the key may be dropped.
    assert report.get("problem") is None, report
    (cleaned,) = report["jobs"]
    assert cleaned["jobName"] == job and cleaned["status"] == "Stopped" and cleaned["poolEnded"] is True, report
    assert cleaned["stopped"] is True  # the embedded `.sync` does not stop the job on abort: the cleanup did

    described = sagemaker.describe_training_job(TrainingJobName=job)
    assert described["TrainingJobStatus"] == "Stopped"
    assert described["WarmPoolStatus"]["Status"] != "Available"
    running = sagemaker.list_training_jobs(NameContains=job, StatusEquals="InProgress")["TrainingJobSummaries"]
    pooled = sagemaker.list_training_jobs(NameContains=job, WarmPoolStatusEquals="Available")["TrainingJobSummaries"]
    assert running == [] and pooled == []


def test_a_failed_run_without_jobs_is_looked_at_and_reported_to_nobody(platform: Platform) -> None:
    sfn = platform.client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=platform.state_machine_arn,
        name=f"invalid-{uuid.uuid4().hex[:8]}",
        input=json.dumps({"instance_count": "two"}),
    )["executionArn"]
    _wait(lambda: sfn.describe_execution(executionArn=execution)["status"] == "FAILED", "the run did not fail", 60)
    cleanup = _wait(lambda: _cleanup_of(platform, execution), "no cleanup ran for the failed run", 60)
    report = json.loads(cleanup["output"])
    assert cleanup["status"] == "SUCCEEDED" and report["executionStatus"] == "FAILED" and not report.get("jobs")
    entered = {
        e["stateEnteredEventDetails"]["name"]
        for e in _history(platform, cleanup["executionArn"])
        if "stateEnteredEventDetails" in e
    }
    assert "NothingToReport" in entered and "Report" not in entered  # no notification


def test_a_failed_run_s_jobs_and_retries_are_all_found(platform: Platform) -> None:
    """A run whose every attempt loses its capacity FAILS after its retries; the cleanup finds all four jobs
    (`<run>`, `-r1` .. `-r3`) by the run's suffix."""
    from trainstack.embedded_aws.testing import fail_with_capacity_error, time_scale, upload_script

    _release_pools(platform)
    sfn = platform.client("stepfunctions")
    script = "import os, pathlib\npathlib.Path(os.environ['SM_MODEL_DIR'], 'model.txt').write_text('ok')\n"
    code = upload_script(platform.client("s3"), NAMES.artifacts_bucket, script)
    fail_with_capacity_error(platform.aws.endpoint_url, "ml.m5.xlarge", 4)
    with time_scale(platform.aws.endpoint_url, 0.01):  # the retries' 10-80 s waits
        execution = sfn.start_execution(
            stateMachineArn=platform.state_machine_arn,
            name=f"lost-{uuid.uuid4().hex[:8]}",
            input=json.dumps({"keep_alive_seconds": 0, "code": {"package": code, "entry_point": "train.py"}}),
        )["executionArn"]
        described = _wait(
            lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d,
            "the run did not end",
            300,
        )
    assert described["status"] == "FAILED", described
    cleanup = _wait(lambda: _cleanup_of(platform, execution), "no cleanup ran for the failed run", 60)
    report = json.loads(cleanup["output"])
    assert cleanup["status"] == "SUCCEEDED" and report["executionStatus"] == "FAILED", report
    names = sorted(job["jobName"] for job in report["jobs"])
    base = min(names, key=len)
    assert names == [base, f"{base}-r1", f"{base}-r2", f"{base}-r3"], names
    assert {job["status"] for job in report["jobs"]} == {"Failed"}
