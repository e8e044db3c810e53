"""training_code/ run as SageMaker runs it: the real sagemaker-training toolkit's `train`, an /opt/ml-style
folder per host (trainstack.toolkit_host), the tiny offline model, the shipped sample data.

Each toolkit run is a few seconds of real training; the runs are module-scoped fixtures so that several
tests read one run's results.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from trainstack.toolkit_host import (
    encode_hyperparameters,
    host_environment,
    run_host,
    start_cluster,
    start_host,
    stop_host,
    wait_cluster,
    write_host_config,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
TRAINING_CODE = REPO_ROOT / "training_code"
SAMPLE = REPO_ROOT / "examples" / "data" / "sample"
RUN_TIMEOUT_S = 300

# Few, small steps: enough for the tiny model's loss to fall clearly, a checkpoint mid-run, a log line
# every other step.
MAX_STEPS = 12
SAVE_STEPS = 6


def hyperparameters(**overrides: object) -> dict[str, str]:
    """What CreateTrainingJob carries for the SDK's Estimator(entry_point="run_train.py"), JSON-encoded."""
    values: dict[str, object] = {
        "sagemaker_program": "run_train.py",
        "sagemaker_submit_directory": str(TRAINING_CODE),
        "sagemaker_container_log_level": 20,
        "sagemaker_job_name": "trainstack-test",
        "sagemaker_region": "us-east-1",
        "max_steps": MAX_STEPS,
        "learning_rate": 3e-3,
        "block_size": 64,
        "per_device_train_batch_size": 8,
        "logging_steps": 2,
        "save_steps": SAVE_STEPS,
        "seed": 7,
    }
    values.update(overrides)
    return encode_hyperparameters(values)


@dataclass
class HostRun:
    base_dir: Path
    exit_code: int
    log: str

    @property
    def metrics(self) -> dict[str, list[float]]:
        return code_module("metrics").parse_metric_lines(self.log.splitlines())

    @property
    def failure(self) -> str | None:
        path = self.base_dir / "output" / "failure"
        return path.read_text() if path.exists() else None

    def files(self, folder: str) -> set[str]:
        path = self.base_dir / folder
        return {p.name for p in path.iterdir()} if path.is_dir() else set()

    def checkpoints(self) -> set[str]:
        return {name for name in self.files("checkpoints") if name.startswith("checkpoint-")}


def run_one_host(base_dir: Path, channels: dict[str, Path], **overrides: object) -> HostRun:
    log_file = base_dir.parent / f"{base_dir.name}.log"
    code = run_host(
        base_dir,
        current_host="algo-1",
        hosts=["algo-1"],
        hyperparameters=hyperparameters(**overrides),
        channels=channels,
        environment={"OMP_NUM_THREADS": "1"},
        log_file=log_file,
        timeout=RUN_TIMEOUT_S,
    )
    return HostRun(base_dir, code, log_file.read_text(errors="replace"))


def code_module(name: str) -> ModuleType:
    """Import a training_code module (they import each other by bare name, as in /opt/ml/code)."""
    if str(TRAINING_CODE) not in sys.path:
        sys.path.insert(0, str(TRAINING_CODE))
    return importlib.import_module(name)


@pytest.fixture(scope="module", autouse=True)
def _forget_training_code_modules() -> Iterator[None]:
    # training_code's bare module names (errors, metrics, ...) must not leak into other test modules.
    before = set(sys.modules)
    yield
    code_dir = str(TRAINING_CODE)
    for name in set(sys.modules) - before:
        if getattr(sys.modules[name], "__file__", "") and sys.modules[name].__file__.startswith(code_dir):
            del sys.modules[name]
    if code_dir in sys.path:
        sys.path.remove(code_dir)


@pytest.fixture(scope="module")
def channels(tiny_model_dir: Path) -> dict[str, Path]:
    return {"train": SAMPLE / "train", "val": SAMPLE / "val", "model": tiny_model_dir}


@pytest.fixture(scope="module")
def single_host(tmp_path_factory: pytest.TempPathFactory, channels: dict[str, Path]) -> HostRun:
    return run_one_host(tmp_path_factory.mktemp("single") / "algo-1", channels)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory, channels: dict[str, Path], single_host: HostRun) -> HostRun:
    """A second job with more steps whose checkpoint folder is the first job's (as SageMaker restores it
    from CheckpointConfig.S3Uri on a retry or a spot restart)."""
    base_dir = tmp_path_factory.mktemp("resumed") / "algo-1"
    shutil.copytree(single_host.base_dir / "checkpoints", base_dir / "checkpoints")
    return run_one_host(base_dir, channels, max_steps=MAX_STEPS + 4)


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory: pytest.TempPathFactory, channels: dict[str, Path]) -> list[HostRun]:
    root = tmp_path_factory.mktemp("two-hosts")
    # Gradient checkpointing turns the KV cache off while training; the saved model must have it on.
    more = hyperparameters(gradient_checkpointing=True)
    hosts = start_cluster(root, instance_count=2, hyperparameters=more, channels=channels)
    codes = wait_cluster(hosts, timeout=RUN_TIMEOUT_S)
    return [
        HostRun(host.base_dir, code, host.log_file.read_text(errors="replace"))
        for host, code in zip(hosts, codes, strict=True)
    ]


# Installed through PYTHONPATH into every process of a host (toolkit, launcher, torchrun workers): each
# safetensors file a process opens is appended to the file the variable names. transformers reads weights
# through `safetensors.safe_open` (imported by name, after this wrapper replaced it).
_READ_COUNTER = """
import os

if os.environ.get("TRAINSTACK_TEST_WEIGHT_READS"):
    import safetensors

    _safe_open = safetensors.safe_open

    def safe_open(filename, *args, **kwargs):
        with open(os.environ["TRAINSTACK_TEST_WEIGHT_READS"], "a") as reads:
            reads.write(f"{os.environ.get('SM_CURRENT_HOST')} {os.environ.get('RANK')} {os.getpid()} {filename}\\n")
        return _safe_open(filename, *args, **kwargs)

    safetensors.safe_open = safe_open
"""


@dataclass
class Cluster:
    hosts: list[HostRun]
    weight_reads: list[str]


def run_two_hosts_two_ranks_each(root: Path, channels: dict[str, Path], **overrides: object) -> Cluster:
    """2 hosts x 2 ranks (as 2 GPU hosts with 2 GPUs each), every weight-file open counted."""
    (root / "site").mkdir(parents=True)
    (root / "site" / "sitecustomize.py").write_text(_READ_COUNTER)
    reads = root / "weight-reads.txt"
    reads.touch()
    environment = {
        "TRAINSTACK_CPU_PROCESSES_PER_HOST": "2",
        "TRAINSTACK_TEST_WEIGHT_READS": str(reads),
        "PYTHONPATH": str(root / "site"),
        "OMP_NUM_THREADS": "1",
    }
    more = hyperparameters(**overrides)
    hosts = start_cluster(root, instance_count=2, hyperparameters=more, channels=channels, environment=environment)
    codes = wait_cluster(hosts, timeout=RUN_TIMEOUT_S)
    runs = [
        HostRun(host.base_dir, code, host.log_file.read_text(errors="replace"))
        for host, code in zip(hosts, codes, strict=True)
    ]
    return Cluster(runs, [line for line in reads.read_text().splitlines() if "/input/data/model/" in line])


@pytest.fixture(scope="module")
def two_hosts_two_ranks_each(tmp_path_factory: pytest.TempPathFactory, channels: dict[str, Path]) -> Cluster:
    """Full fine-tuning of raw text in bf16, keeping one checkpoint."""
    overrides = {"precision": "bf16", "max_steps": 4, "save_steps": 2, "logging_steps": 1, "save_total_limit": 1}
    return run_two_hosts_two_ranks_each(tmp_path_factory.mktemp("two-by-two"), channels, **overrides)


@pytest.fixture(scope="module")
def two_hosts_two_ranks_lora_chat(tmp_path_factory: pytest.TempPathFactory, channels: dict[str, Path]) -> Cluster:
    """LoRA on chat records (assistant-only loss), the same cluster shape."""
    root = tmp_path_factory.mktemp("two-by-two-lora")
    chat = {**channels, "train": write_chat_channel(root / "chat", count=32)}
    chat.pop("val")
    overrides = {"lora_r": 4, "max_steps": 2, "save_steps": 1, "logging_steps": 1, "save_total_limit": 1}
    return run_two_hosts_two_ranks_each(root / "cluster", chat, **overrides)


