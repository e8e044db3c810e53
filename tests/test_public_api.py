"""The public API is versioned: a change to what `trainstack.platform` exports, a parameter, or the environment
file's schema must be made on purpose (regenerate the snapshot, bump the version, say it in CHANGELOG.md)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import trainstack
from trainstack import public_api
from trainstack.platform import PipelineConfig, PlatformStage, TrainingPlatform

REPO_ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = REPO_ROOT / "tests" / "snapshots" / "public_api.json"


def test_public_api_matches_the_snapshot() -> None:
    current = public_api.render_text()
    assert current == SNAPSHOT.read_text(encoding="utf-8"), (
        "the public API changed; if on purpose: python -m trainstack.public_api > tests/snapshots/public_api.json, "
        "bump trainstack.__version__ (a breaking change bumps the major) and add it to CHANGELOG.md"
    )


def test_the_snapshot_sees_a_renamed_parameter(monkeypatch) -> None:
    # The rendering reads the real signatures: a renamed parameter is a diff, not something it glosses over.
    before = public_api.render()["names"]["TrainingPlatform"]["parameters"]
    original = TrainingPlatform.__init__

    def renamed(self, scope, construct_id, environment) -> None:
        original(self, scope, construct_id, environment)

    monkeypatch.setattr(TrainingPlatform, "__init__", renamed)
    after = public_api.render()["names"]["TrainingPlatform"]["parameters"]
    assert [p["name"] for p in before] == ["scope", "construct_id", "config"]
    assert [p["name"] for p in after] == ["scope", "construct_id", "environment"]


def test_the_public_api_names_the_stage_and_the_construct() -> None:
    names = json.loads(SNAPSHOT.read_text(encoding="utf-8"))["names"]
    assert [p["name"] for p in names["PlatformStage"]["parameters"]] == ["scope", "config"]
    assert names["PlatformStage"]["bases"] == [PlatformStage.__bases__[0].__name__] == ["Stage"]
    assert names["load_environment"]["kind"] == "function"


def test_the_public_api_names_the_delivery_pipeline_and_its_config() -> None:
    names = json.loads(SNAPSHOT.read_text(encoding="utf-8"))["names"]
    assert [p["name"] for p in names["DeliveryPipelineStack"]["parameters"]] == [
        "scope",
        "config",
        "environments",
        "stage_factory",
    ]
    assert names["load_pipeline"]["returns"] == "PipelineConfig"
    # pipeline.yaml's fields are held by their own schema, not pointed at the environment's.
    pipeline_schema = names["PipelineConfig"]["schema"]
    assert pipeline_schema == PipelineConfig.model_json_schema()
    assert {"account", "region", "source", "stages"} <= set(pipeline_schema["required"])


def test_one_version_in_the_package_and_the_changelog() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "trainstack.__version__"}
    major, minor, patch = (int(part) for part in trainstack.__version__.split("."))
    assert (major, minor, patch) >= (0, 2, 0)
    assert f"## [{trainstack.__version__}]" in (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
