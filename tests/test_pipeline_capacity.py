"""Capacity-aware runs on the embedded AWS: the deployed state machine counts instances as SageMaker does,
waits for capacity instead of failing, and pages through every retained pool.

The embedded SageMaker enforces the same arithmetic at CreateTrainingJob (`ResourceLimitExceeded` counting
running jobs and Available/InUse pools, spot against the spot quota), so a run that gets past the state
machine's check and is then refused would fail these tests."""

from __future__ import annotations

import itertools
import json
import time
import uuid

import pytest
from conftest import assumer_of

from tests import test_pipeline_executions as executions
from tests.test_pipeline_executions import CONFIG, NAMES, QUICK, Platform, _output, _release_pools, run
from trainstack.cli.executions import read_history
from trainstack.embedded_aws.testing import (
    ROLE,
    fail_with_capacity_error,
    job_request,
    log_lines,
    seed_warm_pools,
    time_scale,
    unique,
    upload_script,
    wait_for_execution,
)
from trainstack.progress import RunWatcher

pytestmark = pytest.mark.slow
# The time knob (trainstack/embedded_aws/time_scale.py) for scenarios that wait: a capacity wait's backoff
# (2, 4 ... 60 s), a kept pool and a retry's delay pass this many times as fast; the history's figures stay in
# the seconds the state machine computed.
FAST = 0.05
# The executions module's deployed platform (demo data staged, stray pools released) and its one-line code
# package, one per module.
platform = executions.platform
tiny_code = executions.tiny_code


def _history(platform: Platform, execution_arn: str) -> list[dict]:
    pages = platform.client("stepfunctions").get_paginator("get_execution_history")
    return [event for page in pages.paginate(executionArn=execution_arn) for event in page["events"]]


def _entered(events: list[dict], state: str) -> list[dict]:
    return [
        event["stateEnteredEventDetails"]
        for event in events
        if event.get("stateEnteredEventDetails", {}).get("name") == state
    ]


def _trained(platform: Platform, described: dict) -> dict:
    """The run's summary; on failure, the end of its job's log in the assertion message."""
    if described["status"] != "SUCCEEDED":
        job = read_history(_history(platform, described["executionArn"]))["jobName"]
        tail = (
            [line for lines in log_lines(platform.client("logs"), job).values() for line in lines][-40:] if job else []
        )
        raise AssertionError(f"{described.get('error')}: {described.get('cause')}\n" + "\n".join(tail))
    return _output(described)


def test_a_run_short_of_instances_waits_for_a_warm_pool_to_end_then_trains(
    platform: Platform, tiny_code: dict[str, str]
) -> None:
    # One ml.m5.xlarge kept warm for 120 s (6 s under the knob); then 4 of the quota's 4 are asked for: the run
    # waits for the pool.
    _release_pools(platform)
    with time_scale(platform.aws.endpoint_url, FAST):
        first = _output(run(platform, {"keep_alive_seconds": 120, "code": tiny_code}))
        assert first["warmPool"]["status"] == "Available"
        described = run(platform, {"instance_count": 4, "keep_alive_seconds": 0, "code": tiny_code})
    result = _output(described)
    assert result["status"] == "Completed" and result["instanceCount"] == 4
    events = _history(platform, described["executionArn"])
    waits = _entered(events, "WaitingForCapacity")
    assert waits, "the run never waited"
    reason = json.loads(waits[0]["input"])["reason"]
    assert (
        'quota "ml.m5.xlarge for training job usage"' in reason
        and "with 1 instance(s) held by running jobs and warm pools; this run needs 4 and 3 are free" in reason
    )
    # What `trainstack status` and `run --watch` show of the wait.
    assert read_history(events)["waiting"] == json.loads(waits[-1]["input"])["reason"]
    lines: list[str] = []
    RunWatcher(platform.client, described["executionArn"], on_line=lines.append).poll()
    assert f"wait   {reason}" in lines


