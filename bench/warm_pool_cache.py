"""Warm-pool cache figures: CreateTrainingJob -> first training step, cold pool vs reused pool, ~300 MB model.

Deploys the `local` platform into an in-process embedded AWS (the demo's path), builds a GPT-2 of about
300 MB offline (the tiny model's tokenizer, wider and deeper), uploads it under `models/` in the data bucket
and runs two console-style executions with `model_s3_uri` and a keep-alive: the first starts a pool (cache
miss, the weights are pulled), the second reuses it (the weights are found in the pool's cache folder,
SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY). The clock starts at the job's CreationTime and stops at the
first `step=N; train_loss=...` metric line (training_code/callbacks.py; printed after step 1), timestamped
by the embedded executor as the line arrives. Figures only, no assertions.
Usage: python bench/warm_pool_cache.py
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from trainstack.config import ResourceNames, load_environment  # noqa: E402
from trainstack.embedded_aws import EmbeddedAws  # noqa: E402
from trainstack.local_platform import deploy, stage_demo_data, upload_directory  # noqa: E402
from trainstack.tiny_model import build_tiny_model  # noqa: E402

CONFIG = load_environment("local")
NAMES = ResourceNames.of(CONFIG)
MODEL_PREFIX = "models/bench-gpt2-300mb/"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
FIRST_STEP = re.compile(r"^step=\d+; train_loss=")
# Short rows and one step's worth of work: the figure is the start-up (pull, load), not training speed.
HYPERPARAMETERS = {
    "model_s3_uri": MODEL_PREFIX,
    "max_steps": 1,
    "logging_steps": 1,
    "block_size": 32,
    "per_device_train_batch_size": 1,
    "per_device_eval_batch_size": 1,
    "validation_split": 0,
    "save_steps": 1000,
    # An adapter, not 285 MB of fine-tuned weights, is what the job saves and uploads after the step: the
    # bench's wall time stays in minutes on 2 cores, and the base model is still pulled and loaded whole.
    "lora_r": 8,
}


def build_model(out_dir: Path) -> int:
    """The tiny model's tokenizer with a 10-layer, 768-wide GPT-2 (~71 M parameters, fp32 safetensors)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    build_tiny_model(out_dir)
    config = GPT2Config.from_pretrained(out_dir)
    config.update({"n_embd": 768, "n_layer": 10, "n_head": 12})
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(out_dir)  # replaces the tiny weights and config
    return sum(path.stat().st_size for path in out_dir.iterdir() if path.is_file())


def execute(aws: EmbeddedAws, state_machine_arn: str, run_input: dict[str, Any], timeout: float = 600) -> dict:
    sfn = aws.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=f"bench-{uuid.uuid4().hex[:12]}", input=json.dumps(run_input)
    )["executionArn"]
    deadline = time.monotonic() + timeout
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: execution still running after {timeout:.0f} s")
        time.sleep(0.5)
    if described["status"] != "SUCCEEDED":
        raise SystemExit(f"bench: execution {described['status']}: {described.get('error')} {described.get('cause')}")
    return json.loads(described["output"])


def job_events(aws: EmbeddedAws, job_name: str) -> list[dict]:
    logs = aws.client("logs")
    # By stream name: moto's FilterLogEvents ignores logStreamNamePrefix and would mix in other jobs' lines.
    streams = logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job_name}/")["logStreams"]
    return sorted(
        (
            event
            for stream in streams
            for event in logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream["logStreamName"])["events"]
        ),
        key=lambda event: event["timestamp"],
    )


def wait_for_pool(aws: EmbeddedAws, job_name: str, timeout: float = 60) -> str:
    sagemaker = aws.client("sagemaker")
    deadline = time.monotonic() + timeout
    while True:
        status = sagemaker.describe_training_job(TrainingJobName=job_name).get("WarmPoolStatus", {}).get("Status")
        if status == "Available" or time.monotonic() > deadline:
            return str(status)
        time.sleep(0.5)


def measure(aws: EmbeddedAws, state_machine_arn: str) -> dict[str, Any]:
    output = execute(aws, state_machine_arn, {"keep_alive_seconds": 300, "hyperparameters": HYPERPARAMETERS})
    job_name = output["jobName"]
    job = aws.client("sagemaker").describe_training_job(TrainingJobName=job_name)
    events = job_events(aws, job_name)
    created = job["CreationTime"].timestamp()
    first_step = next(event["timestamp"] / 1000 for event in events if FIRST_STEP.match(event["message"]))
    messages = [event["message"] for event in events]
    cache = next((m.split(":", 1)[0] for m in messages if m.startswith("warm-pool cache ")), "no cache line")
    return {
        "job": job_name,
        "reused pool": output["warmPool"].get("reusable_pool"),
        "to first step": first_step - created,
        "first step -> end": (job.get("TrainingEndTime") or job["LastModifiedTime"]).timestamp() - first_step,
        "cache": cache,
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-warm-pool-") as out:
        run_bench(Path(out))
    print(json.dumps({"cpu_count": os.cpu_count()}))


def run_bench(work: Path) -> None:
    """Everything (model, job host folders, CDK assembly) under `work`, removed afterwards: ~1 GB per run."""
    with EmbeddedAws(work_dir=work / "jobs") as aws:
        started = time.monotonic()
        platform = deploy(CONFIG, aws.env, work / "cdk.out", log=work / "cdk.log")
        print(f"deploy of the local platform: {time.monotonic() - started:.1f} s")
        s3 = aws.client("s3")
        stage_demo_data(s3, CONFIG, build_tiny_model(work / "tiny-model"))  # the channels the runs still get
        started = time.monotonic()
        size = build_model(work / "model")
        print(f"model built: {size / 1e6:.0f} MB in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        upload_directory(s3, work / "model", NAMES.data_bucket, MODEL_PREFIX)
        print(f"model uploaded to s3://{NAMES.data_bucket}/{MODEL_PREFIX}: {time.monotonic() - started:.1f} s")

        cold = measure(aws, platform.state_machine_arn)
        print(f"first job's pool: {wait_for_pool(aws, cold['job'])}")
        reused = measure(aws, platform.state_machine_arn)
        for label, figures in (("cold pool", cold), ("reused pool", reused)):
            print(
                f"{label}: CreateTrainingJob -> first training step {figures['to first step']:.1f} s "
                f"(then {figures['first step -> end']:.1f} s to the job's end; log: {figures['cache']}; "
                f"reused pool: {figures['reused pool']})"
            )
        saved = cold["to first step"] - reused["to first step"]
        print(f"reused pool saves {saved:.1f} s to the first step for a {size / 1e6:.0f} MB model")


if __name__ == "__main__":
    main()
