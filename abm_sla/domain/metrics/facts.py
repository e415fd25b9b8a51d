"""Row-level facts, one frame per family: one row per item (an MQA, a clock, an opportunity, an account…) with
its segment columns and the columns the family's metrics count (pure, vectorized, ``as_of`` passed in)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import commitments as cm
from abm_sla.domain import coordination as co
from abm_sla.domain import crm_updates as cu
from abm_sla.domain import frames, leads, marketing, regions, routed_records
from abm_sla.domain import scorecard as sc
from abm_sla.domain import team_clocks as tc
from abm_sla.domain.metrics.base import (
    ALL_CLOCKS,
    CLOCK_STATUSES,
    MET,
    MISSED,
    MIX_DISPOSITIONS,
    NO_DISPOSITION,
    OTHER_DISPOSITION,
    QUIET_DAYS,
    ROUTING_BASES,
    SOURCE_SEGMENTS,
)
from abm_sla.domain.metrics.quarterly_facts import quarterly_facts
from abm_sla.domain.policy import IntentList, SlaPolicy
from abm_sla.domain.scorecard import SlaData
from abm_sla.domain.sla import OWNER_ASSIGNED

# -- facts: one row per item, with its segment columns -------------------------------------------------

def _list_column(data: SlaData, accounts: pd.Series, moments: pd.Series | pd.Timestamp) -> pd.Series:
    """``on`` / ``off`` the target account list at each item's moment; None when no list is recorded."""
    if not marketing.tal_exists(data.target_accounts):
        return pd.Series(None, index=accounts.index, dtype="object")
    on = marketing.on_list_at(data.target_accounts, accounts, moments)
    return pd.Series(np.where(on, "on", "off"), index=accounts.index, dtype="object")


def mqa_fact_columns(outcomes: pd.DataFrame) -> pd.DataFrame:
    """:func:`scorecard.mqa_outcomes` rows with the columns the MQA metrics count (``owner`` as text)."""
    rows = outcomes.reset_index(drop=True)
    accepted = rows["accepted"]
    has_verdict = accepted | rows["rejected"]
    return with_columns(rows, dict(has_verdict=has_verdict, no_verdict=~has_verdict,
                                   accepted_converted=accepted & rows["converted"],
                                   accepted_won=accepted & rows["won"], accepted_lost=accepted & rows["lost"],
                                   accepted_open=accepted & rows["converted"] & ~rows["won"] & ~rows["lost"],
                                   **disposition_flags(rows["disposition"])))


def disposition_flags(disposition: pd.Series) -> dict[str, pd.Series]:
    """``disposition_<name>`` per :data:`MIX_DISPOSITIONS`: whether each MQA's disposition is that one (a name
    only the policy adds counts as ``other``, a missing one as ``none``)."""
    known = set(MIX_DISPOSITIONS) - {OTHER_DISPOSITION}
    names = disposition.fillna(NO_DISPOSITION).astype(str)
    names = names.where(names.isin(known), OTHER_DISPOSITION)
    return {f"disposition_{name}": names.eq(name) for name in MIX_DISPOSITIONS}


def mqa_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
              policy: SlaPolicy, outcomes: pd.DataFrame | None = None) -> pd.DataFrame:
    """The period's MQAs with their verdict and conversion (:func:`scorecard.mqa_outcomes`, or ``outcomes`` when
    already computed for ``as_of``)."""
    outcomes = sc.mqa_outcomes(data, as_of, policy) if outcomes is None else outcomes
    rows = mqa_fact_columns(outcomes[sc.within(outcomes["trigger_at"], start, end)])
    return rows.assign(list=_list_column(data, rows["account_id"], rows["trigger_at"]))


def clock_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy | None = None) -> pd.DataFrame:
    """The clocks due in the period: per clock, whether each is met, missed, pending or decided (met or missed);
    with the policy's ``regions``, each clock's ``region`` (its account's, :func:`abm_sla.domain.regions.region_of`)."""
    clocks = sc.clocks_due(data, start, end).reset_index(drop=True)
    sla = clocks["clock"].isin(sc.CLOCKS)
    out = status_columns(clocks, ALL_CLOCKS).assign(missed=clocks["status"].eq(MISSED),
                                                    sla_missed=sla & clocks["status"].eq(MISSED),
                                                    sla_pending=sla & clocks["status"].eq("pending"))
    if policy is not None and policy.regions:
        out["region"] = regions.region_of(clocks["account_id"], clocks["owner_id"], data.accounts, data.users, policy)
    return out


