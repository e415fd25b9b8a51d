"""Every benchmark judged (issue 15): the designs' benchmarks and ``targets.custom`` as commitment rows, and
every metric a custom target may name, per tier."""

from __future__ import annotations

from typing import Any

import pandas as pd

from abm_sla.domain import marketing
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard.clocks import clock_compliance
from abm_sla.domain.scorecard.data import ALL, CLOCKS, MARKETING_RESPONSE, TIERS, SlaData, _targets
from abm_sla.domain.scorecard.judgement import _bounds_text, _catalog_value, _measured, _outside, _row, custom_name
from abm_sla.domain.scorecard.pipeline import progression, win_rates
from abm_sla.domain.scorecard.quality import engagement, marketing_quality, mqa_outcomes

#: The designs' benchmarks as policy keys: (metric, tier or None for all tiers, operator).
BENCHMARKS: dict[str, tuple[str, int | None, str]] = {
    "engagement_rate_pct": ("engagement_rate_pct", None, ">="),
    "multi_stakeholder_pct": ("multi_stakeholder_pct", None, ">="),
    "tier1_acceptance_pct": ("acceptance_pct", 1, ">"),
    "tier2_mqa_to_opportunity_pct": ("mqa_to_opportunity_pct", 2, ">"),
    "sql_to_opportunity_pct": ("sql_to_opportunity_pct", None, ">="),
}
#: The catalog id (:mod:`abm_sla.domain.metrics`) of each benchmark metric.
CATALOG_IDS = {"engagement_rate_pct": "engagement_rate", "multi_stakeholder_pct": "multi_stakeholder_rate",
               "acceptance_pct": "acceptance_rate", "mqa_to_opportunity_pct": "mqa_to_opportunity_rate",
               "sql_to_opportunity_pct": "sql_to_opportunity_rate"}
#: What the sample of each metric counts.
METRIC_SAMPLES = {
    "mqas": "MQAs fired", "acceptance_pct": "MQAs fired", "rejection_pct": "verdicts",
    "mqa_to_opportunity_pct": "MQAs fired", "sql_to_opportunity_pct": "accepted MQAs",
    "engagement_rate_pct": "accounts measured", "multi_stakeholder_pct": "accounts measured",
    "engaged_contacts_per_account": "engaged accounts", "engaged_accounts": "accounts measured",
    "tempo_on_pct": "accounts with a tempo", "channel_coverage_pct": "engaged accounts",
    "win_rate_pct": "opportunities closed", "sales_cycle_days": "opportunities won",
    **{f"{clock}_met_pct": "clocks decided" for clock in (*CLOCKS, MARKETING_RESPONSE)},
}


def metric_values(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                  policy: SlaPolicy) -> pd.DataFrame:
    """Every metric of ``policy.METRICS`` for the period, per tier (1-3) and for all tiers (``tier`` None):
    ``metric, tier, value, sample`` (value NaN when nothing was measured)."""
    outcomes = mqa_outcomes(data, as_of, policy)
    quality = marketing_quality(outcomes, start, end, policy)
    progress = progression(outcomes, start, end)
    engaged = engagement(data, start, end)
    wins = win_rates(data, start, end, as_of, policy)
    clocks = clock_compliance(data, start, end, policy, by=("tier",))
    tempo, stage, coverage = _marketing_summaries(data, start, end, as_of, policy)
    parts = [
        _metric(quality, "mqas", "mqas", "mqas"),
        _metric(quality, "acceptance_pct", "acceptance_pct", "mqas"),
        _metric(quality.assign(verdicts=quality["accepted"] + quality["rejected"]), "rejection_pct",
                "rejection_pct", "verdicts"),
        _metric(quality, "mqa_to_opportunity_pct", "mqa_to_opportunity_pct", "mqas"),
        _metric(progress, "sql_to_opportunity_pct", "to_opportunity_pct", "accepted"),
        _metric(engaged, "engagement_rate_pct", "engagement_pct", "accounts"),
        _metric(engaged, "multi_stakeholder_pct", "multi_stakeholder_pct", "accounts"),
        _metric(engaged, "engaged_contacts_per_account", "engaged_contacts_per_account", "engaged"),
        _metric(stage, "engaged_accounts", "engaged", "accounts"),
        _metric(tempo, "tempo_on_pct", "on_tempo_pct", "judged"),
        _metric(coverage, "channel_coverage_pct", "covered_pct", "engaged"),
        _metric(wins, "win_rate_pct", "win_rate_pct", "closed"),
        _metric(wins, "sales_cycle_days", "median_cycle_days", "won"),
    ]
    decided = clocks.assign(decided=clocks["met"] + clocks["missed"])
    for clock in (*CLOCKS, MARKETING_RESPONSE):
        parts.append(_metric(decided[decided["clock"] == clock], f"{clock}_met_pct", "met_pct", "decided"))
    out = pd.concat(parts, ignore_index=True)
    out["tier"] = out["tier"].astype("Int64")
    return out


