"""A switch for tests: the next N calls of an operation take longer to answer, as on a cold or busy AWS.

Embedded only, no AWS counterpart. `POST /trainstack-api/delay` with
`{"operation": "SageMaker.CreateTrainingJob", "seconds": 3, "count": 1}` (or
`trainstack.embedded_aws.testing.delay`) arms it; each matching JSON-protocol request then takes one from the
count and waits `seconds` before it is served as usual. Delaying CreateTrainingJob reproduces the ordering a
first run on a busy machine meets: the state machine's Train task is scheduled (its history names the job)
while the job does not exist yet, so DescribeTrainingJob answers ValidationException "Requested resource not
found" until the create returns. Only the caller of the delayed request waits (the server is threaded).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .test_controls import CONTROL_PREFIX, JsonControl

CONTROL_PATH = f"{CONTROL_PREFIX}delay"
MAX_SECONDS = 60.0
# X-Amz-Target prefix of each service whose calls may be delayed.
TARGET_PREFIXES = {"SageMaker": "SageMaker.", "StepFunctions": "AWSStepFunctions."}


class DelayedCalls:
    """Pending delays by "Service.Operation"; a JsonHandler that waits, then lets the request through."""

    def __init__(self) -> None:
        self._pending: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def arm(self, operation: str, seconds: float, count: int) -> dict[str, Any]:
        service, _, name = operation.partition(".")
        if service not in TARGET_PREFIXES or not name:
            raise ValueError(
                f"operation must be '<Service>.<Operation>' with Service one of {', '.join(TARGET_PREFIXES)}, "
                f"got {operation!r}"
            )
        if not 0 <= seconds <= MAX_SECONDS or not 0 <= count <= 100:
            raise ValueError(f"expected seconds 0..{MAX_SECONDS:.0f} and count 0..100, got {seconds}, {count}")
        with self._lock:
            self._pending[f"{TARGET_PREFIXES[service]}{name}"] = (seconds, count)
        return {"operation": operation, "seconds": seconds, "count": count}

    def handle(self, target: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        with self._lock:
            seconds, left = self._pending.get(target, (0.0, 0))
            if left <= 0:
                return None
            self._pending[target] = (seconds, left - 1)
        time.sleep(seconds)
        return None  # not answered here: the next handler (or moto) serves the request as usual


def delay_control(app: Any, delays: DelayedCalls) -> JsonControl:
    def arm(body: dict[str, Any]) -> dict[str, Any]:
        return delays.arm(str(body["operation"]), float(body.get("seconds", 1)), int(body.get("count", 1)))

    return JsonControl(app, CONTROL_PATH, arm)
