"""Gap: moto names an execution started without `name` "None" (ARN `...:execution:<machine>:None`).

AWS generates a UUID. Without it `$states.context.Execution.Name` is null and a second unnamed
execution collides with the first. We generate the name before moto sees the request.

Gap: moto's Step Functions parser backend skips the name check its older backend makes, so a name AWS refuses
(white space, brackets, wildcards, special and control characters: botocore's StartExecution `name`) was
accepted offline. A given name is checked with moto's own `_validate_name` (InvalidName, "Invalid Name: '...'").
And input that is not JSON (botocore: "you still must include the two braces") raised an exception the parser
backend cannot serialize (an UnknownError): it is InvalidExecutionInput, worded as moto's older backend does.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from moto.stepfunctions.exceptions import InvalidExecutionInput
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

_original_start_execution = StepFunctionsParserBackend.start_execution


def start_execution(
    self: StepFunctionsParserBackend,
    state_machine_arn: str,
    name: str | None = None,
    execution_input: str | None = None,
    *args: Any,
    **kwargs: Any,
) -> Any:
    if name:
        self._validate_name(name)
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
