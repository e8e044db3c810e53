"""A Studio-enabled environment's user-profile roles stand under the notebook's guard rails (issue #18).

The embedded AWS cannot create a Studio domain, so the roles' synthesized policies (and the permissions boundary
they carry) are evaluated with the embedded IAM evaluator, on the checks the embedded AWS makes for a
CreateTrainingJob request: the conforming request of the environment is allowed, and each of the notebook's
refusal cases (tests/test_guard_rails_enforced.py's table) is refused for the same action, explicitly where the
notebook's is.

The environment is the notebook tests' own (config/local.yaml) with a `studio:` block, as a real account's:
the table is written for its instance types (an EBS-backed conforming type; dev's and prod's allowed families
all have local NVMe storage, where the volume-key cases mean the opposite) and its ceilings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from conftest import REPO_ROOT, shared_run
from test_guard_rails_enforced import CONFIG as NOTEBOOK_CONFIG
from test_guard_rails_enforced import CONFORMING_INSTANCE_TYPE, NOTEBOOK_REFUSALS, Request, request_from_outputs

from trainstack.config import EnvironmentConfig, ResourceNames, parse_environment
from trainstack.embedded_aws.iam_enforcement import create_training_job_checks
from trainstack.embedded_aws.iam_policy_evaluation import AuthorizationRequest, Decision, Policy, Principal, evaluate
from trainstack.platform.platform_stage import PlatformStage
from trainstack.platform.studio_stack import studio_user_role_name


def _studio_environment() -> EnvironmentConfig:
    data = yaml.safe_load((REPO_ROOT / "config" / "local.yaml").read_text())
    data.pop("quotas")  # served by the embedded AWS only
    data.update(
        name="studio-test",
        prefix="trainstack-studio-test",
        embedded=False,
        # A real account's image would be built (asset) or pushed (repository); the rails do not depend on it.
        image={"mode": "repository"},
        studio={"auth_mode": "SSO", "user_profiles": ["alice", "bob"]},
    )
    return parse_environment(data, "tests/test_studio_guard_rails.py")


CONFIG = _studio_environment()
NAMES = ResourceNames.of(CONFIG)
PARTS = ("storage", "network", "training", "studio")


class Templates:
    """The environment's synthesized templates, with intrinsics resolved to stable made-up physical ids, so that
    a policy and the stack outputs a user reads name the same subnet, group, key and role."""

    def __init__(self, stage: PlatformStage) -> None:
        assembly = stage.synth()
        self.templates = {part: assembly.get_stack_by_name(getattr(stage, part).stack_name).template for part in PARTS}
        self.exports = {
            output["Export"]["Name"]: (part, output["Value"])
            for part, template in self.templates.items()
            for output in template.get("Outputs", {}).values()
            if "Export" in output
        }

    def _physical(self, part: str, logical_id: str, attribute: str | None) -> str:
        resource = self.templates[part]["Resources"][logical_id]
        kind, properties = resource["Type"], resource.get("Properties", {})
        digest = hashlib.sha256(f"{part}/{logical_id}".encode()).hexdigest()
        if kind == "AWS::EC2::Subnet":
            return f"subnet-{digest[:17]}"
        if kind == "AWS::EC2::SecurityGroup":
            return f"sg-{digest[:17]}"
        if kind == "AWS::EC2::VPC":
            return f"vpc-{digest[:17]}"
        if kind == "AWS::KMS::Key":
            return NAMES.arn("kms", f"key/{digest[:32]}") if attribute == "Arn" else digest[:32]
        if kind == "AWS::IAM::Role":
            name = properties.get("RoleName", f"{logical_id}-{digest[:8]}")
            return f"arn:{NAMES.partition}:iam::{NAMES.account}:role/{name}" if attribute == "Arn" else name
        if kind == "AWS::IAM::ManagedPolicy":
            name = properties.get("ManagedPolicyName", f"{logical_id}-{digest[:8]}")
            return f"arn:{NAMES.partition}:iam::{NAMES.account}:policy/{name}"
        raise AssertionError(f"no made-up id for {kind} ({part}/{logical_id}.{attribute})")

    def resolve(self, value: Any, part: str) -> Any:
        if isinstance(value, list):
            return [self.resolve(v, part) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            pseudo = {"AWS::Partition": NAMES.partition, "AWS::Region": NAMES.region, "AWS::AccountId": NAMES.account}
            return pseudo.get(value["Ref"]) or self._physical(part, value["Ref"], None)
        if set(value) == {"Fn::GetAtt"}:
            logical_id, attribute = value["Fn::GetAtt"]
            return self._physical(part, logical_id, attribute)
        if set(value) == {"Fn::ImportValue"}:
            exporter, exported = self.exports[value["Fn::ImportValue"]]
            return self.resolve(exported, exporter)
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(str(p) for p in self.resolve(parts, part))
        return {k: self.resolve(v, part) for k, v in value.items()}

    def outputs(self, part: str, *keys: str) -> dict[str, str]:
        return {key: self.resolve(self.templates[part]["Outputs"][key]["Value"], part) for key in keys}

    def role(self, role_name: str) -> tuple[list[Policy], Policy | None]:
        """The identity policies attached to the Studio role named `role_name`, and its permissions boundary."""
        studio = self.templates["studio"]["Resources"]
        [(logical_id, role)] = [
            (k, r)
            for k, r in studio.items()
            if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("RoleName") == role_name
        ]
        policies = [
            Policy(k, self.resolve(r["Properties"]["PolicyDocument"], "studio"))
            for k, r in studio.items()
            if r["Type"] == "AWS::IAM::Policy" and {"Ref": logical_id} in r["Properties"]["Roles"]
        ]
        assert "ManagedPolicyArns" not in role["Properties"], "managed policies would escape this evaluation"
        boundary_ref = role["Properties"].get("PermissionsBoundary")
        if boundary_ref is None:
            return policies, None
        exporter, exported = self.exports[boundary_ref["Fn::ImportValue"]]
        boundary = self.templates[exporter]["Resources"][exported["Ref"]]
        return policies, Policy("boundary", self.resolve(boundary["Properties"]["PolicyDocument"], exporter))


@pytest.fixture(scope="module")
@shared_run
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    from aws_cdk import App

    # The same feature flags the CLI passes from cdk.json, so templates match `cdk synth`.
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    app = App(outdir=str(tmp_path_factory.mktemp("cdk.out")), context=context)
    return Templates(PlatformStage(app, CONFIG))


@pytest.fixture
def account(embedded_aws: Any) -> Any:
    """Where the refusal table's edits make their other subnet, security group and key: this worker's embedded AWS.
    Not moto's `mock_aws`: leaving it resets moto's process-wide state, which is the session's embedded AWS too
    (the role the later tests' executions assume was gone with it)."""
    return embedded_aws


def _conforming(templates: Templates, tag: str) -> Request:
    code = f"s3://{NAMES.artifacts_bucket}/code/studio-{tag}.tar.gz"
    network = templates.outputs("network", "SubnetIds", "SecurityGroupId")
    storage, training = templates.outputs("storage", "KmsKeyArn"), templates.outputs("training", "ExecutionRoleArn")
    name = f"{CONFIG.training.job_name_prefix}-studio-{tag}"
    return request_from_outputs(CONFIG, name, code, network, storage, training, instance_type=CONFORMING_INSTANCE_TYPE)


def _first_denial(templates: Templates, profile: str, request: Request) -> tuple[str, Decision] | None:
    role_name = studio_user_role_name(NAMES, profile)
    policies, boundary = templates.role(role_name)
    principal = Principal(
        arn=f"arn:{NAMES.partition}:sts::{NAMES.account}:assumed-role/{role_name}/studio",
        account=NAMES.account,
        identity_arns=(f"arn:{NAMES.partition}:iam::{NAMES.account}:role/{role_name}",),
    )
    job = NAMES.arn("sagemaker", f"training-job/{request['TrainingJobName'].lower()}")
    for check in create_training_job_checks(job, request, {}):
        decision = evaluate(
            AuthorizationRequest(principal, check.action, check.resource, check.context), policies, boundary=boundary
        )
        if not decision.allowed:
            return check.action, decision
    return None


def test_the_environment_has_studio_with_profiles_and_the_table_applies() -> None:
    assert CONFIG.studio is not None and CONFIG.studio.user_profiles
    # The table's runtime case is one above the notebook environment's ceiling: this one's.
    assert CONFIG.training.max_runtime_ceiling_seconds == NOTEBOOK_CONFIG.training.max_runtime_ceiling_seconds


@pytest.mark.parametrize("profile", CONFIG.studio.user_profiles if CONFIG.studio else [])
def test_a_studio_role_may_send_the_conforming_request(templates: Templates, profile: str) -> None:
    assert _first_denial(templates, profile, _conforming(templates, "ok")) is None


@pytest.mark.parametrize(
    ("change", "edit", "action", "explicit"), NOTEBOOK_REFUSALS, ids=[r[0] for r in NOTEBOOK_REFUSALS]
)
def test_a_studio_role_is_refused_a_job_with(
    templates: Templates,
    account: Any,
    change: str,
    edit: Callable[[Any, Request], None],
    action: str,
    explicit: bool,
) -> None:
    assert CONFIG.studio is not None
    for profile in CONFIG.studio.user_profiles:
        request = _conforming(templates, "refused")
        edit(account, request)
        denial = _first_denial(templates, profile, request)
        assert denial is not None, f"{profile}: {change} was allowed"
        refused_action, decision = denial
        assert refused_action == action, (profile, change, decision)
        assert decision.explicit is explicit, (profile, change, decision)
