"""Helpers for code that drives the embedded AWS (tests, bench, demos): a tiny script-mode job and waits."""

from __future__ import annotations

import io
import json
import tarfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ROLE = "arn:aws:iam::123456789012:role/test-training"
TERMINAL = ("Completed", "Failed", "Stopped")


def create_test_role(iam: Any) -> str:
    """The role the embedded AWS's own tests pass to jobs and state machines (ROLE).

    The embedded AWS evaluates IAM for every role, so the role must exist with a policy. This one may do
    anything: it stands in for "whatever the adapter under test needs"; the platform's own roles, which
    are least-privilege, are exercised through the deployed stacks.
    """
    name = ROLE.rsplit("/", 1)[-1]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["sagemaker.amazonaws.com", "states.amazonaws.com", "events.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    anything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_role_policy(RoleName=name, PolicyName="tests-may-do-anything", PolicyDocument=json.dumps(anything))
    return ROLE


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def upload_script(s3: Any, bucket: str, script: str, name: str = "train.py") -> str:
    """Tar `script` as the SDK's sourcedir.tar.gz and return its s3:// URI."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = script.encode()
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    key = f"code/{uuid.uuid4().hex}/sourcedir.tar.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    return f"s3://{bucket}/{key}"


def job_request(name: str, bucket: str, code_uri: str, **overrides: Any) -> dict[str, Any]:
    """What the SageMaker SDK v2 Estimator sends for script mode (values JSON-encoded)."""
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": "local/image:latest", "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "HyperParameters": {
            "sagemaker_program": json.dumps("train.py"),
            "sagemaker_submit_directory": json.dumps(code_uri),
            "sagemaker_container_log_level": "20",
        },
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    request.update(overrides)
    return request


def wait_for_job(sagemaker: Any, name: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sagemaker.describe_training_job(TrainingJobName=name)
        if described["TrainingJobStatus"] in TERMINAL:
            return described
        time.sleep(0.3)
    raise AssertionError(f"training job {name} not terminal after {timeout}s")


def wait_for_execution(sfn: Any, arn: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.3)
    raise AssertionError(f"execution {arn} still running after {timeout}s")


def log_lines(logs: Any, job_name: str) -> dict[str, list[str]]:
    """Every log line of a job, by stream name."""
    group = "/aws/sagemaker/TrainingJobs"
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job_name}/")["logStreams"]
    return {
        stream["logStreamName"]: [
            event["message"]
            for event in logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])["events"]
        ]
        for stream in streams
    }


def _control(endpoint_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a test switch of the embedded AWS (`/trainstack-api/...`)."""
    if not endpoint_url.startswith("http://"):
        raise ValueError(f"expected the embedded AWS's http:// endpoint, got {endpoint_url}")
    request = urllib.request.Request(  # noqa: S310 - checked above: http:// only
        f"{endpoint_url}/trainstack-api/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310 - the embedded endpoint, http://127.0.0.1 only
        return json.loads(response.read())


def throttle(endpoint_url: str, operation: str, count: int = 1) -> dict[str, Any]:
    """Make the next `count` calls of `operation` ("SageMaker.CreateTrainingJob") answer as AWS throttles them."""
    return _control(endpoint_url, "throttle", {"operation": operation, "count": count})


def delay(endpoint_url: str, operation: str, seconds: float, count: int = 1) -> dict[str, Any]:
    """The next `count` calls of `operation` ("SageMaker.CreateTrainingJob") wait `seconds`, then are served."""
    return _control(endpoint_url, "delay", {"operation": operation, "seconds": seconds, "count": count})


def seed_warm_pools(endpoint_url: str, request: dict[str, Any], count: int) -> list[str]:
    """`count` Completed jobs `<TrainingJobName>-<i>` holding Available pools, as if each had run (no run)."""
    return _control(endpoint_url, "seed-warm-pools", {"request": request, "count": count})["TrainingJobArns"]


def fail_with_capacity_error(endpoint_url: str, instance_type: str, count: int = 1) -> dict[str, Any]:
    """The next `count` jobs of `instance_type` run, then fail with SageMaker's CapacityError (no model)."""
    return _control(endpoint_url, "capacity-error", {"instance_type": instance_type, "count": count})


def set_time_scale(endpoint_url: str, factor: float) -> float:
    """Waits for the clock (Wait states, Retry intervals, warm-pool keep-alive) run `factor` times as long as on
    AWS (1 = real time); answers the previous factor. See trainstack/embedded_aws/time_scale.py."""
    return float(_control(endpoint_url, "time-scale", {"factor": factor})["previous"])


@contextmanager
def time_scale(endpoint_url: str, factor: float) -> Iterator[float]:
    """`with time_scale(aws.endpoint_url, 1e-4):` a 7-day Wait lasts a minute; the previous factor after."""
    previous = set_time_scale(endpoint_url, factor)
    try:
        yield factor
    finally:
        set_time_scale(endpoint_url, previous)
