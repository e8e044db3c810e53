"""Channel data for supervised fine-tuning: check the files' shape, then load them with HF `datasets`.

Accepted files, in the channel folder or below it (sorted): JSON Lines (`.jsonl`, or `.json` holding one
object per line) and `.txt` (one example per non-empty line). Each JSON record has one of three shapes,
the same in every file of a channel, which TRL's SFTTrainer knows how to train:
- raw text: `{"text": "..."}` (the key is the `text_field` hyperparameter);
- chat: `{"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}`,
  rendered with the model's chat template; the loss is on the assistant turns only;
- prompt/completion: `{"prompt": "...", "completion": "..."}`; the loss is on the completion only.
Anything else is a DataError naming the channel, the file and the line, since that sentence becomes the
job's FailureReason. The check reads each file once per host (the launcher runs it before torchrun starts
the workers); tokenizing is left to SFTTrainer, which maps the dataset once per host into the `datasets`
cache (main process first; the other ranks read the cached Arrow files).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from errors import DataError

if TYPE_CHECKING:
    from datasets import Dataset

JSON_LINES_SUFFIXES = (".jsonl", ".json")
TEXT_SUFFIXES = (".txt",)


class Shape(StrEnum):
    TEXT = "text"
    CHAT = "messages"
    PROMPT_COMPLETION = "prompt/completion"


def data_files(channel: str, directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise DataError(f"the {channel} channel's folder {directory} does not exist")
    files = sorted(
        path
        for path in directory.rglob("*")
        if path.is_file()
        and not path.name.startswith(".")
        and path.suffix.lower() in JSON_LINES_SUFFIXES + TEXT_SUFFIXES
    )
    if not files:
        raise DataError(f"the {channel} channel has no .jsonl, .json or .txt files in {directory}")
    return files


def check_channel(channel: str, directory: Path, text_field: str) -> Shape:
    """The channel's one record shape; DataError naming file and line for the first record that has none."""
    shapes: dict[Shape, str] = {}
    records = 0
    for path in data_files(channel, directory):
        name = path.relative_to(directory).as_posix()
        if path.suffix.lower() in TEXT_SUFFIXES:
            lines = [line for line in _lines(channel, name, path) if line.strip()]
            if lines:
                shapes.setdefault(Shape.TEXT, name)
            records += len(lines)
            continue
        for number, line in enumerate(_lines(channel, name, path), start=1):
            if not line.strip():
                continue
            shape = _record_shape(channel, name, number, line, text_field)
            shapes.setdefault(shape, f"{name} line {number}")
            records += 1
    if records == 0:
        raise DataError(f"the {channel} channel's files in {directory} contain no records")
    if len(shapes) > 1:
        found = "; ".join(f"{shape.value} at {where}" for shape, where in shapes.items())
        raise DataError(f"the {channel} channel mixes record shapes ({found}): use one shape per channel")
    return next(iter(shapes))


def load_channel(channel: str, directory: Path, shape: Shape, text_field: str, cache_dir: Path) -> Dataset:
    """The channel as a `datasets.Dataset` with SFTTrainer's column names, cached as Arrow in `cache_dir`."""
    from datasets import load_dataset

    files = data_files(channel, directory)
    json_files = [str(p) for p in files if p.suffix.lower() in JSON_LINES_SUFFIXES]
    text_files = [str(p) for p in files if p.suffix.lower() in TEXT_SUFFIXES]
    parts = []
    if json_files:
        parts.append(load_dataset("json", data_files=json_files, split="train", cache_dir=str(cache_dir)))
    if text_files:
        lines = load_dataset("text", data_files=text_files, split="train", cache_dir=str(cache_dir))
        parts.append(lines.filter(lambda row: bool(row["text"].strip())).rename_column("text", text_field))
    if len(parts) > 1:
        from datasets import concatenate_datasets

        dataset = concatenate_datasets([part.select_columns([text_field]) for part in parts])
    else:
        dataset = parts[0]
    keep = {Shape.TEXT: [text_field], Shape.CHAT: ["messages"], Shape.PROMPT_COMPLETION: ["prompt", "completion"]}
    dataset = dataset.select_columns(keep[shape])
    # SFTTrainer reads raw text from its `dataset_text_field`; we pass text_field there, so no rename needed.
    return dataset


def _record_shape(channel: str, name: str, number: int, line: str, text_field: str) -> Shape:
    where = f"{channel} channel, {name} line {number}"
    if number == 1 and line.lstrip().startswith("["):
        raise DataError(
            f"{where}: the file is a JSON array; JSON Lines is required (one JSON object per line, no enclosing [ ])"
        )
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: not valid JSON ({error.msg}); JSON Lines is required") from error
    if isinstance(record, dict):
        if isinstance(record.get(text_field), str):
            return Shape.TEXT
        messages = record.get("messages")
        if isinstance(messages, list) and messages and all(_is_message(m) for m in messages):
            return Shape.CHAT
        if isinstance(record.get("prompt"), str) and isinstance(record.get("completion"), str):
            return Shape.PROMPT_COMPLETION
    raise DataError(
        f"{where}: a record needs one of {{{text_field!r}: str}} (set text_field if the key differs), "
        '{"messages": [{"role": ..., "content": ...}, ...]} or {"prompt": str, "completion": str}'
    )


def _is_message(message: object) -> bool:
    return isinstance(message, dict) and all(isinstance(message.get(key), str) for key in ("role", "content"))


def _lines(channel: str, name: str, path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise DataError(f"{channel} channel, {name}: not UTF-8 text (byte {error.start})") from error


# Tokenizing rate assumed per process (a fast tokenizer does several MB/s of text): a floor, not a promise.
_BYTES_PER_PROCESS_SECOND = 1_000_000
_BYTES_PER_PROCESS = 50_000_000
_COLLECTIVE_TIMEOUT_S = 1800  # torch.distributed's default


def tokenizing_plan(data_bytes: int, cores: int) -> tuple[int | None, int]:
    """(dataset_num_proc, collective timeout in seconds) for `data_bytes` of channel files on `cores` cores.

    The host's main process tokenizes while its other ranks wait in a collective (main_process_first), so
    the wait must outlast the tokenizing: one process per 50 MB up to every core, and a timeout of the
    default 30 minutes plus the time those processes need at 1 MB/s each. Small data stays in-process
    (starting workers costs more than it saves)."""
    processes = min(cores, -(-data_bytes // _BYTES_PER_PROCESS)) if data_bytes > _BYTES_PER_PROCESS else 1
    timeout = _COLLECTIVE_TIMEOUT_S + data_bytes // (_BYTES_PER_PROCESS_SECOND * processes)
    return (processes if processes > 1 else None), timeout
