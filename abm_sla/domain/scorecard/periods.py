"""Periods: ``2026-W14``, ``2026-03``, ``2026-Q1`` or ``2026`` as ``[start, end)`` in UTC, the quarter or
period before, ISO weeks."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd

from abm_sla.errors import AbmSlaError

_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)
_YEAR = re.compile(r"^(\d{4})$")


def parse_period(text: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` in UTC of ``2026-W14`` (ISO week), ``2026-03`` (month), ``2026-Q1`` or ``2026``."""
    value = str(text).strip()
    try:
        if match := _WEEK.match(value):
            monday = dt.date.fromisocalendar(int(match[1]), int(match[2]), 1)
            start = pd.Timestamp(monday, tz="UTC")
            return start, start + pd.Timedelta(days=7)
        if match := _MONTH.match(value):
            start = pd.Timestamp(year=int(match[1]), month=int(match[2]), day=1, tz="UTC")
            return start, start + pd.offsets.MonthBegin(1)
        if match := _QUARTER.match(value):
            start = pd.Timestamp(year=int(match[1]), month=3 * int(match[2]) - 2, day=1, tz="UTC")
            return start, start + pd.offsets.MonthBegin(3)
        if match := _YEAR.match(value):
            start = pd.Timestamp(year=int(match[1]), month=1, day=1, tz="UTC")
            return start, start + pd.offsets.YearBegin(1)
    except ValueError:
        pass
    raise AbmSlaError(f"period {text!r} is not a week (2026-W14), month (2026-03), quarter (2026-Q1) or year")


def quarter_of(moment: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The calendar quarter ``[start, end)`` containing ``moment``."""
    return parse_period(f"{moment.year}-Q{(moment.month - 1) // 3 + 1}")


def previous_quarter(start: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The quarter before the one starting at ``start``."""
    return quarter_of(start - pd.Timedelta(days=1))


def previous_period(start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The period of the same kind just before ``[start, end)``: the week, month, quarter or year before."""
    if end - start == pd.Timedelta(days=7):
        return start - pd.Timedelta(days=7), start
    months = (end.year - start.year) * 12 + end.month - start.month
    return start - pd.DateOffset(months=months), start


def quarter_label(start: pd.Timestamp) -> str:
    return f"{start.year}-Q{(start.month - 1) // 3 + 1}"


def weeks(start: pd.Timestamp, end: pd.Timestamp) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """ISO weeks (label, start, end) overlapping ``[start, end)``."""
    monday = (start - pd.Timedelta(days=start.weekday())).normalize()
    out = []
    while monday < end:
        year, week, _ = monday.isocalendar()
        out.append((f"{year}-W{week:02d}", monday, monday + pd.Timedelta(days=7)))
        monday += pd.Timedelta(days=7)
    return out
