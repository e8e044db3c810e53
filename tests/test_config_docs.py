"""The environment file documents itself: every field has a description, config/README.md's tables and the
published JSON Schema are generated from them and current, and a renamed field keeps working for a release."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from trainstack import config, config_docs
from trainstack.config import ConfigError, EnvironmentConfig, RenamedFieldWarning, apply_renames, load_environment
from trainstack.package_data import data_file

REPO_ROOT = Path(__file__).resolve().parent.parent


def _models(model: type[BaseModel]) -> set[type[BaseModel]]:
    """The model and every model its fields hold, however nested (lists, dicts, optionals)."""
    found = {model}
    for field in model.model_fields.values():
        stack = [field.annotation]
        while stack:
            annotation = stack.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation not in found:
                found |= _models(annotation)
            stack.extend(getattr(annotation, "__args__", ()))
    return found


def test_every_field_of_every_section_has_a_description() -> None:
    models = _models(EnvironmentConfig)
    assert len(models) >= 10
    missing = [f"{m.__name__}.{n}" for m in models for n, f in m.model_fields.items() if not f.description]
    assert not missing, f"fields without Field(description=...): {missing}"
    # Every section a file can hold has its table.
    assert models == {model for _, model in config_docs.SECTIONS}


def test_config_readme_and_schema_are_current() -> None:
    readme = (REPO_ROOT / "config" / "README.md").read_text(encoding="utf-8")
    assert config_docs.render_readme(readme) == readme, "run python -m trainstack.config_docs"
    shipped = data_file("trainstack", "schemas/environment.schema.json").read_text(encoding="utf-8")
    assert shipped == config_docs.render_schema_text(), "run python -m trainstack.config_docs"
    assert "| `training.capacity_wait_seconds` | `3600` |" in readme


def test_the_published_schema_accepts_the_shipped_files_and_refuses_a_typo() -> None:
    import jsonschema

    schema = json.loads(data_file("trainstack", "schemas/environment.schema.json").read_text(encoding="utf-8"))
    for path in sorted((REPO_ROOT / "config").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    dev = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    dev["training"]["instance_typ"] = "ml.g5.xlarge"
    with pytest.raises(jsonschema.ValidationError, match="instance_typ"):
        jsonschema.validate(dev, schema)


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_renamed_field_keeps_working_with_a_warning_naming_both(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(config, "RENAMED_FIELDS", {"notebook.idle_minutes": "notebook.idle_stop_minutes"})
    data = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    data["notebook"]["idle_minutes"] = 25
    data["notebook"].pop("idle_stop_minutes", None)
    path = _write(tmp_path, data)
    with pytest.warns(
        RenamedFieldWarning, match=rf"{path}: notebook.idle_minutes is renamed notebook.idle_stop_minutes"
    ):
        loaded = load_environment(path)
    assert loaded.notebook.idle_stop_minutes == 25
    assert data["notebook"]["idle_minutes"] == 25  # the caller's data is not changed

    data["notebook"]["idle_stop_minutes"] = 30
    with pytest.raises(
        ConfigError, match=re.escape("notebook.idle_minutes is the old name of notebook.idle_stop_minutes")
    ):
        load_environment(_write(tmp_path, data))


def test_without_its_rename_entry_an_old_name_is_an_unknown_field(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    data["notebook"]["idle_minutes"] = 25
    with warnings.catch_warnings():
        warnings.simplefilter("error", RenamedFieldWarning)
        with pytest.raises(ConfigError, match="idle_minutes"):
            load_environment(_write(tmp_path, data))


def test_a_rename_may_move_a_field_between_sections() -> None:
    data = {"training": {"old": 1}, "name": "x"}
    with pytest.warns(RenamedFieldWarning, match=re.escape("training.old is renamed storage.new")):
        moved = apply_renames(data, {"training.old": "storage.new"})
    assert moved == {"training": {}, "storage": {"new": 1}, "name": "x"}
    assert data == {"training": {"old": 1}, "name": "x"}
    assert apply_renames({"name": "x"}, {"training.old": "storage.new"}) == {"name": "x"}
