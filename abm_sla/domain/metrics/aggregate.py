"""Aggregation: a family's metrics over its facts per segment (:func:`family_table`, :func:`tier_table`) and
the whole catalog for a period (:func:`compute`), with :func:`value` and :func:`row` to read one number."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import pandas as pd

from abm_sla.domain import marketing, regions
from abm_sla.domain import scorecard as sc
from abm_sla.domain.metrics.base import (
    ALL,
    CLOCK_LEVEL,
    COLUMNS,
    DISTINCT,
    FRACTION,
    HOUR_UNITS,
    PER_MONTH,
    QUANTILES,
    RANKING,
    SHARE,
    SMALLEST,
    SOURCE_SEGMENTS,
    TIER_OWNER,
    Metric,
)
from abm_sla.domain.metrics.catalog import BY_ID, CATALOG
from abm_sla.domain.metrics.facts import facts
from abm_sla.domain.metrics.targets import judge
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard import SlaData

# -- aggregation ---------------------------------------------------------------------------------------

_SEGMENT_COLUMN = {"tier": "tier", "owner": "owner_id", "source": "source", "list": "list", "region": "region",
                   "clock": "clock", "level": "level", "rule": "rule", "band": "band"}


def _groups(frame: pd.DataFrame, segment: str) -> pd.Series | None:
    """Each fact row's segment label (``tier=1``…); None when the segment does not apply to these facts."""
    if segment == TIER_OWNER:
        return tier_owner_labels(frame) if {"tier", "owner_id"} <= set(frame.columns) else None
    if segment == CLOCK_LEVEL:
        return clock_level_labels(frame) if {"clock", "level"} <= set(frame.columns) else None
    column = _SEGMENT_COLUMN[segment]
    if column not in frame.columns:
        return None
    values = frame[column]
    if segment == "list" and not values.notna().any():
        return None
    if segment == "region":  # the regional appendix: no region is the master policy's
        return segment + "=" + values.astype("string").fillna(regions.NO_REGION).astype(str)
    return segment + "=" + values.astype("string").fillna("(none)").astype(str)


def tier_owner_labels(frame: pd.DataFrame) -> pd.Series:
    """Each fact row's :data:`TIER_OWNER` label (``tier=1,owner=U003``)."""
    owner = frame["owner_id"].astype("string").fillna("(none)").astype(str)
    return "tier=" + frame["tier"].astype("string").fillna("(none)").astype(str) + ",owner=" + owner


def clock_level_labels(frame: pd.DataFrame) -> pd.Series:
    """Each fact row's :data:`CLOCK_LEVEL` label (``clock=first_touch,level=2``)."""
    return "clock=" + frame["clock"].astype(str) + ",level=" + frame["level"].astype(str)


def tier_owner_values(table: pd.DataFrame, metric: str, tier: int) -> pd.Series:
    """Per owner (index): the value of ``metric`` in its ``tier=<tier>,owner=`` segments, where measured."""
    prefix = f"tier={tier},owner="
    rows = table[(table["metric"] == metric) & table["segment"].str.startswith(prefix)]
    return rows.set_index(rows["segment"].str.removeprefix(prefix))["value"].dropna()


def _labels(segment: str, present: pd.Series) -> list[str]:
    """The segment labels shown even when empty (every tier, every source, both sides of the list)."""
    fixed = {"tier": [f"tier={tier}" for tier in sc.TIERS], "source": [f"source={s}" for s in SOURCE_SEGMENTS],
             "list": ["list=on", "list=off"]}.get(segment, [])
    return list(dict.fromkeys([*fixed, *sorted(present.unique())]))


