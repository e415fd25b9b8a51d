"""The metrics catalog: every number the reports show, defined once (pure, vectorized, no clock).

Each :class:`Metric` has a stable id, a label, a one-sentence definition, its numerator and denominator,
the segments it can be cut by (``tier``, ``owner``, ``source``, ``list``), the timestamp that puts an item in
a period, whether it adds up over consecutive periods, and the policy key of its target. :func:`compute`
evaluates the whole catalog for a period ``[start, end)`` as of ``as_of`` into one long table
(:data:`COLUMNS`), the table written beside every report as ``<report>.metrics.csv`` and by
``abm-sla export metrics``. The reports read their numbers from it (:func:`value`).

Row-level facts come from one place each: an MQA's verdict from the policy's dispositions
(:func:`abm_sla.domain.scorecard.mqa_outcomes`), an opportunity's source from the one pipeline-credit rule
(:func:`abm_sla.domain.scorecard.pipeline_credit`), a clock's status from ``sla_clocks``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import pandas as pd

from abm_sla.domain import commitments as cm
from abm_sla.domain import coordination as co
from abm_sla.domain import crm_updates as cu
from abm_sla.domain import dispositions, frames, leads, marketing, regions, routed_records
from abm_sla.domain import scorecard as sc
from abm_sla.domain import team_clocks as tc
from abm_sla.domain.policy import DISPOSITIONS, IntentList, SlaPolicy
from abm_sla.domain.scorecard import SlaData
from abm_sla.domain.sla import OPTIONAL_CLOCKS, OWNER_ASSIGNED

#: The columns of every metrics table (stable: BI tools read them).
COLUMNS = ["report", "period_start", "period_end", "metric", "segment", "numerator", "denominator", "value",
           "unit", "target", "verdict", "additive"]
ALL = "all"
#: The units of hours (business or calendar), whose percentiles are kept to two decimals.
HOUR_UNITS = ("hours", "calendar_hours")
SEGMENTS = ("tier", "owner", "source", "list", "region", "clock", "level")
#: ``source=`` segment names of the pipeline-credit rule's three parts (sourced, influenced only, sales).
SOURCE_SEGMENTS = ("marketing", "influenced", "sales")
MET, MISSED = "met", "missed"


@dataclass(frozen=True)
class Metric:
    """One catalog entry."""

    id: str
    label: str
    definition: str
    unit: str  # count, money, pct (100 × numerator / denominator), hours (business), calendar_hours, days
    family: str  # which facts it is computed from (mqas, clocks, responses, created, closed, accounts, meetings)
    numerator: str
    denominator: str = ""
    segments: tuple[str, ...] = ("tier", "owner")
    period_by: str = ""
    target: str = ""
    kind: str = "count"  # count, sum, ratio (a pct), per (numerator / denominator, empty when either is 0),
    # mean (numerator / denominator, empty when the denominator is 0), median, p80 and p90 (linear),
    # per_month (numerator / the calendar months of the period elapsed by as_of, :func:`elapsed_months`)
    column: str = ""  # the fact column counted, summed or taken the median of
    over: str = ""  # a ratio's denominator column (boolean); empty: every fact row

    @property
    def additive(self) -> bool:
        """Counts and sums add up over consecutive periods; rates, medians, snapshots and distinct counts (a lead
        or an intent-list account of two months is one of their quarter) do not."""
        return self.kind in ("count", "sum") and self.family not in SNAPSHOT_FAMILIES

    @property
    def counted(self) -> tuple[bool, bool]:
        """Whether the numerator and the denominator count items (written as integers), not money or hours."""
        numerator = self.kind not in QUANTILES and not _money(self.column)
        denominator = bool(self.denominator) and not _money(self.over) and self.kind != PER_MONTH
        return numerator, denominator


#: The percentile kinds and the quantile each takes (linear interpolation, of the answered items).
QUANTILES = {"median": 0.5, "p80": 0.8, "p90": 0.9}
#: A rate per calendar month: its denominator is the months of the period elapsed by as_of, not a fact column.
PER_MONTH = "per_month"


#: Fact columns holding amounts (a metric over them has money, not a count, as numerator or denominator).
MONEY_COLUMNS = ("amount", "sourced_amount", "won_amount", "spend")


def _money(column: str) -> bool:
    """Whether a fact column holds amounts (:data:`MONEY_COLUMNS`, or any ``*_amount``)."""
    return column in MONEY_COLUMNS or column.endswith("_amount")
_MQA = "mqas.trigger_at"
_LAST_MOMENT = "accounts at the period's last moment known (min(end, as_of))"
#: Families measured at the period's last moment (a snapshot: the weeks of a month do not add up to it): the
#: accounts at one moment, the escalations open at the period's end, and the distinct counts (a lead or an
#: intent-list account of two months is one of their quarter).
SNAPSHOT_FAMILIES = ("accounts", "escalations", "tempo", "stage", "coverage", "conversations", "top_accounts",
                     "leads", "intent", "account_updates", "campaign_tiers", "campaign_plan", "attendance",
                     "list_agreement")
_MQA_SEGMENTS = ("tier", "owner", "list")
_CLOCK_SEGMENTS = ("tier", "owner", "region")
_OPP_SEGMENTS = ("tier", "owner", "source", "list", "region")


def _clock_metric(clock: str, family: str = "clocks", period_by: str = "sla_clocks.due_at") -> Metric:
    name = clock.replace("_", " ")
    return Metric(f"{clock}_met_rate", f"{name.capitalize()} met", f"Share of the {name} clocks due in the period "
                  "that were met, of those decided (met or missed; pending clocks are not counted).", "pct",
                  family, f"{name} clocks met", f"{name} clocks met or missed",
                  (*_CLOCK_SEGMENTS, TIER_OWNER) if clock == "first_touch" else _CLOCK_SEGMENTS,
                  period_by, "targets.first_touch_met_pct" if clock == "first_touch" else "",
                  "ratio", f"{clock}_met", f"{clock}_decided")


def _clock_count_metrics(clock: str, family: str = "clocks",
                         period_by: str = "sla_clocks.due_at") -> tuple[Metric, ...]:
    """The clock family's counts of one clock: met, missed and pending clocks due in the period."""
    name = clock.replace("_", " ")
    return tuple(Metric(f"{clock}_clocks_{status}", f"{name.capitalize()} clocks {status}",
                        f"{name.capitalize()} clocks due in the period whose status is {status}.", "count", family,
                        f"{name} clocks {status}", "", _CLOCK_SEGMENTS, period_by, "", "count",
                        f"{clock}_{status}")
                 for status in CLOCK_STATUSES)


#: Issue 26: the team clocks (requests.csv, hot flags), evaluated at report time as of ``as_of``; due time =
#: requested_at or the hot flag's occurred_at + the policy window.
_TEAM_PERIOD = "due_at of the request (requests.requested_at) or hot flag (activities.occurred_at) + window"


