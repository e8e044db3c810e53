"""The operator CLI (`trainstack ...`) against the deployed `local` platform on the embedded AWS.

One real run (`run --watch`, a few steps) feeds the status, logs and pools tests; everything else is fast:
input checks, dry runs and quota reads never start a job. Errors must read as sentences with exit code 1.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import uuid
from dataclasses import dataclass
from pathlib import Path

import botocore.session
import pytest
import typer
from botocore.validate import ParamValidator
from typer.testing import CliRunner

from trainstack.cli import app
from trainstack.cli.errors import CliError
from trainstack.cli.logs import host_of
from trainstack.cli.run import build_input, parse_pairs, read_input_file
from trainstack.config import ResourceNames, load_environment
from trainstack.local_platform import stage_demo_data

slow = pytest.mark.slow
CONFIG = load_environment("local")
NAMES = ResourceNames.of(CONFIG)
QUICK = ["-p", "max_steps=4", "-p", "logging_steps=2", "-p", "eval_steps=4", "-p", "save_steps=4"]
CREATE_TRAINING_JOB = (
    botocore.session.get_session().get_service_model("sagemaker").operation_model("CreateTrainingJob").input_shape
)
# Variables a developer's shell may hold that would change what the CLI talks to.
_CALLER_AWS = {key: None for key in os.environ if key.startswith("AWS_")}


@dataclass
class Cli:
    env: dict[str, str | None]
    aws: object  # trainstack.embedded_aws.EmbeddedAws

    def __call__(self, *args: str, env: dict[str, str | None] | None = None):
        result = CliRunner().invoke(app, list(args), env={**self.env, **(env or {})})
        # Whatever happens, never a traceback: the CLI catches everything into a sentence.
        assert "Traceback" not in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        return result

    def client(self, service: str):
        return self.aws.client(service)  # type: ignore[attr-defined]

    def execution_count(self) -> int:
        sfn = self.client("stepfunctions")
        arn = NAMES.arn("states", f"stateMachine:{NAMES.state_machine}")
        return len(sfn.list_executions(stateMachineArn=arn, maxResults=1000)["executions"])


@pytest.fixture(scope="module")
def cli(deployed_local_platform, tiny_model_dir) -> Cli:
    aws = deployed_local_platform.aws
    stage_demo_data(aws.client("s3"), CONFIG, tiny_model_dir)
    return Cli(env={**_CALLER_AWS, **aws.env}, aws=aws)


def _field(output: str, label: str) -> str:
    """The value of a `Label   value` line."""
    for line in output.splitlines():
        if line.startswith(f"{label} "):
            return line[len(label) :].strip()
    raise AssertionError(f"no {label!r} line in:\n{output}")


@dataclass
class WatchedRun:
    execution: str
    job: str
    output: str


@pytest.fixture(scope="module")
def watched_run(cli: Cli) -> WatchedRun:
    """`trainstack run --watch` on the defaults (ml.m5.xlarge) with a short run and a 600 s warm pool."""
    name = f"cli-test-{uuid.uuid4().hex[:8]}"
    result = cli("run", "--watch", "--name", name, *QUICK, "--keep-alive", "600", "--tag", "purpose=cli-test")
    assert result.exit_code == 0, result.output
    return WatchedRun(execution=name, job=_field(result.output, "Job").split()[0], output=result.output)


@slow
def test_run_watch_follows_the_run_to_its_model_artifact(cli: Cli, watched_run: WatchedRun) -> None:
    out = watched_run.output
    assert f"Started         {watched_run.execution} on {NAMES.state_machine}" in out
    # Progress: the states, the job's secondary statuses, then the summary.
    assert "state  Train" in out and "job    Training" in out
    assert _field(out, "Status").startswith("SUCCEEDED")
    assert _field(out, "Job") == f"{watched_run.job}  Completed"
    assert _field(out, "Warm pool").startswith("kept 600s; pool Available")
    # Without a terminal too, the summary gives the loss: first -> last of the train and eval losses logged.
    assert re.fullmatch(r"train \d+\.\d{3} → \d+\.\d{3} \(\d+ logged\); eval \d+\.\d{3}.*", _field(out, "Loss"))
    artifact = _field(out, "Model artifact")
    assert artifact == f"s3://{NAMES.artifacts_bucket}/output/{watched_run.job}/output/model.tar.gz"
    job = cli.client("sagemaker").describe_training_job(TrainingJobName=watched_run.job)
    assert job["HyperParameters"]["max_steps"] == "4"
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == artifact


@slow
def test_status_of_an_execution_shows_job_warm_pool_and_artifact(cli: Cli, watched_run: WatchedRun) -> None:
    result = cli("status", watched_run.execution)
    assert result.exit_code == 0, result.output
    assert _field(result.output, "Execution") == watched_run.execution
    assert _field(result.output, "Status").startswith("SUCCEEDED")
    assert _field(result.output, "Job").startswith(watched_run.job)
    assert _field(result.output, "Instances") == "1 x ml.m5.xlarge"
    assert 'warm-pool quota "ml.m5.xlarge for training warm pool usage"' in _field(result.output, "Warm pool")
    assert _field(result.output, "Model artifact").endswith(f"/{watched_run.job}/output/model.tar.gz")

    listing = cli("status", "--last", "5")
    assert listing.exit_code == 0, listing.output
    row = next(line for line in listing.output.splitlines() if watched_run.execution in line)
    assert "SUCCEEDED" in row and "600s" in row and "model.tar.gz" in row
    # A 100-column terminal shows each execution on one line: no URIs or job names in the table.
    assert max(len(line) for line in listing.output.splitlines()) <= 100, listing.output


@slow
def test_logs_interleave_the_jobs_lines_with_a_host_prefix(cli: Cli, watched_run: WatchedRun) -> None:
    by_execution = cli("logs", watched_run.execution)
    assert by_execution.exit_code == 0, by_execution.output
    *lines, note = by_execution.output.splitlines()
    assert lines and all(line.startswith("[algo-1] ") for line in lines)
    assert any("train_loss=" in line for line in lines)
    assert any("Reporting training SUCCESS" in line for line in lines)
    # pip's "Requirement already satisfied" lines only when asked for, and the count of them says so.
    everything = cli("logs", watched_run.execution, "--all").output.splitlines()
    pip_lines = [line for line in everything if "Requirement already satisfied: " in line]
    assert pip_lines and not any("Requirement already satisfied: " in line for line in lines)
    assert len(everything) == len(lines) + len(pip_lines)
    assert note == f"({len(pip_lines)} lines of pip's 'Requirement already satisfied' left out; --all shows them)"

    followed = cli("logs", watched_run.job, "--follow")
    assert followed.exit_code == 0, followed.output
    assert followed.output.splitlines()[: len(lines) + 1] == [*lines, note]
    assert followed.output.rstrip().endswith(f"{watched_run.job} ended Completed")


@slow
def test_quotas_table_shows_the_configured_quotas_and_current_usage(cli: Cli, watched_run: WatchedRun) -> None:
    types = ["ml.m5.xlarge", "ml.m5.2xlarge", "ml.c5.xlarge", "ml.p4de.24xlarge"]
    result = cli("quotas", *[arg for kind in types for arg in ("--instance-type", kind)])
    assert result.exit_code == 0, result.output
    rows = {
        cells[0]: cells[1:]
        for line in result.output.splitlines()
        if (cells := [c.strip() for c in line.split("│")[1:-1]]) and cells[0] in types
    }
    sagemaker = cli.client("sagemaker")
    pooled = [
        sagemaker.describe_training_job(TrainingJobName=job["TrainingJobName"])["ResourceConfig"]
        for status in ("Available", "InUse")
        for job in sagemaker.list_training_jobs(WarmPoolStatusEquals=status)["TrainingJobSummaries"]
    ]
    for kind in types:
        quota = CONFIG.quotas.instances[kind]
        training, running, in_pools, training_left, warm, warm_left = rows[kind]
        kept = sum(r["InstanceCount"] for r in pooled if r["InstanceType"] == kind)
        # A value of 0 comes back as the AWS default (nothing applied), shown as "0 (default)".
        assert training.split()[0] == str(quota.training_job_usage) and (running, in_pools) == ("0", str(kept))
        assert warm.split()[0] == str(quota.training_warm_pool_usage)
        assert warm_left == str(quota.training_warm_pool_usage - kept)
        assert training_left == str(quota.training_job_usage - kept)  # Available pools count against it
    assert "Longest run time for a training job (L-33A961FD): 432000 s" in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 100, result.output

    default = cli("quotas")
    assert CONFIG.training.instance_type in default.output and "ml.c5.xlarge" not in default.output
    everything = cli("quotas", "--all")
    assert "ml.p4de.24xlarge" in everything.output and "ml.g5.2xlarge" in everything.output


@slow
def test_dry_run_with_an_available_warm_pool_shows_the_pool_it_would_reuse(cli: Cli, watched_run: WatchedRun) -> None:
    # An Available pool is the normal state after a default run; describing it gives datetimes (CreationTime ...).
    assert (
        cli.client("sagemaker").describe_training_job(TrainingJobName=watched_run.job)["WarmPoolStatus"]["Status"]
        == "Available"
    )
    result = cli("run", "--dry-run", *QUICK, "--keep-alive", "600")
    assert result.exit_code == 0, result.output
    assert f"(reusing the pool of {watched_run.job})" in _field(result.stdout, "Warm pool")
    request = json.JSONDecoder().raw_decode(result.stdout.split("CreateTrainingJob request\n", 1)[1])[0]
    assert request["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 600


@slow
def test_pools_lists_the_available_pool_and_release_ends_it(cli: Cli, watched_run: WatchedRun) -> None:
    listed = cli("pools")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if watched_run.job in line)
    assert "1 x ml.m5.xlarge" in row and "Available" in row
    assert max(len(line) for line in listed.output.splitlines()) <= 100, listed.output

    released = cli("pools", "release", watched_run.job)
    assert released.exit_code == 0, released.output
    assert f"Released the warm pool of {watched_run.job}: now Terminated" in released.output
    pool = cli.client("sagemaker").describe_training_job(TrainingJobName=watched_run.job)["WarmPoolStatus"]
    assert pool["Status"] == "Terminated"
    assert watched_run.job not in cli("pools").output
    assert watched_run.job in cli("pools", "--all").output

    again = cli("pools", "release", watched_run.job)
    assert again.exit_code == 1
    assert f"The warm pool of {watched_run.job} is Terminated; only an Available pool can be released" in again.output


@slow
def test_bad_flag_value_prints_the_invalid_input_cause_and_starts_nothing(cli: Cli) -> None:
    before = cli.execution_count()
    result = cli("run", "--instance-count", "9", "--instance-type", "ml.c6i.xlarge", "--env", "PERL5OPT=-Mx")
    assert result.exit_code == 1
    assert "InvalidInput: " in result.stderr
    # The rulebook's rules, by id, as the deployed Validate words them (issue 20).
    assert "environment.PERL5OPT: a run may not set it: " in result.stderr
    assert "[environment-allow-list]" in result.stderr
    assert 'instance_type: "ml.c6i.xlarge" is of family "c6i", which this environment does not allow' in result.stderr
    assert "instance_count: expected a whole number from 1 to 4, got 9" in result.stderr
    assert cli.execution_count() == before

    malformed = cli("run", "-p", "no-equals-sign")
    assert malformed.exit_code == 2 and "expected NAME=VALUE" in malformed.output


@slow
def test_watched_run_that_fails_exits_1_with_the_error_and_cause(cli: Cli) -> None:
    result = cli("run", "--watch", "--instance-type", "ml.c5.xlarge")
    assert result.exit_code == 1
    assert _field(result.stdout, "Status").startswith("FAILED")
    assert _field(result.stdout, "Error") == "QuotaExceeded"
    assert 'QuotaExceeded: The quota "ml.c5.xlarge for training job usage" (L-' in result.stderr
    assert "this run asks for 1 instance(s)" in result.stderr


@slow
def test_dry_run_shows_the_request_from_file_and_flags_without_starting(cli: Cli, tmp_path) -> None:
    run_input = tmp_path / "run.json"
    run_input.write_text(json.dumps({"instance_count": 2, "hyperparameters": {"max_steps": 8, "warmup": 1}}))
    before = cli.execution_count()
    result = cli(
        "run", "--dry-run", "--input", str(run_input), "--instance-type", "ml.m5.2xlarge", "--instance-count", "1",
        "-p", "max_steps=4", "-p", "model_name=gpt2", "--channel", "extra=datasets/extra/",
        "--env", "TRAINSTACK_MARK=cli", "--keep-alive", "300",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert cli.execution_count() == before
    shown_input = json.JSONDecoder().raw_decode(result.stdout.split("Execution input\n", 1)[1])[0]
    assert shown_input["instance_count"] == 1 and shown_input["hyperparameters"]["warmup"] == 1
    request = json.JSONDecoder().raw_decode(result.stdout.split("CreateTrainingJob request\n", 1)[1])[0]
    report = ParamValidator().validate(request, CREATE_TRAINING_JOB)
    assert not report.has_errors(), report.generate_report()
    assert request["ResourceConfig"]["InstanceType"] == "ml.m5.2xlarge"
    assert request["ResourceConfig"]["InstanceCount"] == 1
    # ml.m5.2xlarge has warm-pool quota 0: the keep-alive is not sent, and the reason says why.
    assert "KeepAlivePeriodInSeconds" not in request["ResourceConfig"]
    assert "is 0 in this account" in _field(result.stdout, "Warm pool")
    assert request["HyperParameters"]["max_steps"] == "4" and request["HyperParameters"]["warmup"] == "1"
    assert request["HyperParameters"]["model_name"] == '"gpt2"'
    assert request["Environment"]["TRAINSTACK_MARK"] == "cli"
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert channels["extra"] == f"s3://{NAMES.data_bucket}/datasets/extra/"

    over_quota = cli("run", "--dry-run", "--instance-type", "ml.c5.xlarge")
    assert over_quota.exit_code == 1 and 'QuotaExceeded: The quota "ml.c5.xlarge for training job usage"' in (
        over_quota.stderr
    )


@slow
def test_errors_read_as_sentences(cli: Cli, tmp_path, monkeypatch) -> None:
    unknown = cli("--env", "nope", "status")
    assert unknown.exit_code == 1
    assert "config/nope.yaml: no such environment file (known environments: dev, local, prod)" in unknown.stderr

    # `dev` was never deployed into the embedded AWS.
    undeployed = cli("--env", "dev", "status")
    assert undeployed.exit_code == 1
    assert (
        "No state machine trainstack-dev-training in us-west-2 at "
        f"{cli.env['AWS_ENDPOINT_URL']}: deploy the environment first (make deploy ENV=dev)." in undeployed.stderr
    )

    missing = cli("status", "no-such-execution")
    assert missing.exit_code == 1 and "No execution no-such-execution of trainstack-local-training" in missing.stderr
    no_job = cli("logs", "no-such-job")
    assert no_job.exit_code == 1 and "No training job or execution named no-such-job" in no_job.stderr

    no_credentials = cli("--env", "dev", "status", env={"AWS_ENDPOINT_URL": None, "AWS_ACCESS_KEY_ID": None,
                                                         "AWS_SECRET_ACCESS_KEY": None})  # fmt: skip
    assert no_credentials.exit_code == 1 and "AWS credentials not found: " in no_credentials.stderr

    unreachable = cli("--endpoint-url", "http://127.0.0.1:9", "status")
    assert unreachable.exit_code == 1 and "Could not reach http://127.0.0.1:9" in unreachable.stderr

    monkeypatch.setattr("trainstack.cli.session.EMBEDDED_STATE_FILE", tmp_path / "server.json")
    not_running = cli("status", env={"AWS_ENDPOINT_URL": None})
    assert not_running.exit_code == 1
    assert "Environment 'local' runs on the embedded AWS, which is not running: start it with make local-up" in (
        not_running.stderr
    )


@slow
def test_stop_aborts_a_running_execution_and_refuses_a_finished_one(cli: Cli, watched_run: WatchedRun) -> None:
    name = f"cli-stop-{uuid.uuid4().hex[:8]}"
    started = cli("run", "--name", name, *QUICK)
    assert started.exit_code == 0, started.output
    assert f"trainstack status {name}" in started.output  # the local environment's advice needs no --env
    stopped = cli("stop", name, "--cause", "wrong learning rate")
    assert stopped.exit_code == 0, stopped.output
    assert _field(stopped.output, "Stopped") == f"{name} (ABORTED: wrong learning rate)"
    described = cli.client("stepfunctions").describe_execution(
        executionArn=NAMES.arn("states", f"execution:{NAMES.state_machine}:{name}")
    )
    assert described["status"] == "ABORTED"

    again = cli("stop", watched_run.execution)
    assert again.exit_code == 1
    assert f"Execution {watched_run.execution} already ended SUCCEEDED: nothing to stop." in again.stderr


def test_help_shows_examples() -> None:
    for command in ([], ["run"], ["status"], ["logs"], ["stop"], ["pools"], ["local", "du"]):
        result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "100"})
        assert result.exit_code == 0, result.output
        assert "Examples" in result.output and "trainstack " in result.output.split("Examples", 1)[1]


def test_local_du_lists_job_folders_by_size(tmp_path, monkeypatch) -> None:
    jobs = tmp_path / "jobs"
    for job, size in (("small-job", 10), ("large-job", 3 * 1024 * 1024)):
        (jobs / job / "model").mkdir(parents=True)
        (jobs / job / "model" / "weights.bin").write_bytes(b"0" * size)
    monkeypatch.setattr("trainstack.cli.local.STATE_DIR", tmp_path)
    result = CliRunner().invoke(app, ["local", "du"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "-job" in line]
    assert "large-job" in rows[0] and "3.0 MB" in rows[0] and "small-job" in rows[1] and "10 B" in rows[1]
    assert "2 folders, 3.0 MB in all" in result.output


def test_flag_values_parse_as_json_when_they_can() -> None:
    assert parse_pairs(["lr=1e-3", "steps=4", "name=gpt2", "flag=true", "expr=a=b"], "-p", json_values=True) == {
        "lr": 0.001,
        "steps": 4,
        "name": "gpt2",
        "flag": True,
        "expr": "a=b",
    }
    assert parse_pairs(["N=4"], "--env") == {"N": "4"}  # environment values stay strings


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", "nan", "-inf", "INF"])
def test_a_hyperparameter_that_is_no_finite_number_is_refused_naming_it(value: str) -> None:
    with pytest.raises(typer.BadParameter, match=r"learning_rate: .* finite number") as refused:
        parse_pairs([f"learning_rate={value}"], "--hyperparameter", json_values=True)
    assert refused.value.param_hint == "--hyperparameter"


def test_big_integers_stay_exact_and_nan_in_an_input_file_is_refused(tmp_path: Path) -> None:
    parsed = parse_pairs(
        ["seed=12345678901234567890", "steps=9007199254740992", "neg=-9007199254740993"], "-p", json_values=True
    )
    assert parsed == {"seed": "12345678901234567890", "steps": 2**53, "neg": "-9007199254740993"}
    assert (
        json.dumps(parsed) == '{"seed": "12345678901234567890", "steps": 9007199254740992, "neg": "-9007199254740993"}'
    )
    bad = tmp_path / "input.json"
    bad.write_text('{"hyperparameters": {"learning_rate": NaN}}')
    with pytest.raises(CliError, match=r"input\.json: not valid JSON: NaN is not a JSON number"):
        read_input_file(bad)


def test_flags_override_the_input_file_and_merge_into_its_maps() -> None:
    base = {"instance_count": 2, "hyperparameters": {"a": 1, "b": 2}, "spot": True}
    merged = build_input(base, {"instance_count": 1, "spot": None}, {"hyperparameters": {"b": 3}, "tags": {}})
    assert merged == {"instance_count": 1, "hyperparameters": {"a": 1, "b": 3}, "spot": True}
    assert build_input("not an object", {}, {}) == "not an object"  # left for the state machine to reject


def test_log_streams_name_their_host() -> None:
    assert host_of("trainstack-20260101-abc/algo-12-1767225600") == "algo-12"


# --- The README's offline commands, as written ------------------------------------------------------------

README = Path(__file__).resolve().parent.parent / "README.md"
MAKEFILE = README.parent / "Makefile"
# Placeholders the README uses for names a reader has only after a run.
_PLACEHOLDER = re.compile(r"\b(EXECUTION|JOB|NAME)\b")


def offline_commands() -> list[list[str]]:
    """Every command of the README's offline sections' fenced bash blocks, comments dropped, split as a shell would."""
    text = README.read_text(encoding="utf-8")
    sections = [text.split("### Offline, step by step", 1)[1], text.split("Offline, after `make local-up`", 1)[1]]
    commands = []
    for section in sections:
        block = section.split("```bash\n", 1)[1].split("```", 1)[0]
        commands += [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]
    return commands


def test_readme_offline_make_targets_exist() -> None:
    targets = {line.split(":", 1)[0] for line in MAKEFILE.read_text(encoding="utf-8").splitlines() if ":" in line}
    for command in offline_commands():
        if command[0] == "make":
            assert command[1] in targets, f"README runs make {command[1]}, which the Makefile lacks"


@slow
def test_readme_offline_trainstack_commands_run_as_written(cli: Cli, watched_run: WatchedRun) -> None:
    ran = []
    for command in offline_commands():
        if command[0] != "trainstack":
            continue
        args = [watched_run.execution if _PLACEHOLDER.fullmatch(arg) else arg for arg in command[1:]]
        # A run that trains is test_run_watch_follows_the_run_to_its_model_artifact; here its flags and input
        # go through the same checks with --dry-run, which starts nothing.
        args = ["--dry-run" if arg == "--watch" else arg for arg in args]
        result = cli(*args)
        assert result.exit_code == 0, f"trainstack {' '.join(command[1:])}:\n{result.output}"
        ran.append(command[1])
    assert {"run", "status", "logs", "quotas", "pools", "local"} <= set(ran)
