"""`trainstack quotas`: training-job and warm-pool quotas, what uses them now, and the headroom left."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from trainstack.cli import output
from trainstack.cli.errors import CliError
from trainstack.cli.quota_values import Quota, QuotaReader
from trainstack.cli.session import Session
from trainstack.cli.usage import current_usage
from trainstack.config import INSTANCE_TYPE_PATTERN


def _quota_cell(quota: Quota) -> Text:
    if quota.value is None:
        return Text("none", style="dim")
    source = "" if quota.source == "applied" else " (default)"
    return Text(f"{output.number(quota.value)}{source}")


def _headroom_cell(quota: Quota, used: int) -> Text:
    if quota.value is None:
        return Text("-", style="dim")
    left = int(quota.value) - used
    return Text(str(left), style="red" if left <= 0 else "green")


def quotas(
    ctx: typer.Context,
    instance_type: Annotated[
        list[str] | None,
        typer.Option("--instance-type", "-t", help="Only these instance types (repeatable).", metavar="TYPE"),
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Every instance type of the environment's allowed families.")
    ] = False,
) -> None:
    """Training-job and warm-pool quota (applied, else AWS default), usage and headroom per instance type.

    By default: the environment's configured instance type and any type in use now.
    """
    import re

    session: Session = ctx.obj
    out = output.console()
    families = session.config.training.allowed_instance_families
    reader = QuotaReader(session.client("service-quotas"))
    usage, _ = current_usage(session.client("sagemaker"))
    if instance_type:
        bad = [t for t in instance_type if not re.fullmatch(INSTANCE_TYPE_PATTERN, t)]
        if bad:
            raise CliError(f"{', '.join(bad)}: not a SageMaker instance type like ml.g5.2xlarge.")
        types = list(dict.fromkeys(instance_type))
    elif show_all:
        types = reader.instance_types(families)
    else:
        types = sorted({session.config.training.instance_type} | usage.types())
    values = reader.for_instance_types(types)

    table = Table(
        title=f"SageMaker training quotas in {session.where} (environment {session.config.name})",
        title_justify="left",
        caption="Training usage = instances of running jobs + instances kept in Available warm pools.",
        caption_justify="left",
    )
    # Two-line headers keep the table within 100 columns.
    table.add_column("Instance type", justify="left")
    for column in ("Training\nquota", "Running", "In warm\npools", "Training\nheadroom"):
        table.add_column(column, justify="right")
    for column in ("Warm-pool\nquota", "Warm-pool\nheadroom"):
        table.add_column(column, justify="right")
    for kind in types:
        training, warm = values[kind]["training"], values[kind]["warm_pool"]
        table.add_row(
            kind,
            _quota_cell(training),
            str(usage.running[kind]),
            str(usage.warm_pool(kind)),
            _headroom_cell(training, usage.training(kind)),
            _quota_cell(warm),
            _headroom_cell(warm, usage.warm_pool(kind)),
        )
    out.print(table)
    longest = reader.longest_run_time()
    if longest.value is not None:
        out.print(
            f"{longest.name} ({longest.code}): {output.number(longest.value)} s "
            f"({output.duration(longest.value)}, {longest.source})"
        )
    missing = [kind for kind in types if values[kind]["training"].value is None]
    if missing:
        out.print(f"No training quota found for {', '.join(missing)}: SageMaker does not offer it in {session.region}.")
