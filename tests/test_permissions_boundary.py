"""Every role of an environment deployed to an account runs under a permissions boundary, and the platform's own
boundary leaves room for everything the roles' policies grant
(trainstack/platform/constructs/permissions_boundary.py)."""

from __future__ import annotations

import fnmatch

import pytest

from trainstack.config import load_environment
from trainstack.platform.constructs.permissions_boundary import DENIED_ACTIONS, boundary_actions

PARTS = ["storage", "network", "image", "training", "notebook"]


def _templates(synthesized, env: str) -> dict[str, dict]:
    stage = synthesized.stages[env]
    return {part: synthesized.template(env, part) for part in PARTS if getattr(stage, part, None) is not None}


def _of_type(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_role_has_a_permissions_boundary(synthesized, env: str) -> None:
    configured = load_environment(env).permissions_boundary_arn
    roles = {
        f"{part}/{logical_id}": role["Properties"].get("PermissionsBoundary")
        for part, template in _templates(synthesized, env).items()
        for logical_id, role in _of_type(template, "AWS::IAM::Role").items()
    }
    assert len(roles) >= 3  # execution, notebook, state machine (and the flow-log role of a created VPC)
    for where, boundary in roles.items():
        if configured:
            assert boundary == configured, where
        else:  # the platform's own, exported by the storage stack
            assert boundary and "Fn::ImportValue" in str(boundary), where


def test_the_platform_boundary_exists_only_where_none_is_configured(synthesized) -> None:
    assert synthesized.stages["dev"].storage.boundary is not None
    assert synthesized.stages["prod"].storage.boundary is None  # the organisation's
    assert synthesized.stages["local"].storage.boundary is None  # embedded: no account


@pytest.mark.parametrize("env", ["local", "dev", "prod"])
def test_every_action_a_role_is_granted_is_inside_the_platform_boundary(synthesized, env: str) -> None:
    allowed, denied = boundary_actions(), DENIED_ACTIONS
    outside = set()
    for part, template in _templates(synthesized, env).items():
        for policy in _of_type(template, "AWS::IAM::Policy").values():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if statement["Effect"] != "Allow":
                    continue
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                for action in actions:
                    if action not in allowed or any(fnmatch.fnmatchcase(action, d) for d in denied):
                        outside.add(f"{part}: {action}")
    assert outside == set()
