"""Live progress of a training run: the state machine's states, the job's secondary status, its loss.

Shared by `make demo` and `trainstack run --watch`. It only reads what a console user can see
(GetExecutionHistory, DescribeTrainingJob, the job's CloudWatch log streams), so it works the same
against a real account and the embedded AWS. On a terminal it draws a bar of the run's steps (or epochs)
with elapsed time and the latest loss; elsewhere (CI, pipes) it prints one line per change.

Every ordering AWS allows is a normal poll here, not an error: an execution that DescribeExecution does not
list yet (StartExecution has only just returned), a job that the Train task has scheduled but whose
CreateTrainingJob has not returned (DescribeTrainingJob answers ValidationException "Requested resource not
found"), a throttled call. Such a read is tried again on the next poll; only when it keeps failing for
`patience_seconds` does the watch end, with `WatchError` and one sentence.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from training_code.metrics import parse_metric_lines

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
WAITING_STATE = "WaitingForCapacity"
# The codes SageMaker, Step Functions and CloudWatch Logs answer when they throttle the caller.
THROTTLED = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
PATIENCE_SECONDS = 120.0


class WatchError(RuntimeError):
    """The watch could not go on; the message is one sentence for the user."""


def waiting_reason(state_input: str | None) -> str:
    """The reason a `WaitingForCapacity` state was entered, from its input (the DecideCapacity output)."""
    try:
        decision = json.loads(state_input or "{}")
    except ValueError:
        decision = {}
    return str(decision.get("reason") or "waiting for capacity") if isinstance(decision, dict) else str(decision)


def not_yet_visible(error: ClientError) -> bool:
    """True for the answers AWS gives about something that exists, or is being created, but is not listed yet."""
    code = error.response.get("Error", {}).get("Code", "")
    message = str(error.response.get("Error", {}).get("Message", ""))
    if code == "ExecutionDoesNotExist":
        return True
    # DescribeTrainingJob on a name CreateTrainingJob has not yet answered for; SageMaker has no NotFound code.
    return code == "ValidationException" and "Requested resource not found" in message


def transient(error: ClientError) -> str | None:
    """The error code when a later poll may well succeed (throttled, not yet visible); None otherwise."""
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code if code in THROTTLED or not_yet_visible(error) else None


def _number(value: Any) -> float | None:
    # Hyperparameters reach the request JSON-encoded ("4", "0.5"): the state machine sends what the SDK sends.
    try:
        return float(json.loads(value) if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return None


@dataclass
class RunProgress:
    """What has been seen of one execution so far."""

    states: list[str] = field(default_factory=list)
    job_name: str | None = None
    secondary: list[str] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    eval_losses: list[float] = field(default_factory=list)
    waiting: str | None = None  # the latest WaitingForCapacity reason
    log_lines: int = 0
    max_steps: int | None = None  # the run's length, from the job's hyperparameters
    epochs: float | None = None
    step: int | None = None  # the latest logged step and epoch
    epoch: float | None = None
    retried: Counter[str] = field(default_factory=Counter)  # transient error code -> how many reads it cost
    _seen_events: int = 0  # the id of the last history event read (ids count from 1)
    _map_depth: int = 0
    _log_tokens: dict[str, str] = field(default_factory=dict)

    @property
    def eval_loss(self) -> float | None:
        return self.eval_losses[-1] if self.eval_losses else None

    def bar(self) -> tuple[float | None, float]:
        """(total, completed) for a progress bar: steps when the run sets max_steps, else epochs."""
        if self.max_steps and self.max_steps > 0:
            return float(self.max_steps), float(self.step or 0)
        if self.epochs:
            return self.epochs, float(self.epoch or 0)
        return None, 0.0

    def loss_summary(self) -> str | None:
        """`train 3.412 → 2.105 (8 logged); eval 2.310 → 2.054`, or None before any loss was logged."""
        parts = []
        for label, values in (("train", self.losses), ("eval", self.eval_losses)):
            if len(values) > 1:
                parts.append(f"{label} {values[0]:.3f} → {values[-1]:.3f} ({len(values)} logged)")
            elif values:
                parts.append(f"{label} {values[0]:.3f}")
        return "; ".join(parts) or None


def continued_in(described: dict[str, Any]) -> str | None:
    """The execution a run handed over to (trainstack/platform/constructs/run_continuation.py), if this one did."""
    if described.get("status") != "SUCCEEDED":
        return None
    output = json.loads(described.get("output") or "null")
    return output.get("continuedIn") if isinstance(output, dict) and output.get("status") == "Continued" else None


class RunWatcher:
    """Polls one execution until it ends; `on_line` receives each human-readable change."""

    def __init__(
        self,
        clients: Callable[[str], Any],
        execution_arn: str,
        on_line: Callable[[str], None],
        patience_seconds: float = PATIENCE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sfn = clients("stepfunctions")
        self._sagemaker = clients("sagemaker")
        self._logs = clients("logs")
        self.execution_arn = execution_arn
        self.progress = RunProgress()
        self._say = on_line
        self._patience = patience_seconds
        self._clock = clock
        self._failing_since: dict[str, float] = {}  # read -> when it first failed transiently, in a row

    def poll(self) -> dict[str, Any] | None:
        """One round: new history events, the job's status, new log lines.

        Returns DescribeExecution (of the execution the run continued in, when it handed over before the history
        limit), or None while the execution is not visible yet.
        """
        described = self._attempt(
            "DescribeExecution", lambda: self._sfn.describe_execution(executionArn=self.execution_arn)
        )
        if described is None:
            return None
        continued = continued_in(described)
        if continued:
            self._say(f"state  continued in {continued.rsplit(':', 1)[-1]} (a fresh execution, same run)")
            self.execution_arn = continued
            self.progress._seen_events = 0
            return self.poll()
        # The job's news first: its Completed happened before the state machine's next state did.
        known_job = self.progress.job_name
        if known_job:
            self._read_job_and_logs()
        self._attempt("GetExecutionHistory", self._read_history)
        if self.progress.job_name and not known_job:
            self._read_job_and_logs()
        return described

    def catch_up(self) -> None:
        """After the execution ended: what the job logged since the last poll, retrying a throttled read."""
        if not self.progress.job_name:
            return
        deadline = self._clock() + self._patience
        while True:
            try:
                self._read_job()
                self._read_logs()
                return
            except ClientError as error:
                code = transient(error)
                if code is None:
                    raise
                self.progress.retried[code] += 1
                if not_yet_visible(error):
                    return  # the run ended before its CreateTrainingJob succeeded: there is no job to read
                if self._clock() > deadline:
                    raise WatchError(
                        f"AWS kept throttling the reads of training job {self.progress.job_name} ({code}) for "
                        f"{self._patience:.0f} s after the run ended"
                    ) from None
            time.sleep(1.0)

    def _read_job_and_logs(self) -> bool:
        job = self._attempt("DescribeTrainingJob", self._read_job)
        logs = self._attempt("GetLogEvents", self._read_logs)
        return job is not None and logs is not None

    def _attempt(self, read: str, call: Callable[[], Any]) -> Any:
        """`call()`, or None when AWS answered with an error a later poll may not get; `WatchError` once it
        has kept answering so for longer than the patience."""
        try:
            result = call()
        except ClientError as error:
            code = transient(error)
            if code is None:
                raise
            self.progress.retried[code] += 1
            since = self._failing_since.setdefault(read, self._clock())
            if self._clock() - since > self._patience:
                message = error.response.get("Error", {}).get("Message", "")
                raise WatchError(
                    f"{read} kept answering {code} ({message}) for {self._patience:.0f} s while watching "
                    f"{self.execution_arn}"
                ) from None
            return None
        self._failing_since.pop(read, None)
        return True if result is None else result

    def _new_events(self) -> list[dict[str, Any]]:
        """The events after the last one read, oldest first. Read newest first, back to the last one seen: one
        call per poll whatever the history's length (a capacity wait runs to thousands of events; reading from
        the start would page through all of them, and one page of 1,000 would stop showing anything)."""
        newest_first: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {"executionArn": self.execution_arn, "reverseOrder": True, "maxResults": 1000}
        while True:
            page = self._sfn.get_execution_history(**arguments)
            fresh = [event for event in page["events"] if event["id"] > self.progress._seen_events]
            newest_first += fresh
            if len(fresh) < len(page["events"]) or "nextToken" not in page:
                return newest_first[::-1]
            arguments["nextToken"] = page["nextToken"]

    def _read_history(self) -> None:
        events = self._new_events()
        for event in events:
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
                    request = json.loads(details["parameters"])
                    self.progress.job_name = request["TrainingJobName"]
                    hyperparameters = request.get("HyperParameters") or {}
                    max_steps = _number(hyperparameters.get("max_steps"))
                    self.progress.max_steps = int(max_steps) if max_steps and max_steps > 0 else None
                    self.progress.epochs = _number(hyperparameters.get("num_train_epochs"))
                    self._say(f"job    {self.progress.job_name} created")
        if events:
            self.progress._seen_events = events[-1]["id"]

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
            self._read_metrics(lines)

    def _read_metrics(self, lines: list[str]) -> None:
        metrics = parse_metric_lines(lines)
        self.progress.losses.extend(metrics.get("train_loss", []))
        if metrics.get("epoch"):
            self.progress.epoch = metrics["epoch"][-1]
        steps = [int(line.split(";", 1)[0][5:]) for line in lines if line.startswith("step=") and ";" in line]
        if steps:
            self.progress.step = steps[-1]
        # The final evaluation is logged twice (its own line and the run summary): report it once.
        if metrics.get("eval_loss") and metrics["eval_loss"][-1] != self.progress.eval_loss:
            self.progress.eval_losses.append(metrics["eval_loss"][-1])
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
            parts.append(f"loss {self.progress.losses[-1]:.3f}")
        return " · ".join(parts)


def watch(
    clients: Callable[[str], Any],
    execution_arn: str,
    console: Console | None = None,
    poll_seconds: float = 1.0,
    timeout_seconds: float | None = None,
    patience_seconds: float = PATIENCE_SECONDS,
) -> tuple[dict[str, Any], RunProgress]:
    """Follow an execution to its end, drawing progress; returns (DescribeExecution, what was seen).

    Raises `WatchError` (one sentence) when the execution never becomes visible or a read keeps failing,
    and `TimeoutError` after `timeout_seconds`.
    """
    console = console or Console()
    started = time.monotonic()
    watcher = RunWatcher(
        clients,
        execution_arn,
        on_line=lambda line: console.print(f"  {line}", highlight=False),
        patience_seconds=patience_seconds,
    )
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None, unit="")
        while True:
            described = watcher.poll()
            total, completed = watcher.progress.bar()
            unit = ("steps" if watcher.progress.max_steps else "epochs") if total else ""
            bar.update(task, description=watcher.status_text(), total=total, completed=completed, unit=unit)
            if described is not None and described["status"] in TERMINAL:
                watcher.catch_up()
                return described, watcher.progress
            if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
                status = described["status"] if described else "not visible"
                raise TimeoutError(f"{execution_arn} still {status} after {timeout_seconds:.0f}s")
            time.sleep(poll_seconds)
