"""Run one SageMaker training host locally: an /opt/ml-style folder plus the real toolkit's `train`.

On SageMaker, each instance of a training job gets /opt/ml/input/config/{resourceconfig,hyperparameters,
inputdataconfig}.json, its channels under /opt/ml/input/data/<channel>, and the image's entry point (the
sagemaker-training toolkit's `train`) downloads `sagemaker_submit_directory`, installs requirements.txt
and runs `sagemaker_program`. This module lays out the same files under any folder and starts `train`
with `SAGEMAKER_BASE_DIR` pointing there, so the same code runs as it would in the container.

Used by the tests, the benchmark and the embedded AWS's local training executor. N instances are N
processes on this machine: host i of N is `algo-<i>`, and they rendezvous on 127.0.0.1.

Environment a host gets, on top of this process's environment (minus inherited SM_*/SAGEMAKER_* and
torch.distributed variables, plus any prefixes the caller adds) and a job's own `job_environment`, and
below the caller's `environment`:
- SAGEMAKER_BASE_DIR=<base_dir>      the toolkit's stand-in for /opt/ml
- SM_STUDIO_LOCAL_MODE=true          else the toolkit waits up to 15 minutes to resolve `algo-1` by DNS
- SM_CHECKPOINT_DIR=<base_dir>/checkpoints   where run_train.py keeps checkpoints (SageMaker: /opt/ml/checkpoints)
- PYTHONUNBUFFERED=1                 log lines appear as they are written
- MASTER_ADDR / MASTER_PORT          only from `start_cluster`: 127.0.0.1 and a free port
- OMP_NUM_THREADS                    only from `start_cluster`: this machine's cores split between the hosts
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

CHECKPOINT_DIR_ENV = "SM_CHECKPOINT_DIR"
"""Read by training_code/run_train.py (and its `checkpoint_dir` hyperparameter overrides it)."""

# Inherited values of these would describe some other job (or the pytest run's own torchrun) and
# silently change what the toolkit or torch.distributed does in the host.
_SCRUBBED_PREFIXES = ("SM_", "SAGEMAKER_", "TORCHELASTIC_")
_SCRUBBED_NAMES = frozenset({"MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE"})

# What the SageMaker SDK writes for a plain File-mode channel; callers with a CreateTrainingJob request
# pass its own per-channel entries instead.
_DEFAULT_CHANNEL_CONFIG = {
    "TrainingInputMode": "File",
    "S3DistributionType": "FullyReplicated",
    "RecordWrapperType": "None",
}


def host_name(index: int) -> str:
    """SageMaker's name for instance `index` (0-based) of a job: algo-1, algo-2, ..."""
    return f"algo-{index + 1}"


def encode_hyperparameters(values: Mapping[str, Any]) -> dict[str, str]:
    """JSON-encode every value, as the SageMaker Python SDK does before CreateTrainingJob."""
    return {key: json.dumps(value) for key, value in values.items()}


