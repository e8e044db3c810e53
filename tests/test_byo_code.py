"""Bring your own code on the embedded platform: a user folder with its own entry point and requirements.txt
trains through the CLI, with its dependency installed from the shipped wheels inside a job environment of
its own whose package index is unreachable; bad code, package or image inputs fail before any job exists.

pip has no index while packing either: PIP_NO_INDEX and PIP_FIND_LINKS point at tests/data/wheelhouse (the
real PyPI wheel of tabulate 0.10.0). The job itself gets none of that (job_container.py scrubs PIP_*).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from trainstack.cli import app
from trainstack.config import ResourceNames, load_environment
from trainstack.embedded_aws.job_container import WARMPOOL_CACHE_ENV
from trainstack.local_platform import stage_demo_data
from trainstack.source_package import build_source_tarball, pack, upload

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "examples" / "byo-code"
WHEELHOUSE = REPO_ROOT / "tests" / "data" / "wheelhouse"
CONFIG = load_environment("local")
NAMES = ResourceNames.of(CONFIG)
OFFLINE_PIP = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE), "PIP_CONFIG_FILE": os.devnull}
SEED_CHANNELS = {"train123": "datasets/sample/train/", "val123": "datasets/sample/val/"}
_CALLER_AWS = {key: None for key in os.environ if key.startswith("AWS_")}


@pytest.fixture(scope="module")
def aws(deployed_local_platform, tiny_model_dir) -> Any:
    aws = deployed_local_platform.aws
    stage_demo_data(aws.client("s3"), CONFIG, tiny_model_dir)
    return aws


def _job_count(aws: Any) -> int:
    return len(aws.client("sagemaker").list_training_jobs(MaxResults=100)["TrainingJobSummaries"])


def _wait_job(aws: Any, name: str, timeout: float = 120) -> dict[str, Any]:
    sagemaker = aws.client("sagemaker")
    deadline = time.monotonic() + timeout
    while (job := sagemaker.describe_training_job(TrainingJobName=name))["TrainingJobStatus"] == "InProgress":
        assert time.monotonic() < deadline, f"{name} still running"
        time.sleep(0.5)
    return job


def _log(aws: Any, job: str) -> str:
    events = aws.client("logs").filter_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=job)[
        "events"
    ]
    return "\n".join(e["message"] for e in events)


def _model_files(aws: Any, artifact: str) -> dict[str, str]:
    bucket, key = artifact.removeprefix("s3://").split("/", 1)
    body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_a_user_folder_trains_with_its_requirement_installed_from_shipped_wheels(aws: Any) -> None:
    runner_env = {**_CALLER_AWS, **aws.env, **OFFLINE_PIP}
    args = ["run", "--watch", "--source-dir", str(EXAMPLE), "--entry-point", "train.py", "--keep-alive", "0"]
    args += ["--input", str(REPO_ROOT / "examples" / "inputs" / "byo-code.json")]
    result = CliRunner().invoke(app, args, env=runner_env)
    assert result.exit_code == 0, result.output
    job_name = next(line.split()[1] for line in result.output.splitlines() if line.startswith("Job "))
    job = aws.client("sagemaker").describe_training_job(TrainingJobName=job_name)
    code_uri = json.loads(job["HyperParameters"]["sagemaker_submit_directory"])
    assert code_uri.startswith(f"s3://{NAMES.artifacts_bucket}/code/sourcedir/")
    assert job["HyperParameters"]["sagemaker_program"] == '"train.py"'
    assert {c["ChannelName"] for c in job["InputDataConfig"]} == set(SEED_CHANNELS)

    model = json.loads(_model_files(aws, job["ModelArtifacts"]["S3ModelArtifacts"])["model.json"])
    assert model["tabulate"] == "0.10.0"
    sample = REPO_ROOT / "examples" / "data" / "sample"
    lines = {name: len((sample / part / f"{part}.jsonl").read_bytes().splitlines()) for name, part in
             (("train123", "train"), ("val123", "val"))}  # fmt: skip
    assert model["channels"] == {name: {"files": 1, "lines": count} for name, count in lines.items()}
    log = _log(aws, job_name)
    assert "Installing dependencies from requirements.txt" in log
    assert "tabulate-0.10.0-py3-none-any.whl" in log and "Successfully installed tabulate-0.10.0" in log
    # The job's install went into its own environment, not the project's.
    probe = subprocess.run([sys.executable, "-c", "import tabulate"], capture_output=True, check=False)
    assert probe.returncode != 0 and b"No module named 'tabulate'" in probe.stderr


def test_the_console_input_runs_the_package_trainstack_package_uploaded(aws: Any) -> None:
    """The console door: `trainstack package` prints the `code` of examples/inputs/byo-code.json; the folder
    the CLI test already uploaded is not uploaded again."""
    runner_env = {**_CALLER_AWS, **aws.env, **OFFLINE_PIP}
    example = json.loads((REPO_ROOT / "examples" / "inputs" / "byo-code.json").read_text())
    first = CliRunner().invoke(app, ["package", str(EXAMPLE), "--entry-point", "train.py"], env=runner_env)
    again = CliRunner().invoke(app, ["package", str(EXAMPLE), "--entry-point", "train.py"], env=runner_env)
    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    assert f"{example['code']['package']} (unchanged, already uploaded)" in again.output
    printed = json.JSONDecoder().raw_decode(again.stdout[again.stdout.index("{") :])[0]
    assert printed == {"code": example["code"]}

    # --dry-run packs and shows the request, uploads and starts nothing.
    jobs = _job_count(aws)
    dry = CliRunner().invoke(
        app,
        ["run", "--dry-run", "--source-dir", str(EXAMPLE), "--entry-point", "train.py", "--replace-channels",
         "--channel", "train123=datasets/sample/train/"],
        env=runner_env,
    )  # fmt: skip
    assert dry.exit_code == 0, dry.output
    assert f"{example['code']['package']} (" in dry.output and "not uploaded: dry run" in dry.output
    request = json.JSONDecoder().raw_decode(dry.stdout.split("CreateTrainingJob request\n", 1)[1])[0]
    assert request["HyperParameters"]["sagemaker_program"] == '"train.py"'
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["train123"]
    assert _job_count(aws) == jobs

    sfn = aws.client("stepfunctions")
    started = sfn.start_execution(
        stateMachineArn=NAMES.arn("states", f"stateMachine:{NAMES.state_machine}"),
        name=f"byo-console-{uuid.uuid4().hex[:8]}",
        input=json.dumps(example),
    )
    deadline = time.monotonic() + 180
    while (described := sfn.describe_execution(executionArn=started["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = json.loads(described["output"])
    model = json.loads(_model_files(aws, output["modelArtifacts"])["model.json"])
    assert model["greeting"] == "hello from the console" and set(model["channels"]) == {"train123", "val123"}


def test_a_job_cannot_reach_a_package_index(aws: Any, tmp_path: Path) -> None:
    """The same folder packed without wheels, as the SDK would: the job's pip finds no index and fails."""
    source = tmp_path / "project"
    source.mkdir()
    for name in ("train.py", "requirements.txt"):
        (source / name).write_bytes((EXAMPLE / name).read_bytes())
    tarball = build_source_tarball(source, tmp_path / "sourcedir.tar.gz")
    key = f"code/test/{uuid.uuid4().hex[:8]}/sourcedir.tar.gz"
    aws.client("s3").upload_file(str(tarball), NAMES.artifacts_bucket, key)
    name = f"trainstack-noindex-{uuid.uuid4().hex[:8]}"
    aws.client("sagemaker").create_training_job(**_request(name, f"s3://{NAMES.artifacts_bucket}/{key}"))
    job = _wait_job(aws, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert "InstallRequirementsError" in job["FailureReason"] or "tabulate" in job["FailureReason"]
    log = _log(aws, name)
    assert "No matching distribution found for tabulate" in log or "Could not find a version" in log


def _request(name: str, code_uri: str, *, entry_point: str = "train.py", keep_alive: int = 0) -> dict[str, Any]:
    resources: dict[str, Any] = {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
    if keep_alive:
        resources["KeepAlivePeriodInSeconds"] = keep_alive
    return {
        "TrainingJobName": name,
        "RoleArn": f"arn:aws:iam::{CONFIG.account}:role/{NAMES.execution_role}",
        "AlgorithmSpecification": {"TrainingImage": CONFIG.image_uri, "TrainingInputMode": "File"},
        "HyperParameters": {
            "sagemaker_program": json.dumps(entry_point),
            "sagemaker_submit_directory": json.dumps(code_uri),
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{NAMES.data_bucket}/datasets/sample/train/",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{NAMES.artifacts_bucket}/output/"},
        "ResourceConfig": resources,
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


_POOL_SCRIPT = f'''
import os, pathlib, sys
cache = pathlib.Path(os.environ["{WARMPOOL_CACHE_ENV}"])
marker = cache / "weights.bin"
print("cache had weights:", marker.exists())
print("cache at", cache)
marker.write_text("cached")
try:
    import tabulate
    print("tabulate already installed in this container:", tabulate.__file__.startswith(sys.prefix))
except ImportError:
    print("tabulate not installed in this container")
pathlib.Path(os.environ["SM_MODEL_DIR"], "done").write_text("ok")
'''


def test_a_reused_warm_pool_keeps_its_environment_and_cache_until_it_ends(
    aws: Any, tmp_path: Path, monkeypatch
) -> None:
    for name, value in OFFLINE_PIP.items():
        monkeypatch.setenv(name, value)
    source = tmp_path / "pool"
    source.mkdir()
    (source / "pool.py").write_text(_POOL_SCRIPT)
    package = pack(source, "pool.py", image_uri=CONFIG.image_uri)
    upload(aws.client("s3"), package, NAMES.artifacts_bucket)
    with_requirements = pack(EXAMPLE, "train.py", image_uri=CONFIG.image_uri)
    upload(aws.client("s3"), with_requirements, NAMES.artifacts_bucket)
    sagemaker = aws.client("sagemaker")
    first, second = (f"trainstack-pool-{uuid.uuid4().hex[:8]}" for _ in range(2))
    # First job installs tabulate (byo-code's requirements) and fills the cache.
    sagemaker.create_training_job(**_request(first, with_requirements.uri(NAMES.artifacts_bucket), keep_alive=60))
    assert _wait_job(aws, first)["TrainingJobStatus"] == "Completed"
    try:
        # The next job of the pool runs in the same containers: tabulate is there, the cache is empty.
        sagemaker.create_training_job(
            **_request(second, package.uri(NAMES.artifacts_bucket), entry_point="pool.py", keep_alive=60)
        )
        done = _wait_job(aws, second)
        assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
        assert sagemaker.describe_training_job(TrainingJobName=first)["WarmPoolStatus"]["ReusedByJob"] == second
        log = _log(aws, second)
        assert "tabulate already installed in this container: True" in log and "cache had weights: False" in log
        cache = Path(next(line for line in log.splitlines() if line.startswith("cache at ")).split(" ", 2)[2])
        assert (cache / "weights.bin").read_text() == "cached"
    finally:
        for job in (first, second):
            if (
                sagemaker.describe_training_job(TrainingJobName=job).get("WarmPoolStatus", {}).get("Status")
                == "Available"
            ):
                sagemaker.update_training_job(TrainingJobName=job, ResourceConfig={"KeepAlivePeriodInSeconds": 0})
    # The pool ended: its containers and their cache went with it.
    assert not cache.exists()


@pytest.mark.parametrize(
    ("code_or_image", "cause"),
    [
        (
            {"code": {"package": "s3://someone-elses-bucket/code/x.tar.gz", "entry_point": "train.py"}},
            'code.package: "s3://someone-elses-bucket/code/x.tar.gz" is not a .tar.gz under the platform',
        ),
        ({"code": {"entry_point": "../run_train.py"}}, 'code.entry_point: "../run_train.py" must be a relative path'),
        ({"image": "docker.io/library/python:3.11"}, 'image: "docker.io/library/python:3.11" is not an allowed image'),
    ],
)
def test_bad_code_or_image_fails_with_invalid_input_before_any_job(aws: Any, code_or_image: dict, cause: str) -> None:
    sfn = aws.client("stepfunctions")
    before = _job_count(aws)
    started = sfn.start_execution(
        stateMachineArn=NAMES.arn("states", f"stateMachine:{NAMES.state_machine}"),
        name=f"byo-{uuid.uuid4().hex[:12]}",
        input=json.dumps(code_or_image),
    )
    while (described := sfn.describe_execution(executionArn=started["executionArn"]))["status"] == "RUNNING":
        time.sleep(0.3)
    assert described["status"] == "FAILED" and described["error"] == "InvalidInput"
    assert cause in described["cause"]
    assert _job_count(aws) == before
