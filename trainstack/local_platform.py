"""Deploy an environment's stacks with the real CDK CLI and stage the demo's data, as a user would.

Used by `make demo`, the test suite's deployed-platform fixture and the benchmarks, so the three
exercise the same path: `cdk bootstrap` + `cdk deploy '<env>/*'` (the app puts each environment's
stacks in a Stage, which `--all` does not descend into), then the tiny model and the sample dataset
uploaded to the data bucket (what a user does from the notebook).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainstack.config import REPO_ROOT, EnvironmentConfig, ResourceNames

SAMPLE_DATA_DIR = REPO_ROOT / "examples" / "data" / "sample"


class DeployError(RuntimeError):
    """A CDK CLI step failed; the message carries the CLI's own last lines."""


@dataclass(frozen=True)
class DeployedPlatform:
    config: EnvironmentConfig
    outputs: dict[str, str]  # output name (without the stack prefix) -> value
    seconds: dict[str, float]  # CDK phase (synth, bootstrap, deploy) -> wall seconds
    assembly_dir: Path

    @property
    def names(self) -> ResourceNames:
        return ResourceNames.of(self.config)

    @property
    def state_machine_arn(self) -> str:
        return self.outputs["StateMachineArn"]


def cdk_env(endpoint_env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a CDK CLI subprocess: this venv's python first, the jsii banner off."""
    env = {key: value for key, value in os.environ.items() if not (endpoint_env and key.startswith("AWS_"))}
    env.update(endpoint_env or {})
    venv_bin = Path(sys.executable).parent
    env["PATH"] = f"{venv_bin}{os.pathsep}{REPO_ROOT / 'node_modules' / '.bin'}{os.pathsep}{env.get('PATH', '')}"
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    env["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"] = "1"
    env.setdefault("CDK_DISABLE_VERSION_CHECK", "1")
    return env


def _cdk(args: list[str], env: dict[str, str], log: Path | None) -> str:
    result = subprocess.run(
        ["npx", "--no-install", "cdk", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )
    if log is not None:
        with log.open("a", encoding="utf-8") as handle:
            handle.write(f"$ cdk {' '.join(args)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise DeployError(f"cdk {args[0]} failed (exit {result.returncode}):\n{tail}")
    return result.stdout


def deploy(
    config: EnvironmentConfig,
    endpoint_env: dict[str, str],
    outdir: Path,
    log: Path | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> DeployedPlatform:
    """`cdk synth`, `cdk bootstrap`, then `cdk deploy` of every stack of `config` from that one assembly.

    Synthesizing once and deploying with `--app <assembly>` keeps bootstrap and deploy from running the
    app again. Returns the stack outputs and the seconds each phase took.
    """
    env = cdk_env(endpoint_env)
    seconds: dict[str, float] = {}
    outputs_file = outdir.parent / f"{outdir.name}-outputs.json"
    phases = {
        "synth": ["synth", f"{config.name}/*", "-c", f"env={config.name}", "--output", str(outdir), "--quiet"],
        "bootstrap": ["bootstrap", f"aws://{config.account}/{config.region}", "--app", str(outdir)],
        "deploy": [
            "deploy",
            f"{config.name}/*",
            "--app",
            str(outdir),
            "--require-approval",
            "never",
            "--outputs-file",
            str(outputs_file),
            "--progress",
            "events",
        ],
    }
    for phase, args in phases.items():
        if on_phase:
            on_phase(phase)
        started = time.monotonic()
        _cdk(args, env, log)
        seconds[phase] = time.monotonic() - started
    by_stack: dict[str, dict[str, str]] = json.loads(outputs_file.read_text(encoding="utf-8"))
    outputs = {
        key: value for stack in by_stack.values() for key, value in stack.items() if not key.startswith("Export")
    }
    return DeployedPlatform(config=config, outputs=outputs, seconds=seconds, assembly_dir=outdir)


def upload_directory(s3: Any, local: Path, bucket: str, prefix: str) -> int:
    """Upload every file under `local` to s3://bucket/prefix...; returns the number of files."""
    count = 0
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        s3.upload_file(str(path), bucket, prefix + path.relative_to(local).as_posix())
        count += 1
    return count


def stage_demo_data(s3: Any, config: EnvironmentConfig, model_dir: Path) -> dict[str, str]:
    """Upload the tiny model and the sample dataset to the prefixes the environment's channels name."""
    bucket = ResourceNames.of(config).data_bucket
    channels = config.training.channels
    sources = {"train": SAMPLE_DATA_DIR / "train", "val": SAMPLE_DATA_DIR / "val", "model": model_dir}
    uploaded = {}
    for name, source in sources.items():
        if name in channels:
            upload_directory(s3, source, bucket, channels[name].prefix)
            uploaded[name] = f"s3://{bucket}/{channels[name].prefix}"
    return uploaded
