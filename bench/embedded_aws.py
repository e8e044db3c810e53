"""Embedded AWS figures: start-up, `cdk bootstrap` + `cdk deploy` of the local stacks, and training-job overhead.

Job overhead = time from CreateTrainingJob to the script's first line, and from its last line to the job
being Completed (download, toolkit start-up, upload, status). Figures only, no assertions.
Usage: python bench/embedded_aws.py [--skip-deploy] [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from trainstack.embedded_aws import EmbeddedAws, subprocess_env  # noqa: E402
from trainstack.embedded_aws.testing import (  # noqa: E402
    create_test_role,
    job_request,
    log_lines,
    unique,
    upload_script,
    wait_for_job,
)

# The script stamps wall-clock time on its first and last lines; logs carry them back.
SCRIPT = """
import time
print(f"BENCH-FIRST {time.time()}", flush=True)
print(f"BENCH-LAST {time.time()}", flush=True)
"""


def deploy(aws: EmbeddedAws) -> dict[str, float]:
    env = subprocess_env(aws.env)
    env["PATH"] = f"{REPO_ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    out = Path(tempfile.mkdtemp(prefix="bench-cdk-")) / "cdk.out"
    steps = {
        "cdk synth": ["npx", "cdk", "synth", "local/*", "-c", "env=local", "--output", str(out), "--quiet"],
        "cdk bootstrap": ["npx", "cdk", "bootstrap", f"aws://{aws.account}/{aws.region}", "--app", str(out)],
        "cdk deploy (5 stacks)": ["npx", "cdk", "deploy", "local/*", "--app", str(out), "--require-approval", "never"],
    }
    seconds: dict[str, float] = {}
    for step, command in steps.items():
        started = time.monotonic()
        result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
        seconds[step] = time.monotonic() - started
        if result.returncode:
            print(f"{step} failed:\n{result.stderr[-2000:]}", file=sys.stderr)
            break
    return seconds


def job_overhead(aws: EmbeddedAws, bucket: str, instances: int) -> tuple[float, float, float]:
    sagemaker = aws.client("sagemaker")
    name = unique("bench")
    request = job_request(name, bucket, upload_script(aws.client("s3"), bucket, SCRIPT))
    request["ResourceConfig"]["InstanceCount"] = instances
    created = time.time()
    sagemaker.create_training_job(**request)
    wait_for_job(sagemaker, name)
    done = time.time()
    lines = [line for stream in log_lines(aws.client("logs"), name).values() for line in stream]
    first = min(float(line.split()[1]) for line in lines if line.startswith("BENCH-FIRST"))
    last = max(float(line.split()[1]) for line in lines if line.startswith("BENCH-LAST"))
    return first - created, done - last, done - created


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-deploy", action="store_true")
    parser.add_argument("--jobs", type=int, default=3, help="jobs per instance count")
    args = parser.parse_args()
    started = time.monotonic()
    with EmbeddedAws() as aws:
        print(f"embedded AWS start-up: {time.monotonic() - started:.1f} s ({aws.endpoint_url})")
        create_test_role(aws.client("iam"))  # the jobs run as testing.ROLE, which IAM evaluation needs to exist
        if not args.skip_deploy:
            for step, seconds in deploy(aws).items():
                print(f"{step}: {seconds:.1f} s")
        bucket = unique("bench")
        aws.client("s3").create_bucket(Bucket=bucket)
        for instances in (1, 2):
            runs = [job_overhead(aws, bucket, instances) for _ in range(args.jobs)]
            before, after, total = (statistics.median(values) for values in zip(*runs, strict=True))
            print(
                f"training job, {instances} instance(s), median of {args.jobs}: CreateTrainingJob -> first line "
                f"{before:.2f} s; last line -> Completed {after:.2f} s; total {total:.2f} s"
            )
    print(json.dumps({"cpu_count": os.cpu_count()}))


if __name__ == "__main__":
    main()
