"""The monthly review and the weekly dashboard's this-week-vs-last-week rows. Pure, vectorized.

Periods are ``[start, end)`` in UTC (a month is its UTC calendar month, like the weekly and quarterly
reports); outcomes count when they happened at or before ``as_of``. Each comparison table has one row per
metric: ``value`` for the period, ``previous_value`` for the period before (:func:`scorecard.previous_period`,
judged as of its end) and ``change``; a previous period with nothing measured has no previous value.

Definitions:

- **SQL**: an MQA sales accepted (its verdict, :func:`scorecard.mqa_outcomes`); MQA → SQL = accepted / MQAs
  fired in the period; SQL → opportunity = accepted MQAs with an opportunity / accepted MQAs;
  **disqualified** = MQAs with a ``rejected`` verdict / MQAs fired;
- **time to first contact**: median business hours from routing to the first sales touch of the first-touch
  clocks due in the period (:func:`scorecard.response_times`);
- **pipeline by source** of the opportunities created in the period: the policy's one pipeline-credit rule
  (:func:`scorecard.pipeline_credit`, default the touch order of the seven commitments, as in the quarterly).
  Its three parts partition the pipeline; the **joint pipeline** is their sum, every opportunity created;
- **meetings booked**: activities of type ``meeting`` in the period; **engagement rate**: accounts with a
  marketing touch in the period / accounts on the list (:func:`scorecard.engagement`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from abm_sla import frames
from abm_sla import metrics as catalog
from abm_sla import scorecard as sc
from abm_sla.policy import SlaPolicy
from abm_sla.scorecard import SlaData

JOINT = "joint pipeline"
COMPARISON_COLUMNS = ["metric", "unit", "value", "previous_value", "change"]
#: Tier 1 accounts are "quiet" after this many days without any activity (the catalog's ``accounts_quiet``).
QUIET_DAYS = catalog.QUIET_DAYS

Metrics = list[tuple[str, str, float]]


def pipeline_by_source(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """Opportunities created in ``[start, end)`` per source (the policy's one pipeline-credit rule,
    :func:`scorecard.pipeline_credit`), count and amount, plus the joint pipeline row (their sum): the metrics
    catalog's ``opportunities_created`` and ``pipeline_created`` per ``source=`` segment and for ``all``."""
    table = catalog.family_table("created", catalog.created_facts(data, start, end, policy), ("source",))
    segments = [f"source={segment}" for segment in catalog.SOURCE_SEGMENTS] + [catalog.ALL]
    values = table.pivot(index="segment", columns="metric", values="value").reindex(segments).fillna(0)
    out = pd.DataFrame({"source": [*sc.credit_parts(policy), JOINT],
                        "opportunities": values["opportunities_created"].astype(int).to_numpy(),
                        "amount": values["pipeline_created"].astype(float).to_numpy()})
    out["share_pct"] = sc.pct(out["amount"], float(out["amount"].iloc[-1]))
    return out


def monthly_metrics(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                    policy: SlaPolicy) -> Metrics:
    """(metric, unit, value) of the monthly review for one period; every value from the metrics catalog
    (:mod:`abm_sla.metrics`) but the commitments, which are the policy's targets."""
    table = catalog.compute(data, start, end, as_of, policy)
    rows: Metrics = [(f"MQAs, Tier {tier}", "count", catalog.value(table, "mqas", f"tier={tier}"))
                     for tier in sc.TIERS]
    rows += [(f"MQA commitment, Tier {tier}", "count", catalog.target_bound(policy, start, end, "mqas", f"tier={tier}"))
             for tier in sc.TIERS]
    rows += [
        ("MQAs", "count", catalog.value(table, "mqas")),
        ("MQA → SQL (accepted)", "pct", catalog.value(table, "acceptance_rate")),
        ("SQL → opportunity", "pct", catalog.value(table, "sql_to_opportunity_rate")),
        ("Time to first contact (median)", "hours", catalog.value(table, "first_touch_response_median_hours")),
        ("Disqualified (rejected)", "pct", catalog.value(table, "disqualification_rate")),
    ]
    for source, segment in zip(sc.credit_parts(policy), catalog.SOURCE_SEGMENTS, strict=True):
        rows.append((f"Pipeline, {source}", "money", catalog.value(table, "pipeline_created", f"source={segment}")))
    rows.append((f"Pipeline, {JOINT}", "money", catalog.value(table, "pipeline_created")))
    return rows