@pytest.fixture(scope="module")
def corrupt_data(tmp_path_factory: pytest.TempPathFactory, channels: dict[str, Path]) -> HostRun:
    train = tmp_path_factory.mktemp("corrupt-train")
    lines = (SAMPLE / "train" / "train.jsonl").read_text().splitlines()
    lines[2] = '{"text": "a line cut short'
    (train / "train.jsonl").write_text("\n".join(lines) + "\n")
    return run_one_host(tmp_path_factory.mktemp("corrupt") / "algo-1", {**channels, "train": train})


# --- one host -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_single_host_trains_and_saves_model_and_tokenizer(single_host: HostRun) -> None:
    assert single_host.exit_code == 0, single_host.log[-3000:]
    assert (single_host.base_dir / "output" / "success").exists()
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= single_host.files("model")
    config = json.loads((single_host.base_dir / "model" / "config.json").read_text())
    assert config["n_layer"] == 2
    # Final figures for output.tar.gz, from the same run as the metric lines.
    figures = json.loads((single_host.base_dir / "output" / "data" / "metrics.json").read_text())
    assert figures["eval_perplexity"] == pytest.approx(math.exp(figures["eval_loss"]))
    assert figures["eval_loss"] == pytest.approx(single_host.metrics["eval_loss"][-1], rel=1e-4)


@pytest.mark.slow
def test_single_host_prints_metric_lines_that_metric_definitions_read(single_host: HostRun) -> None:
    metrics = single_host.metrics
    # logging_first_step plus every 2nd step.
    assert len(metrics["train_loss"]) == 1 + MAX_STEPS // 2
    assert metrics["train_loss"][-1] < metrics["train_loss"][0]
    (eval_loss,) = metrics["eval_loss"]
    (eval_perplexity,) = metrics["eval_perplexity"]
    assert eval_perplexity == pytest.approx(math.exp(eval_loss), rel=1e-4)
    assert metrics["train_tokens_per_second"]


@pytest.mark.slow
def test_single_host_checkpoints_go_to_the_overridden_checkpoint_dir(single_host: HostRun) -> None:
    # toolkit_host sets SM_CHECKPOINT_DIR=<base>/checkpoints; SageMaker would use /opt/ml/checkpoints.
    assert single_host.checkpoints() == {f"checkpoint-{SAVE_STEPS}", f"checkpoint-{MAX_STEPS}"}
    checkpoints = code_module("checkpoints")
    assert checkpoints.is_complete(single_host.base_dir / "checkpoints" / f"checkpoint-{MAX_STEPS}")
    # Written last, so it is the newest file of the folder.
    assert f"checkpoint-{MAX_STEPS} complete:" in single_host.log


