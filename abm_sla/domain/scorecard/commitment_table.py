"""The commitments of both sides: each policy target evaluated for a period (per owner where it has one),
the headline (against the period before, with its sample and owner) and chronic misses over two quarters."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from abm_sla.domain import marketing
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard.benchmarks import (
    BENCHMARKS,
    CATALOG_IDS,
    METRIC_SAMPLES,
    _metric,
    benchmark_commitments,
    metric_values,
)
from abm_sla.domain.scorecard.data import TIERS, SlaData, _targets, within
from abm_sla.domain.scorecard.judgement import (
    COMMITMENT_COLUMNS,
    _below,
    _catalog_owners,
    _catalog_value,
    _measured,
    _outside,
    _row,
    catalog_table,
    custom_name,
)
from abm_sla.domain.scorecard.periods import previous_period, previous_quarter, quarter_label, quarter_of
from abm_sla.domain.scorecard.quality import engagement


def commitments(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                policy: SlaPolicy, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every policy target evaluated for the period; per owner where the number has an owner. Values come
    from the metrics catalog (``table``, :func:`catalog_table` when not given)."""
    from abm_sla.domain import metrics

    targets = _targets(policy)
    table = catalog_table(data, start, end, as_of, policy) if table is None else table
    rows: list[dict[str, Any]] = []
    if targets.monthly_mqa_commitments:
        measured = _measured(data, start, end)
        for tier in sorted(targets.monthly_mqa_commitments):
            value = _catalog_value(table, "mqas", tier)
            target = metrics.target_bound(policy, start, end, "mqas", f"tier={tier}")
            text, missed = f">= {target:g}", bool(value < target)
            if tier in (targets.monthly_mqa_max or {}):  # the band (implementation guide)
                high = round(targets.monthly_mqa_max[tier] * marketing.months_between(start, end), 1)
                text, missed = f"{target:g}-{high:g}", bool(value < target or value > high)
            rows.append(_row("mqa_volume", tier, value, text, missed if measured else None))
    if targets.first_touch_met_pct:
        for tier, target in sorted(targets.first_touch_met_pct.items()):
            value = _catalog_value(table, "first_touch_met_rate", tier)
            owners = metrics.tier_owner_values(table, "first_touch_met_rate", tier)
            rows.append(_row("first_touch_met_pct", tier, value, f">= {target:g}", _below(value, target),
                             owners < target))
    band = targets.rejection_rate
    if band is not None:
        value = _catalog_value(table, "rejection_rate")
        outside = _catalog_owners(table, "rejection_rate").map(lambda rate: _outside(rate, band.min_pct, band.max_pct))
        rows.append(_row("rejection_pct", None, value, f"{band.min_pct:g}-{band.max_pct:g}",
                         _outside(value, band.min_pct, band.max_pct), outside))
    rows.extend(_opportunity_commitments(data, start, end, as_of, policy, table))
    rows.extend(benchmark_commitments(data, start, end, as_of, policy, table))
    out = pd.DataFrame(rows, columns=COMMITMENT_COLUMNS)
    out = out.astype({"tier": "Int64", "owners": "Int64", "owners_missed": "Int64"})
    return out


def _opportunity_commitments(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                             policy: SlaPolicy, table: pd.DataFrame) -> list[dict[str, Any]]:
    """The win-rate and sales-cycle commitments with their per-owner split: the catalog's ``win_rate`` (per
    ``tier=1,owner=`` for Tier 1, per ``owner=`` for all tiers) and ``sales_cycle_median_days``."""
    from abm_sla.domain import metrics

    targets = _targets(policy)
    rows = []
    if targets.tier1_win_rate_pct is not None:
        target = targets.tier1_win_rate_pct
        value = _catalog_value(table, "win_rate", 1)
        rows.append(_row("tier1_win_rate_pct", 1, value, f">= {target:g}", _below(value, target),
                         metrics.tier_owner_values(table, "win_rate", 1) < target))
    if targets.opportunity_to_won_pct is not None:
        target = targets.opportunity_to_won_pct
        value = _catalog_value(table, "win_rate")
        rows.append(_row("opportunity_to_won_pct", None, value, f">= {target:g}", _below(value, target),
                         _catalog_owners(table, "win_rate") < target))
    if targets.sales_cycle_days_max is not None:
        target = targets.sales_cycle_days_max
        value = _catalog_value(table, "sales_cycle_median_days")
        rows.append(_row("sales_cycle_days", None, value, f"<= {target:g}",
                         None if pd.isna(value) else bool(value > target),
                         _catalog_owners(table, "sales_cycle_median_days") > target))
    return rows


