"""Deploy an environment's stacks with the real CDK CLI and stage the demo's data, as a user would.

Used by `make demo`, the test suite's deployed-platform fixture and the benchmarks, so the three
exercise the same path: `cdk bootstrap` + `cdk deploy '<env>/*'` (the app puts each environment's
stacks in a Stage, which `--all` does not descend into), then the tiny model and the sample dataset
uploaded to the data bucket (what a user does from the notebook).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from trainstack.config import EnvironmentConfig, ResourceNames, app_dir

SAMPLE_DATA_DIR = app_dir() / "examples" / "data" / "sample"


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
    env["PATH"] = f"{venv_bin}{os.pathsep}{app_dir() / 'node_modules' / '.bin'}{os.pathsep}{env.get('PATH', '')}"
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    env["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"] = "1"
    env.setdefault("CDK_DISABLE_VERSION_CHECK", "1")
    return env


def _cdk(args: list[str], env: dict[str, str], log: Path | None) -> str:
    result = subprocess.run(
        ["npx", "--no-install", "cdk", *args], cwd=app_dir(), env=env, capture_output=True, text=True, check=False
    )
    if log is not None:
        with log.open("a", encoding="utf-8") as handle:
            handle.write(f"$ cdk {' '.join(args)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise DeployError(f"cdk {args[0]} failed (exit {result.returncode}):\n{tail}")
    return result.stdout


FINGERPRINT_FILE = "trainstack-fingerprint"  # in an assembly folder: the source_fingerprint() it was synthesized from


def is_synthesized(outdir: Path, fingerprint: str | None) -> bool:
    """Whether `outdir` holds an assembly synthesized from the sources `fingerprint` (source_fingerprint()) names."""
    stamp = _read(outdir / FINGERPRINT_FILE)
    return bool(fingerprint) and (outdir / "manifest.json").is_file() and stamp == fingerprint


def synth(
    config: EnvironmentConfig,
    endpoint_env: dict[str, str],
    outdir: Path,
    log: Path | None = None,
    fingerprint: str | None = None,
) -> None:
    """`cdk synth` of every stack of `config` into `outdir`, stamped with `fingerprint` when given."""
    stamp = outdir / FINGERPRINT_FILE
    stamp.unlink(missing_ok=True)  # a failed synth leaves no stamp that vouches for what it left
    args = ["synth", f"{config.name}/*", "-c", f"env={config.name}", "--output", str(outdir), "--quiet"]
    _cdk(args, cdk_env(endpoint_env), log)
    if fingerprint:
        stamp.write_text(fingerprint, encoding="utf-8")


def deploy(
    config: EnvironmentConfig,
    endpoint_env: dict[str, str],
    outdir: Path,
    log: Path | None = None,
    on_phase: Callable[[str], None] | None = None,
    fingerprint: str | None = None,
) -> DeployedPlatform:
    """`cdk synth`, `cdk bootstrap`, then `cdk deploy` of every stack of `config` from that one assembly.

    Synthesizing once and deploying with `--app <assembly>` keeps bootstrap and deploy from running the
    app again. With `fingerprint` (`source_fingerprint()`), an assembly in `outdir` synthesized from the same
    sources is deployed as is (`synth` then takes 0 s). Returns the stack outputs and the seconds each phase took.
    """
    env = cdk_env(endpoint_env)
    seconds: dict[str, float] = {"synth": 0.0}

    def run(phase: str, action: Callable[[], object]) -> None:
        if on_phase:
            on_phase(phase)
        started = time.monotonic()
        action()
        seconds[phase] = time.monotonic() - started

    if not is_synthesized(outdir, fingerprint):
        run("synth", lambda: synth(config, endpoint_env, outdir, log, fingerprint))
    outputs_file = outdir.parent / f"{outdir.name}-outputs.json"
    bootstrap = ["bootstrap", f"aws://{config.account}/{config.region}", "--app", str(outdir)]
    run("bootstrap", lambda: _cdk(bootstrap, env, log))
    deploy_args = ["deploy", f"{config.name}/*", "--app", str(outdir), "--require-approval", "never"]
    run("deploy", lambda: _cdk([*deploy_args, "--outputs-file", str(outputs_file), "--progress", "events"], env, log))
    by_stack: dict[str, dict[str, str]] = json.loads(outputs_file.read_text(encoding="utf-8"))
    outputs = {
        key: value for stack in by_stack.values() for key, value in stack.items() if not key.startswith("Export")
    }
    return DeployedPlatform(config=config, outputs=outputs, seconds=seconds, assembly_dir=outdir)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


# What the synthesized templates cannot depend on: tests, docs, notebooks, benchmarks, sample inputs.
_NOT_SYNTH_INPUTS = ("tests/", "notebooks/", "bench/", "examples/", ".github/")


def source_fingerprint() -> str | None:
    """SHA-256 of every file of the checkout the CDK app may read (tracked or new, not ignored), or None
    without git. Equal fingerprints mean `cdk synth` would write the same assembly."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=app_dir(),
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:
        return None
    digest = hashlib.sha256()
    for name in sorted(set(listed.stdout.decode().split("\0")) - {""}):
        path = app_dir() / name
        if name.startswith(_NOT_SYNTH_INPUTS) or name.endswith(".md") or not path.is_file():
            continue
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


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


# --- `make local-up`: a ready platform on the background embedded AWS -----------------------------------------

STATE_DIR = app_dir() / ".local-aws"  # trainstack/embedded_aws/__main__.py keeps the server's state here too
PLATFORM_FILE = "platform.json"  # the deployed outputs: its presence says the server holds a deployment
NOTEBOOK_RESOURCES_FILE = "notebook-resources.json"


