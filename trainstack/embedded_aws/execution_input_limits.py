"""Gap: moto takes any JSON as an execution's input; Step Functions bounds its size, and its parser its depth.

StartExecution's `input` is at most 262,144 bytes of UTF-8 (API reference: "Length constraints apply to the payload
size, and are expressed as bytes in UTF-8 encoding"); AWS refuses a bigger one with a ValidationException, the
member's value left out as for every sensitive member. moto stores it, and a deeply nested input then crashes the
JSONata evaluator mid-execution with a Python RecursionError (States.Runtime) instead of being refused. AWS
parses inputs with Jackson, whose default StreamReadConstraints allow 1,000 levels of nesting; we refuse deeper
input at StartExecution with InvalidExecutionInput, as moto refuses input that is not JSON. (AWS documents no
depth: 1,000 is the parser's default, and refusing at the door is the stricter reading.)
"""

from __future__ import annotations

from moto.stepfunctions.exceptions import InvalidExecutionInput, ValidationException

MAX_INPUT_BYTES = 262144
MAX_INPUT_DEPTH = 1000


def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in a JSON text, counted without recursion (brackets in strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def check_input(execution_input: str | None) -> None:
    if execution_input is None:
        return
    if len(execution_input.encode("utf-8", "surrogatepass")) > MAX_INPUT_BYTES:
        raise ValidationException(
            "1 validation error detected: Value at 'input' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_INPUT_BYTES}"
        )
    depth = nesting_depth(execution_input)
    if depth > MAX_INPUT_DEPTH:
        raise InvalidExecutionInput(
            f"Invalid State Machine Execution Input: 'Document nesting depth ({depth}) exceeds the maximum "
            f"allowed ({MAX_INPUT_DEPTH})'"
        )