def chronic_misses(data: SlaData, end: pd.Timestamp, as_of: pd.Timestamp, policy: SlaPolicy,
                   system_share: float = 0.5) -> pd.DataFrame:
    """Each commitment in the quarter containing ``end - 1ns`` and the quarter before it.

    ``chronic`` (missed both quarters) is flagged for renegotiation. A miss spread over more than
    ``system_share`` of the owners measured is a *system problem* (fix the routing, cadence or staffing);
    a miss concentrated on fewer owners is a *coaching matter* (the owners are listed).
    """
    current = quarter_of(end - pd.Timedelta(1))
    previous = previous_quarter(current[0])
    now = commitments(data, *current, min(as_of, current[1]), policy)
    keys = ["commitment", "tier"]
    measured_before = bool(within(data.mqas["trigger_at"], *previous).any())
    if measured_before or now.duplicated(keys).any():  # (a repeated key pairs with each of its rows before)
        before = commitments(data, *previous, min(as_of, previous[1]), policy)
        merged = now.merge(before[[*keys, "value", "missed"]].rename(
            columns={"value": "previous_value", "missed": "previous_missed"}), on=keys, how="left")
    else:  # nothing measured then: say so, judge nothing (its commitments are not computed at all)
        merged = now.reset_index(drop=True)
        merged["previous_value"], merged["previous_missed"] = np.nan, None
    merged["chronic"] = merged["missed"].eq(True) & merged["previous_missed"].eq(True)
    merged["action"] = np.where(merged["chronic"], "renegotiate", "")
    merged["diagnosis"] = [_diagnosis(row, system_share) for row in merged.itertuples()]
    merged.insert(0, "quarter", quarter_label(current[0]))
    label = quarter_label(previous[0])
    merged.insert(1, "previous_quarter", label if measured_before else f"{label} (no data)")
    return merged


def _diagnosis(row: Any, system_share: float) -> str:
    if row.missed is not True:
        return ""
    if pd.isna(row.owners) or row.owners == 0:
        return "team-level number (no owner breakdown)"
    share = row.owners_missed / row.owners
    if share > system_share:
        return f"system problem: {row.owners_missed} of {row.owners} owners miss it"
    return f"coaching matter: {row.owners_missed} of {row.owners} owners ({row.owners_missed_ids})"


# -- the headline scorecard -------------------------------------------------------------------------

#: Which side of the SLA each commitment belongs to.
SIDES = {"mqa_volume": "marketing", "rejection_pct": "marketing", "first_touch_met_pct": "sales",
         "tier1_win_rate_pct": "sales", "opportunity_to_won_pct": "sales", "sales_cycle_days": "sales"}
#: The benchmarks' sides (marketing's engagement numbers, sales' conversion numbers).
BENCHMARK_SIDES = {"engagement_rate_pct": "marketing", "multi_stakeholder_pct": "marketing",
                   "engaged_contacts_per_account": "marketing", "tier1_acceptance_pct": "marketing",
                   "tier2_mqa_to_opportunity_pct": "marketing", "sql_to_opportunity_pct": "sales"}
#: What the sample of each commitment counts.
SAMPLE_UNITS = {"mqa_volume": "MQAs fired", "rejection_pct": "verdicts", "first_touch_met_pct": "clocks decided",
                "tier1_win_rate_pct": "opportunities closed", "opportunity_to_won_pct": "opportunities closed",
                "sales_cycle_days": "opportunities won"}


