"""What the embedded SageMaker knows of one training job: its request, statuses and warm pool (moto's `models.py`
part). The operations on it live in `training_executor.py`, the accounting of instances in `training_capacity.py`,
the run in `training_job_runner.py`; nothing here takes a lock or touches a file.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

TERMINAL = frozenset({"Completed", "Failed", "Stopped"})

_STATUS_MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Stopping": "Stopping the training job",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job stopped: it exceeded the maximum allowed runtime (MaxRuntimeInSeconds)",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class WarmPool:
    status: str  # Available | InUse | Reused | Terminated
    available_since: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    retained_seconds: float = 0.0
    reused_by: str | None = None


@dataclass
class TrainingJob:
    request: dict[str, Any]
    arn: str
    creation_time: dt.datetime = field(default_factory=utcnow)
    status: str = "InProgress"
    secondary_status: str = "Starting"
    transitions: list[dict[str, Any]] = field(default_factory=list)
    last_modified: dt.datetime = field(default_factory=utcnow)
    training_start: dt.datetime | None = None
    training_end: dt.datetime | None = None
    failure_reason: str | None = None
    model_artifact: str | None = None
    warm_pool: WarmPool | None = None
    reuses: str | None = None  # the job whose warm pool this one took over
    container: str = ""  # the pool's containers (job_container.py): the first job's name, kept by reusers
    stop_requested: threading.Event = field(default_factory=threading.Event)
    log_streams: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.request["TrainingJobName"])

    @property
    def instance_type(self) -> str:
        return str(self.request["ResourceConfig"]["InstanceType"])

    @property
    def instance_count(self) -> int:
        return int(self.request["ResourceConfig"]["InstanceCount"])

    @property
    def spot(self) -> bool:
        return bool(self.request.get("EnableManagedSpotTraining"))

    @property
    def keep_alive(self) -> int:
        return int(self.request["ResourceConfig"].get("KeepAlivePeriodInSeconds", 0))


def transition(job: TrainingJob, secondary: str) -> None:
    """Enter a secondary status: the previous transition ends now, a terminal one ends as it starts."""
    now = utcnow()
    if job.transitions and "EndTime" not in job.transitions[-1]:
        job.transitions[-1]["EndTime"] = now
    job.transitions.append({"Status": secondary, "StartTime": now, "StatusMessage": _STATUS_MESSAGES[secondary]})
    if secondary in TERMINAL or secondary == "MaxRuntimeExceeded":
        job.transitions[-1]["EndTime"] = now
    job.secondary_status = secondary
    job.last_modified = now