#: The statuses a clock can have (sla_clocks.status), each counted by the clock family.
CLOCK_STATUSES = ("met", "missed", "pending")
_ALL_CLOCKS = (*sc.CLOCKS, sc.MARKETING_RESPONSE, *OPTIONAL_CLOCKS)


def clock_metric_ids(clock: str) -> dict[str, str]:
    """:func:`scorecard.clock_compliance`'s columns and the catalog metric each is read from."""
    return {**{status: f"{clock}_clocks_{status}" for status in CLOCK_STATUSES}, "met_pct": f"{clock}_met_rate"}


# --- report tables (22a) ---
#: The dispositions the disposition-mix metrics count: the built-in ones, ``other`` (a name only the policy's
#: map adds), ``unknown`` (a status value the map lacks) and ``none`` (no status change yet).
OTHER_DISPOSITION, NO_DISPOSITION = "other", "none"
MIX_DISPOSITIONS = (*DISPOSITIONS, OTHER_DISPOSITION, dispositions.UNKNOWN, NO_DISPOSITION)
#: An account on the list is quiet after this many days without any activity (the weekly Tier 1 status).
QUIET_DAYS = 30
#: The cross segment of the headline's per-owner split: ``tier=1,owner=U003``.
TIER_OWNER = "tier_owner"


def disposition_metric_id(name: str) -> str:
    """The catalog id of the count of MQAs with disposition ``name`` (:data:`MIX_DISPOSITIONS`)."""
    return f"mqas_disposition_{name}"


def _disposition_metric(name: str) -> Metric:
    what = {OTHER_DISPOSITION: "a disposition the policy's map adds beyond the built-in ones",
            dispositions.UNKNOWN: "a status value the policy's map does not know",
            NO_DISPOSITION: "no status change yet"}.get(name, f"disposition {name}")
    return Metric(disposition_metric_id(name), f"MQAs: {name.replace('_', ' ')}", f"MQAs of the period whose "
                  f"disposition (that of its verdict, else the latest status of its episode) is {what}.", "count",
                  "mqas", f"MQAs with {what}", "", _MQA_SEGMENTS, _MQA, "", "count", f"disposition_{name}")


_ACCOUNT_STATUS = (
    ("accounts_worked_by_sales", "Accounts worked by sales", "with at least one sales touch in the period",
     "worked_by_sales", "activities.occurred_at"),
    ("accounts_with_open_opportunity", "Accounts with an open opportunity", "with an opportunity created before "
     "the period's end and not closed by then", "open_opportunity", "opportunities.created_at/close_date"),
    ("accounts_with_open_mqa", "Accounts with an open MQA", "with an MQA fired before the period's end whose "
     "episode had not ended by then", "open_mqa", "mqas.trigger_at/ended_at"),
    ("accounts_quiet", f"Accounts quiet for {QUIET_DAYS}+ days", f"without any activity in the {QUIET_DAYS} days "
     "to the period's end", "quiet", "activities.occurred_at"),
)


# --- the SLA design's report tables (22d): what routing time measured, escalations, the list's agreement ---
#: What a routing_time clock due in the period was measured to (the feedback loop's routing-basis table), in the
#: table's order, and the catalog metric counting each.
ROUTING_BASES = {"CRM write-back": "routing_clocks_crm_writeback",
                 "CRM owner change": "routing_clocks_crm_owner_change",
                 "pipeline run (routed_at)": "routing_clocks_pipeline_run",
                 "not routed yet": "routing_clocks_not_routed"}
_ROUTING_BASIS_WHAT = {"CRM write-back": "met at the pipeline's write-back of the owner to the CRM "
                       "(mqas.writeback_done_at)",
                       "CRM owner change": "met at an owner change the CRM recorded itself (an owner_assigned "
                       "activity)",
                       "pipeline run (routed_at)": "met when the pipeline routed the MQA (routed_at), neither a "
                       "write-back nor a CRM owner change seen",
                       "not routed yet": "not met (no owner yet)"}
#: The cross segment of the escalations-by-clock-and-level table: ``clock=first_touch,level=2``.
CLOCK_LEVEL = "clock_level"
#: A kind counting the distinct values of a fact column (an MQA, a person) per segment: not additive.
DISTINCT = "distinct"
#: A kind taking the smallest value of a fact column per segment (the age of the youngest agreement).
SMALLEST = "min"
_ESCALATION_SEGMENTS = ("clock", "level", CLOCK_LEVEL)
_LIST_WINDOW = "target_accounts.added_at / removed_at / agreed_at (agreement_days to the period's last moment)"

_DESIGN_TABLE_METRICS: tuple[Metric, ...] = (
    *(Metric(metric_id, f"Routing clocks measured to: {basis}", f"routing_time clocks due in the period "
             f"{_ROUTING_BASIS_WHAT[basis]}.", "count", "routing_basis", f"routing clocks measured to {basis}", "",
             ("tier", "owner"), "sla_clocks.due_at", "", "count", f"basis_{number}")
      for number, (basis, metric_id) in enumerate(ROUTING_BASES.items())),
    Metric("escalated_mqas", "MQAs escalated", "Distinct MQAs (account and trigger_at) with an escalation level "
           "opened in the period; per clock, per level and per clock and level (segment clock_level: "
           "clock=first_touch,level=2).", "count", "escalation_levels", "MQAs escalated", "",
           _ESCALATION_SEGMENTS, "escalations.opened_at", "", DISTINCT, "mqa"),
    Metric("escalation_recipients", "People escalated to", "Distinct people (escalations.to_user_id) an escalation "
           "level opened in the period went to.", "count", "escalation_levels", "people escalated to", "",
           _ESCALATION_SEGMENTS, "escalations.opened_at", "", DISTINCT, "to_user_id"),
    Metric("list_rows_added", "Target account list: accounts added", "Rows of the target account list added in "
           "the target_account_list.agreement_days (31) up to the period's last moment known.", "count",
           "list_agreement", "list rows added", "", (), _LIST_WINDOW, "", "count", "added"),
    Metric("list_rows_removed", "Target account list: accounts removed", "Rows of the target account list removed "
           "in the target_account_list.agreement_days (31) up to the period's last moment known.", "count",
           "list_agreement", "list rows removed", "", (), _LIST_WINDOW, "", "count", "removed"),
    Metric("list_agreement_age_days", "Days since the list was last agreed", "Days from the latest agreed_at of "
           "the target account list (at or before the period's last moment known) to that moment, rounded up to "
           "0.1; empty when never agreed. Met when at most target_account_list.agreement_days (the monthly "
           "agreement).", "days",
           "list_agreement", "days since the last agreement", "", (), _LIST_WINDOW,
           "target_account_list.agreement_days", SMALLEST, "agreement_age_days"),
    Metric("top_accounts_revisit_age_days", "Days since the top accounts were last revisited", "Days from the "
           "latest agreed_at of the top accounts' list rows (at or before the period's last moment known) to that "
           "moment, rounded up to 0.1; empty when never agreed. Met when at most "
           "target_account_list.top_accounts.revisit_days.",
           "days", "top_accounts", "days since the last revisit", "", (), "target_accounts.agreed_at (the top "
           "accounts' rows)", "target_account_list.top_accounts.revisit_days", SMALLEST, "revisit_age_days"),
    *(Metric(f"{side}_activities_logged_late", f"{label} logged late", f"{label} of policy "
             f"crm_updates.{side}_types that happened in the period and were logged (logged_at) more than "
             "crm_updates.hours (24) after occurred_at.", "count", "crm_logging", f"{label.lower()} logged late", "",
             ("tier", "owner"), "activities.occurred_at", "", "count", f"{side}_late")
      for side, label in (("sales", "Sales meetings and calls"), ("marketing", "Engaged-lead touches"))),
)


