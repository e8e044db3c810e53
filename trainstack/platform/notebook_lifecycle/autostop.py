#!/usr/bin/env python3
"""Stops this SageMaker notebook instance once Jupyter has been idle for N minutes.

Installed by the platform's lifecycle configuration and run by a systemd timer every five minutes, on the
platform's system Python (/usr/bin/python3: 3.9 on Amazon Linux 2023, so nothing newer; `vermin` checks it in
tests/test_notebook_lifecycle.py). It uses only the standard library and the AWS CLI that notebook instances
ship with, because the instance has no direct internet access to install anything.
"""

from __future__ import annotations

import argparse
import json
import ssl
import subprocess
import urllib.request
from datetime import datetime, timezone

JUPYTER_URL = "https://localhost:8443/api/sessions"
METADATA_FILE = "/opt/ml/metadata/resource-metadata.json"


def is_idle(sessions: list[dict], now: datetime, idle_minutes: int) -> bool:
    """True when no kernel is busy and none was active within `idle_minutes`."""
    for session in sessions:
        kernel = session.get("kernel") or {}
        if kernel.get("execution_state") == "busy":
            return False
        last = kernel.get("last_activity")
        if last:
            seen = datetime.fromisoformat(last.replace("Z", "+00:00"))
            if (now - seen).total_seconds() < idle_minutes * 60:
                return False
    return True


def _sessions() -> list[dict]:
    # Jupyter on notebook instances serves a self-signed certificate on localhost only.
    context = ssl._create_unverified_context()  # noqa: S323
    with urllib.request.urlopen(JUPYTER_URL, context=context, timeout=10) as response:
        return json.load(response)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle-minutes", type=int, required=True)
    args = parser.parse_args()
    with open(METADATA_FILE, encoding="utf-8") as handle:
        name = json.load(handle)["ResourceName"]
    # timezone.utc, not datetime.UTC: that alias is Python 3.11+, and this runs on 3.9.
    if is_idle(_sessions(), datetime.now(timezone.utc), args.idle_minutes):  # noqa: UP017
        print(f"idle for {args.idle_minutes} minutes: stopping {name}")
        subprocess.run(["aws", "sagemaker", "stop-notebook-instance", "--notebook-instance-name", name], check=True)


if __name__ == "__main__":
    main()
