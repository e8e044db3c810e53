"""The metric lines the training script prints, and the regexes SageMaker reads them back with.

Both live here so the log format and the job's `MetricDefinitions` cannot drift apart. Standard library
only: the CDK app imports `METRIC_DEFINITIONS` (`from training_code.metrics import METRIC_DEFINITIONS`)
and the embedded AWS may parse logs with `parse_metric_lines`, neither of which should pull in torch.

A line looks like:

    train_loss=2.3456; learning_rate=5e-05; grad_norm=1.234; epoch=0.5;
    eval_loss=2.1; eval_perplexity=8.16617;
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

# Every name ends in `=`, and no name is the tail of another, so each regex matches only its own field.
METRIC_NAMES: tuple[str, ...] = (
    "train_loss",
    "learning_rate",
    "grad_norm",
    "epoch",
    "eval_loss",
    "eval_perplexity",
    "train_runtime",
    "train_tokens_per_second",
)

# A decimal or scientific number as `format_metric_line` writes it; `nan`/`inf` deliberately don't match,
# since SageMaker would reject the data point anyway.
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"

METRIC_DEFINITIONS: list[dict[str, str]] = [{"Name": name, "Regex": f"{name}={_NUMBER};"} for name in METRIC_NAMES]
"""`AlgorithmSpecification.MetricDefinitions` for CreateTrainingJob, one entry per metric."""

_PATTERNS: dict[str, re.Pattern[str]] = {d["Name"]: re.compile(d["Regex"]) for d in METRIC_DEFINITIONS}


def format_metric_line(values: Mapping[str, float]) -> str:
    """`name=value;` pairs for the known metric names present in `values`, in a fixed order; '' if none."""
    parts = [f"{name}={_format_number(values[name])};" for name in METRIC_NAMES if name in values]
    return " ".join(parts)


def perplexity(loss: float) -> float:
    """exp(loss), saturating to inf instead of raising for a diverged run."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def parse_metric_lines(lines: Iterable[str]) -> dict[str, list[float]]:
    """Every value of every metric in `lines`, in order, the way SageMaker extracts them from the log."""
    found: dict[str, list[float]] = {name: [] for name in METRIC_NAMES}
    for line in lines:
        for name, pattern in _PATTERNS.items():
            found[name].extend(float(value) for value in pattern.findall(line))
    return {name: values for name, values in found.items() if values}


def _format_number(value: float) -> str:
    # Six significant digits keep lines short while losses stay distinguishable step to step.
    return f"{float(value):.6g}"