def status_columns(clocks: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """``tier, owner_id`` and, per clock of ``names``, whether each row is met, missed, pending or decided."""
    statuses = {status: clocks["status"].eq(status) for status in CLOCK_STATUSES}
    decided = clocks["status"].isin([MET, MISSED])
    columns = {}
    for clock in names:
        mine = clocks["clock"].eq(clock)
        columns.update({f"{clock}_{status}": mine & statuses[status] for status in CLOCK_STATUSES})
        columns[f"{clock}_decided"] = mine & decided
    return with_columns(clocks[["tier", "owner_id"]].copy(), columns)


def with_columns(frame: pd.DataFrame, columns: dict[str, pd.Series]) -> pd.DataFrame:
    """``frame.assign(**columns)``, built at once when the columns are new and share ``frame``'s index (assigning
    them one by one inserts a block each: 40 flag columns cost more than computing them)."""
    if set(columns) & set(frame.columns) or not all(column.index.equals(frame.index) for column in columns.values()):
        return frame.assign(**columns)
    added = pd.DataFrame({name: column.to_numpy() if isinstance(column.dtype, np.dtype) else column.array
                          for name, column in columns.items()}, index=frame.index)
    return pd.concat([frame, added], axis=1)


def team_clocks(data: SlaData, as_of: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """Every team clock of the policy as of ``as_of`` (:func:`abm_sla.domain.team_clocks.evaluate`)."""
    return tc.evaluate(data.requests, data.activities, data.accounts, data.users, policy, as_of)


def team_clock_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                     policy: SlaPolicy) -> pd.DataFrame:
    """The team clocks due in the period (as of ``as_of``): per clock, met, missed, pending or decided."""
    clocks = tc.due_in(team_clocks(data, as_of, policy), start, end).reset_index(drop=True)
    return status_columns(clocks, tc.TEAM_CLOCKS)


def response_facts(responses: pd.DataFrame) -> pd.DataFrame:
    """:func:`scorecard.response_times` rows with normalized tier and ``answered``, ``before_routing``,
    ``unanswered`` and ``response_hours`` (calendar hours from routing to the first touch, 0 when before routing;
    empty without either)."""
    rows = responses.reset_index(drop=True)
    elapsed = (rows["met_at"] - rows["routed_at"]).clip(lower=pd.Timedelta(0)) / pd.Timedelta(hours=1)
    return rows.assign(tier=sc.normalize_tier(rows["tier"]), answered=rows["response_bh"].notna(),
                       before_routing=rows["met_at"] < rows["routed_at"], unanswered=rows["response_bh"].isna(),
                       response_hours=elapsed.astype("float64").round(2))


#: Wide enough for every opportunity: the pipeline-credit rule applied to all of them.
EVER = (pd.Timestamp("1900-01-01", tz="UTC"), pd.Timestamp("2200-01-01", tz="UTC"))


def closed_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                 policy: SlaPolicy | None = None) -> pd.DataFrame:
    """Opportunities closed in the period by ``as_of``, with ``won``, the won ones' ``cycle_days`` and
    ``won_amount``, and (given the policy) their ``source=`` segment by the one pipeline-credit rule. Their
    ``list`` segment is the account's place on the list when the opportunity was *created* (ABM)."""
    opps = sc.opportunity_frame(data)
    closed = opps[opps["is_closed"] & sc.within(opps["close_date"], start, end) & (opps["close_date"] <= as_of)]
    closed = closed.reset_index(drop=True)
    if policy is not None:
        credited = created_facts(data, *EVER, policy).set_index("opportunity_id")["source"]
        closed = closed.assign(source=closed["opportunity_id"].map(credited))
    return closed.assign(won=closed["is_won"],
                         cycle_days=((closed["close_date"] - closed["created_at"]) / sc.DAY).where(closed["is_won"]),
                         won_amount=closed["amount"].where(closed["is_won"], 0.0),
                         list=_list_column(data, closed["account_id"], closed["created_at"]))


