"""Multi-node / multi-GPU launch: the script starts `torchrun` itself.

In a custom image (or any DLC without the PyTorch estimator's `distribution=`), SageMaker starts the
entry point once per host and nothing more. So with several hosts or GPUs the first invocation on each
host becomes a launcher: one `torchrun` agent per host, nnodes = len(SM_HOSTS), node rank = this host's
position in SM_HOSTS, one worker per GPU (one on a CPU host), rendezvous at the first host.
`MASTER_ADDR` / `MASTER_PORT` override the rendezvous for local runs, where N "hosts" are N processes
on 127.0.0.1.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from sagemaker_env import SageMakerEnvironment

log = logging.getLogger(__name__)

DEFAULT_MASTER_PORT = 29500
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
    return LaunchPlan(
        nnodes=len(sm.hosts),
        node_rank=sm.node_rank,
        nproc_per_node=max(sm.num_gpus, 1),
        master_addr=environ.get("MASTER_ADDR") or sm.hosts[0],
        master_port=int(environ.get("MASTER_PORT") or DEFAULT_MASTER_PORT),
        backend="nccl" if sm.num_gpus > 0 else "gloo",
    )


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
