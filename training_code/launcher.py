"""Multi-node / multi-GPU launch: the script starts `torchrun` itself, with the toolkit's EFA settings.

In a custom image (or any DLC without the PyTorch estimator's `distribution=`), SageMaker starts the
entry point once per host and nothing more. So with several hosts or GPUs the first invocation on each
host becomes a launcher: one `torchrun` agent per host, nnodes = len(SM_HOSTS), node rank = this host's
position in SM_HOSTS, one worker per GPU (one on a CPU host), rendezvous at the first host's name and port
29500, never from the job's environment (a run's MASTER_ADDR would join the job to another host's process
group). Only in local mode (`SM_STUDIO_LOCAL_MODE=true`, which the embedded AWS sets above the job's own
variables and a run input cannot set) do `MASTER_ADDR` / `MASTER_PORT` give the rendezvous: there N "hosts"
are N processes on 127.0.0.1.

Why not the toolkit's own torch_distributed runner (`sagemaker_torch_distributed_enabled`, what the SDK's
`distribution={"torch_distributed": {"enabled": True}}` sets)? The generic `train` entry point, which a
custom image or this folder's script gets, only picks the MPI or the plain process runner
(sagemaker_training/trainer.py); the torchrun runner is reached only through the framework container's
module (sagemaker-pytorch-training), and it fixes the rendezvous port at 7777. What the runner adds for
EFA instances (p4d, p4de, p5, ...: FI_PROVIDER=efa, FI_EFA_USE_DEVICE_RDMA=1, RDMAV_FORK_SAFE=1,
NCCL_SOCKET_IFNAME, NCCL_PROTO=simple) we take from the toolkit itself: `efa_environment` runs the
runner's own setup, so its instance lists stay the toolkit's, not a copy.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from sagemaker_env import SageMakerEnvironment

log = logging.getLogger(__name__)

DEFAULT_MASTER_PORT = 29500
# Workers per CPU host (default one). Lets a local run put several ranks on one "host", as a GPU host has
# one per GPU, to exercise what is per host and what is per rank; ignored on GPU hosts.
CPU_PROCESSES_PER_HOST_ENV = "TRAINSTACK_CPU_PROCESSES_PER_HOST"
# Set by torchrun in every worker it starts: their presence means "train, don't launch again".
_TORCHRUN_WORKER_VARIABLES = ("TORCHELASTIC_RUN_ID", "LOCAL_RANK")


@dataclass(frozen=True)
class LaunchPlan:
    nnodes: int
    node_rank: int
    nproc_per_node: int
    master_addr: str
    master_port: int
    backend: str

    @property
    def world_size(self) -> int:
        return self.nnodes * self.nproc_per_node

    def torchrun_command(self, script: Path, argv: Sequence[str], python: str = sys.executable) -> list[str]:
        # `python -m torch.distributed.run` is torchrun, without trusting PATH to find the same interpreter.
        return [
            python,
            "-m",
            "torch.distributed.run",
            f"--nnodes={self.nnodes}",
            f"--node_rank={self.node_rank}",
            f"--nproc_per_node={self.nproc_per_node}",
            f"--master_addr={self.master_addr}",
            f"--master_port={self.master_port}",
            # A failed worker fails the job; SageMaker's own retry strategy and our checkpoints handle
            # restarts, and an in-place restart on one node would desynchronise the others.
            "--max_restarts=0",
            str(script),
            *argv,
        ]


def plan_launch(sm: SageMakerEnvironment, environ: Mapping[str, str]) -> LaunchPlan:
    local = environ.get("SM_STUDIO_LOCAL_MODE") == "true"
    return LaunchPlan(
        nnodes=len(sm.hosts),
        node_rank=sm.node_rank,
        nproc_per_node=sm.num_gpus or int(environ.get(CPU_PROCESSES_PER_HOST_ENV) or 1),
        master_addr=(local and environ.get("MASTER_ADDR")) or sm.hosts[0],
        master_port=int((local and environ.get("MASTER_PORT")) or DEFAULT_MASTER_PORT),
        backend="nccl" if sm.num_gpus > 0 else "gloo",
    )


def efa_environment(environ: MutableMapping[str, str]) -> dict[str, str]:
    """Set what the toolkit's TorchDistributedRunner sets for this instance type; returns what changed."""
    try:
        from sagemaker_training import torch_distributed
    except ImportError:  # run by hand, outside a SageMaker image
        log.warning("sagemaker-training is not installed: no EFA/NCCL settings")
        return {}
    before = dict(environ)
    runner = torch_distributed.TorchDistributedRunner(
        user_entry_point="run_train.py",
        args=[],
        env_vars={},
        processes_per_host=1,
        master_hostname="",
        hosts=[],
        current_host="",
        network_interface_name=environ.get("SM_NETWORK_INTERFACE_NAME", "eth0"),
        instance_type=environ.get("SM_CURRENT_INSTANCE_TYPE", ""),
    )
    runner._setup()  # private, but it is the runner's EFA/NCCL settings exactly; it writes os.environ
    if environ is not os.environ:
        for name in ("FI_PROVIDER", "FI_EFA_USE_DEVICE_RDMA", "RDMAV_FORK_SAFE", "NCCL_SOCKET_IFNAME", "NCCL_PROTO"):
            if name in os.environ:
                environ[name] = os.environ[name]
    changed = {k: v for k, v in environ.items() if before.get(k) != v}
    log.info("distributed settings from the toolkit's torch_distributed runner: %s", changed)
    return changed


def is_torchrun_worker(environ: Mapping[str, str]) -> bool:
    return any(name in environ for name in _TORCHRUN_WORKER_VARIABLES)


def run_torchrun(plan: LaunchPlan, script: Path, argv: Sequence[str]) -> int:
    """Run this host's torchrun agent to completion and return its exit code.

    SIGTERM (what SageMaker sends on StopTrainingJob or spot reclaim) is passed on, so workers can stop
    cleanly instead of being killed with the launcher.
    """
    command = plan.torchrun_command(script, argv)
    log.info("launching %d worker(s) on node %d/%d: %s", plan.nproc_per_node, plan.node_rank, plan.nnodes, command)
    process = subprocess.Popen(command)

    def forward(signum: int, _frame: FrameType | None) -> None:
        process.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        return process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
