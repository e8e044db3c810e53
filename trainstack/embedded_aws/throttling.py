"""A switch for tests: the next N calls of an operation answer as AWS does when it throttles the caller.

Embedded only, no AWS counterpart. `POST /trainstack-api/throttle` with
`{"operation": "SageMaker.CreateTrainingJob", "count": 1}` (or `trainstack.embedded_aws.testing.throttle`)
arms it; each matching JSON-protocol request then takes one from the count and is answered with the error
that service's API reference names for throttling, with HTTP 400:
- SageMaker: `ThrottlingException` "Rate exceeded" (SageMaker's common errors; not in its model, so clients see
  a generic ClientError and Step Functions a `SageMaker.AmazonSageMakerException` / `SageMaker.SageMakerException`);
- Service Quotas: `TooManyRequestsException` (a modelled error: `ServiceQuotas.TooManyRequestsException`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .json_protocol import AwsError, StartResponse, WsgiApp, WsgiEnviron

CONTROL_PATH = "/trainstack-api/throttle"


@dataclass(frozen=True)
class ThrottledService:
    target_prefix: str  # X-Amz-Target before the operation name
    code: str
    message: str


SERVICES: dict[str, ThrottledService] = {
    "SageMaker": ThrottledService("SageMaker.", "ThrottlingException", "Rate exceeded"),
    "ServiceQuotas": ThrottledService(
        "ServiceQuotasV20190624.",
        "TooManyRequestsException",
        "Due to throttling, the request was denied. Slow down the rate of request calls, or request an increase "
        "for this quota.",
    ),
}


class Throttle:
    """Pending throttles by "Service.Operation"; also a JsonHandler that answers the throttled calls."""

    def __init__(self) -> None:
        self._pending: dict[str, int] = {}
        self._lock = threading.Lock()

    def arm(self, operation: str, count: int) -> None:
        service, _, name = operation.partition(".")
        if service not in SERVICES or not name:
            raise ValueError(
                f"operation must be '<Service>.<Operation>' with Service one of {', '.join(SERVICES)}, "
                f"got {operation!r}"
            )
        if not isinstance(count, int) or count < 0:
            raise ValueError(f"count must be a whole number >= 0, got {count!r}")
        with self._lock:
            self._pending[operation] = count

    def pending(self, operation: str) -> int:
        with self._lock:
            return self._pending.get(operation, 0)

    def handle(self, target: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        for service, spec in SERVICES.items():
            if target.startswith(spec.target_prefix):
                operation = f"{service}.{target[len(spec.target_prefix) :]}"
                with self._lock:
                    left = self._pending.get(operation, 0)
                    if left <= 0:
                        return None
                    self._pending[operation] = left - 1
                raise AwsError(spec.code, spec.message)
        return None


class ThrottleControl:
    """WSGI middleware answering `POST /trainstack-api/throttle`; everything else goes to `app`."""

    def __init__(self, app: WsgiApp, throttle: Throttle) -> None:
        self._app = app
        self._throttle = throttle

    def __call__(self, environ: WsgiEnviron, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != CONTROL_PATH:
            return self._app(environ, start_response)
        status, answer = "200 OK", {}
        try:
            if environ.get("REQUEST_METHOD") != "POST":
                raise ValueError(f"use POST {CONTROL_PATH}")
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            self._throttle.arm(body.get("operation", ""), body.get("count", 1))
            answer = {"operation": body["operation"], "count": self._throttle.pending(body["operation"])}
        except (ValueError, KeyError) as error:
            status, answer = "400 Bad Request", {"message": str(error)}
        payload = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]
