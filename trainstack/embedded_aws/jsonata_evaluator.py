"""Gap: moto's Step Functions evaluates JSONata through a JVM bridge it ships disabled.

moto 5.2.5 leaves `_eval_jsonata` as `None`, so every `{% ... %}` expression dies with a TypeError. We plug
in the pure-Python `jsonata-python` evaluator, with the functions Step Functions adds to JSONata
(`trainstack/step_functions_jsonata.py`). moto also writes string variables into the JSONata
prelude unescaped (`$x := "<value>";`), so a value holding a quote or newline breaks the expression; we
encode them as JSON string literals instead.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from moto.stepfunctions.parser.asl.eval import states as moto_states
from moto.stepfunctions.parser.asl.eval import variable_store as moto_variable_store
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata

from trainstack.step_functions_jsonata import compile_expression


def evaluate(expression: str) -> Any:
    """Evaluate a complete JSONata expression (moto prepends the `$states`/variable bindings)."""
    try:
        result = compile_expression(expression).evaluate(None)
    except Exception as error:
        raise moto_jsonata.JSONataException("UNKNOWN", str(error)) from error
    # Round-trip through JSON so the result holds only plain dict/list/str/number values, as the JVM
    # bridge guarantees: moto compares and serialises it later.
    return json.loads(json.dumps(result))


def _timestamp(value: Any) -> str:
    # The context object holds datetimes (Execution.StartTime, State.EnteredTime); AWS renders them as
    # ISO 8601 UTC with milliseconds and a Z, e.g. 2019-03-26T20:14:13.192Z.
    if isinstance(value, dt.datetime):
        utc = value.astimezone(dt.UTC) if value.tzinfo else value
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    return str(value)


def encode_variable_declarations(bindings: dict[str, Any]) -> str:
    """`$name := <JSON literal>;` for each binding; JSON literals are valid JSONata literals."""
    return "".join(
        f"{name}:={json.dumps(value, separators=(',', ':'), default=_timestamp)};" for name, value in bindings.items()
    )


def apply() -> None:
    moto_jsonata._eval_jsonata = evaluate
    moto_jsonata.encode_jsonata_variable_declarations = encode_variable_declarations
    # Both modules imported the function by name, so patch their references too.
    moto_states.encode_jsonata_variable_declarations = encode_variable_declarations
    moto_variable_store.encode_jsonata_variable_declarations = encode_variable_declarations
