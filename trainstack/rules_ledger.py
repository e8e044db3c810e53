"""The ledger of documented rules: every constraint sentence botocore's documentation states for a member of a
request the platform sends, and how each is handled (trainstack/data/rules_ledger.json).

AWS states many of its rules in prose only (botocore's member documentation), not in the model's
min/max/pattern/enum, which the embedded SageMaker already enforces generically. This walks the input
shapes of the operations the platform calls (CreateTrainingJob, UpdateTrainingJob, CreateNotebookInstance,
StartExecution), keeps each sentence that states a constraint (can't, must, only, at most, up to, maximum, ...),
and joins it with its classification:

- `enforced`: the embedded AWS refuses a request that breaks it; `test` names the test that shows it;
- `cannot-arise`: the platform never sends what would break it; `why` says why;
- `not-modelled`: the embedded AWS does not check it; `why` says why that is acceptable.

A sentence without a classification is `unclassified`: tests/test_rules_ledger.py fails on any, so a new
botocore's new sentences show up there. `python -m trainstack.rules_ledger` prints the ledger (or, with
`--unclassified`, only what needs classifying, as JSON entries to fill in).
"""

from __future__ import annotations

import html
import json
import re
import sys
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import botocore.session
from botocore.model import Shape

# The requests the platform sends: (botocore service, operation).
OPERATIONS = (
    ("sagemaker", "CreateTrainingJob"),
    ("sagemaker", "UpdateTrainingJob"),
    ("sagemaker", "CreateNotebookInstance"),
    ("stepfunctions", "StartExecution"),
    # The smoke kit's check of the Train state (trainstack/smoke.py).
    ("stepfunctions", "TestState"),
)
STATUSES = ("enforced", "cannot-arise", "not-modelled")
_CONSTRAINT = re.compile(
    r"\b(can't|cannot|can not|must|only|at most|up to|maximum|minimum|at least|not supported|no more than|"
    r"exceed\w*|limit\w*|between|required|don't|do not|not allowed|mutually exclusive|exactly one)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"(<])")


@dataclass(frozen=True)
class Sentence:
    operation: str
    member: str  # dotted path from the request's root; list items and map values take their container's path
    text: str

    @property
    def key(self) -> str:
        return f"{self.operation} {self.member}: {self.text}"


@dataclass(frozen=True)
class Entry:
    sentence: Sentence
    status: str  # one of STATUSES, or "unclassified"
    test: str = ""
    why: str = ""


def constraint_sentences(documentation: str) -> list[str]:
    """The sentences of a member's HTML documentation that state a constraint, as plain text."""
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", documentation or ""))).strip()
    return [part.strip() for part in _SENTENCE_END.split(text) if _CONSTRAINT.search(part)]


def _walk(shape: Shape, path: str, seen: frozenset[str], found: list[tuple[str, str]]) -> None:
    if shape.type_name == "structure":
        if shape.name in seen:
            return  # recursive shapes: each structure once per branch
        seen = seen | {shape.name}
        for name, member in shape.members.items():
            member_path = f"{path}.{name}" if path else name
            found.extend((member_path, sentence) for sentence in constraint_sentences(member.documentation))
            _walk(member, member_path, seen, found)
    elif shape.type_name == "list":
        _walk(shape.member, path, seen, found)
    elif shape.type_name == "map":
        _walk(shape.value, path, seen, found)


def sentences() -> list[Sentence]:
    """Every constraint sentence of every member of the platform's requests, in model order, without repeats."""
    session = botocore.session.get_session()
    listed: dict[str, Sentence] = {}
    for service, operation in OPERATIONS:
        found: list[tuple[str, str]] = []
        _walk(session.get_service_model(service).operation_model(operation).input_shape, "", frozenset(), found)
        for member, text in found:
            sentence = Sentence(operation, member, text)
            listed.setdefault(sentence.key, sentence)
    return list(listed.values())


@cache
def classifications() -> dict[str, dict[str, str]]:
    """The committed classifications, by sentence key."""
    raw = json.loads(resources.files("trainstack.data").joinpath("rules_ledger.json").read_text())
    return {f"{c['operation']} {c['member']}: {c['sentence']}": c for c in raw["sentences"]}


def ledger() -> list[Entry]:
    entries = []
    known = classifications()
    for sentence in sentences():
        found = known.get(sentence.key)
        if found is None:
            entries.append(Entry(sentence, "unclassified"))
        else:
            entries.append(Entry(sentence, found["status"], found.get("test", ""), found.get("why", "")))
    return entries


def stale() -> list[str]:
    """Classified sentences botocore no longer states (its wording changed, or the member went away)."""
    current = {sentence.key for sentence in sentences()}
    return [key for key in classifications() if key not in current]


def _as_data(sentence: Sentence) -> dict[str, Any]:
    return {"operation": sentence.operation, "member": sentence.member, "sentence": sentence.text}


def main(argv: list[str]) -> int:
    entries = ledger()
    if "--unclassified" in argv:
        todo = [dict(_as_data(e.sentence), status="", why="") for e in entries if e.status == "unclassified"]
        print(json.dumps(todo, indent=2))
        return 1 if todo else 0
    for entry in entries:
        reason = entry.test or entry.why
        print(f"[{entry.status}] {entry.sentence.operation} {entry.sentence.member}: {entry.sentence.text}")
        if reason:
            print(f"    -> {reason}")
    counts = {status: sum(e.status == status for e in entries) for status in (*STATUSES, "unclassified")}
    print(", ".join(f"{count} {status}" for status, count in counts.items()))
    return 1 if counts["unclassified"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
