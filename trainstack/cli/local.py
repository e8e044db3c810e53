"""`trainstack local du`: how much disk the embedded AWS's training job folders take (`make local-up`'s server).

Each job of the embedded AWS runs in host folders of its own under `.local-aws/jobs/` (its code, channels,
model, checkpoints and a virtual environment); they stay after the job, as a job's instance volume would not.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from trainstack.cli import output
from trainstack.local_platform import STATE_DIR, human_bytes, job_folders_usage

local_app = typer.Typer(help="The embedded AWS that make local-up runs: what it holds on this machine.")


@local_app.command()
def du(
    top: Annotated[int, typer.Option("--top", "-n", min=1, help="How many of the largest job folders to list.")] = 10,
) -> None:
    """Disk used by the embedded AWS's job folders, largest first, and in all.

    Examples:

      trainstack local du

      trainstack local du --top 3
    """
    out = output.console()
    jobs = STATE_DIR / "jobs"
    usage = job_folders_usage(STATE_DIR)
    if not usage:
        out.print(f"No job folders in {jobs}.")
        return
    table = Table(title=f"Job folders in {jobs}", title_justify="left")
    table.add_column("Job")
    table.add_column("Size", justify="right")
    for job, size in usage[:top]:
        table.add_row(job, human_bytes(size))
    out.print(table)
    total = human_bytes(sum(size for _, size in usage))
    # They outlive the server, as job folders are what a failed run leaves to read.
    out.print(f"{len(usage)} folders, {total} in all; make clean removes them with the rest of .local-aws.")
