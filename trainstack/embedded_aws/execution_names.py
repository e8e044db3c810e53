"""Gaps: moto names an execution started without `name` "None", accepts names Step Functions refuses, and fails
on input that is not JSON with an error it cannot serialize.

AWS generates a UUID for an unnamed execution. Without it `$states.context.Execution.Name` is null and a
second unnamed execution collides with the first. We generate the name before moto sees the request.

StartExecution's `name` (botocore's documentation of the member) must not contain white space, brackets,
wildcards, `" # % \\ ^ | ~ ` $ & , ; : /`, control characters (U+0000-001F, U+007F-009F, U+FFFE-FFFF) or
surrogates (U+D800-DFFF), and is 1 to 80 characters; anything else (an emoji) AWS accepts. moto's Step Functions
parser backend skips the name check its older backend makes (whose list also misses U+FFFE-FFFF, surrogates and
white space other than U+0020). We refuse them as AWS words it (InvalidName), count length in UTF-16 units (Java's
String.length(): an emoji is two, the stricter reading) and take "white space" as any Unicode white space.

Input that is not JSON (botocore: "you still must include the two braces") raised an exception the parser
backend cannot serialize (an UnknownError): it is InvalidExecutionInput, worded as moto's older backend does.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import regex
from moto.stepfunctions.exceptions import (
    InvalidExecutionInput,
    InvalidName,
    NameTooLongException,
    ValidationException,
)
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from .execution_input_limits import check_input

MAX_NAME_LENGTH = 80
# AWS's list, character for character.
REFUSED_IN_NAME = regex.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1F\x7F-\x9F\uFFFE\uFFFF\p{Cs}]", regex.VERSION1)

_original_start_execution = StepFunctionsParserBackend.start_execution


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def check_name(name: str) -> None:
    """Refuse the names Step Functions refuses."""
    if not name:
        raise ValidationException(
            "1 validation error detected: Value '' at 'name' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1"
        )
    if REFUSED_IN_NAME.search(name):
        raise InvalidName(f"Invalid Name: '{name}'")
    if utf16_length(name) > MAX_NAME_LENGTH:
        raise NameTooLongException(name)


def start_execution(
    self: StepFunctionsParserBackend,
    state_machine_arn: str,
    name: str | None = None,
    execution_input: str | None = None,
    *args: Any,
    **kwargs: Any,
) -> Any:
    # Size and depth first, as AWS validates the request's members before it reads the input's JSON.
    check_input(execution_input)
    if name is not None:
        check_name(name)
    if execution_input is not None:
        try:
            json.loads(execution_input)
        except ValueError as error:
            raise InvalidExecutionInput(f"Invalid State Machine Execution Input: '{error}'") from error
    return _original_start_execution(
        self, state_machine_arn, name or str(uuid.uuid4()), execution_input, *args, **kwargs
    )


def apply() -> None:
    StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]
