"""Where checkpoints go and which one a restarted job resumes from.

SageMaker syncs `/opt/ml/checkpoints` on every host to `CheckpointConfig.S3Uri` and restores it when a
job (a spot interruption's retry, a re-run with the same checkpoint URI) starts. Each host's disk is its
own, so every node saves a full checkpoint (`save_on_each_node`), and before resuming the ranks agree on
the newest step that all of them hold: a node that lost the race with an interruption must not resume
from a step the others never reached.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from sagemaker_env import CHECKPOINT_DIR_ENV, DEFAULT_CHECKPOINT_DIR

_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
# Trainer writes this last, so a checkpoint folder without it was cut short mid-save.
_COMPLETE_MARKER = "trainer_state.json"


def resolve_checkpoint_dir(hyperparameter: str | None, environ: Mapping[str, str]) -> Path:
    """The `checkpoint_dir` hyperparameter, else $SM_CHECKPOINT_DIR, else /opt/ml/checkpoints."""
    return Path(hyperparameter or environ.get(CHECKPOINT_DIR_ENV) or DEFAULT_CHECKPOINT_DIR)


def complete_checkpoints(directory: Path) -> dict[int, Path]:
    """Step -> folder for each complete `checkpoint-<step>` folder in `directory`."""
    if not directory.is_dir():
        return {}
    found: dict[int, Path] = {}
    for child in directory.iterdir():
        match = _CHECKPOINT_NAME.match(child.name)
        if match and (child / _COMPLETE_MARKER).is_file():
            found[int(match.group(1))] = child
    return found


def agreed_resume_checkpoint(directory: Path) -> Path | None:
    """The newest complete checkpoint present on every rank's disk, or None to start fresh.

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
