"""Checkpoints that survive a multi-node job: where they go, when they are complete, which one to resume.

SageMaker syncs `/opt/ml/checkpoints` on every host to one `CheckpointConfig.S3Uri` prefix, asynchronously,
and restores everything under that prefix to every host when a job (a spot restart, a retry) starts. In
transformers 5 only global rank 0 writes model weights and optimizer state; each rank writes its own RNG
state, and under FSDP's sharded state dict each rank writes its shards. So a checkpoint's files are spread
over the hosts, and only the union that S3 restores is whole.

Completeness: after every save, all ranks pass a barrier (every rank has finished writing), then each lists
its host's checkpoint folder, the lists (names and sizes) are gathered, and global rank 0 writes
`trainstack-complete.json` last. A checkpoint counts only when that manifest is there and every file it
lists is present with its size, which also catches an upload cut short by an interruption (the manifest may
reach S3 before another host's files). Resume takes the newest checkpoint that is complete on every rank
(all-gathered), so no rank starts from a step another cannot.

Save triggers besides `save_steps`: every `save_minutes` of wall time, and on SIGTERM (SageMaker's stop and
a spot interruption's two-minute notice): a step-end flag all-reduced across ranks, so every rank saves at
the same step; after a SIGTERM save the run stops.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from sagemaker_env import CHECKPOINT_DIR_ENV, DEFAULT_CHECKPOINT_DIR
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

log = logging.getLogger(__name__)

_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
MANIFEST = "trainstack-complete.json"


def resolve_checkpoint_dir(hyperparameter: str | None, environ: Mapping[str, str]) -> Path:
    """The `checkpoint_dir` hyperparameter, else $SM_CHECKPOINT_DIR, else /opt/ml/checkpoints."""
    return Path(hyperparameter or environ.get(CHECKPOINT_DIR_ENV) or DEFAULT_CHECKPOINT_DIR)


def files_of(folder: Path) -> dict[str, int]:
    """Relative path -> size of every file under `folder` except the manifest."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in folder.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }


def write_manifest(folder: Path, step: int, files: Mapping[str, int], world_size: int) -> None:
    payload = {"step": step, "world_size": world_size, "files": dict(sorted(files.items()))}
    partial = folder / f".{MANIFEST}.partial"
    partial.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    partial.replace(folder / MANIFEST)  # atomic on one filesystem: never a half-written manifest


def is_complete(folder: Path) -> bool:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    for name, size in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size:
            log.warning("checkpoint %s is incomplete: %s is missing or cut short", folder.name, name)
            return False
    return bool(manifest.get("files"))


def complete_checkpoints(directory: Path) -> dict[int, Path]:
    """Step -> folder for each complete `checkpoint-<step>` folder in `directory`."""
    if not directory.is_dir():
        return {}
    found: dict[int, Path] = {}
    for child in directory.iterdir():
        match = _CHECKPOINT_NAME.match(child.name)
        if match and is_complete(child):
            found[int(match.group(1))] = child
    return found


def agreed_resume_checkpoint(directory: Path) -> Path | None:
    """The newest checkpoint complete on every rank's disk, or None to start fresh.

    Collective when torch.distributed is initialised: every rank must call it.
    """
    import torch.distributed as dist

    local = complete_checkpoints(directory)
    steps = set(local)
    if dist.is_available() and dist.is_initialized():
        gathered: list[set[int] | None] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, steps)
        steps = set.intersection(*(s or set() for s in gathered))
    return local[max(steps)] if steps else None


class CompleteCheckpointCallback(TrainerCallback):
    """After each save: barrier, every rank lists its folder, gather, rank 0 writes the manifest last."""

    def __init__(self, checkpoint_dir: Path) -> None:
        self.checkpoint_dir = checkpoint_dir

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        import torch.distributed as dist

        folder = self.checkpoint_dir / f"checkpoint-{state.global_step}"
        distributed = dist.is_available() and dist.is_initialized()
        if distributed:
            # Every rank lists the folder only once every rank has finished writing. A host's ranks share
            # its folder, and a rank with little to write (RNG state) reaches on_save while its host's main
            # process is still writing: listed then, config.json was cut short and safetensors' temporary
            # file was there, and that rank's later list overrode rank 0's in the union (#17).
            dist.barrier()
        mine = files_of(folder) if folder.is_dir() else {}
        everyone: list[dict[str, int] | None] = [mine]
        if distributed:
            everyone = [None] * dist.get_world_size()
            dist.all_gather_object(everyone, mine)
        if state.is_world_process_zero:
            union = union_of_files(everyone)
            write_manifest(folder, state.global_step, union, args.world_size)
            print(f"checkpoint-{state.global_step} complete: {len(union)} files", flush=True)


