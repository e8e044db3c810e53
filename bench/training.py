"""Tokens/s and wall time of the tiny local training run: training_code/ through the real toolkit.

Figures only, no assertions. One host, then two hosts as two processes over gloo on 127.0.0.1, both with
the tiny offline model (trainstack.tiny_model) and the shipped sample data.

    python bench/training.py [--steps 40]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from trainstack.tiny_model import build_tiny_model  # noqa: E402
from trainstack.toolkit_host import encode_hyperparameters, run_host, start_cluster, wait_cluster  # noqa: E402

TRAINING_CODE = REPO_ROOT / "training_code"
SAMPLE = REPO_ROOT / "examples" / "data" / "sample"
BLOCK_SIZE = 64
BATCH_SIZE = 8


def parse_metric_lines(text: str) -> dict[str, list[float]]:
    sys.path.insert(0, str(TRAINING_CODE))
    try:
        return importlib.import_module("metrics").parse_metric_lines(text.splitlines())
    finally:
        sys.path.remove(str(TRAINING_CODE))


def hyperparameters(steps: int) -> dict[str, str]:
    return encode_hyperparameters(
        {
            "sagemaker_program": "run_train.py",
            "sagemaker_submit_directory": str(TRAINING_CODE),
            "max_steps": steps,
            "learning_rate": 3e-3,
            "block_size": BLOCK_SIZE,
            "per_device_train_batch_size": BATCH_SIZE,
            "logging_steps": max(1, steps // 10),
            "save_steps": steps,
        }
    )


def report(label: str, wall_s: float, log: str, codes: list[int], world_size: int, steps: int) -> dict[str, object]:
    metrics = parse_metric_lines(log)
    # An upper bound: packed rows (TRL best-fit packing) hold at most BLOCK_SIZE tokens, whole examples only.
    tokens = steps * BATCH_SIZE * BLOCK_SIZE * world_size
    losses = metrics.get("train_loss", [])
    figures = {
        "run": label,
        "exit_codes": codes,
        "wall_s": round(wall_s, 2),
        "tokens_trained": tokens,
        # Trainer's own figure: tokens over the training loop only.
        "train_tokens_per_second": metrics.get("train_tokens_per_second", [None])[-1],
        # End to end: toolkit start, pip check, imports, torchrun rendezvous, training, evaluation, save.
        "end_to_end_tokens_per_second": round(tokens / wall_s, 1),
        "train_loss_first_last": [losses[0], losses[-1]] if losses else None,
        "eval_loss": metrics.get("eval_loss", [None])[-1],
        # This machine is shared; a high load average explains a slow figure.
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(figures))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="trainstack-bench-") as tmp:
        root = Path(tmp)
        model = build_tiny_model(root / "tiny-model")
        channels = {"train": SAMPLE / "train", "val": SAMPLE / "val", "model": model}

        start = time.perf_counter()
        code = run_host(
            root / "single" / "algo-1",
            current_host="algo-1",
            hosts=["algo-1"],
            hyperparameters=hyperparameters(args.steps),
            channels=channels,
            log_file=root / "single.log",
        )
        wall = time.perf_counter() - start
        report("1 host", wall, (root / "single.log").read_text(errors="replace"), [code], 1, args.steps)

        start = time.perf_counter()
        hosts = start_cluster(
            root / "two", instance_count=2, hyperparameters=hyperparameters(args.steps), channels=channels
        )
        codes = wait_cluster(hosts, timeout=600)
        wall = time.perf_counter() - start
        report("2 hosts (gloo)", wall, hosts[0].log_file.read_text(errors="replace"), codes, 2, args.steps)


if __name__ == "__main__":
    main()