def spend_facts(policy: SlaPolicy, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """``channel, spend`` of the policy's spend rows (``money``) in the period: a row spanning the period's
    edge counts by the share of its days inside, so the months of a quarter add up to the quarter."""
    rows = [(row.channel, row.amount, _utc(row.period_start), _utc(row.period_end)) for row in policy.money.spend]
    spend = pd.DataFrame(rows, columns=["channel", "amount", "period_start", "period_end"])
    if spend.empty:
        return pd.DataFrame({"channel": pd.Series(dtype=object), "spend": pd.Series(dtype="float64")})
    inside = (spend["period_end"].clip(upper=end) - spend["period_start"].clip(lower=start)).clip(lower=pd.Timedelta(0))
    share = inside / (spend["period_end"] - spend["period_start"])
    return pd.DataFrame({"channel": spend["channel"], "spend": spend["amount"] * share})


def _utc(moment) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def money_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                policy: SlaPolicy) -> pd.DataFrame:
    """The period's spend rows (``spend``) and won opportunities (``won``: 1 each) in one frame, for CAC."""
    won = closed_facts(data, start, end, as_of)
    won = won[won["won"]]
    spend = spend_facts(policy, start, end)
    return pd.concat([spend.assign(won=0.0), pd.DataFrame({"spend": 0.0, "won": np.ones(len(won))})],
                     ignore_index=True)[["spend", "won"]]


def created_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """Opportunities created in the period with their ``source=`` segment by the pipeline-credit rule."""
    opps = sc.pipeline_credit(data, start, end, policy)
    slug = dict(zip(sc.credit_parts(policy), SOURCE_SEGMENTS, strict=True))
    influenced, from_mqa = opps["influenced"].astype(bool), opps["from_mqa"].fillna(False).astype(bool)
    return opps.assign(source=opps["source"].map(slug),
                       sourced_amount=opps["amount"].where(opps["source"].eq(sc.credit_parts(policy)[0]), 0.0),
                       influenced=influenced, influenced_amount=opps["amount"].where(influenced, 0.0),
                       from_mqa=from_mqa, from_mqa_amount=opps["amount"].where(from_mqa, 0.0),
                       list=_list_column(data, opps["account_id"], opps["created_at"]))


# --- marketing, attribution, proposals (22b): facts ---

def tempo_fact_columns(tempo: pd.DataFrame) -> pd.DataFrame:
    """:func:`marketing.touch_tempo` rows with the columns the tempo metrics count."""
    status = tempo["status"]
    return tempo.reset_index(drop=True).assign(
        judged=status.ne("no tempo").to_numpy(), on_tempo=status.eq("on tempo").to_numpy(),
        below=status.eq("below").to_numpy(), above=status.eq("above").to_numpy())


def stage_fact_columns(engaged: pd.DataFrame) -> pd.DataFrame:
    """:func:`marketing.engaged_accounts` rows with ``before_mqa`` (engaged, no open MQA)."""
    rows = engaged.reset_index(drop=True)
    return rows.assign(before_mqa=rows["engaged"] & ~rows["open_mqa"])


def marketing_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                    policy: SlaPolicy) -> dict[str, pd.DataFrame]:
    """The tempo, engaged-stage and coverage families' facts: one row per account measured (policy
    ``marketing``; :mod:`abm_sla.domain.marketing`), at the period's last moment known."""
    moment = marketing.last_moment(end, as_of)
    tempo = marketing.touch_tempo(data.accounts, data.activities, data.target_accounts, start, end, as_of, policy)
    stage = marketing.engaged_accounts(data.accounts, data.activities, data.target_accounts, data.mqas, moment,
                                       policy)
    coverage = marketing.channel_coverage(data.accounts, data.activities, data.target_accounts, data.mqas, start,
                                          end, as_of, policy)
    return {"tempo": tempo_fact_columns(tempo), "stage": stage_fact_columns(stage),
            "coverage": coverage.reset_index(drop=True)}