def weekly_metrics(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                   policy: SlaPolicy) -> Metrics:
    """(metric, unit, value) of the weekly dashboard additions for one period (the metrics catalog's, and the
    Tier 1 status counts of :func:`tier1_status`)."""
    table = catalog.compute(data, start, end, as_of, policy)
    rows: Metrics = [
        ("Meetings booked", "count", catalog.value(table, "meetings_booked")),
        ("Opportunities created", "count", catalog.value(table, "opportunities_created")),
        ("Pipeline created", "money", catalog.value(table, "pipeline_created")),
        ("Engagement rate (accounts with a marketing touch)", "pct", catalog.value(table, "engagement_rate")),
    ]
    return rows + [(f"Tier 1 accounts: {name}", "count", float(value))
                   for name, value in tier1_status(data, start, end, table).items()]


#: The Tier 1 status rows and the catalog metric each is read from (``metric:numerator``: its numerator).
TIER1_STATUS = {"on the list": "accounts_on_list", "engaged by marketing": "engagement_rate:numerator",
                "worked by sales": "accounts_worked_by_sales",
                "with an open opportunity": "accounts_with_open_opportunity",
                "with an open MQA": "accounts_with_open_mqa", f"quiet for {QUIET_DAYS}+ days": "accounts_quiet"}


def tier1_status(data: SlaData, start: pd.Timestamp, end: pd.Timestamp,
                 table: pd.DataFrame | None = None) -> dict[str, int]:
    """Tier 1 accounts on the list at ``end`` (:func:`scorecard.listed_accounts`: the target account list when one
    is recorded): engaged by marketing and worked by sales in the period, with an open opportunity or an open MQA
    episode at ``end``, quiet (no activity for ``QUIET_DAYS``). The catalog's account metrics in their ``tier=1``
    segment (``table``: a :func:`abm_sla.metrics.compute` table of the period; else the account family's)."""
    if table is None:
        table = catalog.family_table("accounts", catalog.account_facts(data, start, end), ("tier",))
    out = {}
    for name, source in TIER1_STATUS.items():
        metric, _, field = source.partition(":")
        found = catalog.row(table, metric, "tier=1")
        out[name] = int(found[field or "value"]) if found is not None and pd.notna(found[field or "value"]) else 0
    return out


def compare(metrics: Callable[..., Metrics], data: SlaData, start: pd.Timestamp, end: pd.Timestamp,
            as_of: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """``metrics`` for the period and the one before (judged as of its end): one row per metric with the
    change. A previous period with nothing measured (no score, MQA, clock, activity or opportunity) shows
    no previous value and no change."""
    before_start, before_end = sc.previous_period(start, end)
    now = pd.DataFrame(metrics(data, start, end, as_of, policy), columns=["metric", "unit", "value"])
    before = pd.DataFrame(metrics(data, before_start, before_end, min(as_of, before_end), policy),
                          columns=["metric", "unit", "previous_value"])
    out = now.merge(before[["metric", "previous_value"]], on="metric", how="left")
    if not measured(data, before_start, before_end):
        out["previous_value"] = np.nan
    out["change"] = (out["value"] - out["previous_value"]).round(1)
    return out[COMPARISON_COLUMNS]


def measured(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> bool:
    """Whether anything happened in the period: a score, MQA or clock, an activity or an opportunity."""
    return bool(sc.has_data(data, start, end) or sc.within(data.activities["occurred_at"], start, end).any()
                or sc.within(data.opportunities["created_at"], start, end).any())


#: marketing_activity's columns and the catalog metric each is read from (the accounts family).
ACTIVITY_METRICS = {"accounts": "accounts_on_list", "accounts_touched": "engagement_rate:numerator",
                    "touches": "marketing_touches", "touches_per_account": "touches_per_account",
                    "coverage_pct": "engagement_rate",
                    **{f"touches_{kind}": f"marketing_touches_{kind}" for kind in frames.MARKETING_TOUCHES}}


def marketing_activity(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Per tier: accounts on the list (:func:`scorecard.listed_accounts`), accounts touched, marketing touches in
    the period (all and by channel, activity type) and touches per account: the metrics catalog's accounts family
    (:func:`abm_sla.metrics.tier_table`). What the warehouse knows today of marketing's tempo and coverage."""
    out = catalog.tier_table("accounts", catalog.account_facts(data, start, end), ACTIVITY_METRICS)
    return out[out["tier"].isin(sc.TIERS)].astype({"tier": int}).reset_index(drop=True)