def write_host_config(
    base_dir: Path,
    *,
    current_host: str,
    hosts: Sequence[str],
    hyperparameters: Mapping[str, str],
    channels: Mapping[str, Path],
    instance_type: str = "local",
    copy_channels: bool = True,
    hardlink_channels: bool = False,
    input_data_config: Mapping[str, Mapping[str, str]] | None = None,
    extra_config: Mapping[str, object] | None = None,
    code_dir: Path | None = None,
) -> None:
    """Lay out `base_dir` as SageMaker lays out /opt/ml for `current_host` of `hosts`.

    `hyperparameters` are CreateTrainingJob's: string values, JSON-encoded (see encode_hyperparameters).
    `channels` maps a channel name to a local folder; its files are copied to input/data/<name> (File
    mode), or symlinked with `copy_channels=False` to save time on large local data. With
    `hardlink_channels` the copy's files are hard links: N hosts on one disk share one download, yet each
    host still has a real folder of its own, as in a container.

    `input_data_config` gives a channel's inputdataconfig.json entry (its TrainingInputMode, ContentType,
    ...); a channel without one gets a plain File-mode entry. `extra_config` writes more files under
    input/config, file name -> JSON payload (trainingjobconfig.json, checkpointconfig.json). `code_dir`
    is copied into code/: a non-empty code folder makes the toolkit skip its own download of
    `sagemaker_submit_directory`.
    """
    if current_host not in hosts:
        raise ValueError(f"current_host {current_host!r} is not in hosts {list(hosts)}")
    not_strings = sorted(key for key, value in hyperparameters.items() if not isinstance(value, str))
    if not_strings:
        raise TypeError(f"hyperparameter values must be JSON-encoded strings, as SageMaker passes them: {not_strings}")

    config_dir = base_dir / "input" / "config"
    # checkpoints/ is where SM_CHECKPOINT_DIR points; code/ is where the toolkit puts the submitted code
    # (an empty one still gets the download). Both exist on a SageMaker host before the code starts.
    for sub in ("input/data", "model", "output/data", "checkpoints", "code"):
        (base_dir / sub).mkdir(parents=True, exist_ok=True)
    config_dir.mkdir(parents=True, exist_ok=True)
    group = "homogeneousCluster"
    _write_json(
        config_dir / "resourceconfig.json",
        {
            "current_host": current_host,
            "current_instance_type": instance_type,
            "current_group_name": group,
            "hosts": list(hosts),
            "instance_groups": [{"instance_group_name": group, "instance_type": instance_type, "hosts": list(hosts)}],
            # Every "host" is this machine: the loopback interface is the only one they share.
            "network_interface_name": "lo",
        },
    )
    _write_json(config_dir / "hyperparameters.json", dict(hyperparameters))
    entries = input_data_config or {}
    _write_json(
        config_dir / "inputdataconfig.json",
        {name: dict(entries.get(name, _DEFAULT_CHANNEL_CONFIG)) for name in channels},
    )
    for file_name, payload in (extra_config or {}).items():
        _write_json(config_dir / file_name, payload)
    for name, source in channels.items():
        target = base_dir / "input" / "data" / name
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            shutil.rmtree(target)
        if not copy_channels:
            target.symlink_to(Path(source).resolve(), target_is_directory=True)
        elif hardlink_channels:
            shutil.copytree(source, target, copy_function=os.link)
        else:
            shutil.copytree(source, target)
    if code_dir is not None:
        shutil.copytree(code_dir, base_dir / "code", dirs_exist_ok=True)


