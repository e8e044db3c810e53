"""Shared fixtures. Expensive things (CDK synthesis, the embedded AWS, the tiny model) happen once per session."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent


# --- CDK synthesis (all environments, once) ---------------------------------------------------------------


@dataclass
class Synthesized:
    """Every environment in config/, synthesized in-process into one cloud assembly."""

    outdir: Path
    stages: dict  # environment name -> trainstack.platform.PlatformStage
    assembly: object  # aws_cdk.cx_api.CloudAssembly

    def template(self, env: str, part: str) -> dict:
        stage = self.stages[env]
        stack = getattr(stage, part)
        return stage.synth().get_stack_by_name(stack.stack_name).template


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    from aws_cdk import App

    from trainstack.config import load_all
    from trainstack.platform.platform_stage import PlatformStage

    outdir = tmp_path_factory.mktemp("cdk.out")
    # The same feature flags the CLI passes from cdk.json, so templates match `cdk synth`.
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    app = App(outdir=str(outdir), context=context)
    stages = {config.name: PlatformStage(app, config) for config in load_all(REPO_ROOT / "config")}
    assembly = app.synth()
    yield Synthesized(outdir=outdir, stages=stages, assembly=assembly)


# --- Training code: the tiny offline model (issue 3) ------------------------------------------------------


def _tiny_model_key() -> str:
    """What the tiny model's bytes depend on: its recipe, the corpus and the libraries that write it."""
    from importlib.metadata import version

    from trainstack import tiny_model

    digest = hashlib.sha256()
    for part in (Path(tiny_model.__file__).read_bytes(), tiny_model.DEFAULT_CORPUS.read_bytes()):
        digest.update(part)
    digest.update(" ".join(version(name) for name in ("torch", "transformers", "tokenizers")).encode())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def tiny_model_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer GPT-2 and its tokenizer (trainstack.tiny_model), built from the shipped corpus once and kept in
    .pytest_cache under a hash of what its bytes depend on, so later sessions and parallel workers reuse it."""
    from trainstack.tiny_model import build_tiny_model

    cache = getattr(request.config, "cache", None)  # None under `-p no:cacheprovider`
    if cache is None:
        return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
    cached = cache.mkdir("trainstack") / f"tiny-model-{_tiny_model_key()}"
    if not cached.is_dir():
        # Built aside and renamed into place: a parallel worker sees the whole model or none of it.
        built = build_tiny_model(Path(tempfile.mkdtemp(prefix="tiny-model-", dir=cached.parent)))
        try:
            built.rename(cached)
        except OSError:  # another worker renamed its identical copy first
            shutil.rmtree(built, ignore_errors=True)
    return cached


# --- Embedded AWS (issue 4) ---------------------------------------------------------------------------------
# One moto server with trainstack's adapters for the whole session, on a free port of 127.0.0.1. Tests that
# need a clean slate use unique resource names instead of restarting it.


@pytest.fixture(scope="session")
def embedded_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A started `trainstack.embedded_aws.EmbeddedAws` for the `local` environment."""
    from trainstack.embedded_aws import EmbeddedAws
    from trainstack.embedded_aws.testing import create_test_role

    with EmbeddedAws(work_dir=tmp_path_factory.mktemp("embedded-aws-jobs")) as aws:
        create_test_role(aws.client("iam"))
        yield aws
        # While the account still exists: what the session's tests exercised of each platform role's grants.
        tables = least_privilege_tables(aws)
        if tables:
            from trainstack.embedded_aws.least_privilege import markdown
            from trainstack.platform.unexercised_grants import UNEXERCISED_GRANTS

            report = REPO_ROOT / ".bench" / "least-privilege.md"
            report.parent.mkdir(exist_ok=True)
            report.write_text(markdown(tables, UNEXERCISED_GRANTS), encoding="utf-8")


def platform_roles(aws: object) -> dict[str, str]:
    """The deployed platform's roles by the key `trainstack/platform/unexercised_grants.py` uses; {} when not
    deployed."""
    from trainstack.config import ResourceNames, load_environment

    names = ResourceNames.of(load_environment("local"))
    cloudformation = aws.client("cloudformation")  # type: ignore[attr-defined]
    try:
        stack = cloudformation.describe_stacks(StackName=names.stack("training"))["Stacks"][0]
    except Exception:  # botocore's ValidationError: the platform was not deployed in this session
        return {}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    machine = aws.client("stepfunctions").describe_state_machine(stateMachineArn=outputs["StateMachineArn"])  # type: ignore[attr-defined]
    return {
        "state machine": machine["roleArn"].rsplit("/", 1)[-1],
        "execution role": names.execution_role,
        "notebook role": names.notebook_role,
    }


def least_privilege_tables(aws: object) -> dict:
    from trainstack.embedded_aws.least_privilege import grants

    iam = aws.client("iam")  # type: ignore[attr-defined]
    log = aws.iam.log.snapshot()  # type: ignore[attr-defined]
    return {key: grants(iam, aws.account, role, log) for key, role in platform_roles(aws).items()}  # type: ignore[attr-defined]


