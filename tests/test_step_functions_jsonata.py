"""trainstack/step_functions_jsonata.py: values bound as JSONata reads their JSON, and parses shared safely."""

from __future__ import annotations

import json
from typing import Any

import jsonata
import pytest
from jsonata.utils import Utils

from trainstack.step_functions_jsonata import NotAJsonataLiteral, compile_expression, jsonata_literal

# Values whose JSONata reading differs from json.loads: numbers (integral floats are ints, big ints pass
# through a float), null, arrays, characters beyond U+FFFF (UTF-16 surrogates), lone surrogates, escapes.
TRICKY = [
    0,
    -0.0,
    -5,
    2.0,
    -2.5,
    1e-7,
    1e300,
    2**53 + 1,
    -(2**63) - 1,
    True,
    None,
    "",
    "é",
    "a😀b\U0010ffff",
    "\ud83d",
    '\u0000\n\t"\\/\u2028',
    [],
    [[]],
    [None, [1, [2, []]], {}],
    {"😀": [None, {"a": None}], "": 1.5, 'k"ey': [[]]},
]


def _read_as_literal(text: str) -> Any:
    """What jsonata-python makes of the JSON `text` written into an expression (nulls unconverted)."""
    expression = jsonata.Jsonata(f"($x := {text}; $x)")
    expression.set_output_convert_nulls(False)
    return expression.evaluate(None)


def _shape(value: Any) -> Any:
    """The value with every type and JList flag spelled out, so equal shapes mean identical readings."""
    if isinstance(value, list):
        flags = tuple(getattr(value, flag, None) for flag in ("sequence", "cons", "keep_singleton", "outer_wrapper"))
        return (type(value).__name__, flags, [_shape(item) for item in value])
    if isinstance(value, dict):
        return ("dict", [(key, _shape(item)) for key, item in value.items()])
    return (type(value).__name__, value if value is not Utils.NULL_VALUE else "NULL_VALUE")


@pytest.mark.parametrize("value", TRICKY, ids=[json.dumps(value)[:24] for value in TRICKY])
def test_a_bound_literal_is_the_value_the_expression_text_would_give(value: Any) -> None:
    text = json.dumps(value, separators=(",", ":"))
    assert _shape(jsonata_literal(text)) == _shape(_read_as_literal(text))


def test_an_emoji_binds_as_two_utf16_units_as_in_the_text() -> None:
    bound = compile_expression("$length($s)").evaluate(None, {"s": jsonata_literal(json.dumps("😀"))})
    assert bound == compile_expression(f"($s := {json.dumps('😀')}; $length($s))").evaluate(None) == 2


@pytest.mark.parametrize("text", ["NaN", "[1,-Infinity]", '{"a":1,"a":2}'])
def test_json_that_jsonata_reads_otherwise_is_refused(text: str) -> None:
    with pytest.raises(NotAJsonataLiteral):
        jsonata_literal(text)


def test_each_compiled_copy_evaluates_afresh() -> None:
    # A top-level `:=` binds in the evaluation's frame: a shared parse must not carry it to the next caller.
    counter = "$n := ($exists($n) ? $n : 0) + 1"
    assert [compile_expression(counter).evaluate(None) for _ in range(3)] == [1, 1, 1]
    assert compile_expression(counter) is not compile_expression(counter)
    assert compile_expression("$hash('a', 'MD5')").evaluate(None) == "0cc175b9c0f1b6a831c399e269772661"
