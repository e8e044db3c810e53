"""Live progress of a training run: the state machine's states, the job's secondary status, its loss.

Shared by `make demo` and `trainstack run --watch`. It only reads what a console user can see
(GetExecutionHistory, DescribeTrainingJob, the job's CloudWatch log streams), so it works the same
against a real account and the embedded AWS. On a terminal it draws a spinner with elapsed time and
the latest loss; elsewhere (CI, pipes) it prints one line per change.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from training_code.metrics import parse_metric_lines

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
WAITING_STATE = "WaitingForCapacity"


def waiting_reason(state_input: str | None) -> str:
    """The reason a `WaitingForCapacity` state was entered, from its input (the DecideCapacity output)."""
    try:
        decision = json.loads(state_input or "{}")
    except ValueError:
        decision = {}
    return str(decision.get("reason") or "waiting for capacity") if isinstance(decision, dict) else str(decision)


@dataclass
class RunProgress:
    """What has been seen of one execution so far."""

    states: list[str] = field(default_factory=list)
    job_name: str | None = None
    secondary: list[str] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    eval_loss: float | None = None
    waiting: str | None = None  # the latest WaitingForCapacity reason
    log_lines: int = 0
    _seen_events: int = 0
    _map_depth: int = 0
    _log_tokens: dict[str, str] = field(default_factory=dict)


def continued_in(described: dict[str, Any]) -> str | None:
    """The execution a run handed over to (stacks/constructs/run_continuation.py), if this one did."""
    if described.get("status") != "SUCCEEDED":
        return None
    output = json.loads(described.get("output") or "null")
    return output.get("continuedIn") if isinstance(output, dict) and output.get("status") == "Continued" else None


class RunWatcher:
    """Polls one execution until it ends; `on_line` receives each human-readable change."""

    def __init__(self, clients: Callable[[str], Any], execution_arn: str, on_line: Callable[[str], None]) -> None:
        self._sfn = clients("stepfunctions")
        self._sagemaker = clients("sagemaker")
        self._logs = clients("logs")
        self.execution_arn = execution_arn
        self.progress = RunProgress()
        self._say = on_line

    def poll(self) -> dict[str, Any]:
        """One round: new history events, the job's status, new log lines. Returns DescribeExecution (of the
        execution the run continued in, when it handed over before the history limit)."""
        described = self._sfn.describe_execution(executionArn=self.execution_arn)
        continued = continued_in(described)
        if continued:
            self._say(f"state  continued in {continued.rsplit(':', 1)[-1]} (a fresh execution, same run)")
            self.execution_arn = continued
            self.progress._seen_events = 0
            return self.poll()
        # The job's news first: its Completed happened before the state machine's next state did.
        known_job = self.progress.job_name
        if known_job:
            self._read_job()
            self._read_logs()
        self._read_history()
        if self.progress.job_name and not known_job:
            self._read_job()
            self._read_logs()
        return described

    def _read_history(self) -> None:
        events = self._sfn.get_execution_history(executionArn=self.execution_arn, maxResults=1000)["events"]
        for event in events[self.progress._seen_events :]:
            kind = event["type"]
            # Iterations of Map states (quota lookups, pool descriptions) would drown the top-level flow.
            if kind == "MapStateStarted":
                self.progress._map_depth += 1
            elif kind in ("MapStateSucceeded", "MapStateFailed", "MapStateAborted"):
                self.progress._map_depth -= 1
            if kind.endswith("StateEntered") and self.progress._map_depth == 0:
                name = event["stateEnteredEventDetails"]["name"]
                self.progress.states.append(name)
                self._say(f"state  {name}")
                if name == WAITING_STATE:
                    # The capacity decision is the Wait state's input: why the run waits, and how long it has.
                    self.progress.waiting = waiting_reason(event["stateEnteredEventDetails"].get("input"))
                    self._say(f"wait   {self.progress.waiting}")
            elif kind == "TaskScheduled":
                details = event["taskScheduledEventDetails"]
                if details.get("resource", "").startswith("createTrainingJob"):
                    self.progress.job_name = json.loads(details["parameters"])["TrainingJobName"]
                    self._say(f"job    {self.progress.job_name} created")
        self.progress._seen_events = len(events)

    def _read_job(self) -> None:
        job = self._sagemaker.describe_training_job(TrainingJobName=self.progress.job_name)
        for transition in job.get("SecondaryStatusTransitions", [])[len(self.progress.secondary) :]:
            self.progress.secondary.append(transition["Status"])
            message = transition.get("StatusMessage", "")
            self._say(f"job    {transition['Status']}" + (f": {message}" if message else ""))

    def _read_logs(self) -> None:
        try:
            streams = self._logs.describe_log_streams(
                logGroupName=TRAINING_LOG_GROUP, logStreamNamePrefix=f"{self.progress.job_name}/"
            )["logStreams"]
        except self._logs.exceptions.ResourceNotFoundException:
            return
        for stream in streams:
            name = stream["logStreamName"]
            kwargs: dict[str, Any] = {"logGroupName": TRAINING_LOG_GROUP, "logStreamName": name, "startFromHead": True}
            if name in self.progress._log_tokens:
                kwargs["nextToken"] = self.progress._log_tokens[name]
            page = self._logs.get_log_events(**kwargs)
            self.progress._log_tokens[name] = page["nextForwardToken"]
            lines = [event["message"] for event in page["events"]]
            self.progress.log_lines += len(lines)
            metrics = parse_metric_lines(lines)
            self.progress.losses.extend(metrics.get("train_loss", []))
            # The final evaluation is logged twice (its own line and the run summary): report it once.
            if metrics.get("eval_loss") and metrics["eval_loss"][-1] != self.progress.eval_loss:
                self.progress.eval_loss = metrics["eval_loss"][-1]
                self._say(
                    f"metric eval_loss={self.progress.eval_loss:.4f} (perplexity {metrics['eval_perplexity'][-1]:.2f})"
                )

    def status_text(self) -> str:
        state = self.progress.states[-1] if self.progress.states else "starting"
        parts = [state]
        if state == WAITING_STATE and self.progress.waiting:
            parts.append(self.progress.waiting)
        if self.progress.secondary:
            parts.append(self.progress.secondary[-1])
        if self.progress.losses:
            parts.append(f"loss {self.progress.losses[-1]:.3f} ({len(self.progress.losses)} logged)")
        return " · ".join(parts)


def watch(
    clients: Callable[[str], Any],
    execution_arn: str,
    console: Console | None = None,
    poll_seconds: float = 1.0,
    timeout_seconds: float | None = None,
) -> tuple[dict[str, Any], RunProgress]:
    """Follow an execution to its end, drawing progress; returns (DescribeExecution, what was seen)."""
    console = console or Console()
    started = time.monotonic()
    watcher = RunWatcher(clients, execution_arn, on_line=lambda line: console.print(f"  {line}", highlight=False))
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None)
        while True:
            described = watcher.poll()
            bar.update(task, description=watcher.status_text())
            if described["status"] in TERMINAL:
                return described, watcher.progress
            if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
                raise TimeoutError(f"{execution_arn} still {described['status']} after {timeout_seconds:.0f}s")
            time.sleep(poll_seconds)
