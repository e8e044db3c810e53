"""`trainstack pools` (warm pools, their status and billable idle time) and `trainstack pools release JOB`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer
from rich.table import Table

from trainstack.cli import output
from trainstack.cli.errors import CliError
from trainstack.cli.session import Session
from trainstack.cli.usage import ALL_POOL_STATUSES, RETAINED_POOL_STATUSES, instances, warm_pools

pools_app = typer.Typer(
    help="Warm pools: list them (default) or release one.",
    epilog="Examples:  trainstack pools;  trainstack pools --all;  trainstack pools release JOB",
    invoke_without_command=True,
    no_args_is_help=False,
)


def time_left(job: dict[str, Any], now: dt.datetime | None = None) -> float | None:
    """Seconds until an Available pool expires: the keep-alive counts from the end of its job."""
    if job.get("WarmPoolStatus", {}).get("Status") != "Available":
        return None
    keep_alive = job.get("ResourceConfig", {}).get("KeepAlivePeriodInSeconds")
    ended = job.get("TrainingEndTime")
    if keep_alive is None or ended is None:
        return None
    now = now or dt.datetime.now(ended.tzinfo)
    return max(0.0, keep_alive - (now - ended).total_seconds())


@pools_app.callback()
def pools(
    ctx: typer.Context,
    show_all: Annotated[bool, typer.Option("--all", help="Also pools that were reused or have ended.")] = False,
) -> None:
    """Warm pools: job, instances, status, billable idle time, and time left of the keep-alive."""
    if ctx.invoked_subcommand is not None:
        return
    session: Session = ctx.obj
    out = output.console()
    found = warm_pools(session.client("sagemaker"), ALL_POOL_STATUSES if show_all else RETAINED_POOL_STATUSES)
    if not found:
        out.print(f"No warm pools {'at all' if show_all else 'kept'} in {session.where}.")
        return
    # Fits 100 columns: "Reused by" (another job name) only with --all, where reused pools are listed.
    table = Table(title=f"Warm pools in {session.where}", title_justify="left")
    columns = ["Job", "Instances", "Status", "Idle billed", "Time left"] + (["Reused by"] if show_all else [])
    for column in columns:
        table.add_column(column, justify="right" if column in ("Idle billed", "Time left") else "left")
    for job in found:
        pool = job.get("WarmPoolStatus", {})
        kind, count = instances(job)
        left = time_left(job)
        row = [
            job["TrainingJobName"],
            f"{count} x {kind}",
            output.status_text(pool.get("Status")),
            output.duration(pool.get("ResourceRetainedBillableTimeInSeconds", 0)),
            output.duration(left) if left is not None else "-",
        ]
        table.add_row(*row, *([pool.get("ReusedByJob", "-")] if show_all else []))
    out.print(table)
    if any(job.get("WarmPoolStatus", {}).get("Status") == "Available" for job in found):
        out.print("An Available pool bills until it expires or is reused: trainstack pools release JOB ends it now.")


@pools_app.command()
def release(
    ctx: typer.Context,
    job_name: Annotated[str, typer.Argument(metavar="JOB", help="The training job whose warm pool to release.")],
) -> None:
    """Release a job's Available warm pool now (UpdateTrainingJob with KeepAlivePeriodInSeconds=0)."""
    session: Session = ctx.obj
    sagemaker = session.client("sagemaker")
    job = session.describe_training_job(job_name)
    if job is None:
        raise CliError(f"No training job {job_name} in {session.where}: trainstack pools lists the warm pools.")
    status = job.get("WarmPoolStatus", {}).get("Status")
    if status is None:
        raise CliError(f"Training job {job_name} has no warm pool (it was started without a keep-alive).")
    if status != "Available":
        raise CliError(
            f"The warm pool of {job_name} is {status}; only an Available pool can be released"
            + (" (a running job is using it)." if status == "InUse" else ".")
        )
    sagemaker.update_training_job(TrainingJobName=job_name, ResourceConfig={"KeepAlivePeriodInSeconds": 0})
    after = session.describe_training_job(job_name) or {}
    pool = after.get("WarmPoolStatus", {})
    output.console().print(
        f"Released the warm pool of {job_name}: now {pool.get('Status', 'released')}, "
        f"{pool.get('ResourceRetainedBillableTimeInSeconds', 0)} s of billable idle time in all."
    )
