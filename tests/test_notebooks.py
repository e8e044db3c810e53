"""The notebook-instance notebooks, executed with nbclient against the deployed embedded platform.

A resource-name file like the one the lifecycle configuration writes is built from the deployed stacks and
handed to the kernel through TRAINSTACK_RESOURCES, with the embedded AWS endpoint in the kernel's env.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from conftest import assumer_of
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

from trainstack.config import ResourceNames, load_environment
from trainstack.embedded_aws import subprocess_env
from trainstack.embedded_aws.assumed_role_credentials import assume_role
from trainstack.local_platform import notebook_resources

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO_ROOT / "notebooks"
NAMES = ResourceNames.of(load_environment("local"))
# ml.m5.2xlarge has a warm-pool quota of 0 in the local environment: the run shows a warm-pool decision
# without retaining a pool that other tests' quota arithmetic would see.
QUICK_RUN = {
    "instance_type": "ml.m5.2xlarge",
    "hyperparameters": {"max_steps": 4, "logging_steps": 2, "eval_steps": 4, "save_steps": 4},
}


@pytest.fixture(scope="module")
def resources_file(deployed_local_platform, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What trainstack/platform/notebook_stack.py puts in /home/ec2-user/SageMaker/trainstack.json, from the
    deployed stacks (the file `make local-up` writes for `make notebook`)."""
    resources = notebook_resources(load_environment("local"), deployed_local_platform.outputs)
    path = tmp_path_factory.mktemp("notebook-home") / "trainstack.json"
    path.write_text(json.dumps(resources, indent=2), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def kernel_spec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `python3` kernelspec that runs this interpreter, so a fresh clone needs no `ipykernel install`."""
    kernels = tmp_path_factory.mktemp("jupyter") / "kernels"
    spec = kernels / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))
    return kernels


def execute(
    name: str,
    kernel_spec_dir: Path,
    env: dict[str, str],
    parameters: str | None = None,
    extra_cells: tuple[str, ...] = (),
    timeout: int = 300,
) -> nbformat.NotebookNode:
    """Execute notebooks/<name> in notebooks/ (papermill-style: `parameters` goes right after the cell
    tagged "parameters"); returns the executed notebook. A failing cell raises CellExecutionError."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    if parameters is not None:
        at = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
        notebook.cells.insert(at + 1, new_code_cell(parameters))
    notebook.cells.extend(new_code_cell(source) for source in extra_cells)
    manager = KernelManager(
        kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_spec_dir)])
    )
    client = NotebookClient(notebook, km=manager, timeout=timeout, resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute(env=env)
    return notebook


def text_of(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )


def last_json_line(notebook: nbformat.NotebookNode) -> dict[str, Any]:
    return json.loads(text_of(notebook).strip().splitlines()[-1])


@pytest.fixture(scope="module")
def kernel_env(embedded_aws, resources_file: Path) -> dict[str, str]:
    env = subprocess_env(embedded_aws.env)
    # The kernel runs as the notebook instance's role, as on SageMaker: every call it makes is evaluated
    # against that role's policies (the helpers use boto3's normal credential chain).
    role = f"arn:aws:iam::{embedded_aws.account}:role/{NAMES.notebook_role}"
    credentials = assume_role(
        embedded_aws.endpoint_url, embedded_aws.region, role, "notebook", assumer=assumer_of(role)
    )
    env.update(credentials.environment())
    env["TRAINSTACK_RESOURCES"] = str(resources_file)
    # Nothing in a test may reach a model hub.
    env["HF_HUB_OFFLINE"] = "1"
    return env


# --- The committed notebooks ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_committed_clean_with_a_parameters_cell(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "clear outputs before committing"
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
    assert notebook.metadata["kernelspec"]["name"] == "python3"


# --- 01 and 02 on the embedded platform -------------------------------------------------------------------


@pytest.fixture(scope="module")
def prepared(kernel_spec_dir: Path, kernel_env: dict[str, str]) -> nbformat.NotebookNode:
    """Notebook 1 as a user runs it: the tiny model and the sample data into the data bucket."""
    return execute(
        "01_prepare_data_and_weights.ipynb",
        kernel_spec_dir,
        kernel_env,
        extra_cells=("import json; print(json.dumps({c: sorted(k) for c, k in uploaded.items()}))",),
    )


@pytest.mark.slow
def test_prepare_notebook_uploads_data_and_weights_to_the_default_channel_prefixes(
    prepared: nbformat.NotebookNode, embedded_aws
) -> None:
    uploaded = last_json_line(prepared)
    assert uploaded["train"] == ["datasets/sample/train/train.jsonl"]
    assert uploaded["val"] == ["datasets/sample/val/val.jsonl"]
    assert {
        "models/tiny-llm/config.json",
        "models/tiny-llm/model.safetensors",
        "models/tiny-llm/tokenizer.json",
    } <= set(uploaded["model"])
    head = embedded_aws.client("s3").head_object(Bucket=NAMES.data_bucket, Key="models/tiny-llm/model.safetensors")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert "train: 1 file(s), 320 examples" in text_of(prepared)


@pytest.mark.slow
def test_run_notebook_trains_watches_and_loads_the_model(
    prepared: nbformat.NotebookNode, kernel_spec_dir: Path, kernel_env: dict[str, str], embedded_aws
) -> None:
    executed = execute(
        "02_start_and_watch_a_run.ipynb",
        kernel_spec_dir,
        kernel_env,
        parameters=f"RUN_INPUT = {json.dumps(QUICK_RUN)}",
        extra_cells=("print(json.dumps({'output': output, 'sample': sample, 'parameters': model.num_parameters()}))",),
    )
    result = last_json_line(executed)
    output = result["output"]
    assert output["status"] == "Completed"
    job = embedded_aws.client("sagemaker").describe_training_job(TrainingJobName=output["jobName"])
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.2xlarge" and job["HyperParameters"]["max_steps"] == "4"
    # The watch printed the states and the job's secondary statuses as they happened.
    printed = text_of(executed)
    for line in ("state Validate", "state Train", f"job {output['jobName']}: Training", "execution SUCCEEDED"):
        assert line in printed
    assert f"model artifact:  {output['modelArtifacts']}" in printed
    assert output["warmPool"]["granted"] == 0 and "is 0 in this account" in output["warmPool"]["reason"]
    assert "train_loss=" in printed
    # The artifact came back from S3 and transformers loaded and ran it.
    assert result["parameters"] > 100_000 and result["sample"].startswith("The cat")


# --- 04: bring your own code, the seed's Estimator cell through the platform ----------------------------------
# Packing resolves requirements.txt with pip; in tests pip has no index, only the wheelhouse (tabulate).
OFFLINE_PIP = {
    "PIP_NO_INDEX": "1",
    "PIP_FIND_LINKS": str(REPO_ROOT / "tests" / "data" / "wheelhouse"),
    "PIP_CONFIG_FILE": "/dev/null",
}
BYO_PARAMETERS = 'INSTANCE_TYPE = "ml.m5.2xlarge"\nINSTANCE_COUNT = 1\nKEEP_ALIVE_SECONDS = 0'


@pytest.mark.slow
def test_byo_code_notebook_runs_the_seeds_estimator_cell_through_the_platform(
    prepared: nbformat.NotebookNode, kernel_spec_dir: Path, kernel_env: dict[str, str], embedded_aws
) -> None:
    executed = execute(
        "04_bring_your_own_code.ipynb",
        kernel_spec_dir,
        {**kernel_env, **OFFLINE_PIP},
        parameters=BYO_PARAMETERS,
        extra_cells=("print(json.dumps({'output': output, 'model': model}))",),
    )
    result = last_json_line(executed)
    output, model = result["output"], result["model"]
    assert output["status"] == "Completed" and output["instanceType"] == "ml.m5.2xlarge"
    assert model["tabulate"] == "0.10.0" and set(model["channels"]) == {"train123", "val123"}
    job = embedded_aws.client("sagemaker").describe_training_job(TrainingJobName=output["jobName"])
    assert job["TrainingJobName"].startswith("trainstack-byo-")
    assert job["HyperParameters"]["sagemaker_program"] == '"train.py"'
    assert json.loads(job["HyperParameters"]["sagemaker_submit_directory"]).startswith(
        f"s3://{NAMES.artifacts_bucket}/code/sourcedir/"
    )
    assert {c["ChannelName"] for c in job["InputDataConfig"]} == {"train123", "val123"}
    printed = text_of(executed)
    assert "wheels shipped: ('tabulate-0.10.0-py3-none-any.whl',)" in printed
    assert "tabulate 0.10.0 installed in the job from the shipped wheel" in printed


# The seed's cell with the real SDK v2 and with tn.Estimator: the requests may differ only where the platform adds.
# Each entry: a flattened path of the platform's request that the SDK's has not (or has otherwise), and why.
PLATFORM_ADDS = {
    "VpcConfig": "jobs run in the platform's private subnets",
    "OutputDataConfig.KmsKeyId": "the platform's KMS key",
    "OutputDataConfig.CompressionType": "the environment's compression, explicit",
    "Tags": "cost and ownership tags, the execution",
    "CheckpointConfig": "checkpoints synced to the artifacts bucket",
    "RetryStrategy": "SageMaker retries internal failures",
    "EnableInterContainerTrafficEncryption": "encryption between nodes of a multi-node job",
    "EnableManagedSpotTraining": "explicit false",
    "AlgorithmSpecification.MetricDefinitions": "train/eval loss as SageMaker metrics",
    "AlgorithmSpecification.EnableSageMakerMetricsTimeSeries": "metrics as time series",
    "TensorBoardOutputConfig": "the run's TensorBoard events uploaded beside its model",
}
# Defaults the platform states and the SDK leaves out: the value must be what the absence means.
EXPLICIT_DEFAULTS = {
    "EnableNetworkIsolation": False,
    "InputDataConfig.train123.InputMode": "File",  # = AlgorithmSpecification.TrainingInputMode
    "InputDataConfig.val123.InputMode": "File",
}
# Values that name the run, not its shape: the SDK's job name is <base>-<timestamp>, the platform's
# <prefix>-<start ms>-<execution>; each uploads the same folder under its own key of the code prefix.
PER_RUN = {"TrainingJobName", "HyperParameters.sagemaker_job_name", "HyperParameters.sagemaker_submit_directory"}


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{path}.{key}" if path else key))
        return flat or {path: {}}
    if isinstance(value, list) and value and all(isinstance(v, dict) and "ChannelName" in v for v in value):
        return _flatten({v["ChannelName"]: {k: x for k, x in v.items() if k != "ChannelName"} for v in value}, path)
    return {path: value}


def _platform_part(path: str) -> bool:
    return any(path == key or path.startswith(f"{key}.") for key in PLATFORM_ADDS)


@pytest.fixture(scope="module")
def sdk_v2_python() -> tuple[str, str]:
    import os

    python, overlay = os.environ.get("TRAINSTACK_SDK_PYTHON"), os.environ.get("TRAINSTACK_SDK_V2_PATH")
    if not python or not overlay:
        pytest.skip(
            "set TRAINSTACK_SDK_PYTHON and TRAINSTACK_SDK_V2_PATH (make .sdk-v2/.installed; requirements-sdk-v2.txt)"
        )
    return python, overlay


@pytest.mark.slow
def test_the_seeds_estimator_and_its_trainstack_port_send_the_same_request_but_for_the_platforms_additions(
    sdk_v2_python: tuple[str, str], kernel_env: dict[str, str], resources_file: Path, embedded_aws, monkeypatch
) -> None:
    import subprocess

    from trainstack.run_preview import preview

    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import trainstack_notebook as tn
    finally:
        sys.path.remove(str(NOTEBOOKS))
    python, overlay = sdk_v2_python
    resources = tn.load_resources(resources_file)
    source_dir = REPO_ROOT / "examples" / "byo-code"
    train, val = resources.data_uri("datasets/sample/train/"), resources.data_uri("datasets/sample/val/")
    # The seed's values: ml.p4de.24xlarge x 2, keep-alive 3600 (the local quotas allow both).
    seed = ["ml.p4de.24xlarge", "2", "3600"]
    sdk = subprocess.run(
        [python, str(REPO_ROOT / "tests" / "sdk_v2_seed_request.py"), str(source_dir), "train.py", *seed, train, val],
        env={**kernel_env, "PYTHONPATH": overlay},
        capture_output=True,
        text=True,
        check=False,
    )
    assert sdk.returncode == 0, sdk.stderr[-3000:]
    sdk_request = json.loads(sdk.stdout.strip().splitlines()[-1])

    for name, value in {**kernel_env, **OFFLINE_PIP}.items():
        monkeypatch.setenv(name, value)
    est = tn.Estimator(
        role=resources.execution_role_arn,
        entry_point="train.py",
        source_dir=source_dir,
        base_job_name="trainstack-byo",
        instance_count=2,
        instance_type="ml.p4de.24xlarge",
        image_uri=resources.image_uri,
        environment={"NODE_NUMBER": "2", "MODEL_S3_BUCKET": resources.data_bucket},
        max_run=3600 * 24 * 2,
        keep_alive_period_in_seconds=3600,
        disable_profiler=True,
        debugger_hook_config=False,
        resources=resources,
    )
    definition = json.loads(
        embedded_aws.client("stepfunctions").describe_state_machine(stateMachineArn=resources.state_machine_arn)[
            "definition"
        ]
    )
    quota = {"code": "L-TEST", "name": "test", "source": "applied"}
    quotas = {
        k: {**quota, "key": k, "value": v} for k, v in (("training", 2), ("warm_pool", 2), ("max_runtime", 432000))
    }
    ours = preview(definition, est.run_input({"train123": train, "val123": val}), quotas=quotas).request
    assert ours is not None

    sdk_flat, our_flat = _flatten(sdk_request), _flatten(ours)
    differences = {
        path: (sdk_flat.get(path, "<absent>"), our_flat.get(path, "<absent>"))
        for path in set(sdk_flat) | set(our_flat)
        if sdk_flat.get(path) != our_flat.get(path) and path not in PER_RUN and not _platform_part(path)
    }
    for path, default in EXPLICIT_DEFAULTS.items():
        assert differences.pop(path) == ("<absent>", default)
    assert differences == {}
    # ml.p4de has local NVMe storage: neither sends a volume key (SageMaker refuses one there).
    assert "VolumeKmsKeyId" not in sdk_request["ResourceConfig"] and "VolumeKmsKeyId" not in ours["ResourceConfig"]
    # What the platform adds is there, and the per-run values are each side's own code package and name.
    assert {key for key in PLATFORM_ADDS if any(p == key or p.startswith(f"{key}.") for p in our_flat)} == set(
        PLATFORM_ADDS
    )
    for request in (sdk_request, ours):
        uri = json.loads(request["HyperParameters"]["sagemaker_submit_directory"])
        assert uri.startswith(f"s3://{resources.artifacts_bucket}/code/") and uri.endswith("sourcedir.tar.gz")
    assert sdk_request["TrainingJobName"].startswith("trainstack-byo-") and ours["TrainingJobName"].startswith(
        "trainstack-byo-"
    )


def test_a_missing_resource_file_says_where_it_was_looked_for(tmp_path: Path) -> None:
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import trainstack_notebook
    finally:
        sys.path.remove(str(NOTEBOOKS))
    with pytest.raises(FileNotFoundError, match="set TRAINSTACK_RESOURCES"):
        trainstack_notebook.load_resources(tmp_path / "absent.json")


# --- 03: the SageMaker SDK v3 request, built and checked, never sent ------------------------------------------
# sagemaker>=3 cannot live in the project's venv (see notebooks/README.md): its sagemaker-core pins rich<15
# and protobuf<7 against our rich==15.0.0 and sagemaker-training's protobuf 7, and it brings ~80 more
# packages. The notebook runs where an interpreter with the SDK is named by TRAINSTACK_SDK_PYTHON.


def _sample_request(resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "TrainingJobName": "trainstack-capture-check",
        "RoleArn": resources["execution_role_arn"],
        "AlgorithmSpecification": {"TrainingImage": resources["image_uri"], "TrainingInputMode": "File"},
        "OutputDataConfig": {
            "S3OutputPath": f"s3://{resources['artifacts_bucket']}/output/",
            "KmsKeyId": resources["kms_key_arn"],
        },
        "ResourceConfig": {
            "InstanceType": "ml.m5.xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
            "VolumeKmsKeyId": resources["kms_key_arn"],
            "KeepAlivePeriodInSeconds": 300,
        },
        "VpcConfig": {"Subnets": resources["subnet_ids"], "SecurityGroupIds": resources["security_group_ids"]},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "EnableInterContainerTrafficEncryption": True,
        "Tags": [{"Key": key, "Value": value} for key, value in resources["tags"].items()],
    }


@pytest.mark.slow
def test_a_stopped_create_training_job_is_validated_and_captured_but_never_sent(
    resources_file: Path, embedded_aws
) -> None:
    import boto3
    import botocore.exceptions

    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import trainstack_notebook as tn
    finally:
        sys.path.remove(str(NOTEBOOKS))
    resources = json.loads(resources_file.read_text())
    session = boto3.Session(
        region_name=embedded_aws.region,
        aws_access_key_id=embedded_aws.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=embedded_aws.env["AWS_SECRET_ACCESS_KEY"],
    )
    tn.stop_create_training_job(session)
    sagemaker = session.client("sagemaker", endpoint_url=embedded_aws.endpoint_url)
    request = _sample_request(resources)

    with pytest.raises(tn.RequestCaptured) as captured:
        sagemaker.create_training_job(**request)
    assert captured.value.request == request
    assert tn.platform_request_problems(request, tn.load_resources(resources_file)) == []
    with pytest.raises(botocore.exceptions.ClientError):
        embedded_aws.client("sagemaker").describe_training_job(TrainingJobName=request["TrainingJobName"])
    # A malformed request never gets as far as the capture: botocore refuses it first.
    with pytest.raises(botocore.exceptions.ParamValidationError):
        sagemaker.create_training_job(**{**request, "StoppingCondition": {"MaxRuntimeInSeconds": "two days"}})
    wrong_role = {**request, "RoleArn": "arn:aws:iam::123456789012:role/other"}
    assert tn.platform_request_problems(wrong_role, tn.load_resources(resources_file)) == [
        f"RoleArn is 'arn:aws:iam::123456789012:role/other', the platform's is '{resources['execution_role_arn']}'"
    ]
    # The role may write TensorBoard output only where it writes models (#17).
    elsewhere = {**request, "TensorBoardOutputConfig": {"S3OutputPath": "s3://someone-else/tb/"}}
    assert tn.platform_request_problems(elsewhere, tn.load_resources(resources_file)) == [
        f"TensorBoard output goes to 'someone-else', not the artifacts bucket '{resources['artifacts_bucket']}'"
    ]
    # On a type with local NVMe storage the platform's request names no volume key (SageMaker refuses one).
    p4de = {**request, "ResourceConfig": {**request["ResourceConfig"], "InstanceType": "ml.p4de.24xlarge"}}
    assert tn.platform_request_problems(p4de, tn.load_resources(resources_file)) == [
        f"ResourceConfig.VolumeKmsKeyId is '{resources['kms_key_arn']}', the platform's is None"
    ]
    p4de["ResourceConfig"].pop("VolumeKmsKeyId")
    assert tn.platform_request_problems(p4de, tn.load_resources(resources_file)) == []


@pytest.fixture(scope="module")
def sdk_kernel_spec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `python3` kernelspec running TRAINSTACK_SDK_PYTHON, an interpreter with sagemaker>=3 and ipykernel."""
    import os
    import subprocess

    python = os.environ.get("TRAINSTACK_SDK_PYTHON")
    if not python:
        pytest.skip("set TRAINSTACK_SDK_PYTHON to a python with sagemaker>=3 and ipykernel (see notebooks/README.md)")
    probe = "import sagemaker.train, ipykernel; from importlib.metadata import version; print(version('sagemaker'))"
    version = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert int(version.split(".")[0]) >= 3, f"{python} has sagemaker {version}, not v3"
    kernels = tmp_path_factory.mktemp("jupyter-sdk") / "kernels"
    (kernels / "python3").mkdir(parents=True)
    argv = [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (kernels / "python3" / "kernel.json").write_text(json.dumps({"argv": argv, "language": "python"}))
    return kernels


@pytest.mark.slow
def test_sdk_notebook_builds_a_valid_create_training_job_request_on_the_platform(
    sdk_kernel_spec_dir: Path, kernel_env: dict[str, str], resources_file: Path, embedded_aws
) -> None:
    from botocore.session import get_session
    from botocore.validate import validate_parameters

    executed = execute(
        "03_launch_with_sagemaker_sdk.ipynb",
        sdk_kernel_spec_dir,
        kernel_env,
        parameters="SEND = False\nINSTANCE_COUNT = 2\nKEEP_ALIVE_SECONDS = 600",
        extra_cells=("print(json.dumps(request))",),
    )
    request = last_json_line(executed)
    resources = json.loads(resources_file.read_text())
    model = get_session().get_service_model("sagemaker").operation_model("CreateTrainingJob")
    validate_parameters(request, model.input_shape)  # raises ParamValidationError with every problem

    assert request["RoleArn"] == resources["execution_role_arn"]
    assert request["AlgorithmSpecification"]["TrainingImage"] == resources["image_uri"]
    assert request["ResourceConfig"] == {
        "InstanceType": "ml.m5.xlarge",
        "InstanceCount": 2,
        "VolumeSizeInGB": 30,
        "VolumeKmsKeyId": resources["kms_key_arn"],
        "KeepAlivePeriodInSeconds": 600,
    }
    assert request["OutputDataConfig"]["KmsKeyId"] == resources["kms_key_arn"]
    assert request["VpcConfig"] == {
        "Subnets": resources["subnet_ids"],
        "SecurityGroupIds": resources["security_group_ids"],
    }
    assert request["EnableInterContainerTrafficEncryption"] is True
    assert {t["Key"]: t["Value"] for t in request["Tags"]} == resources["tags"]
    assert request["Environment"]["NODE_NUMBER"] == "2"
    assert request["StoppingCondition"]["MaxRuntimeInSeconds"] == 172800
    assert request["TrainingJobName"].startswith("trainstack-sdk-")
    # SDK v3's code contract: the source as a `code` channel plus its driver channel, both uploaded under
    # the artifacts bucket's code/ prefix (the notebook role's only write there).
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert set(channels) == {"train", "val", "model", "code", "sm_drivers"}
    code_prefix = f"s3://{resources['artifacts_bucket']}/code/"
    assert channels["code"].startswith(code_prefix) and channels["sm_drivers"].startswith(code_prefix)
    bucket, key = channels["code"].removeprefix("s3://").split("/", 1)
    uploaded = embedded_aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=key)["Contents"]
    assert any(o["Key"].endswith("/run_train.py") for o in uploaded)
    assert "sagemaker_program" not in request.get("HyperParameters", {})
    # Nothing was sent.
    jobs = embedded_aws.client("sagemaker").list_training_jobs(NameContains="trainstack-sdk")["TrainingJobSummaries"]
    assert jobs == []


def test_make_notebook_starts_jupyterlab_on_the_notebooks_against_the_embedded_aws(tmp_path: Path) -> None:
    from trainstack.local_notebook import jupyter_lab

    with pytest.raises(ValueError, match="run make local-up first"):
        jupyter_lab(tmp_path)
    (tmp_path / "server.json").write_text(json.dumps({"url": "http://127.0.0.1:4566", "env": "local"}))
    (tmp_path / "notebook-resources.json").write_text("{}")
    command, env = jupyter_lab(tmp_path)
    assert command[:3] == [sys.executable, "-m", "jupyterlab"] and f"--notebook-dir={NOTEBOOKS}" in command
    assert "--ip=127.0.0.1" in command  # never reachable from other machines
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566" and env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull  # no real profile reaches the kernels
    assert env["TRAINSTACK_RESOURCES"] == str(tmp_path / "notebook-resources.json")
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert "$(BIN)/python -m trainstack.local_notebook" in makefile.split("\nnotebook:", 1)[1].split("\n\n", 1)[0]
    assert "jupyterlab==" in (REPO_ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
