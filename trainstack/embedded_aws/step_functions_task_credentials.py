"""Gap: moto's Step Functions calls every task API with the fixed keys "ak"/"sk", as nobody in particular.

On AWS a task runs as the state machine's role (or the state's `Credentials.RoleArn`). We replace moto's
`boto_client_for` wherever its task modules imported it: the client assumes `state_credentials.role_arn`
through the embedded STS, so the IAM enforcement evaluates each task call against that role's policies.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from botocore.config import Config

from .assumed_role_credentials import role_client

# Step Functions' own session name is opaque; this one says who made the call in AccessDenied messages.
SESSION_NAME = "StepFunctionsTask"
_MODULES = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_unsupported",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_glue",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
)


def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    """moto's signature; the client calls as the task's role."""
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

    role_arn = getattr(state_credentials, "role_arn", None)
    if not role_arn:
        raise ValueError("a Step Functions task has no role to run as (state machine roleArn missing)")
    config = Config(
        parameter_validation=False,
        retries={"max_attempts": 0, "total_max_attempts": 1},
        connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
        read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
    )
    endpoint = f"http://127.0.0.1:{os.environ['MOTO_PORT']}"
    return role_client(endpoint, region, service, role_arn, SESSION_NAME, config=config)


def apply() -> None:
    for name in _MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "boto_client_for"):
            module.boto_client_for = boto_client_for
