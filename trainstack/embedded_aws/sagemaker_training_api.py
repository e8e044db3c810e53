"""Gap: moto marks a training job Completed at once and runs nothing (and has no Stop/UpdateTrainingJob).

This is the wire side only: SageMaker's training-job operations are answered by the
`TrainingExecutor` (state and runs live there); every other SageMaker operation goes to moto.
"""

from __future__ import annotations

from typing import Any

from .training_executor import TrainingExecutor

_TARGET_PREFIX = "SageMaker."


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
            return self.executor.list(payload)
        if operation == "StopTrainingJob":
            return self.executor.stop(payload.get("TrainingJobName", ""))
        if operation == "ListTags" and ":training-job/" in str(payload.get("ResourceArn", "")):
            return self.executor.tags(payload["ResourceArn"])
        if operation == "UpdateTrainingJob":
            return self.executor.update(payload)
        return None
