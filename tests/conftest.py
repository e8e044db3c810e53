"""Shared fixtures. Expensive things (CDK synthesis, the embedded AWS, the tiny model) happen once per session."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

F = TypeVar("F", bound=Callable[..., object])

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

    global _session_aws
    with EmbeddedAws(work_dir=tmp_path_factory.mktemp("embedded-aws-jobs")) as aws:
        create_test_role(aws.client("iam"))
        _session_aws = aws
        yield aws
        # While the account still exists: what the session's tests exercised of each platform role's grants,
        # with what the other workers' platform groups dumped so far. Of the workers that deployed, the one
        # that tears down last has every group's dump (each dumps before its own teardown), so the report it
        # writes last is the whole session's.
        if _session_config is not None:
            _dump_platform_uses(_session_config)  # what ran after the group's last test, for the report
        tables = least_privilege_tables(aws)
        if tables:
            from trainstack.embedded_aws.least_privilege import markdown
            from trainstack.platform.unexercised_grants import UNEXERCISED_GRANTS

            report = REPO_ROOT / ".bench" / "least-privilege.md"
            report.parent.mkdir(exist_ok=True)
            written = report.with_name(f".{report.name}.{os.getpid()}")
            written.write_text(markdown(tables, UNEXERCISED_GRANTS), encoding="utf-8")
            written.replace(report)  # whole or not at all, as two workers may write it
        _session_aws = None


_session_aws: object | None = None  # the embedded_aws of this process's session, for the hooks below


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


def own_least_privilege_tables(aws: object) -> dict:
    """Each platform role's grants and how often this process's embedded AWS allowed a call through them."""
    from trainstack.embedded_aws.least_privilege import grants

    iam = aws.client("iam")  # type: ignore[attr-defined]
    log = aws.iam.log.snapshot()  # type: ignore[attr-defined]
    return {key: grants(iam, aws.account, role, log) for key, role in platform_roles(aws).items()}  # type: ignore[attr-defined]


def least_privilege_tables(aws: object, wait_for: Collection[str] = ()) -> dict:
    """`own_least_privilege_tables`, with the uses other workers' platform groups dumped added in.

    `wait_for`: the groups whose dumps must be there (waited for, bounded); others are added if present.
    """
    from trainstack.embedded_aws.least_privilege import merged

    tables = own_least_privilege_tables(aws)
    if not tables:
        return tables
    dumps = _platform_dumps(wait_for)
    return merged(tables, [tables_of_dump(dump) for dump in dumps.values()])


def _suffix_group(item: pytest.Item, group: str) -> None:
    """Name the item `<nodeid>@<group>`, which is how xdist's loadgroup scheduler groups it.

    pytest-xdist 3.8 does this by assigning `item._nodeid`, which pytest 9 no longer reads (it keeps the id in
    `item._id`), so under pytest 9 no xdist_group mark groups anything. Until xdist catches up, set it here.
    """
    from _pytest.nodeid import coerce_node_id

    item._id = coerce_node_id(f"{item.nodeid}@{group}")  # type: ignore[attr-defined]


# Under `pytest -n N --dist loadgroup` (make test) every worker is a process with its own embedded AWS, so a
# world is private to its worker. The tests of the deployed platform are split into one group per worker by
# test module, balanced by their measured seconds (tests/platform_durations.json): each worker deploys once and
# runs its group's modules serially, in collection order, in an account no other group touches. A module stays
# whole because its tests share module-scoped fixtures and some read what the one before left (pools, runs).
# The least-privilege test reads what all groups exercised: each worker dumps its platform roles' grant uses
# when its group is done (`_dump_platform_uses`), and the test adds them in. In one process (`-n 0`) or with
# one worker there is one group and one deploy.
PLATFORM_GROUP = "deployed-platform"
PLATFORM_DURATIONS = Path(__file__).with_name("platform_durations.json")  # bench/platform_durations.py writes it
DUMPS_KEY = "trainstack_platform_dumps"  # workerinput: the folder the workers dump their grant uses into
DUMP_WAIT_S = 1800  # the longest a group's worker can still be running its modules when the other is done


def platform_group_count(config: pytest.Config) -> int:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or not getattr(config.option, "loadgroup", False):
        return 1
    return max(1, int(workerinput["workercount"]))


def platform_groups(items: list[pytest.Item], count: int) -> dict[str, str]:
    """Module (file) -> group, for the modules of `items` that use the deployed platform.

    Largest first onto the lightest group (ties: the lower number), by the selected tests' measured seconds; a
    test not in the table counts as the table's mean. Every worker computes the same from the same collection.
    """
    if count == 1:
        return {item.nodeid.split("::")[0]: PLATFORM_GROUP for item in items if _uses_platform(item)}
    table: dict[str, float] = json.loads(PLATFORM_DURATIONS.read_text()) if PLATFORM_DURATIONS.exists() else {}
    unknown = sum(table.values()) / len(table) if table else 1.0
    seconds: dict[str, float] = {}
    for item in items:
        if _uses_platform(item):
            module = item.nodeid.split("::")[0]
            seconds[module] = seconds.get(module, 0.0) + table.get(item.nodeid, unknown)
    load = [0.0] * count
    groups = {}
    for module in sorted(seconds, key=lambda m: (-seconds[m], m)):
        lightest = min(range(count), key=lambda i: (load[i], i))
        load[lightest] += seconds[module]
        groups[module] = f"{PLATFORM_GROUP}-{lightest + 1}"
    return groups


def shared_run(fixture_function: F) -> F:
    """Marks a module-scoped fixture that several tests read and that costs seconds to build: a job it runs, a
    synthesis or a fresh interpreter (below `@pytest.fixture`).

    xdist hands tests to workers one by one, so each worker that gets a test of the fixture would build it again
    (a two-host training run built on both workers: twice the minute). The tests that use one (or fixtures built
    on one another, like a resume of a run) go to one worker as an xdist group."""
    fixture_function.trainstack_shared_run = True  # type: ignore[attr-defined]
    return fixture_function


def shared_run_groups(items: list[pytest.Item]) -> dict[str, str]:
    """Test id -> group, for the tests that use a `shared_run` fixture; fixtures used by one test together are
    one group (union-find), named for one of them."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    used: dict[str, list[str]] = {}
    for item in items:
        definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        module = item.nodeid.split("::")[0]
        keys = [
            f"{module}::{name}"
            for name, defs in definitions.items()
            if defs and getattr(defs[-1].func, "trainstack_shared_run", False)
        ]
        for key in keys[1:]:
            parent[root(key)] = root(keys[0])
        if keys:
            used[item.nodeid] = keys
    return {nodeid: f"shared-run:{root(keys[0])}" for nodeid, keys in used.items()}


