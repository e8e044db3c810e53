"""`python -m trainstack.embedded_aws up|status|down` (what `make local-up` / `make local-down` call)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3
from conftest import REPO_ROOT


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trainstack.embedded_aws", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_up_prints_a_working_url_status_reports_it_and_down_stops_it(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    up = _cli("up", "--dir", state)
    try:
        assert up.returncode == 0, up.stderr
        url = up.stdout.strip()
        assert url.startswith("http://127.0.0.1:")
        quotas = boto3.client(
            "service-quotas",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert quotas.get_service_quota(ServiceCode="sagemaker", QuotaCode="L-33A961FD")["Quota"]["Value"] > 0
        assert _cli("up", "--dir", state).stdout.strip() == url  # idempotent
        status = _cli("status", "--dir", state)
        assert status.returncode == 0 and url in status.stdout
    finally:
        down = _cli("down", "--dir", state)
    assert down.returncode == 0
    assert not (tmp_path / "state" / "server.json").exists()
    assert _cli("status", "--dir", state).returncode == 1
