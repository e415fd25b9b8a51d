"""The joint numbers: accepted MQAs' progression, the one pipeline-credit rule and attribution, win rates
and the sales cycle."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import frames
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard.data import ALL, SlaData, _flag, _targets, account_dimensions, catalog_breakdown, within

#: progression's columns and the catalog metric each is read from (abm_sla.domain.metrics).
PROGRESSION_METRICS = {"accepted": "mqas_accepted", "opportunity": "mqas_accepted_converted",
                       "won": "mqas_accepted_won", "lost": "mqas_accepted_lost",
                       "open": "mqas_accepted_open_opportunity", "to_opportunity_pct": "sql_to_opportunity_rate",
                       "to_won_pct": "sql_to_won_rate"}


def progression(outcomes: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, by: str = "tier") -> pd.DataFrame:
    """Accepted MQAs of the period (per ``by`` with one, and ``all``): how many reached an opportunity, won, lost
    or are still open. The numbers are the metrics catalog's (:data:`PROGRESSION_METRICS`)."""
    from abm_sla.domain import metrics

    rows = outcomes[within(outcomes["trigger_at"], start, end)]
    out = catalog_breakdown("mqas", metrics.mqa_fact_columns(rows), by, PROGRESSION_METRICS)
    counts = ["accepted", "opportunity", "won", "lost", "open"]
    out[counts] = out[counts].fillna(0).astype(int)
    return out[(out["accepted"] > 0) | (out[by] == ALL)].reset_index(drop=True)


def opportunity_frame(data: SlaData) -> pd.DataFrame:
    """Opportunities with their account's tier and owner and clean flags."""
    accounts = account_dimensions(data)[["account_id", "account_name", "tier", "owner_id"]]
    opps = data.opportunities.assign(account_id=data.opportunities["account_id"].astype(str))
    opps = opps.merge(accounts, on="account_id", how="left")
    opps["tier"] = opps["tier"].fillna(3).astype(int)
    opps["amount"] = pd.to_numeric(opps["amount"], errors="coerce").fillna(0.0)
    opps["is_closed"] = _flag(opps["is_closed"])
    opps["is_won"] = _flag(opps["is_won"]) & opps["is_closed"]
    return opps


#: The three parts of the pipeline under each credit rule (they add up to all opportunities created).
CREDIT_PARTS = {
    "touch_order": ("marketing-sourced", "sales-first, marketing-influenced", "sales-sourced"),
    "mqa": ("marketing-sourced", "marketing-touched, no MQA", "sales-sourced"),
}


def credit_parts(policy: SlaPolicy) -> tuple[str, str, str]:
    """The labels of the policy's pipeline-credit rule: sourced, influenced but not sourced, sales-sourced."""
    return CREDIT_PARTS[policy.pipeline_credit.rule]


