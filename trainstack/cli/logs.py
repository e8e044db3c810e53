"""`trainstack logs JOB_OR_EXECUTION [--follow]`: a training job's CloudWatch logs, every host interleaved.

SageMaker writes one stream per host to /aws/sagemaker/TrainingJobs, named `<job>/algo-N-<epoch>`. Each
poll reads every stream forward from where it stopped (GetLogEvents tokens), then prints the new events
of all streams together ordered by timestamp, each line prefixed with its host.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from botocore.exceptions import ClientError
from rich.console import Console
from rich.text import Text

from trainstack.cli import executions, output
from trainstack.cli.errors import CliError
from trainstack.cli.session import Session

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_HOST_STYLES = ("cyan", "magenta", "yellow", "green", "blue", "bright_red")
POLL_SECONDS = 2.0
# pip's line for each requirement the image already has: a third of a short job's log, never news.
PIP_NOISE = "Requirement already satisfied: "


@dataclass(order=True)
class LogLine:
    timestamp: int
    host: str
    message: str


def host_of(stream: str) -> str:
    """`<job>/algo-2-1700000000` -> `algo-2`."""
    return stream.split("/", 1)[-1].rsplit("-", 1)[0]


@dataclass
class LogTail:
    """Reads a job's streams incrementally; `poll()` returns the events that arrived since the last call."""

    logs: Any
    job_name: str
    _tokens: dict[str, str | None] = field(default_factory=dict)

    def _streams(self) -> list[str]:
        pages = self.logs.get_paginator("describe_log_streams").paginate(
            logGroupName=LOG_GROUP, logStreamNamePrefix=f"{self.job_name}/"
        )
        try:
            return [s["logStreamName"] for page in pages for s in page["logStreams"]]
        except ClientError as error:
            # The group appears with the first job's first line; before that there is nothing to read.
            if error.response["Error"]["Code"] == "ResourceNotFoundException":
                return []
            raise

    def poll(self) -> list[LogLine]:
        lines: list[LogLine] = []
        for stream in self._streams():
            token = self._tokens.get(stream)
            host = host_of(stream)
            while True:
                request: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True}
                if token:
                    request["nextToken"] = token
                page = self.logs.get_log_events(**request)
                lines.extend(LogLine(e["timestamp"], host, e["message"].rstrip("\n")) for e in page["events"])
                # The forward token stays the same once the end of the stream is reached.
                if page.get("nextForwardToken") in (None, token):
                    break
                token = page["nextForwardToken"]
            self._tokens[stream] = token
        return sorted(lines, key=lambda line: line.timestamp)  # stable: a host's own order is kept on ties


def print_lines(out: Console, lines: list[LogLine], hosts: list[str], *, show_all: bool = True) -> int:
    """Print `lines` with their host prefix; without `show_all`, pip's noise is left out. Returns how many were."""
    hidden = 0
    for line in lines:
        if not show_all and PIP_NOISE in line.message:
            hidden += 1
            continue
        if line.host not in hosts:
            hosts.append(line.host)
        style = _HOST_STYLES[hosts.index(line.host) % len(_HOST_STYLES)]
        out.print(Text(f"[{line.host}] ", style=style) + Text(line.message))
    return hidden


def resolve_job(session: Session, target: str, *, wait: bool) -> str:
    """A training job name from a job name, an execution name or an execution ARN."""
    if not target.startswith("arn:") and _JOB_NAME.match(target) and session.describe_training_job(target):
        return target
    try:
        execution = executions.view(session, target, with_job=False)
    except CliError:
        raise CliError(
            f"No training job or execution named {target} in {session.where}: "
            "trainstack status lists the recent executions and their jobs."
        ) from None
    while execution.job_name is None and execution.status == "RUNNING" and wait:
        time.sleep(POLL_SECONDS)  # still validating or checking quotas: the job comes next
        execution = executions.view(session, target, with_job=False)
    if execution.job_name is None:
        reason = f" ({execution.error}: {execution.cause})" if execution.error else ""
        raise CliError(f"Execution {execution.name} is {execution.status} and started no training job{reason}.")
    return execution.job_name


def logs(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="JOB_OR_EXECUTION", help="Training job, or execution name/ARN.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the job ends.")] = False,
    show_all: Annotated[
        bool, typer.Option("--all", "--verbose", "-v", help="Also pip's 'Requirement already satisfied' lines.")
    ] = False,
) -> None:
    """Print a training job's CloudWatch logs, all hosts interleaved by time, each line prefixed with its host.

    Examples:

      trainstack logs cli-20261202-191500-a1b2c3 --follow

      trainstack logs JOB --all           # with pip's install lines
    """
    session: Session = ctx.obj
    out = output.console()
    job_name = resolve_job(session, target, wait=follow)
    tail = LogTail(session.client("logs"), job_name)
    hosts: list[str] = []
    hidden = 0
    if not follow:
        lines = tail.poll()
        hidden += print_lines(out, lines, hosts, show_all=show_all)
        if not lines:
            out.print(f"No log lines for {job_name} yet.", style="dim")
        _say_hidden(out, hidden)
        return
    while True:
        job = session.describe_training_job(job_name) or {}
        hidden += print_lines(out, tail.poll(), hosts, show_all=show_all)
        status = job.get("TrainingJobStatus")
        if status in executions.TERMINAL_JOB_STATUSES:
            # Lines shipped between the describe and the poll.
            hidden += print_lines(out, tail.poll(), hosts, show_all=show_all)
            _say_hidden(out, hidden)
            end = Text(f"{job_name} ended ")
            end.append_text(output.status_text(status))
            if job.get("FailureReason"):
                end.append(f": {job['FailureReason']}")
            out.print(end)
            if status != "Completed":
                raise typer.Exit(1)
            return
        time.sleep(POLL_SECONDS)


def _say_hidden(out: Console, hidden: int) -> None:
    if hidden:
        out.print(f"({hidden} lines of pip's 'Requirement already satisfied' left out; --all shows them)", style="dim")
