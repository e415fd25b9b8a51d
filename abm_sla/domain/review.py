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

from abm_sla.domain import feedback as fb
from abm_sla.domain import frames, leads
from abm_sla.domain import metrics as catalog
from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard import SlaData

JOINT = "joint pipeline"
COMPARISON_COLUMNS = ["metric", "unit", "value", "previous_value", "change"]
#: Tier 1 accounts are "quiet" after this many days without any activity (the catalog's ``accounts_quiet``).
QUIET_DAYS = catalog.QUIET_DAYS

Metrics = list[tuple[str, str, float]]


def pipeline_by_source(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """Opportunities created in ``[start, end)`` per source (the policy's one pipeline-credit rule,
    :func:`scorecard.pipeline_credit`), count and amount, plus the joint pipeline row (their sum): the metrics
    catalog's ``opportunities_created``, ``pipeline_created`` and ``pipeline_created_share`` per ``source=``
    segment and for ``all``."""
    table = catalog.family_table("created", catalog.created_facts(data, start, end, policy), ("source",))
    segments = [f"source={segment}" for segment in catalog.SOURCE_SEGMENTS] + [catalog.ALL]
    values = table.pivot(index="segment", columns="metric", values="value").reindex(segments).fillna(0)
    out = pd.DataFrame({"source": [*sc.credit_parts(policy), JOINT],
                        "opportunities": values["opportunities_created"].astype(int).to_numpy(),
                        "amount": values["pipeline_created"].astype(float).to_numpy(),
                        "share_pct": table.pivot(index="segment", columns="metric", values="value")[
                            "pipeline_created_share"].reindex(segments).to_numpy()})
    return out


#: A comparison row: (metric name, unit, catalog reference: metric id, segment, field, number when it has no row).
Reference = tuple[str, str, tuple[str, str, str, float]]
NAN = float("nan")


def monthly_references(policy: SlaPolicy) -> list[Reference]:
    """The monthly review's comparison rows and the catalog number each reads: the commitments are the bound of
    the ``mqas`` target per tier (:func:`abm_sla.domain.metrics.target_bound`)."""
    rows: list[Reference] = [(f"MQAs, Tier {tier}", "count", ("mqas", f"tier={tier}", "value", NAN))
                             for tier in sc.TIERS]
    rows += [(f"MQA commitment, Tier {tier}", "count", ("mqas", f"tier={tier}", "target", NAN)) for tier in sc.TIERS]
    rows += [(name, unit, (metric, catalog.ALL, "value", NAN)) for name, unit, metric in (
        ("MQAs", "count", "mqas"), ("MQA → SQL (accepted)", "pct", "acceptance_rate"),
        ("SQL → opportunity", "pct", "sql_to_opportunity_rate"),
        ("Time to first contact (median)", "hours", "first_touch_response_median_hours"),
        ("Disqualified (rejected)", "pct", "disqualification_rate"))]
    rows += [(f"Pipeline, {source}", "money", ("pipeline_created", f"source={segment}", "value", NAN))
             for source, segment in zip(sc.credit_parts(policy), catalog.SOURCE_SEGMENTS, strict=True)]
    rows.append((f"Pipeline, {JOINT}", "money", ("pipeline_created", catalog.ALL, "value", NAN)))
    if policy.leads is not None:
        rows += [(measure, "count" if metric == "engaged_leads" else "pct", (metric, catalog.ALL, "value", NAN))
                 for measure, metric in lead_measure_names(policy)]
    return rows


def weekly_references(policy: SlaPolicy) -> list[Reference]:
    """The weekly dashboard additions' comparison rows and the catalog number each reads (the Tier 1 status rows:
    :data:`TIER1_STATUS` in the ``tier=1`` segment, 0 without a row)."""
    rows: list[Reference] = [(name, unit, (metric, catalog.ALL, "value", NAN)) for name, unit, metric in (
        ("Meetings booked", "count", "meetings_booked"), ("Opportunities created", "count", "opportunities_created"),
        ("Pipeline created", "money", "pipeline_created"),
        ("Engagement rate (accounts with a marketing touch)", "pct", "engagement_rate"))]
    for name, source in TIER1_STATUS.items():
        metric, _, field = source.partition(":")
        rows.append((f"Tier 1 accounts: {name}", "count", (metric, "tier=1", field or "value", 0.0)))
    return rows


def _values(references: list[Reference], table: pd.DataFrame, policy: SlaPolicy) -> Metrics:
    return [(name, unit, catalog.read(table, metric, segment, field, policy, default))
            for name, unit, (metric, segment, field, default) in references]


def monthly_metrics(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                    policy: SlaPolicy) -> Metrics:
    """(metric, unit, value) of the monthly review for one period; every value from the metrics catalog
    (:mod:`abm_sla.domain.metrics`, :func:`monthly_references`)."""
    return _values(monthly_references(policy), catalog.compute(data, start, end, as_of, policy), policy)


def weekly_metrics(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                   policy: SlaPolicy) -> Metrics:
    """(metric, unit, value) of the weekly dashboard additions for one period (the metrics catalog's,
    :func:`weekly_references`; the Tier 1 rows as :func:`tier1_status` reads them)."""
    return _values(weekly_references(policy), catalog.compute(data, start, end, as_of, policy), policy)


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
    segment (``table``: a :func:`abm_sla.domain.metrics.compute` table of the period; else the account family's)."""
    if table is None:
        table = catalog.family_table("accounts", catalog.account_facts(data, start, end), ("tier",))
    out = {}
    for name, source in TIER1_STATUS.items():
        metric, _, field = source.partition(":")
        out[name] = int(catalog.read(table, metric, "tier=1", field or "value", default=0.0))
    return out


#: The comparisons' reference lists, per metrics function :func:`compare` takes.
REFERENCES: dict[Callable[..., Metrics], Callable[[SlaPolicy], list[Reference]]] = {
    monthly_metrics: monthly_references, weekly_metrics: weekly_references}


def compare(metrics: Callable[..., Metrics], data: SlaData, start: pd.Timestamp, end: pd.Timestamp,
            as_of: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """``metrics`` for the period and the one before (judged as of its end): one row per metric with the
    change, every number read from the two periods' catalog tables (the change: :func:`metrics.change`). A
    previous period with nothing measured (no score, MQA, clock, activity or opportunity) shows no previous value
    and no change."""
    before_start, before_end = sc.previous_period(start, end)
    now = catalog.compute(data, start, end, as_of, policy)
    before = catalog.compute(data, before_start, before_end, min(as_of, before_end), policy)
    known = measured(data, before_start, before_end)
    rows = []
    for name, unit, reference in REFERENCES[metrics](policy):
        rows.append({"metric": name, "unit": unit, "value": catalog.read(now, *reference[:3], policy, reference[3]),
                     "previous_value": catalog.read(before, *reference[:3], policy, reference[3]) if known else NAN,
                     "change": catalog.change(now, before, *reference[:3], policy, reference[3]) if known else NAN})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


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
    (:func:`abm_sla.domain.metrics.tier_table`). What the warehouse knows today of marketing's tempo and coverage."""
    out = catalog.tier_table("accounts", catalog.account_facts(data, start, end), ACTIVITY_METRICS)
    return out[out["tier"].isin(sc.TIERS)].astype({"tier": int}).reset_index(drop=True)


# -- the review's completeness (seven commitments: disqualification patterns, conversion by source; ABM template:
#    closed deals, stalled accounts, engagement trends, top performers by segment; decisions) -------------------

#: The signal that fired an MQA when no marketing touch or intent row sits at its trigger_at.
OTHER_SOURCE = "other"
INTENT_SOURCE = "intent"


def disqualification_by_owner(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                              policy: SlaPolicy) -> pd.DataFrame:
    """Rejected MQAs of the period per owner and reason (long: one row per pair with any), most first: the
    catalog's ``mqas`` per ``owner=`` segment over each reason's MQAs (the reasons of
    :func:`abm_sla.domain.feedback.rejected_by_reason`, as the per-reason table groups them)."""
    rows = []
    for reason, group in fb.rejected_by_reason(catalog.mqa_facts(data, start, end, as_of, policy)):
        table = catalog.family_table("mqas", group, ("owner",))
        owners = table[(table["metric"] == "mqas") & table["segment"].str.startswith("owner=")]
        rows += [{"owner_id": segment.removeprefix("owner="), "reason": reason, "rejected": int(value)}
                 for segment, value in zip(owners["segment"], owners["value"].fillna(0), strict=True)]
    out = pd.DataFrame(rows, columns=["owner_id", "reason", "rejected"])
    out = out[out["rejected"] > 0]
    return out.sort_values(["rejected", "owner_id", "reason"], ascending=[False, True, True]).reset_index(drop=True)


def handoff_sources(data: SlaData, mqas: pd.DataFrame) -> pd.Series:
    """The signal that fired each MQA (SPEC: trigger_at is a marketing touch or an intent signal): the marketing
    touch type at the account's trigger_at (first in :data:`frames.MARKETING_TOUCHES` order on a tie), else
    ``intent``, else ``other``."""
    order = {kind: rank for rank, kind in enumerate(frames.MARKETING_TOUCHES)}
    acts = data.activities[data.activities["type"].isin(frames.MARKETING_TOUCHES)]
    acts = pd.DataFrame({"account_id": acts["account_id"].astype(str), "trigger_at": acts["occurred_at"],
                         "source": acts["type"], "_rank": acts["type"].map(order)})
    intent = pd.DataFrame({"account_id": data.intent_signals["account_id"].astype(str),
                           "trigger_at": data.intent_signals["observed_at"], "source": INTENT_SOURCE,
                           "_rank": len(order)})
    signals = pd.concat([acts, intent], ignore_index=True).sort_values("_rank")
    signals = signals.drop_duplicates(["account_id", "trigger_at"])[["account_id", "trigger_at", "source"]]
    keys = pd.DataFrame({"account_id": mqas["account_id"].astype(str).to_numpy(),
                         "trigger_at": pd.to_datetime(mqas["trigger_at"], utc=True).to_numpy()})
    keys["trigger_at"] = pd.to_datetime(keys["trigger_at"], utc=True)
    signals["trigger_at"] = pd.to_datetime(signals["trigger_at"], utc=True)
    found = keys.merge(signals, on=["account_id", "trigger_at"], how="left")["source"]
    return pd.Series(found.fillna(OTHER_SOURCE).to_numpy(), index=mqas.index, dtype=object)


#: conversion_by_source's columns and the catalog metric each is read from (the MQA family).
SOURCE_COLUMNS = {"mqas": "mqas", "accepted": "mqas_accepted", "acceptance_pct": "acceptance_rate",
                  "opportunities": "mqas_converted", "mqa_to_opportunity_pct": "mqa_to_opportunity_rate"}


def conversion_by_source(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                         policy: SlaPolicy) -> pd.DataFrame:
    """MQAs of the period per hand-off source (:func:`handoff_sources`) with the catalog's MQA → SQL and
    MQA → opportunity over each source's MQAs, and all of them."""
    facts = catalog.mqa_facts(data, start, end, as_of, policy)
    sources = handoff_sources(data, facts)
    rows = []
    for source in [*sources.value_counts().index, catalog.ALL]:
        table = catalog.family_table("mqas", facts if source == catalog.ALL else facts[sources == source], ())
        rows.append({"source": source, **{column: catalog.read(table, metric)
                                          for column, metric in SOURCE_COLUMNS.items()}})
    counts = {"mqas": int, "accepted": int, "opportunities": int}
    return pd.DataFrame(rows, columns=["source", *SOURCE_COLUMNS]).astype(counts)


CLOSED_DEAL_COLUMNS = ["opportunity_id", "account_id", "account_name", "tier", "owner_id", "outcome", "amount",
                       "created_at", "close_date", "cycle_days", "source"]


def closed_deals(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                 policy: SlaPolicy) -> pd.DataFrame:
    """The opportunities closed in the period (the catalog's closed facts: won and lost, with the pipeline-credit
    source), won first, largest first."""
    closed = catalog.closed_facts(data, start, end, as_of, policy)
    out = closed.assign(outcome=np.where(closed["won"], "won", "lost"),
                        cycle_days=((closed["close_date"] - closed["created_at"]) / sc.DAY).round(1))
    return out.sort_values(["outcome", "amount", "opportunity_id"], ascending=[False, False, True])[
        CLOSED_DEAL_COLUMNS].reset_index(drop=True)


def open_work(data: SlaData, end: pd.Timestamp) -> pd.DataFrame:
    """Per account with work open at ``end`` (index ``account_id``): open opportunities (created before ``end``,
    not closed by then) and their amount, whether an MQA episode is open, and its last activity before ``end``."""
    opps = sc.opportunity_frame(data)
    opps = opps[(opps["created_at"] < end) & ~(opps["is_closed"] & (opps["close_date"] < end))]
    mqas = data.mqas.assign(account_id=data.mqas["account_id"].astype(str))
    episodes = mqas[(mqas["trigger_at"] < end) & (mqas["ended_at"].isna() | (mqas["ended_at"] >= end))]
    acts = data.activities.assign(account_id=data.activities["account_id"].astype(str))
    last = acts[acts["occurred_at"] < end].groupby("account_id")["occurred_at"].max()
    ids = sorted(set(opps["account_id"]) | set(episodes["account_id"]))
    out = pd.DataFrame(index=pd.Index(ids, name="account_id"))
    out["open_opportunities"] = opps.groupby("account_id").size().reindex(out.index, fill_value=0).astype(int)
    out["open_amount"] = opps.groupby("account_id")["amount"].sum().reindex(out.index, fill_value=0.0)
    out["open_mqa"] = out.index.isin(set(episodes["account_id"]))
    out["last_activity_at"] = pd.to_datetime(last.reindex(out.index), utc=True)
    return out


def stalled_accounts(data: SlaData, end: pd.Timestamp, days: float) -> pd.DataFrame:
    """Accounts with an open opportunity or open MQA at ``end`` and no activity of any kind in the ``days``
    before it (never any: stalled), longest quiet first."""
    work = open_work(data, end)
    quiet = work["last_activity_at"].isna() | (work["last_activity_at"] <= end - pd.Timedelta(days=days))
    out = work[quiet].reset_index()
    out["days_quiet"] = ((end - out["last_activity_at"]) / sc.DAY).round(1)
    dims = sc.account_dimensions(data)[["account_id", "account_name", "tier", "owner_id"]]
    out = out.merge(dims, on="account_id", how="left")
    columns = ["account_id", "account_name", "tier", "owner_id", "open_opportunities", "open_amount", "open_mqa",
               "last_activity_at", "days_quiet"]
    return out.sort_values(["days_quiet", "account_id"], ascending=[False, True], na_position="first")[
        columns].reset_index(drop=True)


def month_starts(end: pd.Timestamp, months: int) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The ``months`` calendar months ending with the one before ``end`` (``[start, end)`` each), oldest first."""
    last = pd.Timestamp(end.year, end.month, 1, tz="UTC")
    last = last if last < end else last - pd.offsets.MonthBegin(1)
    starts = [last - pd.DateOffset(months=back) for back in range(months - 1, -1, -1)]
    return [(start, start + pd.offsets.MonthBegin(1)) for start in starts]


#: The engagement trend's columns and the catalog metric and segment each is read from, in each month's table.
TREND_METRICS = {**{f"engagement_pct_tier_{tier}": ("engagement_rate", f"tier={tier}") for tier in sc.TIERS},
                 "engagement_pct": ("engagement_rate", catalog.ALL),
                 "engaged_contacts": ("engaged_contacts", catalog.ALL),
                 "engaged_leads": ("engaged_leads", catalog.ALL)}


def engagement_trend(data: SlaData, end: pd.Timestamp, months: int, policy: SlaPolicy) -> pd.DataFrame:
    """Per month of the ``months`` up to the review's: the catalog's engagement rate per tier and in all, engaged
    contacts and (with policy ``leads``) engaged leads (:data:`TREND_METRICS`): the accounts family's (and the
    leads family's) table of each month, over that month's facts."""
    rows = []
    for start, stop in month_starts(end, months):
        tables = {"accounts": catalog.family_table("accounts", catalog.account_facts(data, start, stop), ("tier",))}
        if policy.leads is not None:
            tables["leads"] = catalog.family_table("leads", leads.lead_facts(data, start, stop, policy), ())
        month = pd.concat(tables.values(), ignore_index=True)
        rows.append({"month": f"{start.year}-{start.month:02d}",
                     **{column: catalog.value(month, metric, segment) for column, (metric, segment)
                        in TREND_METRICS.items() if catalog.BY_ID[metric].family in tables}})
    return pd.DataFrame(rows)


def top_accounts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, n: int) -> pd.DataFrame:
    """The ``n`` accounts on the list most engaged in the period per tier (segment): marketing touches, then
    engaged contacts (the catalog's engagement facts), with their meetings in the period."""
    accounts = sc.listed_accounts(data, end)
    engagement = catalog.account_engagement(data, start, end)
    facts = accounts.merge(engagement[["marketing_touches", "stakeholders"]], left_on="account_id",
                           right_index=True, how="inner").reset_index(drop=True)  # empty: no account_id index
    met = catalog.meeting_facts(data, start, end)["account_id"].value_counts()  # meetings_booked's facts
    facts["meetings"] = facts["account_id"].map(met).fillna(0).astype(int)
    facts = facts.sort_values(["tier", "marketing_touches", "stakeholders", "account_id"],
                              ascending=[True, False, False, True])
    facts["rank"] = facts.groupby("tier").cumcount() + 1
    out = facts[facts["rank"] <= n].rename(columns={"stakeholders": "engaged_contacts"})
    return out[["tier", "rank", "account_id", "account_name", "owner_id", "marketing_touches", "engaged_contacts",
                "meetings"]].astype({"marketing_touches": int, "engaged_contacts": int}).reset_index(drop=True)


DECISION_COLUMNS = ["decision_id", "month", "text", "owner", "due", "status", "outcome", "recorded_at"]


def review_decisions(decisions: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    """The decisions of the previous month's review (to follow up) and of this month's, oldest first."""
    if decisions.empty or "month" not in decisions.columns:
        return pd.DataFrame(columns=DECISION_COLUMNS)
    before = start - pd.offsets.MonthBegin(1)
    months = {f"{before.year}-{before.month:02d}", f"{start.year}-{start.month:02d}"}
    rows = decisions[decisions["month"].isin(months)]
    return rows.sort_values(["month", "decision_id"])[DECISION_COLUMNS].reset_index(drop=True)


def lead_measure_names(policy: SlaPolicy) -> list[tuple[str, str]]:
    """(measure, catalog metric) of the lead measures; persona and geography only when the policy lists them."""
    settings = policy.leads
    wanted = [("Engaged leads from the list", "engaged_leads")]
    if settings is not None and settings.personas:
        wanted.append(("Leads in target personas (%)", "lead_persona_share"))
    if settings is not None and settings.countries:
        wanted.append(("Leads in target geographies (%)", "lead_geography_share"))
    wanted.append(("Leads with an invalid email (%)", "invalid_email_share"))
    return wanted


def lead_measures(table: pd.DataFrame, policy: SlaPolicy) -> pd.DataFrame:
    """The lead measures of a period from its catalog table: value, numerator, denominator, target and verdict;
    persona and geography only when the policy lists them."""
    rows = []
    for measure, metric in lead_measure_names(policy):
        found = catalog.row(table, metric)
        rows.append({"measure": measure, "metric": metric, "value": found["value"], "numerator": found["numerator"],
                     "denominator": found["denominator"], "target": found["target"], "verdict": found["verdict"]})
    return pd.DataFrame(rows)