def _suffix_group(item: pytest.Item, group: str) -> None:
    """Name the item `<nodeid>@<group>`, which is how xdist's loadgroup scheduler groups it.

    pytest-xdist 3.8 does this by assigning `item._nodeid`, which pytest 9 no longer reads (it keeps the id in
    `item._id`), so under pytest 9 no xdist_group mark groups anything. Until xdist catches up, set it here.
    """
    from _pytest.nodeid import coerce_node_id

    item._id = coerce_node_id(f"{item.nodeid}@{group}")  # type: ignore[attr-defined]


# Under `pytest -n N --dist loadgroup` (make test) every worker is a process with its own embedded AWS, so a
# world is private to its worker. The tests of the deployed platform share one worker and one deploy: the
# least-privilege test reads what all of them exercised, and a second deploy would cost more than it saves.
PLATFORM_GROUP = "deployed-platform"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "deployed_local_platform" in item.fixturenames and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(PLATFORM_GROUP))
            if getattr(config.option, "loadgroup", False):
                _suffix_group(item, PLATFORM_GROUP)
    # Tests that read what the whole session exercised run last; the platform's tests, the longest share, first.
    items.sort(
        key=lambda item: (
            item.get_closest_marker("after_platform_runs") is not None,
            "deployed_local_platform" not in item.fixturenames,
        )
    )


@dataclass
class DeployedLocalPlatform:
    """The `local` stacks deployed into `embedded_aws` by `trainstack.local_platform.deploy` (the demo's path)."""

    aws: object  # trainstack.embedded_aws.EmbeddedAws
    outputs: dict[str, str]
    assembly_dir: Path
    templates: dict[str, Path]  # stack name -> its template file
    seconds: dict[str, float]

    @property
    def stack_names(self) -> list[str]:
        return list(self.templates)


@pytest.fixture(scope="session")
def deployed_local_platform(embedded_aws: object, tmp_path_factory: pytest.TempPathFactory) -> DeployedLocalPlatform:
    """`cdk synth`, `cdk bootstrap` and `cdk deploy 'local/*'` with the real CDK CLI, once per session."""
    from trainstack.config import load_environment
    from trainstack.local_platform import deploy

    work = tmp_path_factory.mktemp("cdk-local")
    platform = deploy(load_environment("local"), embedded_aws.env, work / "cdk.out", log=work / "cdk.log")  # type: ignore[attr-defined]
    manifest = json.loads((platform.assembly_dir / "manifest.json").read_text())
    stage_dir = platform.assembly_dir / manifest["artifacts"]["assembly-local"]["properties"]["directoryName"]
    stage = json.loads((stage_dir / "manifest.json").read_text())
    templates = {
        artifact["properties"].get("stackName", name): stage_dir / artifact["properties"]["templateFile"]
        for name, artifact in stage["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    return DeployedLocalPlatform(
        aws=embedded_aws,
        outputs=platform.outputs,
        assembly_dir=stage_dir,
        templates=templates,
        seconds=platform.seconds,
    )


# --- The deployed local platform, as the IAM and guard-rail tests address it -----------------------------


def role_arn(name: str) -> str:
    """An IAM role of the `local` environment's account."""
    from trainstack.config import load_environment

    return f"arn:aws:iam::{load_environment('local').account}:role/{name}"


def assumer_of(role: str, source_arn: str | None = None) -> object:
    """Who AWS has assume a platform role (its trust policy must allow it): SageMaker for the notebook instance
    (the notebook role) or a training job (any other role SageMaker runs), Step Functions for a state machine
    (`source_arn`: the machine's ARN)."""
    from trainstack.config import ResourceNames, load_environment
    from trainstack.embedded_aws.assumed_role_credentials import SAGEMAKER, STEP_FUNCTIONS, Assumer

    config = load_environment("local")
    names = ResourceNames.of(config)
    if source_arn and ":states:" in source_arn:
        return Assumer(STEP_FUNCTIONS, source_arn)
    if role.rsplit("/", 1)[-1] == names.notebook_role:
        return Assumer(SAGEMAKER, names.arn("sagemaker", f"notebook-instance/{names.notebook}"))
    return Assumer(
        SAGEMAKER, source_arn or names.arn("sagemaker", f"training-job/{config.training.job_name_prefix}-test")
    )


def stack_outputs(aws: object, stack: str) -> dict[str, str]:
    """The outputs of one deployed `local` stack (`storage`, `network`, `training`, ...)."""
    from trainstack.config import ResourceNames, load_environment

    name = ResourceNames.of(load_environment("local")).stack(stack)
    described = aws.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]  # type: ignore[attr-defined]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


# --- Timings for `make test` (bench/suite_report.py) ---------------------------------------------------------
# With TRAINSTACK_TEST_DURATIONS=<file>, the session's process that sees every report (xdist's controller, or
# the only process) writes each test's setup + call + teardown seconds there as JSON.

_durations: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("TRAINSTACK_TEST_DURATIONS")
    if target and not hasattr(session.config, "workerinput"):  # workers report to the controller
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(json.dumps(_durations, indent=1), encoding="utf-8")
