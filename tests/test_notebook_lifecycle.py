"""The notebook instance's lifecycle script: the idle check that stops it, and the rendered OnStart script."""

from __future__ import annotations

import base64
import importlib.util
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stacks.notebook_stack import LIFECYCLE_DIR, render_on_start

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
    resources = json.dumps({"data_bucket": "b", "state_machine_arn": "arn:aws:states:::stateMachine:x"})
    script = render_on_start(resources, idle_minutes=45)
    assert resources in script
    assert "--idle-minutes 45" in script
    encoded = script.split("<<'TRAINSTACK_AUTOSTOP'\n")[1].split("\nTRAINSTACK_AUTOSTOP")[0]
    assert base64.b64decode(encoded) == (LIFECYCLE_DIR / "autostop.py").read_bytes()
    assert "__" not in script.replace("__name__", "").replace("__main__", "")  # every placeholder filled
