"""`make notebook`: JupyterLab on `notebooks/`, its kernels pointed at the `make local-up` embedded AWS.

The kernels get what the notebook instance's lifecycle configuration gives them on AWS, the way
`tests/test_notebooks.py` sets it up: the endpoint (AWS_ENDPOINT_URL, region, the embedded AWS's dummy
credentials and no real profile) and TRAINSTACK_RESOURCES, the resources file `make local-up` wrote from the
deployed stacks' outputs. They call as the embedded account's unrestricted caller, not as the notebook role
(the test suite runs the notebooks as that role; an hour-long assumed-role session would expire mid-session).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from trainstack.config import app_dir, load_environment
from trainstack.embedded_aws import endpoint_env, subprocess_env
from trainstack.local_platform import NOTEBOOK_RESOURCES_FILE, STATE_DIR

NOTEBOOKS = app_dir() / "notebooks"


def jupyter_lab(state_dir: Path = STATE_DIR) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of the JupyterLab server; ValueError when local-up has not run."""
    server_file, resources = state_dir / "server.json", state_dir / NOTEBOOK_RESOURCES_FILE
    if not server_file.is_file() or not resources.is_file():
        raise ValueError(f"no running embedded AWS with a deployed platform in {state_dir}: run make local-up first")
    server = json.loads(server_file.read_text(encoding="utf-8"))
    env = subprocess_env(endpoint_env(str(server["url"]), load_environment(str(server["env"])).region))
    env["TRAINSTACK_RESOURCES"] = str(resources)
    env["HF_HUB_OFFLINE"] = "1"  # the tiny model is local; nothing should reach a model hub
    command = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={NOTEBOOKS}", "--ip=127.0.0.1", "--no-browser"]
    return command, env


def main() -> int:
    try:
        command, env = jupyter_lab()
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"JupyterLab on {NOTEBOOKS} against {env['AWS_ENDPOINT_URL']}; open the URL it prints (Ctrl-C stops it)")
    os.execve(command[0], command, env)  # noqa: S606 - our own interpreter, a fixed argument list


if __name__ == "__main__":
    sys.exit(main())