CATALOG: tuple[Metric, ...] = (
    Metric("mqas", "MQAs", "MQAs fired in the period (one per account per episode).", "count", "mqas",
           "MQAs fired", "", _MQA_SEGMENTS, _MQA, "targets.monthly_mqa_commitments", "count"),
    Metric("mqas_with_verdict", "MQAs with a verdict", "MQAs of the period whose episode has an accepted or "
           "rejected disposition (the policy's verdict classes).", "count", "mqas", "MQAs with a verdict", "",
           _MQA_SEGMENTS, _MQA, "", "count", "has_verdict"),
    Metric("mqas_accepted", "Accepted MQAs (SQLs)", "MQAs of the period sales accepted: the latest verdict "
           "disposition of the episode is in the policy's accepted class.", "count", "mqas", "accepted MQAs", "",
           _MQA_SEGMENTS, _MQA, "", "count", "accepted"),
    Metric("mqas_rejected", "Rejected MQAs", "MQAs of the period sales rejected or disqualified: the latest "
           "verdict disposition of the episode is in the policy's rejected class.", "count", "mqas",
           "rejected MQAs", "", _MQA_SEGMENTS, _MQA, "", "count", "rejected"),
    Metric("mqas_converted", "MQAs reaching an opportunity", "MQAs of the period with an opportunity created on "
           "the account at or after trigger_at (before its next MQA).", "count", "mqas", "MQAs with an opportunity",
           "", _MQA_SEGMENTS, _MQA, "", "count", "converted"),
    Metric("acceptance_rate", "Acceptance (MQA → SQL)", "Share of the period's MQAs that sales accepted.", "pct",
           "mqas", "accepted MQAs", "MQAs fired", _MQA_SEGMENTS, _MQA, "targets.tier1_acceptance_pct", "ratio",
           "accepted"),
    Metric("rejection_rate", "Rejection", "Share of the period's MQAs with a verdict that sales rejected or "
           "disqualified (the one-page SLA's recalibration band).", "pct", "mqas", "rejected MQAs",
           "MQAs with a verdict", _MQA_SEGMENTS, _MQA, "targets.rejection_rate", "ratio", "rejected", "has_verdict"),
    Metric("disqualification_rate", "Disqualified", "Share of the period's MQAs that sales rejected or "
           "disqualified, of all MQAs fired.", "pct", "mqas", "rejected MQAs", "MQAs fired", _MQA_SEGMENTS, _MQA,
           "", "ratio", "rejected"),
    Metric("mqa_to_opportunity_rate", "MQA → opportunity", "Share of the period's MQAs that reached an "
           "opportunity.", "pct", "mqas", "MQAs with an opportunity", "MQAs fired", _MQA_SEGMENTS, _MQA,
           "targets.tier2_mqa_to_opportunity_pct", "ratio", "converted"),
    Metric("sql_to_opportunity_rate", "SQL → opportunity", "Share of the period's accepted MQAs that reached an "
           "opportunity.", "pct", "mqas", "accepted MQAs with an opportunity", "accepted MQAs", _MQA_SEGMENTS, _MQA,
           "targets.sql_to_opportunity_pct", "ratio", "accepted_converted", "accepted"),
    *(_clock_metric(clock) for clock in _ALL_CLOCKS),
    # -- clock counts (per tier and owner: the clock tables) --
    *(metric for clock in _ALL_CLOCKS for metric in _clock_count_metrics(clock)),
    # -- team clocks (issue 26): requests between the teams and hot accounts --
    *(_clock_metric(clock, "team_clocks", _TEAM_PERIOD) for clock in tc.TEAM_CLOCKS),
    *(metric for clock in tc.TEAM_CLOCKS for metric in _clock_count_metrics(clock, "team_clocks", _TEAM_PERIOD)),
    Metric("first_touch_response_median_hours", "Time to first contact (median)", "Median business hours from "
           "routing to the first sales touch, over the first-touch clocks due in the period that were answered "
           "(a touch before routing counts 0).", "hours", "responses", "median business hours",
           "first touches answered", _CLOCK_SEGMENTS, "sla_clocks.due_at", "", "median", "response_bh"),
    # -- first-touch response (per tier and owner: the response tables) --
    Metric("first_touch_response_p90_hours", "Time to first contact (p90)", "90th percentile (linear "
           "interpolation) of the business hours from routing to the first sales touch, over the first-touch clocks "
           "due in the period that were answered.", "hours", "responses", "p90 business hours",
           "first touches answered", _CLOCK_SEGMENTS, "sla_clocks.due_at", "", "p90", "response_bh"),
    Metric("first_touches_answered", "First touches answered", "First-touch clocks due in the period with a "
           "first sales touch.", "count", "responses", "first touches answered", "", _CLOCK_SEGMENTS,
           "sla_clocks.due_at", "", "count", "answered"),
    Metric("first_touches_before_routing", "First touches before routing", "First-touch clocks due in the period "
           "whose first sales touch came before routing (counted as 0 business hours).", "count", "responses",
           "first touches before routing", "", _CLOCK_SEGMENTS, "sla_clocks.due_at", "", "count", "before_routing"),
    Metric("first_touches_unanswered", "First touches unanswered", "First-touch clocks due in the period without "
           "a business-hour response (no touch, or no routing time).", "count", "responses",
           "first touches unanswered", "", _CLOCK_SEGMENTS, "sla_clocks.due_at", "", "count", "unanswered"),
    Metric("opportunities_created", "Opportunities created", "Opportunities created in the period.", "count",
           "created", "opportunities created", "", _OPP_SEGMENTS, "opportunities.created_at", "", "count"),
    Metric("pipeline_created", "Pipeline created", "Amount of the opportunities created in the period; the "
           "source segments are the policy's one pipeline-credit rule.", "money", "created", "amount", "",
           _OPP_SEGMENTS, "opportunities.created_at", "", "sum", "amount"),
    Metric("marketing_sourced_pipeline_share", "Marketing-sourced share of pipeline", "Share of the pipeline "
           "created in the period that the pipeline-credit rule credits to marketing as sourced.", "pct", "created",
           "marketing-sourced amount", "amount created", ("tier", "owner", "list"), "opportunities.created_at", "",
           "ratio", "sourced_amount", "amount"),
    Metric("opportunities_closed", "Opportunities closed", "Opportunities closed in the period (close_date).",
           "count", "closed", "opportunities closed", "", ("tier", "owner", "list"), "opportunities.close_date",
           "", "count"),
    Metric("opportunities_won", "Opportunities won", "Opportunities closed won in the period.", "count", "closed",
           "opportunities won", "", ("tier", "owner", "list"), "opportunities.close_date", "", "count", "won"),
    Metric("win_rate", "Win rate (opportunity → won)", "Share of the opportunities closed in the period that were "
           "won.", "pct", "closed", "opportunities won", "opportunities closed", ("tier", "owner", "list", TIER_OWNER),
           "opportunities.close_date", "targets.tier1_win_rate_pct (Tier 1), targets.opportunity_to_won_pct (all)",
           "ratio", "won"),
    Metric("sales_cycle_median_days", "Sales cycle (median)", "Median days from created_at to close_date of the "
           "opportunities won in the period.", "days", "closed", "median days", "opportunities won",
           ("tier", "owner", "list"), "opportunities.close_date", "targets.sales_cycle_days_max", "median",
           "cycle_days"),
    Metric("won_revenue", "Won revenue", "Amount of the opportunities closed won in the period; the source "
           "segments are the policy's one pipeline-credit rule.", "money", "closed", "won amount", "",
           _OPP_SEGMENTS, "opportunities.close_date", "", "sum", "won_amount"),
    Metric("marketing_spend", "Marketing spend", "Spend of the period (policy `money`: spend rows and "
           "`spend_file`; a row spanning the period's edge counts by its share of days inside).", "money", "money",
           "spend", "", (), "spend.period_start/period_end", "", "sum", "spend"),
    Metric("cac", "Customer acquisition cost (CAC)", "Marketing spend of the period per opportunity closed won "
           "in it (empty without spend or without a won deal).", "money", "money", "spend", "opportunities won",
           (), "opportunities.close_date", "targets.cac_max", "per", "spend", "won"),
    Metric("accounts_on_list", "Accounts on the list", "Accounts on the target account list at the period's last "
           "moment (every account created by then when no list is recorded).", "count", "accounts",
           "accounts on the list", "", ("tier", "owner"), "accounts at the period's end", "", "count"),
    Metric("engagement_rate", "Engagement rate", "Share of the accounts on the list with at least one marketing "
           "touch in the period.", "pct", "accounts", "accounts with a marketing touch", "accounts on the list",
           ("tier", "owner"), "activities.occurred_at", "targets.engagement_rate_pct", "ratio", "engaged"),
    Metric("multi_stakeholder_rate", "Multi-stakeholder engagement", "Share of the accounts on the list with "
           "marketing touches from at least two contacts in the period.", "pct", "accounts",
           "accounts with >= 2 engaged contacts", "accounts on the list", ("tier", "owner"),
           "activities.occurred_at", "targets.multi_stakeholder_pct", "ratio", "multi_stakeholder"),
    Metric("engaged_contacts", "Engaged contacts", "Distinct contacts with a marketing touch in the period, over "
           "the accounts on the list (per account in `abm-sla export engagement`).", "count", "accounts",
           "contacts with a marketing touch", "", ("tier", "owner"), "activities.occurred_at", "", "sum",
           "stakeholders"),
    Metric("meetings_booked", "Meetings booked", "Activities of type meeting in the period.", "count", "meetings",
           "meetings", "", ("tier", "owner", "list"), "activities.occurred_at", "", "count"),
    # --- report tables (22a) ---
    *(_disposition_metric(name) for name in MIX_DISPOSITIONS),
    Metric("mqas_accepted_converted", "Accepted MQAs reaching an opportunity", "Accepted MQAs of the period with "
           "an opportunity created on the account at or after trigger_at (before its next MQA).", "count", "mqas",
           "accepted MQAs with an opportunity", "", _MQA_SEGMENTS, _MQA, "", "count", "accepted_converted"),
    Metric("mqas_accepted_won", "Accepted MQAs won", "Accepted MQAs of the period whose opportunity was closed "
           "won by as_of.", "count", "mqas", "accepted MQAs won", "", _MQA_SEGMENTS, _MQA, "", "count",
           "accepted_won"),
    Metric("mqas_accepted_lost", "Accepted MQAs lost", "Accepted MQAs of the period whose opportunity was closed "
           "lost by as_of.", "count", "mqas", "accepted MQAs lost", "", _MQA_SEGMENTS, _MQA, "", "count",
           "accepted_lost"),
    Metric("mqas_accepted_open_opportunity", "Accepted MQAs with an open opportunity", "Accepted MQAs of the "
           "period whose opportunity was still open at as_of.", "count", "mqas",
           "accepted MQAs with an open opportunity", "", _MQA_SEGMENTS, _MQA, "", "count", "accepted_open"),
    Metric("sql_to_won_rate", "SQL → won", "Share of the period's accepted MQAs whose opportunity was won.", "pct",
           "mqas", "accepted MQAs won", "accepted MQAs", _MQA_SEGMENTS, _MQA, "", "ratio", "accepted_won",
           "accepted"),
    *(Metric(id_, label, f"Accounts on the list at the period's end {what}.", "count", "accounts",
             label.lower(), "", ("tier", "owner"), period_by, "", "count", column)
      for id_, label, what, column, period_by in _ACCOUNT_STATUS),
    Metric("escalations_open", "Open escalations", "Escalations open at the period's end: episode open and the "
           "escalated clock still unmet (one per account, MQA and clock, as the reports' open escalations list).",
           "count", "escalations", "open escalations", "", ("tier", "owner"), "escalations.opened_at", "", "count"),
    Metric("clocks_missed", "Clocks missed (every clock)", "SLA clocks of every kind due in the period that were "
           "missed.", "count", "clocks", "clocks missed", "", _CLOCK_SEGMENTS, "sla_clocks.due_at", "", "count",
           "missed"),
    *_DESIGN_TABLE_METRICS,  # the SLA design's report tables (22d)
    # --- marketing, attribution, proposals (22b) ---
    # touch tempo (policy marketing.tempo), per account measured at the period's last moment known
    Metric("tempo_accounts", "Accounts measured for tempo", "Accounts on the target account list (every account "
           "when none is recorded) at the period's last moment known.", "count", "tempo", "accounts measured", "",
           ("tier",), _LAST_MOMENT, "", "count"),
    Metric("tempo_accounts_judged", "Accounts with a tempo", "Accounts measured whose tier has a tempo in the "
           "policy (marketing.tempo).", "count", "tempo", "accounts with a tempo", "", ("tier",), _LAST_MOMENT, "",
           "count", "judged"),
    Metric("tempo_on", "Accounts on tempo", "Accounts with a tempo whose marketing touches per month (or quarter) "
           "in the period are within the tier's min and max (both included).", "count", "tempo",
           "accounts on tempo", "", ("tier",), "activities.occurred_at", "", "count", "on_tempo"),
    Metric("tempo_below", "Accounts below tempo", "Accounts with a tempo touched less than the tier's min per "
           "month (or quarter) in the period.", "count", "tempo", "accounts below tempo", "", ("tier",),
           "activities.occurred_at", "", "count", "below"),
    Metric("tempo_above", "Accounts above tempo", "Accounts with a tempo touched more than the tier's max per "
           "month (or quarter) in the period.", "count", "tempo", "accounts above tempo", "", ("tier",),
           "activities.occurred_at", "", "count", "above"),
    Metric("tempo_on_rate", "On tempo", "Share of the accounts with a tempo that were on tempo in the period.",
           "pct", "tempo", "accounts on tempo", "accounts with a tempo", ("tier",), "activities.occurred_at",
           "targets.custom (tempo_on_pct)", "ratio", "on_tempo", "judged"),
    # the engaged-account stage (policy marketing.engaged_account) at the period's last moment known
    Metric("stage_accounts", "Accounts measured for the engaged stage", "Accounts measured for the engaged-account "
           "stage (on the list when marketing.engaged_account.listed_only and a list is recorded) at the period's "
           "last moment known.", "count", "stage", "accounts measured", "", ("tier",), _LAST_MOMENT, "", "count"),
    Metric("engaged_accounts", "Engaged accounts", "Accounts with at least marketing.engaged_account.contacts_min "
           "distinct contacts with a marketing touch in the within_days before the period's last moment known.",
           "count", "stage", "engaged accounts", "", ("tier",), _LAST_MOMENT, "", "count", "engaged"),
    Metric("engaged_before_mqa", "Engaged, before the MQA", "Engaged accounts without an open MQA at the period's "
           "last moment known (still in the stage before the hand-off).", "count", "stage",
           "engaged accounts without an open MQA", "", ("tier",), _LAST_MOMENT, "", "count", "before_mqa"),
    Metric("engaged_account_rate", "Engaged accounts %", "Share of the accounts measured for the stage that are "
           "engaged.", "pct", "stage", "engaged accounts", "accounts measured", ("tier",), _LAST_MOMENT,
           "targets.custom (engaged_accounts)", "ratio", "engaged"),
    # channel coverage (policy marketing.channels, marketing.coverage) of the engaged accounts
    Metric("coverage_engaged", "Engaged accounts (coverage)", "Engaged accounts at the period's last moment known "
           "whose channel coverage is measured.", "count", "coverage", "engaged accounts", "", ("tier",),
           _LAST_MOMENT, "", "count"),
    Metric("coverage_covered", "Engaged accounts covered", "Engaged accounts whose marketing touches in the "
           "period reached at least marketing.coverage.channels_min channels.", "count", "coverage",
           "engaged accounts covered", "", ("tier",), "activities.occurred_at", "", "count", "covered"),
    Metric("channel_coverage_rate", "Channel coverage", "Share of the engaged accounts covered on enough channels "
           "in the period.", "pct", "coverage", "engaged accounts covered", "engaged accounts", ("tier",),
           "activities.occurred_at", "targets.custom (channel_coverage_pct)", "ratio", "covered"),
    # marketing touches of the accounts on the list (the monthly channel table)
    Metric("marketing_touches", "Marketing touches", "Marketing touches (activities of a marketing type) in the "
           "period on the accounts on the list.", "count", "accounts", "marketing touches", "", ("tier", "owner"),
           "activities.occurred_at", "", "sum", "marketing_touches"),
    *(Metric(f"marketing_touches_{kind}", f"Marketing touches: {kind.replace('_', ' ')}", f"Activities of type "
             f"{kind} in the period on the accounts on the list.", "count", "accounts", f"{kind} touches", "",
             ("tier", "owner"), "activities.occurred_at", "", "sum", kind) for kind in frames.MARKETING_TOUCHES),
    Metric("touches_per_account", "Marketing touches per account", "Marketing touches in the period per account "
           "on the list.", "count", "accounts", "marketing touches",
           "accounts on the list", ("tier", "owner"), "activities.occurred_at", "", "mean", "marketing_touches"),
    Metric("engaged_contacts_per_account", "Engaged contacts per engaged account", "Distinct contacts with a "
           "marketing touch in the period per account on the list with one.", "count",
           "accounts", "engaged contacts", "accounts with a marketing touch", ("tier", "owner"),
           "activities.occurred_at", "targets.engaged_contacts_per_account", "mean", "stakeholders", "engaged"),
    # attribution: the one pipeline-credit rule's influenced part and the pipeline that came from an MQA
    Metric("opportunities_influenced", "Marketing-influenced opportunities", "Opportunities created in the period "
           "with a marketing touch in the pipeline-credit lookback (sourced + influenced only).", "count", "created",
           "marketing-influenced opportunities", "", _OPP_SEGMENTS, "opportunities.created_at", "", "count",
           "influenced"),
    Metric("pipeline_influenced", "Marketing-influenced pipeline", "Amount of the opportunities created in the "
           "period with a marketing touch in the pipeline-credit lookback.", "money", "created",
           "marketing-influenced amount", "", _OPP_SEGMENTS, "opportunities.created_at", "", "sum",
           "influenced_amount"),
    Metric("opportunities_from_mqa", "Opportunities from an MQA", "Opportunities created in the period on an "
           "account with an MQA fired by created_at.", "count", "created", "opportunities from an MQA", "",
           _OPP_SEGMENTS, "opportunities.created_at", "", "count", "from_mqa"),
    Metric("pipeline_from_mqa", "Pipeline from an MQA", "Amount of the opportunities created in the period on an "
           "account with an MQA fired by created_at.", "money", "created", "amount from an MQA", "", _OPP_SEGMENTS,
           "opportunities.created_at", "", "sum", "from_mqa_amount"),
    # --- the quarterly proposals (22d): the response percentile and MQA run-rate they argue from ---
    Metric("first_touch_response_p80_hours", "Time to first contact (p80)", "80th percentile (linear "
           "interpolation) of the business hours from routing to the first sales touch, over the first-touch clocks "
           "due in the period that were answered (the quarterly proposal of business-hour windows).", "hours",
           "responses", "p80 business hours", "first touches answered", _CLOCK_SEGMENTS, "sla_clocks.due_at", "",
           "p80", "response_bh"),
    Metric("first_touch_response_p80_calendar_hours", "Time to first contact (p80, calendar hours)", "80th "
           "percentile (linear interpolation) of the calendar hours from routing to the first sales touch (0 when "
           "before routing), over the first-touch clocks due in the period that were answered (the quarterly "
           "proposal of hour and day windows; days = hours / 24).", "calendar_hours", "responses",
           "p80 calendar hours", "first touches answered", _CLOCK_SEGMENTS, "sla_clocks.due_at", "", "p80",
           "response_hours"),
    Metric("mqa_run_rate", "MQAs per month (run-rate)", "MQAs fired in the period per calendar month of it elapsed "
           "by as_of (a part month by its share of days): the monthly run-rate the quarterly proposal sets "
           "commitments from.", "count", "mqas", "MQAs fired", "months of the period elapsed", _MQA_SEGMENTS, _MQA,
           "", PER_MONTH),
    # -- Tier 1 commitments, the top of the list and the watch list (docs/designs/tier1-commitments.md) --
    Metric("tier1_accounts", "Tier 1 accounts", "Accounts of the tiers of policy tier1_commitments (Tier 1) created "
           "by the period's last moment.", "count", "conversations", "accounts", "", ("tier", "owner"),
           "accounts at the period's end", "", "count"),
    Metric("tier1_conversation_rate", "Tier 1 accounts with a qualified conversation", "Share of the Tier 1 "
           "accounts with at least one qualified conversation in the period (a meeting or call with a contact who "
           "had a marketing touch in the days before it; the commitment is one per account per quarter).", "pct",
           "conversations", "accounts with a qualified conversation", "Tier 1 accounts", ("tier", "owner"),
           "activities.occurred_at", "", "ratio", "conversed"),
    *(Metric(f"{name}_{status}", f"{label} {status}", f"{label} clocks due in the period whose status is "
             f"{status}.", "count", family, f"{label.lower()} clocks {status}", "", ("tier", "owner"),
             f"{family}.due_at", "", "count", status)
      for name, label, family in (("sales_follow_up", "Sales follow-up", "follow_ups"),
                                  ("campaign_research", "Campaign research", "research"))
      for status in CLOCK_STATUSES),
    Metric("sales_follow_up_met_rate", "Sales contact within 5 business days of a marketing touch", "Share of the "
           "sales follow-up clocks due in the period that were met, of those decided: a marketing touch on a Tier 1 "
           "account (the first of a run not yet answered) answered by a sales touch within the window.", "pct",
           "follow_ups", "follow-ups met", "follow-ups met or missed", ("tier", "owner"), "follow_ups.due_at", "",
           "ratio", "met", "decided"),
    Metric("campaign_research_met_rate", "Research within 30 days of a campaign start", "Share of the campaign "
           "research clocks due in the period that were met, of those decided: an account_research activity on a "
           "Tier 1 account within the window after its campaign_start.", "pct", "research", "research met",
           "research met or missed", ("tier", "owner"), "research.due_at", "", "ratio", "met", "decided"),
    Metric("top_accounts", "Top accounts of the list", "Accounts in the top of the target account list at the "
           "period's last moment (policy target_account_list.top_accounts.size; by priority, else by score).",
           "count", "top_accounts", "top accounts", "", ("tier", "owner"), "accounts at the period's end", "",
           "count"),
    Metric("top_accounts_reached_rate", "Top accounts reached personally by sales", "Share of the top accounts with "
           "a sales touch by a person (an owner_id) in the reach_days (a month) up to the period's last moment.",
           "pct", "top_accounts", "top accounts reached", "top accounts", ("tier", "owner"),
           "activities.occurred_at", "", "ratio", "reached"),
    Metric("watch_list_promotions", "Watch-list promotions to brief", "Tier 3 accounts recommended for Tier 1 or 2 "
           "(tier-move rules promote_3_to_1, promote_3_to_2) in the period: each a briefing task to the owner.",
           "count", "briefings", "promotions recommended", "", ("owner",), "tier_move_recommendations.recommended_at",
           "", "count"),
    # -- leads (ABM template; abm_sla.domain.leads) --
    Metric("engaged_leads", "Engaged leads from the list", "Contacts of accounts on the list with a marketing "
           "touch in the period (leads).", "count", "leads", "leads", "", ("tier", "owner"),
           "activities.occurred_at", "leads.engaged_leads_per_quarter_min (pro-rated)", "count"),
    Metric("lead_persona_share", "Leads in target personas", "Share of the period's leads whose title matches a "
           "persona of policy leads.personas (empty without personas).", "pct", "leads", "leads in a persona",
           "leads", ("tier", "owner"), "activities.occurred_at", "leads.persona_share_pct", "ratio", "in_persona",
           "persona_judged"),
    Metric("lead_geography_share", "Leads in target geographies", "Share of the period's leads whose account's "
           "country is in policy leads.geographies (empty without geographies).", "pct", "leads",
           "leads in a target geography", "leads", ("tier", "owner"), "activities.occurred_at",
           "leads.geography_share_pct", "ratio", "in_geography", "geography_judged"),
    Metric("invalid_email_share", "Leads with an invalid email", "Share of the period's leads whose email is "
           "empty or not syntactically an address.", "pct", "leads", "leads with an invalid email", "leads",
           ("tier", "owner"), "activities.occurred_at", "leads.invalid_email_max_pct", "ratio", "invalid_email"),
    Metric("intent_list_accounts", "Accounts with 3+ intent signals", "Accounts with at least policy "
           "intent_list.min_signals (default 3) intent signals observed in the period (the weekly intent list).",
           "count", "intent", "accounts on the intent list", "", ("tier", "owner"), "intent_signals.observed_at",
           "", "count"),
    # -- coordination between the teams (issue 26; abm_sla.domain.coordination) --
    Metric("outreach_collisions", "Outreach collisions", "Sales touches in the period with a marketing touch to the "
           "same contact (the same account when either has no contact) within policy coordination.window_hours "
           "before or after (a duplicate or conflicting message).", "count", "collisions", "sales touches collided",
           "", ("tier", "owner"), "activities.occurred_at (the sales touch)", "", "count", "collided"),
    Metric("outreach_collision_rate", "Sales touches colliding with marketing", "Share of the period's sales touches "
           "that collided with a marketing touch (outreach_collisions / sales touches).", "pct", "collisions",
           "sales touches collided", "sales touches", ("tier", "owner"), "activities.occurred_at (the sales touch)",
           "", "ratio", "collided"),
    Metric("content_coverage_rate", "MQAs with content before sales' first touch", "Share of the MQAs triggered in "
           "the period whose account received a marketing touch of a policy content_support.types type in the "
           "lookback_days before sales' first touch of the episode (before its end or as_of while untouched).",
           "pct", "content", "MQAs covered", "MQAs", ("tier", "owner"), _MQA, "", "ratio", "covered"),
    Metric("campaigns_per_tier", "Campaigns started per tier", "Campaigns (campaign_start subjects) started in the "
           "period on accounts of the tier; in all, a campaign counts once per tier it started on.", "count",
           "campaigns", "campaign × tier", "", ("tier",), "activities.occurred_at (campaign_start)", "", "count"),
    Metric("tiers_without_campaign", "Tiers without a campaign", "Tiers of policy campaign_plan.tiers on which no "
           "campaign started in the period.", "count", "campaign_tiers", "tiers without a campaign", "", ("tier",),
           "activities.occurred_at (campaign_start)", "", "count", "without"),
    Metric("planned_campaigns_not_started", "Planned campaigns not started", "Campaigns of the joint plan (policy "
           "campaign_plan.campaigns) with no campaign_start in the period.", "count", "campaign_plan",
           "planned campaigns not started", "", (), "activities.occurred_at (campaign_start)", "", "count",
           "not_started"),
    Metric("campaigns_off_plan", "Campaigns off plan", "Campaigns started in the period on a tier the plan does not "
           "assign them to, or not named in the plan (policy campaign_plan.campaigns; none without a plan).",
           "count", "campaign_plan", "campaigns off plan", "", (), "activities.occurred_at (campaign_start)", "",
           "count", "off_plan"),
    Metric("review_sides_absent", "Sides absent from the quarterly review", "Sides of policy "
           "review_attendance.required (sales, marketing) with nobody recorded at the quarter's account review "
           "(abm-sla review attend).", "count", "attendance", "sides absent", "", (), "review_attendance.period", "",
           "count", "absent"),
    Metric("mqa_weeks_in_band_rate", "Weeks with MQAs in the weekly band", "Share of the ISO weeks starting in "
           "the period and ended by as_of whose MQAs (of policy targets.weekly_mqas.tier, else every tier) are "
           "within targets.weekly_mqas min-max: the basic SLA's per-week rule judged week by week.", "pct",
           "mqa_weeks", "weeks in the band", "weeks judged", (), "mqas.trigger_at (ISO week, Monday UTC)",
           "targets.weekly_mqas (each week)", "ratio", "in_band", "judged"),
    Metric("routed_record_complete_rate", "Routed records complete", "Share of the MQAs routed in the period whose "
           "record is complete: every account field of policy routed_record.account_fields filled and, with "
           "routed_record.reasons, the score's reasons carried (the engagement summary).", "pct", "routed_records",
           "MQAs routed with a complete record", "MQAs routed", ("tier", "owner"), "mqas.routed_at",
           "routed_record.complete_pct", "ratio", "complete"),
    # -- CRM updates (ABM template; abm_sla.domain.crm_updates) --
    Metric("sales_activities_logged_rate", "Sales meetings and calls logged within 24 hours", "Share of the sales "
           "activities of policy crm_updates.sales_types (meetings, calls) that happened in the period and have a "
           "logged_at, logged within crm_updates.hours (24) of occurred_at; owner = who logged it.", "pct",
           "crm_logging", "sales activities logged in time", "sales activities with logged_at", ("tier", "owner"),
           "activities.occurred_at", "crm_updates.logged_pct", "ratio", "sales_in_time", "sales"),
    Metric("marketing_activities_logged_rate", "Engaged-lead touches logged within 24 hours", "Share of the "
           "marketing touches of policy crm_updates.marketing_types that happened in the period and have a "
           "logged_at, logged within crm_updates.hours (24) of occurred_at.", "pct", "crm_logging",
           "marketing touches logged in time", "marketing touches with logged_at", ("tier", "owner"),
           "activities.occurred_at", "crm_updates.logged_pct", "ratio", "marketing_in_time", "marketing"),
    Metric("accounts_updated_rate", "Listed accounts updated this period", "Share of the accounts on the list at "
           "the period's last moment with an activity logged (logged_at, else occurred_at) or a status change in "
           "the period.", "pct", "account_updates", "accounts updated", "accounts on the list", ("tier", "owner"),
           "activities.logged_at, status_changes.changed_at", "crm_updates.accounts_updated_pct", "ratio",
           "updated"),
    Metric("stale_accounts", "Listed accounts not updated", "Accounts on the list at the period's last moment with "
           "no activity logged and no status change in the period.", "count", "account_updates", "stale accounts",
           "", ("tier", "owner"), "activities.logged_at, status_changes.changed_at", "", "count", "stale"),
    # --- last report tables (22c) ---
    Metric("mqas_won", "MQAs won", "MQAs of the period whose opportunity (created on the account at or after "
           "trigger_at, before its next MQA) was closed won by as_of, accepted or not.", "count", "mqas",
           "MQAs won", "", _MQA_SEGMENTS, _MQA, "", "count", "won"),
)
BY_ID: dict[str, Metric] = {metric.id: metric for metric in CATALOG}


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
    return rows.assign(has_verdict=accepted | rows["rejected"], accepted_converted=accepted & rows["converted"],
                       accepted_won=accepted & rows["won"], accepted_lost=accepted & rows["lost"],
                       accepted_open=accepted & rows["converted"] & ~rows["won"] & ~rows["lost"],
                       **disposition_flags(rows["disposition"]))


