"""What the capacity check costs one run: transitions and AWS API calls before CreateTrainingJob, and the time
the capacity decision and wait loop add when capacity is free (it should be about zero: no Wait is entered).

Deploys the local platform into a fresh embedded AWS, starts a `{}` run (the environment's defaults), and
reads its execution history. Figures only, no assertions.
Usage: python bench/capacity.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from trainstack.config import ResourceNames, load_environment  # noqa: E402
from trainstack.embedded_aws import EmbeddedAws  # noqa: E402
from trainstack.embedded_aws.testing import wait_for_execution  # noqa: E402
from trainstack.local_platform import deploy, stage_demo_data  # noqa: E402
from trainstack.tiny_model import build_tiny_model  # noqa: E402


def _seconds(event: dict) -> float:
    return event["timestamp"].timestamp()


def main() -> None:
    config = load_environment("local")
    with tempfile.TemporaryDirectory() as work, EmbeddedAws(config) as aws:
        platform = deploy(config, aws.env, Path(work) / "cdk.out")
        stage_demo_data(aws.client("s3"), config, build_tiny_model(Path(work) / "tiny-model"))
        sfn = aws.client("stepfunctions")
        execution = sfn.start_execution(
            stateMachineArn=platform.outputs["StateMachineArn"], name=f"bench-{int(time.time())}", input=json.dumps({})
        )
        wait_for_execution(sfn, execution["executionArn"], timeout=600)
        pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution["executionArn"])
        events = [event for page in pages for event in page["events"]]
    create = next(
        i
        for i, e in enumerate(events)
        if e["type"] == "TaskScheduled" and "createTrainingJob" in e["taskScheduledEventDetails"]["resource"]
    )
    before = events[:create]
    entered = [e for e in before if e["type"].endswith("StateEntered")]
    calls = [e["taskScheduledEventDetails"]["resource"] for e in before if e["type"] == "TaskScheduled"]
    by_name = {e["stateEnteredEventDetails"]["name"]: e for e in entered}
    decided = _seconds(by_name["BuildRequest"]) - _seconds(by_name["DecideWarmPool"])
    counted = _seconds(by_name["DecideWarmPool"]) - _seconds(by_name["CountUsage"])
    print(f"`{{}}` run ({ResourceNames.of(config).state_machine}), before CreateTrainingJob:")
    print(f"  state transitions (states entered, Map iterations included): {len(entered)}")
    print(f"  AWS API calls: {len(calls)} ({', '.join(sorted({c.split(':')[-1] for c in calls}))})")
    print(f"  counting usage (CountUsage -> DecideWarmPool): {counted:.2f} s")
    print(f"  capacity decision and wait loop with capacity free (DecideWarmPool -> BuildRequest): {decided:.2f} s")
    waits = sum(1 for e in entered if e["stateEnteredEventDetails"]["name"] == "WaitingForCapacity")
    print(f"  WaitingForCapacity entered: {waits}")


if __name__ == "__main__":
    main()
