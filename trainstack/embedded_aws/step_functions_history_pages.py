"""Gap: moto answers GetExecutionHistory with every event in one response; AWS answers in pages.

botocore's model of GetExecutionHistory (member documentation): `maxResults` is "the maximum number of results
that are returned per call ... The default is 100 and the maximum allowed page size is 1000. A value of 0 uses
the default"; `nextToken` is returned when there are more results, and the call is made again with it, "Keep all
other arguments unchanged"; an expired or foreign token is "HTTP 400 InvalidToken"; `reverseOrder` lists events
newest first; `includeExecutionData: false` leaves out each event's input and output. moto ignores all four, so
a reader that asks for one page of 1000 (as `run --watch` once did) sees every event here and only the first
1000 on AWS: the gap hides a bug a long capacity wait would show.

This adapter answers as AWS does. It also reads and writes the page itself: moto deep-copies the whole history
on each call and its generic serializer walks botocore's shape for every value (about 2 ms an event), so a
25,000-event history took minutes to read. The page is the same JSON (None left out, timestamps as epoch
seconds truncated to milliseconds, as moto's serializer writes them); tests/test_embedded_aws_adapters.py
compares the two over Map iterations, a caught task failure and a Fail state.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime as dt
import json
from typing import Any, Final

from moto.stepfunctions.exceptions import InvalidToken, ValidationException
from moto.stepfunctions.responses import StepFunctionResponse

DEFAULT_PAGE_SIZE: Final[int] = 100
MAX_PAGE_SIZE: Final[int] = 1000
# The parts of an event's details that are "execution data" (the member documentation above).
_EXECUTION_DATA: Final[frozenset[str]] = frozenset({"input", "output", "inputDetails", "outputDetails"})

_original_get_execution_history = StepFunctionResponse.get_execution_history


def _timestamp(value: dt.datetime) -> int | float:
    seconds = calendar.timegm(value.utctimetuple())
    return seconds + (value.microsecond // 1000) / 1000.0 if value.microsecond else seconds


def _plain(value: Any, keep_data: bool) -> Any:
    """The value as moto's JSON serializer writes it: no None members, datetimes as epoch seconds."""
    if isinstance(value, dict):
        return {
            key: _plain(item, keep_data)
            for key, item in value.items()
            if item is not None and (keep_data or key not in _EXECUTION_DATA)
        }
    if isinstance(value, list):
        return [_plain(item, keep_data) for item in value]
    if isinstance(value, dt.datetime):
        return _timestamp(value)
    return value


def _token(arguments: dict[str, Any], offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({**arguments, "offset": offset}).encode()).decode()


def _offset(token: str, arguments: dict[str, Any]) -> int:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidToken(f"{token!r} is not a token GetExecutionHistory returned") from None
    if not isinstance(decoded, dict) or {k: decoded.get(k) for k in arguments} != arguments:
        raise InvalidToken("the token was returned for other arguments: keep all other arguments unchanged")
    offset = decoded.get("offset")
    if not isinstance(offset, int) or offset < 0:
        raise InvalidToken(f"{token!r} is not a token GetExecutionHistory returned")
    return offset


def _events(backend: Any, arn: str) -> list[Any]:
    """The recorded events, newest last. moto's own reader deep-copies the whole history on every call (0.7 s
    at 25,000 events, per page); a shallow copy is enough here, since _plain builds new values for the page."""
    execution = backend.describe_execution(execution_arn=arn)  # ExecutionDoesNotExist, as moto answers it
    environment = getattr(getattr(execution, "exec_worker", None), "env", None)
    if environment is None:  # not started yet: no events
        return []
    manager = environment.event_manager
    with manager._mutex:
        return list(manager._history_event_list)


def get_execution_history(self: StepFunctionResponse) -> tuple[int, dict[str, str], str]:
    arn = self._get_param("executionArn")
    size = self._get_param("maxResults") or DEFAULT_PAGE_SIZE
    if not isinstance(size, int) or not 0 <= size <= MAX_PAGE_SIZE:
        raise ValidationException(
            f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy constraint: "
            f"Member must have value less than or equal to {MAX_PAGE_SIZE}"
        )
    reverse = bool(self._get_param("reverseOrder"))
    keep_data = self._get_param("includeExecutionData") is not False
    arguments = {"executionArn": arn, "reverseOrder": reverse, "includeExecutionData": keep_data}
    token = self._get_param("nextToken")
    start = _offset(token, arguments) if token else 0

    events = _events(self.stepfunction_backend, arn)
    if reverse:
        events.reverse()
    page: dict[str, Any] = {"events": _plain(events[start : start + size], keep_data)}
    if start + size < len(events):
        page["nextToken"] = _token(arguments, start + size)
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    return 200, headers, json.dumps(page, separators=(",", ":"))


def apply() -> None:
    StepFunctionResponse.get_execution_history = get_execution_history  # type: ignore[method-assign]
