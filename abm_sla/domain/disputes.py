"""Disputes (the ABM template's disagreement resolution) as pure functions over the stored frames.

A dispute is open from its opening until it is closed with a resolution; reopening starts its
steps again from the reopening (``steps_from``). Its steps come from the policy (default: week 1
the owners meet, week 2 the managers, month 2 the SLA renegotiation): each is due its offset past
``steps_from``; the current step is the first not yet due, and past the last one it is overdue.
Counts for a period come from the notes history (opened, closed, reopened events), so a dispute
closed and reopened counts once opened, once reopened and once per closing: the metrics catalog's
``dispute_events`` and ``disputes_open`` families (:mod:`abm_sla.domain.metrics.quarterly_facts`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain.policy.escalation import DisputeStep

OUTCOMES = ("agreed", "upheld", "overturned", "sla_changed", "withdrawn")
DISPUTE_COLUMNS = ["dispute_id", "account_id", "disagreement", "raised_by", "requested_resolution", "opened_at",
                   "steps_from", "status", "closed_at", "resolution", "outcome", "times_reopened", "updated_at"]
NOTE_COLUMNS = ["id", "dispute_id", "at", "author", "kind", "text"]
UTC = "datetime64[ns, UTC]"


def step_dues(steps_from: pd.Series, steps: list[DisputeStep]) -> pd.DataFrame:
    """Due moment of every step per dispute: columns ``1..n`` (calendar hours or days past steps_from)."""
    hours = [step.after.amount * (24 if step.after.kind == "days" else 1) for step in steps]
    return pd.DataFrame({step.step: steps_from + pd.Timedelta(hours=h) for step, h in zip(steps, hours, strict=True)},
                        index=steps_from.index)


def current_steps(disputes: pd.DataFrame, steps: list[DisputeStep], as_of: pd.Timestamp) -> pd.DataFrame:
    """Per dispute: the step in force as of ``as_of`` (``step, step_name, owed_by, step_due_at, overdue``)."""
    dues = step_dues(pd.to_datetime(disputes["steps_from"], utc=True), steps)
    not_due = dues.ge(as_of).to_numpy()
    position = np.where(not_due.any(axis=1), not_due.argmax(axis=1), len(steps) - 1) if len(steps) else []
    names = np.array([step.name for step in steps], dtype=object)
    owed = np.array([step.who for step in steps], dtype=object)
    due = dues.to_numpy()[np.arange(len(dues)), position] if len(dues) else np.array([], dtype=UTC)
    return pd.DataFrame({
        "step": np.asarray(position, dtype="int64") + 1, "step_name": names[position], "owed_by": owed[position],
        "step_due_at": pd.to_datetime(pd.Series(due, index=disputes.index), utc=True).astype(UTC),
        "overdue": ~not_due.any(axis=1) if len(dues) else np.array([], dtype=bool),
    }, index=disputes.index)


def open_disputes(disputes: pd.DataFrame, notes: pd.DataFrame, steps: list[DisputeStep], as_of: pd.Timestamp,
                  account_names: pd.Series | None = None) -> pd.DataFrame:
    """The disputes open now (opened by ``as_of``) with their current step and its due date, oldest first."""
    rows = disputes[(disputes["status"] == "open") & (disputes["opened_at"] <= as_of)]
    if rows.empty:
        return pd.DataFrame(columns=["dispute_id", "account_id", "account_name", "raised_by", "disagreement",
                                     "requested_resolution", "opened_at", "times_reopened", "step", "step_name",
                                     "owed_by", "step_due_at", "overdue", "notes"])
    out = rows.join(current_steps(rows, steps, as_of))
    counts = notes[notes["kind"] == "note"].groupby("dispute_id").size()
    out = out.assign(notes=out["dispute_id"].map(counts).fillna(0).astype(int),
                     account_name=out["account_id"].map(account_names) if account_names is not None else None)
    columns = ["dispute_id", "account_id", "account_name", "raised_by", "disagreement", "requested_resolution",
               "opened_at", "times_reopened", "step", "step_name", "owed_by", "step_due_at", "overdue", "notes"]
    return out.sort_values(["step_due_at", "dispute_id"])[columns].reset_index(drop=True)


def closed_disputes(disputes: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Disputes closed (and still closed) in ``[start, end)`` with their outcome and resolution."""
    rows = disputes[(disputes["status"] == "closed") & (disputes["closed_at"] >= start) & (disputes["closed_at"] < end)]
    rows = rows.assign(days_to_close=((rows["closed_at"] - rows["opened_at"]).dt.total_seconds() / 86400).round(1))
    columns = ["dispute_id", "account_id", "raised_by", "disagreement", "opened_at", "closed_at", "days_to_close",
               "times_reopened", "outcome", "resolution"]
    return rows.sort_values("closed_at")[columns].reset_index(drop=True)