def disposition_flags(disposition: pd.Series) -> dict[str, pd.Series]:
    """``disposition_<name>`` per :data:`MIX_DISPOSITIONS`: whether each MQA's disposition is that one (a name
    only the policy adds counts as ``other``, a missing one as ``none``)."""
    known = set(MIX_DISPOSITIONS) - {OTHER_DISPOSITION}
    names = disposition.fillna(NO_DISPOSITION).astype(str)
    names = names.where(names.isin(known), OTHER_DISPOSITION)
    return {f"disposition_{name}": names.eq(name) for name in MIX_DISPOSITIONS}


def mqa_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
              policy: SlaPolicy) -> pd.DataFrame:
    """The period's MQAs with their verdict and conversion (:func:`scorecard.mqa_outcomes`)."""
    outcomes = sc.mqa_outcomes(data, as_of, policy)
    rows = mqa_fact_columns(outcomes[sc.within(outcomes["trigger_at"], start, end)])
    return rows.assign(list=_list_column(data, rows["account_id"], rows["trigger_at"]))


def clock_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy | None = None) -> pd.DataFrame:
    """The clocks due in the period: per clock, whether each is met, missed, pending or decided (met or missed);
    with the policy's ``regions``, each clock's ``region`` (its account's, :func:`abm_sla.domain.regions.region_of`)."""
    clocks = sc.clocks_due(data, start, end).reset_index(drop=True)
    out = status_columns(clocks, _ALL_CLOCKS).assign(missed=clocks["status"].eq(MISSED))
    if policy is not None and policy.regions:
        out["region"] = regions.region_of(clocks["account_id"], clocks["owner_id"], data.accounts, data.users, policy)
    return out


