"""A switch for tests: the next N jobs of an instance type lose their capacity and fail as SageMaker reports it.

Embedded only, no AWS counterpart. `POST /trainstack-api/capacity-error` with
`{"instance_type": "ml.m5.xlarge", "count": 1}` (or `trainstack.embedded_aws.testing.fail_with_capacity_error`)
arms it. Each matching job then runs its code (so checkpoints reach `CheckpointConfig.S3Uri`, as SageMaker syncs
them while a job runs) and ends Failed with SageMaker's wording instead of uploading a model:
"CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance
type." (quoted in public issues, e.g. DIAGNijmegen/rse-grand-challenge#2631), as when instances are lost mid-run
and cannot be replaced.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .test_controls import CONTROL_PREFIX, JsonControl

CONTROL_PATH = f"{CONTROL_PREFIX}capacity-error"
CAPACITY_ERROR = (
    "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance type."
)


class CapacityErrors:
    """How many more jobs of each instance type fail with CAPACITY_ERROR. Thread-safe."""

    def __init__(self) -> None:
        self._pending: dict[str, int] = {}
        self._lock = threading.Lock()

    def arm(self, instance_type: str, count: int) -> int:
        if not instance_type.startswith("ml.") or not 0 <= count <= 100:
            raise ValueError(f"expected an ml.* instance type and a count of 0..100, got {instance_type!r}, {count}")
        with self._lock:
            self._pending[instance_type] = count
            return count

    def take(self, instance_type: str) -> bool:
        """True (and one fewer pending) when the next job of this type is to fail."""
        with self._lock:
            left = self._pending.get(instance_type, 0)
            if left > 0:
                self._pending[instance_type] = left - 1
            return left > 0


def capacity_error_control(app: Any, errors: Callable[[], CapacityErrors | None]) -> JsonControl:
    def arm(body: dict[str, Any]) -> dict[str, Any]:
        switch = errors()
        if switch is None:
            raise ValueError("the embedded AWS has not started its training executor")
        instance_type = str(body["instance_type"])
        return {"instance_type": instance_type, "count": switch.arm(instance_type, int(body.get("count", 1)))}

    return JsonControl(app, CONTROL_PATH, arm)
