"""Regenerates the shipped demo text: `trainstack/data/corpus.txt` (the tiny tokenizer's training text, shipped
with the package: `trainstack smoke` builds the tiny model from it) and the sample
`train`/`val` JSONL channels.

Templated sentences over a small vocabulary, so a 2-layer model's loss visibly falls within a few dozen
steps. Seeded: running it again rewrites byte-identical files (a test checks this).

    python examples/data/make_sample.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
CORPUS = DATA_DIR.parent.parent / "trainstack" / "data" / "corpus.txt"

SUBJECTS = ("the cat", "the dog", "a bird", "the robot", "my friend", "the farmer", "a child", "the teacher")
VERBS = ("sees", "likes", "follows", "finds", "carries", "watches", "paints", "builds")
OBJECTS = (
    "a red ball",
    "the green box",
    "a small house",
    "the old tree",
    "a blue boat",
    "the bright lamp",
    "a tall tower",
    "the quiet river",
)
PLACES = ("in the park", "near the lake", "at the station", "on the hill", "under the bridge", "in the garden")
TIMES = ("today", "every morning", "at night", "on sunday", "after lunch", "before dinner")


def sentence(rng: random.Random) -> str:
    """One short templated line; two clauses now and then so examples vary in length."""
    first = " ".join(rng.choice(words) for words in (SUBJECTS, VERBS, OBJECTS, PLACES, TIMES)) + "."
    if rng.random() < 0.3:
        first += f" then {rng.choice(SUBJECTS)} {rng.choice(VERBS)} it {rng.choice(PLACES)}."
    return first[0].upper() + first[1:]


def lines(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)  # noqa: S311 -- reproducible demo text, not secrets
    return [sentence(rng) for _ in range(count)]


def write_jsonl(path: Path, texts: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts), encoding="utf-8")


def main() -> None:
    # Distinct seeds: the tokenizer corpus, the training set and the validation set are separate draws.
    CORPUS.write_text("\n".join(lines(seed=1, count=400)) + "\n", encoding="utf-8")
    write_jsonl(DATA_DIR / "sample" / "train" / "train.jsonl", lines(seed=2, count=320))
    write_jsonl(DATA_DIR / "sample" / "val" / "val.jsonl", lines(seed=3, count=64))


if __name__ == "__main__":
    main()
