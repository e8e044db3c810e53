"""Which environment variables a run may set: the deny-list in `schemas/run-environment-deny-list.json`.

One data file, read here, feeds the state machine's validation (as a JSONata literal), the config check
at synth (`training.environment`), the schema's `propertyNames` (a test keeps them equal) and the README.
SageMaker's own limits on `Environment` are here too: it refuses a request outside them only at
CreateTrainingJob, the run input is refused before any job is created.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DENY_LIST_PATH = Path(__file__).resolve().parents[1] / "schemas" / "run-environment-deny-list.json"
# botocore's SageMaker model: Environment is a map of at most 100 entries, keys [a-zA-Z_][a-zA-Z0-9_]* of
# at most 512 characters, values of at most 512 characters.
MAX_ENVIRONMENT_ENTRIES = 100
MAX_ENVIRONMENT_KEY_LENGTH = 512
MAX_ENVIRONMENT_VALUE_LENGTH = 512
ENVIRONMENT_KEY_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]{0,511}$"


@dataclass(frozen=True)
class DenyGroup:
    id: str
    reason: str
    names: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    any_case: bool = False

    def matches(self, name: str) -> bool:
        candidate = name.upper() if self.any_case else name
        return candidate in self.names or candidate.startswith(self.prefixes) or candidate.endswith(self.suffixes)


@cache
def _data() -> dict[str, Any]:
    return json.loads(DENY_LIST_PATH.read_text(encoding="utf-8"))


def platform_names() -> tuple[str, ...]:
    """Names the request sets on every job; a run's value would be silently replaced, so it is refused."""
    return tuple(_data()["platform"]["names"])


def platform_reason() -> str:
    return str(_data()["platform"]["reason"])


@cache
def deny_groups() -> tuple[DenyGroup, ...]:
    return tuple(
        DenyGroup(
            id=group["id"],
            reason=group["reason"],
            names=tuple(group.get("names", ())),
            prefixes=tuple(group.get("prefixes", ())),
            suffixes=tuple(group.get("suffixes", ())),
            any_case=bool(group.get("any_case", False)),
        )
        for group in _data()["groups"]
    )


def denied_reason(name: str) -> str | None:
    """Why a run may not set `name`, or None when it may."""
    if name in platform_names():
        return platform_reason()
    for group in deny_groups():
        if group.matches(name):
            return group.reason
    return None


def deny_pattern() -> str:
    """One regular expression matching every refused name (the schema's propertyNames `not` pattern)."""
    alternatives = [re.escape(name) for name in platform_names()]
    for group in deny_groups():
        for name in group.names:
            alternatives.append(_any_case(name) if group.any_case else re.escape(name))
        for prefix in group.prefixes:
            alternatives.append((_any_case(prefix) if group.any_case else re.escape(prefix)) + ".*")
        for suffix in group.suffixes:
            alternatives.append(".*" + (_any_case(suffix) if group.any_case else re.escape(suffix)))
    return "^(" + "|".join(alternatives) + ")$"


def _any_case(text: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in text)


def jsonata_rules() -> dict[str, Any]:
    """The deny-list as the state machine's validation reads it (a JSONata literal)."""
    return {
        "platform": list(platform_names()),
        "groups": [
            {
                "names": list(g.names),
                "prefixes": list(g.prefixes),
                "suffixes": list(g.suffixes),
                "any_case": g.any_case,
                "why": g.reason,
            }
            for g in deny_groups()
        ],
        "max_entries": MAX_ENVIRONMENT_ENTRIES,
        "max_value": MAX_ENVIRONMENT_VALUE_LENGTH,
    }


def environment_problems(environment: dict[str, str], *, field: str) -> list[str]:
    """The same rules for `training.environment` in config/ (Python, at synth)."""
    problems: list[str] = []
    for name, value in environment.items():
        if not re.fullmatch(ENVIRONMENT_KEY_PATTERN, name):
            problems.append(f"{field}.{name}: variable names must match [a-zA-Z_][a-zA-Z0-9_]*, at most 512 characters")
        elif (reason := denied_reason(name)) is not None:
            problems.append(f"{field}.{name}: not allowed: {reason}")
        if len(value) > MAX_ENVIRONMENT_VALUE_LENGTH:
            problems.append(f"{field}.{name}: values are at most {MAX_ENVIRONMENT_VALUE_LENGTH} characters")
    # The platform adds its own names to every job's Environment.
    room = MAX_ENVIRONMENT_ENTRIES - len(platform_names())
    if len(environment) > room:
        problems.append(
            f"{field}: at most {room} variables (SageMaker allows {MAX_ENVIRONMENT_ENTRIES}, the platform sets "
            f"{', '.join(platform_names())}), got {len(environment)}"
        )
    return problems
