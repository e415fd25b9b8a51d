"""The weekly SLA dashboard (:func:`build_weekly`) and the sections only it shows."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from abm_sla.domain import coordination as co
from abm_sla.domain import crm_updates as cu
from abm_sla.domain import leads, review, routed_records
from abm_sla.domain import metrics as catalog
from abm_sla.domain import scorecard as sc
from abm_sla.domain import team_clocks as tc
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard import SlaData
from abm_sla.services.reporting.charts import chart_compliance_trend, chart_mqas_by_month, chart_response_times
from abm_sla.services.reporting.commitments import commitments_section
from abm_sla.services.reporting.common import (
    CHART_TITLES,
    TREND_WEEKS,
    Chart,
    Report,
    Section,
    Table,
    _iso,
    _pct_text,
    _span,
    _window_text,
    _with_owner_names,
    load_data,
    period_label,
    reusing_catalog_tables,
)
from abm_sla.services.reporting.decisions import _chronic_decision, _escalations_decision, _moves_decision
from abm_sla.services.reporting.design_tables import crm_logging_table, team_clock_compliance
from abm_sla.services.reporting.notes import _evaluation_notes, _policy_notes, no_data_line
from abm_sla.services.reporting.sections import _breaches_section, _feedback_section, regional_section
from abm_sla.services.reporting.tier_moves import MOVES_LEDGER_TEXT, _moves_source, _moves_text, tier_move_table
from abm_sla.warehouse import Warehouse


def _four_numbers(compliance: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """One row per tier: met % and met/decided per clock (routing, first touch, cadence, status), target, and the
    four clocks missed and pending (the metrics catalog's ``sla_clocks_missed`` / ``sla_clocks_pending`` of the
    period's table ``table``)."""
    frame = compliance.assign(decided=compliance["met"] + compliance["missed"])
    frame["count"] = frame["met"].astype(str) + "/" + frame["decided"].astype(str)
    rows = pd.DataFrame({"tier": [*sc.TIERS, sc.ALL]})
    for clock in ("routing_time", "first_touch", "cadence", "status_update"):
        part = frame[frame["clock"] == clock].set_index("tier")
        rows[f"{clock}_met_pct"] = rows["tier"].map(part["met_pct"])
        rows[f"{clock}_met_of_decided"] = rows["tier"].map(part["count"])
        if clock == "first_touch":
            rows["first_touch_target_pct"] = rows["tier"].map(part["target_pct"])
    segments = [f"tier={tier}" for tier in sc.TIERS] + [catalog.ALL]
    for status in ("missed", "pending"):
        rows[status] = [int(catalog.read(table, f"sla_clocks_{status}", segment, default=0.0)) for segment in segments]
    return rows


def _team_clocks_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                         policy: SlaPolicy, table: pd.DataFrame) -> list[Section]:
    """Issue 26 (ABM template): requests answered between the teams and hot accounts coordinated; no section
    when the policy switches none of them on."""
    on = tc.enabled(policy)
    if not on:
        return []
    span = _span(start, end)
    clocks = catalog.team_clocks(data, as_of, policy)
    names = data.accounts.drop_duplicates("account_id", keep="last").set_index("account_id")["name"]
    windows = []
    if policy.requests is not None:
        windows += [f"{tc.REQUEST_CLOCK[kind]} within {_window_text(getattr(policy.requests, kind))}"
                    for kind in ("materials", "account_info") if getattr(policy.requests, kind) is not None]
    if policy.hot_accounts is not None:
        windows.append(f"hot_account within {_window_text(policy.hot_accounts.window)} (met by "
                       + ", ".join(policy.hot_accounts.coordinated_by) + ")")
    text = ["Clocks on in this policy: " + "; ".join(windows) + ". Met % is met / (met + missed) of the clocks "
            "that came due this period; the due time is in the calendar of whoever owes the answer."]
    if policy.requests is not None and not len(data.requests):
        text.append("No requests loaded (the export folder has no requests.csv): the request clocks have no rows.")
    source = (f"requests (requests.csv) and activities of type {tc.frames.HOT_FLAG}, due_at in {span}, evaluated as of "
              f"{_iso(as_of)}; owner = requests.owner_id, else accounts.owner_id; calendar from users")
    return [Section("Requests and hot accounts", text, tables=[
        Table("team_clock_compliance", "Requests answered and hot accounts coordinated, per owner",
              _with_owner_names(team_clock_compliance(table, policy), data), source),
        Table("team_clock_open", "Requests and hot accounts to chase: late this week, or still unanswered",
              _with_owner_names(tc.late_or_open(tc.to_chase(clocks, start, end), names), data),
              f"{source.replace(f'due_at in {span}, ', '')}; status missed or pending: due in {span}, or due "
              f"earlier and still unanswered; requested or flagged before {_iso(end)}"),
    ])]


