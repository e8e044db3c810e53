"""One CLI invocation's view of an environment: its config, resource names and AWS clients.

The endpoint is `--endpoint-url`, else AWS_ENDPOINT_URL (the embedded AWS sets it for its subprocesses),
else, for an embedded environment only, the URL a running `make local-up` server recorded. A real
environment uses boto3's normal credential chain in the environment's own region, so a stray profile
region never sends a command to the wrong place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from trainstack.cli.errors import CliError
from trainstack.config import EnvironmentConfig, ResourceNames, app_dir, load_environment

# Where `python -m trainstack.embedded_aws up` records its URL (trainstack/embedded_aws/__main__.py).
EMBEDDED_STATE_FILE = app_dir() / ".local-aws" / "server.json"
# The embedded AWS accepts any credentials; boto3 still refuses to sign a request without some.
_EMBEDDED_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
_RETRIES = Config(retries={"mode": "standard", "max_attempts": 5})


def _embedded_endpoint() -> str | None:
    try:
        return str(json.loads(EMBEDDED_STATE_FILE.read_text(encoding="utf-8"))["url"])
    except (OSError, ValueError, KeyError):
        return None


@dataclass
class Session:
    config: EnvironmentConfig
    endpoint_url: str | None
    _boto: boto3.Session
    _clients: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, env: str, endpoint_url: str | None) -> Session:
        config = load_environment(env)
        endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        if endpoint is None and config.embedded:
            endpoint = _embedded_endpoint()
            if endpoint is None:
                raise CliError(
                    f"Environment '{config.name}' runs on the embedded AWS, which is not running: start it with "
                    "make local-up (python -m trainstack.embedded_aws up) or pass --endpoint-url."
                )
        boto = boto3.Session(region_name=config.region)
        if endpoint is not None and config.embedded and boto.get_credentials() is None:
            boto = boto3.Session(region_name=config.region, **_EMBEDDED_CREDENTIALS)
        return cls(config=config, endpoint_url=endpoint, _boto=boto)

    @classmethod
    def lazy(cls, env: str, endpoint_url: str | None) -> Session:
        """A stand-in that opens the session on first use (so `--help` needs no config or endpoint)."""
        return _LazySession(lambda: cls.open(env, endpoint_url))  # type: ignore[return-value]

    @property
    def names(self) -> ResourceNames:
        return ResourceNames.of(self.config)

    @property
    def region(self) -> str:
        return self.config.region

    @property
    def where(self) -> str:
        """How messages name the place they looked: the region, and the endpoint when it is not AWS's own."""
        return f"{self.region} at {self.endpoint_url}" if self.endpoint_url else self.region

    @property
    def cli(self) -> str:
        """How advice spells this CLI for this environment (`--env` only where it is not the default)."""
        return "trainstack" if self.config.name == "local" else f"trainstack --env {self.config.name}"

    def client(self, service: str) -> Any:
        if service not in self._clients:
            # An endpoint of our own (the embedded AWS) takes every call at the host given: no `sync-` host prefix.
            config = _RETRIES.merge(Config(inject_host_prefix=False)) if self.endpoint_url else _RETRIES
            self._clients[service] = self._boto.client(service, endpoint_url=self.endpoint_url, config=config)
        return self._clients[service]

    # --- the state machine and its executions ------------------------------------------------------------

    @property
    def state_machine_arn(self) -> str:
        return self.names.arn("states", f"stateMachine:{self.names.state_machine}")

    def execution_arn(self, name_or_arn: str) -> str:
        if name_or_arn.startswith("arn:"):
            return name_or_arn
        return self.names.arn("states", f"execution:{self.names.state_machine}:{name_or_arn}")

    def not_deployed(self) -> CliError:
        # `make deploy` needs an account's credentials and an approval prompt; the embedded AWS has its own path.
        how = "make local-up" if self.config.embedded else f"make deploy ENV={self.config.name}"
        return CliError(
            f"No state machine {self.names.state_machine} in {self.where}: deploy the environment first ({how})."
        )

    def describe_state_machine(self) -> dict[str, Any]:
        try:
            return self.client("stepfunctions").describe_state_machine(stateMachineArn=self.state_machine_arn)
        except ClientError as error:
            if error.response["Error"]["Code"] == "StateMachineDoesNotExist":
                raise self.not_deployed() from None
            raise

    def definition(self) -> dict[str, Any]:
        return json.loads(self.describe_state_machine()["definition"])

    def describe_execution(self, name_or_arn: str) -> dict[str, Any]:
        try:
            return self.client("stepfunctions").describe_execution(executionArn=self.execution_arn(name_or_arn))
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
                self.describe_state_machine()  # a missing state machine is the better message
                raise CliError(
                    f"No execution {name_or_arn} of {self.names.state_machine} in {self.where}: "
                    "trainstack status lists the recent ones."
                ) from None
            raise

    def describe_training_job(self, name: str) -> dict[str, Any] | None:
        """The job, or None when there is none of that name (SageMaker answers ValidationException)."""
        try:
            return self.client("sagemaker").describe_training_job(TrainingJobName=name)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
                return None
            raise


class _LazySession:
    def __init__(self, opener: Callable[[], Session]) -> None:
        self._opener = opener
        self._session: Session | None = None

    def __getattr__(self, name: str) -> Any:
        if self._session is None:
            self._session = self._opener()
        return getattr(self._session, name)
