"""Embedded-only test switches at `POST /trainstack-api/<name>` with a JSON body (no AWS counterpart).

`JsonControl` answers one such path and passes everything else on; the switches themselves live beside what
they switch (`warm_pool_seeding.py`, `capacity_errors.py`; the older `throttling.py` has its own copy).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from .json_protocol import AwsError, StartResponse, WsgiApp, WsgiEnviron

CONTROL_PREFIX = "/trainstack-api/"


class JsonControl:
    """WSGI middleware: `POST <path>` calls `handle(body)` and answers its result as JSON; 400 on bad input."""

    def __init__(self, app: WsgiApp, path: str, handle: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self._app = app
        self._path = path
        self._handle = handle

    def __call__(self, environ: WsgiEnviron, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != self._path:
            return self._app(environ, start_response)
        status, answer = "200 OK", {}
        try:
            if environ.get("REQUEST_METHOD") != "POST":
                raise ValueError(f"use POST {self._path}")
            length = int(environ.get("CONTENT_LENGTH") or 0)
            answer = self._handle(json.loads(environ["wsgi.input"].read(length) or b"{}"))
        except (ValueError, KeyError, TypeError) as error:
            status, answer = "400 Bad Request", {"message": str(error)}
        except AwsError as error:
            status, answer = "400 Bad Request", {"code": error.code, "message": error.message}
        payload = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]