def _aggregate(metric: Metric, frame: pd.DataFrame, keys: pd.Series, labels: list[str],
               sums: dict[str, np.ndarray], months: float = np.nan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numerator, denominator and value of ``metric`` per label (``sums``: the family's columns summed per label,
    ``_rows`` the row count; ``months``: the period's elapsed months, a ``per_month`` metric's denominator)."""
    def total(column: str) -> np.ndarray:
        return sums[column or "_rows"]

    nothing = np.full(len(labels), np.nan)
    if metric.kind in QUANTILES:
        values = pd.to_numeric(frame[metric.column], errors="coerce")
        numerator = nothing
        denominator = values.notna().groupby(keys).sum().reindex(labels, fill_value=0).to_numpy(dtype="float64")
        taken = values.groupby(keys).quantile(QUANTILES[metric.kind])
        value = taken.reindex(labels).astype("float64").round(2 if metric.unit in HOUR_UNITS else 1).to_numpy()
    elif metric.kind == PER_MONTH:
        numerator = total(metric.column)
        denominator = np.full(len(labels), months, dtype="float64")
        value = np.round(numerator / np.where(denominator > 0, denominator, np.nan), 2)
    elif metric.kind == "ratio":
        numerator, denominator = total(metric.column), total(metric.over)
        with np.errstate(divide="ignore", invalid="ignore"):  # sc.pct on arrays
            value = np.where(denominator > 0, np.round(100.0 * numerator / np.where(denominator > 0, denominator, 1),
                                                       1), np.nan)
    elif metric.kind in RANKING:
        numerator, denominator = nothing, total(metric.over)
        value = _ranking(metric, frame, keys, labels)
    elif metric.kind == SHARE:
        numerator = total(metric.column)
        denominator = np.full(len(labels), float(frame[metric.column].astype("float64").sum()))
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(denominator > 0, np.round(100.0 * numerator / np.where(denominator > 0, denominator, 1),
                                                       1), np.nan)
    elif metric.kind in ("per", "mean"):
        numerator, denominator = total(metric.column), total(metric.over)
        decimals = 4 if metric.unit == FRACTION else 2
        value = np.round(numerator / np.where(denominator > 0, denominator, np.nan), decimals)
        value = np.where(numerator > 0, value, np.nan) if metric.kind == "per" else value
    elif metric.kind in (DISTINCT, SMALLEST):
        column = frame[metric.column]
        if metric.kind == DISTINCT:
            numerator = column.groupby(keys).nunique().reindex(labels, fill_value=0).to_numpy(dtype="float64")
            value = numerator
        else:
            numerator = nothing
            value = pd.to_numeric(column, errors="coerce").groupby(keys).min().reindex(labels).to_numpy(
                dtype="float64")
        denominator = nothing
    else:
        numerator = total(metric.column)
        denominator = nothing
        value = np.round(numerator, 2)
    return numerator, denominator, value


def _ranking(metric: Metric, frame: pd.DataFrame, keys: pd.Series, labels: list[str]) -> np.ndarray:
    """Per label: the AUC or the top-decile lift (:data:`RANKING`) of the score ``metric.column`` for the outcome
    ``metric.over`` (:mod:`abm_sla.domain.learning.validation`), to 4 decimals; NaN where it is undefined."""
    from abm_sla.domain.learning.validation import auc, top_lift

    measure = auc if metric.kind == "auc" else top_lift
    score = pd.to_numeric(frame[metric.column], errors="coerce").to_numpy(dtype="float64")
    outcome = frame[metric.over].to_numpy(dtype=bool)
    found = {label: measure(score[(keys == label).to_numpy()], outcome[(keys == label).to_numpy()])
             for label in labels}
    return np.round(np.array([found[label] for label in labels], dtype="float64"), 4)


def family_table(family: str, frame: pd.DataFrame, segments: tuple[str, ...] | None = None,
                 months: float = np.nan, ids: tuple[str, ...] | None = None) -> pd.DataFrame:
    """``metric, segment, numerator, denominator, value`` of one family's metrics over the given facts (no
    targets), for ``all`` and ``segments`` (default: every segment of the family); ``months`` is the period's
    elapsed months (:func:`elapsed_months`) a ``per_month`` metric divides by (NaN: no value); ``ids``: only
    these of the family's metrics (default: all)."""
    members = [metric for metric in CATALOG if metric.family == family and (ids is None or metric.id in ids)]
    return pd.concat(_family_rows(members, frame, segments, months), ignore_index=True)


