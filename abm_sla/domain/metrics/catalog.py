"""The catalog's entries: :data:`CATALOG`, one :class:`~abm_sla.domain.metrics.base.Metric` per number the reports
show, in the reference's order, and :data:`BY_ID`."""

from __future__ import annotations

from abm_sla.domain import dispositions, frames
from abm_sla.domain import team_clocks as tc
from abm_sla.domain.metrics.base import (
    ALL_CLOCKS,
    CLOCK_LEVEL,
    CLOCK_STATUSES,
    DISTINCT,
    MIX_DISPOSITIONS,
    NO_DISPOSITION,
    OTHER_DISPOSITION,
    PER_MONTH,
    QUIET_DAYS,
    ROUTING_BASES,
    SMALLEST,
    TIER_OWNER,
    Metric,
)
from abm_sla.domain.metrics.catalog_quarterly import QUARTERLY_METRICS
from abm_sla.domain.metrics.catalog_tables import REPORT_TABLE_METRICS

_MQA = "mqas.trigger_at"
_LAST_MOMENT = "accounts at the period's last moment known (min(end, as_of))"
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


def clock_metric_ids(clock: str) -> dict[str, str]:
    """:func:`scorecard.clock_compliance`'s columns and the catalog metric each is read from."""
    return {**{status: f"{clock}_clocks_{status}" for status in CLOCK_STATUSES}, "met_pct": f"{clock}_met_rate"}


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

_ROUTING_BASIS_WHAT = {"CRM write-back": "met at the pipeline's write-back of the owner to the CRM "
                       "(mqas.writeback_done_at)",
                       "CRM owner change": "met at an owner change the CRM recorded itself (an owner_assigned "
                       "activity)",
                       "pipeline run (routed_at)": "met when the pipeline routed the MQA (routed_at), neither a "
                       "write-back nor a CRM owner change seen",
                       "not routed yet": "not met (no owner yet)"}
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
    *(_clock_metric(clock) for clock in ALL_CLOCKS),
    # -- clock counts (per tier and owner: the clock tables) --
    *(metric for clock in ALL_CLOCKS for metric in _clock_count_metrics(clock)),
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
    *REPORT_TABLE_METRICS,  # the last report tables (22e)
)
CATALOG += QUARTERLY_METRICS  # the quarterly renegotiation's tables (issue 22): catalog_quarterly
BY_ID: dict[str, Metric] = {metric.id: metric for metric in CATALOG}
