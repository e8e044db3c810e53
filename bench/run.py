"""`make bench`: every figure the project tracks, measured on this machine. Figures only, no assertions.

Sections: synth time per environment; the tiny local training run (tokens/s); embedded AWS overhead per
job; a job container's environment and packing a user folder; the demo's phases (synth, bootstrap,
deploy, execution, training, whole); CreateTrainingJob -> first training step on a cold vs a reused warm
pool with a ~300 MB model (warm_pool_cache.py); `make test`'s phases and slowest tests (.bench/test-report.md); the GPU
benchmark where CUDA exists.
`--only NAME` runs one section; `--skip-tests` skips the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from trainstack.config import environment_names  # noqa: E402
from trainstack.local_platform import cdk_env  # noqa: E402

Figures = list[tuple[str, str]]


def _run(command: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        print(result.stdout[-3000:], result.stderr[-3000:], sep="\n")
        raise SystemExit(f"bench: {' '.join(command[:3])} failed with exit {result.returncode}")
    return elapsed, result


def synth() -> Figures:
    figures = []
    with tempfile.TemporaryDirectory() as out:
        for env in environment_names():
            seconds, _ = _run(
                ["npx", "--no-install", "cdk", "synth", "--quiet", "-c", f"env={env}", "--output", f"{out}/{env}"],
                cdk_env(),
            )
            figures.append((f"cdk synth {env} (CLI, cdk-nag included)", f"{seconds:.1f} s"))
        seconds, _ = _run(["npx", "--no-install", "cdk", "synth", "--quiet", "--output", f"{out}/all"], cdk_env())
        figures.append(("cdk synth, all environments", f"{seconds:.1f} s"))
    return figures


def _script(name: str, *args: str) -> Figures:
    _, result = _run([sys.executable, str(REPO_ROOT / "bench" / name), *args])
    print(result.stdout.rstrip())
    return [(f"{name}", "see above")]


def training() -> Figures:
    return _script("training.py")


def embedded_aws() -> Figures:
    return _script("embedded_aws.py", "--skip-deploy", "--jobs", "2")


def capacity() -> Figures:
    return _script("capacity.py")


def warm_pool_cache() -> Figures:
    return _script("warm_pool_cache.py")


def demo() -> Figures:
    with tempfile.TemporaryDirectory() as out:
        timings = Path(out) / "timings.json"
        _run([sys.executable, "-m", "trainstack.demo", "--timings", str(timings)], cdk_env())
        seconds = json.loads(timings.read_text())
    figures = [(f"demo: {phase}", f"{value:.1f} s") for phase, value in seconds.items() if phase != "total"]
    figures.append(("demo: whole (target < 180 s)", f"{seconds['total']:.1f} s"))
    return figures


def tests() -> Figures:
    """`make test` itself: its phase split and 20 slowest tests land in .bench/test-report.md (suite_report.py)."""
    from bench.suite_report import REPORT, read_phases

    _run(["make", "--no-print-directory", "test"], {**os.environ, "PYTHONWARNINGS": "ignore"})
    print(REPORT.read_text(encoding="utf-8").rstrip())
    return [(f"make test: {phase}", f"{seconds:.1f} s") for phase, seconds in read_phases()]


def containers() -> Figures:
    """The embedded executor's per-host environment (job_container.py) and packing examples/byo-code."""
    from trainstack.embedded_aws.job_container import JobContainer
    from trainstack.source_package import pack

    with tempfile.TemporaryDirectory() as out:
        seconds = []
        for index in range(20):
            started = time.perf_counter()
            JobContainer(Path(out) / str(index)).prepare("algo-1")
            seconds.append(time.perf_counter() - started)
        # Offline: the packer's pip reads the test wheelhouse, so the figure is pip's, not the network's.
        os.environ.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(REPO_ROOT / "tests" / "data" / "wheelhouse"))
        started = time.perf_counter()
        pack(REPO_ROOT / "examples" / "byo-code", "train.py", python_version="3.11", work_dir=Path(out))
        packing = time.perf_counter() - started
    seconds.sort()
    return [
        ("job environment per host (median of 20)", f"{seconds[10] * 1000:.1f} ms (max {seconds[-1] * 1000:.1f} ms)"),
        ("pack examples/byo-code with its wheel", f"{packing:.2f} s"),
    ]


def gpu() -> Figures:
    return _script("gpu_training.py")


SECTIONS: dict[str, Callable[[], Figures]] = {
    "synth": synth,
    "training": training,
    "embedded_aws": embedded_aws,
    "containers": containers,
    "capacity": capacity,
    "warm_pool_cache": warm_pool_cache,
    "demo": demo,
    "tests": tests,
    "gpu": gpu,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(SECTIONS))
    parser.add_argument("--skip-tests", action="store_true")
    args = parser.parse_args()
    selected = [args.only] if args.only else [s for s in SECTIONS if not (s == "tests" and args.skip_tests)]
    summary: Figures = []
    for name in selected:
        print(f"\n== {name} ==", flush=True)
        figures = SECTIONS[name]()
        for label, value in figures:
            print(f"  {label}: {value}", flush=True)
        summary.extend(f for f in figures if f[1] != "see above")
    print(f"\n== summary (this machine: {os.cpu_count()} cores) ==")
    for label, value in summary:
        print(f"  {label:48} {value}")


if __name__ == "__main__":
    main()