def union_of_files(everyone: list[dict[str, int] | None]) -> dict[str, int]:
    """Every rank's files in one listing; a name two ranks list at different sizes is logged.

    After the barrier a host's ranks see the same files, so a disagreement means two hosts wrote one name:
    SageMaker keeps whichever upload reaches the shared prefix last, and resume may find the other."""
    union: dict[str, int] = {}
    for rank, files in enumerate(everyone):
        for name, size in (files or {}).items():
            if union.setdefault(name, size) != size:
                log.warning(
                    "checkpoint file %s: %d bytes as rank %d lists it, %d bytes as an earlier rank does; "
                    "hosts that write one name overwrite each other in the shared S3 prefix",
                    name,
                    size,
                    rank,
                    union[name],
                )
    return union


class HostCheckpointRotationCallback(TrainerCallback):
    """Each host beyond the first keeps only its newest `save_total_limit` checkpoint folders.

    transformers rotates checkpoints on world rank 0 only (`_rotate_checkpoints` runs where `should_save`),
    so the other hosts' folders kept every checkpoint's RNG states and shards (hundreds of GB each at 70B
    under FSDP), and SageMaker synced and restored all of them. The same rule as transformers' (newest
    steps), on the local main process of every other host; SageMaker deletes in S3 what a container deletes
    locally, so the shared prefix keeps only what resume needs."""

    def __init__(self, checkpoint_dir: Path, limit: int | None) -> None:
        self.checkpoint_dir = checkpoint_dir
        self.limit = limit

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if not self.limit or state.is_world_process_zero or not state.is_local_process_zero:
            return
        for folder in prune_checkpoints(self.checkpoint_dir, self.limit):
            log.info("removed %s: save_total_limit=%d", folder.name, self.limit)


def prune_checkpoints(directory: Path, limit: int) -> list[Path]:
    """Delete all but the newest `limit` `checkpoint-<step>` folders of `directory`; returns those deleted."""
    import shutil

    if not directory.is_dir():
        return []
    steps = sorted(
        (int(match.group(1)), child)
        for child in directory.iterdir()
        if child.is_dir() and (match := _CHECKPOINT_NAME.match(child.name))
    )
    doomed = [folder for _, folder in steps[: max(0, len(steps) - limit)]]
    for folder in doomed:
        shutil.rmtree(folder, ignore_errors=True)
    return doomed


class SaveTriggersCallback(TrainerCallback):
    """Save every `save_minutes` of wall time, and save then stop on SIGTERM; decided by all ranks together."""

    def __init__(self, save_minutes: float) -> None:
        self.save_seconds = save_minutes * 60
        self.last_save = time.monotonic()
        self.terminating = False
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, _signum: int, _frame: FrameType | None) -> None:
        # Only a flag here: saving from inside a signal handler would interrupt a collective mid-flight.
        self.terminating = True

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self.last_save = time.monotonic()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        due = self.save_seconds > 0 and time.monotonic() - self.last_save >= self.save_seconds
        terminating, due = _any_rank(self.terminating, due)
        if terminating:
            if state.is_world_process_zero:
                print(f"SIGTERM: saving checkpoint-{state.global_step} and stopping", flush=True)
            control.should_save = True
            control.should_training_stop = True
            self.terminating = True
        elif due:
            control.should_save = True


def _any_rank(*flags: bool) -> tuple[bool, ...]:
    """Each flag OR-ed over all ranks, in one small all-reduce per step."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flags
    backend = dist.get_backend()
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
    values = torch.tensor([1 if flag else 0 for flag in flags], device=device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return tuple(bool(v) for v in values.tolist())
