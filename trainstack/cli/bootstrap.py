"""`trainstack bootstrap`: what each account of the delivery pipeline runs once before the pipeline can deploy.

For every environment a synthesized app deploys to (`cdk synth` first): the policy to create, then the
`cdk bootstrap` line that trusts the pipeline account and gives CloudFormation that policy instead of
AdministratorAccess (trainstack/execution_policy.py derives it from the templates).
"""

from __future__ import annotations

import json
from itertools import groupby
from pathlib import Path
from typing import Annotated

import typer

from trainstack.cli.errors import CliError
from trainstack.config import ConfigError, app_dir
from trainstack.delivery_config import PIPELINE_FILE, load_pipeline
from trainstack.execution_policy import Target, assembly_targets, execution_policy


def bootstrap(
    pipeline_file: Annotated[
        Path | None, typer.Option("--pipeline", help=f"The pipeline file (default: ./{PIPELINE_FILE}).")
    ] = None,
    cdk_out: Annotated[
        Path | None, typer.Option("--cdk-out", help="The synthesized app (default: ./cdk.out, after `cdk synth`).")
    ] = None,
) -> None:
    """Print the execution policy and the `cdk bootstrap --trust` line each account of the pipeline needs."""
    try:
        pipeline = load_pipeline(pipeline_file or app_dir() / PIPELINE_FILE)
    except ConfigError as error:
        raise CliError(str(error)) from None
    assembly = cdk_out or app_dir() / "cdk.out"
    if not (assembly / "manifest.json").is_file():
        raise CliError(f"{assembly}: no synthesized app here; run `cdk synth` first or pass --cdk-out")
    try:
        targets = assembly_targets(assembly)
        policy_name = f"{pipeline.name}-cfn-execution"
        for account, grouped in groupby(targets, key=lambda target: target.account):
            typer.echo(_account_section(pipeline.account, policy_name, account, list(grouped)))
    except ValueError as error:
        raise CliError(str(error)) from None
    except ModuleNotFoundError as error:
        if error.name != "cfnlint":
            raise
        raise CliError(
            "trainstack bootstrap reads CloudFormation's resource schemas from cfn-lint: pip install cfn-lint "
            "(the version requirements-dev.txt pins)"
        ) from None


def _account_section(pipeline_account: str, policy_name: str, account: str, targets: list[Target]) -> str:
    policy = json.dumps(execution_policy(targets), indent=2)
    arn = f"arn:{targets[0].partition}:iam::{account}:policy/{policy_name}"
    trust = f" --trust {pipeline_account}" if account != pipeline_account else ""
    role = "the pipeline account" if account == pipeline_account else f"trusts {pipeline_account}"
    lines = [
        f"# Account {account} ({role}): save the policy below as {policy_name}.json, then",
        f"aws iam create-policy --policy-name {policy_name} --policy-document file://{policy_name}.json",
        *(
            f"cdk bootstrap aws://{account}/{target.region}{trust} --cloudformation-execution-policies {arn}"
            for target in targets
        ),
        policy,
        "",
    ]
    return "\n".join(lines)
