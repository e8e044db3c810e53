"""Credentials of a role, assumed through the embedded endpoint's STS, for calls AWS makes as that role.

Step Functions calls task APIs as the state machine's role; SageMaker runs a job as its RoleArn; EventBridge
starts a target as the target's role. Each assumes the role as its service principal (`Assumer`), for the
resource it acts for (aws:SourceArn), so the role's trust policy decides, as on AWS; every call they make then
carries an `assumed-role/<role>/<session>` identity that the IAM enforcement evaluates. Sessions are cached per
(role, session name, assumer) and renewed ten minutes before they expire.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any

from .json_protocol import SERVICE_CREDENTIAL_PREFIX, SOURCE_ARN_HEADER

STEP_FUNCTIONS = "states.amazonaws.com"
SAGEMAKER = "sagemaker.amazonaws.com"
EVENTBRIDGE = "events.amazonaws.com"
# A Lambda function's role (e.g. a custom resource's provider), assumed for the function (aws:SourceArn).
LAMBDA = "lambda.amazonaws.com"

_RENEW_BEFORE = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class RoleCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: dt.datetime

    def client_kwargs(self) -> dict[str, str]:
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
        }

    def environment(self) -> dict[str, str]:
        """What a process needs to use them through the default credential chain."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


@dataclass(frozen=True)
class Assumer:
    """The AWS service that assumes a role and the resource it acts for (aws:SourceArn; its account is
    aws:SourceAccount): a training job for SageMaker, a state machine for Step Functions, a rule for EventBridge."""

    service: str
    source_arn: str | None = None

    def sts_client(self, endpoint_url: str, region: str) -> Any:
        import boto3

        client = boto3.client(
            "sts",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=SERVICE_CREDENTIAL_PREFIX + self.service,
            aws_secret_access_key=SERVICE_CREDENTIAL_PREFIX + self.service,
        )
        if self.source_arn:
            source = self.source_arn

            def add_source(request: Any, **_: Any) -> None:
                request.headers[SOURCE_ARN_HEADER] = source

            client.meta.events.register("before-sign.sts.AssumeRole", add_source)
        return client


_cache: dict[tuple[str, str, str, Assumer], RoleCredentials] = {}
_lock = threading.Lock()


def assume_role(
    endpoint_url: str, region: str, role_arn: str, session_name: str, *, assumer: Assumer
) -> RoleCredentials:
    """Assume `role_arn` as `assumer` (the role's trust policy must allow it), cached."""
    key = (endpoint_url, role_arn, session_name, assumer)
    now = dt.datetime.now(dt.UTC)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached.expiration - _RENEW_BEFORE > now:
            return cached
    answer = assumer.sts_client(endpoint_url, region).assume_role(
        RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=3600
    )["Credentials"]
    credentials = RoleCredentials(
        answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"], answer["Expiration"]
    )
    with _lock:
        _cache[key] = credentials
    return credentials


def role_client(
    endpoint_url: str, region: str, service: str, role_arn: str, session_name: str, *, assumer: Assumer, **kwargs: Any
) -> Any:
    """A boto3 client for the embedded endpoint that calls as `role_arn`, assumed by `assumer`."""
    import boto3

    credentials = assume_role(endpoint_url, region, role_arn, session_name, assumer=assumer)
    return boto3.client(service, endpoint_url=endpoint_url, region_name=region, **credentials.client_kwargs(), **kwargs)


def forget_sessions() -> None:
    """moto's reset drops its STS sessions; so must we."""
    with _lock:
        _cache.clear()