def elapsed_months(start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp) -> float:
    """Calendar months of ``[start, end)`` elapsed by ``as_of`` (a part month by its share of days; 0 before the
    period starts): what a ``per_month`` metric divides by."""
    return marketing.months_between(start, min(end, as_of)) if as_of > start else 0.0


def _family_rows(family: list[Metric], frame: pd.DataFrame,
                 only: tuple[str, ...] | None = None, months: float = np.nan) -> list[pd.DataFrame]:
    """The rows of one family's metrics: its summed columns grouped once per segment."""
    columns = sorted({column for metric in family for column in (metric.column, metric.over)
                      if column and metric.kind not in (*QUANTILES, DISTINCT)})
    numeric = frame[columns].astype("float64")
    cuts = [(None, pd.Series(ALL, index=frame.index, dtype=object), [ALL])]
    for segment in dict.fromkeys(segment for metric in family for segment in metric.segments):
        if only is not None and segment not in only:
            continue
        keys = _groups(frame, segment)
        if keys is not None:
            cuts.append((segment, keys, _labels(segment, keys)))
    columns: dict[str, list] = {name: [] for name in ("segment", "numerator", "denominator", "value", "metric",
                                                       "unit", "additive")}
    for segment, keys, labels in cuts:  # one frame for the family: building one per metric and cut is slow
        sums = _summed(numeric, keys, labels)
        for metric in family:
            if segment is None or segment in metric.segments:
                numerator, denominator, value = _aggregate(metric, frame, keys, labels, sums, months)
                columns["segment"] += labels
                columns["numerator"].append(numerator)
                columns["denominator"].append(denominator)
                columns["value"].append(value)
                columns["metric"] += [metric.id] * len(labels)
                columns["unit"] += [metric.unit] * len(labels)
                columns["additive"] += [metric.additive] * len(labels)
    for name in ("numerator", "denominator", "value"):
        columns[name] = np.concatenate(columns[name])
    return [pd.DataFrame({**columns, "segment": np.array(columns["segment"], dtype=object),
                          "metric": np.array(columns["metric"], dtype=object),
                          "unit": np.array(columns["unit"], dtype=object),
                          "additive": np.array(columns["additive"], dtype=bool)})]


def _summed(numeric: pd.DataFrame, keys: pd.Series, labels: list[str]) -> dict[str, np.ndarray]:
    """Each column of ``numeric`` summed per label, and ``_rows`` (the rows per label): what
    ``numeric.assign(_rows=1.0).groupby(keys).sum().reindex(labels, fill_value=0.0)`` holds. Columns of whole
    numbers (the flags and counts, nearly all) are summed by ``np.bincount``, exactly as pandas sums them (whole
    numbers below 2**53 add up without rounding) without a groupby's fixed cost; the others by pandas (its
    compensated sum)."""
    codes, uniques = pd.factorize(keys)
    kept = codes >= 0  # a missing key is in no group
    codes = codes[kept]
    at = pd.Index(uniques).get_indexer(labels)
    found = at >= 0

    def per_label(by_code: np.ndarray) -> np.ndarray:
        return np.where(found, by_code[np.where(found, at, 0)] if len(by_code) else 0.0, 0.0).astype("float64")

    sums = {"_rows": per_label(np.bincount(codes, minlength=len(uniques)).astype("float64"))}
    values = numeric.to_numpy(dtype="float64")[kept]
    rest = []
    for number, column in enumerate(numeric.columns):
        value = values[:, number]
        counted = np.where(np.isnan(value), 0.0, value)
        if np.all(counted == np.round(counted)) and float(np.abs(counted).sum()) < 2.0 ** 53:
            sums[column] = per_label(np.bincount(codes, weights=counted, minlength=len(uniques)))
        else:
            rest.append(column)
    if rest:
        summed = numeric[rest].groupby(keys).sum().reindex(labels, fill_value=0.0)
        sums.update({column: summed[column].to_numpy(dtype="float64") for column in rest})
    return sums


