"""This repository's environments: one trainstack `PlatformStage` per file in `config/`."""

from __future__ import annotations

from pathlib import Path

from constructs import Construct

from trainstack.config import load_selected
from trainstack.platform import PlatformStage

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


def add_environments(scope: Construct, selected: str | None = None) -> list[PlatformStage]:
    """A stage per environment file, or for the one `selected` names (a name in config/ or any YAML path), checked
    against all the others; raises trainstack.config.ConfigError naming the file and the field."""
    return [PlatformStage(scope, config) for config in load_selected(selected, CONFIG_DIR)]