def status_columns(clocks: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """``tier, owner_id`` and, per clock of ``names``, whether each row is met, missed, pending or decided."""
    out = clocks[["tier", "owner_id"]].copy()
    for clock in names:
        mine = clocks["clock"].eq(clock)
        for status in CLOCK_STATUSES:
            out[f"{clock}_{status}"] = mine & clocks["status"].eq(status)
        out[f"{clock}_decided"] = mine & clocks["status"].isin([MET, MISSED])
    return out


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
    return {
        "mqas": mqa_facts(data, start, end, as_of, policy),
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
        "mqa_weeks": sc.weekly_mqas(data, start, end, as_of, policy).assign(
            in_band=lambda f: f["in_band"].eq(True).astype(bool)),
        "account_updates": _update_facts(data, start, end),
        "escalations": escalation_facts(data, end, as_of),
        **design_table_facts(data, start, end, as_of, policy),
        **marketing_facts(data, start, end, as_of, policy),
        **commitment_facts(data, start, end, as_of, policy),
        **coordination_facts(data, start, end, as_of, policy),
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


# -- aggregation ---------------------------------------------------------------------------------------

_SEGMENT_COLUMN = {"tier": "tier", "owner": "owner_id", "source": "source", "list": "list", "region": "region",
                   "clock": "clock", "level": "level"}


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
    elif metric.kind in ("per", "mean"):
        numerator, denominator = total(metric.column), total(metric.over)
        value = np.round(numerator / np.where(denominator > 0, denominator, np.nan), 2)
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


def family_table(family: str, frame: pd.DataFrame, segments: tuple[str, ...] | None = None,
                 months: float = np.nan) -> pd.DataFrame:
    """``metric, segment, numerator, denominator, value`` of one family's metrics over the given facts (no
    targets), for ``all`` and ``segments`` (default: every segment of the family); ``months`` is the period's
    elapsed months (:func:`elapsed_months`) a ``per_month`` metric divides by (NaN: no value)."""
    members = [metric for metric in CATALOG if metric.family == family]
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
    numeric = frame[columns].astype("float64").assign(_rows=1.0)
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
        summed = numeric.groupby(keys).sum().reindex(labels, fill_value=0.0)
        sums = {column: summed[column].to_numpy(dtype="float64") for column in summed.columns}
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


def _judge(rows: pd.DataFrame, policy: SlaPolicy, start: pd.Timestamp, end: pd.Timestamp,
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
    parts = [part for name, family in families.items() for part in _family_rows(family, found[name], None, months)]
    order = {metric.id: rank for rank, metric in enumerate(CATALOG)}
    rows = pd.concat(parts, ignore_index=True)
    rows = rows.iloc[np.argsort(rows["metric"].map(order).to_numpy(), kind="stable")].reset_index(drop=True)
    rows = _judge(rows, policy, start, end, sc.has_data(data, start, end))
    rows = rows.assign(report=report, period_start=start, period_end=end)
    return rows[COLUMNS]


def value(table: pd.DataFrame, metric: str, segment: str = ALL) -> float:
    """One number from a :func:`compute` table (NaN when the segment has no row)."""
    rows = table.loc[(table["metric"] == metric) & (table["segment"] == segment), "value"]
    return float(rows.iloc[0]) if len(rows) else float("nan")


def row(table: pd.DataFrame, metric: str, segment: str = ALL) -> pd.Series | None:
    """The :func:`compute` row of one metric and segment, or None."""
    rows = table[(table["metric"] == metric) & (table["segment"] == segment)]
    return rows.iloc[0] if len(rows) else None


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
    rows = []
    for month in months:
        first = max(pd.Timestamp(month.start_time, tz="UTC"), start)
        last = min(pd.Timestamp(month.start_time, tz="UTC") + pd.offsets.MonthBegin(1), end)
        table = family_table("mqas", facts_[sc.within(facts_["trigger_at"], first, last).to_numpy()], ("tier",))
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


# -- the reference -------------------------------------------------------------------------------------

_UNITS = {"count": "count", "money": "amount (currency of the CRM)", "pct": "% (100 × numerator / denominator)",
          "hours": "business hours", "calendar_hours": "calendar hours", "days": "days"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def reference_markdown() -> str:
    """``docs/metrics.md``: every catalog entry, for a reader who wants to know what a number means and where its
    data comes from (generated: ``abm-sla docs metrics``)."""
    lines = [
        "# Metrics reference",
        "",
        "<!-- generated from abm_sla/domain/metrics.py by `abm-sla docs metrics --out docs/metrics.md`; "
        "do not edit -->",
        "",
        "Every number in the weekly, monthly and quarterly reports, the headline and the proposals comes from "
        "one entry below. Each report writes them beside itself as `<report>.metrics.csv`, and "
        "`abm-sla export metrics --period 2026-Q1` (or `2026-03`, `2026-W13`) writes the same rows for any "
        "period. Columns: " + ", ".join(f"`{column}`" for column in COLUMNS) + ".",
        "",
        "- `segment`: `all`, or one cut: `tier=1`, `owner=U003`, `source=marketing` (`marketing` sourced, "
        "`influenced` marketing-touched but not sourced, `sales` sales-sourced, by the policy's "
        "`pipeline_credit` rule), `list=on` / `list=off` (on the target account list at the item's moment: an "
        "MQA's trigger_at, an opportunity's created_at, also once closed (ABM); only when a list is recorded), "
        "`region=EMEA` (the clock's region in the policy's regional appendix, `region=(none)` for the master "
        "policy's; only when the policy has `regions`), or the cross `tier=1,owner=U003` (segment `tier_owner`: "
        "the headline's per-owner split of the first-touch and win-rate commitments); for the escalation levels "
        "opened, `clock=first_touch`, `level=2` or their cross `clock=first_touch,level=2` (segment `clock_level`).",
        "- `additive`: `true` for counts and sums: the weeks or months of a period add up to the period.",
        "- `target` and `verdict` (`met` / `missed`, empty when there is no target or no value): from the policy's "
        "`targets` (a `region=` row: the region's `targets` in the policy's `regions`). Who owns a commitment "
        "(policy `owners`) is shown beside it on the reports' scorecards, not in this table: its columns stay "
        "stable.",
        "- An MQA's *verdict*: the class (policy `dispositions.accepted` / `dispositions.rejected`; default "
        "accepted, and rejected + unqualified/disqualified) of the latest disposition of its episode in one.",
        "",
        "| id | label | definition | numerator | denominator | unit | segments | in the period by | additive "
        "| target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for metric in CATALOG:
        cells = [f"`{metric.id}`", metric.label, metric.definition, metric.numerator, metric.denominator or "—",
                 _UNITS[metric.unit], ", ".join(metric.segments) or "—", f"`{metric.period_by}`",
                 "yes" if metric.additive else "no", metric.target or "—"]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"