@reusing_catalog_tables
def build_weekly(warehouse: Warehouse | SlaData, period: str, policy: SlaPolicy,
                 as_of: pd.Timestamp | None = None) -> Report:
    """Last week's four numbers per tier, misses by owner and account, open escalations, tier moves."""
    data = warehouse if isinstance(warehouse, SlaData) else load_data(warehouse)
    start, end = sc.parse_period(period)
    as_of = as_of if as_of is not None else end
    data = data.known_by(as_of)
    table = catalog.compute(data, start, end, as_of, policy, report="weekly")
    span = _span(start, end)
    compliance = sc.clock_compliance(data, start, end, policy)
    responses = sc.response_times(data, start, end, policy)
    trend_start = end - pd.Timedelta(weeks=TREND_WEEKS)
    trend = sc.compliance_trend(data, trend_start, end, policy)
    volume_start = pd.Timestamp(end.year, end.month, 1, tz="UTC") - pd.offsets.MonthBegin(2)
    volume = catalog.mqa_volume(data, volume_start, end, as_of, policy)
    due = f"sla_clocks where due_at in {span}"
    moves = tier_move_table(data, start, as_of, policy)
    escalations = sc.open_escalations(data, as_of)
    sections = [
        Section("The four numbers", [
            "Met % is met / (met + missed) of the clocks that came due this week; pending clocks are counted apart.",
        ], tables=[
            Table("four_numbers", "SLA clocks due this week, per tier", _four_numbers(compliance, table),
                  f"{due}; status as last evaluated (sla_clocks.as_of); first-touch targets from "
                  "policy targets.first_touch_met_pct; missed and pending of the four clocks (metrics catalog: "
                  "sla_clocks_missed, sla_clocks_pending)"),
            Table("response_times", "First-touch response (business hours from routed_at to met_at)",
                  sc.response_summary(responses, policy), f"{due} and clock = first_touch, joined to mqas.routed_at; "
                  "business hours in the owner's time zone and country (users)"),
        ], charts=[
            Chart("response_times", CHART_TITLES["response_times"], partial(chart_response_times, responses, policy),
                  f"{due} and clock = first_touch"),
        ]),
        _weekly_additions(data, start, end, as_of, policy),
        Section("Misses", tables=[
            Table("misses", "Missed clocks by owner and account", sc.clock_misses(data, start, end),
                  f"{due} and status = missed; names from users and accounts"),
            Table("open_escalations", "Open escalations", escalations,
                  f"escalations where opened_at <= {_iso(as_of)}, episode open (mqas.ended_at empty or later), "
                  "clock still unmet (sla_clocks.met_at empty or later)"),
        ]),
        *_intent_list_section(data, start, end, policy, table),
        *_crm_updates_section(data, start, end, policy, table),
        *_routed_record_section(data, start, end, policy, table),
        _feedback_section(data, start, end, as_of, policy, table),
        *_team_clocks_section(data, start, end, as_of, policy, table),
        *_collisions_section(data, start, end, as_of, policy, table),
        _breaches_section(data, policy, start, end, as_of, weekly=True, table=table),
        Section("Recommended tier moves", [_moves_text(policy), MOVES_LEDGER_TEXT], tables=[
            Table("tier_moves", "Tier moves: pending, and decided this week", moves, _moves_source(as_of)),
        ]),
        Section("Trends", tables=[
            Table("compliance_trend", f"Compliance by week (last {TREND_WEEKS} weeks)", trend,
                  f"sla_clocks where due_at in {_span(trend_start, end)}, grouped by ISO week of due_at"),
            Table("mqa_volume", "MQAs per tier by month", volume,
                  f"mqas where trigger_at in {_span(volume_start, end)}; commitments from policy "
                  "targets.monthly_mqa_commitments, pro-rated to the part of the month covered"),
        ], charts=[
            Chart("compliance_trend", CHART_TITLES["compliance_trend"], partial(chart_compliance_trend, trend),
                  "sla_clocks"),
            Chart("mqas_by_month", CHART_TITLES["mqas_by_month"], partial(chart_mqas_by_month, volume), "mqas"),
        ]),
    ]
    commitments, commitment_notes = commitments_section(data, table, start, end, as_of, policy, label="this week")
    sections[5:5] = [commitments] if commitments is not None else []
    sections += regional_section(table, policy, span)
    decisions = [_chronic_decision(sc.chronic_misses(data, end, as_of, policy), ""),
                 _moves_decision(moves, "#table-tier_moves"),
                 _escalations_decision(escalations, as_of, "#table-open_escalations")]
    empty = no_data_line(data, period, start, end)
    return Report("weekly", period, start, end, as_of, f"SLA weekly dashboard {period}", sections,
                  [empty] * bool(empty) + _evaluation_notes(data, as_of) + _policy_notes(policy) + commitment_notes,
                  sc.headline(data, start, end, as_of, policy, table), period_label(*sc.previous_period(start, end)),
                  decisions, measured=empty is None, metrics=table)


