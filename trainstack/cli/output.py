"""How the CLI prints: one console factory and the few formats every command shares."""

from __future__ import annotations

import datetime as dt
import sys

from rich.console import Console
from rich.text import Text

# Piped or captured output has no terminal width; 80 columns would wrap job names and S3 URIs mid-word
# and break `grep`. Tables take only the width their content needs, so a large bound costs nothing.
_PIPE_WIDTH = 1000


def console() -> Console:
    """A console on the current stdout (looked up per call, so test runners that swap stdout see output)."""
    width = None if sys.stdout.isatty() else _PIPE_WIDTH
    return Console(file=sys.stdout, highlight=False, soft_wrap=True, width=width)


def field(out: Console, label: str, value: str | Text, style: str = "") -> None:
    """One `Label      value` line; values are Text, never markup (causes quote [brackets])."""
    line = Text(f"{label:<16}", style="bold")
    line.append(value if isinstance(value, Text) else Text(value, style=style))
    out.print(line)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def when(moment: dt.datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def short_when(moment: dt.datetime | None) -> str:
    """`19:15:02` today, `12-01 19:15` on another day: a table column that stays narrow."""
    if moment is None:
        return "-"
    local = moment.astimezone()
    return local.strftime("%H:%M:%S" if local.date() == dt.datetime.now().astimezone().date() else "%m-%d %H:%M")


def number(value: float | None) -> str:
    """Quota values arrive as floats (4.0); show whole numbers as such."""
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


STATUS_STYLES = {
    "SUCCEEDED": "green",
    "Completed": "green",
    "RUNNING": "cyan",
    "InProgress": "cyan",
    "Available": "green",
    "InUse": "cyan",
    "FAILED": "red",
    "Failed": "red",
    "TIMED_OUT": "red",
    "ABORTED": "yellow",
    "Stopped": "yellow",
    "Terminated": "dim",
    "Reused": "dim",
}


def status_text(status: str | None) -> Text:
    return Text(status or "-", style=STATUS_STYLES.get(status or "", ""))