def account_engagement(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Per account with a marketing touch in the period (index ``account_id``): the touches of each marketing
    channel (one column per type of :data:`frames.MARKETING_TOUCHES`), ``marketing_touches`` and
    ``stakeholders`` (distinct contacts with a marketing touch): the engagement metrics' own facts."""
    acts = data.activities
    touches = acts[acts["type"].isin(frames.MARKETING_TOUCHES) & sc.within(acts["occurred_at"], start, end)]
    ids = touches["account_id"].astype(str).rename("account_id")
    by_channel = pd.crosstab(ids, touches["type"]).reindex(columns=list(frames.MARKETING_TOUCHES), fill_value=0)
    by_channel.columns = list(by_channel.columns)
    return by_channel.assign(marketing_touches=by_channel.sum(axis=1),
                             stakeholders=touches.groupby(ids)["contact_id"].nunique())


def account_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The accounts on the list at the period's end (:func:`scorecard.listed_accounts`) with ``stakeholders``
    (distinct contacts with a marketing touch in the period), ``engaged`` and ``multi_stakeholder``."""
    accounts = sc.listed_accounts(data, end)
    engagement = account_engagement(data, start, end)
    contacts = accounts["account_id"].map(engagement["stakeholders"]).fillna(0)
    touches = {column: accounts["account_id"].map(engagement[column]).fillna(0).astype("float64")
               for column in (*frames.MARKETING_TOUCHES, "marketing_touches")}
    return accounts.assign(stakeholders=contacts, engaged=accounts["account_id"].isin(engagement.index),
                           multi_stakeholder=contacts >= 2, **touches,
                           **account_status(data, accounts["account_id"], start, end))


def account_status(data: SlaData, ids: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, pd.Series]:
    """Per account of ``ids``: worked by sales in the period (a sales touch), with an open opportunity or an open
    MQA episode at ``end``, quiet (no activity in the :data:`QUIET_DAYS` days to ``end``)."""
    acts = data.activities
    acts = acts[acts["occurred_at"] < end]
    acts_ids = acts["account_id"].astype(str)
    sales = acts["type"].isin(frames.SALES_TOUCHES) & sc.within(acts["occurred_at"], start, end)
    opps = sc.opportunity_frame(data)
    open_opp = (opps["created_at"] < end) & ~(opps["is_closed"] & (opps["close_date"] < end))
    mqas = data.mqas
    open_mqa = (mqas["trigger_at"] < end) & (mqas["ended_at"].isna() | (mqas["ended_at"] >= end))
    last = acts.groupby(acts_ids)["occurred_at"].max()
    last_at = ids.map(last)
    return {"worked_by_sales": ids.isin(set(acts_ids[sales])),
            "open_opportunity": ids.isin(set(opps.loc[open_opp, "account_id"].astype(str))),
            "open_mqa": ids.isin(set(mqas.loc[open_mqa, "account_id"].astype(str))),
            "quiet": last_at.isna() | (last_at <= end - pd.Timedelta(days=QUIET_DAYS))}


def escalation_facts(data: SlaData, end: pd.Timestamp, as_of: pd.Timestamp) -> pd.DataFrame:
    """The escalations open at the period's end (or ``as_of`` when earlier): :func:`scorecard.open_escalations`."""
    return sc.open_escalations(data, min(end, as_of))[["tier", "owner_id"]].reset_index(drop=True)


def meeting_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    acts = data.activities
    meetings = acts[acts["type"].eq("meeting") & sc.within(acts["occurred_at"], start, end)]
    dims = sc.account_dimensions(data).set_index("account_id")
    ids = meetings["account_id"].astype(str).reset_index(drop=True)
    return pd.DataFrame({"account_id": ids, "tier": ids.map(dims["tier"]).fillna(3).astype(int),
                         "owner_id": ids.map(dims["owner_id"]),
                         "list": _list_column(data, ids, meetings["occurred_at"].reset_index(drop=True))})


def _update_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    updates = cu.account_update_facts(data, start, end)
    return updates.assign(stale=~updates["updated"])


def facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
          policy: SlaPolicy) -> dict[str, pd.DataFrame]:
    """Every family's facts for the period, as of ``as_of``."""
    responses = response_facts(sc.response_times(data, start, end, policy))
    outcomes = sc.mqa_outcomes(data, as_of, policy)  # once: the period's MQAs and those of its weeks
    return {
        "mqas": mqa_facts(data, start, end, as_of, policy, outcomes),
        "clocks": clock_facts(data, start, end, policy),
        "team_clocks": team_clock_facts(data, start, end, as_of, policy),
        "responses": responses,
        "created": created_facts(data, start, end, policy),
        "closed": closed_facts(data, start, end, as_of, policy),
        "money": money_facts(data, start, end, as_of, policy),
        "accounts": account_facts(data, start, end),
        "meetings": meeting_facts(data, start, end),
        "leads": leads.lead_facts(data, start, end, policy),
        "intent": leads.intent_list(data, start, end, policy.intent_list or IntentList()),
        "crm_logging": logging_facts(data, start, end, policy),
        "routed_records": routed_records.record_facts(data, start, end, policy),
        "mqa_weeks": sc.weekly_mqas(data, start, end, as_of, policy, outcomes).assign(
            in_band=lambda f: f["in_band"].eq(True).astype(bool)),
        "account_updates": _update_facts(data, start, end),
        "escalations": escalation_facts(data, end, as_of),
        "reassignments": reassignment_facts(data, start, end),
        **design_table_facts(data, start, end, as_of, policy),
        **marketing_facts(data, start, end, as_of, policy),
        **commitment_facts(data, start, end, as_of, policy),
        **coordination_facts(data, start, end, as_of, policy),
        **quarterly_facts(data, start, end, as_of),
    }


