"""Gap: moto marks a training job Completed at once and runs nothing (and has no Stop/UpdateTrainingJob).

This is the wire side only, as moto keeps `responses.py` apart from `models.py`: it parses SageMaker's
training-job operations out of the JSON requests and hands them to the `TrainingExecutor` (behaviour, state and
runs live there); every other SageMaker operation goes to moto.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .training_executor import JobListQuery, TrainingExecutor

_TARGET_PREFIX = "SageMaker."


def _timestamp(value: Any) -> dt.datetime | None:
    # The JSON protocol sends timestamps as epoch seconds.
    return None if value is None else dt.datetime.fromtimestamp(float(value), dt.UTC)


def list_query(payload: dict[str, Any]) -> JobListQuery:
    """ListTrainingJobs' request: its filters, sort and page (NextToken is the offset this executor handed out)."""
    return JobListQuery(
        name_contains=payload.get("NameContains") or None,
        status=payload.get("StatusEquals") or None,
        warm_pool_status=payload.get("WarmPoolStatusEquals") or None,
        created_after=_timestamp(payload.get("CreationTimeAfter")),
        created_before=_timestamp(payload.get("CreationTimeBefore")),
        sort_by=payload.get("SortBy", "CreationTime"),
        descending=payload.get("SortOrder", "Ascending") == "Descending",
        start=int(payload.get("NextToken") or 0),
        size=int(payload.get("MaxResults") or 10),
    )


def updated_keep_alive(payload: dict[str, Any]) -> int | None:
    """UpdateTrainingJob's ResourceConfig.KeepAlivePeriodInSeconds; None when the request does not set it."""
    resource = payload.get("ResourceConfig") or {}
    return int(resource["KeepAlivePeriodInSeconds"]) if "KeepAlivePeriodInSeconds" in resource else None


class SageMakerTrainingHandler:
    def __init__(self, executor: TrainingExecutor) -> None:
        self.executor = executor

    def handle(self, target: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        if not target.startswith(_TARGET_PREFIX):
            return None
        operation = target[len(_TARGET_PREFIX) :]
        if operation == "CreateTrainingJob":
            return self.executor.create(payload)
        if operation == "DescribeTrainingJob":
            return self.executor.describe(payload.get("TrainingJobName", ""))
        if operation == "ListTrainingJobs":
            return self.executor.list(list_query(payload))
        if operation == "StopTrainingJob":
            return self.executor.stop(payload.get("TrainingJobName", ""))
        if operation == "ListTags" and ":training-job/" in str(payload.get("ResourceArn", "")):
            return self.executor.tags(payload["ResourceArn"])
        if operation == "UpdateTrainingJob":
            return self.executor.update(payload["TrainingJobName"], updated_keep_alive(payload))
        return None
