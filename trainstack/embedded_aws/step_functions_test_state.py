"""Gap: moto 5.2.5 routes no `TestState` (its parser has LocalStack's test-state interpreter, but nothing calls it).

We answer `AWSStepFunctions.TestState` by running the one state with moto's test-state interpreter, and refuse
what AWS refuses. The rules, and where each comes from (AWS's own words where they are published):
- The TestState API reference: the states it runs (Task, Pass, Wait, Choice, Succeed, Fail; Map and Parallel only
  with a mock) and "TestState only supports the following when a mock is specified: Activity tasks, `.sync` or
  `.waitForTaskToken` service integration patterns, Parallel, or Map states". A `.sync` task without a mock is
  refused, never run as request-response (AWS's wording for that refusal is not published: ours names the rule).
- botocore's model of TestState: the members' lengths (definition 1..1,048,576; input, variables and mock result
  at most 262,144; roleArn 1..256; stateName 1..80; error at most 256, cause at most 32,768), the enums
  (inspectionLevel, fieldValidationMode), "A mock can only be specified for Task, Map, or Parallel states",
  `stateName` means `definition` is a whole state machine, `context` "may only be specified if a mock is
  specified", `mock.errorOutput.error` "is required if mock.errorOutput is specified".
- Answers AWS gave, as recorded against AWS by LocalStack's validated snapshot tests
  (tests/aws/services/stepfunctions/v2/test_state/*.snapshot.json): "RoleArn must be specified when testing a Task
  state", "State type 'Pass' is not supported when a mock is specified", "A test mock should have only one of the
  following fields: [result, errorOutput].", "TestState does not support RevealSecrets when a mock is specified.",
  "Mocked result must be valid JSON", "TestState API does not support Map or Parallel states. ..." (InvalidDefinition),
  "TestState does not support MapIterationFailureCount when a mock is not specified.", and the mock result's
  schema errors ("Mock result schema validation error: Required field 'X' is missing", "Field 'X' must be a
  string", ...), checked against the integration's API output shape in botocore's model (STRICT: required members
  present; PRESENT: present members typed; NONE: nothing).
- The role: without a mock, the state's calls are made as `roleArn`, assumed through the embedded STS as Step
  Functions (the same path as an execution's tasks, `step_functions_task_credentials.py`), so the IAM enforcement
  evaluates them against that role. The caller needs `states:TestState`, `iam:PassRole` on the role and, with
  `revealSecrets`, `states:RevealSecrets` (`iam_enforcement.py`).
- The answer: `status` SUCCEEDED, FAILED, RETRIABLE (the error matches a Retrier with attempts left: TestState
  does not retry, it says so) or CAUGHT_ERROR (a Catcher matches: `nextState` is its Next, `output` the error
  output); `output`, `error`, `cause`, `nextState`; `inspectionData` at DEBUG and TRACE (input, afterArguments,
  result, variables).
Not modelled (refused as "not supported by the embedded AWS", never run differently): Map and Parallel states,
Activity tasks, `stateConfiguration`, HTTP Tasks, `revealSecrets` true. A Catcher's own Output and Assign are not
evaluated (the output of a CAUGHT_ERROR is the error output). What `aws:SourceArn` AWS sends when TestState
assumes the role is not documented: we send the ARN of a state machine named `TestState-<id>`, so a trust policy
that names one state machine (the platform's) refuses it; a mock needs no role.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from typing import Any, Final

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape

from .json_protocol import AwsError

_TARGET: Final[str] = "AWSStepFunctions.TestState"
TASK_ROLE_MISSING: Final[str] = "RoleArn must be specified when testing a Task state"
BOTH_MOCK_FIELDS: Final[str] = "A test mock should have only one of the following fields: [result, errorOutput]."
REVEAL_WITH_MOCK: Final[str] = "TestState does not support RevealSecrets when a mock is specified."
MOCK_NOT_JSON: Final[str] = "Mocked result must be valid JSON"
MAP_OR_PARALLEL: Final[str] = (
    "TestState API does not support Map or Parallel states. Supported state types include: "
    "[Task, Wait, Pass, Succeed, Fail, Choice]"
)
MAP_FAILURES_WITHOUT_MOCK: Final[str] = (
    "TestState does not support MapIterationFailureCount when a mock is not specified."
)
# Our wording: AWS documents the rule ("only supports ... when a mock is specified") but not its message.
PATTERN_NEEDS_MOCK: Final[str] = (
    "TestState supports the {pattern} service integration pattern only when a mock is specified (resource {resource})"
)
_RUNNABLE: Final[set[str]] = {"Task", "Pass", "Wait", "Choice", "Succeed", "Fail"}
_MOCKABLE: Final[set[str]] = {"Task", "Map", "Parallel"}
_LEVELS: Final[tuple[str, ...]] = ("INFO", "DEBUG", "TRACE")
_VALIDATION_MODES: Final[tuple[str, ...]] = ("STRICT", "PRESENT", "NONE")
# botocore's model of TestStateInput: (member, min, max) of each string member.
_LENGTHS: Final[tuple[tuple[str, int, int], ...]] = (
    ("definition", 1, 1_048_576),
    ("roleArn", 1, 256),
    ("input", 0, 262_144),
    ("variables", 0, 262_144),
    ("stateName", 1, 80),
    ("context", 0, 262_144),
)
_MOCK_LENGTHS: Final[tuple[tuple[str, int], ...]] = (("result", 262_144),)
_ERROR_LENGTHS: Final[tuple[tuple[str, int], ...]] = (("error", 256), ("cause", 32_768))


def _validation(message: str) -> AwsError:
    return AwsError("ValidationException", message)


def _too_long(member: str, limit: int) -> AwsError:
    return _validation(
        f"1 validation error detected: Value at '{member}' failed to satisfy constraint: "
        f"Member must have length less than or equal to {limit}"
    )


def _check_lengths(payload: dict[str, Any]) -> None:
    for member, low, high in _LENGTHS:
        value = payload.get(member)
        if value is None:
            continue
        if not isinstance(value, str):
            raise _validation(f"'{member}' must be a string")
        if len(value) > high:
            raise _too_long(member, high)
        if len(value) < low:
            raise _validation(
                f"1 validation error detected: Value at '{member}' failed to satisfy constraint: "
                f"Member must have length greater than or equal to {low}"
            )
    mock = payload.get("mock") or {}
    for member, high in _MOCK_LENGTHS:
        if isinstance(mock.get(member), str) and len(mock[member]) > high:
            raise _too_long(f"mock.{member}", high)
    error_output = mock.get("errorOutput") or {}
    for member, high in _ERROR_LENGTHS:
        if isinstance(error_output.get(member), str) and len(error_output[member]) > high:
            raise _too_long(f"mock.errorOutput.{member}", high)


def _json(text: str | None, member: str, code: str = "ValidationException") -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as error:
        raise AwsError(code, f"Invalid {member}: {error}") from error


def _state_under_test(definition: str, state_name: str | None) -> dict[str, Any]:
    """The one state to run: `definition` itself, or its `States[stateName]` with the machine's QueryLanguage."""
    try:
        parsed = json.loads(definition)
    except ValueError as error:
        raise AwsError(
            "InvalidDefinition", f"Invalid State Machine Definition: 'INVALID_JSON_DESCRIPTION: {error}'"
        ) from error
    if not isinstance(parsed, dict):
        raise AwsError("InvalidDefinition", "Invalid State Machine Definition: the definition must be a JSON object")
    if state_name is None:
        if "States" in parsed:
            raise AwsError(
                "InvalidDefinition",
                "Invalid State Machine Definition: a state machine definition needs stateName to name the state "
                "to test",
            )
        return parsed
    states = parsed.get("States")
    if not isinstance(states, dict):
        raise AwsError(
            "InvalidDefinition",
            "Invalid State Machine Definition: with stateName, the definition must be a whole state machine (States)",
        )
    if not isinstance(states.get(state_name), dict):
        raise AwsError("InvalidDefinition", f"Invalid State Machine Definition: no state named '{state_name}'")
    state = copy.deepcopy(states[state_name])
    if "QueryLanguage" not in state and "QueryLanguage" in parsed:
        state["QueryLanguage"] = parsed["QueryLanguage"]
    return state


