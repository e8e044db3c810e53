"""Gap: moto names an execution started without `name` "None" (ARN `...:execution:<machine>:None`).

AWS generates a UUID. Without it `$states.context.Execution.Name` is null and a second unnamed
execution collides with the first. We generate the name before moto sees the request.
"""

from __future__ import annotations

import uuid
from typing import Any

from moto.stepfunctions.parser.models import StepFunctionsParserBackend

_original_start_execution = StepFunctionsParserBackend.start_execution


def start_execution(
    self: StepFunctionsParserBackend, state_machine_arn: str, name: str | None = None, *args: Any, **kwargs: Any
) -> Any:
    return _original_start_execution(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)


def apply() -> None:
    StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]
