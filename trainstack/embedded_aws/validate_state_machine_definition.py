"""Gap: moto 5.2.5 routes no `ValidateStateMachineDefinition` (NotImplementedError, HTTP 500).

Answers it in AWS's shape (`result` OK | FAIL, `diagnostics` [{severity, code, message, location}],
`truncated`) from what can be checked offline:
- the definition is JSON (`INVALID_JSON_DESCRIPTION`);
- moto's ASL parser and static analyser accept it, the checks moto's `CreateStateMachine` runs
  (`SCHEMA_VALIDATION_FAILED`): grammar, state types and fields;
- `StartAt`, `Next`, `Default` and Catch/Choice targets name a state of the same scope
  (`MISSING_TRANSITION_TARGET`), in nested Map and Parallel scopes too;
- every JSONata expression (`{% ... %}`) compiles with jsonata-python (`SCHEMA_VALIDATION_FAILED`, located
  at the JSON pointer of the string).
What the real API also checks and this does not: the optimized integrations' parameter allow-lists,
intrinsic-function and JSONPath details, resource ARN formats, reachability and WARNING-level diagnostics
(see the embedded AWS README).
"""

from __future__ import annotations

import json
from typing import Any

import jsonata
from moto.stepfunctions.parser.asl.parse.asl_parser import ASLParserException
from moto.stepfunctions.parser.asl.static_analyser.express_static_analyser import ExpressStaticAnalyser
from moto.stepfunctions.parser.asl.static_analyser.static_analyser import StaticAnalyser

_TARGET = "AWSStepFunctions.ValidateStateMachineDefinition"


def _jsonata_strings(value: Any, pointer: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _jsonata_strings(item, f"{pointer}/{key}")]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in _jsonata_strings(item, f"{pointer}/{index}")]
    if isinstance(value, str) and value.strip().startswith("{%") and value.strip().endswith("%}"):
        return [(pointer, value.strip()[2:-2])]
    return []


def _missing_targets(scope: dict[str, Any], pointer: str) -> list[dict[str, str]]:
    """Transitions to states that do not exist in `scope` (a state machine, branch or item processor)."""
    states = scope.get("States") if isinstance(scope.get("States"), dict) else {}
    found: list[dict[str, str]] = []

    def check(target: Any, where: str) -> None:
        if isinstance(target, str) and target not in states:
            found.append(
                {
                    "severity": "ERROR",
                    "code": "MISSING_TRANSITION_TARGET",
                    "message": f"Missing 'Next' target: {target}",
                    "location": where,
                }
            )

    check(scope.get("StartAt"), f"{pointer}/StartAt")
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        at = f"{pointer}/States/{name}"
        check(state.get("Next"), f"{at}/Next")
        check(state.get("Default"), f"{at}/Default")
        for key in ("Choices", "Catch"):
            for index, rule in enumerate(state.get(key) or []):
                check(rule.get("Next") if isinstance(rule, dict) else None, f"{at}/{key}/{index}/Next")
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                found.extend(_missing_targets(state[key], f"{at}/{key}"))
        for index, branch in enumerate(state.get("Branches") or []):
            if isinstance(branch, dict):
                found.extend(_missing_targets(branch, f"{at}/Branches/{index}"))
    return found


def validate(definition: str, machine_type: str = "STANDARD") -> dict[str, Any]:
    diagnostics: list[dict[str, str]] = []
    try:
        parsed = json.loads(definition)
    except ValueError as error:
        diagnostics.append({"severity": "ERROR", "code": "INVALID_JSON_DESCRIPTION", "message": str(error)})
        return {"result": "FAIL", "diagnostics": diagnostics, "truncated": False}
    analyser = ExpressStaticAnalyser() if machine_type == "EXPRESS" else StaticAnalyser()
    try:
        analyser.analyse(definition)
    except ASLParserException as error:
        diagnostics.append({"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED", "message": repr(error)})
    except Exception as error:  # moto's preprocessor raises plain exceptions for fields it cannot build
        message = f"{type(error).__name__}: {error}"
        diagnostics.append({"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED", "message": message})
    if isinstance(parsed, dict):
        diagnostics.extend(_missing_targets(parsed, ""))
    for pointer, expression in _jsonata_strings(parsed):
        try:
            jsonata.Jsonata(expression)
        except Exception as error:  # jsonata-python raises its own JException for syntax errors
            diagnostics.append(
                {
                    "severity": "ERROR",
                    "code": "SCHEMA_VALIDATION_FAILED",
                    "message": f"The JSONata expression is invalid: {error}",
                    "location": pointer,
                }
            )
    return {"result": "FAIL" if diagnostics else "OK", "diagnostics": diagnostics, "truncated": False}


class ValidateDefinitionHandler:
    def handle(self, target: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        if target != _TARGET:
            return None
        return validate(str(payload.get("definition", "")), str(payload.get("type") or "STANDARD"))