# --- the SLA design's report tables (22d): facts ---

def routing_basis_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The routing_time clocks due in the period: ``tier, owner_id`` and ``basis_<n>``, whether each was measured to
    the n-th of :data:`ROUTING_BASES`: the CRM's write-back (met at mqas.writeback_done_at), the CRM's own owner
    change (met at an owner_assigned activity), else the pipeline's run (routed_at), or not met yet."""
    clocks = sc.clocks_due(data, start, end)
    clocks = clocks[clocks["clock"] == "routing_time"]
    keys = ["account_id", "trigger_at"]
    rows = clocks[[*keys, "met_at", "tier", "owner_id"]].merge(
        data.mqas.reindex(columns=[*keys, "writeback_done_at"]), on=keys, how="left")
    owner = data.activities[data.activities["type"] == OWNER_ASSIGNED]
    changed = pd.MultiIndex.from_arrays([owner["account_id"].astype(str), owner["occurred_at"]])
    by_change = pd.MultiIndex.from_arrays([rows["account_id"].astype(str), rows["met_at"]]).isin(changed)
    names = list(ROUTING_BASES)
    basis = np.select([rows["met_at"].isna().to_numpy(), rows["met_at"].eq(rows["writeback_done_at"]).to_numpy(),
                       by_change], [names[3], names[0], names[1]], names[2])
    return rows[["tier", "owner_id"]].assign(**{f"basis_{number}": basis == name for number, name in enumerate(names)})


def reassignment_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The reassignments on breach with reassigned_at in the period: ``clock`` and whether each moved the MQA
    (``reassigned``), kept it (``kept``: no other rep) and was ``written_back`` to the CRM."""
    rows = data.reassignments[sc.within(data.reassignments["reassigned_at"], start, end)]
    status = rows["status"].astype(str)
    return pd.DataFrame({"clock": rows["clock"].astype(str).to_numpy(),
                         "reassigned": status.eq("reassigned").to_numpy(), "kept": status.eq("kept").to_numpy(),
                         "written_back": rows["writeback_done_at"].notna().to_numpy()})


def escalation_level_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The escalation levels opened in the period, one row per recipient: ``clock, level``, the ``mqa`` escalated
    (account and trigger_at) and ``to_user_id``."""
    rows = data.escalations[sc.within(data.escalations["opened_at"], start, end)]
    return pd.DataFrame({"clock": rows["clock"].astype(str).to_numpy(), "level": rows["level"].astype(int).to_numpy(),
                         "mqa": (rows["account_id"].astype(str) + "|" + frames.to_utc(rows["trigger_at"]).astype(str))
                         .to_numpy(), "to_user_id": rows["to_user_id"].to_numpy()})


def logging_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """:func:`abm_sla.domain.crm_updates.logging_facts` with ``sales_late`` and ``marketing_late`` (judged, not
    logged in time)."""
    rows = cu.logging_facts(data, start, end, policy)
    late = ~rows["in_time"].astype(bool)
    return rows.assign(sales_late=rows["sales"].astype(bool) & late,
                       marketing_late=rows["marketing"].astype(bool) & late)