@pytest.mark.slow
def test_toolkit_installs_requirements_txt_before_running_the_script(single_host: HostRun) -> None:
    log = single_host.log
    assert "Installing dependencies from requirements.txt" in log
    requirements = [
        re.split(r"[<>=!~ ;\[]", line, maxsplit=1)[0]
        for line in (TRAINING_CODE / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert requirements
    for name in requirements:
        assert re.search(rf"(Requirement already satisfied|Successfully installed).*\b{name}\b", log), name
    assert log.index("Installing dependencies from requirements.txt") < log.index("Invoking script")


# --- resume ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_resumed_run_continues_from_the_last_checkpoint(resumed: HostRun) -> None:
    assert resumed.exit_code == 0, resumed.log[-3000:]
    assert f"resuming from checkpoint-{MAX_STEPS}" in resumed.log
    # Only the 4 missing steps are trained, and the first logged step comes after the checkpoint.
    assert f"trained 4 local batches, global step {MAX_STEPS + 4}" in resumed.log
    first_step = int(re.search(r"^step=(\d+); train_loss=", resumed.log, re.MULTILINE).group(1))
    assert first_step > MAX_STEPS
    assert f"checkpoint-{MAX_STEPS + 4}" in resumed.files("checkpoints")


# --- two hosts ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_hosts_both_ranks_train(two_hosts: list[HostRun]) -> None:
    first, second = two_hosts
    assert [first.exit_code, second.exit_code] == [0, 0], first.log[-2000:] + second.log[-2000:]
    assert "--nnodes=2" in first.log and "--node_rank=1" in second.log
    assert f"rank 0/2 on algo-1: trained {MAX_STEPS} local batches" in first.log
    assert f"rank 1/2 on algo-2: trained {MAX_STEPS} local batches" in second.log


@pytest.mark.slow
def test_two_hosts_save_one_model_from_rank_zero(two_hosts: list[HostRun]) -> None:
    first, second = two_hosts
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= first.files("model")
    assert second.files("model") == set()
    assert json.loads((first.base_dir / "model" / "config.json").read_text())["use_cache"] is True
    # Only rank 0 prints metric lines, so SageMaker reads each data point once.
    assert "train_loss=" not in second.log


@pytest.mark.slow
def test_two_hosts_write_tensorboard_events_from_world_rank_zero_only(two_hosts: list[HostRun]) -> None:
    first, second = two_hosts
    # TensorBoardOutputConfig's default LocalPath (/opt/ml/output/tensorboard), which SageMaker uploads.
    assert any(name.startswith("events.out.tfevents.") for name in first.files("output/tensorboard"))
    assert second.files("output/tensorboard") == set()


@pytest.mark.slow
def test_two_hosts_loss_falls(two_hosts: list[HostRun]) -> None:
    losses = two_hosts[0].metrics["train_loss"]
    assert losses[-1] < losses[0] - 0.5, losses


@pytest.mark.slow
def test_one_process_per_host_reads_the_weights(two_hosts_two_ranks_each: Cluster) -> None:
    first, second = two_hosts_two_ranks_each.hosts
    assert [first.exit_code, second.exit_code] == [0, 0], first.log[-3000:] + second.log[-3000:]
    assert "rank 3/4 on algo-2" in second.log and "rank 1/4 on algo-1" in first.log
    readers = {tuple(line.split()[:2]) for line in two_hosts_two_ranks_each.weight_reads}
    # Local rank 0 of each host (world ranks 0 and 2); ranks 1 and 3 built the model on the meta device.
    assert readers == {("algo-1", "0"), ("algo-2", "2")}, two_hosts_two_ranks_each.weight_reads
    assert len(two_hosts_two_ranks_each.weight_reads) == 2
    assert "read the base model's weights from" in first.log and "(bfloat16)" in first.log


@pytest.mark.slow
def test_lora_on_chat_reads_the_weights_once_per_host_and_prunes_every_host(
    two_hosts_two_ranks_lora_chat: Cluster,
) -> None:
    first, second = two_hosts_two_ranks_lora_chat.hosts
    assert [first.exit_code, second.exit_code] == [0, 0], first.log[-3000:] + second.log[-3000:]
    readers = {tuple(line.split()[:2]) for line in two_hosts_two_ranks_lora_chat.weight_reads}
    assert readers == {("algo-1", "0"), ("algo-2", "2")}, two_hosts_two_ranks_lora_chat.weight_reads
    assert "rank 3/4 on algo-2: trained 2 local batches" in second.log
    assert first.checkpoints() == second.checkpoints() == {"checkpoint-2"}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= first.files("model")


@pytest.mark.slow
def test_every_host_prunes_its_own_checkpoints_to_save_total_limit(two_hosts_two_ranks_each: Cluster) -> None:
    first, second = two_hosts_two_ranks_each.hosts
    # transformers rotated algo-1's folder; HostCheckpointRotationCallback rotated algo-2's.
    assert first.checkpoints() == {"checkpoint-4"}
    assert second.checkpoints() == {"checkpoint-4"}
    assert code_module("checkpoints").is_complete(
        s3_restore_of_the_shared_prefix(two_hosts_two_ranks_each.hosts, first.base_dir.parent / "restored")
        / "checkpoint-4"
    )


@pytest.mark.slow
def test_a_model_trained_in_bf16_says_bf16_and_loads_at_bf16_size(two_hosts_two_ranks_each: Cluster) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model_dir = two_hosts_two_ranks_each.hosts[0].base_dir / "model"
    assert json.loads((model_dir / "config.json").read_text())["dtype"] == "bfloat16"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.get_memory_footprint() == 2 * sum(p.numel() for p in model.parameters()) + sum(
        b.numel() * b.element_size() for b in model.buffers()
    )


@pytest.mark.slow
def test_packing_raw_text_drops_no_token_and_says_so(two_hosts_two_ranks_each: Cluster) -> None:
    log = two_hosts_two_ranks_each.hosts[0].log
    packed = re.search(r"packing train: (\d+) tokens packed into (\d+) rows, (\d+) tokens dropped", log)
    assert packed, log[-3000:]
    assert int(packed.group(1)) > 0 and int(packed.group(3)) == 0


# --- failure --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_corrupt_dataset_writes_a_failure_file_naming_the_problem(corrupt_data: HostRun) -> None:
    assert corrupt_data.exit_code != 0
    failure = corrupt_data.failure
    assert failure is not None
    assert "train channel, train.jsonl line 3: not valid JSON" in failure
    assert len(failure.strip().splitlines()) == 1  # one paragraph, not a traceback
    assert not (corrupt_data.base_dir / "output" / "success").exists()


# --- units: the pieces a run depends on, without a run --------------------------------------------------


def test_metric_definitions_each_match_only_their_own_field() -> None:
    metrics = code_module("metrics")
    values = {name: float(i + 1) / 7 for i, name in enumerate(metrics.METRIC_NAMES)}
    line = metrics.format_metric_line(values)
    for definition in metrics.METRIC_DEFINITIONS:
        (match,) = re.findall(definition["Regex"], line)
        assert float(match) == pytest.approx(values[definition["Name"]], rel=1e-5)
    assert metrics.format_metric_line({"learning_rate": 5e-05}) == "learning_rate=5e-05;"


def test_hyperparameters_as_the_toolkit_passes_them_parse_with_their_types() -> None:
    from sagemaker_training import mapping

    arguments = code_module("arguments")
    decoded = {key: json.loads(value) for key, value in hyperparameters(gradient_checkpointing=True).items()}
    user = {key: value for key, value in decoded.items() if not key.startswith("sagemaker_")}
    parsed = arguments.parse_arguments(mapping.to_cmd_args(user))
    assert parsed.train.gradient_checkpointing is True
    assert parsed.train.learning_rate == pytest.approx(3e-3)
    assert parsed.train.max_steps == MAX_STEPS
    assert parsed.data.block_size == 64


def test_unknown_hyperparameter_is_rejected_with_the_known_names() -> None:
    arguments = code_module("arguments")
    with pytest.raises(arguments.ArgumentError, match=r"unknown hyperparameters \['--epochs', '3'\].*num_train_epochs"):
        arguments.parse_arguments(["--epochs", "3"])


def test_launch_plan_for_two_gpu_hosts_uses_nccl_and_the_host_position() -> None:
    sagemaker_env, launcher = code_module("sagemaker_env"), code_module("launcher")
    environ = {"SM_HOSTS": '["algo-1","algo-2"]', "SM_CURRENT_HOST": "algo-2", "SM_NUM_GPUS": "8"}
    plan = launcher.plan_launch(sagemaker_env.SageMakerEnvironment.from_environ(environ), environ)
    assert (plan.nnodes, plan.node_rank, plan.nproc_per_node, plan.world_size) == (2, 1, 8, 16)
    assert (plan.master_addr, plan.backend) == ("algo-1", "nccl")
    command = plan.torchrun_command(Path("/opt/ml/code/run_train.py"), ["--max_steps", "5"], python="python")
    assert command[:3] == ["python", "-m", "torch.distributed.run"]
    assert "--master_addr=algo-1" in command and command[-3:] == ["/opt/ml/code/run_train.py", "--max_steps", "5"]


def test_launch_plan_on_cpu_uses_gloo_and_the_local_modes_rendezvous_only() -> None:
    sagemaker_env, launcher = code_module("sagemaker_env"), code_module("launcher")
    environ = {"SM_HOSTS": '["algo-1","algo-2"]', "SM_CURRENT_HOST": "algo-1", "MASTER_ADDR": "198.51.100.7"}
    environ["MASTER_PORT"] = "12345"
    # On SageMaker the rendezvous is the first host, whatever the job's Environment says (issue 20).
    plan = launcher.plan_launch(sagemaker_env.SageMakerEnvironment.from_environ(environ), environ)
    assert (plan.master_addr, plan.master_port) == ("algo-1", launcher.DEFAULT_MASTER_PORT)
    # The embedded AWS's hosts are processes on 127.0.0.1: it sets local mode and the rendezvous.
    environ.update(SM_STUDIO_LOCAL_MODE="true", MASTER_ADDR="127.0.0.1")
    plan = launcher.plan_launch(sagemaker_env.SageMakerEnvironment.from_environ(environ), environ)
    assert (plan.nproc_per_node, plan.backend, plan.master_addr, plan.master_port) == (1, "gloo", "127.0.0.1", 12345)
    assert not launcher.is_torchrun_worker(environ)
    assert launcher.is_torchrun_worker({**environ, "LOCAL_RANK": "0"})


def test_single_process_needs_no_torchrun() -> None:
    sagemaker_env, launcher = code_module("sagemaker_env"), code_module("launcher")
    plan = launcher.plan_launch(sagemaker_env.SageMakerEnvironment.from_environ({}), {})
    assert plan.world_size == 1


def test_model_s3_uri_may_be_a_prefix_in_the_model_s3_bucket() -> None:
    weights = code_module("weights")
    assert weights.resolve_s3_uri("models/llama", "my-bucket") == "s3://my-bucket/models/llama"
    assert weights.resolve_s3_uri("s3://other/llama", "my-bucket") == "s3://other/llama"
    with pytest.raises(ValueError, match="MODEL_S3_BUCKET"):
        weights.resolve_s3_uri("models/llama", None)


def test_an_interrupted_checkpoint_is_not_resumed_from(tmp_path: Path) -> None:
    checkpoints = code_module("checkpoints")
    for step in (10, 20, 30):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text("{}")
        (folder / "model.safetensors").write_bytes(b"x" * 10)
        if step != 30:  # cut short before the manifest
            checkpoints.write_manifest(folder, step, checkpoints.files_of(folder), world_size=1)
    assert checkpoints.agreed_resume_checkpoint(tmp_path) == tmp_path / "checkpoint-20"
    (tmp_path / "checkpoint-20" / "model.safetensors").write_bytes(b"x" * 3)  # an upload cut short
    assert checkpoints.agreed_resume_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
    assert checkpoints.agreed_resume_checkpoint(tmp_path / "missing") is None


def test_the_manifest_lists_the_checkpoint_as_every_rank_left_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A rank with only its RNG state to write reaches on_save while its host's main process still writes the
    folder they share: the listing waits for the barrier, and rank 0's sizes are not overridden (#17)."""
    import torch.distributed as dist
    from transformers import TrainerControl, TrainerState

    checkpoints = code_module("checkpoints")
    folder = tmp_path / "checkpoint-4"
    folder.mkdir()
    (folder / "config.json").write_text("")  # being written by the host's main process
    (folder / ".tmp1a2b").write_bytes(b"x" * 10)  # safetensors' temporary file, not yet renamed

    def barrier() -> None:  # returns once every rank has finished writing
        (folder / "config.json").write_text('{"model_type": "llama"}')
        (folder / ".tmp1a2b").replace(folder / "model.safetensors")

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "barrier", barrier)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "all_gather_object", lambda out, mine: out.__setitem__(slice(None), [mine, mine]))
    state = TrainerState(global_step=4, is_world_process_zero=True)
    checkpoints.CompleteCheckpointCallback(tmp_path).on_save(
        type("Args", (), {"world_size": 2})(), state, TrainerControl()
    )
    assert json.loads((folder / checkpoints.MANIFEST).read_text())["files"] == {
        "config.json": 23,
        "model.safetensors": 10,
    }
    assert checkpoints.is_complete(folder)

    # Two hosts writing one name at different sizes overwrite each other in the shared S3 prefix: said.
    assert checkpoints.union_of_files([{"config.json": 23}, None, {"config.json": 0, "rng_state_2.pth": 5}]) == {
        "config.json": 23,
        "rng_state_2.pth": 5,
    }
    assert "config.json: 0 bytes as rank 2 lists it, 23 bytes" in caplog.text