def test_two_concurrent_three_instance_runs_against_a_quota_of_four_both_train(
    platform: Platform, tiny_code: dict[str, str]
) -> None:
    _release_pools(platform)
    sfn = platform.client("stepfunctions")
    run_input = json.dumps({"instance_count": 3, "keep_alive_seconds": 0, "code": tiny_code})
    tag = uuid.uuid4().hex[:6]
    with time_scale(platform.aws.endpoint_url, FAST):  # the waiting run looks again within seconds
        arns = [
            sfn.start_execution(
                stateMachineArn=platform.state_machine_arn, name=f"cap-both-{index}-{tag}", input=run_input
            )["executionArn"]
            for index in (1, 2)
        ]
        results = [_trained(platform, wait_for_execution(sfn, arn, timeout=400)) for arn in arns]
    assert {r["status"] for r in results} == {"Completed"}
    assert results[0]["jobName"] != results[1]["jobName"]
    # One of them waited: before creating (it saw the other's job) or after SageMaker refused its create.
    waited = [arn for arn in arns if _entered(_history(platform, arn), "WaitingForCapacity")]
    assert len(waited) >= 1


def test_no_capacity_wait_fails_at_once_with_the_arithmetic_and_creates_nothing(platform: Platform) -> None:
    _release_pools(platform)
    sagemaker, s3 = platform.client("sagemaker"), platform.client("s3")
    holder = unique("holder")
    code = upload_script(s3, NAMES.data_bucket, "import time\ntime.sleep(120)\n")
    request = job_request(holder, NAMES.data_bucket, code)
    request["ResourceConfig"] = {"InstanceType": "ml.m5.xlarge", "InstanceCount": 3, "VolumeSizeInGB": 30}
    sagemaker.create_training_job(**request)
    jobs_before = len(sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"])
    try:
        described = run(platform, {"instance_count": 2, "keep_alive_seconds": 0, "capacity_wait_seconds": 0})
    finally:
        sagemaker.stop_training_job(TrainingJobName=holder)
    assert described["status"] == "FAILED" and described["error"] == "CapacityUnavailable"
    assert (
        "with 3 instance(s) held by running jobs and warm pools; this run needs 2 and 1 are free"
        in (described["cause"])
    )
    assert "Gave up after 0 s (capacity_wait_seconds is 0)" in described["cause"]
    assert len(sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]) == jobs_before


def test_a_spot_run_is_checked_against_the_spot_quota(platform: Platform) -> None:
    # config/local.yaml gives ml.m5.xlarge 4 on-demand instances and no spot ones.
    described = run(platform, {"spot": True, "keep_alive_seconds": 0})
    assert described["error"] == "QuotaExceeded"
    assert '"ml.m5.xlarge for spot training job usage" (L-' in described["cause"]
    assert "is 0 in us-east-1; this run asks for 1 instance" in described["cause"]


def _seed_150_pools(platform: Platform, keep_alive_seconds: int) -> list[str]:
    """150 one-instance ml.g5.xlarge pools (quota 152): more than a ListTrainingJobs page of 100."""
    request = job_request(unique("seeded"), NAMES.data_bucket, f"s3://{NAMES.data_bucket}/code/none.tar.gz")
    request["RoleArn"] = ROLE
    request["ResourceConfig"] = {
        "InstanceType": "ml.g5.xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 30,
        "KeepAlivePeriodInSeconds": keep_alive_seconds,
    }
    return seed_warm_pools(platform.aws.endpoint_url, request, 150)


def _end_pools(platform: Platform, arns: list[str]) -> None:
    for arn in arns:
        platform.client("sagemaker").update_training_job(
            TrainingJobName=arn.rsplit("/", 1)[1], ResourceConfig={"KeepAlivePeriodInSeconds": 0}
        )


# Three more ml.g5.xlarge than the 150 seeded pools leave of the quota (152), with no pool of its own.
BEYOND_THE_HELD = {"instance_type": "ml.g5.xlarge", "instance_count": 3, "keep_alive_seconds": 0}


def test_all_150_retained_pools_are_counted(platform: Platform) -> None:
    arns = _seed_150_pools(platform, 900)
    try:
        described = run(
            platform,
            {**BEYOND_THE_HELD, "capacity_wait_seconds": 0},
        )
    finally:
        _end_pools(platform, arns)
    assert described["error"] == "CapacityUnavailable", (described.get("error"), described.get("cause"))
    assert "is 152 in us-east-1 with 150 instance(s) held by running jobs and warm pools" in described["cause"]


