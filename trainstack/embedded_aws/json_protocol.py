"""The AWS JSON 1.1 wire protocol, as far as our own service handlers need it.

moto answers most requests. The few operations it lacks (SageMaker quotas, real training jobs) are answered
by handlers that speak the same protocol: an `X-Amz-Target: <Prefix>.<Operation>` header, a JSON body, and
errors as `{"__type": ..., "message": ...}` which botocore turns into typed exceptions.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol

# moto accepts any credentials; these are not secrets, and never real ones.
DUMMY_CREDENTIAL = "testing"
# The embedded services (Step Functions, SageMaker, EventBridge) assume roles as their service principal, as AWS's
# do: `service-principal:sagemaker.amazonaws.com` as the access key; the resource they act for (aws:SourceArn) in
# SOURCE_ARN_HEADER. The IAM enforcement evaluates the role's trust policy for them (and for anyone else).
SERVICE_CREDENTIAL_PREFIX = "service-principal:"
SOURCE_ARN_HEADER = "X-Trainstack-Source-Arn"


def endpoint_client(endpoint_url: str, region: str, service: str, **kwargs: Any) -> Any:
    """A boto3 client for the embedded endpoint only, with the dummy credentials (never a real profile)."""
    import boto3

    kwargs["config"] = no_host_prefix(kwargs.get("config"))
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=DUMMY_CREDENTIAL,
        aws_secret_access_key=DUMMY_CREDENTIAL,
        **kwargs,
    )


def no_host_prefix(config: Any = None) -> Any:
    """`config` that sends every call to the endpoint as given: botocore would put an operation's host prefix in
    front of the host (Step Functions' TestState goes to `sync-<host>`), and `sync-127.0.0.1` resolves nowhere."""
    from botocore.config import Config

    plain = Config(inject_host_prefix=False)
    return plain if config is None else config.merge(plain)


WsgiEnviron = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[WsgiEnviron, StartResponse], Iterable[bytes]]


class AwsError(Exception):
    """An error answered to the client the way AWS does: botocore maps `code` to `client.exceptions.<code>`."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class JsonHandler(Protocol):
    """Answers some operations of one JSON-protocol service; `None` means "not mine, let moto answer"."""

    def handle(self, target: str, payload: dict[str, Any]) -> dict[str, Any] | None: ...


def _default(value: Any) -> Any:
    # The JSON protocol sends timestamps as epoch seconds; botocore parses them back into datetimes.
    if isinstance(value, dt.datetime):
        return value.timestamp()
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, default=_default).encode()


class AdapterApplication:
    """WSGI middleware: offers each JSON request to our handlers first and falls through to moto."""

    def __init__(self, moto_app: WsgiApp, handlers: list[JsonHandler]) -> None:
        self._moto_app = moto_app
        self._handlers = handlers

    def __call__(self, environ: WsgiEnviron, start_response: StartResponse) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET")
        if not target:
            return self._moto_app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        # moto reads the body again if no handler answers: hand it a fresh stream.
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return self._moto_app(environ, start_response)
        try:
            for handler in self._handlers:
                answer = handler.handle(target, payload)
                if answer is not None:
                    return _respond(start_response, 200, encode(answer))
        except AwsError as error:
            return _respond(start_response, error.status, encode({"__type": error.code, "message": error.message}))
        return self._moto_app(environ, start_response)


def _respond(start_response: StartResponse, status: int, body: bytes) -> list[bytes]:
    reason = "OK" if status == 200 else "Bad Request"
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("Content-Length", str(len(body))),
        # botocore exposes it as ResponseMetadata.RequestId; Step Functions quotes it in error causes.
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    start_response(f"{status} {reason}", headers)
    return [body]