@pytest.fixture
def one_rank_group() -> Iterator[None]:
    """A real gloo process group of one rank, destroyed afterwards if the test left it up."""
    import torch.distributed as dist

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


class _Exited(Exception):
    pass


def test_a_finished_rank_leaves_the_process_group(one_rank_group: None) -> None:
    import torch.distributed as dist

    exits: list[int] = []
    code_module("run_train").leave_process_group(exit_process=exits.append)
    assert not dist.is_initialized()
    assert exits == []  # a teardown that returns lets the process end as usual


def test_a_hung_process_group_teardown_does_not_keep_a_finished_rank_alive(
    one_rank_group: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Past the final barrier every rank's work is saved; a destroy_process_group that never returns held the
    rank, its host's torchrun agent, and (in torchrun's exit barrier) every other host until the job's limit."""
    import threading

    import torch.distributed as dist

    released = threading.Event()

    def destroy_that_hangs(group: object = None) -> None:
        if not released.wait(RUN_TIMEOUT_S):
            raise AssertionError("leave_process_group waited on a teardown that never returns")

    exits: list[int] = []

    def exit_process(code: int) -> None:
        exits.append(code)
        raise _Exited

    monkeypatch.setattr(dist, "destroy_process_group", destroy_that_hangs)
    try:
        with pytest.raises(_Exited):
            code_module("run_train").leave_process_group(teardown_timeout_s=0.1, exit_process=exit_process)
    finally:
        released.set()
    assert exits == [0]  # the work is done: a finished job, not a failed one
    assert "destroy_process_group has not returned 0 s after every rank passed the final barrier" in caplog.text


def test_a_failing_process_group_teardown_is_an_error(one_rank_group: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.distributed as dist

    def destroy_that_fails(group: object = None) -> None:
        raise RuntimeError("gloo: connection reset by peer")

    monkeypatch.setattr(dist, "destroy_process_group", destroy_that_fails)
    with pytest.raises(RuntimeError, match="connection reset by peer"):
        code_module("run_train").leave_process_group(exit_process=lambda code: pytest.fail(f"exited with {code}"))


def test_checkpoint_dir_resolution_order() -> None:
    checkpoints = code_module("checkpoints")
    env = {"SM_CHECKPOINT_DIR": "/data/ckpt"}
    assert checkpoints.resolve_checkpoint_dir("/hp/ckpt", env) == Path("/hp/ckpt")
    assert checkpoints.resolve_checkpoint_dir(None, env) == Path("/data/ckpt")
    assert checkpoints.resolve_checkpoint_dir(None, {}) == Path("/opt/ml/checkpoints")


def test_failure_file_keeps_the_first_reason(tmp_path: Path) -> None:
    failure = code_module("failure")
    path = tmp_path / "output" / "failure"
    assert failure.write_failure(path, "first")
    assert not failure.write_failure(path, "second")
    assert path.read_text() == "first\n"
    assert len(failure.describe(ValueError("x" * 5000), host="algo-1", rank=0)) > 1024
    failure.write_failure(tmp_path / "long", "y" * 5000)
    assert len((tmp_path / "long").read_text()) <= 1025


def test_host_config_is_what_the_toolkit_reads(tmp_path: Path) -> None:
    write_host_config(
        tmp_path,
        current_host="algo-2",
        hosts=["algo-1", "algo-2"],
        hyperparameters=encode_hyperparameters({"max_steps": 3}),
        channels={"train": SAMPLE / "train"},
    )
    config = tmp_path / "input" / "config"
    resource = json.loads((config / "resourceconfig.json").read_text())
    assert (resource["current_host"], resource["hosts"]) == ("algo-2", ["algo-1", "algo-2"])
    assert json.loads((config / "hyperparameters.json").read_text()) == {"max_steps": "3"}
    assert set(json.loads((config / "inputdataconfig.json").read_text())) == {"train"}
    assert (tmp_path / "input" / "data" / "train" / "train.jsonl").is_file()
    with pytest.raises(TypeError, match="JSON-encoded"):
        write_host_config(tmp_path, current_host="algo-1", hosts=["algo-1"], hyperparameters={"x": 1}, channels={})


def test_host_environment_scrubs_inherited_job_variables(tmp_path: Path) -> None:
    env = host_environment(tmp_path, {"MODEL_S3_BUCKET": "b"}, inherit={"SM_HOSTS": "x", "RANK": "3", "PATH": "/bin"})
    assert env["SAGEMAKER_BASE_DIR"] == str(tmp_path)
    assert env["SM_STUDIO_LOCAL_MODE"] == "true"
    assert env["SM_CHECKPOINT_DIR"] == str(tmp_path / "checkpoints")
    assert env["MODEL_S3_BUCKET"] == "b" and env["PATH"] == "/bin"
    assert "SM_HOSTS" not in env and "RANK" not in env


def test_sample_data_is_regenerated_byte_for_byte() -> None:
    spec = importlib.util.spec_from_file_location("make_sample", REPO_ROOT / "examples" / "data" / "make_sample.py")
    assert spec and spec.loader
    make_sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_sample)
    shipped = (SAMPLE / "val" / "val.jsonl").read_text().splitlines()
    assert [json.loads(line)["text"] for line in shipped] == make_sample.lines(seed=3, count=64)


def test_tiny_model_is_deterministic(tmp_path: Path, tiny_model_dir: Path) -> None:
    from trainstack.tiny_model import build_tiny_model

    again = build_tiny_model(tmp_path / "again")
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (again / name).read_bytes() == (tiny_model_dir / name).read_bytes(), name


