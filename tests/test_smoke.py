"""`make smoke` proven against the embedded AWS: the same script a user runs against a real account; with no
`--instance-type` it runs the environment's own (`local`: ml.m5.xlarge, whose quota the account has)."""

from __future__ import annotations

from typing import Any

import pytest

from trainstack.cli.session import Session
from trainstack.smoke import Smoke, load_prices, main

pytestmark = pytest.mark.slow


def _release_pools(sagemaker: Any) -> None:
    for job in sagemaker.list_training_jobs(WarmPoolStatusEquals="Available", MaxResults=100)["TrainingJobSummaries"]:
        sagemaker.update_training_job(
            TrainingJobName=job["TrainingJobName"], ResourceConfig={"KeepAlivePeriodInSeconds": 0}
        )


def test_smoke_passes_on_the_deployed_local_platform(deployed_local_platform, tiny_model_dir, capsys) -> None:
    aws = deployed_local_platform.aws
    # The warm-pool check needs headroom in the ml.m5.xlarge warm-pool quota (2 in config/local.yaml).
    _release_pools(aws.client("sagemaker"))
    code = main(
        [
            "--env", "local",
            "--endpoint-url", aws.endpoint_url,
            "--model-dir", str(tiny_model_dir),
            "--timeout", "600",
            "--poll-seconds", "0.5",  # the embedded runs take seconds, not the minutes of a real account's
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    for check in (
        "definition validates",
        "Train state takes the pipeline's request (TestState)",
        "run A: 1 instance, keep-alive",
        "checkpoint uploaded to the artifacts bucket",
        "run B: same request, reuses the pool",
        "warm pool reused by the next matching run",
        "warm pool released (UpdateTrainingJob keep-alive 0)",
        "run C: 2 instances",
    ):
        line = next(line for line in printed.splitlines() if check in line)
        assert "passed" in line, line
    # Until the pool cleanup follows FAILED runs (#16), the smoke says so instead of failing; then run D proves it.
    cleanup = next(line for line in printed.splitlines() if "pool cleanup follows a FAILED run" in line)
    assert "passed" in cleanup or ("skipped" in cleanup and "ABORTED, TIMED_OUT only" in cleanup), cleanup
    assert "Estimated total: $" in printed and "an estimate, not your bill" in printed
    assert "2 × ml.m5.xlarge" in printed and "0.230" in printed
    # Nothing the smoke created keeps billing.
    sagemaker = aws.client("sagemaker")
    assert not sagemaker.list_training_jobs(WarmPoolStatusEquals="Available", MaxResults=100)["TrainingJobSummaries"]


def test_the_smoke_tests_the_deployed_train_state_with_the_request_the_pipeline_builds(
    deployed_local_platform, tiny_model_dir
) -> None:
    """The TestState step alone (no runs): the deployed Train state, given run A's request as the pipeline builds
    it and a mocked job, succeeds and evaluates to exactly that request; nothing is created."""
    aws = deployed_local_platform.aws
    _release_pools(aws.client("sagemaker"))  # the request carries a keep-alive only where the pool quota has room
    smoke = Smoke(Session.open("local", aws.endpoint_url), "ml.m5.xlarge", 2, 300, 60)
    run_input = {
        "instance_type": "ml.m5.xlarge",
        "instance_count": 1,
        "channels": smoke.stage_data(tiny_model_dir),
        "keep_alive_seconds": 300,
    }
    sagemaker = aws.client("sagemaker")
    jobs_before = len(sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"])
    smoke.check_train_request(run_input)
    [check] = smoke.report.checks
    assert check.outcome == "passed", check.detail
    assert "SUCCEEDED → " in check.detail
    for member in ("KeepAlivePeriodInSeconds", "RetryStrategy", "EnableSageMakerMetricsTimeSeries"):
        assert member in check.detail, check.detail
    assert len(sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]) == jobs_before


def test_smoke_refuses_an_instance_family_the_environment_does_not_allow(deployed_local_platform, capsys) -> None:
    code = main(
        [
            "--env",
            "local",
            "--endpoint-url",
            deployed_local_platform.aws.endpoint_url,
            "--instance-type",
            "ml.t3.medium",
        ]
    )
    assert code == 1
    assert "is of family 't3', which environment 'local' does not allow" in capsys.readouterr().err


def test_the_price_table_is_labelled_and_covers_the_smoke_types() -> None:
    prices = load_prices()
    assert prices["region"] and "pricing" in prices["source"]
    assert {"ml.m5.large", "ml.m5.xlarge"} <= set(prices["on_demand_usd_per_hour"])


@pytest.mark.parametrize("value", ["0", "-1", "61", "soon"])
def test_a_poll_interval_outside_0_to_60_seconds_is_refused_naming_the_option(value: str, capsys) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["--env", "local", "--poll-seconds", value])
    assert refused.value.code == 2
    assert f"--poll-seconds: expected seconds above 0 and at most 60, got '{value}'" in capsys.readouterr().err
