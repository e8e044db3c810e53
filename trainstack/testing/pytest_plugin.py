"""pytest fixtures that deploy a team's trainstack app into the embedded AWS (moto and trainstack's adapters).

    pip install 'trainstack[offline]'    # registers this plugin; pytest loads it by itself

    def test_my_app_deploys(deployed_app, embedded_aws):
        platform = deployed_app(Path(__file__).parent.parent)          # the app folder: cdk.json, config/
        machine = embedded_aws.client("stepfunctions").describe_state_machine(
            stateMachineArn=platform.state_machine_arn)
        assert machine["status"] == "ACTIVE"

`embedded_aws` serves the app's embedded environment (`embedded: true`, `--trainstack-env`, default `local`), read
from the `config/` folder of pytest's root directory (`--trainstack-app` to name another). `deployed_app(app_dir,
environment=None)` runs the real CDK CLI in `app_dir` as `make demo` does (`cdk synth '<env>/*' -c env=<env>`,
`cdk bootstrap`, `cdk deploy`), once per app and environment in a session; the app must put each environment's
stacks in a Stage named after it and honour `-c env=` (trainstack's `PlatformStage` and `load_selected` do both),
and have the CDK CLI on its PATH (`node_modules/.bin` of the app, or installed globally).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the embedded AWS imports moto: only when a test asks for it
    from trainstack.config import EnvironmentConfig
    from trainstack.embedded_aws import EmbeddedAws
    from trainstack.local_platform import DeployedPlatform

DeployApp = Callable[..., "DeployedPlatform"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("trainstack", "trainstack's embedded AWS")
    group.addoption(
        "--trainstack-app",
        default=None,
        help="The CDK app folder whose config/ names the embedded environment (default: pytest's rootdir).",
    )
    group.addoption(
        "--trainstack-env",
        default="local",
        help="The embedded environment (a config/<NAME>.yaml with `embedded: true`); default: local.",
    )


def _app_dir(config: pytest.Config) -> Path:
    given = config.getoption("--trainstack-app")
    return Path(given).resolve() if given else Path(config.rootpath)


@pytest.fixture(scope="session")
def embedded_environment(pytestconfig: pytest.Config) -> EnvironmentConfig:
    """The embedded environment's config, from the app's `config/`."""
    from trainstack.config import load_environment

    return load_environment(pytestconfig.getoption("--trainstack-env"), _app_dir(pytestconfig) / "config")


@pytest.fixture(scope="session")
def embedded_aws(
    embedded_environment: EnvironmentConfig, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedAws]:
    """A started embedded AWS for the session: `.client(service)`, `.env` for a subprocess, `.endpoint_url`."""
    from trainstack.embedded_aws import EmbeddedAws

    with EmbeddedAws(config=embedded_environment, work_dir=tmp_path_factory.mktemp("embedded-aws-jobs")) as aws:
        yield aws


@pytest.fixture(scope="session")
def _deployed_apps() -> dict[tuple[Path, str], DeployedPlatform]:
    return {}


@pytest.fixture
def deployed_app(
    embedded_aws: EmbeddedAws,
    embedded_environment: EnvironmentConfig,
    _deployed_apps: dict[tuple[Path, str], DeployedPlatform],
    tmp_path_factory: pytest.TempPathFactory,
) -> DeployApp:
    """`deployed_app(app_dir, environment=None)`: the app's environment (default: the embedded one) deployed into
    `embedded_aws` with the CDK CLI, its stack outputs in `.outputs`; deployed once per session."""
    from trainstack.config import load_environment
    from trainstack.local_platform import deploy

    def deploy_app(app_dir: Path, environment: str | None = None) -> DeployedPlatform:
        app_dir = Path(app_dir).resolve()
        config = embedded_environment
        if environment is not None:
            config = load_environment(environment, app_dir / "config")
        if not config.embedded:
            raise ValueError(f"{config.name}: not an embedded environment (embedded: true); it would need an account")
        key = (app_dir, config.name)
        if key not in _deployed_apps:
            work = tmp_path_factory.mktemp(f"cdk-{config.name}")
            # The CDK CLI runs where the app is: trainstack.config.app_dir() is the working directory.
            with contextlib.chdir(app_dir):
                _deployed_apps[key] = deploy(config, embedded_aws.env, work / "cdk.out", log=work / "cdk.log")
        return _deployed_apps[key]

    return deploy_app
