"""Gap: moto's Step Functions treats `sagemaker` as unsupported and refuses `.sync` for it.

We register a SageMaker optimised integration for `arn:aws:states:::sagemaker:<action>[.sync]`:
the request goes to SageMaker (our training executor, through the endpoint); with `.sync` on
createTrainingJob the task polls DescribeTrainingJob until the job is terminal. As on AWS:
- Completed: the task output is the DescribeTrainingJob response (timestamps as epoch milliseconds).
- Failed / Stopped: the task fails with `States.TaskFailed` and Cause = the DescribeTrainingJob JSON, so a
  Catch can parse `FailureReason` from `$states.errorOutput.Cause`.
- A rejected request: the error name the optimized integration gives (AWS SDK for Java v1 exception classes):
  SageMaker's modelled errors as `SageMaker.<Shape>Exception` (`SageMaker.ResourceLimitExceededException`,
  `SageMaker.ResourceInUseException`, `SageMaker.ResourceNotFoundException`); codes SageMaker's model lacks
  (ValidationException, ThrottlingException, AccessDeniedException) as the service's base exception,
  `SageMaker.AmazonSageMakerException`. Cause: the message and "(Service: AmazonSageMaker; Status Code: 400;
  Error Code: <code>; Request ID: ...; Proxy: null)". Evidence for each name: the embedded AWS README.
Every call is made as the state machine's role (`step_functions_task_credentials.py`), including what `.sync`
does besides the request, as AWS documents it ("IAM policies for SageMaker AI"): PutRule, PutTargets and
DescribeRule on the managed rule `StepFunctionsGetEventsForSageMakerTrainingJobsRule`, ListTags on the job, and
DescribeTrainingJob while polling; so a policy missing one of them fails here as it fails on AWS.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any, Final

import botocore.session
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import StateCredentials
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
    ResourceCondition,
    ResourceRuntimePart,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

from .step_functions_task_credentials import boto_client_for

SYNC_EVENTS_RULE: Final[str] = "StepFunctionsGetEventsForSageMakerTrainingJobsRule"
SYNC_EVENT_PATTERN: Final[str] = json.dumps(
    {"source": ["aws.sagemaker"], "detail-type": ["SageMaker Training Job State Change"]}
)
ERROR_REQUEST_REJECTED: Final[str] = "SageMaker.AmazonSageMakerException"


def _modelled_errors() -> frozenset[str]:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(name for name in model.shape_names if model.shape_for(name).metadata.get("exception"))


MODELLED_ERRORS: Final[frozenset[str]] = _modelled_errors()


def sync_error_name(code: str) -> str:
    """The Step Functions error name of a SageMaker error code in the optimized (`.sync`) integration."""
    if code in MODELLED_ERRORS:
        return f"SageMaker.{code}" if code.endswith("Exception") else f"SageMaker.{code}Exception"
    return ERROR_REQUEST_REJECTED


TERMINAL_FAILURES: Final[set[str]] = {"Failed", "Stopped"}
# Actions Step Functions offers for SageMaker; `.sync` is implemented for training jobs only.
_SUPPORTED_ACTIONS: Final[set[str]] = {
    "createtrainingjob",
    "describetrainingjob",
    "stoptrainingjob",
    "listtrainingjobs",
}


def to_step_functions_json(value: Any) -> Any:
    """Timestamps as epoch milliseconds, which is how Step Functions renders SageMaker responses."""
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {key: to_step_functions_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_step_functions_json(item) for item in value]
    return value


class StateTaskServiceSageMaker(StateTaskServiceCallback):
    def __init__(self) -> None:
        super().__init__(supported_integration_patterns={ResourceCondition.Sync, ResourceCondition.WaitForTaskToken})

    def _get_supported_parameters(self) -> set[str] | None:
        # Any request member is accepted here; the executor validates it against botocore's model.
        return set() if self.resource.api_action.lower() in _SUPPORTED_ACTIONS else None

    def _validate_service_integration_is_supported(self) -> None:
        super()._validate_service_integration_is_supported()
        if self.resource.condition == ResourceCondition.Sync and self.resource.api_action.lower() != (
            "createtrainingjob"
        ):
            raise ValueError(f"'.sync' is only implemented for createTrainingJob, not {self.resource.api_action}")

    def _from_error(self, env: Environment, ex: Exception) -> FailureEvent:
        if isinstance(ex, ClientError):
            error = ex.response["Error"]
            meta = ex.response["ResponseMetadata"]
            cause = (
                f"{error.get('Message', '')} (Service: AmazonSageMaker; Status Code: {meta.get('HTTPStatusCode')}; "
                f"Error Code: {error.get('Code')}; Request ID: {meta.get('RequestId')}; Proxy: null)"
            )
            name = sync_error_name(str(error.get("Code", "")))
            return self._failure(env, CustomErrorName(name), name, cause)
        return super()._from_error(env=env, ex=ex)

    def _failure(self, env: Environment, error_name: Any, error: str, cause: str) -> FailureEvent:
        return FailureEvent(
            env=env,
            error_name=error_name,
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(
                taskFailedEventDetails=TaskFailedEventDetails(
                    resource=self._get_sfn_resource(),
                    resourceType=self._get_sfn_resource_type(),
                    error=error,
                    cause=cause,
                )
            ),
        )

    def _eval_service_task(
        self,
        env: Environment,
        resource_runtime_part: ResourceRuntimePart,
        normalised_parameters: dict,
        state_credentials: StateCredentials,
    ) -> None:
        client = boto_client_for(
            service="sagemaker", region=resource_runtime_part.region, state_credentials=state_credentials
        )
        response = getattr(client, self._get_boto_service_action())(**normalised_parameters) or {}
        response.pop("ResponseMetadata", None)
        env.stack.append(to_step_functions_json(response))

    def _build_sync_resolver(
        self,
        env: Environment,
        resource_runtime_part: ResourceRuntimePart,
        normalised_parameters: dict,
        state_credentials: StateCredentials,
    ) -> Callable[[], Any] | None:
        client = boto_client_for(
            service="sagemaker", region=resource_runtime_part.region, state_credentials=state_credentials
        )
        created = env.stack.pop()  # CreateTrainingJob's answer: only the ARN, superseded by DescribeTrainingJob.
        job_name = normalised_parameters["TrainingJobName"]
        # What `.sync` does besides polling, as the state machine's role (AWS: "IAM policies for SageMaker AI"):
        # the managed EventBridge rule for job state changes, and the job's tags.
        region = resource_runtime_part.region
        events = boto_client_for(region=region, service="events", state_credentials=state_credentials)
        events.put_rule(Name=SYNC_EVENTS_RULE, EventPattern=SYNC_EVENT_PATTERN, State="ENABLED")
        events.put_targets(
            Rule=SYNC_EVENTS_RULE,
            Targets=[
                {
                    "Id": "StepFunctions",
                    "Arn": f"arn:aws:events:{region}:{resource_runtime_part.account}:event-bus/default",
                }
            ],
        )
        events.describe_rule(Name=SYNC_EVENTS_RULE)
        client.list_tags(ResourceArn=created["TrainingJobArn"])

        def resolve() -> dict[str, Any] | None:
            described = client.describe_training_job(TrainingJobName=job_name)
            described.pop("ResponseMetadata", None)
            status = described["TrainingJobStatus"]
            if status == "Completed":
                return to_step_functions_json(described)
            if status in TERMINAL_FAILURES:
                cause = json.dumps(to_step_functions_json(described))
                error = StatesErrorNameType.StatesTaskFailed.to_name()
                raise FailureEventException(
                    self._failure(env, StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed), error, cause)
                )
            return None

        return resolve


_original_factory = state_task_factory.state_task_service_for


def state_task_service_for(service_name: str) -> StateTaskService:
    if service_name == "sagemaker":
        return StateTaskServiceSageMaker()
    return _original_factory(service_name)


def apply() -> None:
    # state_task_factory imported the factory function by name: replace that reference.
    state_task_factory.state_task_service_for = state_task_service_for
