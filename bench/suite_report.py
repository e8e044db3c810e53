"""What `make test` took: the phase split (install, lint, pytest) and the 20 slowest tests, in .bench/.

`make test` times each phase into `.bench/test-phases.tsv` (phase, seconds) and runs pytest with
TRAINSTACK_TEST_DURATIONS=.bench/test-durations.json, which tests/conftest.py fills with every test's seconds
(setup, call and teardown, summed over all workers). This script joins them into `.bench/test-report.md` and
prints it. `make bench` runs `make test` and shows the same report.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / ".bench"
PHASES = BENCH_DIR / "test-phases.tsv"
DURATIONS = BENCH_DIR / "test-durations.json"
REPORT = BENCH_DIR / "test-report.md"
SLOWEST = 20


def read_phases(path: Path = PHASES) -> list[tuple[str, float]]:
    phases = []
    for line in path.read_text().splitlines() if path.exists() else []:
        name, seconds = line.split("\t")
        phases.append((name, float(seconds)))
    return phases


def render(phases: list[tuple[str, float]], durations: dict[str, float], workers: str) -> str:
    where = "in one process" if workers in ("", "0", "1") else f"on {workers} xdist workers"
    lines = [f"# make test on this machine ({os.cpu_count()} cores, pytest {where})", ""]
    lines += ["| phase | seconds |", "| --- | ---: |"]
    lines += [f"| {name} | {seconds:.1f} |" for name, seconds in phases]
    lines.append(f"| whole | {sum(seconds for _, seconds in phases):.1f} |")
    lines += ["", f"## The {SLOWEST} slowest of {len(durations)} tests (setup + call + teardown)", ""]
    lines += ["| seconds | test |", "| ---: | --- |"]
    slowest = sorted(durations.items(), key=lambda item: item[1], reverse=True)[:SLOWEST]
    lines += [f"| {seconds:.1f} | `{nodeid}` |" for nodeid, seconds in slowest]
    return "\n".join(lines) + "\n"


def main() -> None:
    durations = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    text = render(read_phases(), durations, sys.argv[1] if len(sys.argv) > 1 else "0")
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(text, encoding="utf-8")
    print(f"\n{text}(also in {REPORT.relative_to(REPO_ROOT)})")


if __name__ == "__main__":
    main()
