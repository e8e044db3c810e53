"""The notebook instance's lifecycle script: the idle check that stops it, and the rendered OnStart script, on the
platform AWS still creates (Amazon Linux 2023: system Python 3.9, systemd, no cron)."""

from __future__ import annotations

import base64
import importlib.util
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import botocore.exceptions
import pytest

from trainstack.config import LIFECYCLE_PYTHON, NOTEBOOK_PLATFORMS, ConfigError, load_environment
from trainstack.platform.notebook_stack import LIFECYCLE_DIR, render_on_start

spec = importlib.util.spec_from_file_location("autostop", LIFECYCLE_DIR / "autostop.py")
assert spec and spec.loader
autostop = importlib.util.module_from_spec(spec)
spec.loader.exec_module(autostop)
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _session(state: str, minutes_ago: int) -> dict:
    last = (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    return {"kernel": {"execution_state": state, "last_activity": last}}


def test_idle_only_when_no_kernel_is_busy_or_recently_active() -> None:
    assert autostop.is_idle([], NOW, 60)
    assert autostop.is_idle([_session("idle", 90)], NOW, 60)
    assert not autostop.is_idle([_session("idle", 30)], NOW, 60)
    assert not autostop.is_idle([_session("busy", 500)], NOW, 60)
    assert not autostop.is_idle([_session("idle", 90), _session("idle", 5)], NOW, 60)


def test_on_start_writes_the_resource_file_and_installs_the_autostop_job(tmp_path: Path) -> None:
    """The job is a systemd timer: Amazon Linux 2023 notebook instances have no cron by default."""
    resources = json.dumps({"data_bucket": "b", "state_machine_arn": "arn:aws:states:::stateMachine:x"})
    script = render_on_start(resources, idle_minutes=45)
    assert resources in script
    assert "--idle-minutes 45" in script
    encoded = script.split("<<'TRAINSTACK_AUTOSTOP'\n")[1].split("\nTRAINSTACK_AUTOSTOP")[0]
    assert base64.b64decode(encoded) == (LIFECYCLE_DIR / "autostop.py").read_bytes()
    assert "__" not in script.replace("__name__", "").replace("__main__", "")  # every placeholder filled
    assert "systemctl enable --now trainstack-autostop.timer" in script
    assert "OnUnitActiveSec=5min" in script and "--idle-minutes 45" in script.split("[Service]")[1]
    assert "crontab" not in script
    # AWS refuses a lifecycle script over 16384 characters (CreateNotebookInstanceLifecycleConfig).
    assert len(base64.b64encode(script.encode())) < 16384


def _vermin(path: Path) -> subprocess.CompletedProcess:
    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent))
    assert vermin, "vermin is a pinned dev dependency (requirements-dev.txt)"
    target = f"-t={LIFECYCLE_PYTHON}-"
    return subprocess.run([vermin, target, "--violations", "--no-tips", str(path)], capture_output=True, text=True)


def test_lifecycle_python_runs_on_the_oldest_system_python_of_the_platforms_aws_creates(tmp_path: Path) -> None:
    created = {p.system_python for p in NOTEBOOK_PLATFORMS.values() if p.created_until is None}
    assert min(created, key=lambda v: tuple(map(int, v.split(".")))) == LIFECYCLE_PYTHON == "3.9"
    checked = _vermin(LIFECYCLE_DIR / "autostop.py")
    assert checked.returncode == 0, checked.stdout
    # The check can fail: what the script used to import needs 3.11.
    newer = tmp_path / "autostop.py"
    newer.write_text((LIFECYCLE_DIR / "autostop.py").read_text().replace("timezone.utc", "UTC"))
    newer.write_text(newer.read_text().replace("import datetime, timezone", "import UTC, datetime, timezone"))
    refused = _vermin(newer)
    assert refused.returncode != 0 and "datetime.UTC" in refused.stdout


def test_every_environment_runs_its_notebook_on_a_platform_aws_still_creates() -> None:
    for name in ("local", "dev", "prod"):
        assert load_environment(name).notebook.platform_identifier == "notebook-al2023-v1"


def test_synth_refuses_an_amazon_linux_2_notebook(tmp_path: Path) -> None:
    import yaml
    from conftest import REPO_ROOT

    data = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    data["notebook"]["platform_identifier"] = "notebook-al2-v3"
    (tmp_path / "dev.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(
        ConfigError,
        match=r"notebook.platform_identifier.*can no longer be created or restarted since "
        r"2026-07-01; use one of notebook-al2023-v1, notebook-al2023-v2",
    ):
        load_environment("dev", tmp_path)


def test_the_embedded_sagemaker_refuses_an_amazon_linux_2_notebook_as_aws_does(embedded_aws) -> None:
    sagemaker = embedded_aws.client("sagemaker")
    request = {"InstanceType": "ml.t3.medium", "RoleArn": "arn:aws:iam::123456789012:role/test-training"}
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        sagemaker.create_notebook_instance(
            NotebookInstanceName="al2-nb", PlatformIdentifier="notebook-al2-v3", **request
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "Amazon Linux 2 notebook instances ('notebook-al2-v3') can no longer be created" in str(refused.value)
    sagemaker.create_notebook_instance(
        NotebookInstanceName="al2023-nb", PlatformIdentifier="notebook-al2023-v1", **request
    )
    sagemaker.create_notebook_instance(NotebookInstanceName="default-nb", **request)  # botocore's default: AL2023
