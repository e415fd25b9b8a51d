"""Targets and verdicts: each metric's target from the policy (``targets``, ``leads``, ``crm_updates``, the
regional appendix…), its bound (:func:`target_bound`) and the met / missed verdict of a table's rows (:func:`judge`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from abm_sla.domain import marketing
from abm_sla.domain.metrics.base import (
    ALL,
    MET,
    MISSED,
)
from abm_sla.domain.policy import SlaPolicy

# -- targets -------------------------------------------------------------------------------------------

def _targets(policy: SlaPolicy, start: pd.Timestamp, end: pd.Timestamp
             ) -> dict[tuple[str, str], tuple[str, Callable, float]]:
    """(metric, segment) → (target text, judge(value) → met?, the bound of a one-sided target or NaN) from the
    policy's ``targets``."""
    targets = policy.targets
    out: dict[tuple[str, str], tuple[str, Callable, float]] = {}
    for name, region in policy.regions.items():  # the regional appendix: met % of the region's clocks
        for clock, bound in region.targets.items():
            out[(f"{clock}_met_rate", f"region={name}")] = (f">= {bound:g}", lambda v, bound=bound: v >= bound,
                                                             float(bound))

    def at_least(key: tuple[str, str], bound: float | None, strict: bool = False) -> None:
        if bound is not None:
            out[key] = (f"{'>' if strict else '>='} {bound:g}",
                        (lambda v: v > bound) if strict else (lambda v: v >= bound), float(bound))

    if policy.leads is not None:
        _lead_targets(out, at_least, policy, start, end)
    if policy.crm_updates is not None:
        for metric in ("sales_activities_logged_rate", "marketing_activities_logged_rate"):
            at_least((metric, ALL), policy.crm_updates.logged_pct)
        at_least(("accounts_updated_rate", ALL), policy.crm_updates.accounts_updated_pct)
    if policy.routed_record is not None:
        at_least(("routed_record_complete_rate", ALL), policy.routed_record.complete_pct)
    days = marketing.agreement_days(policy)  # the list's monthly agreement (22d)
    out[("list_agreement_age_days", ALL)] = (f"<= {days:g}", lambda v: v <= days, float(days))
    top = policy.target_account_list.top_accounts if policy.target_account_list else None
    if top is not None:
        out[("top_accounts_revisit_age_days", ALL)] = (f"<= {top.revisit_days:g}",
                                                        lambda v: v <= top.revisit_days, float(top.revisit_days))
    if targets is None:
        return out

    for tier, commitment in (targets.monthly_mqa_commitments or {}).items():
        months = marketing.months_between(start, end)
        low = round(float(commitment) * months, 1)
        at_least(("mqas", f"tier={tier}"), low)
        if tier in (targets.monthly_mqa_max or {}):  # the band [commitment, max] (implementation guide)
            high = round(float(targets.monthly_mqa_max[tier]) * months, 1)
            out[("mqas", f"tier={tier}")] = (f"{low:g}-{high:g}", lambda v, low=low, high=high: low <= v <= high,
                                             low)
    for tier, bound in (targets.first_touch_met_pct or {}).items():
        at_least(("first_touch_met_rate", f"tier={tier}"), bound)
    band = targets.rejection_rate
    if band is not None:
        low = band.min_pct if band.min_pct is not None else 0.0
        high = band.max_pct if band.max_pct is not None else 100.0
        out[("rejection_rate", ALL)] = (f"{low:g}-{high:g}", lambda v: low <= v <= high, np.nan)
    at_least(("win_rate", "tier=1"), targets.tier1_win_rate_pct)
    at_least(("win_rate", ALL), targets.opportunity_to_won_pct)
    if targets.sales_cycle_days_max is not None:
        cycle = targets.sales_cycle_days_max
        out[("sales_cycle_median_days", ALL)] = (f"<= {cycle:g}", lambda v: v <= cycle, float(cycle))
    if targets.cac_max is not None:
        cac = targets.cac_max
        out[("cac", ALL)] = (f"< {cac:g}", lambda v: v < cac, float(cac))
    at_least(("engagement_rate", ALL), targets.engagement_rate_pct)
    at_least(("multi_stakeholder_rate", ALL), targets.multi_stakeholder_pct)
    at_least(("acceptance_rate", "tier=1"), targets.tier1_acceptance_pct, strict=True)
    at_least(("mqa_to_opportunity_rate", "tier=2"), targets.tier2_mqa_to_opportunity_pct, strict=True)
    at_least(("sql_to_opportunity_rate", ALL), targets.sql_to_opportunity_pct)
    return out


def _lead_targets(out: dict, at_least: Callable, policy: SlaPolicy, start: pd.Timestamp, end: pd.Timestamp) -> None:
    """The lead measures' targets (policy ``leads``): the quarterly minimum pro-rated to the period's months."""
    settings = policy.leads
    if settings.engaged_leads_per_quarter_min is not None:
        at_least(("engaged_leads", ALL),
                 round(settings.engaged_leads_per_quarter_min * marketing.months_between(start, end) / 3, 1))
    at_least(("lead_persona_share", ALL), settings.persona_share_pct)
    at_least(("lead_geography_share", ALL), settings.geography_share_pct)
    if settings.invalid_email_max_pct is not None:
        bound = settings.invalid_email_max_pct
        out[("invalid_email_share", ALL)] = (f"< {bound:g}", lambda v: v < bound, float(bound))


def target_bound(policy: SlaPolicy, start: pd.Timestamp, end: pd.Timestamp, metric: str,
                 segment: str = ALL) -> float:
    """The number a metric's target names for ``[start, end)`` (the MQA commitment pro-rated to the period, a
    rate's bound), as the metrics table's ``target`` shows it; NaN without one (or for a band)."""
    found = _targets(policy, start, end).get((metric, segment))
    return found[2] if found is not None else float("nan")


def judge(rows: pd.DataFrame, policy: SlaPolicy, start: pd.Timestamp, end: pd.Timestamp,
           measured: bool) -> pd.DataFrame:
    """Fill ``target`` and ``verdict`` (met / missed; empty without a target or a value, or — for MQA volume —
    when the pipeline measured nothing in the period)."""
    targets = _targets(policy, start, end)
    target, verdict = [], []
    for metric, segment, value in zip(rows["metric"], rows["segment"], rows["value"], strict=True):
        found = targets.get((metric, segment))
        target.append(found[0] if found else "")
        judged = found is not None and pd.notna(value) and (measured or metric != "mqas")
        verdict.append((MET if found[1](value) else MISSED) if judged else "")
    return rows.assign(target=target, verdict=verdict)
