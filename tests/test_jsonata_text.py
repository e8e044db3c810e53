"""One-line JSONata (trainstack/platform/constructs/jsonata_text.py): same meaning, evaluated through the same
evaluator."""

from __future__ import annotations

import pytest

from trainstack.platform.constructs.jsonata_text import one_line, one_line_expressions
from trainstack.step_functions_jsonata import compile_expression


def _evaluate(expression: str, data: object) -> object:
    return compile_expression(expression).evaluate(data)


def test_line_breaks_outside_literals_become_one_space_and_literals_keep_their_spaces() -> None:
    expression = "(\n  $a := \"two  spaces\";\n  /* a\n     comment */\n  $a & ' and ' & x\n)"
    flat = one_line(expression)
    assert "\n" not in flat
    assert '"two  spaces"' in flat and "/* a comment */" in flat
    assert _evaluate(flat, {"x": "y"}) == _evaluate(expression, {"x": "y"}) == "two  spaces and y"


def test_escaped_quotes_and_line_breaks_written_as_escapes_survive() -> None:
    expression = '$join([\n  "say \\"hi\\"",\n  "a\\nb"\n], "|")'
    assert _evaluate(one_line(expression), {}) == _evaluate(expression, {}) == 'say "hi"|a\nb'


def test_a_literal_spanning_lines_is_refused_naming_the_line() -> None:
    with pytest.raises(ValueError, match=r"line 2"):
        one_line('$a &\n"one\ntwo"')


def test_only_expressions_of_a_definition_are_collapsed() -> None:
    asl = {"Comment": "keep\nthis", "States": {"S": {"Output": "{% 1 +\n 2 %}", "Arguments": ["{%\n$x\n%}"]}}}
    assert one_line_expressions(asl) == {
        "Comment": "keep\nthis",
        "States": {"S": {"Output": "{% 1 + 2 %}", "Arguments": ["{% $x %}"]}},
    }
