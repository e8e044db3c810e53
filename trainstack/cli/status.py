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
    """Status, job, warm-pool decision, model artifact and error of one execution (or the latest N).

    Examples:

      trainstack status                 # the latest 10 executions

      trainstack status cli-20261202-191500-a1b2c3 --plot

      trainstack --env dev status --last 20
    """
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
    # Fits 100 columns: no URIs or job names (status EXECUTION shows them), start times without the date when
    # it is today.
    table = Table(title=f"Latest executions of {session.names.state_machine}", title_justify="left")
    for column in ("Execution", "Status", "Started", "Took", "Keep-alive", "Result"):
        table.add_column(column, overflow="fold", max_width=36 if column == "Result" else None)
    for item in sorted(listed, key=lambda e: e["startDate"], reverse=True)[:last]:
        described = session.client("stepfunctions").describe_execution(executionArn=item["executionArn"])
        found = executions.view_of(session, described, with_job=False)
        # The warm pool as decided at the start; `trainstack pools` shows what became of it.
        granted = (found.warm_pool or {}).get("granted")
        table.add_row(
            found.name,
            output.status_text(found.status),
            output.short_when(found.started),
            output.duration(found.seconds),
            f"{granted}s" if granted else "-",
            result_text(found),
        )
    out.print(table)
    out.print(f"{session.cli} status EXECUTION: its job, warm pool, model artifact and error", style="dim")


def result_text(found: executions.ExecutionView) -> str:
    """What a run gave, in a few words: the model's file name, the error, or the state it is in."""
    artifact = (found.result or {}).get("modelArtifacts")
    if artifact:
        return str(artifact).rsplit("/", 1)[-1]
    text = found.error or found.current_state or ""
    return f"{text}: {found.waiting}" if found.waiting else text