def test_a_job_that_loses_its_capacity_is_retried_under_a_new_name_and_resumes_from_its_checkpoint(
    platform: Platform,
) -> None:
    _release_pools(platform)
    fail_with_capacity_error(platform.aws.endpoint_url, "ml.m5.xlarge", 1)
    with time_scale(platform.aws.endpoint_url, FAST):  # WaitToRetryCapacity: 10 to 20 s
        result = _output(run(platform, {"keep_alive_seconds": 0, "hyperparameters": QUICK}))
    assert result["status"] == "Completed" and result["jobName"].endswith("-r1")
    sagemaker = platform.client("sagemaker")
    first = sagemaker.describe_training_job(TrainingJobName=result["jobName"].removesuffix("-r1"))
    second = sagemaker.describe_training_job(TrainingJobName=result["jobName"])
    assert first["TrainingJobStatus"] == "Failed" and first["FailureReason"].startswith("CapacityError: ")
    assert first["CheckpointConfig"]["S3Uri"] == second["CheckpointConfig"]["S3Uri"]
    assert first["CheckpointConfig"]["S3Uri"].endswith(f"/{first['TrainingJobName']}/")
    lines = [
        line for stream in log_lines(platform.client("logs"), second["TrainingJobName"]).values() for line in stream
    ]
    assert any("resuming from checkpoint-4" in line for line in lines)
    assert result["checkpoints"] == first["CheckpointConfig"]["S3Uri"] and result["result"] == "model"

    # Resume across runs: a new run naming the earlier job continues from the same checkpoints (step 4 -> 6).
    resumed = _output(
        run(
            platform,
            {
                "resume_from": second["TrainingJobName"],
                "keep_alive_seconds": 0,
                "hyperparameters": {**QUICK, "max_steps": 6},
            },
        )
    )
    assert resumed["checkpoints"] == first["CheckpointConfig"]["S3Uri"]
    lines = [line for stream in log_lines(platform.client("logs"), resumed["jobName"]).values() for line in stream]
    assert any("resuming from checkpoint-" in line for line in lines), "\n".join(lines[-60:])


def test_resume_from_a_job_that_does_not_exist_fails_before_anything_is_created(platform: Platform) -> None:
    described = run(platform, {"resume_from": "trainstack-no-such-run"})
    assert described["error"] == "InvalidInput"
    assert described["cause"].startswith("resume_from: no training job named trainstack-no-such-run can be described")


