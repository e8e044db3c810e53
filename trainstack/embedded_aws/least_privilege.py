"""The least-privilege table: for each platform role, each granted (action, resource) and whether a call
allowed through it was seen by the embedded AWS (`IamEnforcement.log`).

Grants come from the deployed roles' policies through the IAM API; nothing here touches moto.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from .iam_enforcement import Recorded
from .iam_policy_evaluation import action_matches, arn_matches


@dataclass(frozen=True)
class Grant:
    role: str  # the role's name
    policy: str
    sid: str
    action: str
    resource: str
    uses: int

    @property
    def exercised(self) -> bool:
        return self.uses > 0


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_documents(iam: Any, role: str) -> list[tuple[str, dict[str, Any]]]:
    """(policy name, document) for the role's inline and attached managed policies."""
    documents = [
        (name, iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
    ]
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)["PolicyVersion"]
        documents.append((attached["PolicyName"], document["Document"]))
    return [(name, json.loads(doc) if isinstance(doc, str) else doc) for name, doc in documents]


def grants(iam: Any, account: str, role: str, log: list[Recorded]) -> list[Grant]:
    role_arn = f"arn:aws:iam::{account}:role/{role}"
    allowed = [entry for entry in log if entry.entity_arn == role_arn and entry.allowed]
    rows = []
    for policy, document in role_documents(iam, role):
        for index, statement in enumerate(_list(document.get("Statement", []))):
            if statement.get("Effect") != "Allow":
                continue
            sid = statement.get("Sid") or f"#{index}"
            for action in _list(statement.get("Action", [])):
                for resource in _list(statement.get("Resource", "*")):
                    uses = sum(
                        1
                        for entry in allowed
                        if action_matches(action, entry.action) and arn_matches(resource, entry.resource)
                    )
                    rows.append(Grant(role, policy, sid, action, resource, uses))
    return rows


def markdown(tables: dict[str, list[Grant]], reasons: dict[tuple[str, str], str]) -> str:
    """One table per platform role; `reasons` explains grants no test exercised, keyed (role key, action)."""
    lines = ["# Least privilege: platform grants and the calls that used them", ""]
    lines.append("Written by the test suite (`tests/conftest.py`) from the embedded AWS's IAM decisions.")
    for key, rows in tables.items():
        lines += ["", f"## {key} ({rows[0].role if rows else 'not deployed'})", ""]
        lines += ["| statement | action | resource | calls allowed | why unused |", "| --- | --- | --- | --- | --- |"]
        for row in rows:
            why = "" if row.exercised else reasons.get((key, row.action), "**unexplained**")
            lines.append(f"| {row.sid} | `{row.action}` | `{row.resource}` | {row.uses} | {why} |")
    return "\n".join(lines) + "\n"


def _by_place(rows: list[Grant]) -> dict[tuple[str, str, str, int], Grant]:
    """Rows keyed by policy, statement, action and the resource's place among that action's resources."""
    seen: dict[tuple[str, str, str], int] = {}
    keyed = {}
    for row in rows:
        place = (row.policy, row.sid, row.action)
        seen[place] = seen.get(place, -1) + 1
        keyed[(*place, seen[place])] = row
    return keyed


def merged(tables: dict[str, list[Grant]], others: list[dict[str, list[Grant]]]) -> dict[str, list[Grant]]:
    """`tables` with the uses of `others` added: the same stacks deployed into other accounts (pytest's other
    workers), whose calls count as this session's. A grant is matched by its place in the policies (policy,
    statement, action, the n-th resource): its resource and the role's name may differ, as CloudFormation names
    some resources (a KMS key's id). Deploys whose policies differ in shape are an error."""
    result = {key: list(rows) for key, rows in tables.items()}
    for other in others:
        if set(other) != set(result):
            raise ValueError(f"the other deploy has the roles {sorted(other)}, this one {sorted(result)}")
        for key, rows in result.items():
            theirs, mine = _by_place(other[key]), _by_place(rows)
            if set(theirs) != set(mine):
                raise ValueError(f"the {key}'s grants differ between the deploys: {sorted(set(theirs) ^ set(mine))}")
            result[key] = [replace(row, uses=row.uses + theirs[place].uses) for place, row in mine.items()]
    return result
