"""Gap: moto's EventBridge cannot deliver to a Step Functions state machine target (NotImplementedError).

AWS starts an execution of the target machine with the matched event (or the target's Input / InputPath /
InputTransformer) as its input, calling states:StartExecution as the target's RoleArn. We do the same through
the endpoint, as that role, so the IAM enforcement evaluates the call; the other targets go to moto as before.
Delivery is asynchronous, as on AWS: a failed start is logged (AWS would retry, then use a dead-letter queue).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import threading
from typing import Any, Final

from moto.events.models import Rule
from moto.events.utils import EventTemplateParser
from moto.utilities.arns import parse_arn

from .assumed_role_credentials import EVENTBRIDGE, Assumer, role_client

SESSION_NAME: Final[str] = "EventBridge"
_LOG = logging.getLogger(__name__)


def _is_state_machine(target: dict[str, Any]) -> bool:
    arn = parse_arn(target["Arn"])
    return arn.service == "states" and arn.resource_type == "stateMachine"


def _input(target: dict[str, Any], event: dict[str, Any]) -> str:
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        # Only the paths this platform could use: the event itself or one top-level field.
        path = str(target["InputPath"]).removeprefix("$").removeprefix(".")
        return json.dumps(event.get(path) if path else event)
    transformer = target.get("InputTransformer")
    if transformer:
        shaped = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
        return shaped if isinstance(shaped, str) else json.dumps(shaped)
    return json.dumps(event)


def _start(target: dict[str, Any], event: dict[str, Any], rule_arn: str) -> None:
    arn = parse_arn(target["Arn"])
    role_arn = target.get("RoleArn")
    try:
        if not role_arn:
            raise ValueError("a Step Functions target needs a RoleArn (EventBridge calls StartExecution as it)")
        endpoint = f"http://127.0.0.1:{os.environ['MOTO_PORT']}"
        assumer = Assumer(EVENTBRIDGE, rule_arn)
        client = role_client(endpoint, arn.region, "stepfunctions", role_arn, SESSION_NAME, assumer=assumer)
        client.start_execution(stateMachineArn=target["Arn"], input=_input(target, event))
    except Exception:
        _LOG.exception("EventBridge could not start %s for event %s", target["Arn"], event.get("id"))


_original_send_to_targets = Rule.send_to_targets


def send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
    machines = [target for target in self.targets if _is_state_machine(target)]
    if machines and self.event_pattern.matches_event(original_event):
        for target in machines:
            threading.Thread(target=_start, args=(target, copy.deepcopy(original_event), self.arn), daemon=True).start()
    if len(machines) < len(self.targets):
        others = copy.copy(self)
        others.targets = [target for target in self.targets if not _is_state_machine(target)]
        _original_send_to_targets(others, original_event, transform_input)


def apply() -> None:
    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
