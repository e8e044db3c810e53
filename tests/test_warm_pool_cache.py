"""The warm pool's persistent cache (SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY) on the embedded AWS: a job on
a reused pool finds the base model that the previous job of that pool pulled from S3, and skips the download.

Two console-style executions with `model_s3_uri` (the large-model path, weights.py) and a keep-alive; the
second reuses the first's pool. Needs the embedded executor to give each host of a job the pool's cache
folder in that variable, kept per pool and gone when the pool ends (the executor's part of issue 13).
"""

from __future__ import annotations

import pytest

# The deployed state machine, a clean warm-pool slate and the execution helpers of the pipeline tests.
from test_pipeline_executions import QUICK, Platform, _output, platform, run  # noqa: F401

pytestmark = pytest.mark.slow


def job_log(deployed: Platform, job_name: str) -> str:
    """Every line the job's hosts logged (its streams are `<job>/<host>-<epoch>`)."""
    logs, group = deployed.client("logs"), "/aws/sagemaker/TrainingJobs"
    # By stream name: moto's FilterLogEvents ignores logStreamNamePrefix and would mix in other jobs' lines.
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job_name}/")["logStreams"]
    assert streams, f"no log streams for {job_name}"
    return "\n".join(
        event["message"]
        for stream in streams
        for event in logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])["events"]
    )


def test_second_run_on_a_reused_pool_does_not_download_the_model_again(platform: Platform) -> None:  # noqa: F811
    # MODEL_S3_BUCKET is the data bucket (the state machine sets it); stage_demo_data put the model there.
    run_input = {
        "keep_alive_seconds": 300,
        "hyperparameters": {**QUICK, "model_s3_uri": "models/tiny-llm/"},
    }
    first = _output(run(platform, run_input))
    assert first["warmPool"]["status"] == "Available", first["warmPool"]
    second = _output(run(platform, run_input))
    assert second["warmPool"]["reusable_pool"] == first["jobName"]

    first_log, second_log = job_log(platform, first["jobName"]), job_log(platform, second["jobName"])
    assert "warm-pool cache miss: s3://" in first_log
    assert "warm-pool cache hit: s3://" in second_log
    assert "warm-pool cache miss" not in second_log
    # Neither s5cmd nor boto3 copied anything (weights.pull_weights logs one of these before copying).
    assert "pulling weights with s5cmd" not in second_log and "s5cmd not on PATH; pulling" not in second_log