def _pattern(resource: str) -> str | None:
    for suffix in (".sync:2", ".sync", ".waitForTaskToken"):
        if resource.endswith(suffix):
            return suffix.split(":")[0]
    return None


def _check_request(payload: dict[str, Any], state: dict[str, Any]) -> None:
    mock = payload.get("mock")
    state_type = state.get("Type")
    level = payload.get("inspectionLevel")
    if level is not None and level not in _LEVELS:
        raise _validation(f"inspectionLevel must be one of {', '.join(_LEVELS)}, got '{level}'")
    configuration = payload.get("stateConfiguration")
    if configuration:
        if "mapIterationFailureCount" in configuration and mock is None:
            raise _validation(MAP_FAILURES_WITHOUT_MOCK)
        raise _validation("stateConfiguration is not supported by the embedded AWS")
    if state_type in ("Map", "Parallel"):
        if mock is None:
            raise AwsError("InvalidDefinition", MAP_OR_PARALLEL)
        raise _validation(f"TestState of a {state_type} state is not supported by the embedded AWS")
    if state_type not in _RUNNABLE:
        raise AwsError(
            "InvalidDefinition",
            f"Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: The field 'Type' should have one of "
            f"these values: [Task, Wait, Pass, Succeed, Fail, Choice, Parallel, Map]' (got {state_type!r})",
        )
    resource = str(state.get("Resource", ""))
    if mock is not None:
        if state_type not in _MOCKABLE:
            raise _validation(f"State type '{state_type}' is not supported when a mock is specified")
        if payload.get("revealSecrets"):
            raise _validation(REVEAL_WITH_MOCK)
        if "result" in mock and "errorOutput" in mock:
            raise _validation(BOTH_MOCK_FIELDS)
        if "result" not in mock and "errorOutput" not in mock:
            raise _validation("A test mock needs one of the following fields: [result, errorOutput].")
        if "errorOutput" in mock and not (mock["errorOutput"] or {}).get("error"):
            raise _validation("mock.errorOutput.error is required when mock.errorOutput is specified")
        mode = mock.get("fieldValidationMode")
        if mode is not None and mode not in _VALIDATION_MODES:
            raise _validation(f"mock.fieldValidationMode must be one of {', '.join(_VALIDATION_MODES)}, got '{mode}'")
        if "result" in mock:
            try:
                json.loads(mock["result"])
            except (TypeError, ValueError) as error:
                raise _validation(MOCK_NOT_JSON) from error
    else:
        if payload.get("context") is not None:
            raise _validation("context may only be specified if a mock is specified in the same request")
        if state_type == "Task":
            if not payload.get("roleArn"):
                raise _validation(TASK_ROLE_MISSING)
            pattern = _pattern(resource)
            if pattern is not None:
                raise _validation(PATTERN_NEEDS_MOCK.format(pattern=pattern, resource=resource))
    if state_type == "Task" and ":activity:" in resource:
        raise _validation("TestState of an Activity task is not supported by the embedded AWS")
    if state_type == "Task" and resource == "arn:aws:states:::http:invoke":
        raise _validation("TestState of an HTTP Task is not supported by the embedded AWS")
    if payload.get("revealSecrets"):
        raise _validation("revealSecrets is not supported by the embedded AWS (it concerns HTTP Tasks only)")


