"""The platform team's page, as synthesized (issue #18)."""

from __future__ import annotations

import json

import pytest

from trainstack.config import ResourceNames, load_environment
from trainstack.platform.constructs.platform_dashboard import LOSS_METRICS, TRAINING_METRICS_NAMESPACE

ENVS = ["local", "dev", "prod"]


def _resources(template: dict, kind: str) -> list[dict]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


def _environment_resources(synthesized, env: str, kind: str) -> list[dict]:
    stage = synthesized.stages[env]
    parts = [p for p in ("storage", "network", "image", "training", "notebook", "studio") if getattr(stage, p, None)]
    return [r for part in parts for r in _resources(synthesized.template(env, part), kind)]


def _body(dashboard: dict) -> dict:
    """The dashboard body as CloudFormation would render it, each `Ref` shown as `<Ref:logical id>`."""
    _, parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"]
    return json.loads("".join(p if isinstance(p, str) else f"<Ref:{p['Ref']}>" for p in parts))


@pytest.mark.parametrize("env", ENVS)
def test_one_dashboard_per_environment_covers_runs_quotas_pools_failures_and_loss(synthesized, env: str) -> None:
    config = load_environment(env)
    names = ResourceNames.of(config)
    [dashboard] = _environment_resources(synthesized, env, "AWS::CloudWatch::Dashboard")
    assert dashboard["Properties"]["DashboardName"] == f"{config.prefix}-platform"
    widgets = {w["properties"]["title"]: w["properties"] for w in _body(dashboard)["widgets"]}
    training = synthesized.template(env, "training")
    [machine] = [
        k
        for k, r in training["Resources"].items()
        if r["Type"] == "AWS::StepFunctions::StateMachine"
        and r["Properties"]["StateMachineName"] == names.state_machine
    ]
    [log_group] = [
        k
        for k, r in training["Resources"].items()
        if r["Type"] == "AWS::Logs::LogGroup"
        and r["Properties"].get("LogGroupName") == f"/aws/vendedlogs/states/{names.state_machine}"
    ]

    def executions(title: str) -> list[str]:
        metrics = widgets[title]["metrics"]
        assert all(m[:2] == ["AWS/States", m[1]] and m[2:4] == ["StateMachineArn", f"<Ref:{machine}>"] for m in metrics)
        return [m[1] for m in metrics]

    # Runs by status, and the failed and aborted ones, of the environment's state machine.
    assert executions(f"Runs by status ({names.state_machine})") == [
        f"Executions{s}" for s in ("Started", "Succeeded", "Failed", "Aborted", "TimedOut")
    ]
    assert executions("Failed, aborted and timed-out runs") == [
        f"Executions{s}" for s in ("Failed", "Aborted", "TimedOut")
    ]
    # Instances against quotas and retained warm pools: Logs Insights over the state machine's log group.
    quota = widgets["Instances held against each quota (as the latest run's capacity check counted)"]
    pools = widgets["Warm pools retained: since when, for at most keep_alive_seconds"]
    for query, needles in (
        (quota["query"], ['details.name = "DecideCapacity"', "quota_code", "in_use"]),
        (pools["query"], ['details.resource = "createTrainingJob.sync"', "KeepAlivePeriodInSeconds", "retained_since"]),
    ):
        assert query.startswith(f"SOURCE '<Ref:{log_group}>' | "), query
        assert all(needle in query for needle in needles), query
    # Loss: the jobs' MetricDefinitions metrics, for the environment's job names.
    assert set(LOSS_METRICS) == {"train_loss", "eval_loss"}
    expressions = [m[0]["expression"] for m in widgets["Loss of recent jobs"]["metrics"]]
    assert expressions == [
        f'SEARCH(\'{{{TRAINING_METRICS_NAMESPACE},Host}} MetricName="{metric}" '
        f"Host=\"{config.training.job_name_prefix}-\"', 'Average', 300)"
        for metric in LOSS_METRICS
    ]
