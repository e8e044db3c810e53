"""`make deploy ENV=name`: log Docker in to the Deep Learning Container registry, then `cdk deploy '<env>/*'`.

`image.mode: asset` builds training_code/Dockerfile during `cdk deploy`, `FROM` a Deep Learning Container in
AWS's registry account for the region (763104351884 in most regions). The CDK logs Docker in to the bootstrap
registry only, so the pull fails with "no basic auth credentials" (aws/aws-cdk issue 17268) unless Docker is
logged in to the DLC registry first. We log in with boto3 (GetAuthorizationToken: the token is valid for every
registry the caller may pull from; no AWS CLI needed) and `docker login --password-stdin`, so the password is
never on a command line.

Approval: `cdk deploy --require-approval broadening` asks before IAM or security-group changes that widen
access; the CDK cannot ask without a terminal and fails late, after building the image. Without a terminal
(CI), we refuse before any work unless an approval level is given explicitly (`REQUIRE_APPROVAL=never` after
reviewing `make diff`), so nothing broadens unreviewed.

    python -m trainstack.deploy ENV [--require-approval never|any-change|broadening]
"""

from __future__ import annotations

import argparse
import base64
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import boto3

from trainstack.config import ConfigError, EnvironmentConfig, ImageMode, load_environment

APPROVAL_LEVELS = ("never", "any-change", "broadening")


class DeployError(RuntimeError):
    """A step before or of the deploy failed; the message says which and what to do."""


def dlc_login(config: EnvironmentConfig, ecr: Any, run: Callable[..., Any] = subprocess.run) -> str | None:
    """`docker login` to the environment's DLC registry when `cdk deploy` will build FROM it; returns the registry."""
    if config.image.mode is not ImageMode.ASSET or config.image.uri:
        return None
    registry = config.image.dlc_registry(config.region)
    [authorization] = ecr.get_authorization_token()["authorizationData"]
    user, _, password = base64.b64decode(authorization["authorizationToken"]).decode().partition(":")
    done = run(
        ["docker", "login", "--username", user, "--password-stdin", registry],
        input=password,
        text=True,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise DeployError(f"docker login {registry} failed (exit {done.returncode}): {done.stderr.strip()}")
    return registry


def approval_level(requested: str | None, interactive: bool) -> str:
    if requested:
        return requested
    if interactive:
        return "broadening"
    raise DeployError(
        "no terminal to approve IAM or security-group changes that broaden access: review `make diff ENV=...`, "
        "then rerun with REQUIRE_APPROVAL=never (or --require-approval never)"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainstack.deploy", description=__doc__.split("\n")[0])
    parser.add_argument("env")
    parser.add_argument("--require-approval", choices=APPROVAL_LEVELS)
    args = parser.parse_args(argv)
    try:
        config = load_environment(args.env)
        if config.embedded:
            raise DeployError(f"'{config.name}' is the embedded environment: `make demo` or `make local-up` deploy it")
        approval = approval_level(args.require_approval, sys.stdin.isatty())
        registry = dlc_login(config, boto3.client("ecr", region_name=config.region))
        if registry:
            print(f"trainstack: Docker logged in to {registry} (the asset image's base)", flush=True)
    except (ConfigError, DeployError) as error:
        print(f"trainstack: {error}", file=sys.stderr)
        return 1
    command = ["npx", "--no-install", "cdk", "deploy", f"{config.name}/*", "-c", f"env={config.name}"]
    return subprocess.run([*command, "--require-approval", approval], check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
