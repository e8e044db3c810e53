"""`trainstack[offline]`: the extra's pins mirror requirements-dev.txt, and its pytest plugin deploys an app into the
embedded AWS for a test that knows nothing of this repository's conftest."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["pytester"]


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[a-z,]+\])?==(\S+)", line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(3)
    return pins


def test_the_offline_extra_pins_what_requirements_pin() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extra = _pins(project["optional-dependencies"]["offline"])
    required = _pins(
        (REPO_ROOT / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
        + (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    )
    assert {"moto", "pytest"} <= set(extra)
    assert {name: required.get(name) for name in extra} == extra
    assert project["entry-points"]["pytest11"] == {"trainstack": "trainstack.testing.pytest_plugin"}


@pytest.mark.slow
def test_the_plugin_deploys_an_app_into_the_embedded_aws(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_team_app=f"""
        from pathlib import Path

        def test_deployed(deployed_app, embedded_aws):
            platform = deployed_app(Path({str(REPO_ROOT)!r}))
            assert platform is deployed_app(Path({str(REPO_ROOT)!r})), "one deploy per session"
            machine = embedded_aws.client("stepfunctions").describe_state_machine(
                stateMachineArn=platform.state_machine_arn)
            assert machine["status"] == "ACTIVE"
            stacks = embedded_aws.client("cloudformation").describe_stacks()["Stacks"]
            assert {{s["StackStatus"] for s in stacks if s["StackName"].startswith("trainstack-local-")}} == {{
                "CREATE_COMPLETE"}}
        """
    )
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    # Installed (make install's `pip install -e .`, or the wheel), pytest loads the plugin by its entry point, as
    # a team's pytest does; naming it with -p as well would register it twice, which pytest refuses.
    installed = any(entry.name == "trainstack" for entry in entry_points(group="pytest11"))
    plugin = [] if installed else ["-p", "trainstack.testing.pytest_plugin"]
    # A process of its own: one embedded AWS per process, and this session may have started one.
    result = pytester.runpytest_subprocess(*plugin, "--trainstack-app", str(REPO_ROOT), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
