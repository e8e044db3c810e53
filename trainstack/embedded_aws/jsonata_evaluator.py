"""Gap: moto's Step Functions evaluates JSONata through a JVM bridge it ships disabled.

moto 5.2.5 leaves `_eval_jsonata` as `None`, so every `{% ... %}` expression dies with a TypeError. We plug
in the pure-Python `jsonata-python` evaluator, with the functions Step Functions adds to JSONata
(`trainstack/step_functions_jsonata.py`). moto also writes string variables into the JSONata
prelude unescaped (`$x := "<value>";`), so a value holding a quote or newline breaks the expression; we
encode them as JSON string literals instead.

moto binds `$states` and the workflow variables by writing them into the expression's text
(`($states:={...};$run:={...};<expression>)`), so every evaluation is a new text that jsonata-python would
tokenize and parse in pure Python, the bound data included (a look over 150 retained pools: seconds). Our
declarations are therefore each a marked `$name:=<JSON>;` that `evaluate` takes out again: it reads the JSON
with `jsonata_literal` and binds it in a frame around the expression, and compiles the rest, which is the
same text every time, once. Where the two readings could differ it evaluates the text as moto composed it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from typing import Any, Final

from moto.stepfunctions.parser.asl.eval import states as moto_states
from moto.stepfunctions.parser.asl.eval import variable_store as moto_variable_store
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata

from trainstack.step_functions_jsonata import NotAJsonataLiteral, compile_expression, jsonata_literal

# A declaration travels through moto's string concatenation as OPEN + "$name:=<JSON>;" + CLOSE. JSON text and
# variable names hold no NUL, and the random part keeps an expression's own text from ever reading as a marker.
_OPEN: Final[str] = f"\x00{secrets.token_hex(8)}:"
_CLOSE: Final[str] = "\x00"


def _marked(expression: str) -> tuple[str, list[tuple[str, str]]]:
    """The text before the first declaration, then each declaration with the text that follows it."""
    first, *marked = expression.split(_OPEN)
    return first, [(part.partition(_CLOSE)[0], part.partition(_CLOSE)[2]) for part in marked]


def _bound(before: str, declarations: list[tuple[str, str]]) -> tuple[str, dict[str, Any]] | None:
    """The text to compile and the frame to evaluate it in; None where that would not mean what moto's text does.

    moto opens a block with the intrinsic functions an expression uses (`$partition:=function...;`), then the
    declarations, one after the other, then the expression; the validations wrap all of it (`$exists((...))`).
    Bound in a frame around that, a declaration reads as it did at the block's start unless the text before it
    names the same variable (a declaration there was shadowed by this one; a call there did not see it).
    """
    bindings: dict[str, Any] = {}
    for index, (declaration, after) in enumerate(declarations):
        name, _, literal = declaration.partition(":=")
        if (after and index < len(declarations) - 1) or re.search(re.escape(name) + r"(?![A-Za-z0-9_])", before):
            return None
        try:
            bindings[name.removeprefix("$")] = jsonata_literal(literal.removesuffix(";"))
        except NotAJsonataLiteral:
            return None
    return before + (declarations[-1][1] if declarations else ""), bindings


def evaluate(expression: str) -> Any:
    """Evaluate a complete JSONata expression (moto prepends the `$states`/variable bindings)."""
    before, declarations = _marked(expression)
    try:
        bound = _bound(before, declarations)
        if bound is None:
            composed = before + "".join(declaration + after for declaration, after in declarations)
            result = compile_expression(composed).evaluate(None)
        else:
            text, bindings = bound
            result = compile_expression(text).evaluate(None, bindings)
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
    """A marked `$name:=<JSON literal>;` for each binding; JSON literals are valid JSONata literals."""
    return "".join(
        f"{_OPEN}{name}:={json.dumps(value, separators=(',', ':'), default=_timestamp)};{_CLOSE}"
        for name, value in bindings.items()
    )


def apply() -> None:
    moto_jsonata._eval_jsonata = evaluate
    moto_jsonata.encode_jsonata_variable_declarations = encode_variable_declarations
    # Both modules imported the function by name, so patch their references too.
    moto_states.encode_jsonata_variable_declarations = encode_variable_declarations
    moto_variable_store.encode_jsonata_variable_declarations = encode_variable_declarations
