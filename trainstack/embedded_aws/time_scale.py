"""The time knob: waits for time itself run faster, so a scenario that waits minutes on AWS takes seconds here.

Embedded only, no AWS counterpart. One factor (1 = real time, the default and the demo's; 0.001 = a thousand
times faster) scales what only waits for the clock:
- the state machine's `Wait` states (`Seconds`, `SecondsPath`, `Timestamp`, `TimestampPath`, JSONata `Seconds`),
- the `Retry` intervals between attempts (IntervalSeconds, BackoffRate, MaxDelaySeconds),
- the `.sync` integration's look at DescribeTrainingJob (never more often than every `MIN_POLL_SECONDS`),
- how long an Available warm pool is kept (KeepAlivePeriodInSeconds).
What bounds real work is not scaled, since the work itself does not get faster: MaxRuntimeInSeconds, a task's
TimeoutSeconds and HeartbeatSeconds, the stop grace of a training process. Everything the platform records
stays in virtual seconds where the state machine computes it (`capacityWaited`, the history's Wait inputs) and
wall-clock seconds where the executor measures it (TrainingTimeInSeconds, ResourceRetainedBillableTimeInSeconds).

Set it with `EmbeddedAws(time_scale=0.01)`, `TRAINSTACK_TIME_SCALE=0.01` (read when the embedded AWS starts, so
also by `python -m trainstack.embedded_aws up`), or at any time `POST /trainstack-api/time-scale` with
`{"factor": 0.01}` (`trainstack.embedded_aws.testing.time_scale(endpoint_url, 0.01)`, a context manager that
puts the previous factor back). A Wait already sleeping keeps the factor it started with.
"""

from __future__ import annotations

import os
import threading
import time
from types import SimpleNamespace
from typing import Any, Final

from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.environment import Environment

from .test_controls import CONTROL_PREFIX, JsonControl

ENV_VAR: Final[str] = "TRAINSTACK_TIME_SCALE"
CONTROL_PATH: Final[str] = f"{CONTROL_PREFIX}time-scale"
# A poll that only stands in for an AWS event (the `.sync` look at a job) must not spin the CPU.
MIN_POLL_SECONDS: Final[float] = 0.05
# 7 days (the longest capacity wait a run may ask for) at the smallest factor still lasts a fraction of a second.
MIN_FACTOR: Final[float] = 1e-6


def parse_factor(value: object, source: str) -> float:
    """The factor from a setting, or ValueError naming `source` and the accepted range."""
    try:
        factor = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{source}: expected a number from {MIN_FACTOR} to 1 (1 = real time), got {value!r}") from None
    if not MIN_FACTOR <= factor <= 1:
        raise ValueError(f"{source}: expected a number from {MIN_FACTOR} to 1 (1 = real time), got {value!r}")
    return factor


class TimeScale:
    """The process's factor (moto's state is process-global, and so is its clock). Thread-safe."""

    def __init__(self) -> None:
        self._factor = 1.0
        self._lock = threading.Lock()

    @property
    def factor(self) -> float:
        with self._lock:
            return self._factor

    def set(self, factor: float) -> float:
        """Set the factor; answers the previous one."""
        factor = parse_factor(factor, "time scale")
        with self._lock:
            previous, self._factor = self._factor, factor
            return previous

    def seconds(self, virtual_seconds: float) -> float:
        """Wall-clock seconds for a wait of `virtual_seconds`."""
        return max(0.0, float(virtual_seconds)) * self.factor

    def sleep(self, virtual_seconds: float) -> None:
        time.sleep(self.seconds(virtual_seconds))

    def poll_sleep(self, virtual_seconds: float) -> None:
        time.sleep(max(MIN_POLL_SECONDS, self.seconds(virtual_seconds)) if virtual_seconds > 0 else 0)


TIME_SCALE: Final[TimeScale] = TimeScale()


def _wait_interval(self: WaitFunction, env: Environment, wait_seconds: int) -> None:
    # moto waits `wait_seconds` on the execution's state event (set when it is stopped); the same, scaled.
    deadline = time.monotonic() + TIME_SCALE.seconds(wait_seconds)
    while env.is_running() and (left := deadline - time.monotonic()) > 0:
        env.program_state_event.wait(left)


def apply() -> None:
    WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]
    # Both modules call `time.sleep` on the module they imported: give each a `time` whose sleep is scaled.
    retrier_decl.time = SimpleNamespace(sleep=TIME_SCALE.sleep)  # type: ignore[attr-defined]
    state_task_service_callback.time = SimpleNamespace(sleep=TIME_SCALE.poll_sleep)  # type: ignore[attr-defined]


def factor_from_environment() -> float:
    value = os.environ.get(ENV_VAR)
    return 1.0 if value in (None, "") else parse_factor(value, ENV_VAR)


def time_scale_control(app: Any) -> JsonControl:
    def set_factor(body: dict[str, Any]) -> dict[str, Any]:
        if "factor" not in body:
            raise ValueError('expected {"factor": <number from 1e-06 to 1>}')
        factor = parse_factor(body["factor"], "factor")
        return {"factor": factor, "previous": TIME_SCALE.set(factor)}

    return JsonControl(app, CONTROL_PATH, set_factor)
