"""`trainstack status RUN --plot`: the run's train and eval loss curves, drawn in the terminal.

Read from the job's own metric lines in CloudWatch Logs (the lines SageMaker's metric regexes read,
training_code/metrics.py), so a running job plots as far as it got; drawn with plotext.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rich.console import Console
from rich.text import Text

from training_code.metrics import parse_metric_lines
from trainstack.cli.logs import LogTail, resolve_job
from trainstack.cli.session import Session

_STEP = re.compile(r"^step=(\d+);")
CURVES = ("train_loss", "eval_loss")


def loss_curves(lines: Iterable[str]) -> dict[str, list[tuple[int, float]]]:
    """(step, value) of each train and eval loss in the metric lines, in log order."""
    curves: dict[str, list[tuple[int, float]]] = {name: [] for name in CURVES}
    for line in lines:
        step = _STEP.match(line)
        if not step:
            continue
        for name, values in parse_metric_lines([line]).items():
            if name in curves:
                curves[name].extend((int(step.group(1)), value) for value in values)
    return {name: points for name, points in curves.items() if points}


def render(curves: dict[str, list[tuple[int, float]]], title: str, width: int = 100, height: int = 25) -> str:
    """The curves as terminal text (ANSI colours), `height` rows: train loss a line, eval loss points."""
    import plotext

    figure = plotext.figure
    figure.clear.all()  # one module-level figure: forget the previous drawing
    figure.plot_size(width, height)
    figure.title(title)
    for name, points in curves.items():
        steps, values = zip(*points, strict=True)
        signal = figure.signal(list(steps), list(values), **({} if name == "train_loss" else {"marker": "x"}))
        signal.label(name)
        if name == "train_loss":
            signal.lines()
        figure.draw(signal)
    return str(figure.build())


def plot_run(session: Session, target: str, out: Console) -> None:
    job_name = resolve_job(session, target, wait=False)
    lines = [line.message for line in LogTail(session.client("logs"), job_name).poll()]
    curves = loss_curves(lines)
    if not curves:
        out.print(f"No loss lines in {job_name}'s log yet.", style="dim")
        return
    out.print(Text.from_ansi(render(curves, f"{job_name}: loss", width=min(out.width, 120))))
