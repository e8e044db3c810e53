"""Which environment variables a run may set: the allow-list in `trainstack/schemas/run-environment-rules.json`.

A name is allowed only when the allow-list names it (a few exact names and framework families such as NCCL_*)
or the environment's `training.allowed_environment` does, and no `refused` group matches it. Interpreters,
libraries and tools read hundreds of variables, so no deny-list can be complete: the `refused` groups are the
documentation of why the common dangerous names are not allowed, and they win over both allow-lists, so a
platform team cannot allow PYTHONWARNINGS by mistake. One data file, read here, feeds the state machine's
validation (as a JSONata literal), the config check at synth, the schema and the README.
SageMaker's own limits on `Environment` are here too: it refuses a request outside them only at
CreateTrainingJob, the run input is refused before any job is created.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from trainstack.package_data import data_file

RULES = data_file("trainstack", "schemas/run-environment-rules.json")
# botocore's SageMaker model: Environment is a map of at most 100 entries, keys [a-zA-Z_][a-zA-Z0-9_]* of
# at most 512 characters, values of at most 512 characters.
MAX_ENVIRONMENT_ENTRIES = 100
MAX_ENVIRONMENT_KEY_LENGTH = 512
MAX_ENVIRONMENT_VALUE_LENGTH = 512
ENVIRONMENT_KEY_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]{0,511}$"
# An entry of training.allowed_environment: a name, or a family `PREFIX_*` (the prefix ends in `_`, so
# `MYTEAM_*` cannot also allow `MYTEAMX`).
ALLOWED_ENTRY_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*_\*$|^[A-Za-z_][A-Za-z0-9_]{0,511}$"


@dataclass(frozen=True)
class RefusedGroup:
    id: str
    reason: str
    names: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    any_case: bool = False

    def matches_without_words(self, name: str) -> bool:
        candidate = name.upper() if self.any_case else name
        return candidate in self.names or candidate.startswith(self.prefixes) or candidate.endswith(self.suffixes)

    def matches(self, name: str) -> bool:
        candidate = name.upper() if self.any_case else name
        return self.matches_without_words(name) or any(part in self.words for part in candidate.split("_"))


@cache
def _data() -> dict[str, Any]:
    return json.loads(RULES.read_text(encoding="utf-8"))


def platform_names() -> tuple[str, ...]:
    """Names the request sets on every job; a run's value would be silently replaced, so it is refused."""
    return tuple(_data()["platform"]["names"])


def platform_reason() -> str:
    return str(_data()["platform"]["reason"])


def allowed_names() -> tuple[str, ...]:
    return tuple(_data()["allowed"]["names"])


def allowed_families() -> tuple[str, ...]:
    return tuple(_data()["allowed"]["families"])


def allowed_reason() -> str:
    return str(_data()["allowed"]["reason"])


@cache
def refused_groups() -> tuple[RefusedGroup, ...]:
    return tuple(
        RefusedGroup(
            id=group["id"],
            reason=group["reason"],
            names=tuple(group.get("names", ())),
            prefixes=tuple(group.get("prefixes", ())),
            suffixes=tuple(group.get("suffixes", ())),
            words=tuple(group.get("words", ())),
            any_case=bool(group.get("any_case", False)),
        )
        for group in _data()["refused"]
    )


def refused_reason(name: str) -> str | None:
    """Why no run may set `name` whatever the environment allows, or None."""
    if name in platform_names():
        return platform_reason()
    for group in refused_groups():
        # A word names a file, folder or server in a family's names; the built-in exact names were read one by one.
        if group.matches(name) and not (name in allowed_names() and not group.matches_without_words(name)):
            return group.reason
    return None


def is_allowed(name: str, extra: Iterable[str] = ()) -> bool:
    """Whether a run may set `name`, given the environment's `training.allowed_environment` (`extra`)."""
    if refused_reason(name) is not None:
        return False
    extra = tuple(extra)
    prefixes = (*allowed_families(), *(entry[:-1] for entry in extra if entry.endswith("*")))
    return name in allowed_names() or name in extra or name.startswith(prefixes)


def allowed_summary(extra: Iterable[str] = ()) -> str:
    """The allow-list in words, for messages and the README."""
    families = ", ".join(f"{family}*" for family in allowed_families())
    text = f"{', '.join(allowed_names())}, the families {families}"
    extra = tuple(extra)
    return text + (f" and this environment's training.allowed_environment {', '.join(extra)}" if extra else "")


def allowed_entry_problems(entries: list[str], *, field: str) -> list[str]:
    """`training.allowed_environment`: each entry a name or `PREFIX_*`; none that a refused group matches."""
    problems = []
    for entry in entries:
        if not re.fullmatch(ALLOWED_ENTRY_PATTERN, entry):
            problems.append(
                f"{field}: {entry!r} is neither a variable name ([A-Za-z_][A-Za-z0-9_]*) nor a family PREFIX_*"
            )
        elif (reason := refused_reason(entry.rstrip("*"))) is not None:
            problems.append(f"{field}: {entry!r} can never be allowed: {reason}")
    return problems


def refused_pattern() -> str:
    """One regular expression matching every refused name (the schema's propertyNames `not` pattern; the
    allow-list itself depends on the environment's training.allowed_environment, which the schema cannot know)."""
    alternatives = [re.escape(name) for name in platform_names()]
    for group in refused_groups():
        text = _any_case if group.any_case else re.escape
        alternatives += [text(name) for name in group.names]
        alternatives += [text(prefix) + ".*" for prefix in group.prefixes]
        alternatives += [".*" + text(suffix) for suffix in group.suffixes]
        alternatives += [f"(.*_)?{text(word)}(_.*)?" for word in group.words]
    # The built-in names are never refused (a test keeps it so); a word inside one is not a file or server.
    builtin = "|".join(re.escape(name) for name in allowed_names())
    return f"^(?!({builtin})$)(" + "|".join(alternatives) + ")$"


def _any_case(text: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in text)


def jsonata_rules(extra: Iterable[str] = ()) -> dict[str, Any]:
    """The rules as the state machine's validation reads them (a JSONata literal)."""
    extra = tuple(extra)
    return {
        "platform": list(platform_names()),
        "platform_why": platform_reason(),
        "builtin": list(allowed_names()),
        "allowed": [*allowed_names(), *(entry for entry in extra if not entry.endswith("*"))],
        "families": [*allowed_families(), *(entry[:-1] for entry in extra if entry.endswith("*"))],
        "allowed_summary": allowed_summary(extra),
        "groups": [
            {
                "names": list(g.names),
                "prefixes": list(g.prefixes),
                "suffixes": list(g.suffixes),
                "words": list(g.words),
                "any_case": g.any_case,
                "why": g.reason,
            }
            for g in refused_groups()
        ],
        "max_entries": MAX_ENVIRONMENT_ENTRIES,
        "max_value": MAX_ENVIRONMENT_VALUE_LENGTH,
    }