def _weekly_additions(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                      policy: SlaPolicy) -> Section:
    """Meetings, opportunities and pipeline created, engagement rate and Tier 1 status, this week vs last."""
    before = period_label(*sc.previous_period(start, end))
    return Section("This week against last week", [
        f"Each row: this week, {before}, and the change. Meetings booked = meeting activities in the week; "
        "engagement rate = accounts with a marketing touch in the week / accounts on the list; Tier 1 status "
        f"at the week's end (quiet = no activity for {review.QUIET_DAYS}+ days).",
    ], tables=[Table("weekly_changes", "This week against last week",
                     review.compare(review.weekly_metrics, data, start, end, as_of, policy),
                     f"activities (type meeting, marketing touches) and opportunities (created_at, amount) in "
                     f"{_span(start, end)} and the week before; accounts (tier 1); mqas (open episodes)")])


def _intent_list_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy,
                         table: pd.DataFrame) -> list[Section]:
    """The week's intent list (policy ``intent_list``; none without it)."""
    settings = policy.intent_list
    if settings is None:
        return []
    found = leads.intent_list(data, start, end, settings)
    count = catalog.value(table, "intent_list_accounts")
    score = f" with score >= {settings.min_score:g}" if settings.min_score else ""
    topics = " (each topic once)" if settings.distinct_topics else ""
    return [Section("Intent list", [
        f"{count:g} account{'' if count == 1 else 's'} with {settings.min_signals}+ intent signals{score}{topics} "
        "observed this week: sales "
        "contacts them this week. The full list is the table's CSV beside this report, and "
        "`abm-sla export intent-list --period <week>`.",
    ], tables=[Table("intent_list", f"Accounts with {settings.min_signals}+ intent signals this week", found,
                     f"intent_signals with observed_at in {_span(start, end)}{score}; policy intent_list")])]


