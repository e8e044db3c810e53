"""Trainer callbacks: metric lines for SageMaker, and a per-rank account of the work done."""

from __future__ import annotations

from typing import Any

from metrics import format_metric_line, perplexity
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

# Trainer's log keys -> our stable metric names (metrics.METRIC_NAMES). The end-of-training summary's
# `train_loss` is a mean over the whole run, so it is not re-printed as if it were a step's loss.
_STEP_KEYS = {
    "loss": "train_loss",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
    "epoch": "epoch",
    "train_tokens_per_second": "train_tokens_per_second",
}
_SUMMARY_KEYS = {"train_runtime": "train_runtime", "train_tokens_per_second": "train_tokens_per_second"}


class MetricLinesCallback(TrainerCallback):
    """Prints `name=value;` lines (see metrics.py) from world rank 0, the log SageMaker's regexes read."""

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        values: dict[str, float] = {}
        if "eval_loss" in logs:
            values["eval_loss"] = logs["eval_loss"]
            values["eval_perplexity"] = perplexity(logs["eval_loss"])
        else:
            # A step's log has `loss`; the end-of-training summary has `train_loss` instead.
            keys = _STEP_KEYS if "loss" in logs else _SUMMARY_KEYS
            values = {name: logs[key] for key, name in keys.items() if logs.get(key) is not None}
        line = format_metric_line(values)
        if line:
            print(f"step={state.global_step}; {line}", flush=True)


class RankReportCallback(TrainerCallback):
    """Each rank says how many batches it trained on: the proof that every node took part."""

    def __init__(self, host: str, rank: int, world_size: int) -> None:
        self.host = host
        self.rank = rank
        self.world_size = world_size
        self.batches = 0

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self.batches += args.gradient_accumulation_steps

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        print(
            f"rank {self.rank}/{self.world_size} on {self.host}: trained {self.batches} local batches, "
            f"global step {state.global_step}",
            flush=True,
        )
