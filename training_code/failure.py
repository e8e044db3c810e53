"""The failure file: SageMaker shows its first 1024 characters as the job's FailureReason.

One paragraph that says what went wrong and what to do, rather than a traceback (the traceback goes to
the log). The first writer wins, as the toolkit does it: the most specific reason is written by the
process that hit the error, before the launcher or the toolkit notice the exit code.
"""

from __future__ import annotations

import os
from pathlib import Path

from errors import ArgumentError, DataError

FAILURE_REASON_LIMIT = 1024


def describe(error: BaseException, *, host: str, rank: int | None) -> str:
    where = f"host {host}" + (f", rank {rank}" if rank is not None else "")
    if isinstance(error, DataError):
        advice = "Fix or replace the data in that channel and start a new job."
    elif isinstance(error, ArgumentError):
        advice = "Fix the job's hyperparameters and start a new job."
    elif isinstance(error, MemoryError) or "out of memory" in str(error).lower():
        advice = (
            "Lower per_device_train_batch_size or block_size, turn on gradient_checkpointing, "
            "or shard the model with fsdp."
        )
    else:
        advice = "The training log has the full traceback."
    message = " ".join(f"{type(error).__name__}: {error}".split()).rstrip(".")
    return f"Training failed on {where}. {message}. {advice}"


def write_failure(path: Path, reason: str) -> bool:
    """Write `reason` to `path` unless a failure file is already there; True if this call wrote it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = reason if len(reason) <= FAILURE_REASON_LIMIT else reason[: FAILURE_REASON_LIMIT - 3] + "..."
    try:
        # O_EXCL: two workers failing at once on the same host must not interleave their paragraphs.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    return True
