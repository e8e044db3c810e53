"""An IAM policy whose every wildcard resource carries its reason with it.

cdk-nag's AwsSolutions-IAM5 flags any `*` in a resource. Rather than a growing list of suppressions
far from the statements, `allow()` takes the reason beside the statement and acknowledges exactly
that finding (`AwsSolutions-IAM5[Resource::<the ARN>]`) on this policy only. Resources must be literal
ARNs (see `trainstack.config.ResourceNames`) so the finding id is readable and stable; action
wildcards are not accepted at all.
"""

from __future__ import annotations

from aws_cdk import Token
from aws_cdk import aws_iam as iam
from constructs import Construct

from trainstack.platform.nag import acknowledge


class ScopedPolicy(iam.Policy):
    def __init__(self, scope: Construct, construct_id: str, *, roles: list[iam.IRole]) -> None:
        super().__init__(scope, construct_id, roles=roles)

    def allow(
        self,
        sid: str,
        actions: list[str],
        resources: list[str],
        *,
        wildcard_reason: str | None = None,
        conditions: dict[str, dict[str, object]] | None = None,
    ) -> None:
        for action in actions:
            if "*" in action:
                raise ValueError(f"{sid}: list actions explicitly instead of {action!r}")
        wildcards = [r for r in resources if "*" in r]
        if wildcards and not wildcard_reason:
            raise ValueError(f"{sid}: resources {wildcards} contain '*' and need a wildcard_reason")
        self.add_statements(iam.PolicyStatement(sid=sid, actions=actions, resources=resources, conditions=conditions))
        for resource in wildcards:
            if Token.is_unresolved(resource):
                raise ValueError(f"{sid}: wildcard resource must be a literal ARN to be acknowledged, got a token")
            acknowledge(self, f"AwsSolutions-IAM5[Resource::{resource}]", f"{sid}: {wildcard_reason}")

    def deny(
        self, sid: str, actions: list[str], resources: list[str], *, conditions: dict[str, dict[str, object]]
    ) -> None:
        """An explicit deny: it holds even where another policy allows. Always conditional (an unconditional
        deny is a missing allow)."""
        for action in actions:
            if "*" in action:
                raise ValueError(f"{sid}: list actions explicitly instead of {action!r}")
        self.add_statements(
            iam.PolicyStatement(
                sid=sid, effect=iam.Effect.DENY, actions=actions, resources=resources, conditions=conditions
            )
        )
