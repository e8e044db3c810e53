"""Every IAM policy statement of every synthesized template passes parliament, an IAM linter built on the
Service Authorization Reference: each action exists, each condition key is valid for its action, each resource
matches one of the action's resource types, and each operator suits its key's type. A mistyped condition key
would otherwise silently change what a guard rail means (IAM ignores nothing: a key absent from the request
context makes the condition false, so an Allow never matches or a Deny never fires).

CloudFormation intrinsics are resolved to placeholder values of the right shape (ARNs, ids) first, so parliament
sees the same ARNs the deployed policy will hold. Identity policies and resource policies (bucket, key, topic,
VPC endpoint) are checked; trust policies are not (parliament requires a Resource element, which a trust policy
never has; tests/test_platform_security.py pins each role's service principal instead).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from trainstack.config import load_environment

ENVS = ["local", "dev", "prod"]
PARTS = ["storage", "network", "image", "training", "notebook"]
# Where a policy document sits in each resource type.
POLICY_PROPERTIES = {
    "AWS::IAM::Policy": "PolicyDocument",
    "AWS::IAM::ManagedPolicy": "PolicyDocument",
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::KMS::Key": "KeyPolicy",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::EC2::VPCEndpoint": "PolicyDocument",
}
# Findings about style, not correctness (parliament's NOT_IDEAL and OLD groups); never a wrong key or action.
STYLE_FINDINGS = {"RESOURCE_STAR", "OLD_VERSION"}
# Linter false positives, each scoped to one finding and the action or key it names, with the reason.
FALSE_POSITIVES: list[tuple[str, str, str]] = [
    (
        "RESOURCE_MISMATCH",
        "'states:DescribeExecution'",
        "the reference marks execution* and express* as required, meaning either: a standard workflow's "
        "executions have no express ARN",
    ),
    (
        "RESOURCE_MISMATCH",
        "'states:ListExecutions'",
        "statemachine* and maprun* are alternatives, as above; the notebook lists its state machine's executions",
    ),
    (
        "UNKNOWN_CONDITION_FOR_ACTION",
        "Unknown condition s3:TlsVersion for action",
        "the buckets' Deny on s3:* for TLS < 1.2 (AWS's documented form): a Deny whose key an action lacks "
        "simply does not apply to it, and the two such actions (InitiateReplication, "
        "PutAccessPointPublicAccessBlock) are not calls a client makes over its own TLS session",
    ),
    (
        "MISMATCHED_TYPE",
        "s3:TlsVersion requires a value of type Numeric but given ['1.2']",
        "parliament's number pattern is ^\\d+$ (integers only); S3 documents s3:TlsVersion as a decimal like 1.2",
    ),
    (
        "MISMATCHED_TYPE_BUT_USABLE",
        "StringNotEquals requires a value of type String but given Arn",
        "s3:x-amz-server-side-encryption-aws-kms-key-id is a string header compared with the key's ARN, as in "
        "S3's documented deny-other-keys policy",
    ),
]


def _parliament() -> types.ModuleType:
    """parliament 1.6.4 reads its data files through pkg_resources, which setuptools >= 81 no longer ships;
    a two-line stand-in serves the same files from the installed package."""
    if "pkg_resources" not in sys.modules and importlib.util.find_spec("pkg_resources") is None:
        shim = types.ModuleType("pkg_resources")
        location = Path(importlib.util.find_spec("parliament").submodule_search_locations[0])  # type: ignore[index, union-attr]
        shim.resource_filename = lambda _package, name: str(location / name)  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
    import parliament

    return parliament


class Resolver:
    """CloudFormation intrinsics -> placeholder values shaped like what CloudFormation will put there."""

    def __init__(self, templates: dict[str, dict], account: str, region: str) -> None:
        self.templates, self.account, self.region = templates, account, region
        self.exports = {
            json.dumps(out["Export"]["Name"]): (name, out["Value"])
            for name, template in templates.items()
            for out in template.get("Outputs", {}).values()
            if "Export" in out
        }

    def _placeholder(self, template: str, logical_id: str, attribute: str) -> str:
        kind = self.templates[template]["Resources"][logical_id]["Type"]
        a, r, low = self.account, self.region, logical_id.lower()
        by_kind = {
            "AWS::KMS::Key": f"arn:aws:kms:{r}:{a}:key/11111111-2222-3333-4444-555555555555",
            "AWS::IAM::Role": f"arn:aws:iam::{a}:role/{low}",
            "AWS::IAM::ManagedPolicy": f"arn:aws:iam::{a}:policy/{low}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{low}",
            "AWS::SNS::Topic": f"arn:aws:sns:{r}:{a}:{low}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{r}:{a}:log-group:{low}:*",
            "AWS::StepFunctions::StateMachine": f"arn:aws:states:{r}:{a}:stateMachine:{low}",
            "AWS::ECR::Repository": f"arn:aws:ecr:{r}:{a}:repository/{low}",
        }
        ids = {
            "AWS::EC2::VPC": "vpc-0123456789abcdef0",
            "AWS::EC2::Subnet": "subnet-0123456789abcdef0",
            "AWS::EC2::SecurityGroup": "sg-0123456789abcdef0",
            "AWS::KMS::Key": "11111111-2222-3333-4444-555555555555",
            "AWS::S3::Bucket": low,
            "AWS::ECR::Repository": low,
        }
        if attribute in ("Ref", "GroupId", "VpcId", "SubnetId", "KeyId") and kind in ids:
            return ids[kind]
        if kind in by_kind:
            return by_kind[kind]
        raise AssertionError(f"no placeholder for {kind}.{attribute} ({template}/{logical_id})")

    def resolve(self, template: str, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(template, v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), *_ = value.items()
            if key == "Ref":
                pseudo = {
                    "AWS::Partition": "aws",
                    "AWS::Region": self.region,
                    "AWS::AccountId": self.account,
                    "AWS::URLSuffix": "amazonaws.com",
                }
                return pseudo.get(arg) or self._placeholder(template, arg, "Ref")
            if key == "Fn::GetAtt":
                return self._placeholder(template, arg[0], arg[1])
            if key == "Fn::Join":
                return arg[0].join(str(self.resolve(template, part)) for part in arg[1])
            if key == "Fn::ImportValue":
                source, exported = self.exports[json.dumps(arg)]
                return self.resolve(source, exported)
            if key == "Fn::Select":
                return self.resolve(template, arg[1])[int(arg[0])]
            if key == "Fn::Split":
                return str(self.resolve(template, arg[1])).split(arg[0])
            if key.startswith("Fn::"):
                raise AssertionError(f"unhandled intrinsic {key} in {template}")
        return {k: self.resolve(template, v) for k, v in value.items()}


def policies(synthesized, env: str) -> list[tuple[str, dict]]:
    """(where, resolved policy document) for every policy in the environment's templates."""
    stage = synthesized.stages[env]
    templates = {part: synthesized.template(env, part) for part in PARTS if getattr(stage, part, None) is not None}
    config = load_environment(env)
    resolver = Resolver(templates, config.account, config.region)
    found = []
    for part, template in templates.items():
        for logical_id, resource in template["Resources"].items():
            prop = POLICY_PROPERTIES.get(resource["Type"])
            document = resource.get("Properties", {}).get(prop) if prop else None
            if document:
                found.append((f"{env}/{part}/{logical_id}", resolver.resolve(part, document)))
    return found


