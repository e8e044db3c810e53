"""trainstack's public API as data: every name `trainstack.platform` exports, its parameters, and the JSON Schemas
of the environment file and of the other config models it exports (pipeline.yaml's). tests/test_public_api.py holds
it against tests/snapshots/public_api.json, so a change to the API shows up as a diff that someone chose to make.
After a deliberate change (and its CHANGELOG entry):

    python -m trainstack.public_api > tests/snapshots/public_api.json
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from typing import Any

import trainstack.platform
from trainstack.config import EnvironmentConfig


def _parameters(function: Any) -> list[dict[str, Any]]:
    """Each parameter: name, kind, annotation (as written) and default, `self` left out."""
    rendered = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name == "self":
            continue
        entry: dict[str, Any] = {"name": parameter.name, "kind": parameter.kind.name.lower()}
        if parameter.annotation is not inspect.Parameter.empty:
            entry["annotation"] = str(parameter.annotation)
        if parameter.default is not inspect.Parameter.empty:
            entry["default"] = repr(parameter.default)
        rendered.append(entry)
    return rendered


def _describe(obj: Any) -> dict[str, Any]:
    if inspect.isclass(obj) and issubclass(obj, Exception):
        return {"kind": "exception", "bases": [base.__name__ for base in obj.__bases__]}
    if inspect.isclass(obj) and hasattr(obj, "model_json_schema"):
        # The environment model's fields are `config_schema` below; any other model (pipeline.yaml's, the
        # resource names) carries its own, so a change to its fields is a diff too.
        if obj is EnvironmentConfig:
            return {"kind": "config model", "schema": "config_schema"}
        return {"kind": "config model", "schema": obj.model_json_schema()}
    if inspect.isclass(obj) and dataclasses.is_dataclass(obj):
        return {
            "kind": "dataclass",
            "frozen": obj.__dataclass_params__.frozen,  # type: ignore[attr-defined]
            "fields": [{"name": f.name, "annotation": str(f.type)} for f in dataclasses.fields(obj)],
        }
    if inspect.isclass(obj):
        return {
            "kind": "class",
            "bases": [base.__name__ for base in obj.__bases__],
            "parameters": _parameters(obj.__init__),
        }
    return {
        "kind": "function",
        "parameters": _parameters(obj),
        "returns": str(inspect.signature(obj).return_annotation),
    }


def render() -> dict[str, Any]:
    return {
        "module": "trainstack.platform",
        "names": {name: _describe(getattr(trainstack.platform, name)) for name in sorted(trainstack.platform.__all__)},
        "config_schema": EnvironmentConfig.model_json_schema(),
    }


def render_text() -> str:
    return json.dumps(render(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render_text(), end="")
