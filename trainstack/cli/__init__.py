"""`trainstack`: the operator CLI for a deployed platform, on a real account or the embedded AWS.

    trainstack [--env NAME] [--endpoint-url URL] COMMAND
      run      start an execution (flags or --input file.json; --source-dir for your own code; --watch, --dry-run)
      package  pack and upload a source folder; print the input's `code` for the console
      status   one execution, or the latest ones
      logs     a training job's CloudWatch logs, every host interleaved (--follow)
      quotas   training and warm-pool quotas, usage and headroom per instance type
      pools    warm pools and their billable idle time; `pools release JOB`
      stop     abort a run; the pool cleanup ends its job and warm pool
      local    `local du`: disk taken by the embedded AWS's job folders
      bootstrap  the execution policy and `cdk bootstrap --trust` line each account of the pipeline needs

Each command lives in its own module; errors become sentences in `errors.py`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from trainstack.cli.bootstrap import bootstrap
from trainstack.cli.errors import SentenceErrors
from trainstack.cli.local import local_app
from trainstack.cli.logs import logs
from trainstack.cli.package import package
from trainstack.cli.pools import pools_app
from trainstack.cli.quotas import quotas
from trainstack.cli.run import run
from trainstack.cli.session import Session
from trainstack.cli.status import status
from trainstack.cli.stop import stop

EXAMPLES = """Examples (after make local-up; --env NAME for an environment on an account):

  trainstack run --watch                     # the environment's defaults, followed live

  trainstack run -p max_steps=20 --keep-alive 600 --watch

  trainstack run --input examples/inputs/demo.json --dry-run

  trainstack status; trainstack logs EXECUTION --follow; trainstack stop EXECUTION
"""

app = typer.Typer(
    cls=SentenceErrors,
    name="trainstack",
    help="Operate a trainstack training platform: start runs, watch them, read logs, see quotas and warm pools.",
    epilog=EXAMPLES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", help="Environment: config/<NAME>.yaml.", metavar="NAME")] = "local",
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--endpoint-url",
            help="AWS endpoint (default: AWS_ENDPOINT_URL; for the embedded environment, the running local server).",
        ),
    ] = None,
) -> None:
    # `trainstack COMMAND --help` runs this callback before the command's own parsing: the session opens
    # (config, endpoint, credentials) only when a command first uses it, so help works with no AWS around.
    ctx.obj = Session.lazy(env, endpoint_url)


app.command()(run)
app.command()(status)
app.command()(logs)
app.command()(quotas)
app.command()(package)
app.command()(stop)
app.command()(bootstrap)
app.add_typer(pools_app, name="pools")
app.add_typer(local_app, name="local")


def main() -> None:
    app()
