"""How many tokens packing kept and how many it dropped, per dataset, for the job's log.

TRL's `bfd` packing truncates every example longer than a row and says nothing; `bfd_split` (used for raw
text) splits it instead. TRL reports neither figure, so while SFTTrainer prepares its datasets, its
`pack_dataset` is wrapped to sum the token counts going in and coming out (Arrow list lengths: no Python
loop over the rows).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PackedTokens:
    # (tokens in, tokens out, rows out) per packed dataset, in the order TRL packs them (train, then eval).
    datasets: list[tuple[int, int, int]] = field(default_factory=list)

    def report_lines(self) -> list[str]:
        lines = []
        for name, (tokens_in, tokens_out, rows) in zip(("train", "eval"), self.datasets, strict=False):
            lines.append(
                f"packing {name}: {tokens_out} tokens packed into {rows} rows, {tokens_in - tokens_out} tokens dropped"
            )
        return lines


def token_count(dataset: Any) -> int:
    import pyarrow.compute as pc

    column = dataset.data.column("input_ids")
    if dataset._indices is not None:
        # A shuffle or split keeps the table and maps row indices onto it: count only the mapped rows.
        column = pc.take(column, dataset._indices.column(0))
    return int(pc.sum(pc.list_value_length(column)).as_py() or 0)


@contextlib.contextmanager
def count_packed_tokens() -> Iterator[PackedTokens]:
    from trl.trainer import sft_trainer

    counts = PackedTokens()
    original = sft_trainer.pack_dataset

    def counting(dataset: Any, *args: Any, **kwargs: Any) -> Any:
        packed = original(dataset, *args, **kwargs)
        counts.datasets.append((token_count(dataset), token_count(packed), len(packed)))
        return packed

    sft_trainer.pack_dataset = counting
    try:
        yield counts
    finally:
        sft_trainer.pack_dataset = original
