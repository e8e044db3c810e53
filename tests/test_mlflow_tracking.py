"""SageMaker managed MLflow (#17): one tracking server per environment, reachable by its jobs only.

The shipped environments configure none (a tracking server is an account's own resource), so one module-scoped
synthesis of `local` with `training.mlflow_tracking_server_arn` set stands for an environment that does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from trainstack.config import EnvironmentConfig, load_environment
from trainstack.embedded_aws.iam_policy_evaluation import AuthorizationRequest, Policy, Principal, evaluate
from trainstack.platform.constructs.sagemaker_execution_role import MLFLOW_LOGGING_ACTIONS
from trainstack.run_preview import definition_from_template, preview

REPO_ROOT = Path(__file__).resolve().parent.parent
MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME")
# Enough quota for one job: these tests look at the request, not at capacity.
QUOTAS = {
    key: {"key": key, "code": "L-TEST", "name": f"test {key}", "value": value, "source": "applied"}
    for key, value in (("training", 8), ("warm_pool", 4), ("max_runtime", 432000))
}


def _with_mlflow(config: EnvironmentConfig) -> tuple[EnvironmentConfig, str]:
    arn = f"arn:aws:sagemaker:{config.region}:{config.account}:mlflow-tracking-server/team-experiments"
    data = config.model_dump(mode="json")
    data["training"]["mlflow_tracking_server_arn"] = arn
    return EnvironmentConfig.model_validate(data), arn


@pytest.fixture(scope="module")
def mlflow_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EnvironmentConfig, str, dict, object]]:
    from aws_cdk import App

    from trainstack.platform.platform_stage import PlatformStage

    config, arn = _with_mlflow(load_environment("local"))
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    app = App(outdir=str(tmp_path_factory.mktemp("cdk.out")), context=context)
    stage = PlatformStage(app, config)
    yield config, arn, stage.synth().get_stack_by_name(stage.training.stack_name).template, stage


def _execution_role_statements(template: dict) -> list[dict]:
    return [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def _mlflow_statement(template: dict) -> dict:
    (statement,) = [s for s in _execution_role_statements(template) if s.get("Sid") == "LogRunsToMlflow"]
    return statement


def _state_machine_definition(template: dict) -> dict:
    # The pipeline; the training stack also holds its pool cleanup.
    [machine] = [
        r
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::StepFunctions::StateMachine" and k.startswith("PipelineStateMachine")
    ]
    return definition_from_template(machine["Properties"]["DefinitionString"])


def test_the_execution_role_logs_to_the_configured_server_only(mlflow_platform) -> None:
    config, arn, template, _ = mlflow_platform
    statement = _mlflow_statement(template)
    assert statement["Resource"] == arn
    assert sorted(statement["Action"]) == sorted(MLFLOW_LOGGING_ACTIONS)
    # The embedded IAM evaluator, on the role's policy as synthesized: this server yes, another no.
    role = f"arn:aws:iam::{config.account}:role/r"
    session = Principal(f"arn:aws:sts::{config.account}:assumed-role/r/job", config.account, (role,))
    policy = Policy("execution role", {"Version": "2012-10-17", "Statement": [statement]})
    other = arn.replace("/team-experiments", "/another-team")

    def allowed(action: str, resource: str) -> bool:
        return evaluate(AuthorizationRequest(session, action, resource), [policy]).allowed

    assert all(allowed(action, arn) for action in MLFLOW_LOGGING_ACTIONS)
    assert not allowed("sagemaker-mlflow:LogBatch", other)
    assert not allowed("sagemaker-mlflow:DeleteExperiment", arn)
    assert not allowed("sagemaker-mlflow:SearchRuns", arn)


def test_the_mlflow_statement_passes_the_iam_linter(mlflow_platform) -> None:
    """parliament knows the sagemaker-mlflow prefix: a mistyped action or a resource type the actions do not
    take (mlflow-app) would be a finding."""
    from tests.test_iam_lint import lint

    statement = _mlflow_statement(mlflow_platform[2])
    assert lint({"Version": "2012-10-17", "Statement": [statement]}) == []
    mistyped = {**statement, "Action": ["sagemaker-mlflow:LogMetrics"]}
    assert [f["issue"] for f in lint({"Version": "2012-10-17", "Statement": [mistyped]})] == ["UNKNOWN_ACTION"]


def test_cdk_nag_reports_nothing_with_a_server(mlflow_platform) -> None:
    from cdk_nag import AwsSolutionsChecks

    report = AwsSolutionsChecks().validate_scope(mlflow_platform[3])
    assert [v.rule_name for v in report.violations] == []


def test_without_a_server_no_role_may_use_mlflow(synthesized) -> None:
    for name in synthesized.stages:
        assert load_environment(name).training.mlflow_tracking_server_arn is None
        statements = _execution_role_statements(synthesized.template(name, "training"))
        assert "sagemaker-mlflow:" not in json.dumps([s["Action"] for s in statements]), name


def test_the_job_gets_the_server_and_experiment_only_when_configured(mlflow_platform, synthesized) -> None:
    config, arn, template, _ = mlflow_platform
    with_server = preview(_state_machine_definition(template), {}, quotas=QUOTAS)
    assert with_server.problems == [], with_server.problems
    environment = with_server.request["Environment"]
    assert environment["MLFLOW_TRACKING_URI"] == arn
    assert environment["MLFLOW_EXPERIMENT_NAME"] == config.name

    without = preview(_state_machine_definition(synthesized.template("local", "training")), {}, quotas=QUOTAS)
    assert without.problems == [], without.problems
    assert not [name for name in without.request["Environment"] if name.startswith("MLFLOW_")]


@pytest.mark.parametrize("name", MLFLOW_ENV)
def test_a_run_may_not_point_the_job_at_another_server(mlflow_platform, name: str) -> None:
    _, _, template, _ = mlflow_platform
    result = preview(
        _state_machine_definition(template), {"environment": {name: "https://198.51.100.7/"}}, quotas=QUOTAS
    )
    assert result.request is None
    assert any(p.startswith(f"environment.{name}: a run may not set it: the MLflow client") for p in result.problems)