def _uses_platform(item: pytest.Item) -> bool:
    return "deployed_local_platform" in getattr(item, "fixturenames", ())


def _platform_group(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    name = mark.args[0] if mark and mark.args else None
    return name if isinstance(name, str) and name.startswith(PLATFORM_GROUP) else None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--week", action="store_true", help="also run the tests marked week (make test-week)")


def _deselect_week(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--week"):
        return
    week = [item for item in items if item.get_closest_marker("week") is not None]
    if week:
        config.hook.pytest_deselected(items=week)
        items[:] = [item for item in items if item.get_closest_marker("week") is None]


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Iterator[None]:
    yield  # after `-k` and `-m` deselected: the groups balance what runs
    _deselect_week(config, items)
    groups = platform_groups(items, platform_group_count(config))
    runs = shared_run_groups(items)
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        group = groups[item.nodeid.split("::")[0]] if _uses_platform(item) else runs.get(item.nodeid)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
            if getattr(config.option, "loadgroup", False):
                _suffix_group(item, group)
    # Tests that read what the whole session exercised run last; the platform's tests, the longest share, first
    # (which also puts the platform groups first in xdist's queue, one onto each worker).
    items.sort(
        key=lambda item: (
            item.get_closest_marker("after_platform_runs") is not None,
            not _uses_platform(item),
        )
    )


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: object) -> None:
    """xdist's controller: one fresh folder for this session's dumps, named to every worker."""
    config = node.config  # type: ignore[attr-defined]
    if not hasattr(config, "_trainstack_dumps"):
        config._trainstack_dumps = tempfile.mkdtemp(prefix="trainstack-platform-uses-")
    node.workerinput[DUMPS_KEY] = config._trainstack_dumps  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "_trainstack_dumps"):
        shutil.rmtree(config._trainstack_dumps, ignore_errors=True)


_groups_run_here: set[str] = set()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    group = _platform_group(item)
    if group is not None:
        _groups_run_here.add(group)  # before it runs: the least-privilege test may be its group's only test


