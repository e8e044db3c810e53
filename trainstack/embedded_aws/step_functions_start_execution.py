"""Gap: moto's optimized `arn:aws:states:::states:startExecution` task cannot start an execution.

The task's arguments are the API's in PascalCase (`StateMachineArn`, `Input`, `Name`; Step Functions Developer
Guide, "Start a new AWS Step Functions state machine from a running execution"), and its request-response result
is `{"ExecutionArn", "StartDate"}`. moto (LocalStack's port without its parameter conversion) hands the PascalCase
names to boto3, whose serializer, with validation off, fails on the first of them (`KeyError: 'StateMachineArn'`,
the task fails `States.Runtime`), and would hand back boto3's camelCase answer. We rename the arguments to the
API's member names and the answer's to what Step Functions returns. The pipeline continues long runs through it
(`trainstack/platform/constructs/run_continuation.py`).
"""

from __future__ import annotations

from typing import Any, Final

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)

_START_EXECUTION: Final[str] = "start_execution"
_ARGUMENTS: Final[dict[str, str]] = {
    "StateMachineArn": "stateMachineArn",
    "Input": "input",
    "Name": "name",
    "TraceHeader": "traceHeader",
}

_original_normalise_parameters = StateTaskServiceSfn._normalise_parameters
_original_normalise_response = StateTaskServiceSfn._normalise_response


def normalise_parameters(
    self: StateTaskServiceSfn,
    parameters: dict,
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    _original_normalise_parameters(self, parameters, boto_service_name, service_action_name)
    if service_action_name is None and self._get_boto_service_action() == _START_EXECUTION:
        for pascal, member in _ARGUMENTS.items():
            if pascal in parameters:
                parameters[member] = parameters.pop(pascal)


def normalise_response(
    self: StateTaskServiceSfn,
    response: Any,
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    _original_normalise_response(self, response, boto_service_name, service_action_name)
    if (
        service_action_name is None
        and self._get_boto_service_action() == _START_EXECUTION
        and isinstance(response, dict)
    ):
        arn, started = response.pop("executionArn", None), response.pop("startDate", None)
        if arn is not None:
            response["ExecutionArn"] = arn
        if started is not None:
            response["StartDate"] = started.isoformat() if hasattr(started, "isoformat") else started


def apply() -> None:
    StateTaskServiceSfn._normalise_parameters = normalise_parameters  # type: ignore[method-assign]
    StateTaskServiceSfn._normalise_response = normalise_response  # type: ignore[method-assign]
