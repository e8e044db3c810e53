"""Text data from a channel folder: read and check it, then tokenize and pack it into training blocks.

Accepted files, read in sorted order from the channel folder and its subfolders:
- `.jsonl` / `.json`: one JSON object per line, the text under `--text_field` (default `text`);
- `.txt`: one example per non-empty line.
Anything wrong is a DataError naming the channel, the file and the line, because that sentence becomes
the job's FailureReason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from errors import DataError
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase

JSON_LINES_SUFFIXES = (".jsonl", ".json")
TEXT_SUFFIXES = (".txt",)


def read_texts(channel: str, directory: Path, text_field: str) -> list[str]:
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
    texts: list[str] = []
    for path in files:
        name = path.relative_to(directory).as_posix()
        if path.suffix.lower() in TEXT_SUFFIXES:
            texts.extend(line for line in _lines(channel, name, path) if line.strip())
        else:
            texts.extend(_json_lines(channel, name, path, text_field))
    if not texts:
        raise DataError(f"the {channel} channel's files in {directory} contain no text")
    return texts


def _lines(channel: str, name: str, path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise DataError(f"{channel} channel, {name}: not UTF-8 text (byte {error.start})") from error


def _json_lines(channel: str, name: str, path: Path, text_field: str) -> list[str]:
    texts = []
    for number, line in enumerate(_lines(channel, name, path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{channel} channel, {name} line {number}: not valid JSON ({error.msg})") from error
        if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
            raise DataError(
                f"{channel} channel, {name} line {number}: expected a JSON object with a string "
                f"{text_field!r} field (set the text_field hyperparameter if the key differs)"
            )
        texts.append(record[text_field])
    return texts


class PackedBlocks(Dataset[dict[str, torch.Tensor]]):
    """Fixed-length blocks of token ids; each block is its own label sequence (causal LM)."""

    def __init__(self, blocks: torch.Tensor) -> None:
        self.blocks = blocks

    def __len__(self) -> int:
        return self.blocks.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        block = self.blocks[index]
        return {"input_ids": block, "labels": block.clone(), "attention_mask": torch.ones_like(block)}

    @property
    def num_tokens(self) -> int:
        return self.blocks.numel()


def pack(channel: str, texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, block_size: int) -> PackedBlocks:
    """Tokenize, join with EOS and cut into `block_size` blocks, as run_clm's `group_texts` does.

    Packing keeps every token a training token (no padding) and makes each step's token count exact.
    """
    if tokenizer.eos_token_id is None:
        raise DataError("the tokenizer has no EOS token to separate packed examples")
    ids: list[int] = []
    for encoded in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        ids.extend(encoded)
        ids.append(tokenizer.eos_token_id)
    usable = len(ids) // block_size * block_size
    if usable == 0:
        raise DataError(
            f"the {channel} channel has {len(ids)} tokens, fewer than one block of block_size={block_size}; "
            "add data or lower block_size"
        )
    return PackedBlocks(torch.tensor(ids[:usable], dtype=torch.long).view(-1, block_size))
