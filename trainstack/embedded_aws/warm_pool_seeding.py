"""A switch for tests: retained warm pools without running their jobs.

Embedded only, no AWS counterpart. `POST /trainstack-api/seed-warm-pools` with
`{"request": <CreateTrainingJob request with a keep-alive>, "count": 150}` (or
`trainstack.embedded_aws.testing.seed_warm_pools`) records `count` jobs named `<TrainingJobName>-<i>` as
Completed with an Available pool, as if each had run and kept its instances. The request is validated and the
training-job and warm-pool quotas are checked as for real jobs, so only states SageMaker can reach are seeded.
Used where a test needs more pools than one ListTrainingJobs page (100) and real jobs would take minutes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .json_protocol import AwsError
from .sagemaker_request_rules import validate_create_training_job
from .test_controls import CONTROL_PREFIX, JsonControl
from .training_executor import TrainingExecutor
from .training_job_state import TrainingJob, transition, utcnow

CONTROL_PATH = f"{CONTROL_PREFIX}seed-warm-pools"
MAX_SEEDED = 1000


def seed_retained_pool(executor: TrainingExecutor, request: dict[str, Any]) -> str:
    """A job that already ran and kept its pool (Completed, pool Available), without running anything.

    The request is validated as CreateTrainingJob validates it and must ask for a keep-alive; quotas are
    checked as SageMaker checks them when a pool is kept, so the seeded state is one AWS can reach."""
    request = json.loads(json.dumps(request))
    request.setdefault("StoppingCondition", {}).setdefault("MaxRuntimeInSeconds", 86400)
    validate_create_training_job(request, executor.longest_run_time())
    with executor.lock:
        name = request["TrainingJobName"]
        if name in executor.jobs:
            raise AwsError("ResourceInUse", f"a training job named {name} already exists")
        job = TrainingJob(request=request, arn=executor.job_arn(name))
        if job.keep_alive <= 0:
            raise AwsError("ValidationException", "a seeded pool needs ResourceConfig.KeepAlivePeriodInSeconds")
        executor.capacity.check_training_quota(job, None)
        executor.capacity.offer_warm_pool(job)
        if job.warm_pool is None:
            raise AwsError("ResourceLimitExceeded", f"the warm-pool quota of {job.instance_type} is used up")
        now = utcnow()
        job.status = "Completed"
        job.training_start = job.training_end = now
        transition(job, "Completed")
        executor.jobs[name] = job
        return job.arn


def seed_warm_pools_control(app: Any, executor: Callable[[], TrainingExecutor | None]) -> JsonControl:
    """`executor` is read per call: the server creates it once it knows its port."""

    def seed(body: dict[str, Any]) -> dict[str, Any]:
        request, count = body["request"], int(body.get("count", 1))
        if not 1 <= count <= MAX_SEEDED:
            raise ValueError(f"count must be 1..{MAX_SEEDED}, got {count}")
        running = executor()
        if running is None:
            raise ValueError("the embedded AWS has not started its training executor")
        base = request["TrainingJobName"]
        arns = [seed_retained_pool(running, {**request, "TrainingJobName": f"{base}-{i}"}) for i in range(count)]
        return {"TrainingJobArns": arns}

    return JsonControl(app, CONTROL_PATH, seed)