def lint(document: dict) -> list[dict]:
    """parliament's findings for one policy document, less style and the scoped false positives."""
    findings = []
    for finding in _parliament().analyze_policy_string(json.dumps(document)).findings:
        detail = str(finding.detail)
        if finding.issue in STYLE_FINDINGS:
            continue
        if any(finding.issue == issue and text in detail for issue, text, _ in FALSE_POSITIVES):
            continue
        findings.append({"issue": finding.issue, "detail": detail})
    return findings


@pytest.mark.parametrize("env", ENVS)
def test_every_policy_statement_passes_the_iam_linter(synthesized, env: str) -> None:
    found = policies(synthesized, env)
    assert len(found) >= 8  # identity, bucket, key, topic (and with a created VPC, endpoint) policies
    problems = {where: lint(document) for where, document in found}
    assert {where: p for where, p in problems.items() if p} == {}


def test_the_linter_catches_a_mistyped_condition_key_and_an_unknown_action() -> None:
    """A guard rail with a typo in its key (sagemaker:VpcSubnet for VpcSubnets) must turn this suite red."""
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sagemaker:CreateTrainingJob",
                "Resource": "arn:aws:sagemaker:us-east-1:123456789012:training-job/trainstack*",
                "Condition": {"ForAllValues:StringEquals": {"sagemaker:VpcSubnet": ["subnet-0123456789abcdef0"]}},
            },
            {"Effect": "Allow", "Action": "sagemaker:CreateTrainingJobs", "Resource": "*"},
        ],
    }
    issues = {finding["issue"] for finding in lint(document)}
    assert {"UNKNOWN_CONDITION_FOR_ACTION", "UNKNOWN_ACTION"} <= issues
