"""IAM policy evaluation for requests within one account, as AWS documents it (pure functions, no moto).

Why our own: moto's `moto.iam.access_control` checks actions and resources of identity policies only (no
conditions outside trust policies, no permissions boundaries, resource policies barely), and the listed
libraries do not evaluate requests: `policyuniverse` parses and expands policies, `policy-sentry` writes
them, `iam-ape` computes a principal's effective permission set without a request context. Sources:
- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html
- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html
- https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html (a key policy must allow
  the account for IAM policies to count)

Covered: explicit Deny wins; identity policies ∩ permissions boundary; same-account resource policies
(a grant naming the caller's role or session counts on its own, one naming the account only delegates to
IAM); KMS key policies as the required gate; Action/NotAction, Resource/NotResource, Principal/NotPrincipal
with `*`/`?`; String*, Arn*, Bool, Numeric*, Null, `...IfExists`, `ForAllValues:`/`ForAnyValue:`;
`${aws:...}` policy variables from the request context. Not covered (the platform uses none): Date*,
IpAddress, Binary, SCPs/RCPs, session policies, cross-account requests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

ContextValue = str | bool | int | float | Sequence[str]


class PolicyKind(Enum):
    IDENTITY = "identity-based policy"
    BOUNDARY = "permissions boundary"
    RESOURCE = "resource-based policy"


@dataclass(frozen=True)
class Policy:
    """One policy document with a name for reports (`role/inline-name`, a managed policy ARN, `bucket policy`)."""

    name: str
    document: Mapping[str, Any]


@dataclass(frozen=True)
class Principal:
    """Who calls: `arn` is what AWS puts in messages (the session ARN for a role); `identity_arns` are the ARNs
    a resource policy may name for it (the session and its role)."""

    arn: str
    account: str
    identity_arns: tuple[str, ...] = ()
    # An AWS service assuming a role (`sagemaker.amazonaws.com`): matched by a trust policy's `Service` element.
    service: str = ""


@dataclass(frozen=True)
class AuthorizationRequest:
    principal: Principal
    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)


@dataclass(frozen=True)
class StatementMatch:
    policy: str
    sid: str | None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # Which policy type decided a denial: the explicit deny's, or the one that had no allow.
    denied_by: PolicyKind | None = None
    explicit: bool = False
    allowed_by: tuple[StatementMatch, ...] = ()

    def message(self, request: AuthorizationRequest) -> str:
        """AWS's AccessDenied wording."""
        head = (
            f"User: {request.principal.arn} is not authorized to perform: {request.action} "
            f"on resource: {request.resource}"
        )
        if self.allowed or self.denied_by is None:
            return head
        if self.explicit:
            article = "an" if self.denied_by.value[0] in "aeiou" else "a"
            return f"{head} with an explicit deny in {article} {self.denied_by.value}"
        return f"{head} because no {self.denied_by.value} allows the {request.action} action"


