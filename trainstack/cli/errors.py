"""Errors as sentences: what went wrong and what to do, never a traceback.

Commands raise `CliError` for problems they recognise; everything botocore or the config loader raises
is translated by `explain` here, in one place, so every command words the same failure the same way.
`SentenceErrors` is the root command group: it catches whatever a command raises and prints the sentence.
Set TRAINSTACK_DEBUG=1 to get the traceback instead (for bug reports).
"""

from __future__ import annotations

import os
from typing import Any

import typer
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    TokenRetrievalError,
)
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from trainstack.config import ConfigError
from trainstack.progress import WatchError

# SageMaker, Step Functions and STS spell the same three problems differently.
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}
_BAD_CREDENTIALS = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
_THROTTLED = {"ThrottlingException", "Throttling", "TooManyRequestsException"}


class CliError(Exception):
    """A problem the CLI recognised; the message is the whole sentence shown to the user."""


def explain(error: BaseException) -> str | None:
    """The sentence for an error, or None when it is not one we know how to word (a bug)."""
    if isinstance(error, CliError | ConfigError):
        return str(error)
    if isinstance(error, WatchError):
        return f"{error}: the run itself goes on (trainstack status shows it)."
    if isinstance(error, TimeoutError):
        return f"{error}."
    if isinstance(error, NoCredentialsError):
        return (
            "AWS credentials not found: configure them (aws configure, aws sso login, AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or point at the embedded AWS with --endpoint-url "
            "(make local-up prints it)."
        )
    if isinstance(error, PartialCredentialsError | ProfileNotFound | TokenRetrievalError):
        return f"AWS credentials are incomplete: {error}."
    if isinstance(error, EndpointConnectionError):
        return (
            f"Could not reach {error.kwargs.get('endpoint_url', 'the AWS endpoint')}: check the network, or, for the "
            "embedded AWS, that it is running (make local-up) and AWS_ENDPOINT_URL / --endpoint-url match its URL."
        )
    if isinstance(error, ClientError):
        return _explain_client_error(error)
    if isinstance(error, BotoCoreError):
        return f"AWS call failed: {error}."
    return None


def _explain_client_error(error: ClientError) -> str:
    details: dict[str, Any] = error.response.get("Error", {})
    code = str(details.get("Code", "Unknown"))
    message = str(details.get("Message", "")).rstrip(".")
    operation = error.operation_name
    if code in _EXPIRED:
        return f"AWS credentials have expired ({code}): refresh them (aws sso login, or new session keys) and retry."
    if code in _BAD_CREDENTIALS:
        return f"AWS rejected the credentials ({code}) on {operation}: check AWS_PROFILE or the access keys in use."
    if code in _DENIED:
        return (
            f"Access denied on {operation}: {message}. The identity in use needs that permission; "
            "ask the platform team for the operator policy."
        )
    if code in _THROTTLED:
        return f"AWS throttled {operation} ({code}) even after retries: wait a moment and retry."
    return f"{operation} failed ({code}): {message}."


def print_error(message: str) -> None:
    # A Text, not markup: messages quote patterns such as [A-Za-z0-9] that rich would take for tags.
    Console(stderr=True, highlight=False, soft_wrap=True).print(Text("Error: ", style="bold red") + Text(message))


class SentenceErrors(TyperGroup):
    """The root group: commands (and the global-option callback) run inside it, so one handler covers all."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as error:
            # Usage errors (a bad flag) are typer's own and already read well; let them through.
            if type(error).__module__.startswith("typer"):
                raise
            if os.environ.get("TRAINSTACK_DEBUG"):
                raise
            message = explain(error)
            if message is None:
                message = (
                    f"unexpected {type(error).__name__}: {error}. This is a bug in trainstack; rerun with "
                    "TRAINSTACK_DEBUG=1 for the traceback and report it."
                )
            print_error(message)
            raise typer.Exit(1) from None