def test_a_create_whose_job_already_exists_follows_that_job_to_its_end(platform: Platform) -> None:
    # As when an earlier attempt of the create reached SageMaker but its answer was lost: the run's job exists
    # by the time the run creates it. Held instances make the run wait; meanwhile its job is created directly.
    _release_pools(platform)
    sagemaker, sfn = platform.client("sagemaker"), platform.client("stepfunctions")
    holder = unique("holder")
    sleeper = upload_script(platform.client("s3"), NAMES.data_bucket, "import time\ntime.sleep(120)\n")
    request = job_request(holder, NAMES.data_bucket, sleeper)
    request["ResourceConfig"] = {"InstanceType": "ml.m5.xlarge", "InstanceCount": 3, "VolumeSizeInGB": 30}
    sagemaker.create_training_job(**request)
    with time_scale(platform.aws.endpoint_url, FAST):  # when the holder stops, the run looks again within seconds
        execution = sfn.start_execution(
            stateMachineArn=platform.state_machine_arn,
            name=f"adopt-{uuid.uuid4().hex[:8]}",
            input=json.dumps({"instance_count": 2, "keep_alive_seconds": 0}),
        )["executionArn"]
        try:
            deadline = time.monotonic() + 60
            while not _entered(events := _history(platform, execution), "WaitingForCapacity"):
                assert time.monotonic() < deadline, "the run never waited"
                time.sleep(0.5)
            job_name = read_history(events)["jobName"]
            quick = upload_script(platform.client("s3"), NAMES.data_bucket, "print('the earlier attempt')\n")
            existing = job_request(job_name, NAMES.data_bucket, quick)
            existing["ResourceConfig"] = {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
            sagemaker.create_training_job(**existing)
        finally:
            sagemaker.stop_training_job(TrainingJobName=holder)
        result = _output(wait_for_execution(sfn, execution, timeout=300))
    assert result["jobName"] == job_name and result["status"] == "Completed"
    failures = [
        e["taskFailedEventDetails"]["error"] for e in _history(platform, execution) if e["type"] == "TaskFailed"
    ]
    assert "SageMaker.ResourceInUseException" in failures


def _look_costs(events: list[dict]) -> list[int]:
    """History events spent by each look: from one WaitingForCapacity entry to the next (the first: from the
    first CountUsage entry, so it includes describing every held job)."""
    marks = [e["id"] for e in events if e.get("stateEnteredEventDetails", {}).get("name") == "CountUsage"]
    return [b - a for a, b in itertools.pairwise(marks)]


@pytest.mark.week  # 586 s here (0.57 s a look of pure-Python JSONata): make test-week
def test_a_whole_week_waiting_with_150_jobs_held_hands_over_before_the_history_limit(platform: Platform) -> None:
    """The longest allowed wait, run whole under the time knob: 150 retained pools hold the quota all week.
    The run looks about 1,030 times, hands over to a fresh execution before any history reaches 25,000
    events (without the hand-over the first would end at its 25,000th with States.Runtime), keeps its name,
    and gives up after exactly the 7 days."""
    from trainstack.config import MAX_CAPACITY_WAIT_SECONDS
    from trainstack.embedded_aws.step_functions_history_limit import MAX_HISTORY_EVENTS
    from trainstack.embedded_aws.testing import time_scale
    from trainstack.progress import continued_in

    _release_pools(platform)
    arns = _seed_150_pools(platform, 3600)  # seeded in real time: the pools outlast the scaled week
    week = {**BEYOND_THE_HELD, "capacity_wait_seconds": MAX_CAPACITY_WAIT_SECONDS}
    sfn = platform.client("stepfunctions")
    try:
        with time_scale(platform.aws.endpoint_url, 1e-6):
            chain = [run(platform, week, timeout=1800)]
            while next_arn := continued_in(chain[-1]):
                chain.append(wait_for_execution(sfn, next_arn, timeout=1800))
    finally:
        _end_pools(platform, arns)

    histories = [_history(platform, described["executionArn"]) for described in chain]
    looks = sum(len(_entered(events, "CountUsage")) for events in histories)
    print(f"a week: {looks} looks over {len(chain)} executions of {[len(h) for h in histories]} events")
    assert all(len(events) < MAX_HISTORY_EVENTS for events in histories)
    assert len(chain) >= 3 and 1000 <= looks <= 1100, (len(chain), looks)
    last = chain[-1]
    assert last["error"] == "CapacityUnavailable", (last.get("error"), last.get("cause"))
    assert f"Gave up after {MAX_CAPACITY_WAIT_SECONDS} s" in last["cause"]
    assert len({read_history(events)["jobName"] for events in histories}) == 1


def test_looks_at_150_pools_cost_what_the_history_budget_counts_and_a_week_fits(platform: Platform) -> None:
    """150 retained pools, a few looks (time knob): each look costs exactly what `$historySpent` adds
    (16 + 7 × 5 pages, plus 9 per job described: all 150 on the first look only), the count never falls behind
    the real history, and with these measured costs the longest wait (about 1,030 looks over 7 days) hands over
    before 25,000 events in every execution. A continued run then keeps its name and wait and gives up after
    exactly the 7 days. (The whole week is not run here: on this embedded AWS a look over 150 jobs costs
    seconds of pure-Python JSONata, and 1,030 of them would take an hour.)"""
    from trainstack.config import MAX_CAPACITY_WAIT_SECONDS
    from trainstack.embedded_aws.step_functions_history_limit import MAX_HISTORY_EVENTS
    from trainstack.embedded_aws.testing import time_scale
    from trainstack.platform.constructs.quota_check import DESCRIBE_EVENTS, LOOK_EVENTS, PAGE_EVENTS
    from trainstack.platform.constructs.run_continuation import CONTINUATION_KEY, HISTORY_BEFORE_LOOPS, HISTORY_BUDGET

    _release_pools(platform)
    arns = _seed_150_pools(platform, 3600)  # seeded in real time: the pools outlast the scaled waits
    short = BEYOND_THE_HELD
    name = f"{CONFIG.training.job_name_prefix}-20261201000000000-0123456789"
    carried = {
        "run_name": name,
        "job_name": name,
        "checkpoint_name": name,
        "capacity_retries": 0,
        "capacity_waited": MAX_CAPACITY_WAIT_SECONDS - 30,
        "capacity_polls": 900,
        "adopt_polls": 0,
        "warm_pool": {"granted": 0},
        "follow": False,
        "part": 3,
    }
    try:
        with time_scale(platform.aws.endpoint_url, 1e-6):
            looked = run(platform, {**short, "capacity_wait_seconds": 2 + 4 + 8 + 16}, timeout=900)
            continued = run(
                platform,
                {CONTINUATION_KEY: carried, "input": {**short, "capacity_wait_seconds": MAX_CAPACITY_WAIT_SECONDS}},
                timeout=900,
            )
            forged = run(platform, {CONTINUATION_KEY: {**carried, "job_name": "trainstack-x"}, "input": short})
    finally:
        _end_pools(platform, arns)

    assert looked["error"] == "CapacityUnavailable", (looked.get("error"), looked.get("cause"))
    events = _history(platform, looked["executionArn"])
    costs = _look_costs(events)
    pages = 5  # InProgress, Stopping, InUse: 1 each; Available: 100 + 50
    steady = LOOK_EVENTS + PAGE_EVENTS * pages
    assert len(costs) == 4 and costs[1:] == [steady] * 3, costs
    assert costs[0] <= steady + DESCRIBE_EVENTS * 150, costs
    # The running count is never below the real history at the end of a look.
    for event in events:
        exited = event.get("stateExitedEventDetails") or {}
        if exited.get("name") == "CountHeld":
            spent = json.loads(exited["assignedVariables"]["historySpent"])
            assert spent >= event["id"] + 6, (spent, event["id"])  # DecideWarmPool, DecideCapacity, HasCapacity

    # The week with these costs: about 1,030 looks; each execution starts at most at HISTORY_BEFORE_LOOPS,
    # describes everything once, hands over past HISTORY_BUDGET; one look more and the hand-over must fit.
    wait_state = json.loads(
        platform.client("stepfunctions").describe_state_machine(stateMachineArn=platform.state_machine_arn)[
            "definition"
        ]
    )["States"]["WaitingForCapacity"]
    from trainstack.run_preview import evaluate

    looks, waited, polls = 0, 0, 0
    while waited < MAX_CAPACITY_WAIT_SECONDS:
        bindings = {"run": {"capacity_wait_seconds": MAX_CAPACITY_WAIT_SECONDS}, "capacityWaited": waited}
        waited += evaluate(wait_state["Seconds"], {}, {**bindings, "capacityPolls": polls})
        looks, polls = looks + 1, polls + 1
    executions, spent, worst = 1, HISTORY_BEFORE_LOOPS + costs[0], 0
    for _ in range(looks):
        if spent >= HISTORY_BUDGET:
            worst, executions, spent = max(worst, spent + 10), executions + 1, HISTORY_BEFORE_LOOPS + costs[0]
        spent += steady
    print(f"looks: {looks}, first look {costs[0]} events, then {steady}; executions: {executions}, worst {worst}")
    assert 1000 <= looks <= 1100 and executions == 3 and worst < MAX_HISTORY_EVENTS

    # A continued run: its carried name, the wait it had spent (30 s left), then CapacityUnavailable.
    assert continued["error"] == "CapacityUnavailable", (continued.get("error"), continued.get("cause"))
    assert f"Gave up after {MAX_CAPACITY_WAIT_SECONDS} s" in continued["cause"]
    assert read_history(_history(platform, continued["executionArn"]))["jobName"] == name
    assert forged["error"] == "InvalidInput" and CONTINUATION_KEY in forged["cause"]


def test_the_pipeline_role_may_continue_a_run_in_its_own_state_machine_only(platform: Platform) -> None:
    """ContinueRun's grant (run_continuation.py), through the embedded IAM: StartExecution on the pipeline itself,
    nothing else (here the pool cleanup's machine is refused)."""
    from botocore.exceptions import ClientError

    from trainstack.embedded_aws.assumed_role_credentials import role_client
    from trainstack.platform.constructs.run_continuation import CONTINUATION_KEY

    sfn = platform.client("stepfunctions")
    role = sfn.describe_state_machine(stateMachineArn=platform.state_machine_arn)["roleArn"]
    as_pipeline = role_client(
        platform.aws.endpoint_url,
        platform.aws.region,
        "stepfunctions",
        role,
        "pipeline",
        assumer=assumer_of(role, platform.state_machine_arn),
    )
    # A continuation input the run refuses at once (its names do not match): the start itself is what is tested.
    started = as_pipeline.start_execution(
        stateMachineArn=platform.state_machine_arn,
        name=f"continue-{uuid.uuid4().hex[:8]}",
        input=json.dumps({CONTINUATION_KEY: {"run_name": "x"}, "input": {}}),
    )["executionArn"]
    assert wait_for_execution(sfn, started, timeout=120)["error"] == "InvalidInput"
    cleanup = f"{platform.state_machine_arn}-pool-cleanup"
    with pytest.raises(ClientError) as refused:
        as_pipeline.start_execution(stateMachineArn=cleanup, input="{}")
    assert refused.value.response["Error"]["Code"] in ("AccessDeniedException", "AccessDenied")
