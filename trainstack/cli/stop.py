"""`trainstack stop EXECUTION`: abort a run (StopExecution); the platform's pool cleanup ends its job and pool.

Step Functions stops a `.sync` task's job on abort only best effort, and SageMaker keeps a warm pool for a job
stopped after its cluster launched; the `<state machine>-pool-cleanup` execution that the ABORTED status event
starts stops the job and ends the pool (README, "on abort/timeout"). This command aborts and says where to
watch that happen.
"""

from __future__ import annotations

from typing import Annotated

import typer

from trainstack.cli import executions, output
from trainstack.cli.errors import CliError
from trainstack.cli.session import Session

DEFAULT_CAUSE = "stopped with trainstack stop"


def stop(
    ctx: typer.Context,
    execution: Annotated[str, typer.Argument(metavar="EXECUTION", help="Execution name or ARN.")],
    cause: Annotated[str, typer.Option("--cause", help="Recorded as the execution's cause.")] = DEFAULT_CAUSE,
) -> None:
    """Abort a running execution; its pool cleanup then stops the training job and ends its warm pool.

    Examples:

      trainstack stop cli-20261202-191500-a1b2c3

      trainstack stop cli-20261202-191500-a1b2c3 --cause "wrong learning rate"
    """
    session: Session = ctx.obj
    out = output.console()
    described = session.describe_execution(execution)
    if described["status"] != "RUNNING":
        raise CliError(f"Execution {described['name']} already ended {described['status']}: nothing to stop.")
    session.client("stepfunctions").stop_execution(executionArn=described["executionArn"], cause=cause)
    found = executions.view(session, described["executionArn"], with_job=False)
    output.field(out, "Stopped", f"{found.name} (ABORTED: {cause})")
    if found.job_name:
        output.field(out, "Job", f"{found.job_name}: the pool cleanup stops it and ends its warm pool")
    out.print(f"Follow the cleanup with: {session.cli} status {found.name} (the job) and {session.cli} pools")
