"""Gap: moto's Step Functions records any number of history events; AWS ends a Standard execution at 25,000.

AWS ("Avoid reaching the history quota", https://docs.aws.amazon.com/step-functions/latest/dg/bp-history-limit.html,
and the 25,000-entry "maximum execution history size" on the Step Functions service-quotas page): when an
execution has 24,999 events, event 25,000 is ExecutionSucceeded if that is what comes next; anything else makes
event 25,000 an ExecutionFailed and the execution FAILED. Its error is `States.Runtime` and its cause
"The execution reached the maximum number of history events (25000)." (as users report it, e.g.
loads/ardere#86, aws-samples/aws-organizations-tag-inventory#16). Express executions have no history, so no limit.

moto already records one event per step as AWS does (Pass/Choice/Wait: Entered, Exited; a Task: Entered,
Scheduled, Started, Succeeded or Failed, Exited; a Map: Entered, Started, per iteration Started ... Succeeded,
Succeeded, Exited; `.sync`: one Submitted, no event per poll); this adapter only enforces the ceiling: the
execution ends there, the state in flight is interrupted, and nothing after event 25,000 is recorded.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

MAX_HISTORY_EVENTS: Final[int] = 25_000
ERROR: Final[str] = "States.Runtime"
CAUSE: Final[str] = f"The execution reached the maximum number of history events ({MAX_HISTORY_EVENTS})."
# Ends an execution however many events it has: the aborted and timed-out executions still end so.
_ENDINGS_ALWAYS_RECORDED = frozenset(
    {HistoryEventType.ExecutionSucceeded, HistoryEventType.ExecutionAborted, HistoryEventType.ExecutionTimedOut}
)

_original_add_event = EventManager.add_event
_original_environment_init = Environment.__init__
_original_set_error = Environment.set_error
_limit_lock = threading.Lock()


def _limit_details() -> ExecutionFailedEventDetails:
    return ExecutionFailedEventDetails(error=ERROR, cause=CAUSE)


def environment_init(self: Environment, *args: Any, **kwargs: Any) -> None:
    _original_environment_init(self, *args, **kwargs)
    # A frame (Map iteration, Parallel branch) replaces this manager with its parent's right after, so the
    # manager an execution keeps points at the execution's own root environment.
    self.event_manager.history_environment = self  # type: ignore[attr-defined]


def set_error(self: Environment, error: ExecutionFailedEventDetails) -> None:
    # A state interrupted at the limit may fail on its own afterwards; the execution's error stays the limit's.
    if getattr(self.event_manager, "history_exhausted", False):
        error = _limit_details()
    _original_set_error(self, error)


def add_event(self: EventManager, context: Any, event_type: HistoryEventType, *args: Any, **kwargs: Any) -> int:
    environment: Environment | None = getattr(self, "history_environment", None)
    if environment is None or not environment.is_standard_workflow():
        return _original_add_event(self, context, event_type, *args, **kwargs)
    with _limit_lock:
        if getattr(self, "history_exhausted", False):
            return MAX_HISTORY_EVENTS
        if len(self._history_event_list) + 1 < MAX_HISTORY_EVENTS or event_type in _ENDINGS_ALWAYS_RECORDED:
            return _original_add_event(self, context, event_type, *args, **kwargs)
        self.history_exhausted = True  # type: ignore[attr-defined]
        event_id = _original_add_event(
            self,
            context,
            HistoryEventType.ExecutionFailed,
            EventDetails(executionFailedEventDetails=_limit_details()),
        )
    environment.set_error(_limit_details())
    return event_id


def apply() -> None:
    EventManager.add_event = add_event  # type: ignore[method-assign]
    Environment.__init__ = environment_init  # type: ignore[method-assign]
    Environment.set_error = set_error  # type: ignore[method-assign]
