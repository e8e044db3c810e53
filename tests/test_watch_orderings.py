"""The run watcher (`make demo`, `trainstack run --watch`) survives every ordering AWS allows.

A first run on a cold, busy machine met them all at once: the watcher described the execution right after
StartExecution, and the job as soon as the Train task was scheduled, before CreateTrainingJob had returned
(DescribeTrainingJob: ValidationException "Requested resource not found"). Here the embedded AWS's delay switch
holds CreateTrainingJob back and the execution is started only after the watcher began, so each ordering happens
on purpose, through the deployed state machine; a throttled describe is the throttle switch.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from rich.console import Console

from trainstack.config import ResourceNames, load_environment
from trainstack.demo import failure_sentence
from trainstack.embedded_aws.testing import delay, throttle
from trainstack.local_platform import stage_demo_data
from trainstack.progress import RunProgress, WatchError, watch

slow = pytest.mark.slow
CONFIG = load_environment("local")
NAMES = ResourceNames.of(CONFIG)
QUICK = {"max_steps": 4, "logging_steps": 1, "eval_steps": 4, "save_steps": 4}
# A caller whose retries are spent: one throttled answer reaches the watcher instead of botocore's retry.
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


@dataclass
class Watched:
    described: dict[str, Any]
    progress: RunProgress
    output: str


def _watch(aws: Any, arn: str, **kwargs: Any) -> Watched:
    text = io.StringIO()
    console = Console(file=text, width=120, force_terminal=False)
    described, progress = watch(
        lambda service: aws.client(service, config=NO_RETRIES), arn, console, poll_seconds=0.2, **kwargs
    )
    return Watched(described, progress, text.getvalue())


@pytest.fixture(scope="module")
def cold_start(deployed_local_platform, tiny_model_dir) -> tuple[Any, Watched]:
    """A run watched from before StartExecution, its CreateTrainingJob answered 3 s late."""
    aws = deployed_local_platform.aws
    stage_demo_data(aws.client("s3"), CONFIG, tiny_model_dir)
    name = f"cold-{uuid.uuid4().hex[:8]}"
    arn = NAMES.arn("states", f"execution:{NAMES.state_machine}:{name}")
    delay(aws.endpoint_url, "SageMaker.CreateTrainingJob", 3)
    run_input = {"hyperparameters": QUICK, "keep_alive_seconds": 0}

    def start_later() -> None:
        time.sleep(1)  # the watcher's first polls find no execution
        aws.client("stepfunctions").start_execution(
            stateMachineArn=deployed_local_platform.outputs["StateMachineArn"], name=name, input=json.dumps(run_input)
        )

    starter = threading.Thread(target=start_later)
    starter.start()
    try:
        watched = _watch(aws, arn, timeout_seconds=300)
    finally:
        starter.join()
    return aws, watched


@slow
def test_the_watcher_waits_for_an_execution_and_a_job_that_are_not_visible_yet(cold_start) -> None:
    _, watched = cold_start
    assert watched.described["status"] == "SUCCEEDED", watched.output
    # Both orderings happened, and each cost a poll, not the watch.
    assert watched.progress.retried["ExecutionDoesNotExist"] >= 1
    assert watched.progress.retried["ValidationException"] >= 1
    assert "job    Training" in watched.output and "job    Completed" in watched.output
    # The bar's length and position come from the request's max_steps and the job's step lines.
    assert (watched.progress.max_steps, watched.progress.step) == (4, 4)
    assert len(watched.progress.losses) >= 2 and watched.progress.eval_losses
    assert "Traceback" not in watched.output


@slow
def test_a_throttled_describe_costs_a_poll_and_the_watch_still_reads_the_job(cold_start) -> None:
    aws, first = cold_start
    throttle(aws.endpoint_url, "SageMaker.DescribeTrainingJob", 1)
    again = _watch(aws, first.described["executionArn"])
    assert again.progress.retried["ThrottlingException"] == 1
    assert again.progress.secondary == first.progress.secondary
    assert again.progress.losses == first.progress.losses


@slow
def test_an_execution_that_never_appears_ends_the_watch_with_one_sentence(deployed_local_platform) -> None:
    arn = NAMES.arn("states", f"execution:{NAMES.state_machine}:never-{uuid.uuid4().hex[:8]}")
    with pytest.raises(WatchError) as raised:
        _watch(deployed_local_platform.aws, arn, patience_seconds=1)
    assert str(raised.value).startswith("DescribeExecution kept answering ExecutionDoesNotExist (")
    assert str(raised.value).endswith(f"for 1 s while watching {arn}")


def test_a_demo_failure_is_one_sentence_whatever_raised_it() -> None:
    not_found = ClientError(
        {"Error": {"Code": "ValidationException", "Message": "Requested resource not found: training job x"}},
        "DescribeTrainingJob",
    )
    assert failure_sentence(not_found) == (
        "DescribeTrainingJob failed (ValidationException): Requested resource not found: training job x."
    )
    watch_error = WatchError("DescribeExecution kept answering ExecutionDoesNotExist (x) for 120 s while watching y")
    assert failure_sentence(watch_error).startswith(f"{watch_error}: the run itself goes on")
    assert failure_sentence(KeyError("jobName")) == (
        "unexpected KeyError: 'jobName' (rerun with TRAINSTACK_DEBUG=1 for the traceback and report it)"
    )
