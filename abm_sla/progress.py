"""Progress of long work, shown where the work was started from: a rich bar on the terminal, nothing elsewhere.

Code that loops over steps calls :func:`track` (``with track("backfill", total=126) as bar: ...
bar.advance(rows=...)``). Inside :func:`console_progress` (the CLI) each tracked stage is a rich
progress line: stage, done/total, rows, rate, elapsed and time left when the total is known. Outside,
:func:`track` is a no-op, so flows and tests pay nothing (flows show the same progress as a Prefect
progress artifact, which they update themselves).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

_DISPLAY: ContextVar[Any] = ContextVar("abm_sla_progress_display", default=None)


@dataclass
class Tracker:
    """One stage's counter; ``advance`` moves the display when there is one."""

    stage: str
    total: float | None = None
    done: float = 0
    rows: int = 0
    _task: Any = field(default=None, repr=False)

    def advance(self, steps: float = 1, rows: int = 0) -> None:
        self.done += steps
        self.rows += rows
        display = _DISPLAY.get()
        if display is not None and self._task is not None:
            display.update(self._task, advance=steps, rows=f"{self.rows:,} rows" if self.rows else "")


@contextmanager
def track(stage: str, total: float | None = None) -> Iterator[Tracker]:
    """A counter for ``stage`` (``total`` steps if known), shown while the block runs."""
    tracker = Tracker(stage, total)
    display = _DISPLAY.get()
    if display is not None:
        tracker._task = display.add_task(stage, total=total, rows="")
    try:
        yield tracker
    finally:
        if display is not None and tracker._task is not None:
            display.update(tracker._task, completed=tracker.total or tracker.done, visible=True)


@contextmanager
def console_progress(enabled: bool = True) -> Iterator[None]:
    """Show every :func:`track` stage started inside as a rich progress line on stderr (if a terminal)."""
    if not enabled:
        yield
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{task.speed:,.1f}/s" if task.speed else "")

    columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rows]}"), Rate(), TimeElapsedColumn(), TextColumn("left"),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as display:
        token = _DISPLAY.set(display)
        try:
            yield
        finally:
            _DISPLAY.reset(token)
