"""JSONata as deployed: every `{% ... %}` expression of a definition on one line.

The expressions are written over many lines to be read; asl-validator 4.0 refuses newlines inside `{% %}` and
whether AWS accepts them is unconfirmed, so the definition a stack deploys holds each on one line. Collapsing
must not change what an expression means: whitespace inside a string literal is kept as written, a newline inside
one is refused (write `"\\n"`), and comments are kept, on the same line.
"""

from __future__ import annotations

from typing import Any


def one_line(expression: str) -> str:
    """`expression` with every run of whitespace that holds a line break, outside string literals, as one space."""
    out: list[str] = []
    index, length = 0, len(expression)
    while index < length:
        char = expression[index]
        if char in "\"'":
            end = _string_end(expression, index)
            literal = expression[index:end]
            if "\n" in literal:
                line = expression.count("\n", 0, index) + 1
                raise ValueError(
                    f"a string literal spans lines (line {line}); write the line break as \\n: {literal!r}"
                )
            out.append(literal)
            index = end
        elif expression.startswith("/*", index):
            end = expression.find("*/", index + 2)
            if end < 0:
                raise ValueError("a comment is not closed")
            out.append(" ".join(expression[index : end + 2].split()))
            index = end + 2
        elif char.isspace():
            end = index
            while end < length and expression[end].isspace():
                end += 1
            run = expression[index:end]
            out.append(" " if "\n" in run or "\r" in run else run)
            index = end
        else:
            out.append(char)
            index += 1
    return "".join(out).strip()


def _string_end(expression: str, start: int) -> int:
    quote, index = expression[start], start + 1
    while index < len(expression):
        if expression[index] == "\\":
            index += 2
            continue
        if expression[index] == quote:
            return index + 1
        index += 1
    raise ValueError(f"a string literal is not closed: {expression[start : start + 40]!r}")


def one_line_expressions(value: Any) -> Any:
    """A copy of an ASL document (or any part of one) with every `{% %}` string on one line."""
    if isinstance(value, dict):
        return {key: one_line_expressions(item) for key, item in value.items()}
    if isinstance(value, list):
        return [one_line_expressions(item) for item in value]
    if isinstance(value, str) and value.lstrip().startswith("{%"):
        return one_line(value)
    return value
