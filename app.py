#!/usr/bin/env python3
"""The trainstack CDK app: one Stage per environment file in config/ (stacks/environments.py).

`cdk synth` builds every environment; `cdk synth -c env=dev` (or `make synth ENV=dev`) just one.
A bad environment file stops synth with a message naming the file and the field.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from aws_cdk import App

from stacks.environments import add_environments
from trainstack.config import ConfigError


def main() -> None:
    app = App()
    selected = app.node.try_get_context("env")
    try:
        add_environments(app, selected)
    except ConfigError as error:
        print(f"trainstack: {error}", file=sys.stderr)
        sys.exit(1)
    assembly = app.synth()
    # The CDK CLI writes the validation report but still exits 0; a finding must stop synth.
    findings = validation_failures(Path(assembly.directory) / "validation-report.json")
    if findings:
        print("trainstack: cdk-nag findings without an acknowledgment:\n" + "\n".join(findings), file=sys.stderr)
        sys.exit(1)


def validation_failures(report_path: Path) -> list[str]:
    """One line per unacknowledged finding in a CDK validation report, `rule: construct path`."""
    if not report_path.is_file():
        return []
    report = json.loads(report_path.read_text(encoding="utf-8"))
    return [
        f"  {violation['ruleName']}: {construct['constructPath']}"
        for plugin in report.get("pluginReports", [])
        if plugin.get("conclusion") != "success"
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    ]


if __name__ == "__main__":
    main()
