"""What the scorecard reads (:class:`SlaData`, the derived tables' columns) and the helpers every table
shares: tiers, accounts and owners, percentages, periods as masks, catalog breakdowns."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from abm_sla.domain import frames, marketing
from abm_sla.domain.policy import SlaPolicy, Targets

CLOCKS = ("routing_time", "first_touch", "status_update", "cadence")
MARKETING_RESPONSE = "marketing_response"
TIERS = (1, 2, 3)
ALL = "all"
DAY = pd.Timedelta(days=1)
#: Derived tables the scorecard reads (columns from ``warehouse/schema.py``; timestamps in UTC).
DERIVED_COLUMNS: dict[str, dict[str, str]] = {
    "signoffs": {"signed_at": "ts", "signed_by": "object", "role": "object", "policy_sha256": "object",
                 "policy_file": "object"},
    "mqas": {"account_id": "object", "trigger_at": "ts", "tier": "float64", "owner_id": "object",
             "routed_at": "ts", "ended_at": "ts", "total": "float64", "reasons": "object",
             "writeback_done_at": "ts"},
    "sla_clocks": {"account_id": "object", "trigger_at": "ts", "clock": "object", "status": "object",
                   "due_at": "ts", "met_at": "ts", "owner_id": "object", "tier": "float64", "as_of": "ts",
                   "period": "float64"},
    "escalations": {"account_id": "object", "trigger_at": "ts", "level": "float64", "to_user_id": "object",
                    "opened_at": "ts", "owner_id": "object", "clock": "object", "steps_taken": "object",
                    "resolution": "object"},
    "score_history": {"account_id": "object", "as_of": "ts", "model_version": "object", "total": "float64",
                      "qualified": "object", "gates": "object", "reasons": "object"},
    "tier_move_recommendations": {"account_id": "object", "recommended_at": "ts", "rule": "object",
                                  "from_tier": "object", "proposed_tier": "object", "reason": "object",
                                  "decision": "object", "decided_at": "ts", "decision_note": "object",
                                  "evaluated_at": "ts"},
    "reassignments": {"account_id": "object", "trigger_at": "ts", "clock": "object", "level": "float64",
                      "reassigned_at": "ts", "from_owner_id": "object", "to_owner_id": "object", "status": "object",
                      "reason": "object", "writeback_done_at": "ts"},
    "disputes": {"dispute_id": "int64", "account_id": "object", "disagreement": "object", "raised_by": "object",
                 "requested_resolution": "object", "opened_at": "ts", "steps_from": "ts", "status": "object",
                 "closed_at": "ts", "resolution": "object", "outcome": "object", "times_reopened": "int64",
                 "updated_at": "ts"},
    "review_decisions": {"decision_id": "int64", "month": "object", "text": "object", "owner": "object",
                         "due": "object", "recorded_at": "ts", "status": "object", "outcome": "object",
                         "updated_at": "ts"},
    "review_attendance": {"period": "object", "side": "object", "name": "object", "recorded_at": "ts"},
    "dispute_notes": {"id": "int64", "dispute_id": "int64", "at": "ts", "author": "object", "kind": "object",
                      "text": "object"},
}


def empty_derived(table: str) -> pd.DataFrame:
    """An empty derived table with its columns and dtypes."""
    return pd.DataFrame({
        column: pd.Series(dtype="datetime64[ns, UTC]" if kind == "ts" else kind)
        for column, kind in DERIVED_COLUMNS[table].items()
    })


@dataclass(frozen=True)
class SlaData:
    """Everything the scorecard reads: the CRM frames and the warehouse's derived tables."""

    accounts: pd.DataFrame
    contacts: pd.DataFrame
    activities: pd.DataFrame
    intent_signals: pd.DataFrame
    opportunities: pd.DataFrame
    users: pd.DataFrame
    status_changes: pd.DataFrame
    mqas: pd.DataFrame
    sla_clocks: pd.DataFrame
    escalations: pd.DataFrame
    score_history: pd.DataFrame
    target_accounts: pd.DataFrame = field(default_factory=lambda: frames.empty("target_accounts"))
    tier_move_recommendations: pd.DataFrame = field(default_factory=pd.DataFrame)
    reassignments: pd.DataFrame = field(default_factory=pd.DataFrame)
    disputes: pd.DataFrame = field(default_factory=pd.DataFrame)
    dispute_notes: pd.DataFrame = field(default_factory=pd.DataFrame)
    signoffs: pd.DataFrame = field(default_factory=pd.DataFrame)
    review_decisions: pd.DataFrame = field(default_factory=pd.DataFrame)
    review_attendance: pd.DataFrame = field(default_factory=pd.DataFrame)
    requests: pd.DataFrame = field(default_factory=lambda: frames.empty("requests"))

    @classmethod
    def of(cls, **tables: pd.DataFrame) -> SlaData:
        """Build from any subset of frames; a missing one is empty."""
        unknown = set(tables) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown tables: {sorted(unknown)}")
        out = {}
        for name in (f.name for f in fields(cls)):
            given = tables.get(name)
            out[name] = _empty_table(name).copy() if given is None else _utc_columns(name, given.reset_index(drop=True))
        return cls(**out)

    def known_by(self, as_of: pd.Timestamp) -> SlaData:
        """The same data with every clock's met_at after ``as_of`` unknown (a report never shows the future)."""
        clocks = self.sla_clocks.copy()
        clocks["met_at"] = clocks["met_at"].where(clocks["met_at"] <= as_of)
        return replace(self, sla_clocks=clocks)

    def clocks_evaluated_at(self) -> pd.Timestamp | None:
        """The latest ``as_of`` any run evaluated the clocks at (None before the first)."""
        if "as_of" not in self.sla_clocks or self.sla_clocks["as_of"].isna().all():
            return None
        return pd.Timestamp(self.sla_clocks["as_of"].max())


