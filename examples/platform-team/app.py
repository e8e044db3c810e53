#!/usr/bin/env python3
"""A platform team's CDK app on trainstack, the library: its environments (config/), a stack of its own in each
(stacks/team_alerts.py), and the delivery pipeline that deploys them in order (pipeline.yaml).

    pip install trainstack-<version>.whl     # and the pins of its requirements.txt
    cdk synth                                # cdk-nag on: any unacknowledged finding stops synth
    trainstack bootstrap                     # what each account runs once, then `cdk deploy <pipeline name>`
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from aws_cdk import App, Stage
from constructs import Construct
from stacks.team_alerts import TeamAlertsStack

from trainstack.config import load_all
from trainstack.delivery_config import PIPELINE_FILE
from trainstack.platform import ConfigError, DeliveryPipelineStack, EnvironmentConfig, PlatformStage, load_pipeline

HERE = Path(__file__).resolve().parent


def team_stage(scope: Construct, config: EnvironmentConfig) -> Stage:
    """trainstack's stage of one environment, plus the team's own stack in it."""
    stage = PlatformStage(scope, config)
    TeamAlertsStack(stage, "TeamAlerts", stack_name=f"{config.prefix}-team-alerts", config=config)
    return stage


def main() -> None:
    app = App()
    try:
        DeliveryPipelineStack(app, load_pipeline(HERE / PIPELINE_FILE), load_all(HERE / "config"), team_stage)
    except ConfigError as error:
        print(f"platform-team: {error}", file=sys.stderr)
        sys.exit(1)
    assembly = app.synth()
    # The CDK CLI writes the validation report but still exits 0: a finding must stop synth.
    report = Path(assembly.directory) / "validation-report.json"
    if report.is_file():
        plugins = json.loads(report.read_text(encoding="utf-8")).get("pluginReports", [])
        if any(plugin.get("conclusion") != "success" for plugin in plugins):
            print(f"platform-team: cdk-nag findings without an acknowledgment, see {report}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
