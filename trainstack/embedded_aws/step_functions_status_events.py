"""Gap: moto's Step Functions sends no `Step Functions Execution Status Change` events to EventBridge.

AWS emits one to the default event bus whenever a Standard execution's status changes, and a rule can match
on `detail.stateMachineArn` and `detail.status` (the pool cleanup does: ABORTED, TIMED_OUT). We emit the event
when an execution ends (SUCCEEDED, FAILED, TIMED_OUT, ABORTED), shaped as AWS documents it, onto the default bus
of the execution's account and region through moto's EventBridge backend, so its rules and targets deliver it.
Not emitted: the RUNNING event at start (nothing here listens for it) and the redrive fields.
https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, Final

from moto.events.models import events_backends
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

SOURCE: Final[str] = "aws.states"
DETAIL_TYPE: Final[str] = "Step Functions Execution Status Change"
_LOG = logging.getLogger(__name__)


def _millis(moment: dt.datetime | None) -> int | None:
    # Exact integer arithmetic: the pipeline names its jobs from the start time to the millisecond, and a
    # consumer that derives the name from `startDate` must get the same digits (float * 1000 can round down).
    if moment is None:
        return None
    return int(moment.replace(microsecond=0).timestamp()) * 1000 + moment.microsecond // 1000


def status_change_detail(execution: Execution) -> dict[str, Any]:
    output = execution.output
    return {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": execution.exec_status.value if execution.exec_status else None,
        "startDate": _millis(execution.start_date),
        "stopDate": _millis(execution.stop_date),
        "input": json.dumps(execution.input_data),
        "output": None if output is None else (output if isinstance(output, str) else json.dumps(output)),
        "inputDetails": {"included": True},
        "outputDetails": {"included": True},
        "error": execution.error,
        "cause": execution.cause,
    }


_original_terminated = BaseExecutionWorkerCommunication.terminated


def terminated(self: BaseExecutionWorkerCommunication) -> None:
    _original_terminated(self)
    execution = self.execution
    try:
        events_backends[execution.account_id][execution.region_name].put_events(
            [
                {
                    "Source": SOURCE,
                    "DetailType": DETAIL_TYPE,
                    "Detail": json.dumps(status_change_detail(execution)),
                    "Resources": [execution.exec_arn],
                    "EventBusName": "default",
                }
            ]
        )
    except Exception:  # an undeliverable event must not change how the execution ended
        _LOG.exception("could not emit the status-change event of %s", execution.exec_arn)


def apply() -> None:
    BaseExecutionWorkerCommunication.terminated = terminated  # type: ignore[method-assign]
