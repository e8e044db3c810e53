"""`trainstack status [EXECUTION]`: one execution in full, or the latest few in a table."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from trainstack.cli import executions, output
from trainstack.cli.session import Session


def status(
    ctx: typer.Context,
    execution: Annotated[
        str | None, typer.Argument(help="Execution name or ARN; without it, the latest executions.")
    ] = None,
    last: Annotated[int, typer.Option("--last", "-n", min=1, max=100, help="How many recent executions.")] = 10,
    plot: Annotated[bool, typer.Option("--plot", help="Also draw the run's train and eval loss curves.")] = False,
) -> None:
    """Status, job, warm-pool decision, model artifact and error of one execution (or the latest N)."""
    session: Session = ctx.obj
    out = output.console()
    if execution:
        top_level = set(session.definition()["States"])
        executions.print_view(out, executions.view(session, execution, top_level=top_level))
        if plot:
            from trainstack.cli.plot import plot_run

            plot_run(session, execution, out)
        return
    session.describe_state_machine()  # "not deployed" reads better than an empty table
    listed = session.client("stepfunctions").list_executions(
        stateMachineArn=session.state_machine_arn, maxResults=last
    )["executions"]
    if not listed:
        out.print(f"No executions of {session.names.state_machine} yet: start one with trainstack run --watch.")
        return
    table = Table(title=f"Latest executions of {session.names.state_machine} ({session.where})", title_justify="left")
    # The warm pool as decided at the start; `trainstack pools` shows what became of it.
    for column in ("Execution", "Status", "Started", "Took", "Job", "Keep-alive granted", "Result"):
        table.add_column(column, overflow="fold")
    for item in sorted(listed, key=lambda e: e["startDate"], reverse=True)[:last]:
        described = session.client("stepfunctions").describe_execution(executionArn=item["executionArn"])
        found = executions.view_of(session, described, with_job=False)
        granted = (found.warm_pool or {}).get("granted")
        pool = f"{granted}s" if granted else "-"
        result = (found.result or {}).get("modelArtifacts") or found.error or found.current_state or ""
        if found.waiting:
            result = f"{result}: {found.waiting}"
        table.add_row(
            found.name,
            output.status_text(found.status),
            output.when(found.started),
            output.duration(found.seconds),
            found.job_name or "-",
            pool,
            result,
        )
    out.print(table)