def test_tiny_model_loads_with_auto_classes(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = tokenizer("The cat likes the green box.")["input_ids"]
    assert tokenizer.decode(ids) == "The cat likes the green box."
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    assert model.config.n_layer == 2


def _weights_bucket(embedded_aws, monkeypatch: pytest.MonkeyPatch) -> tuple[object, str]:
    """A fresh bucket in the session's embedded AWS, and the script's AWS environment pointed at it.

    Not moto's `mock_aws`: it resets moto's process-wide state, which is the session's embedded AWS too."""
    for name, value in embedded_aws.env.items():
        monkeypatch.setenv(name, value)
    bucket = f"weights-{uuid.uuid4().hex[:12]}"
    s3 = embedded_aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    return s3, bucket


def test_model_s3_uri_pull_copies_the_prefix_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedded_aws
) -> None:
    weights = code_module("weights")
    # No s5cmd on a laptop or in CI: the boto3 path does the same copy.
    monkeypatch.setattr(weights.shutil, "which", lambda _name: None)
    s3, bucket = _weights_bucket(embedded_aws, monkeypatch)
    s3.put_object(Bucket=bucket, Key="models/tiny/config.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="models/tiny/shards/model-1.safetensors", Body=b"x")
    s3.put_object(Bucket=bucket, Key="models/tinier/config.json", Body=b"not this one")
    target = tmp_path / "model-from-s3"
    uri = weights.resolve_s3_uri("models/tiny", bucket)
    assert weights.pull_weights(uri, target, {}) == target
    assert (target / "config.json").read_bytes() == b"{}"
    assert (target / "shards" / "model-1.safetensors").read_bytes() == b"x"
    s3.delete_object(Bucket=bucket, Key="models/tiny/config.json")
    weights.pull_weights(uri, target, {})  # already pulled: S3 is not read again
    assert (target / "config.json").exists()
    assert sorted(p.name for p in target.iterdir()) == [".trainstack-pulled-from", "config.json", "shards"]


# --- multi-node checkpoints: what an S3 restore of the shared prefix gives each host ---------------------


def s3_restore_of_the_shared_prefix(hosts: list[HostRun], into: Path) -> Path:
    """Every host syncs its /opt/ml/checkpoints to one S3 prefix; a restart restores the union to each host."""
    union = into / "shared-prefix"
    for host in hosts:
        shutil.copytree(host.base_dir / "checkpoints", union, dirs_exist_ok=True)
    return union


@pytest.fixture(scope="module")
def two_hosts_resumed(
    tmp_path_factory: pytest.TempPathFactory, channels: dict[str, Path], two_hosts: list[HostRun]
) -> list[HostRun]:
    root = tmp_path_factory.mktemp("two-hosts-resumed")
    union = s3_restore_of_the_shared_prefix(two_hosts, root)
    for name in ("algo-1", "algo-2"):
        shutil.copytree(union, root / name / "checkpoints")
    hosts = start_cluster(
        root, instance_count=2, hyperparameters=hyperparameters(max_steps=MAX_STEPS + 4), channels=channels
    )
    codes = wait_cluster(hosts, timeout=RUN_TIMEOUT_S)
    return [
        HostRun(host.base_dir, code, host.log_file.read_text(errors="replace"))
        for host, code in zip(hosts, codes, strict=True)
    ]


@pytest.mark.slow
def test_one_hosts_own_checkpoint_folder_is_not_a_complete_checkpoint(two_hosts: list[HostRun]) -> None:
    # Only rank 0 writes weights; rank 1's RNG state is on the other host: neither folder alone is whole.
    checkpoints = code_module("checkpoints")
    first, second = (host.base_dir / "checkpoints" / f"checkpoint-{MAX_STEPS}" for host in two_hosts)
    assert (first / "model.safetensors").is_file() and not (second / "model.safetensors").exists()
    assert not checkpoints.is_complete(first) and not checkpoints.is_complete(second)


@pytest.mark.slow
def test_two_hosts_resume_from_the_restored_shared_prefix(two_hosts_resumed: list[HostRun]) -> None:
    first, second = two_hosts_resumed
    assert [first.exit_code, second.exit_code] == [0, 0], first.log[-3000:] + second.log[-3000:]
    assert f"resuming from checkpoint-{MAX_STEPS}" in first.log
    assert f"rank 0/2 on algo-1: trained 4 local batches, global step {MAX_STEPS + 4}" in first.log
    assert f"rank 1/2 on algo-2: trained 4 local batches, global step {MAX_STEPS + 4}" in second.log


@pytest.mark.slow
def test_an_incomplete_newest_checkpoint_is_skipped_for_the_previous(two_hosts: list[HostRun], tmp_path: Path) -> None:
    checkpoints = code_module("checkpoints")
    union = s3_restore_of_the_shared_prefix(two_hosts, tmp_path)
    assert checkpoints.agreed_resume_checkpoint(union) == union / f"checkpoint-{MAX_STEPS}"
    # A spot interruption while host 2's RNG state was still uploading: the manifest arrived, the file did not.
    (union / f"checkpoint-{MAX_STEPS}" / "rng_state_1.pth").unlink()
    assert checkpoints.agreed_resume_checkpoint(union) == union / f"checkpoint-{SAVE_STEPS}"


@pytest.mark.slow
def test_sigterm_mid_run_leaves_a_complete_checkpoint(tmp_path: Path, channels: dict[str, Path]) -> None:
    base_dir = tmp_path / "algo-1"
    log_file = tmp_path / "algo-1.log"
    with log_file.open("wb") as out:
        process = start_host(
            base_dir,
            current_host="algo-1",
            hosts=["algo-1"],
            hyperparameters=hyperparameters(max_steps=10_000, save_steps=10_000, logging_steps=1),
            channels=channels,
            environment={"OMP_NUM_THREADS": "1"},
            stdout=out,
        )
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while "step=3;" not in log_file.read_text(errors="replace") and process.poll() is None:
        assert time.monotonic() < deadline, "the run never reached step 3"
        time.sleep(0.2)
    # SIGTERM to every process of the host: what the script gets only where the image's first process passes
    # the signal on (SageMaker signals that one alone, see the next test); here it proves the save itself.
    stop_host(process)
    process.wait(timeout=RUN_TIMEOUT_S)
    # The toolkit's `train` has no SIGTERM handler and exits at once; the script finishes its save on its own.
    while "stopped by SIGTERM" not in (log := log_file.read_text(errors="replace")):
        assert time.monotonic() < deadline, log[-3000:]
        time.sleep(0.2)
    step = int(re.search(r"SIGTERM: saving checkpoint-(\d+) and stopping", log).group(1))
    assert step >= 3
    assert code_module("checkpoints").is_complete(base_dir / "checkpoints" / f"checkpoint-{step}")


_CONTAINER = """
import signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", '''
import pathlib, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (pathlib.Path(sys.argv[1]).write_text("got SIGTERM"), sys.exit(0)))
pathlib.Path(sys.argv[1] + ".ready").touch()
time.sleep(600)
''', sys.argv[1]])
child.wait()
"""


def test_a_stopped_container_signals_its_first_process_only(tmp_path: Path) -> None:
    """The embedded executor stops hosts as SageMaker does: a child with a SIGTERM handler (a training
    worker under the toolkit's `train`) is not told, and nothing of the container outlives the stop."""
    import subprocess

    from trainstack.toolkit_host import stop_hosts

    marker = tmp_path / "child"
    process = subprocess.Popen([sys.executable, "-c", _CONTAINER, str(marker)], start_new_session=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "child.ready").exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    stop_hosts([process], grace_seconds=5)
    assert process.returncode == -signal.SIGTERM  # no handler in the first process: it ends at once
    assert not marker.exists()  # the child never saw the SIGTERM
    deadline = time.monotonic() + 10
    while _group_alive(process.pid):  # the whole group is killed (the orphaned child is reaped by init)
        assert time.monotonic() < deadline, "a process of the stopped container outlived it"
        time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_checkpoint_sync_deletes_in_s3_what_a_host_deleted(embedded_aws, tmp_path: Path) -> None:
    """SageMaker mirrors a container's checkpoint deletions into CheckpointConfig.S3Uri; so does the executor."""
    from types import SimpleNamespace

    from trainstack.embedded_aws.training_job_runner import JobRun

    s3 = embedded_aws.client("s3")
    bucket = f"ckpt-sync-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    job = SimpleNamespace(name="sync", instance_count=2, request={"CheckpointConfig": {"S3Uri": f"s3://{bucket}/run"}})
    run = JobRun(job, tmp_path, s3, None, "us-east-1", "", None)  # type: ignore[arg-type]
    for host, files in (
        ("algo-1", ("checkpoint-2/a", "checkpoint-4/a")),
        ("algo-2", ("checkpoint-2/b", "checkpoint-4/b")),
    ):
        for name in files:
            (tmp_path / host / "checkpoints" / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / host / "checkpoints" / name).write_text(name)
    run.sync_checkpoints()

    def keys() -> set[str]:
        return {item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}

    assert keys() == {"run/checkpoint-2/a", "run/checkpoint-4/a", "run/checkpoint-2/b", "run/checkpoint-4/b"}
    shutil.rmtree(tmp_path / "algo-2" / "checkpoints" / "checkpoint-2")  # algo-2 prunes its old checkpoint
    run.sync_checkpoints()
    assert keys() == {"run/checkpoint-2/a", "run/checkpoint-4/a", "run/checkpoint-4/b"}


# --- data shapes: chat and prompt/completion with the loss masked on the prompt, LoRA ---------------------


def write_chat_channel(folder: Path, count: int = 96) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sentences = [json.loads(line)["text"] for line in (SAMPLE / "train" / "train.jsonl").read_text().splitlines()]
    with (folder / "chat.jsonl").open("w") as out:
        for i, sentence in enumerate(sentences[:count]):
            messages = [
                {"role": "user", "content": f"Tell me about thing {i}."},
                {"role": "assistant", "content": sentence},
            ]
            out.write(json.dumps({"messages": messages}) + "\n")
    return folder


def write_prompt_completion_channel(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sentences = [json.loads(line)["text"] for line in (SAMPLE / "train" / "train.jsonl").read_text().splitlines()]
    lines = [json.dumps({"prompt": f"Question {i}: ", "completion": s}) for i, s in enumerate(sentences[:64])]
    (folder / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def first_training_batch(train_dir: Path, model_dir: Path, cache_dir: Path) -> tuple[dict, object]:
    """The first batch SFTTrainer would train on, built by run_train's own configuration."""
    run_train, sagemaker_env, launcher, sft_data = (
        code_module(name) for name in ("run_train", "sagemaker_env", "launcher", "sft_data")
    )
    from transformers import AutoTokenizer
    from trl import SFTTrainer

    args = code_module("arguments").parse_arguments(["--block_size", "64", "--per_device_train_batch_size", "4"])
    shape = sft_data.check_channel("train", train_dir, "text")
    environ = {"SM_OUTPUT_DIR": str(cache_dir / "output")}
    plan = launcher.plan_launch(sagemaker_env.SageMakerEnvironment.from_environ(environ), environ)
    config = run_train.sft_config(args, shape, 64, cache_dir / "checkpoints", plan, "fp32")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dataset = sft_data.load_channel("train", train_dir, shape, "text", cache_dir)
    trainer = SFTTrainer(model=str(model_dir), args=config, train_dataset=dataset, processing_class=tokenizer)
    return next(iter(trainer.get_train_dataloader())), tokenizer


def test_chat_data_is_trained_on_the_assistant_turns_only(tmp_path: Path, tiny_model_dir: Path) -> None:
    batch, tokenizer = first_training_batch(write_chat_channel(tmp_path / "chat"), tiny_model_dir, tmp_path)
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    trained = tokenizer.decode(ids[labels != -100])
    masked = tokenizer.decode(ids[labels == -100])
    assert "Tell me about thing" in masked and "<|user|>" in masked
    assert "Tell me about thing" not in trained and "<|user|>" not in trained
    assert "<|endoftext|>" in trained  # the model learns to stop after its turn
    assert (labels != -100).sum() > 0


def test_prompt_completion_is_trained_on_the_completion_only(tmp_path: Path, tiny_model_dir: Path) -> None:
    batch, tokenizer = first_training_batch(write_prompt_completion_channel(tmp_path / "pc"), tiny_model_dir, tmp_path)
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    assert "Question" in tokenizer.decode(ids[labels == -100])
    assert "Question" not in tokenizer.decode(ids[labels != -100])


@pytest.fixture(scope="module")
def lora_chat(tmp_path_factory: pytest.TempPathFactory, channels: dict[str, Path]) -> HostRun:
    """Chat data with no val channel (carved from train), LoRA merged at the end, evaluation every 6 steps,
    gradient checkpointing, a timed save after every step."""
    train = write_chat_channel(tmp_path_factory.mktemp("chat-train"))
    return run_one_host(
        tmp_path_factory.mktemp("lora") / "algo-1",
        {"train": train, "model": channels["model"]},
        lora_r=8,
        lora_alpha=16,
        merge_lora=True,
        eval_steps=SAVE_STEPS,
        validation_split=0.1,
        save_minutes=1e-4,  # a timed save after every step, besides save_steps
        gradient_checkpointing=True,  # turns the KV cache off while training
    )


@pytest.mark.slow
def test_lora_run_saves_an_adapter_that_loads_with_peft(lora_chat: HostRun) -> None:
    assert lora_chat.exit_code == 0, lora_chat.log[-3000:]
    from peft import AutoPeftModelForCausalLM, PeftModel

    adapter = AutoPeftModelForCausalLM.from_pretrained(lora_chat.base_dir / "model" / "adapter")
    assert isinstance(adapter, PeftModel)
    assert any("lora_A" in name for name, _ in adapter.named_parameters())


@pytest.mark.slow
def test_lora_run_saves_a_merged_model_that_loads_without_peft(lora_chat: HostRun) -> None:
    from transformers import AutoModelForCausalLM

    model_dir = lora_chat.base_dir / "model"
    assert not (model_dir / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(model_dir)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    # Trained with gradient checkpointing (KV cache off), saved for inference (on).
    assert json.loads((model_dir / "config.json").read_text())["use_cache"] is True


@pytest.mark.slow
def test_save_minutes_checkpoints_between_save_steps(lora_chat: HostRun) -> None:
    assert "checkpoint-1 complete:" in lora_chat.log and "checkpoint-7 complete:" in lora_chat.log
    assert lora_chat.checkpoints() == {f"checkpoint-{MAX_STEPS - 1}", f"checkpoint-{MAX_STEPS}"}  # save_total_limit


@pytest.mark.slow
def test_final_evaluation_is_not_repeated_after_the_last_periodic_one(lora_chat: HostRun) -> None:
    # eval every 6 of 12 steps: two evaluations, the last at step 12 is also the final one.
    assert len(lora_chat.metrics["eval_loss"]) == 2
    figures = json.loads((lora_chat.base_dir / "output" / "data" / "metrics.json").read_text())
    assert figures["eval_loss"] == pytest.approx(lora_chat.metrics["eval_loss"][-1], rel=1e-4)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('[{"text": "a"}, {"text": "b"}]\n', r"data\.json line 1: the file is a JSON array; JSON Lines is required"),
        (
            '{"text": "a"}\n{"question": "b"}\n',
            r"data\.json line 2: a record needs one of \{'text': str\}.*\"messages\".*\"prompt\": str, \"completion\"",
        ),
        ('{"text": "a"}\n{"prompt": "q", "completion": "a"}\n', r"mixes record shapes \(text at data\.json line 1"),
    ],
)
def test_wrong_file_shape_names_file_line_and_what_is_expected(tmp_path: Path, content: str, expected: str) -> None:
    sft_data, errors = code_module("sft_data"), code_module("errors")
    (tmp_path / "data.json").write_text(content)
    with pytest.raises(errors.DataError, match=expected):
        sft_data.check_channel("train", tmp_path, "text")


def test_efa_instances_get_the_toolkits_efa_and_nccl_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    launcher = code_module("launcher")
    for name in ("FI_PROVIDER", "FI_EFA_USE_DEVICE_RDMA", "RDMAV_FORK_SAFE", "NCCL_SOCKET_IFNAME", "NCCL_PROTO"):
        monkeypatch.delenv(name, raising=False)
    environ = {"SM_CURRENT_INSTANCE_TYPE": "ml.p4de.24xlarge", "SM_NETWORK_INTERFACE_NAME": "eth0"}
    changed = launcher.efa_environment(environ)
    assert changed == {
        "FI_PROVIDER": "efa",
        "FI_EFA_USE_DEVICE_RDMA": "1",
        "RDMAV_FORK_SAFE": "1",
        "NCCL_SOCKET_IFNAME": "eth0",
        "NCCL_PROTO": "simple",
    }
    for name in changed:
        monkeypatch.delenv(name, raising=False)
    assert "FI_PROVIDER" not in launcher.efa_environment({"SM_CURRENT_INSTANCE_TYPE": "ml.g5.2xlarge"})


def test_packed_examples_attend_only_within_their_own_document(tmp_path: Path, tiny_model_dir: Path) -> None:
    # bfd packing flattens a batch into one row; position_ids restart at each example, and with the KV cache
    # off (SFTTrainer's compute_loss) transformers turns them into a block-diagonal mask.
    import torch
    from transformers import AutoModelForCausalLM

    batch, _ = first_training_batch(SAMPLE / "train", tiny_model_dir, tmp_path)
    ids, positions = batch["input_ids"], batch["position_ids"]
    starts = (positions[0] == 0).nonzero().flatten().tolist()
    assert len(starts) > 2  # several examples share the row
    first, second = starts[1], starts[2]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa").eval()
    with torch.no_grad():
        packed = model(input_ids=ids, position_ids=positions, use_cache=False).logits[0, first:second]
        alone = model(input_ids=ids[:, first:second], use_cache=False).logits[0]
    torch.testing.assert_close(packed, alone, atol=1e-4, rtol=1e-4)


def test_packing_chooses_an_attention_without_a_dense_mask_and_refuses_one_that_needs_it() -> None:
    from transformers import GPT2LMHeadModel, LlamaForCausalLM

    model_loading = code_module("model_loading")
    choose = model_loading.choose_attention
    assert choose("auto", packing=True, cuda=False, model_class=LlamaForCausalLM) == "flex_attention"
    assert choose("auto", packing=False, cuda=True, model_class=LlamaForCausalLM) == "sdpa"
    with pytest.raises(model_loading.ArgumentError, match=r"attn_implementation=sdpa builds a dense \(B\*L\)\^2"):
        choose("sdpa", packing=True, cuda=True, model_class=LlamaForCausalLM)
    # GPT-2 has no flex_attention and this environment no flash-attn package: nothing fits on a GPU.
    with pytest.raises(model_loading.ArgumentError, match="GPT2LMHeadModel here supports none of"):
        choose("auto", packing=True, cuda=True, model_class=GPT2LMHeadModel)
    # On a CPU host (tests, the embedded AWS) there is no fused kernel to lose: a warning only.
    assert choose("auto", packing=True, cuda=False, model_class=GPT2LMHeadModel) == "sdpa"


def test_packed_rows_under_flex_attention_build_no_dense_mask_and_keep_documents_apart(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    from transformers import AutoModelForCausalLM, LlamaConfig, masking_utils
    from transformers.integrations import flex_attention as transformers_flex
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    # transformers compiles flex_attention; on CPU that takes a minute, and the eager kernel takes the same
    # BlockMask and computes the same values, so the test runs it uncompiled.
    monkeypatch.setattr(
        transformers_flex,
        "compile_friendly_flex_attention",
        lambda query, key, value, training=False, **kwargs: flex_attention(query, key, value, **kwargs),
    )
    monkeypatch.setattr(
        masking_utils, "create_block_mask", lambda **kwargs: create_block_mask(**kwargs | {"_compile": False})
    )
    batch, tokenizer = first_training_batch(SAMPLE / "train", tiny_model_dir, tmp_path)
    ids, positions = batch["input_ids"], batch["position_ids"]
    assert ids.shape[0] == 1  # padding-free: the batch is one row of B x L tokens
    starts = (positions[0] == 0).nonzero().flatten().tolist()
    assert len(starts) > 2
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="flex_attention").eval()
    masks: list[object] = []
    flex = ALL_ATTENTION_FUNCTIONS["flex_attention"]

    def recording(module, query, key, value, attention_mask, **kwargs):
        masks.append(attention_mask)
        return flex(module, query, key, value, attention_mask, **kwargs)

    monkeypatch.setitem(ALL_ATTENTION_FUNCTIONS, "flex_attention", recording)
    with torch.no_grad():
        packed = model(input_ids=ids, position_ids=positions, use_cache=False).logits[0]
        # No dense mask of any size reached attention: a BlockMask (128-token blocks) carries the documents.
        assert masks and all(not isinstance(mask, torch.Tensor) for mask in masks)
        assert {type(mask).__name__ for mask in masks} == {"BlockMask"}
        for start, end in zip(starts, [*starts[1:], ids.shape[1]], strict=True):
            alone = model(input_ids=ids[:, start:end], use_cache=False).logits[0]
            torch.testing.assert_close(packed[start:end], alone, atol=1e-4, rtol=1e-4)


LLAMA_3_70B = {
    "model_type": "llama", "vocab_size": 128256, "hidden_size": 8192, "num_hidden_layers": 80,
    "num_attention_heads": 64, "num_key_value_heads": 8, "intermediate_size": 28672, "tie_word_embeddings": False,
}  # fmt: skip
LLAMA_3_8B = {**LLAMA_3_70B, "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
              "intermediate_size": 14336}  # fmt: skip


@pytest.mark.parametrize("config", [LLAMA_3_70B, LLAMA_3_8B], ids=["llama-3-70b", "llama-3-8b"])
def test_memory_plan_counts_the_parameters_transformers_builds(config: dict) -> None:
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(LlamaConfig(**config))
    assert code_module("memory_plan").model_shape(config).parameters == sum(p.numel() for p in model.parameters())


def test_memory_plan_counts_the_tiny_gpt2(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    config = json.loads((tiny_model_dir / "config.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert code_module("memory_plan").model_shape(config).parameters == sum(p.numel() for p in model.parameters())


def test_memory_plan_matches_accelerates_estimate_for_adam() -> None:
    from accelerate.commands.estimate import estimate_training_usage

    memory_plan = code_module("memory_plan")
    plan = memory_plan.plan(LLAMA_3_70B, memory_plan.Run("full", "ml.p4de.24xlarge", 2))
    fp32_bytes = 4 * plan.shape.parameters
    accelerate = estimate_training_usage(fp32_bytes, "bfloat16")
    # accelerate: fp32 model, 2 fp32 Adam moments, gradients in fp32 plus a bf16 compute copy. Here sharded
    # over 16 GPUs, with the bf16 copies counted in FSDP's working set of two layers instead.
    assert plan.weights * 16 == pytest.approx(accelerate["model"], rel=1e-6)
    assert plan.optimizer * 16 == pytest.approx(accelerate["optimizer"], rel=1e-6)
    assert plan.gradients * 16 == pytest.approx(accelerate["gradients"] - fp32_bytes // 2, rel=1e-6)


# SageMaker HyperPod recipes (github.com/aws/sagemaker-hyperpod-recipes, README "Fine-Tuning"): node counts
# AWS validated. The plan must accept each (it may accept fewer nodes: the recipes are sized for speed too).
HYPERPOD_RECIPES = [
    ("llama 3.3 70b SFT seq8k", LLAMA_3_70B, "full", "ml.p5.48xlarge", 10, 8192),
    ("llama 3.3 70b LoRA seq8k", LLAMA_3_70B, "lora", "ml.p5.48xlarge", 1, 8192),
    ("llama 3.1 70b SFT seq8k on p4d", LLAMA_3_70B, "full", "ml.p4d.24xlarge", 32, 8192),
    ("llama 3.1 8b SFT seq8k on p4d", LLAMA_3_8B, "full", "ml.p4d.24xlarge", 4, 8192),
    ("llama 3.1 8b SFT seq8k", LLAMA_3_8B, "full", "ml.p5.48xlarge", 1, 8192),
    ("llama 3.1 8b LoRA seq8k on p4d", LLAMA_3_8B, "lora", "ml.p4d.24xlarge", 1, 8192),
]


@pytest.mark.parametrize(("name", "config", "method", "instance", "nodes", "seq"), HYPERPOD_RECIPES)
def test_memory_plan_accepts_the_hyperpod_recipes_node_counts(
    name: str, config: dict, method: str, instance: str, nodes: int, seq: int
) -> None:
    memory_plan = code_module("memory_plan")
    plan = memory_plan.plan(config, memory_plan.Run(method, instance, nodes, sequence_length=seq))
    assert plan.fits, plan.render()


def test_memory_plan_refuses_70b_full_fine_tuning_on_two_p4de_and_accepts_lora() -> None:
    memory_plan = code_module("memory_plan")
    full = memory_plan.plan(LLAMA_3_70B, memory_plan.Run("full", "ml.p4de.24xlarge", 2))
    assert not full.fits
    # 16 B/param over 16 GPUs is ~70.6 GB before activations: with them, more than 90 % of an 80 GiB A100.
    assert full.weights + full.gradients + full.optimizer == pytest.approx(70.55e9, rel=1e-3)
    refusal = full.refusal(LLAMA_3_70B)
    assert "83.3 GB of 77.3 GB usable" in refusal, refusal
    assert "3 x ml.p4de.24xlarge" in refusal and "LoRA (lora_r=16) on the same 2 host(s)" in refusal
    lora = memory_plan.plan(LLAMA_3_70B, memory_plan.Run("lora", "ml.p4de.24xlarge", 2))
    assert lora.fits and lora.per_gpu < 25e9


def test_the_script_refuses_a_run_that_does_not_fit_before_downloading_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedded_aws
) -> None:
    s3, bucket = _weights_bucket(embedded_aws, monkeypatch)
    s3.put_object(Bucket=bucket, Key="models/llama-70b/config.json", Body=json.dumps(LLAMA_3_70B).encode())
    s3.put_object(Bucket=bucket, Key="models/llama-70b/model-00001-of-00030.safetensors", Body=b"not read")
    environ = {
        "SM_HOSTS": '["algo-1","algo-2"]',
        "SM_CURRENT_HOST": "algo-1",
        "SM_NUM_GPUS": "8",
        "SM_CURRENT_INSTANCE_TYPE": "ml.p4de.24xlarge",
        "SM_INPUT_DIR": str(tmp_path / "input"),
        "SM_OUTPUT_DIR": str(tmp_path / "output"),
        "SM_CHANNEL_TRAIN": str(SAMPLE / "train"),
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    flags = ["--model_s3_uri", f"s3://{bucket}/models/llama-70b", "--fsdp", "full_shard auto_wrap"]
    assert code_module("run_train").main([*flags, "--gradient_checkpointing", "true"]) == 1
    failure = (tmp_path / "output" / "failure").read_text()
    assert "the run does not fit" in failure and "70.55B parameters on 2 x ml.p4de.24xlarge" in failure
    assert "What would fit: 3 x ml.p4de.24xlarge; LoRA" in failure
    assert not (tmp_path / "input" / "data" / "model-from-s3").exists()  # nothing downloaded


def test_memory_plan_defaults_are_the_scripts() -> None:
    arguments, memory_plan = code_module("arguments"), code_module("memory_plan")
    parsed = arguments.parse_arguments([])
    values = {k: v for group in (parsed.model, parsed.data, parsed.lora, parsed.train) for k, v in vars(group).items()}
    assert {name: values[name] for name in memory_plan.HYPERPARAMETER_DEFAULTS} == memory_plan.HYPERPARAMETER_DEFAULTS


def test_dry_run_and_the_estimator_print_the_scripts_plan_from_config_json_in_s3(
    monkeypatch: pytest.MonkeyPatch, embedded_aws
) -> None:
    from trainstack.memory_preview import memory_plan_for_request, memory_plan_text

    s3, bucket = _weights_bucket(embedded_aws, monkeypatch)
    s3.put_object(Bucket=bucket, Key="models/llama-70b/config.json", Body=json.dumps(LLAMA_3_70B).encode())
    request = {
        "HyperParameters": {
            "fsdp": '"full_shard auto_wrap"',
            "gradient_checkpointing": "true",
            "block_size": "2048",
            "per_device_train_batch_size": "1",
        },
        "ResourceConfig": {"InstanceType": "ml.p4de.24xlarge", "InstanceCount": 2},
        "InputDataConfig": [
            {"ChannelName": "model", "DataSource": {"S3DataSource": {"S3Uri": f"s3://{bucket}/models/llama-70b"}}}
        ],
    }
    text = memory_plan_for_request(request, s3)
    assert "= 83.3 GB of 77.3 GB usable" in text and "What would fit: 3 x ml.p4de.24xlarge; LoRA" in text
    lora = memory_plan_text(
        {"lora_r": 16, "fsdp": "full_shard auto_wrap", "gradient_checkpointing": True, "block_size": 2048},
        "ml.p4de.24xlarge",
        2,
        None,
        s3,
        model_bucket=None,
    )
    assert lora.startswith("memory plan: none (no model_s3_uri")
    with_uri = {
        "model_s3_uri": f"s3://{bucket}/models/llama-70b",
        "lora_r": 16,
        "fsdp": "full_shard auto_wrap",
        "gradient_checkpointing": "true",
    }
    text = memory_plan_text(with_uri, "ml.p4de.24xlarge", 2, None, s3)
    assert "lora fine-tuning of 70.55B parameters" in text and "does not fit" not in text


def test_a_chat_template_without_generation_markers_fails_before_the_weights_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedded_aws, tiny_model_dir: Path
) -> None:
    s3, bucket = _weights_bucket(embedded_aws, monkeypatch)
    for path in tiny_model_dir.iterdir():
        body = path.read_bytes()
        if path.name == "chat_template.jinja":  # the same conversation, without {% generation %} markers
            body = re.sub(rb"\{%-?\s*(end)?generation\s*-?%\}", b"", body)
        s3.put_object(Bucket=bucket, Key=f"models/tiny/{path.name}", Body=body)
    for name, value in {
        "SM_INPUT_DIR": str(tmp_path / "input"),
        "SM_OUTPUT_DIR": str(tmp_path / "output"),
        "SM_CHANNEL_TRAIN": str(write_chat_channel(tmp_path / "chat", count=4)),
    }.items():
        monkeypatch.setenv(name, value)
    assert code_module("run_train").main(["--model_s3_uri", f"s3://{bucket}/models/tiny"]) == 1
    failure = (tmp_path / "output" / "failure").read_text()
    assert "assistant_only_loss needs a chat template that marks assistant turns with {% generation %}" in failure
    assert (tmp_path / "input" / "model-small-files" / "tokenizer.json").is_file()
    assert not list((tmp_path / "input").rglob("*.safetensors"))  # the weights were never downloaded


def test_tokenizing_uses_the_hosts_cores_and_a_timeout_that_suits_the_data() -> None:
    tokenizing_plan = code_module("sft_data").tokenizing_plan
    assert tokenizing_plan(2_000_000, cores=96) == (None, 1802)  # small data: in-process
    # 20 GB of text: every core of a p4de's 96, and 30 min + 20e9 B / (96 x 1 MB/s).
    assert tokenizing_plan(20_000_000_000, cores=96) == (96, 1800 + 20_000_000_000 // 96_000_000)
    assert tokenizing_plan(120_000_000, cores=96) == (3, 1800 + 40)


@pytest.mark.slow
def test_status_plot_draws_a_real_runs_loss_curves(single_host: HostRun) -> None:
    from trainstack.cli.plot import loss_curves, render

    curves = loss_curves(single_host.log.splitlines())
    train, (eval_point,) = curves["train_loss"], curves["eval_loss"]
    assert [step for step, _ in train] == [1, *range(2, MAX_STEPS + 1, 2)]
    assert train[-1][1] < train[0][1] and eval_point[0] == MAX_STEPS
    drawing = re.sub(r"\x1b\[[0-9;]*m", "", render(curves, "trainstack-test: loss", width=80, height=20))
    assert "train_loss" in drawing and "eval_loss" in drawing and "trainstack-test: loss" in drawing
    assert len(drawing.splitlines()) == 20


def test_warm_pool_cache_keys_the_model_by_etag_and_skips_the_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], embedded_aws
) -> None:
    weights = code_module("weights")
    monkeypatch.setattr(weights.shutil, "which", lambda _name: None)
    s3, bucket = _weights_bucket(embedded_aws, monkeypatch)
    environ = {weights.WARM_POOL_CACHE_ENV: str(tmp_path / "warmpoolcache")}
    uri = f"s3://{bucket}/models/tiny"
    s3.put_object(Bucket=bucket, Key="models/tiny/config.json", Body=b"{}")
    first = weights.fetch_model(uri, tmp_path / "input", environ)
    assert "warm-pool cache miss" in capsys.readouterr().out
    assert (first / "config.json").read_bytes() == b"{}"
    # The next job of the pool: same objects, so no download.
    again = weights.fetch_model(uri, tmp_path / "input", environ)
    assert again == first and "warm-pool cache hit" in capsys.readouterr().out
    # A changed object has a new ETag: a new key, a fresh download.
    s3.put_object(Bucket=bucket, Key="models/tiny/config.json", Body=b'{"changed": true}')
    changed = weights.fetch_model(uri, tmp_path / "input", environ)
    assert changed != first and (changed / "config.json").read_bytes() == b'{"changed": true}'
    assert "warm-pool cache miss" in capsys.readouterr().out
    assert first.parent == tmp_path / "warmpoolcache" / "models"


def test_mlflow_is_reported_to_only_when_configured_and_missing_packages_fail_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLFLOW_TRACKING_URI comes from training.mlflow_tracking_server_arn (#17); the dev environment has neither
    mlflow nor sagemaker-mlflow, so a job told to log there must fail before any download, saying why."""
    if importlib.util.find_spec("mlflow") or importlib.util.find_spec("sagemaker_mlflow"):
        pytest.skip("this environment has the MLflow packages; the refusal needs an environment without them")
    run_train = code_module("run_train")
    assert run_train.report_to({}) == ["tensorboard"]
    for name, value in {
        "SM_INPUT_DIR": str(tmp_path / "input"),
        "SM_OUTPUT_DIR": str(tmp_path / "output"),
        "MLFLOW_TRACKING_URI": "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/team",
    }.items():
        monkeypatch.setenv(name, value)
    assert run_train.main(["--model_s3_uri", "s3://no-such-bucket/models/tiny"]) == 1
    failure = (tmp_path / "output" / "failure").read_text()
    assert "training.mlflow_tracking_server_arn" in failure and "lacks mlflow, sagemaker-mlflow" in failure
    assert not (tmp_path / "input").exists()  # nothing was downloaded
