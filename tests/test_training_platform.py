"""`TrainingPlatform`, the environment as one construct in an app's own layout, builds what `PlatformStage` builds."""

from __future__ import annotations

import json
import re

from conftest import REPO_ROOT


def _without_construct_paths(template: dict, path: str) -> str:
    """The template with what CDK derives from the construct path made equal: `Name` tags and security-group
    rule ids hold the path (`TeamDev/Training/Network/Vpc` or `dev/Network/Vpc`), and their ids an 8-digit hash
    of it."""
    text = json.dumps(template, sort_keys=True).replace(f'"{path}/', '"<path>/')
    compact = path.replace("/", "")
    text = text.replace(f"from{compact}", "from<path>").replace(f"to{compact}", "to<path>")
    return re.sub(r"[0-9A-F]{8,}", "<hash>", text)


def test_training_platform_in_an_apps_stage_builds_the_stages_stacks(synthesized) -> None:
    from aws_cdk import App, Stage

    from trainstack.platform import TrainingPlatform, load_environment

    config = load_environment(REPO_ROOT / "config" / "dev.yaml")
    app = App(context=json.loads((REPO_ROOT / "cdk.json").read_text())["context"])
    team_stage = Stage(app, "TeamDev")
    platform = TrainingPlatform(team_stage, "Training", config)
    assembly = team_stage.synth()

    stage = synthesized.stages["dev"]
    parts = ("storage", "network", "image", "training", "notebook")
    assert [getattr(platform.stacks, part).stack_name for part in parts] == [
        getattr(stage, part).stack_name for part in parts
    ]
    for part in parts:
        stack = getattr(platform.stacks, part)
        # Its own stacks carry the account and region (no enclosing Stage gives them), and the same resources.
        assert (stack.account, stack.region) == (config.account, config.region)
        ours = assembly.get_stack_by_name(stack.stack_name).template
        theirs = synthesized.template("dev", part)
        assert set(ours["Resources"]) == set(theirs["Resources"]) or part == "network", part
        assert _without_construct_paths(ours, "TeamDev/Training") == _without_construct_paths(theirs, "dev"), part
