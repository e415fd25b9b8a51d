"""Reading and comparing catalog tables: one field of a row (:func:`read`), the change from the period before
(:func:`change`), the MQA volume table against the commitment (:func:`mqa_volume`) and the CSV form
(:func:`csv_frame`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import marketing
from abm_sla.domain import scorecard as sc
from abm_sla.domain.metrics.aggregate import family_table, row
from abm_sla.domain.metrics.base import (
    ALL,
    COLUMNS,
)
from abm_sla.domain.metrics.catalog import BY_ID
from abm_sla.domain.metrics.facts import mqa_facts
from abm_sla.domain.metrics.targets import target_bound
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard import SlaData


# --- last report tables (22c): reading and comparing catalog tables ---
def read(table: pd.DataFrame, metric: str, segment: str = ALL, field: str = "value",
         policy: SlaPolicy | None = None, default: float = float("nan")) -> float:
    """One number of a :func:`compute` table: the ``field`` (``value``, ``numerator``, ``denominator``) of a
    metric's row in a segment, ``default`` when there is no row or no number; ``field="target"`` is the bound its
    target names for the table's period (:func:`target_bound`, needs ``policy``)."""
    if field == "target":
        return target_bound(policy, table["period_start"].iloc[0], table["period_end"].iloc[0], metric, segment)
    found = row(table, metric, segment)
    number = found[field] if found is not None else np.nan
    return float(number) if pd.notna(number) else default


def change(now: pd.DataFrame, before: pd.DataFrame, metric: str, segment: str = ALL, field: str = "value",
           policy: SlaPolicy | None = None, default: float = float("nan")) -> float:
    """The change of one catalog number from the period before (``before``, a :func:`compute` table) to this one
    (``now``): :func:`read` of ``now`` minus :func:`read` of ``before``, to 0.1; NaN when either is missing.
    The comparisons' ``change`` column (month over month, week over week)."""
    return round(read(now, metric, segment, field, policy, default)
                 - read(before, metric, segment, field, policy, default), 1)


def per_period(family: str, facts_: pd.DataFrame, at: str, periods: list[tuple[pd.Timestamp, pd.Timestamp]],
               segments: tuple[str, ...] = (), ids: tuple[str, ...] | None = None) -> list[pd.DataFrame]:
    """The family's table (:func:`family_table`, only ``ids`` when given) of each period ``[first, last)`` of
    ``periods``: over the facts whose ``at`` falls in it. The facts are computed once for the whole span; the
    catalog's numbers per calendar month (:func:`mqa_volume`) or per ISO week (the weekly MQA rule)."""
    moments = facts_[at]
    return [family_table(family, facts_[sc.within(moments, first, last).to_numpy()], segments, ids=ids)
            for first, last in periods]


#: The MQA volume table's columns.
VOLUME_COLUMNS = ["tier", "month", "mqas", "commitment", "met"]


def mqa_volume(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
               policy: SlaPolicy) -> pd.DataFrame:
    """MQAs per tier per calendar month of ``[start, end)`` against the monthly commitment: the catalog's ``mqas``
    in its ``tier=`` segment over each month's part in the period, and the bound of its target there (the
    commitment pro-rated to the part of the month covered, :func:`target_bound`); ``met`` when both are known. With
    policy ``targets.monthly_mqa_max``, the band's ``max`` pro-rated the same way: a month above it is not met."""
    facts_ = mqa_facts(data, start, end, as_of, policy)
    highs = (policy.targets.monthly_mqa_max if policy.targets is not None else None) or {}
    months = pd.period_range(start.tz_localize(None), (end - pd.Timedelta(1)).tz_localize(None), freq="M")
    spans = [(max(pd.Timestamp(month.start_time, tz="UTC"), start),
              min(pd.Timestamp(month.start_time, tz="UTC") + pd.offsets.MonthBegin(1), end)) for month in months]
    rows = []
    for month, (first, last), table in zip(months, spans, per_period("mqas", facts_, "trigger_at", spans, ("tier",),
                                                                     ("mqas",)), strict=True):
        for tier in sc.TIERS:
            count = int(read(table, "mqas", f"tier={tier}", default=0.0))
            bound = target_bound(policy, first, last, "mqas", f"tier={tier}")
            high = highs.get(tier)
            top = round(float(high) * marketing.months_between(first, last), 1) if high is not None else np.nan
            met = (count >= bound) if pd.notna(bound) else None
            rows.append({"tier": tier, "month": str(month), "mqas": count, "commitment": bound, "max": top,
                         "met": False if pd.notna(top) and count > top else met})
    out = pd.DataFrame(rows, columns=[*VOLUME_COLUMNS[:-1], "max", "met"])
    out = out if highs else out.drop(columns="max")
    return out.sort_values(["tier", "month"], kind="stable").reset_index(drop=True)


def csv_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The table as written to CSV: periods as ISO dates, ``additive`` as true/false, numbers plain."""
    out = table.copy()
    for column in ("period_start", "period_end"):
        out[column] = pd.to_datetime(out[column], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out["additive"] = out["additive"].map({True: "true", False: "false"})
    counted = out["metric"].map(lambda metric: BY_ID[metric].counted if metric in BY_ID else (False, False))
    for position, column in enumerate(("numerator", "denominator")):
        whole = counted.str[position].astype(bool)
        numbers = pd.to_numeric(out[column], errors="coerce")
        out[column] = numbers.astype(object).where(~whole, numbers.round().astype("Int64").astype(object))
        out[column] = out[column].where(numbers.notna(), None)
    return out[COLUMNS]