@pytest.hookimpl(tryfirst=True)  # before the fixtures' teardown: after a worker's last test, that is the session's
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if not _last_of_group:
        _last_of_group.update({group: other for other in item.session.items if (group := _platform_group(other))})
    group = _platform_group(item)
    if group is not None and _last_of_group[group] is item:
        _dump_platform_uses(item.config)  # loadgroup sends a group whole, and it runs in collection order


_last_of_group: dict[str, pytest.Item] = {}  # each platform group's last selected test


def _dump_folder(config: pytest.Config) -> Path | None:
    folder = getattr(config, "workerinput", {}).get(DUMPS_KEY)
    return Path(folder) if folder else None


def _dump_platform_uses(config: pytest.Config) -> None:
    """This worker's platform grant uses, for the other workers' least-privilege test and report."""
    folder = _dump_folder(config)
    if folder is None or _session_aws is None or not _groups_run_here:
        return
    tables = own_least_privilege_tables(_session_aws)
    dump = {
        "groups": sorted(_groups_run_here),
        "tables": {key: [dataclasses.asdict(row) for row in rows] for key, rows in tables.items()},
    }
    worker = config.workerinput["workerid"]  # type: ignore[attr-defined]
    written = folder / f".{worker}.json"
    written.write_text(json.dumps(dump), encoding="utf-8")
    written.replace(folder / f"{worker}.json")  # a reader sees a whole dump or none


def _platform_dumps(wait_for: Collection[str]) -> dict[str, dict]:
    """The other workers' dumps by worker, once the groups `wait_for` (less this worker's) are among them."""
    config = _session_config
    folder = _dump_folder(config) if config is not None else None
    missing = set(wait_for) - _groups_run_here
    if folder is None:
        assert not missing, f"the platform groups {sorted(missing)} ran in no worker that dumps its uses"
        return {}
    me = config.workerinput["workerid"]  # type: ignore[union-attr]
    deadline = time.monotonic() + DUMP_WAIT_S
    while True:
        dumps = {
            path.stem: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(folder.glob("*.json"))
            if path.stem != me and not path.name.startswith(".")
        }
        covered = {group for dump in dumps.values() for group in dump["groups"]}
        if missing <= covered:
            return dumps
        if time.monotonic() > deadline:
            raise AssertionError(
                f"after {DUMP_WAIT_S} s no worker dumped the grant uses of the platform groups "
                f"{sorted(missing - covered)} into {folder} (did their worker crash or stop at a failure?)"
            )
        time.sleep(2)


def tables_of_dump(dump: dict) -> dict:
    from trainstack.embedded_aws.least_privilege import Grant

    return {key: [Grant(**row) for row in rows] for key, rows in dump["tables"].items()}


_session_config: pytest.Config | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _session_config
    _session_config = config


def expected_platform_groups(session: pytest.Session) -> set[str]:
    """The platform groups of this session's selected tests: the groups whose uses the whole session's are."""
    return {group for item in session.items if (group := _platform_group(item)) is not None}


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


def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder every process of this pytest session shares: xdist gives each worker a folder below it."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Held by one process of the machine at a time (an advisory lock on `lock_file`)."""
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def deployed_local_platform(embedded_aws: object, tmp_path_factory: pytest.TempPathFactory) -> DeployedLocalPlatform:
    """`cdk synth`, `cdk bootstrap` and `cdk deploy 'local/*'` with the real CDK CLI, once per session."""
    from trainstack.config import load_environment
    from trainstack.local_platform import deploy, is_synthesized, source_fingerprint, synth

    config = load_environment("local")
    work = tmp_path_factory.mktemp("cdk-local")
    outdir, log = work / "cdk.out", work / "cdk.log"
    fingerprint = source_fingerprint()
    if fingerprint is not None:
        # Every worker deploys the same sources: the first here synthesizes into the session's folder, the others
        # wait for it and deploy a copy (a `cdk synth` costs about 20 s of CPU, and the machine has two cores).
        shared = session_dir(tmp_path_factory) / "cdk-local.out"
        with exclusive(shared.with_name("cdk-local.lock")):
            if not is_synthesized(shared, fingerprint):
                synth(config, embedded_aws.env, shared, log=log, fingerprint=fingerprint)  # type: ignore[attr-defined]
        # A copy each: `cdk deploy` writes lock files and outputs beside the assembly it reads.
        shutil.copytree(shared, outdir)
    platform = deploy(config, embedded_aws.env, outdir, log=log, fingerprint=fingerprint)  # type: ignore[attr-defined]
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
