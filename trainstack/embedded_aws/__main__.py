"""`python -m trainstack.embedded_aws up|down|status|serve`: the embedded AWS as a background server.

`up` starts `serve` detached and waits until it has written its state file (`.local-aws/server.json`:
pid, URL, environment) so the URL it prints is ready to use; `down` stops it; `status` says whether it
answers. The Makefile's `local-up` / `local-down` call these.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from trainstack.config import app_dir, load_environment

STATE_DIR = app_dir() / ".local-aws"
_START_TIMEOUT_SECONDS = 60.0


def _state_file(state_dir: Path) -> Path:
    return state_dir / "server.json"


def _read_state(state_dir: Path) -> dict[str, object] | None:
    path = _state_file(state_dir)
    return json.loads(path.read_text()) if path.is_file() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2):  # noqa: S310 - our endpoint
            return True
    except OSError:
        return False


def serve(env_name: str, state_dir: Path, port: int) -> int:
    """Run in the foreground until SIGTERM/SIGINT; the state file exists exactly while we answer."""
    from .server import EmbeddedAws

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    state_dir.mkdir(parents=True, exist_ok=True)
    with EmbeddedAws(load_environment(env_name), work_dir=state_dir / "jobs", port=port) as aws:
        state = {"pid": os.getpid(), "url": aws.endpoint_url, "env": env_name, "region": aws.region}
        temporary = _state_file(state_dir).with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(_state_file(state_dir))  # atomic: `up` never reads half a file
        try:
            stop.wait()
        finally:
            _state_file(state_dir).unlink(missing_ok=True)
    return 0


def up(env_name: str, state_dir: Path, port: int) -> int:
    state = _read_state(state_dir)
    if state and _alive(int(state["pid"])):  # type: ignore[arg-type]
        print(state["url"])
        return 0
    state_dir.mkdir(parents=True, exist_ok=True)
    _state_file(state_dir).unlink(missing_ok=True)
    log = (state_dir / "server.log").open("ab")
    command = [sys.executable, "-m", "trainstack.embedded_aws", "serve", "--env", env_name, "--dir", str(state_dir)]
    if port:
        command += ["--port", str(port)]
    process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True, cwd=app_dir())
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        state = _read_state(state_dir)
        if state:
            print(state["url"])
            # trainstack reads the state file; other AWS clients (the aws CLI, boto3) need the variable.
            print(f"for other AWS clients: export AWS_ENDPOINT_URL={state['url']}", file=sys.stderr)
            return 0
        if process.poll() is not None:
            print(f"embedded AWS exited with {process.returncode}; see {state_dir / 'server.log'}", file=sys.stderr)
            return 1
        time.sleep(0.2)
    process.terminate()
    print(f"embedded AWS did not start within {_START_TIMEOUT_SECONDS:.0f}s; see {state_dir / 'server.log'}")
    return 1


def down(state_dir: Path) -> int:
    state = _read_state(state_dir)
    if not state:
        print("embedded AWS is not running")
        return 0
    pid = int(state["pid"])  # type: ignore[arg-type]
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    _state_file(state_dir).unlink(missing_ok=True)
    print(f"embedded AWS stopped ({state['url']})")
    return 0


def status(state_dir: Path) -> int:
    state = _read_state(state_dir)
    if not state or not _alive(int(state["pid"])):  # type: ignore[arg-type]
        print("embedded AWS is not running")
        return 1
    answering = _answers(str(state["url"]))
    print(
        f"embedded AWS {'running' if answering else 'not answering'} at {state['url']} (pid {state['pid']}, "
        f"environment {state['env']})"
    )
    return 0 if answering else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainstack.embedded_aws", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "serve"])
    parser.add_argument("--env", default="local", help="embedded environment (config/<env>.yaml)")
    parser.add_argument("--dir", type=Path, default=STATE_DIR, help="state folder (pid/URL file, job folders)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.env, args.dir, args.port)
    if args.command == "up":
        return up(args.env, args.dir, args.port)
    if args.command == "down":
        return down(args.dir)
    return status(args.dir)


if __name__ == "__main__":
    sys.exit(main())
