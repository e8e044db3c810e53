"""examples/platform-team/ synthesized from the trainstack wheel, outside the checkout: the wheel installed into a
fresh virtual environment (its dependencies from this one's site-packages, never the checkout), the example copied
to a temporary folder, and `cdk synth` run there with the pinned CDK CLI, cdk-nag on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "examples" / "platform-team"
CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result.stdout


def _source_tree(destination: Path) -> Path:
    """The checkout's files (tracked and new, not ignored) copied out, so building writes nothing into it."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def _stacks(assembly: Path) -> dict[str, dict]:
    """Every stack of an assembly and its nested assemblies: stack name -> template."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    stacks = {}
    for name, artifact in manifest["artifacts"].items():
        if artifact["type"] == "aws:cloudformation:stack":
            template = json.loads((assembly / artifact["properties"]["templateFile"]).read_text())
            stacks[artifact["properties"].get("stackName", name)] = template
        elif artifact["type"] == "cdk:cloud-assembly":
            stacks.update(_stacks(assembly / artifact["properties"]["directoryName"]))
    return stacks


@pytest.mark.slow
def test_the_example_synthesizes_from_the_installed_wheel_outside_the_checkout(tmp_path: Path) -> None:
    outside = Path(os.path.realpath(tmp_path))
    assert not outside.is_relative_to(REPO_ROOT.resolve())
    wheels = outside / "wheels"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(_source_tree(outside / "src")),
        ],
        cwd=outside,
        env=dict(os.environ),
    )
    (wheel,) = wheels.glob("trainstack-*.whl")

    venv = outside / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=outside, env=dict(os.environ))
    python = venv / "bin" / "python"
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            cwd=outside,
            env={"PATH": os.environ["PATH"]},
        ).strip()
    )
    # The dependencies, from this environment's site-packages: a plain path, so its own .pth files (this
    # checkout's editable install among them) are not run.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        cwd=outside,
        env=dict(os.environ),
    )

    app = shutil.copytree(EXAMPLE, outside / "platform-team", ignore=shutil.ignore_patterns("cdk.out", "__pycache__"))
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", CDK_DISABLE_VERSION_CHECK="1")
    imported = _run(
        [str(python), "-c", "import trainstack, stacks; print(trainstack.__file__, stacks.__file__)"], cwd=app, env=env
    ).split()
    assert Path(imported[0]).is_relative_to(site), imported  # the wheel, not the checkout
    assert Path(imported[1]).is_relative_to(app), imported  # the team's own stacks package

    _run([str(CDK), "synth", "--quiet", "--output", str(app / "cdk.out")], cwd=app, env=env)
    stacks = _stacks(app / "cdk.out")

    for prefix in ("team-a-dev", "team-a-prod"):
        assert {f"{prefix}-storage", f"{prefix}-training", f"{prefix}-team-alerts"} <= set(stacks), sorted(stacks)
    assert "team-a-prod-notebook" in stacks
    (pipeline,) = [
        r for r in stacks["platform-team-delivery"]["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"
    ]
    stages = {stage["Name"]: stage["Actions"] for stage in pipeline["Properties"]["Stages"]}
    assert list(stages)[-2:] == ["dev", "prod"]
    approval = [a["RunOrder"] for a in stages["prod"] if a["ActionTypeId"]["Category"] == "Approval"]
    deploys = [a["RunOrder"] for a in stages["prod"] if a["ActionTypeId"]["Provider"] == "CloudFormation"]
    assert approval and max(approval) < min(deploys)

    machine_paths = {str(REPO_ROOT), str(REPO_ROOT.resolve()), str(outside), str(tmp_path), sys.prefix, str(venv)}
    for name, template in stacks.items():
        text = json.dumps(template)
        assert not [path for path in machine_paths if path in text], f"{name} names a path of this machine"