def _collisions_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                        policy: SlaPolicy, table: pd.DataFrame) -> list[Section]:
    """The week's outreach collisions (policy ``coordination``; none without it)."""
    settings = policy.coordination
    if settings is None:
        return []
    found = co.collisions(data.activities, start, end, as_of, settings)
    names = sc.account_dimensions(data).set_index("account_id")["account_name"]
    found.insert(1, "account_name", found["account_id"].map(names))
    return [Section("Outreach coordination", [
        f"Sales touches colliding with a marketing touch: {_pct_text(table, 'outreach_collision_rate')}. A "
        f"collision: a sales touch and a marketing touch to the same contact (the same account when either has no "
        f"contact) within {settings.window_hours:g} hours of each other: a duplicate or conflicting message. "
        "Each row is one pair; coordinate the next touch with marketing's campaign.",
    ], tables=[Table("outreach_collisions", "Sales touches within the window of a marketing touch", found,
                     f"activities: sales touches with occurred_at in {_span(start, end)}, marketing touches of "
                     f"{', '.join(settings.marketing_types)} within {settings.window_hours:g} h; policy coordination; "
                     "metrics catalog: outreach_collisions, outreach_collision_rate")])]


def _routed_record_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy,
                           table: pd.DataFrame) -> list[Section]:
    """The routed MQAs' records complete (policy ``routed_record``; none without it)."""
    rule = policy.routed_record
    if rule is None:
        return []
    found = catalog.row(table, "routed_record_complete_rate")
    routed = int(np.nan_to_num(found["denominator"])) if found is not None else 0
    complete = int(np.nan_to_num(found["numerator"])) if found is not None else 0
    needs = ", ".join(rule.account_fields) + (" and the score's reasons" if rule.reasons else "")
    text = [f"{complete} of {routed} MQA{'' if routed == 1 else 's'} routed this week had a complete record "
            f"({found['value'] if found is not None else float('nan'):g}%): the account's {needs}."]
    facts = routed_records.record_facts(data, start, end, policy)
    return [Section("Routed records", text, tables=[
        Table("incomplete_records", "Routed MQAs with an incomplete record",
              _with_owner_names(routed_records.incomplete(facts), data),
              f"mqas with routed_at in {_span(start, end)}; fields from accounts, reasons from mqas; "
              "policy routed_record")])]


def _crm_updates_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy,
                         table: pd.DataFrame) -> list[Section]:
    """Issue 26 (ABM template): every meeting, call and engaged-lead touch logged within the policy's hours, and
    the listed accounts updated this week (policy ``crm_updates``; none without it)."""
    rule = policy.crm_updates
    if rule is None:
        return []
    span = _span(start, end)
    updated = catalog.row(table, "accounts_updated_rate")
    listed = int(np.nan_to_num(updated["denominator"])) if updated is not None else 0
    stale = int(np.nan_to_num(catalog.value(table, "stale_accounts")))
    text = [f"An activity is logged in time when logged_at - occurred_at <= {rule.hours:g} hours (sales: "
            f"{', '.join(rule.sales_types)}; marketing: {', '.join(rule.marketing_types)}); activities without "
            "logged_at are not judged.",
            f"{listed - stale} of {listed} listed account{'' if listed == 1 else 's'} updated this week "
            f"({catalog.value(table, 'accounts_updated_rate'):g}%): an activity logged or a status change; "
            f"{stale} stale."]
    stale_list = cu.stale_accounts(cu.account_update_facts(data, start, end))
    return [Section("CRM updates", text, tables=[
        Table("crm_logging", f"Activities logged within {rule.hours:g} hours, per owner",
              _with_owner_names(crm_logging_table(table), data),
              f"activities of the types above with occurred_at in {span} and a logged_at; owner = "
              "activities.owner_id, else accounts.owner_id; policy crm_updates"),
        Table("stale_accounts", "Listed accounts with no update this week", _with_owner_names(stale_list, data),
              f"accounts on the list at {_iso(end)} with no activity logged (logged_at, else occurred_at) and no "
              f"status change in {span}"),
    ])]
