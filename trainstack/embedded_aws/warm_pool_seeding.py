"""A switch for tests: retained warm pools without running their jobs.

Embedded only, no AWS counterpart. `POST /trainstack-api/seed-warm-pools` with
`{"request": <CreateTrainingJob request with a keep-alive>, "count": 150}` (or
`trainstack.embedded_aws.testing.seed_warm_pools`) records `count` jobs named `<TrainingJobName>-<i>` as
Completed with an Available pool, as if each had run and kept its instances. The request is validated and the
training-job and warm-pool quotas are checked as for real jobs, so only states SageMaker can reach are seeded.
Used where a test needs more pools than one ListTrainingJobs page (100) and real jobs would take minutes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .test_controls import CONTROL_PREFIX, JsonControl
from .training_executor import TrainingExecutor

CONTROL_PATH = f"{CONTROL_PREFIX}seed-warm-pools"
MAX_SEEDED = 1000


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
        arns = [running.seed_retained_pool({**request, "TrainingJobName": f"{base}-{i}"}) for i in range(count)]
        return {"TrainingJobArns": arns}

    return JsonControl(app, CONTROL_PATH, seed)
