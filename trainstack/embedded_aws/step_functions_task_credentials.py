"""Gap: moto's Step Functions calls every task API with the fixed keys "ak"/"sk", as nobody in particular.

On AWS a task runs as the state machine's role (or the state's `Credentials.RoleArn`). We replace moto's
`boto_client_for` wherever its task modules imported it: the client assumes `state_credentials.role_arn`
through the embedded STS as states.amazonaws.com for the state machine (aws:SourceArn, which the role's trust
policy may require), so the IAM enforcement evaluates each task call against that role's policies. moto's
StateCredentials carries only the role; `_eval_state_credentials` adds the state machine's ARN to it.

moto asks for a client per task call; building a boto3 client costs tens of milliseconds (a Map describing 150
jobs spent seconds on it), so a client is kept per role, state machine and credentials and shared: botocore
clients are safe to call from several threads, and a renewed credential makes a new one.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any

from botocore.config import Config

from .assumed_role_credentials import STEP_FUNCTIONS, Assumer, assume_role, role_client

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
    role_arn = getattr(state_credentials, "role_arn", None)
    if not role_arn:
        raise ValueError("a Step Functions task has no role to run as (state machine roleArn missing)")
    endpoint = f"http://127.0.0.1:{os.environ['MOTO_PORT']}"
    assumer = Assumer(STEP_FUNCTIONS, getattr(state_credentials, "source_arn", None))
    credentials = assume_role(endpoint, region, role_arn, SESSION_NAME, assumer=assumer)
    return _task_client(endpoint, region, service, role_arn, assumer, credentials.access_key_id)


@functools.lru_cache(maxsize=256)
def _task_client(endpoint: str, region: str, service: str, role_arn: str, assumer: Assumer, access_key_id: str) -> Any:
    # `access_key_id` is part of the key only: the credentials it names are assume_role's cached ones.
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

    config = Config(
        parameter_validation=False,
        retries={"max_attempts": 0, "total_max_attempts": 1},
        connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
        read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
    )
    return role_client(endpoint, region, service, role_arn, SESSION_NAME, assumer=assumer, config=config)


def _eval_state_credentials_with_source(self: Any, env: Any) -> Any:
    credentials = _original_eval_state_credentials(self, env)
    credentials.source_arn = env.states.context_object.context_object_data["StateMachine"]["Id"]
    return credentials


_original_eval_state_credentials: Any = None


def apply() -> None:
    global _original_eval_state_credentials
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask

    if _original_eval_state_credentials is None:
        _original_eval_state_credentials = StateTask._eval_state_credentials
        StateTask._eval_state_credentials = _eval_state_credentials_with_source  # type: ignore[method-assign]
    for name in _MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "boto_client_for"):
            module.boto_client_for = boto_client_for
