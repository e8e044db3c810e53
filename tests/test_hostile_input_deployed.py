"""Hostile run inputs on the deployed embedded platform: each is refused before any job exists, or, where AWS
accepts it (an emoji in the execution name), trains. The bulk of the corpus runs fast against the synthesized
definition (tests/test_hostile_input.py); this is the sample that proves the deployed machine agrees."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests import test_pipeline_executions as executions
from tests.test_hostile_input import DEPLOYED_SAMPLE
from tests.test_pipeline_executions import NAMES, QUICK, Platform, _job_count, _output, _release_pools, run
from trainstack.cli.executions import read_history

pytestmark = pytest.mark.slow
platform = executions.platform


def test_an_emoji_named_execution_trains(platform: Platform) -> None:
    # Step Functions accepts any character outside its list; `$hash` of the execution ARN names the job.
    name = f"llama-\N{GRINNING FACE}-{uuid.uuid4().hex[:6]}"
    result = _output(run(platform, {"hyperparameters": QUICK, "keep_alive_seconds": 0}, name=name))
    assert result["status"] == "Completed"


@pytest.mark.parametrize(("case_id", "run_input", "refusal"), DEPLOYED_SAMPLE)
def test_a_sample_of_the_hostile_corpus_is_refused_before_any_job(
    platform: Platform, case_id: str, run_input: object, refusal: str
) -> None:
    before = _job_count(platform)
    described = run(platform, run_input)
    assert (described["status"], described.get("error")) == ("FAILED", "InvalidInput"), described.get("cause")
    assert refusal in described["cause"]
    assert _job_count(platform) == before


def _wait(condition, what: str, seconds: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {seconds:.0f} s"
        time.sleep(0.5)
    return found


def test_resume_from_a_run_still_training_or_one_that_left_nothing_is_refused_before_any_job(
    platform: Platform,
) -> None:
    _release_pools(platform)
    sfn, sagemaker = platform.client("stepfunctions"), platform.client("sagemaker")
    # A run that fails on its data at once: its job ends before its first save, leaving no checkpoints.
    platform.client("s3").put_object(
        Bucket=NAMES.data_bucket, Key="datasets/hostile-empty/train.jsonl", Body=b"not json\n"
    )
    empty = run(platform, {"channels": {"train": "datasets/hostile-empty/"}, "keep_alive_seconds": 0})
    assert empty["error"] == "TrainingJobFailed"
    empty_job = read_history(sfn.get_execution_history(executionArn=empty["executionArn"], maxResults=1000)["events"])[
        "jobName"
    ]
    before = _job_count(platform)
    nothing = run(platform, {"resume_from": empty_job})
    assert (nothing["error"], _job_count(platform)) == ("InvalidInput", before)
    assert nothing["cause"] == (
        f"resume_from: run {empty_job} left no checkpoints under s3://{NAMES.artifacts_bucket}/checkpoints/"
        f"{empty_job}/ (it ended before its first save): nothing to resume from; start a run without resume_from"
    )

    # A run still training: a second run on its checkpoint prefix is refused while the first one's job lives.
    long_run = {"keep_alive_seconds": 0, "hyperparameters": {**QUICK, "max_steps": 400, "save_steps": 400}}
    execution = sfn.start_execution(
        stateMachineArn=platform.state_machine_arn, name=f"test-{uuid.uuid4().hex[:12]}", input=json.dumps(long_run)
    )["executionArn"]
    try:
        job = _wait(
            lambda: read_history(sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"])[
                "jobName"
            ],
            "the run created no job",
            120,
        )
        _wait(
            lambda: any(
                summary["TrainingJobName"] == job and summary["TrainingJobStatus"] == "InProgress"
                for summary in sagemaker.list_training_jobs(NameContains=job)["TrainingJobSummaries"]
            ),
            f"{job} never started",
            120,
        )
        before = _job_count(platform)
        live = run(platform, {"resume_from": job})
        assert (live["error"], _job_count(platform)) == ("InvalidInput", before)
        assert live["cause"].startswith(f"resume_from: run {job} still has a job running ({job} InProgress")
    finally:
        sfn.stop_execution(executionArn=execution)
        sagemaker.stop_training_job(TrainingJobName=job)