def tier_table(family: str, facts_: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Tiers 1-3 and ``all``: each column's catalog metric (``columns``: column → metric id, or ``id:numerator``
    / ``id:denominator``) over ``facts_``, by :func:`family_table`; counts (``count`` and ``sum`` metrics) as
    integers, 0 when nothing was counted."""
    table = family_table(family, facts_, ("tier",))
    labels = [f"tier={tier}" for tier in sc.TIERS] + [ALL]
    out = pd.DataFrame({"tier": [*sc.TIERS, ALL]})
    for column, source in columns.items():
        metric, _, field = source.partition(":")
        values = table.pivot(index="segment", columns="metric", values=field or "value")[metric].reindex(labels)
        counted = field in ("numerator", "denominator") or BY_ID[metric].kind in ("count", "sum")
        out[column] = values.fillna(0).astype(int).to_numpy() if counted else values.to_numpy()
    return out


# -- the table -----------------------------------------------------------------------------------------

#: Inside :func:`reusing_tables`: the tables computed so far, by (data, period, as_of, policy) identity.
_REUSED: ContextVar[dict | None] = ContextVar("catalog_tables", default=None)


@contextmanager
def reusing_tables() -> Iterator[None]:
    """Within the block, :func:`compute` computes each (data, period, as_of, policy) once: a report asks for the
    same period's table from several places (the headline, the chronic misses, the comparisons). The data and
    policy objects must not change inside the block."""
    token = _REUSED.set({} if _REUSED.get() is None else _REUSED.get())
    try:
        yield
    finally:
        _REUSED.reset(token)


def compute(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp, policy: SlaPolicy,
            report: str = "export") -> pd.DataFrame:
    """Every catalog metric for ``[start, end)`` as of ``as_of``: one row per metric and segment (:data:`COLUMNS`)."""
    reused = _REUSED.get()
    if reused is None:
        return _compute(data, start, end, as_of, policy, report)
    key = (id(data), id(policy), start, end, as_of)
    if key not in reused:  # the objects are kept with the table, so their ids are not reused meanwhile
        reused[key] = (data, policy, _compute(data, start, end, as_of, policy, report))
    return reused[key][2].assign(report=report)


def _compute(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp, policy: SlaPolicy,
             report: str) -> pd.DataFrame:
    found = facts(data, start, end, as_of, policy)
    families: dict[str, list[Metric]] = {}
    for metric in CATALOG:
        families.setdefault(metric.family, []).append(metric)
    months = elapsed_months(start, end, as_of)
    parts = [part for name, family in families.items() if name in found  # not: families evaluated elsewhere
             for part in _family_rows(family, found[name], None, months)]
    order = {metric.id: rank for rank, metric in enumerate(CATALOG)}
    rows = pd.concat(parts, ignore_index=True)
    rows = rows.iloc[np.argsort(rows["metric"].map(order).to_numpy(), kind="stable")].reset_index(drop=True)
    rows = judge(rows, policy, start, end, sc.has_data(data, start, end))
    rows = rows.assign(report=report, period_start=start, period_end=end)
    return rows[COLUMNS]


def value(table: pd.DataFrame, metric: str, segment: str = ALL) -> float:
    """One number from a :func:`compute` table (NaN when the segment has no row)."""
    found = _positions(table, metric, segment)
    return float(table["value"].iat[found[0]]) if len(found) else float("nan")


def row(table: pd.DataFrame, metric: str, segment: str = ALL) -> pd.Series | None:
    """The :func:`compute` row of one metric and segment, or None."""
    found = _positions(table, metric, segment)
    return table.iloc[found[0]] if len(found) else None


def _positions(table: pd.DataFrame, metric: str, segment: str) -> np.ndarray:
    """Where the rows of one metric and segment are in ``table``: compared on the columns' arrays (a report reads
    hundreds of numbers; a pandas mask per number costs several times as much)."""
    return np.flatnonzero((table["metric"].to_numpy() == metric) & (table["segment"].to_numpy() == segment))
