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
from collections.abc import Callable, Iterable
from typing import Any

from .json_protocol import AwsError, StartResponse, WsgiApp, WsgiEnviron
from .training_executor import TrainingExecutor

CONTROL_PATH = "/trainstack-api/seed-warm-pools"
MAX_SEEDED = 1000


class SeedWarmPoolsControl:
    """WSGI middleware answering `POST /trainstack-api/seed-warm-pools`; everything else goes to `app`."""

    def __init__(self, app: WsgiApp, executor: Callable[[], TrainingExecutor | None]) -> None:
        self._app = app
        self._executor = executor  # created once the server knows its port

    def __call__(self, environ: WsgiEnviron, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != CONTROL_PATH:
            return self._app(environ, start_response)
        status, answer = "200 OK", {}
        try:
            if environ.get("REQUEST_METHOD") != "POST":
                raise ValueError(f"use POST {CONTROL_PATH}")
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            answer = {"TrainingJobArns": self._seed(body["request"], int(body.get("count", 1)))}
        except (ValueError, KeyError, TypeError) as error:
            status, answer = "400 Bad Request", {"message": str(error)}
        except AwsError as error:
            status, answer = "400 Bad Request", {"code": error.code, "message": error.message}
        payload = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    def _seed(self, request: dict[str, Any], count: int) -> list[str]:
        if not 1 <= count <= MAX_SEEDED:
            raise ValueError(f"count must be 1..{MAX_SEEDED}, got {count}")
        executor = self._executor()
        if executor is None:
            raise ValueError("the embedded AWS has not started its training executor")
        base = request["TrainingJobName"]
        return [
            executor.seed_retained_pool({**request, "TrainingJobName": f"{base}-{index}"}) for index in range(count)
        ]
