"""Disputes: steps with due dates, open/closed/reopened counts, and the report tables built from them."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain.disputes import current_steps, open_disputes
from abm_sla.domain.metrics import quarterly_tables as qt
from abm_sla.domain.scorecard import SlaData
from abm_sla.services.config_files import load_policy

STEPS = load_policy().disputes.steps
T = pd.Timestamp


def ts(text: str) -> pd.Timestamp:
    return T(text).tz_convert("UTC") if T(text).tzinfo else T(text, tz="UTC")


def disputes(*rows: dict) -> pd.DataFrame:
    base = {"account_id": "A", "disagreement": "leads are bad", "raised_by": "sales", "requested_resolution": "x",
            "status": "open", "closed_at": pd.NaT, "resolution": None, "outcome": None, "times_reopened": 0}
    frame = pd.DataFrame([{**base, **row} for row in rows])
    for column in ("opened_at", "steps_from", "closed_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def notes(*rows: tuple[int, str, str, str]) -> pd.DataFrame:
    frame = pd.DataFrame([{"id": n, "dispute_id": d, "at": ts(at), "author": "r", "kind": kind, "text": text}
                          for n, (d, at, kind, text) in enumerate(rows)])
    return frame.astype({"at": "datetime64[ns, UTC]"})


def period_counts(frame: pd.DataFrame, history: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The dispute_counts table over the catalog's dispute families of ``[start, end)``."""
    return qt.dispute_counts(qt.dispute_table(SlaData.of(disputes=frame, dispute_notes=history), start, end))


def test_default_steps_follow_the_template() -> None:
    assert [(s.name, s.after.days) for s in STEPS] == [("owners meet", 7), ("managers meet", 14),
                                                       ("SLA renegotiation", 60)]


def test_current_step_and_due_date_as_time_passes() -> None:
    frame = disputes({"dispute_id": 1, "opened_at": "2026-03-02", "steps_from": "2026-03-02"})
    seen = [current_steps(frame, STEPS, ts(at)).iloc[0] for at in ("2026-03-02", "2026-03-09", "2026-03-09 00:01",
                                                                   "2026-05-01", "2026-05-02")]
    assert [(s.step, s.step_due_at.date().isoformat(), s.overdue) for s in seen] == [
        (1, "2026-03-09", False), (1, "2026-03-09", False), (2, "2026-03-16", False), (3, "2026-05-01", False),
        (3, "2026-05-01", True)]


def test_a_dispute_closed_and_reopened() -> None:
    """Opened 2 Mar, closed 10 Mar, reopened 20 Mar (its steps start again), closed 1 Apr."""
    history = notes((1, "2026-03-02", "opened", "x"), (1, "2026-03-05", "note", "met"),
                    (1, "2026-03-10", "closed", "[agreed] fine"), (1, "2026-03-20", "reopened", "again"),
                    (1, "2026-04-01", "closed", "[sla_changed] new window"))
    reopened = disputes({"dispute_id": 1, "opened_at": "2026-03-02", "steps_from": "2026-03-20", "times_reopened": 1})
    shown = open_disputes(reopened, history, STEPS, ts("2026-03-25"))
    assert shown[["dispute_id", "step", "notes"]].values.tolist() == [[1, 1, 1]]
    assert shown["step_due_at"][0] == ts("2026-03-27")  # a week from the reopening, not from the opening
    march = period_counts(reopened, history, ts("2026-03-01"), ts("2026-04-01")).iloc[0]
    assert (march["opened"], march["closed"], march["reopened"], march["open_at_end"]) == (1, 1, 1, 1)
    assert march["median_days_to_close"] == 8.0 and march["outcome_agreed"] == 1
    closed = reopened.assign(status="closed", closed_at=ts("2026-04-01"))
    assert open_disputes(closed, history, STEPS, ts("2026-04-02")).empty
    april = period_counts(closed, history, ts("2026-04-01"), ts("2026-05-01")).iloc[0]
    assert (april["opened"], april["closed"], april["open_at_end"], april["outcome_sla_changed"]) == (0, 1, 0, 1)
    assert april["median_days_to_close"] == 30.0  # from the first opening
