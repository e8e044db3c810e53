"""What an execution is doing: its status, and the job name and warm-pool decision its states assigned.

A finished run's output carries everything. A running or failed one is read from the execution history:
the NameJob and DecideWarmPool states record `jobName` / `warmPool` as assigned variables when they exit,
and the Train state's TaskScheduled event carries the CreateTrainingJob request (the fallback where a
history omits variables).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.text import Text

from trainstack.cli import output
from trainstack.cli.session import Session
from trainstack.progress import WAITING_STATE, waiting_reason

TERMINAL_JOB_STATUSES = {"Completed", "Failed", "Stopped"}


@dataclass
class ExecutionView:
    name: str
    arn: str
    status: str
    started: dt.datetime | None
    stopped: dt.datetime | None
    result: dict[str, Any] | None  # the Succeeded state's summary
    error: str | None
    cause: str | None
    job_name: str | None
    warm_pool: dict[str, Any] | None
    current_state: str | None
    job: dict[str, Any] | None = None  # DescribeTrainingJob, when asked for
    waiting: str | None = None  # why the run waits, while it is in WaitingForCapacity

    @property
    def seconds(self) -> float | None:
        if self.started is None:
            return None
        end = self.stopped or dt.datetime.now(self.started.tzinfo)
        return (end - self.started).total_seconds()


def history(session: Session, execution_arn: str) -> list[dict[str, Any]]:
    pages = session.client("stepfunctions").get_paginator("get_execution_history")
    return [event for page in pages.paginate(executionArn=execution_arn) for event in page["events"]]


def _decode(value: Any) -> Any:
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value


def read_history(events: list[dict[str, Any]], top_level: set[str] | None = None) -> dict[str, Any]:
    """jobName, warmPool and the latest entered top-level state, from history events in order."""
    found: dict[str, Any] = {"jobName": None, "warmPool": None, "state": None, "waiting": None}
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        if entered and (top_level is None or entered.get("name") in top_level):
            found["state"] = entered.get("name")
            if found["state"] == WAITING_STATE:
                found["waiting"] = waiting_reason(entered.get("input"))
        exited = event.get("stateExitedEventDetails") or {}
        variables = exited.get("assignedVariables") or {}
        for key in ("jobName", "warmPool"):
            if key in variables:
                found[key] = _decode(variables[key])
        scheduled = event.get("taskScheduledEventDetails") or {}
        if str(scheduled.get("resource", "")).startswith("createTrainingJob") and not found["jobName"]:
            found["jobName"] = (_decode(scheduled.get("parameters")) or {}).get("TrainingJobName")
    return found


def view(
    session: Session, name_or_arn: str, *, with_job: bool = True, top_level: set[str] | None = None
) -> ExecutionView:
    described = session.describe_execution(name_or_arn)
    return view_of(session, described, with_job=with_job, top_level=top_level)


def view_of(
    session: Session, described: dict[str, Any], *, with_job: bool = True, top_level: set[str] | None = None
) -> ExecutionView:
    result = _decode(described.get("output")) if described["status"] == "SUCCEEDED" else None
    result = result if isinstance(result, dict) else None
    if result and result.get("jobName"):
        found = {"jobName": result["jobName"], "warmPool": result.get("warmPool"), "state": None, "waiting": None}
    else:
        found = read_history(history(session, described["executionArn"]), top_level)
    execution = ExecutionView(
        name=described["name"],
        arn=described["executionArn"],
        status=described["status"],
        started=described.get("startDate"),
        stopped=described.get("stopDate"),
        result=result,
        error=described.get("error"),
        cause=described.get("cause"),
        job_name=found["jobName"],
        warm_pool=found["warmPool"],
        current_state=found["state"] if described["status"] == "RUNNING" else None,
    )
    if execution.current_state == WAITING_STATE:
        execution.waiting = found["waiting"]
    if with_job and execution.job_name:
        execution.job = session.describe_training_job(execution.job_name)
    return execution


def warm_pool_text(warm_pool: dict[str, Any] | None, job: dict[str, Any] | None) -> str:
    if not warm_pool:
        return "-"
    granted, requested = warm_pool.get("granted"), warm_pool.get("requested")
    head = f"kept {granted}s" if granted else "none"
    if requested and not granted:
        head += f" ({requested}s requested)"
    status = (job or {}).get("WarmPoolStatus", {}).get("Status") or warm_pool.get("status")
    tail = f"; pool {status}" if status and status != "None" else ""
    return f"{head}{tail}: {warm_pool.get('reason', '')}"


def print_view(out: Console, execution: ExecutionView) -> None:
    """The full picture of one execution, a `Label  value` line each."""
    job = execution.job or {}
    result = execution.result or {}
    headline = output.status_text(execution.status)
    headline.append(f"  {output.duration(execution.seconds)}, started {output.when(execution.started)}")
    output.field(out, "Execution", execution.name)
    output.field(out, "Status", headline)
    if execution.current_state:
        output.field(out, "State", execution.current_state)
    if execution.waiting:
        output.field(out, "Waiting", execution.waiting, style="yellow")
    if execution.job_name:
        job_line = Text(execution.job_name)
        if job:
            job_line.append("  ")
            job_line.append_text(output.status_text(job.get("TrainingJobStatus")))
            if job.get("SecondaryStatus") and job.get("SecondaryStatus") != job.get("TrainingJobStatus"):
                job_line.append(f" ({job['SecondaryStatus']})")
        output.field(out, "Job", job_line)
        instance = job.get("ResourceConfig", {})
        if instance:
            output.field(out, "Instances", f"{instance.get('InstanceCount')} x {instance.get('InstanceType')}")
    if execution.warm_pool:
        output.field(out, "Warm pool", warm_pool_text(execution.warm_pool, job))
    artifact = result.get("modelArtifacts") or job.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    if artifact and (result or job.get("TrainingJobStatus") == "Completed"):
        output.field(out, "Model artifact", artifact)
    training = result.get("trainingSeconds", job.get("TrainingTimeInSeconds"))
    billable = result.get("billableSeconds", job.get("BillableTimeInSeconds"))
    if training is not None:
        output.field(out, "Seconds", f"training {training}, billable {billable}")
    if job.get("FailureReason") and not execution.cause:
        output.field(out, "Job failure", job["FailureReason"], style="red")
    if execution.error:
        output.field(out, "Error", execution.error, style="bold red")
    if execution.cause:
        output.field(out, "Cause", execution.cause, style="red")
