"""Progress bars and one-line messages on stderr (rich), shared by every long job."""

from __future__ import annotations

import re

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

# C0 controls but tab and newline, DEL and C1: what a terminal would obey (ESC sequences, NUL, bell)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)  # results a command prints (tables): stdout, so they pipe


class RateColumn(ProgressColumn):
    """Items per second (files, labels, layers), once rich has measured a rate."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:.1f}/s" if task.speed else "", style="progress.data.speed")


def bar(enabled: bool = True) -> Progress:
    """A progress bar: description, bar, done/total, rate, elapsed, ETA."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )


def printable(value: object) -> str:
    """Text from data (labels, prompts, file names) fit for the terminal: control characters shown as
    escapes (ESC -> \\x1b), never obeyed."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", str(value))


def safe(value: object) -> str:
    """`printable`, and fit for rich: markup in the data is shown, never applied."""
    return escape(printable(value))
