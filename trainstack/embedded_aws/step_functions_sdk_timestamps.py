"""Gap: moto's `aws-sdk` tasks put boto3's datetime objects into the state's result; AWS gives strings.

An AWS SDK integration's result is the service's response as JSON, timestamps as ISO 8601 strings in UTC with
milliseconds (`"CreationTime": "2013-08-23T01:02:15.422Z"`, as users report it for
`aws-sdk:cloudformation:describeStacks`, sam-goodwin/functionless#489). moto keeps the datetime objects, so a
result holding one (ListTrainingJobs with a retained pool in the account, ListObjectsV2 with an object) that
becomes the execution's output makes DescribeExecution fail with a 500 (`Object of type datetime is not JSON
serializable`): a CI failure that depended on which test left a pool behind. We convert them where the task's
result is made.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)

_original_eval_service_task = StateTaskServiceAwsSdk._eval_service_task


def aws_timestamp(value: dt.datetime) -> str:
    utc = value.astimezone(dt.UTC) if value.tzinfo else value
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def as_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_json(item) for item in value]
    if isinstance(value, dt.datetime):
        return aws_timestamp(value)
    return value


def _eval_service_task(self: StateTaskServiceAwsSdk, env: Any, *args: Any, **kwargs: Any) -> None:
    _original_eval_service_task(self, env, *args, **kwargs)
    env.stack.append(as_json(env.stack.pop()))


def apply() -> None:
    StateTaskServiceAwsSdk._eval_service_task = _eval_service_task  # type: ignore[method-assign]