def _marketing_summaries(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                         policy: SlaPolicy) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Touch tempo, engaged-account stage and channel coverage summaries per tier: the metrics catalog's tempo,
    stage and coverage families (:func:`abm_sla.domain.metrics.marketing_facts`)."""
    from abm_sla.domain import metrics

    found = metrics.marketing_facts(data, start, end, as_of, policy)
    return (metrics.tier_table("tempo", found["tempo"], marketing.TEMPO_METRICS),
            metrics.tier_table("stage", found["stage"], marketing.STAGE_METRICS),
            metrics.tier_table("coverage", found["coverage"], marketing.COVERAGE_METRICS))


def _metric(frame: pd.DataFrame, name: str, column: str, sample: str) -> pd.DataFrame:
    """Rows ``metric, tier, value, sample`` from a per-tier table (its ``all`` row is tier None)."""
    rows = frame[frame["tier"].isin([*TIERS, ALL])]
    tier = rows["tier"].map(lambda t: None if t == ALL else int(t))
    return pd.DataFrame({"metric": name, "tier": tier.to_numpy(dtype=object),
                         "value": pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype="float64"),
                         "sample": pd.to_numeric(rows[sample], errors="coerce").fillna(0).astype(int).to_numpy()})


def benchmark_commitments(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                          policy: SlaPolicy, table: pd.DataFrame) -> list[dict[str, Any]]:
    """The benchmark targets (:data:`BENCHMARKS`, ``engaged_contacts_per_account``) and the ``custom`` ones,
    as commitment rows; team-level numbers (no owner breakdown). The benchmarks' values are the catalog's
    (``table``)."""
    targets = _targets(policy)
    wanted = [key for key in BENCHMARKS if getattr(targets, key) is not None]
    if not wanted and targets.engaged_contacts_per_account is None and not targets.custom:
        return []
    values = metric_values(data, start, end, as_of, policy) if targets.custom else None  # only custom reads it
    measured = _measured(data, start, end)  # a period the pipeline did not run in is not judged (as volume)
    rows = []
    for key in wanted:
        metric, tier, operator = BENCHMARKS[key]
        target = float(getattr(targets, key))
        value = _catalog_value(table, CATALOG_IDS[metric], tier)
        missed = None if pd.isna(value) else bool(value <= target if operator == ">" else value < target)
        rows.append(_row(key, tier, value, f"{operator} {target:g}", missed if measured else None))
    if targets.engaged_contacts_per_account is not None:
        band = targets.engaged_contacts_per_account
        value = _catalog_value(table, "engaged_contacts_per_account")
        rows.append(_row("engaged_contacts_per_account", None, value, _bounds_text(band.min, band.max),
                         _outside(value, band.min, band.max) if measured else None))
    for custom in targets.custom:
        value = _metric_value(values, custom.metric, custom.tier)
        rows.append(_row(custom_name(custom.metric), custom.tier, value, _bounds_text(custom.min, custom.max),
                         _outside(value, custom.min, custom.max) if measured else None))
    return rows


def _metric_value(values: pd.DataFrame, metric: str, tier: int | None) -> float:
    rows = values[(values["metric"] == metric) & (values["tier"].isna() if tier is None else values["tier"].eq(tier))]
    return float(rows["value"].iloc[0]) if len(rows) and pd.notna(rows["value"].iloc[0]) else float("nan")