def headline(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
             policy: SlaPolicy, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each commitment of both sides for ``[start, end)``: value against target, verdict, the value of the
    period before (:func:`previous_period`, judged as of its end) and the sample the value rests on.

    The values are those of :func:`commitments` (the metrics catalog's, ``table`` when given: the catalog table
    of this period as of ``as_of``); ``change`` is value minus previous value.
    """
    table = catalog_table(data, start, end, as_of, policy) if table is None else table
    now = commitments(data, start, end, as_of, policy, table)
    before_start, before_end = previous_period(start, end)
    before = commitments(data, before_start, before_end, min(as_of, before_end), policy)
    keys = ["commitment", "tier"]
    out = now.merge(before[[*keys, "value", "missed"]].rename(
        columns={"value": "previous_value", "missed": "previous_missed"}), on=keys, how="left")
    judged = out["previous_missed"].notna()  # a period the pipeline did not measure has no comparable value
    out["previous_value"] = out["previous_value"].where(judged)
    out["change"] = out["value"] - out["previous_value"]
    out.insert(0, "side", out["commitment"].map(commitment_sides(policy)))
    samples = _samples(data, start, end, as_of, policy, table)
    out["sample"] = [samples.get((name, None if pd.isna(tier) else int(tier)), 0)
                     for name, tier in zip(out["commitment"], out["tier"], strict=True)]
    out["sample_unit"] = out["commitment"].map(_sample_units(policy))
    out["owner"] = [commitment_owner(policy, name, side) for name, side in zip(out["commitment"], out["side"],
                                                                               strict=True)]
    return out[["side", "commitment", "tier", "value", "target", "missed", "previous_value", "previous_missed",
                "change", "sample", "sample_unit", "owners", "owners_missed", "owners_missed_ids", "owner"]]


def commitment_sides(policy: SlaPolicy) -> dict[str, str]:
    """Which side each commitment belongs to, the benchmarks and custom targets included."""
    sides = {**SIDES, **BENCHMARK_SIDES}
    sides.update({custom_name(custom.metric): custom.side for custom in _targets(policy).custom})
    return sides


def commitment_owner(policy: SlaPolicy, commitment: str, side: str | None) -> str:
    """Who owns a commitment (policy ``owners``): named for the commitment itself, else its side's default; ""
    when the policy names nobody."""
    owners = policy.owners
    return owners.get(str(commitment).lower()) or owners.get(str(side).lower(), "") if owners else ""


def unknown_owner_keys(policy: SlaPolicy) -> list[str]:
    """``owners`` keys that name no commitment the scorecard knows, no ``targets.custom`` entry and no side."""
    from abm_sla.domain.policy import OWNER_SIDES

    known = set(commitment_sides(policy)) | set(OWNER_SIDES)
    return [key for key in policy.owners if key not in known]


def _samples(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
             policy: SlaPolicy, table: pd.DataFrame) -> dict[tuple[str, int | None], int]:
    """How many MQAs, clocks, verdicts or opportunities each commitment's value is computed from (the
    catalog's numerator of a count, denominator of a rate or median)."""
    from abm_sla.domain import metrics

    def sample(metric: str, tier: int | None = None) -> int:
        found = metrics.row(table, metric, metrics.ALL if tier is None else f"tier={tier}")
        if found is None:
            return 0
        counted = found["numerator"] if metrics.BY_ID[metric].kind == "count" else found["denominator"]
        return int(counted) if pd.notna(counted) else 0

    out: dict[tuple[str, int | None], int] = {("mqa_volume", tier): sample("mqas", tier) for tier in TIERS}
    out |= {("first_touch_met_pct", tier): sample("first_touch_met_rate", tier) for tier in TIERS}
    out[("rejection_pct", None)] = sample("rejection_rate")
    out[("tier1_win_rate_pct", 1)] = sample("win_rate", 1)
    out[("opportunity_to_won_pct", None)] = sample("win_rate")
    out[("sales_cycle_days", None)] = sample("sales_cycle_median_days")
    targets = _targets(policy)
    out |= {(key, tier): sample(CATALOG_IDS[metric], tier) for key, (metric, tier, _) in BENCHMARKS.items()
            if getattr(targets, key) is not None}
    extra = {}
    if targets.engaged_contacts_per_account is not None:
        extra["engaged_contacts_per_account"] = ("engaged_contacts_per_account", None)
    extra.update({custom_name(c.metric): (c.metric, c.tier) for c in targets.custom})
    if extra:  # without custom targets only the engagement table is read (metric_values computes every metric)
        values = (metric_values(data, start, end, as_of, policy) if targets.custom else
                  _metric(engagement(data, start, end), "engaged_contacts_per_account", "engaged_contacts_per_account",
                          "engaged"))
        for name, (metric, tier) in extra.items():
            rows = values[(values["metric"] == metric)
                          & (values["tier"].isna() if tier is None else values["tier"].eq(tier))]
            out[(name, tier)] = int(rows["sample"].iloc[0]) if len(rows) else 0
    return out


def _sample_units(policy: SlaPolicy) -> dict[str, str]:
    units = {**SAMPLE_UNITS, **{key: METRIC_SAMPLES[metric] for key, (metric, _, _) in BENCHMARKS.items()}}
    units["engaged_contacts_per_account"] = METRIC_SAMPLES["engaged_contacts_per_account"]
    units.update({custom_name(c.metric): METRIC_SAMPLES[c.metric] for c in _targets(policy).custom})
    return units
