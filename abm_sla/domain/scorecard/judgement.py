"""A commitment row: the catalog value it reads, whether the period was measured, missed or not against a
target or a band, per owner."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard.data import SlaData, within

COMMITMENT_COLUMNS = ["commitment", "tier", "value", "target", "missed", "owners", "owners_missed",
                      "owners_missed_ids"]


def catalog_table(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                  policy: SlaPolicy) -> pd.DataFrame:
    """The metrics catalog's table for the period (:func:`abm_sla.domain.metrics.compute`): where the commitments'
    values come from."""
    from abm_sla.domain import metrics  # the catalog is built on this module's row-level functions

    return metrics.compute(data, start, end, as_of, policy)


def _catalog_value(table: pd.DataFrame, metric: str, tier: int | None = None) -> float:
    from abm_sla.domain import metrics

    return metrics.value(table, metric, metrics.ALL if tier is None else f"tier={tier}")


def _catalog_owners(table: pd.DataFrame, metric: str) -> pd.Series:
    """Per owner (index): the catalog value of ``metric`` in its ``owner=`` segments, where measured."""
    rows = table[(table["metric"] == metric) & table["segment"].str.startswith("owner=")]
    return rows.set_index(rows["segment"].str.removeprefix("owner="))["value"].dropna()


def has_data(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> bool:
    """Whether the pipeline measured anything in ``[start, end)``: a score, an MQA or a clock due."""
    return _measured(data, start, end)


def latest_measurement(data: SlaData) -> pd.Timestamp | None:
    """The latest moment scored, MQA fired or clocks evaluated at (None when there is none)."""
    moments = [data.score_history["as_of"].max(), data.mqas["trigger_at"].max(), data.sla_clocks["as_of"].max()]
    moments = [moment for moment in moments if pd.notna(moment)]
    return max(moments) if moments else None


def _measured(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> bool:
    """Whether the pipeline ran in the period: any score, MQA or clock in it (else volume is not judged)."""
    return bool(within(data.score_history["as_of"], start, end).any()
                or within(data.mqas["trigger_at"], start, end).any()
                or within(data.sla_clocks["due_at"], start, end).any())


def _value(frame: pd.DataFrame, where: dict[str, Any], column: str) -> float:
    mask = np.logical_and.reduce([frame[key] == value for key, value in where.items()])
    values = frame.loc[mask, column]
    return float(values.iloc[0]) if len(values) and pd.notna(values.iloc[0]) else float("nan")


def _below(value: float, target: float) -> bool | None:
    return None if pd.isna(value) else bool(value < target)


def _outside(value: float, low: float | None, high: float | None) -> bool | None:
    if pd.isna(value):
        return None
    return bool((low is not None and value < low) or (high is not None and value > high))


def _row(name: str, tier: int | None, value: float, target: str, missed: bool | None,
         owner_missed: pd.Series | None = None) -> dict[str, Any]:
    """One commitment's row; ``owner_missed`` is its per-owner split (None: the number has no owner breakdown,
    so ``owners`` and ``owners_missed`` are empty, not 0 owners measured)."""
    split = owner_missed is not None
    owner_missed = owner_missed.dropna().astype(bool) if split else pd.Series(dtype=bool)
    return {"commitment": name, "tier": tier, "value": value, "target": target, "missed": missed,
            "owners": len(owner_missed) if split else pd.NA,
            "owners_missed": int(owner_missed.sum()) if split else pd.NA,
            "owners_missed_ids": ", ".join(sorted(str(o) for o in owner_missed[owner_missed].index))}


def _bounds_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low:g}-{high:g}"
    return f">= {low:g}" if low is not None else f"<= {high:g}"


def custom_name(metric: str) -> str:
    """The commitment name of a ``targets.custom`` entry."""
    return f"custom:{metric}"
