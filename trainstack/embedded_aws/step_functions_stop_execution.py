"""Gap: a StopExecution that lands while a task is running can end the execution FAILED in moto.

On AWS, StopExecution ends a running execution ABORTED, with the error and cause it was given (StopExecution API
reference). moto's worker stops the program, but the task state it interrupts may still raise (seen: "pop from
empty list", States.Runtime), and the worker then reports the program's error: DescribeExecution says FAILED, and
the pool cleanup and `trainstack stop` see a failure the user never had. Once stopped, the execution stays
ABORTED, whatever the interrupted task raises afterwards.
"""

from __future__ import annotations

import datetime
from typing import Any

from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

_original_stop = Execution.stop
_original_reflect = BaseExecutionWorkerCommunication._reflect_execution_status


def _stop(self: Execution, stop_date: datetime.datetime, error: str | None, cause: str | None) -> Any:
    self.trainstack_stopped = (error, cause)  # type: ignore[attr-defined]
    return _original_stop(self, stop_date, error, cause)


def _reflect(self: BaseExecutionWorkerCommunication) -> None:
    _original_reflect(self)
    stopped = getattr(self.execution, "trainstack_stopped", None)
    if stopped is not None and self.execution.exec_status == ExecutionStatus.FAILED:
        self.execution.exec_status = ExecutionStatus.ABORTED
        self.execution.error, self.execution.cause = stopped


def apply() -> None:
    Execution.stop = _stop  # type: ignore[method-assign]
    BaseExecutionWorkerCommunication._reflect_execution_status = _reflect  # type: ignore[method-assign]
