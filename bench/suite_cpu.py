"""Where the test suite's CPU goes: `make test-cpu` runs make test's pytest command under this script, which
samples every process the command starts.

    bench/suite_cpu.py COMMAND...

On a 2-core machine the suite is CPU-bound, so its wall time is its CPU time over the cores it keeps busy;
this splits that CPU by kind of process (the jobs' training processes, the xdist workers, CDK, ...) and
writes `.bench/suite-cpu.md`. Processes are sampled every 0.2 s (psutil): CPU a process spends after its
last sample is missed, and the table says how much that was against the children's rusage total.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
REPORT = REPO_ROOT / ".bench" / "suite-cpu.md"
SAMPLE_SECONDS = 0.2

# First match wins: a command line's marker, and the kind it counts under.
KINDS: list[tuple[str, str]] = [
    ("torch.distributed.run", "`torchrun`"),  # before run_train.py, which its command line names
    ("run_train.py", "training script (`run_train.py`: launchers and ranks)"),
    ("pip install", "the toolkit's `pip install -r requirements.txt`"),
    ("sagemaker_training", "the toolkit's `train`"),
    ("/bin/train", "the toolkit's `train`"),
    ("jsii-runtime", "CDK: jsii's node"),
    ("program.js", "CDK: jsii's node"),
    ("aws-cdk", "CDK: the CLI"),
    ("/.bin/cdk", "CDK: the CLI"),
    ("npx", "CDK: the CLI"),
    ("app.py", "CDK: `app.py`"),
    ("ipykernel", "notebook kernels"),
    ("exec(eval(sys.stdin", "xdist workers (embedded AWS, the tests)"),
]
CONTROLLER = "pytest's controller"
OTHER = "other"
OTHERS_LISTED = 5


def kind_of(cmdline: str) -> str:
    return next((kind for marker, kind in KINDS if marker in cmdline), OTHER)


class Sampler(threading.Thread):
    """The last CPU seconds (user + system) seen of each descendant of `root`, by (pid, start time)."""

    def __init__(self, root: psutil.Process) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.seen: dict[tuple[int, float], tuple[str, float]] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for process in processes:
                try:
                    with process.oneshot():
                        times = process.cpu_times()
                        key = (process.pid, process.create_time())
                        cmdline = self.seen[key][0] if key in self.seen else " ".join(process.cmdline())
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                self.seen[key] = (cmdline, times.user + times.system)
            time.sleep(SAMPLE_SECONDS)


def render(seen: dict[tuple[int, float], tuple[str, float]], root_pid: int, wall: float, rusage_total: float) -> str:
    totals: dict[str, list[float]] = {}
    others: list[tuple[float, str]] = []
    for (pid, _), (cmdline, seconds) in seen.items():
        kind = CONTROLLER if pid == root_pid else kind_of(cmdline)
        row = totals.setdefault(kind, [0.0, 0])
        row[0] += seconds
        row[1] += 1
        if kind == OTHER:
            others.append((seconds, cmdline))
    sampled = sum(row[0] for row in totals.values())
    cores = os.cpu_count() or 1
    lines = [f"# Where the pytest phase's CPU went ({cores} cores)", ""]
    lines += ["| CPU seconds | processes | kind |", "| ---: | ---: | --- |"]
    for kind, (seconds, count) in sorted(totals.items(), key=lambda item: -item[1][0]):
        lines.append(f"| {seconds:.0f} | {count:.0f} | {kind} |")
    lines.append(f"| {max(0.0, rusage_total - sampled):.0f} | | not sampled (after a process's last sample) |")
    busy = rusage_total / (wall * cores)
    lines += ["", f"{rusage_total:.0f} s of CPU in {wall:.0f} s of wall time: {busy:.0%} of {cores} cores."]
    if others:
        lines += ["", f"The costliest processes of `{OTHER}` (at most {OTHERS_LISTED}):", ""]
        costliest = sorted(others, reverse=True)[:OTHERS_LISTED]
        lines += [f"- {seconds:.1f} s `{cmdline[:110]}`" for seconds, cmdline in costliest]
    return "\n".join(lines) + "\n"


def main(command: list[str]) -> int:
    if not command:
        sys.exit("usage: bench/suite_cpu.py COMMAND... (make test-cpu passes make test's pytest command)")
    started = time.monotonic()
    pytest = subprocess.Popen(command, cwd=REPO_ROOT)
    sampler = Sampler(psutil.Process(pytest.pid))
    sampler.start()
    code = pytest.wait()
    wall = time.monotonic() - started
    sampler.done.set()
    sampler.join()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = render(sampler.seen, pytest.pid, wall, children.ru_utime + children.ru_stime)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(text, encoding="utf-8")
    print(f"\n{text}(also in {REPORT.relative_to(REPO_ROOT)}; pytest exited {code})")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