# ----------------------------------------------------------------------------------------- matching


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _glob(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM's wildcards: `*` any run of characters (across `/` and `:`), `?` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, value, flags | re.DOTALL) is not None


def action_matches(pattern: str, action: str) -> bool:
    # Action names are case-insensitive ("s3:getobject" grants s3:GetObject).
    return _glob(pattern, action, case_sensitive=False)


def arn_matches(pattern: str, arn: str) -> bool:
    """ArnLike: each of the six colon-separated parts matched on its own (the resource part keeps its colons)."""
    if pattern == "*":
        return True
    pattern_parts = pattern.split(":", 5)
    arn_parts = arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return _glob(pattern, arn)
    return all(_glob(p, a) for p, a in zip(pattern_parts, arn_parts, strict=True))


def _substitute(value: str, context: Mapping[str, ContextValue]) -> str:
    """Policy variables `${aws:PrincipalArn}`; `${*}`, `${?}`, `${$}` stand for the literal characters."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in ("*", "?", "$"):
            return name
        found = _lookup(context, name)
        if found is None or isinstance(found, list | tuple):
            # AWS: a variable with no single value makes the element not match; "\0" can match nothing real.
            return "\0"
        return _string(found)

    return re.sub(r"\$\{([^}]+)\}", replace, value)


def _lookup(context: Mapping[str, ContextValue], key: str) -> ContextValue | None:
    # Condition key names are case-insensitive.
    lowered = key.lower()
    for name, value in context.items():
        if name.lower() == lowered:
            return value
    return None


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _principal_matches(element: Any, principal: Principal) -> bool:
    """Whether a resource policy's Principal names this caller (or everyone, or its account)."""
    if element == "*":
        return True
    for kind, values in (element or {}).items():
        for value in _as_list(values):
            if kind == "Service" and principal.service and value == principal.service:
                return True
            if kind == "AWS" and not principal.service:
                if value == "*" or value in principal.identity_arns or value == principal.arn:
                    return True
                if value in (principal.account, f"arn:aws:iam::{principal.account}:root"):
                    return True
    return False


def _names_caller_itself(element: Any, principal: Principal) -> bool:
    """A grant to the role or session itself (not to the account, which only delegates to IAM)."""
    if element == "*":
        return True
    if principal.service:
        # A service has no identity policies: the trust policy naming it is the whole grant.
        return principal.service in [v for k, vs in (element or {}).items() if k == "Service" for v in _as_list(vs)]
    values = [v for k, vs in (element or {}).items() if k == "AWS" for v in _as_list(vs)]
    return any(v == "*" or v == principal.arn or v in principal.identity_arns for v in values)


# ----------------------------------------------------------------------------------------- conditions

_STRING_OPERATORS = {
    "StringEquals": lambda p, v: p == v,
    "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
    "StringLike": lambda p, v: _glob(p, v),
    "ArnEquals": arn_matches,
    "ArnLike": arn_matches,
    "Bool": lambda p, v: p.lower() == v.lower(),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}
_NUMERIC = {
    "NumericEquals": lambda p, v: v == p,
    "NumericLessThan": lambda p, v: v < p,
    "NumericLessThanEquals": lambda p, v: v <= p,
    "NumericGreaterThan": lambda p, v: v > p,
    "NumericGreaterThanEquals": lambda p, v: v >= p,
}


def _value_matches(operator: str, policy_value: str, context_value: str) -> bool:
    if operator in _NUMERIC:
        try:
            return bool(_NUMERIC[operator](float(policy_value), float(context_value)))
        except ValueError:
            return False
    try:
        compare = _STRING_OPERATORS[operator]
    except KeyError:
        raise ValueError(f"condition operator {operator!r} is not supported by the embedded IAM evaluator") from None
    return bool(compare(policy_value, context_value))


def condition_matches(block: Mapping[str, Mapping[str, Any]] | None, context: Mapping[str, ContextValue]) -> bool:
    """A Condition element: operators AND, keys AND, policy values OR (NOR for negated operators)."""
    for raw_operator, keys in (block or {}).items():
        qualifier, _, operator = raw_operator.rpartition(":")
        if_exists = operator.endswith("IfExists")
        operator = operator.removesuffix("IfExists")
        for key, wanted in keys.items():
            values = [_substitute(_string(v), context) for v in _as_list(wanted)]
            if not _key_matches(qualifier, operator, if_exists, values, _lookup(context, key)):
                return False
    return True


def _key_matches(qualifier: str, operator: str, if_exists: bool, values: list[str], present: Any) -> bool:
    if operator == "Null":
        # "true": the key must be absent; "false": present.
        return any((v.lower() == "true") == (present is None) for v in values)
    negated = operator in _NEGATED
    base = _NEGATED.get(operator, operator)
    if present is None:
        if qualifier == "ForAllValues":
            return True  # vacuously true over an empty set
        if qualifier == "ForAnyValue":
            return False
        return if_exists or negated  # a missing key never matches; a negated operator is then true

    context_values = [_string(v) for v in _as_list(present)]

    def one(value: str) -> bool:
        hit = any(_value_matches(base, policy_value, value) for policy_value in values)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(value) for value in context_values)
    if qualifier == "ForAnyValue":
        return any(one(value) for value in context_values)
    if qualifier:
        raise ValueError(f"condition qualifier {qualifier!r} is not supported")
    if negated:
        # No listed value may match any of the request's values.
        return all(one(value) for value in context_values)
    return any(one(value) for value in context_values)


