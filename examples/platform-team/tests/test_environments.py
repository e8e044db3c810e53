"""The team's unit suite, which the pipeline runs before each stage: its files parse and name each other."""

from __future__ import annotations

from pathlib import Path

from trainstack.config import load_all
from trainstack.delivery_config import PIPELINE_FILE
from trainstack.platform import load_pipeline

APP = Path(__file__).resolve().parent.parent


def test_the_pipeline_deploys_every_environment_once_prod_last_and_approved() -> None:
    pipeline = load_pipeline(APP / PIPELINE_FILE)
    environments = pipeline.environments(load_all(APP / "config"))
    assert [config.name for config in environments] == ["dev", "prod"]
    assert len({config.account for config in environments}) == 2
    assert pipeline.stages[-1].manual_approval