def top_account_facts(data: SlaData, moment: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """:func:`abm_sla.domain.commitments.top_accounts` at ``moment`` with ``revisit_age_days``: days from the latest
    agreed_at (at or before ``moment``) of each top account's list rows to ``moment`` (rounded up to 0.1,
    :func:`abm_sla.domain.marketing.age_days`; empty when never)."""
    top = cm.top_accounts(data, moment, policy)
    rows = data.target_accounts
    agreed = frames.to_utc(rows["agreed_at"]) if len(rows) else pd.Series(dtype="datetime64[ns, UTC]")
    agreed = agreed[agreed <= moment]
    last = agreed.groupby(rows.loc[agreed.index, "account_id"].astype(str)).max()
    agreed_at = top["account_id"].astype(str).map(last).astype("datetime64[ns, UTC]")
    return top.assign(revisit_age_days=marketing.age_days(moment - agreed_at))


def design_table_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                       policy: SlaPolicy) -> dict[str, pd.DataFrame]:
    """What routing time measured, the escalation levels opened and the target account list's agreement (its rows
    at the period's last moment known, :func:`abm_sla.domain.marketing.list_agreement_facts`)."""
    moment = marketing.last_moment(end, as_of)
    return {"routing_basis": routing_basis_facts(data, start, end),
            "escalation_levels": escalation_level_facts(data, start, end),
            "list_agreement": marketing.list_agreement_facts(data.target_accounts, moment,
                                                             marketing.agreement_days(policy))}


def _plan_facts(plan: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"not_started": plan["status"].eq(co.NOT_STARTED).to_numpy(dtype=bool),
                         "off_plan": plan["status"].isin([co.OFF_PLAN, co.UNPLANNED]).to_numpy(dtype=bool)})


def coordination_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                       policy: SlaPolicy) -> dict[str, pd.DataFrame]:
    """Outreach collisions, content coverage, the campaign calendar and review attendance (empty when the policy
    does not define them; attendance only for a quarter)."""
    planned = data.activities if policy.campaign_plan is not None else data.activities.iloc[0:0]
    calendar = co.campaign_calendar(planned, data.accounts, start, end, as_of)
    quarter = sc.quarter_label(start) if (start, end) == sc.parse_period(sc.quarter_label(start)) else None
    present = co.attendance(data.review_attendance, quarter, policy.review_attendance) if quarter else None
    absent = set(co.absent_sides(present, policy.review_attendance)) if present is not None else set()
    sides = present["side"] if present is not None else pd.Series(dtype="object")
    return {
        "collisions": co.collision_facts(data.activities, data.accounts, start, end, as_of, policy.coordination),
        "content": co.content_coverage(data.mqas, data.activities, start, end, as_of, policy.content_support),
        "campaigns": calendar[["campaign", "tier"]],
        "campaign_tiers": co.campaign_tiers(calendar, policy.campaign_plan),
        "campaign_plan": _plan_facts(co.plan_check(calendar, policy.campaign_plan)),
        "attendance": pd.DataFrame({"side": sides.to_numpy(), "absent": sides.isin(absent).to_numpy()}),
    }


#: How far before a period the sales follow-up clocks due in it may start (40 business hours and holidays).
FOLLOW_UP_LOOKBACK = pd.Timedelta(days=45)


def _status_facts(clocks: pd.DataFrame) -> pd.DataFrame:
    return clocks.assign(**{status: clocks["status"].eq(status) for status in CLOCK_STATUSES},
                         decided=clocks["status"].isin([MET, MISSED]))


def commitment_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                     policy: SlaPolicy) -> dict[str, pd.DataFrame]:
    """The Tier 1 commitments', top accounts' and watch list's facts (empty when the policy does not define them)."""
    moment = marketing.last_moment(end, as_of)
    follow = cm.follow_up_clocks(data, start - FOLLOW_UP_LOOKBACK, as_of, policy)
    ledger = data.tier_move_recommendations
    return {
        "conversations": cm.conversation_coverage(data, start, end, as_of, policy),
        "follow_ups": _status_facts(cm.clocks_due(follow, start, end)),
        "research": _status_facts(cm.clocks_due(cm.research_clocks(data, as_of, policy), start, end)),
        "top_accounts": top_account_facts(data, moment, policy),
        "briefings": cm.briefings(data, ledger if len(ledger) else None, start, end, as_of, policy),
    }