# ----------------------------------------------------------------------------------------- statements


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return _as_list(document.get("Statement"))


def statement_applies(statement: Mapping[str, Any], request: AuthorizationRequest, *, resource_policy: bool) -> bool:
    """Action, Resource, (for a resource policy) Principal, and Condition all match the request."""
    if "Action" in statement:
        if not any(action_matches(p, request.action) for p in _as_list(statement["Action"])):
            return False
    elif not statement.get("NotAction") or any(
        action_matches(p, request.action) for p in _as_list(statement["NotAction"])
    ):
        return False
    context = request.context
    if "Resource" in statement:
        resources = [_substitute(r, context) for r in _as_list(statement["Resource"])]
        if not any(arn_matches(r, request.resource) for r in resources):
            return False
    elif "NotResource" in statement:
        resources = [_substitute(r, context) for r in _as_list(statement["NotResource"])]
        if any(arn_matches(r, request.resource) for r in resources):
            return False
    elif not resource_policy:
        return False  # an identity policy statement needs a Resource or NotResource
    if resource_policy:
        if "Principal" in statement:
            if not _principal_matches(statement["Principal"], request.principal):
                return False
        elif "NotPrincipal" in statement and _principal_matches(statement["NotPrincipal"], request.principal):
            return False
    return condition_matches(statement.get("Condition"), context)


@dataclass(frozen=True)
class _Findings:
    deny: bool
    allows: tuple[tuple[StatementMatch, Mapping[str, Any]], ...]


def _scan(policies: Iterable[Policy], request: AuthorizationRequest, *, resource_policy: bool = False) -> _Findings:
    deny = False
    allows: list[tuple[StatementMatch, Mapping[str, Any]]] = []
    for policy in policies:
        for statement in _statements(policy.document):
            if not statement_applies(statement, request, resource_policy=resource_policy):
                continue
            if statement.get("Effect") == "Deny":
                deny = True
            elif statement.get("Effect") == "Allow":
                allows.append((StatementMatch(policy.name, statement.get("Sid")), statement))
    return _Findings(deny, tuple(allows))


# ----------------------------------------------------------------------------------------- evaluation


def evaluate(
    request: AuthorizationRequest,
    identity_policies: Sequence[Policy],
    *,
    boundary: Policy | None = None,
    resource_policy: Policy | None = None,
    resource_policy_required: bool = False,
) -> Decision:
    """Allow or deny one request of an IAM role session or user within its own account.

    `resource_policy_required` is KMS's rule: without a key policy statement that allows the caller, the
    account (delegating to IAM) or everyone, identity policies do not count.
    """
    identity = _scan(identity_policies, request)
    bound = _scan([boundary], request) if boundary else None
    resource = _scan([resource_policy], request, resource_policy=True) if resource_policy else None

    for kind, findings in (
        (PolicyKind.RESOURCE, resource),
        (PolicyKind.IDENTITY, identity),
        (PolicyKind.BOUNDARY, bound),
    ):
        if findings is not None and findings.deny:
            return Decision(False, kind, explicit=True)

    if bound is not None and not bound.allows:
        # A boundary limits identity grants and grants to the role; only a grant naming the session escapes it.
        session_grant = resource is not None and any(
            request.principal.arn in _as_list((statement.get("Principal") or {}).get("AWS"))
            for _, statement in resource.allows
        )
        if not session_grant:
            return Decision(False, PolicyKind.BOUNDARY)

    resource_self = resource is not None and any(
        _names_caller_itself(statement.get("Principal"), request.principal) for _, statement in resource.allows
    )
    if resource_self and resource is not None:
        return Decision(True, allowed_by=tuple(m for m, _ in resource.allows))
    if resource_policy_required and (resource is None or not resource.allows):
        return Decision(False, PolicyKind.RESOURCE)
    if identity.allows:
        return Decision(True, allowed_by=tuple(m for m, _ in identity.allows))
    return Decision(False, PolicyKind.IDENTITY)


__all__ = [
    "AuthorizationRequest",
    "Decision",
    "Policy",
    "PolicyKind",
    "Principal",
    "StatementMatch",
    "action_matches",
    "arn_matches",
    "condition_matches",
    "evaluate",
]
