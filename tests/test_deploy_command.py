"""`make deploy` (trainstack/deploy.py): Docker logs in to the region's Deep Learning Container registry before
`cdk deploy` builds the `asset` image FROM it, and a deploy without a terminal never waits on a prompt."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO_ROOT

from trainstack.config import ImageMode, load_environment
from trainstack.deploy import dlc_login
from trainstack.embedded_aws.json_protocol import endpoint_client
from trainstack.embedded_aws.server import subprocess_env

# Each recorder appends {"argv": [...], "stdin": "..."} to $RECORD, one JSON line per call.
RECORDER = """#!{python}
import json, os, sys
stdin = "" if sys.stdin.isatty() else sys.stdin.read()
with open(os.environ["RECORD"], "a") as out:
    out.write(json.dumps({{"argv": [os.path.basename(sys.argv[0]), *sys.argv[1:]], "stdin": stdin}}) + "\\n")
"""


@pytest.fixture
def recording_path(tmp_path: Path) -> tuple[Path, Path]:
    """A folder with recording `docker` and `npx` to put first on PATH, and the record file."""
    bin_dir, record = tmp_path / "bin", tmp_path / "record.jsonl"
    bin_dir.mkdir()
    for name in ("docker", "npx"):
        path = bin_dir / name
        path.write_text(RECORDER.format(python=sys.executable))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return bin_dir, record


def _deploy(embedded_aws: Any, recording: tuple[Path, Path], *args: str) -> tuple[subprocess.CompletedProcess, list]:
    bin_dir, record = recording
    env = subprocess_env(embedded_aws.env) | {"RECORD": str(record)}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        [sys.executable, "-m", "trainstack.deploy", *args],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,  # no terminal, as in CI
        capture_output=True,
        text=True,
        check=False,
    )
    calls = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return done, calls


def test_docker_logs_in_to_the_dlc_registry_of_the_region_before_cdk_builds(embedded_aws, recording_path) -> None:
    done, calls = _deploy(embedded_aws, recording_path, "dev", "--require-approval", "never")
    assert done.returncode == 0, done.stderr
    config = load_environment("dev")
    registry = "763104351884.dkr.ecr.us-west-2.amazonaws.com"
    assert config.image.dlc_registry(config.region) == registry
    [login, deploy] = calls
    assert login["argv"] == ["docker", "login", "--username", "AWS", "--password-stdin", registry]
    token = endpoint_client(embedded_aws.endpoint_url, "us-west-2", "ecr").get_authorization_token()
    token = token["authorizationData"][0]
    assert login["stdin"] == base64.b64decode(token["authorizationToken"]).decode().partition(":")[2]
    assert deploy["argv"] == [
        "npx", "--no-install", "cdk", "deploy", "dev/*", "-c", "env=dev", "--require-approval", "never"
    ]  # fmt: skip


def test_without_a_terminal_the_deploy_refuses_before_any_work_unless_approval_is_explicit(
    embedded_aws, recording_path
) -> None:
    done, calls = _deploy(embedded_aws, recording_path, "dev")
    assert done.returncode == 1
    assert "no terminal to approve" in done.stderr and "REQUIRE_APPROVAL=never" in done.stderr
    assert calls == []


def test_the_embedded_environment_is_refused_with_the_targets_that_deploy_it(embedded_aws, recording_path) -> None:
    done, calls = _deploy(embedded_aws, recording_path, "local", "--require-approval", "never")
    assert done.returncode == 1 and "make local-up" in done.stderr
    assert calls == []


def test_an_image_used_as_is_needs_no_login() -> None:
    """`dlc` mode: SageMaker pulls the DLC with the execution role; the deploying machine builds nothing."""
    config = load_environment("dev")
    as_is = config.model_copy(update={"image": config.image.model_copy(update={"mode": ImageMode.DLC})})
    assert dlc_login(as_is, ecr=None, run=None) is None
