"""The monthly review's decisions in the warehouse: add, mark done, list (``abm-sla decision ...``).

The seven commitments: the monthly review's output is two to three concrete decisions for the next month. Each is
recorded for the month of the review that took it, with its owner; the next month's review shows them (open or
done) so the meeting starts from what it decided. Moments are passed in (the CLI uses now).
"""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import sqlalchemy as sa

from abm_sla.errors import AbmSlaError, required_text
from abm_sla.warehouse import schema
from abm_sla.warehouse.store import Warehouse

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class DecisionError(AbmSlaError):
    """A decision command that cannot be done (bad month, empty text, unknown decision, already done)."""


def _text(value: str | None, what: str) -> str:
    return required_text(value, what, DecisionError)


def add_decision(warehouse: Warehouse, month: str, text: str, owner: str, at: dt.datetime,
                 due: str | None = None) -> int:
    """Record a decision of the review of ``month`` (``2026-03``); returns its id."""
    month = (month or "").strip()
    if not MONTH.match(month):
        raise DecisionError(f"the month must look like 2026-03, got {month!r}")
    due = (due or "").strip() or None
    if due is not None:
        if not DATE.match(due):
            raise DecisionError(f"the due date must look like 2026-04-30, got {due!r}")
        try:
            dt.date.fromisoformat(due)
        except ValueError:
            raise DecisionError(f"the due date {due!r} is not a date") from None
    row = {"month": month, "text": _text(text, "the decision (--text)"), "owner": _text(owner, "its owner (--owner)"),
           "due": due, "recorded_at": at, "status": "open", "updated_at": at}
    with warehouse.engine.begin() as connection:
        result = connection.execute(schema.review_decisions.insert().values(**row))
        return int(result.inserted_primary_key[0])


def mark_done(warehouse: Warehouse, decision_id: int, outcome: str, at: dt.datetime) -> None:
    """Mark an open decision done with what came of it."""
    outcome = _text(outcome, "what came of it (--outcome)")
    table = schema.review_decisions
    with warehouse.engine.begin() as connection:
        row = connection.execute(sa.select(table).where(table.c.decision_id == decision_id)).first()
        if row is None:
            raise DecisionError(f"no decision {decision_id} (`abm-sla decision list` lists them)")
        if row.status != "open":
            raise DecisionError(f"decision {decision_id} is done already")
        connection.execute(table.update().where(table.c.decision_id == decision_id).values(
            status="done", outcome=outcome, updated_at=at))


def read_decisions(warehouse: Warehouse, month: str | None = None) -> pd.DataFrame:
    """Every decision (of one review month when given), oldest first."""
    rows = warehouse.read_table(schema.review_decisions)
    if month is not None:
        rows = rows[rows["month"] == month]
    return rows.sort_values(["month", "decision_id"]).reset_index(drop=True)


# -- attendance of the quarterly account review (implementation guide) ----------------------------------------

QUARTER = re.compile(r"^\d{4}-Q[1-4]$")
SIDES = ("sales", "marketing")


def record_attendance(warehouse: Warehouse, period: str, name: str, side: str, at: dt.datetime) -> bool:
    """Record that ``name`` attended the quarterly review of ``period`` (``2026-Q1``) for ``side``; False when
    already recorded."""
    period = (period or "").strip().upper()
    if not QUARTER.match(period):
        raise DecisionError(f"the period must be a quarter like 2026-Q1, got {period!r}")
    side = (side or "").strip().lower()
    if side not in SIDES:
        raise DecisionError(f"the side must be sales or marketing, got {side!r}")
    name = _text(name, "the attendee (--name)")
    table = schema.review_attendance
    with warehouse.engine.begin() as connection:
        found = connection.execute(sa.select(table.c.name).where(
            (table.c.period == period) & (table.c.side == side) & (table.c.name == name))).first()
        if found is not None:
            return False
        connection.execute(table.insert().values(period=period, side=side, name=name, recorded_at=at))
    return True


def read_attendance(warehouse: Warehouse, period: str | None = None) -> pd.DataFrame:
    """Every attendance row (of one quarter when given), by quarter, side and name."""
    rows = warehouse.read_table(schema.review_attendance)
    if period is not None:
        rows = rows[rows["period"] == period.strip().upper()]
    return rows.sort_values(["period", "side", "name"]).reset_index(drop=True)
