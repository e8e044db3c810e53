"""The delivery pipeline (trainstack/platform/delivery_pipeline.py), synthesized with the repository's dev and prod
environments as real PlatformStages, cdk-nag on: the stages' order, their gates, the approval before prod and the
cross-account key."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import shared_run

from trainstack.config import ConfigError, load_all
from trainstack.delivery_config import parse_pipeline

REPO_ROOT = Path(__file__).resolve().parent.parent
CONNECTION = "arn:aws:codeconnections:us-east-1:333333333333:connection/0123abcd-0000-1111-2222-333344445555"
PIPELINE = {
    "name": "trainstack-delivery",
    "account": "333333333333",
    "region": "us-east-1",
    "source": {"kind": "connection", "repository": "example-org/ml-platform", "connection_arn": CONNECTION},
    "stages": [
        {"environment": "dev", "smoke_role_arn": "arn:aws:iam::111111111111:role/trainstack-smoke"},
        {"environment": "prod", "manual_approval": True},
    ],
}


@pytest.fixture(scope="module")
@shared_run
def pipeline_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthesized app's folder (what `cdk synth` writes to cdk.out)."""
    from aws_cdk import App

    from trainstack.platform.delivery_pipeline import DeliveryPipelineStack

    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    outdir = tmp_path_factory.mktemp("pipeline.out")
    app = App(outdir=str(outdir), context=context)
    stack = DeliveryPipelineStack(app, parse_pipeline(PIPELINE, "test"), load_all(REPO_ROOT / "config"))
    # Raises on any cdk-nag finding without an acknowledgment, the pipeline's and the stages' alike.
    app.synth()
    assert [stage.stage_name for stage in stack.stages] == ["dev", "prod"]
    return outdir


@pytest.fixture(scope="module")
def pipeline_template(pipeline_assembly: Path) -> dict:
    return json.loads((pipeline_assembly / f"{PIPELINE['name']}.template.json").read_text())


def _stages(template: dict) -> list[dict]:
    (pipeline,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    return pipeline["Properties"]["Stages"]


def _actions(stage: dict) -> list[tuple[str, str, int]]:
    """(name, provider, run order) of a stage's actions, in run order."""
    actions = [(a["Name"], a["ActionTypeId"]["Provider"], a["RunOrder"]) for a in stage["Actions"]]
    return sorted(actions, key=lambda action: action[2])


def test_environments_deploy_in_the_declared_order(pipeline_template: dict) -> None:
    names = [stage["Name"] for stage in _stages(pipeline_template)]
    assert names[:2] == ["Source", "Build"], "the source, then the synth (cdk-nag gates it)"
    assert names[-2:] == ["dev", "prod"]


def test_each_stage_runs_the_unit_suite_before_it_deploys(pipeline_template: dict) -> None:
    for stage in _stages(pipeline_template)[-2:]:
        actions = _actions(stage)
        tests = [order for name, provider, order in actions if name == "UnitTests" and provider == "CodeBuild"]
        deploys = [order for _, provider, order in actions if provider == "CloudFormation"]
        assert tests and deploys, stage["Name"]
        assert max(tests) < min(deploys), f"{stage['Name']}: {actions}"


def test_a_person_approves_prod_after_its_tests_and_before_its_deploy(pipeline_template: dict) -> None:
    dev, prod = _stages(pipeline_template)[-2:]
    assert not [a for a in _actions(dev) if a[1] == "Manual"], "dev deploys without an approval"
    orders = {provider: order for _, provider, order in _actions(prod) if provider in ("Manual", "CodeBuild")}
    deploys = [order for _, provider, order in _actions(prod) if provider == "CloudFormation"]
    assert orders["CodeBuild"] < orders["Manual"] < min(deploys)


def test_the_smoke_follows_the_deploy_only_where_the_environment_allows_spending(pipeline_template: dict) -> None:
    dev, prod = _stages(pipeline_template)[-2:]
    dev_actions = _actions(dev)
    assert dev_actions[-1][0] == "Smoke"
    assert dev_actions[-1][2] > max(order for _, provider, order in dev_actions if provider == "CloudFormation")
    assert "Smoke" not in [name for name, _, _ in _actions(prod)]
    # It runs on the source (the app's config/ and requirements.txt), as the unit suite does.
    (smoke,) = [a for a in dev["Actions"] if a["Name"] == "Smoke"]
    (tests,) = [a for a in dev["Actions"] if a["Name"] == "UnitTests"]
    assert smoke["InputArtifacts"] == tests["InputArtifacts"] != []
    # The smoke's project may assume the configured role and no other.
    assumes = [
        statement
        for resource in pipeline_template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if statement["Action"] == "sts:AssumeRole" and "trainstack-smoke" in json.dumps(statement["Resource"])
    ]
    assert [s["Resource"] for s in assumes] == ["arn:aws:iam::111111111111:role/trainstack-smoke"]


def test_artifacts_are_encrypted_with_a_key_the_target_accounts_can_use(pipeline_template: dict) -> None:
    keys = [r for r in pipeline_template["Resources"].values() if r["Type"] == "AWS::KMS::Key"]
    assert len(keys) == 1
    assert keys[0]["Properties"]["EnableKeyRotation"] is True
    (pipeline,) = [r for r in pipeline_template["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    stores = pipeline["Properties"]["ArtifactStores"]
    assert all(store["ArtifactStore"]["EncryptionKey"]["Type"] == "KMS" for store in stores)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"stages": [{"environment": "staging"}]}, "stages.0.environment: no environment 'staging'"),
        (
            {"stages": [{"environment": "dev", "smoke_role_arn": "arn:aws:iam::222222222222:role/smoke"}]},
            "stages.0.smoke_role_arn: expected a role of dev's account 111111111111",
        ),
        ({"stages": [{"environment": "local"}]}, "stages.0.environment: 'local' runs on the embedded AWS"),
    ],
)
def test_a_stage_the_environments_cannot_serve_is_refused_naming_the_field(change: dict, expected: str) -> None:
    config = parse_pipeline({**PIPELINE, **change}, "pipeline.yaml")
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(")):
        config.environments(load_all(REPO_ROOT / "config"))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"stages": [{"environment": "dev"}, {"environment": "dev"}]}, "stages"),
        ({"source": {"kind": "git", "repository": "a/b"}}, "source"),
        ({"source": {"kind": "s3", "bucket": "b"}}, "source.s3.bucket"),
        ({"stages": []}, "stages"),
    ],
)
def test_a_malformed_pipeline_file_is_refused_naming_the_field(change: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"pipeline.yaml: invalid pipeline configuration\n  {field}"):
        parse_pipeline({**PIPELINE, **change}, "pipeline.yaml")