def pipeline_credit(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """The opportunities created in ``[start, end)``, each with its ``source`` by the policy's one pipeline-credit
    rule (``pipeline_credit``), ``influenced`` (any marketing touch in the lookback) and ``from_mqa`` (an MQA fired
    on the account by ``created_at``).

    ``touch_order`` (default): marketing-sourced = a marketing touch in the lookback before the opportunity and
    before any sales touch; sales-first, marketing-influenced = a marketing touch after the first sales touch;
    sales-sourced = no marketing touch. ``mqa``: marketing-sourced = an MQA fired in the lookback;
    marketing-touched, no MQA = a marketing touch but no such MQA; sales-sourced = neither.
    """
    lookback = pd.Timedelta(days=policy.pipeline_credit.lookback_days)
    opps = opportunity_frame(data)
    opps = opps[within(opps["created_at"], start, end)][
        ["opportunity_id", "account_id", "tier", "owner_id", "amount", "created_at"]].reset_index(drop=True)
    acts = data.activities[["account_id", "type", "occurred_at"]].assign(
        account_id=lambda f: f["account_id"].astype(str))
    joined = opps[["opportunity_id", "account_id", "created_at"]].merge(acts, on="account_id")
    joined = joined[(joined["occurred_at"] <= joined["created_at"])
                    & (joined["occurred_at"] > joined["created_at"] - lookback)]
    first = pd.DataFrame({
        "first_marketing": joined["occurred_at"].where(joined["type"].isin(frames.MARKETING_TOUCHES)),
        "first_sales": joined["occurred_at"].where(joined["type"].isin(frames.SALES_TOUCHES)),
        "opportunity_id": joined["opportunity_id"],
    }).groupby("opportunity_id").min()
    opps = opps.join(first, on="opportunity_id")
    mqas = data.mqas[["account_id", "trigger_at"]].dropna().assign(account_id=lambda f: f["account_id"].astype(str))
    fired = opps[["opportunity_id", "account_id", "created_at"]].merge(mqas, on="account_id")
    fired = fired[fired["trigger_at"] <= fired["created_at"]]
    recent = fired[fired["trigger_at"] > fired["created_at"] - lookback]
    touched = opps["first_marketing"].notna()
    if policy.pipeline_credit.rule == "mqa":
        sourced = opps["opportunity_id"].isin(recent["opportunity_id"])
        influenced = sourced | touched
    else:
        influenced = touched
        sourced = touched & (opps["first_sales"].isna() | (opps["first_marketing"] < opps["first_sales"]))
    parts = credit_parts(policy)
    opps["source"] = np.select([sourced, influenced], parts[:2], parts[2])
    opps["influenced"] = influenced.to_numpy()
    opps["from_mqa"] = opps["opportunity_id"].isin(fired["opportunity_id"])
    return opps.drop(columns=["first_marketing", "first_sales"])


#: pipeline_attribution's columns and the catalog metric each is read from (the created family).
ATTRIBUTION_METRICS = {"opportunities": "opportunities_created", "amount": "pipeline_created",
                       "from_mqa": "opportunities_from_mqa", "from_mqa_amount": "pipeline_from_mqa"}


def pipeline_attribution(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy,
                         by: str = "tier") -> pd.DataFrame:
    """Opportunities created in the period by attribution (the one pipeline-credit rule, :func:`pipeline_credit`),
    in count and amount, and how many came from MQAs: the rule's three parts add up to ``all``;
    marketing-influenced = the first two. Every number is the metrics catalog's created family
    (:func:`abm_sla.domain.metrics.family_table`) over the opportunities of each part."""
    from abm_sla.domain import metrics

    opps = metrics.created_facts(data, start, end, policy)
    slugs = metrics.SOURCE_SEGMENTS
    labels = (*credit_parts(policy), ALL, "marketing-influenced")
    masks = (*(opps["source"].eq(slug) for slug in slugs), pd.Series(True, index=opps.index), opps["influenced"])
    parts = [catalog_breakdown("created", opps[mask.to_numpy(dtype=bool)], by, ATTRIBUTION_METRICS)
             .assign(attribution=label) for label, mask in zip(labels, masks, strict=True)]
    out = pd.concat(parts, ignore_index=True)
    out[["opportunities", "from_mqa"]] = out[["opportunities", "from_mqa"]].fillna(0).astype(int)
    out[["amount", "from_mqa_amount"]] = out[["amount", "from_mqa_amount"]].fillna(0.0)
    return out[["attribution", by, "opportunities", "amount", "from_mqa", "from_mqa_amount"]]


#: Fewer closed opportunities than this make a win rate anecdote, not evidence: the table says so.
MIN_SAMPLE = 10


#: win_rates' columns and the catalog metric each is read from.
WIN_METRICS = {"closed": "opportunities_closed", "won": "opportunities_won", "win_rate_pct": "win_rate",
               "median_cycle_days": "sales_cycle_median_days"}


def win_rates(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp, policy: SlaPolicy,
              by: str = "tier") -> pd.DataFrame:
    """Opportunities closed in the period: won / closed and the median sales cycle of the *won*, against
    targets, with a ``sample`` warning under ``MIN_SAMPLE`` closed (numbers from the metrics catalog).

    The Tier 1 row carries the Tier 1 win-rate target; the ``all`` row the opportunity → won target.
    """
    from abm_sla.domain import metrics

    out = catalog_breakdown("closed", metrics.closed_facts(data, start, end, as_of), by, WIN_METRICS)
    out[["closed", "won"]] = out[["closed", "won"]].fillna(0).astype(int)
    targets = _targets(policy)
    out["win_rate_target_pct"] = np.nan
    if by == "tier":
        out.loc[out["tier"].eq(1), "win_rate_target_pct"] = targets.tier1_win_rate_pct
    out.loc[out[by].eq(ALL), "win_rate_target_pct"] = targets.opportunity_to_won_pct
    out["cycle_target_days_max"] = targets.sales_cycle_days_max
    out["cycle_on_target"] = out["median_cycle_days"].lt(targets.sales_cycle_days_max).where(
        out["median_cycle_days"].notna() & pd.notna(targets.sales_cycle_days_max))
    out["sample"] = np.where(out["closed"] < MIN_SAMPLE, f"small: fewer than {MIN_SAMPLE} closed", "")
    return out[[by, "closed", "won", "win_rate_pct", "win_rate_target_pct", "median_cycle_days",
                "cycle_target_days_max", "cycle_on_target", "sample"]]