@cache
def _empty_table(name: str) -> pd.DataFrame:
    """The empty frame :meth:`SlaData.of` puts in for a table not given (built once; the caller copies it)."""
    given = frames.empty(name) if name in frames.COLUMNS else empty_derived(name)
    return _utc_columns(name, given)


def _utc_columns(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The table's timestamp columns as ``datetime64[ns, UTC]`` (naive values are UTC)."""
    if name in frames.TIMESTAMP_COLUMNS:
        columns = frames.TIMESTAMP_COLUMNS[name]
    else:
        columns = [column for column, kind in DERIVED_COLUMNS[name].items() if kind == "ts"]
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            out[column] = pd.to_datetime(out[column], utc=True).astype("datetime64[ns, UTC]")
    return out


# -- helpers ----------------------------------------------------------------------------------------

def normalize_tier(values: pd.Series) -> pd.Series:
    """Tier 1, 2 or 3 from ``1``, ``"Tier 2"``, ``2.0``...; missing or unknown is Tier 3."""
    digits = values.astype("string").str.extract(r"([123])", expand=False)
    return pd.to_numeric(digits, errors="coerce").fillna(3).astype(int)


def account_dimensions(data: SlaData) -> pd.DataFrame:
    """Per account: name, tier (normalized), owner_id, created_at."""
    accounts = data.accounts
    return pd.DataFrame({
        "account_id": accounts["account_id"].astype(str),
        "account_name": accounts["name"],
        "tier": normalize_tier(accounts["tier"]),
        "owner_id": accounts["owner_id"],
        "created_at": accounts["created_at"],
    }).drop_duplicates("account_id")


def owner_names(data: SlaData) -> pd.Series:
    return data.users.drop_duplicates("user_id").set_index("user_id")["name"]


def pct(numerator: pd.Series | float, denominator: pd.Series | float) -> pd.Series | float:
    """100 × num / den rounded to 0.1; NaN when the denominator is 0."""
    num = np.asarray(numerator, dtype="float64")
    den = np.asarray(denominator, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, np.round(100.0 * num / np.where(den > 0, den, 1), 1), np.nan)
    return pd.Series(out, index=numerator.index) if isinstance(numerator, pd.Series) else float(out)


def within(values: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    return (values >= start) & (values < end)


_flag = marketing.flag


def _targets(policy: SlaPolicy) -> Targets:
    return policy.targets if policy.targets is not None else Targets()


def _with_all(frame: pd.DataFrame, by: list[str], total: pd.DataFrame) -> pd.DataFrame:
    """Append the all-groups row(s) ``total`` (its ``by`` columns set to ``"all"``)."""
    total = total.assign(**{column: ALL for column in by if column not in total.columns})
    out = pd.concat([frame.astype({c: object for c in by}), total], ignore_index=True)
    return out[frame.columns]


def _grouped(frame: pd.DataFrame, by: list[str], agg: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Group and aggregate, plus a total row over all groups."""
    per_group = frame.groupby(by, dropna=False).agg(**agg).reset_index()
    total = pd.DataFrame({name: [len(frame) if how == "size" else how(frame[column]) if callable(how)
                                 else _total(frame[column], how)] for name, (column, how) in agg.items()})
    return _with_all(per_group, by, total)


def _total(values: pd.Series, how: str) -> Any:
    """``values.agg(how)``; a median or mean of nothing is NaN without numpy's "Mean of empty slice" warning."""
    if how in ("median", "mean") and not values.notna().any():
        return np.nan
    return values.agg(how)


def catalog_breakdown(family: str, facts: pd.DataFrame, by: str, columns: dict[str, str]) -> pd.DataFrame:
    """Per ``by`` value present in ``facts`` (tier or owner_id), then ``all``: the catalog metric of each column
    (``columns``: column → metric id, or ``id:numerator``) computed by :func:`abm_sla.domain.metrics.family_table`
    over ``facts``."""
    from abm_sla.domain import metrics

    segment = "tier" if by == "tier" else "owner"
    table = metrics.family_table(family, facts, (segment,))
    groups = sorted(facts[by].dropna().unique(), key=str)
    labels = [f"{segment}={group}" for group in groups] + [ALL]
    pivots: dict[str, pd.DataFrame] = {}  # one pivot per field read, not one per column
    out: dict[str, Any] = {by: [*groups, ALL]}
    for column, source in columns.items():
        metric, _, field = source.partition(":")
        if field not in pivots:
            pivots[field] = table.pivot(index="segment", columns="metric", values=field or "value")
        out[column] = pivots[field][metric].reindex(labels).to_numpy()
    return pd.DataFrame(out)
