"""Progress of long work, shown where the work was started from: a rich bar on the terminal, nothing elsewhere.

Code that loops over steps calls :func:`track` (``with track("backfill", total=126) as bar: ...
bar.advance(rows=...)``). Inside :func:`console_progress` (the CLI) each tracked stage is a rich
progress line: stage, done/total, rows, rate, elapsed and time left when the total is known; with
``plain`` (output to a pipe or a log file, where a live bar shows nothing until the end) it is plain
lines instead: one when a stage starts, one per tenth of its total, one when it ends. Outside,
:func:`track` is a no-op, so flows and tests pay nothing (flows show the same progress as a Prefect
progress artifact, which they update themselves).
"""

from __future__ import annotations

import sys
import time
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


class PlainLines:
    """The part of a rich ``Progress`` that :func:`track` uses, written as plain lines to ``stream``."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.stages: list[dict[str, Any]] = []

    def add_task(self, description: str, total: float | None = None, rows: str = "") -> int:
        self.stages.append({"stage": description, "total": total, "done": 0, "rows": rows, "shown": 0,
                            "started": time.monotonic()})
        self._line(len(self.stages) - 1, "started")
        return len(self.stages) - 1

    def update(self, task_id: int, advance: float = 0, rows: str | None = None, completed: float | None = None,
               visible: bool = True) -> None:
        stage = self.stages[task_id]
        stage["rows"] = stage["rows"] if rows is None else rows
        if completed is not None:  # the stage ended
            stage["done"] = completed
            if stage["shown"] < 10:
                stage["shown"] = 10
                self._line(task_id, "done")
            return
        stage["done"] += advance
        total = stage["total"]
        tenth = int(10 * stage["done"] / total) if total else int(stage["done"] // 100)
        if tenth > stage["shown"] and (not total or tenth <= 10):
            stage["shown"] = tenth
            self._line(task_id, "done" if total and tenth == 10 else "")

    def _line(self, task_id: int, state: str) -> None:
        stage = self.stages[task_id]
        total = stage["total"]
        count = f"{stage['done']:g}/{total:g} ({100 * stage['done'] / total:.0f}%)" if total else f"{stage['done']:g}"
        parts = [count, stage["rows"], f"{time.monotonic() - stage['started']:.0f} s", state]
        print(f"{stage['stage']}: " + ", ".join(part for part in parts if part), file=self.stream, flush=True)


@contextmanager
def console_progress(enabled: bool = True, plain: bool = False) -> Iterator[None]:
    """Show every :func:`track` stage started inside on stderr: a rich progress line, or with ``plain``
    (stderr not a terminal) :class:`PlainLines`."""
    if not enabled:
        yield
        return
    if plain:
        token = _DISPLAY.set(PlainLines(sys.stderr))
        try:
            yield
        finally:
            _DISPLAY.reset(token)
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