# --- trainstack bootstrap -------------------------------------------------------------------------------------


def _bootstrap(pipeline_assembly: Path, tmp_path: Path) -> str:
    from typer.testing import CliRunner

    from trainstack.cli import app

    pipeline_file = tmp_path / "pipeline.yaml"
    pipeline_file.write_text(json.dumps(PIPELINE), encoding="utf-8")  # JSON is YAML
    result = CliRunner().invoke(
        app, ["bootstrap", "--pipeline", str(pipeline_file), "--cdk-out", str(pipeline_assembly)]
    )
    assert result.exit_code == 0, result.output
    return result.output


def _policies(output: str) -> dict[str, dict]:
    """Each account's printed policy document, by account."""
    sections = re.split(r"^# Account (\d{12}) ", output, flags=re.M)[1:]
    return {
        account: json.loads(re.search(r"^\{.*^\}", body, re.M | re.S).group())  # type: ignore[union-attr]
        for account, body in zip(sections[::2], sections[1::2], strict=True)
    }


def test_bootstrap_prints_a_trusting_line_per_environment_of_the_pipeline(
    pipeline_assembly: Path, tmp_path: Path
) -> None:
    output = _bootstrap(pipeline_assembly, tmp_path)
    lines = sorted(line for line in output.splitlines() if line.startswith("cdk bootstrap"))
    policy = "--cloudformation-execution-policies arn:aws:iam::{}:policy/trainstack-delivery-cfn-execution"
    assert lines == [
        f"cdk bootstrap aws://111111111111/us-west-2 --trust 333333333333 {policy.format('111111111111')}",
        f"cdk bootstrap aws://222222222222/us-east-1 --trust 333333333333 {policy.format('222222222222')}",
        # The pipeline's own account: its stack, and CodePipeline's support stack in dev's region.
        f"cdk bootstrap aws://333333333333/us-east-1 {policy.format('333333333333')}",
        f"cdk bootstrap aws://333333333333/us-west-2 {policy.format('333333333333')}",
    ]
    assert "AdministratorAccess" not in output


def test_the_execution_policy_allows_the_services_of_each_accounts_templates_only(
    pipeline_assembly: Path, tmp_path: Path
) -> None:
    policies = _policies(_bootstrap(pipeline_assembly, tmp_path))
    assert sorted(policies) == ["111111111111", "222222222222", "333333333333"]
    services = {account: set(policy["Statement"][0]["Action"]) for account, policy in policies.items()}
    for account in ("111111111111", "222222222222"):
        assert {"sagemaker:*", "states:*", "kms:*", "s3:*", "iam:*", "logs:*"} <= services[account]
        assert not services[account] & {"codepipeline:*", "codebuild:*"}, "no pipeline in an environment"
    # dev creates its own VPC; prod uses an existing one but still manages its security groups.
    assert "ec2:*" in services["111111111111"]
    assert {"codepipeline:*", "codebuild:*", "kms:*", "s3:*"} <= services["333333333333"]
    assert not services["333333333333"] & {"sagemaker:*", "states:*", "ec2:*"}
    for policy in policies.values():
        actions = [action for statement in policy["Statement"] for action in statement["Action"]]
        assert "*" not in actions and "*:*" not in actions
        # Beyond the owning services, single actions their handlers call: no further wildcard.
        assert all("*" not in action for statement in policy["Statement"][1:] for action in statement["Action"])
        # A managed policy holds at most 6,144 characters without whitespace.
        assert len(json.dumps(policy, separators=(",", ":"))) <= 6144


def test_bootstrap_without_a_synthesized_app_says_what_to_run(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trainstack.cli import app

    (tmp_path / "pipeline.yaml").write_text(json.dumps(PIPELINE), encoding="utf-8")
    result = CliRunner().invoke(
        app, ["bootstrap", "--pipeline", str(tmp_path / "pipeline.yaml"), "--cdk-out", str(tmp_path / "cdk.out")]
    )
    assert result.exit_code != 0
    assert "run `cdk synth` first" in result.output