def host_environment(
    base_dir: Path,
    environment: Mapping[str, str] | None = None,
    *,
    inherit: Mapping[str, str] | None = None,
    job_environment: Mapping[str, str] | None = None,
    scrub_prefixes: Sequence[str] = (),
) -> dict[str, str]:
    """The environment `train` runs with for a host whose /opt/ml is `base_dir` (see the module doc).

    `job_environment` (CreateTrainingJob's Environment) sits below the variables that place the host in
    `base_dir`, so a job cannot point the toolkit elsewhere; `environment` is the caller's and beats all.
    `scrub_prefixes` drops more inherited variables, e.g. AWS_ so the caller's profile or endpoint does
    not leak into a job meant for another account.
    """
    inherited = os.environ if inherit is None else inherit
    scrubbed = (*_SCRUBBED_PREFIXES, *scrub_prefixes)
    env = {
        key: value for key, value in inherited.items() if not key.startswith(scrubbed) and key not in _SCRUBBED_NAMES
    }
    env.update(job_environment or {})
    env.update(
        {
            "SAGEMAKER_BASE_DIR": str(base_dir),
            "SM_STUDIO_LOCAL_MODE": "true",
            CHECKPOINT_DIR_ENV: str(base_dir / "checkpoints"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(environment or {})
    return env


def train_command(python: Path | None = None) -> list[str]:
    """The toolkit's `train` console script from this interpreter's environment, or `train` under `python`
    (a job's own environment layered over this one, see trainstack/embedded_aws/job_container.py)."""
    if python is not None:
        return [str(python), "-c", "from sagemaker_training.cli.train import main; main()"]
    script = Path(sys.executable).parent / "train"
    if script.is_file():
        return [str(script)]
    # Same entry point when the console script is not installed next to the interpreter.
    return [sys.executable, "-c", "from sagemaker_training.cli.train import main; main()"]


def start_host(
    base_dir: Path,
    *,
    current_host: str,
    hosts: Sequence[str],
    hyperparameters: Mapping[str, str],
    channels: Mapping[str, Path],
    environment: Mapping[str, str] | None = None,
    stdout: int | IO[Any] | None = None,
    copy_channels: bool = True,
) -> subprocess.Popen[bytes]:
    """Lay out `base_dir` and start `train` for one host; stderr goes to the same place as `stdout`.

    Returns at once. The exit code is the job's: 0 with output/success, else output/failure says why.
    """
    base_dir.mkdir(parents=True, exist_ok=True)
    write_host_config(
        base_dir,
        current_host=current_host,
        hosts=hosts,
        hyperparameters=hyperparameters,
        channels=channels,
        copy_channels=copy_channels,
    )
    return launch_host(base_dir, host_environment(base_dir, environment), stdout=stdout)


def launch_host(
    base_dir: Path, env: Mapping[str, str], *, stdout: int | IO[Any] | None = None, python: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `train` in a `base_dir` already laid out by write_host_config, with the complete `env`
    (see host_environment), under `python` if given; stderr goes to the same place as `stdout`
    (subprocess.PIPE to read it)."""
    return subprocess.Popen(
        train_command(python),
        cwd=base_dir,
        env=dict(env),
        stdout=stdout,
        stderr=subprocess.STDOUT,
        # Its own process group, like a container: stop_host reaches the launcher, torchrun and workers.
        start_new_session=True,
    )


def stop_host(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal a host's whole process tree (SageMaker sends SIGTERM to a container it stops)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


def stop_hosts(processes: Sequence[subprocess.Popen[bytes]], grace_seconds: float) -> None:
    """Stop hosts as SageMaker stops containers: SIGTERM to each container's first process only, then, once
    it has exited or `grace_seconds` have passed, SIGKILL to everything left in the container.

    Docker delivers a stop's SIGTERM to the container's PID 1 and to nothing else, so the launcher, torchrun
    and the workers see it only if that process passes it on; the toolkit's `train` does not (it has no
    handler: here it exits at once, while as an image's PID 1 it would ignore the signal until the SIGKILL).
    Signalling the whole group, as before, hid that.
    """
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        # The container ends with its first process: nothing in it outlives that (or the grace period).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_host(
    base_dir: Path,
    *,
    current_host: str,
    hosts: Sequence[str],
    hyperparameters: Mapping[str, str],
    channels: Mapping[str, Path],
    environment: Mapping[str, str] | None = None,
    log_file: Path | None = None,
    timeout: float | None = None,
) -> int:
    """start_host and wait; the host's output goes to `log_file` (or this process's stdout). Returns the exit code."""
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("wb") if log_file is not None else contextlib.nullcontext() as out:
        process = start_host(
            base_dir,
            current_host=current_host,
            hosts=hosts,
            hyperparameters=hyperparameters,
            channels=channels,
            environment=environment,
            stdout=out,
        )
        return _wait(process, timeout)


@dataclass
class LocalHost:
    name: str
    base_dir: Path
    log_file: Path
    process: subprocess.Popen[bytes]


def start_cluster(
    root: Path,
    *,
    instance_count: int,
    hyperparameters: Mapping[str, str],
    channels: Mapping[str, Path],
    environment: Mapping[str, str] | None = None,
    copy_channels: bool = True,
) -> list[LocalHost]:
    """Start `instance_count` hosts as local processes: root/algo-<i>/ is each one's /opt/ml and
    root/algo-<i>.log its combined output. They rendezvous on 127.0.0.1 at a free port."""
    if instance_count < 1:
        raise ValueError(f"instance_count must be at least 1, got {instance_count}")
    hosts = [host_name(i) for i in range(instance_count)]
    shared = {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        # N hosts share this machine's cores; without a cap each would start one thread per core.
        "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // instance_count)),
    }
    shared.update(environment or {})
    started: list[LocalHost] = []
    for host in hosts:
        base_dir = root / host
        log_file = root / f"{host}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("wb") as out:  # the child keeps its own descriptor
            process = start_host(
                base_dir,
                current_host=host,
                hosts=hosts,
                hyperparameters=hyperparameters,
                channels=channels,
                environment=shared,
                stdout=out,
                copy_channels=copy_channels,
            )
        started.append(LocalHost(host, base_dir, log_file, process))
    return started


def wait_cluster(hosts: Sequence[LocalHost], timeout: float | None = None) -> list[int]:
    """Wait for every host; if one fails, stop the others (as SageMaker stops a job whose host failed).

    Returns the exit codes in host order. On timeout every host still running is killed.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    pending = list(hosts)
    while pending:
        for host in list(pending):
            code = host.process.poll()
            if code is None:
                continue
            pending.remove(host)
            if code != 0:
                # Peers would otherwise sit in a collective until the backend's timeout (30 min).
                for other in pending:
                    stop_host(other.process)
        if deadline is not None and time.monotonic() > deadline:
            for host in pending:
                stop_host(host.process, signal.SIGKILL)
            break
        time.sleep(0.2)
    return [host.process.wait() for host in hosts]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _write_json(path: Path, payload: object) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _wait(process: subprocess.Popen[bytes], timeout: float | None) -> int:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_host(process, signal.SIGKILL)
        process.wait()
        raise