# ------------------------------------------------------------------------------------------- mock result schema


def _operation_output(resource: str) -> Shape | None:
    """The API output shape an optimized (`arn:aws:states:::svc:action[.pattern]`) or SDK integration returns."""
    prefix = "arn:aws:states:::"
    if not resource.startswith(prefix):
        return None
    path = resource[len(prefix) :].split(".")[0]
    parts = path.split(":")
    if parts[0] == "aws-sdk" and len(parts) == 3:
        service, action = parts[1], parts[2]
    elif len(parts) == 2:
        service, action = parts
    else:
        return None
    session = botocore.session.get_session()
    if service not in session.get_available_services():
        return None
    model = session.get_service_model(service)
    operation = action[:1].upper() + action[1:]
    if operation not in model.operation_names:
        return None
    return model.operation_model(operation).output_shape


def _schema_error(message: str) -> AwsError:
    return _validation(f"Mock result schema validation error: {message}")


def _check_value(value: Any, shape: Shape, name: str | None, strict: bool) -> None:
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            raise _schema_error(f"Field '{name}' must be an object")
        if strict:
            for required in shape.required_members:
                if required not in value:
                    raise _schema_error(f"Required field '{required}' is missing")
        for key, item in value.items():
            # Members the model does not know are let through (a newer API may return them).
            if key in shape.members:
                _check_value(item, shape.members[key], key, strict)
    elif isinstance(shape, ListShape):
        if not isinstance(value, list):
            raise _schema_error(f"Field '{name}' must be an array")
        for item in value:
            _check_value(item, shape.member, name, strict)
    elif isinstance(shape, MapShape):
        if not isinstance(value, dict):
            raise _schema_error(f"Field '{name}' must be an object")
        for item in value.values():
            _check_value(item, shape.value, name, strict)
    elif kind in ("string", "timestamp", "blob"):
        if not isinstance(value, str):
            raise _schema_error(f"Field '{name}' must be a string")
        if kind == "string" and shape.enum and value not in shape.enum:
            raise _schema_error(f"Field '{name}' is not an expected value")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise _schema_error(f"Field '{name}' must be a number")
    elif kind in ("float", "double"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _schema_error(f"Field '{name}' must be a number")
    elif kind == "boolean" and not isinstance(value, bool):
        raise _schema_error(f"Field '{name}' must be a boolean")


def check_mock_result(resource: str, result: Any, mode: str) -> None:
    if mode == "NONE":
        return
    shape = _operation_output(resource)
    if shape is not None:
        _check_value(result, shape, None, strict=mode == "STRICT")


# ------------------------------------------------------------------------------------------------- running


def _error_matches(names: list[str], error: str) -> bool:
    # States.TaskFailed matches every error but States.Timeout (Amazon States Language, "Error names").
    return "States.ALL" in names or error in names or ("States.TaskFailed" in names and error != "States.Timeout")


def _classify(state: dict[str, Any], error: str, retry_count: int) -> tuple[str, str | None]:
    """What TestState says of an error the state raised: RETRIABLE, CAUGHT_ERROR (with the catcher's Next), FAILED."""
    for retrier in state.get("Retry") or []:
        if _error_matches(list(retrier.get("ErrorEquals") or []), error):
            if retry_count < int(retrier.get("MaxAttempts", 3)):
                return "RETRIABLE", None
            break
    for catcher in state.get("Catch") or []:
        if _error_matches(list(catcher.get("ErrorEquals") or []), error):
            return "CAUGHT_ERROR", catcher.get("Next")
    return "FAILED", None


def _record_arguments(state_field: Any) -> None:
    """inspectionData.afterArguments: the evaluated Arguments of a JSONata state (moto records Parameters only)."""
    from moto.stepfunctions.parser.asl.component.common.parargs import Arguments
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    parargs = getattr(state_field, "parargs", None)
    if not isinstance(parargs, Arguments):
        return
    evaluate = parargs._eval_body

    def recorded(env: Any) -> None:
        evaluate(env)
        env.inspection_data["afterArguments"] = to_json_str(env.stack[-1])

    parargs._eval_body = recorded  # type: ignore[method-assign]


def _run(
    state: dict[str, Any],
    *,
    account: str,
    region: str,
    role_arn: str | None,
    state_input: Any,
    variables: dict[str, Any],
    mock: dict[str, Any] | None,
    context: dict[str, Any] | None,
) -> tuple[Any, dict[str, str], dict[str, Any]]:
    """Run the state once in moto's test-state interpreter: (program state, inspection data, variables after)."""
    from moto.stepfunctions.parser.api import StateMachineType
    from moto.stepfunctions.parser.asl.eval.evaluation_details import (
        AWSExecutionDetails,
        EvaluationDetails,
        ExecutionDetails,
        StateMachineDetails,
    )
    from moto.stepfunctions.parser.asl.parse.test_state.asl_parser import TestStateAmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.test_state.preprocessor import TestStatePreprocessor
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
    from moto.stepfunctions.parser.backend.test_state.execution_worker import TestStateExecutionWorker
    from moto.stepfunctions.parser.mocking.mock_config import (
        MockedResponseReturn,
        MockedResponseThrow,
        MockTestCase,
        StateMockedResponses,
    )

    name = f"TestState-{uuid.uuid4().hex[:12]}"
    machine_arn = f"arn:aws:states:{region}:{account}:stateMachine:{name}"
    execution_arn = f"arn:aws:states:{region}:{account}:execution:{name}:{name}"
    # TestState does not retry or catch: the interpreter runs the bare state, _classify reads its handlers.
    bare = {key: value for key, value in state.items() if key not in ("Retry", "Catch")}
    program, _ = TestStateAmazonStateLanguageParser.parse(json.dumps(bare))
    _record_arguments(program.test_state)
    started = dt.datetime.now(dt.UTC)
    details = EvaluationDetails(
        aws_execution_details=AWSExecutionDetails(account=account, region=region, role_arn=role_arn or ""),
        execution_details=ExecutionDetails(
            arn=execution_arn, name=name, role_arn=role_arn or "", inpt=state_input, start_time=started.isoformat()
        ),
        state_machine_details=StateMachineDetails(
            arn=machine_arn, name=name, typ=StateMachineType.STANDARD, definition=json.dumps(bare)
        ),
    )

    class Ended(BaseExecutionWorkerCommunication):
        def __init__(self) -> None:
            pass

        def terminated(self) -> None:
            pass

    class Worker(TestStateExecutionWorker):
        def _get_evaluation_entrypoint(self) -> Any:
            return program

        def _get_evaluation_environment(self) -> Any:
            env = super()._get_evaluation_environment()
            env.variable_store._inner_scope.update(variables)
            if context:
                data = env.states.context_object.context_object_data
                for key, value in context.items():
                    data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
            if mock is not None:
                if "result" in mock:
                    answer: Any = MockedResponseReturn(0, 0, json.loads(mock["result"]))
                else:
                    error_output = mock["errorOutput"]
                    answer = MockedResponseThrow(0, 0, error_output["error"], error_output.get("cause") or "")
                responses = StateMockedResponses(TestStatePreprocessor.STATE_NAME, "mock", [answer])
                env.mock_test_case = MockTestCase(name, "TestState", [responses])
            return env

    worker = Worker(evaluation_details=details, exec_comm=Ended(), cloud_watch_logging_session=None, activity_store={})
    worker.start()
    env = worker.env
    assigned = dict(env.variable_store._inner_scope)
    return env, dict(env.inspection_data), assigned


def answer_test_state(payload: dict[str, Any], account: str, region: str) -> dict[str, Any]:
    """TestState's answer to `payload`, or the AwsError AWS would answer instead (rules: the module's docstring)."""
    from moto.stepfunctions.parser.asl.eval.program_state import (
        ProgramEnded,
        ProgramError,
        ProgramRunning,
        ProgramTimedOut,
    )
    from moto.stepfunctions.parser.asl.eval.test_state.program_state import ProgramChoiceSelected
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    if not payload.get("definition"):
        raise _validation(
            "1 validation error detected: Value at 'definition' failed to satisfy constraint: Member must not be null"
        )
    _check_lengths(payload)
    state = _state_under_test(str(payload["definition"]), payload.get("stateName"))
    _check_request(payload, state)
    state_input = _json(payload.get("input") or "{}", "input", "InvalidExecutionInput")
    variables = _json(payload.get("variables"), "variables") or {}
    if not isinstance(variables, dict):
        raise _validation("variables must be a JSON object of variable names and values")
    context = _json(payload.get("context"), "context")
    if context is not None and not isinstance(context, dict):
        raise _validation("Invalid Context object provided: it must be a JSON object")
    mock = payload.get("mock")
    if mock is not None and "result" in mock:
        check_mock_result(
            str(state.get("Resource", "")), json.loads(mock["result"]), mock.get("fieldValidationMode") or "STRICT"
        )
    env, inspection, assigned = _run(
        state,
        account=account,
        region=region,
        role_arn=payload.get("roleArn"),
        state_input=state_input,
        variables=variables,
        mock=mock,
        context=context,
    )
    ended = env.program_state()
    answer: dict[str, Any]
    if isinstance(ended, ProgramChoiceSelected):
        answer = {
            "status": "SUCCEEDED",
            "nextState": ended.next_state_name,
            "output": to_json_str(env.states.get_input()),
        }
    elif isinstance(ended, ProgramEnded | ProgramRunning):  # the test program ends its one state without set_ended
        answer = {"status": "SUCCEEDED", "output": to_json_str(env.states.get_input())}
        if state.get("Next"):
            answer["nextState"] = state["Next"]
    elif isinstance(ended, ProgramError | ProgramTimedOut):
        error = ended.error if isinstance(ended, ProgramError) else {"error": "States.Timeout", "cause": ""}
        status, next_state = _classify(state, str(error.get("error")), 0)
        answer = {"status": status, "error": error.get("error"), "cause": error.get("cause")}
        if status == "CAUGHT_ERROR":
            answer["nextState"] = next_state
            answer["output"] = json.dumps({"Error": error.get("error"), "Cause": error.get("cause")})
    else:
        answer = {"status": "FAILED", "error": "States.Runtime", "cause": f"the state ended {type(ended).__name__}"}
    if (payload.get("inspectionLevel") or "INFO") != "INFO":
        data = {key: value for key, value in inspection.items() if key in _INSPECTION_KEYS}
        data["variables"] = to_json_str(assigned, separators=(",", ":"))
        answer["inspectionData"] = data
    return answer


_INSPECTION_KEYS: Final[set[str]] = {
    "input",
    "afterArguments",
    "afterInputPath",
    "afterParameters",
    "result",
    "afterResultSelector",
    "afterResultPath",
}


class TestStateHandler:
    """Answers `AWSStepFunctions.TestState` for the account and region of the embedded AWS."""

    __test__ = False  # a pytest collecting this module must not take the class for a test

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region

    def handle(self, target: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        if target != _TARGET:
            return None
        return answer_test_state(payload, self.account, self.region)