def notebook_resources(config: EnvironmentConfig, outputs: dict[str, str]) -> dict[str, Any]:
    """What trainstack/platform/notebook_stack.py's lifecycle configuration writes to trainstack.json, from the
    stack outputs."""
    resources: dict[str, Any] = {
        "environment": config.name,
        "region": config.region,
        "data_bucket": outputs["DataBucketName"],
        "artifacts_bucket": outputs["ArtifactsBucketName"],
        "kms_key_arn": outputs["KmsKeyArn"],
        "execution_role_arn": outputs["ExecutionRoleArn"],
        "image_uri": outputs["TrainingImageUri"],
        "code_package_uri": outputs["CodePackageUri"],
        "state_machine_arn": outputs["StateMachineArn"],
        "tags": config.platform_tags,
        "job_name_prefix": config.training.job_name_prefix,
    }
    if outputs.get("SubnetIds"):
        resources["subnet_ids"] = outputs["SubnetIds"].split(",")
        resources["security_group_ids"] = [outputs["SecurityGroupId"]]
    return resources


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def job_folders_usage(state_dir: Path = STATE_DIR) -> list[tuple[str, int]]:
    """(job, bytes) of each training job's host folders under the embedded AWS's `jobs/`, largest first."""
    jobs = state_dir / "jobs"
    if not jobs.is_dir():
        return []
    usage = [(folder.name, folder_bytes(folder)) for folder in jobs.iterdir() if folder.is_dir()]
    return sorted(usage, key=lambda item: item[1], reverse=True)


def _deployed(clients: Callable[[str], Any], state_dir: Path, state_machine_arn: str | None) -> bool:
    """True when this server already holds the deployment recorded in `platform.json` (a second local-up)."""
    if not state_machine_arn or not (state_dir / PLATFORM_FILE).is_file():
        return False
    try:
        clients("stepfunctions").describe_state_machine(stateMachineArn=state_machine_arn)
    except ClientError:  # StateMachineDoesNotExist: a restarted server has an empty account
        return False
    return True


def local_up(env_name: str = "local", state_dir: Path = STATE_DIR, say: Callable[[str], None] = print) -> Path:
    """Deploy `env_name` into the running background embedded AWS, stage the tiny model and the sample data, and
    write the notebooks' resources file. Idempotent: a server that already holds the deployment is left as is.
    Returns the resources file."""
    from trainstack.config import load_environment
    from trainstack.embedded_aws.json_protocol import endpoint_client

    config = load_environment(env_name)
    server = json.loads((state_dir / "server.json").read_text(encoding="utf-8"))

    def clients(service: str) -> Any:
        return endpoint_client(str(server["url"]), config.region, service)

    platform_file, resources_file = state_dir / PLATFORM_FILE, state_dir / NOTEBOOK_RESOURCES_FILE
    recorded = json.loads(platform_file.read_text(encoding="utf-8")) if platform_file.is_file() else {}
    if _deployed(clients, state_dir, recorded.get("StateMachineArn")):
        say(f"'{env_name}' is already deployed at {server['url']}")
        return resources_file
    platform_file.unlink(missing_ok=True)
    # Imported only to deploy: moto (through the server module) and torch take seconds to load.
    from trainstack.embedded_aws import endpoint_env
    from trainstack.tiny_model import build_tiny_model

    env = endpoint_env(str(server["url"]), config.region)
    say(f"deploying '{env_name}' into the embedded AWS at {server['url']} (cdk log: {state_dir / 'cdk.log'})")
    (state_dir / "cdk.log").unlink(missing_ok=True)
    # The assembly of the last local-up is deployed again when no source changed: synth is most of a deploy.
    platform = deploy(
        config,
        env,
        state_dir / "cdk.out",
        log=state_dir / "cdk.log",
        on_phase=lambda p: say(f"  cdk {p} …"),
        fingerprint=source_fingerprint(),
    )
    phases = platform.seconds.items()
    say("  " + ", ".join(f"{phase} {f'{seconds:.0f} s' if seconds else 'reused'}" for phase, seconds in phases))
    model_dir = state_dir / "tiny-model"
    if not (model_dir / "config.json").is_file():
        build_tiny_model(model_dir)
    for channel, uri in stage_demo_data(clients("s3"), config, model_dir).items():
        say(f"  staged {channel:6} {uri}")
    resources_file.write_text(json.dumps(notebook_resources(config, platform.outputs), indent=2), encoding="utf-8")
    platform_file.write_text(json.dumps(platform.outputs, indent=2), encoding="utf-8")
    say(f"  notebooks' resources file: {resources_file} (make notebook sets TRAINSTACK_RESOURCES to it)")
    return resources_file


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m trainstack.local_platform",
        description="Deploy an embedded environment into the running `make local-up` server and stage its data.",
    )
    parser.add_argument("--env", default="local", help="embedded environment (config/<env>.yaml)")
    parser.add_argument("--dir", type=Path, default=STATE_DIR, help="the embedded AWS's state folder")
    args = parser.parse_args(argv)
    if not (args.dir / "server.json").is_file():
        print("the embedded AWS is not running: start it with python -m trainstack.embedded_aws up", file=sys.stderr)
        return 1
    try:
        local_up(args.env, args.dir)
    except DeployError as error:
        print(f"deploy failed: {error}", file=sys.stderr)
        return 1
    usage = job_folders_usage(args.dir)
    print(
        f"ready: trainstack run --watch (no exports needed); job folders hold {human_bytes(sum(b for _, b in usage))}"
    )
    return 0


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


if __name__ == "__main__":
    sys.exit(main())
