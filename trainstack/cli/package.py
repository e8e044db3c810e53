"""`trainstack package`: pack a source folder and upload it under the code prefix, without starting a run.

For the console door: the printed `code` object goes into the execution input as it is. The same packing
and content address as `trainstack run --source-dir` (trainstack/source_package.py), so a folder packed
here and later run from the CLI is uploaded once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from trainstack.cli import output
from trainstack.cli.run import code_input, upload_package
from trainstack.cli.session import Session


def package(
    ctx: typer.Context,
    source_dir: Annotated[Path, typer.Argument(help="Your code folder (the SDK's source_dir).", file_okay=False)],
    entry_point: Annotated[str, typer.Option("--entry-point", help="The script to run, relative to the folder.")],
    image: Annotated[
        str | None,
        typer.Option(
            "--image", help="The image the run will use (its Python picks the wheels); default: the platform's."
        ),
    ] = None,
    python_version: Annotated[
        str | None,
        typer.Option("--python-version", help="The image's Python (3.11), when its tag has no -py3NN- part."),
    ] = None,
) -> None:
    """Pack and upload a source folder; print the run input's `code` for the console."""
    session: Session = ctx.obj
    out = output.console()
    run_input, packed = code_input(session, {"image": image} if image else {}, source_dir, entry_point, python_version)
    assert packed is not None
    upload_package(session, out, packed, dry_run=False)
    out.print_json(json.dumps({"code": run_input["code"]}))
