"""A state machine as the platform runs every one: logs of every state (with data) to a KMS-encrypted log group
kept six months, and X-Ray tracing.

A function, not a construct: it adds `ExecutionLogs` and `StateMachine` to the caller's scope, so the pipeline's
resources keep the logical ids (and names) they were first deployed with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from trainstack.platform.constructs.jsonata_text import one_line_expressions
from trainstack.platform.constructs.scoped_policy import ScopedPolicy
from trainstack.platform.nag import acknowledge


@dataclass(frozen=True)
class LoggedStateMachineProps:
    """What `logged_state_machine` reads; no environment config needed."""

    name: str
    """The state machine's name; its log group is `/aws/vendedlogs/states/<name>`. Required."""
    asl: dict[str, Any]
    """The definition (Amazon States Language; JSONata expressions may span lines, they are joined). Required."""
    role: iam.Role
    """The role the state machine runs as. Required."""
    key: kms.IKey
    """The KMS key of the execution log group. Required."""
    policy: ScopedPolicy
    """The role's own policy: the machine is created after it, so the first execution has its permissions.
    Required."""


def logged_state_machine(scope: Construct, props: LoggedStateMachineProps) -> tuple[sfn.StateMachine, logs.LogGroup]:
    """Adds `ExecutionLogs` and `StateMachine` to `scope`; returns both."""
    name, asl, role, key, policy = props.name, props.asl, props.role, props.key, props.policy
    log_group = logs.LogGroup(
        scope,
        "ExecutionLogs",
        log_group_name=f"/aws/vendedlogs/states/{name}",
        encryption_key=key,
        retention=logs.RetentionDays.SIX_MONTHS,
        removal_policy=RemovalPolicy.RETAIN,
    )
    state_machine = sfn.StateMachine(
        scope,
        "StateMachine",
        state_machine_name=name,
        definition_body=sfn.DefinitionBody.from_string(Stack.of(scope).to_json_string(one_line_expressions(asl))),
        role=role,
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        tracing_enabled=True,
    )
    # The machine's own policy must be attached before the first execution can start.
    state_machine.node.add_dependency(policy)
    # CDK adds log-delivery and X-Ray statements to the role's default policy; neither API has resources.
    acknowledge(
        role.node.find_child("DefaultPolicy"),
        "AwsSolutions-IAM5[Resource::*]",
        "CloudWatch Logs delivery (logs:CreateLogDelivery and friends) and X-Ray PutTraceSegments "
        "support no resource-level permissions; CDK adds exactly these for LogLevel.ALL and tracing.",
    )
    return state_machine, log_group
