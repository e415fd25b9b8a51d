"""The quarterly renegotiation report (:func:`build_quarterly`): the scorecard, chronic misses, proposals,
the campaign calendar and the review's attendance."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd

from abm_sla.domain import coordination as co
from abm_sla.domain import metrics as catalog
from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard import SlaData
from abm_sla.services.reporting.charts import chart_compliance_trend, chart_mqas_by_month, chart_response_times
from abm_sla.services.reporting.commitments import commitments_section
from abm_sla.services.reporting.common import (
    CHART_TITLES,
    Chart,
    Report,
    Section,
    Table,
    _credit_source,
    _credit_text,
    _iso,
    _span,
    _verdict_source,
    _with_missing_owner_names,
    _with_owner_names,
    load_data,
    period_label,
    reusing_catalog_tables,
)
from abm_sla.services.reporting.decisions import (
    _chronic_decision,
    _escalations_decision,
    _moves_decision,
    _proposals_decision,
)
from abm_sla.services.reporting.design_tables import campaign_tier_table, money_table
from abm_sla.services.reporting.marketing_side import marketing_side_section
from abm_sla.services.reporting.notes import _evaluation_notes, _policy_notes, no_data_line
from abm_sla.services.reporting.proposals import _pipeline_section, _proposal_section
from abm_sla.services.reporting.sections import (
    _breaches_section,
    _feedback_section,
    _leads_section,
    _weekly_mqa_tables,
    regional_section,
)
from abm_sla.services.reporting.tier_moves import _moves_source, move_decisions, tier_move_table
from abm_sla.warehouse import Warehouse


@reusing_catalog_tables
def build_quarterly(warehouse: Warehouse | SlaData, period: str, policy: SlaPolicy,
                    as_of: pd.Timestamp | None = None, policy_text: str | None = None,
                    scoring_text: str | None = None, policy_path: str | Path | None = None,
                    scoring_path: str | Path | None = None) -> Report:
    """The scorecard for the period, chronic misses and the proposals (with diffs) for renegotiation; the diffs
    name ``policy_path`` and ``scoring_path``, the files the run used (default ``config/sla.yaml``, ...)."""
    data = warehouse if isinstance(warehouse, SlaData) else load_data(warehouse)
    start, end = sc.parse_period(period)
    as_of = as_of if as_of is not None else end
    data = data.known_by(as_of)
    table = catalog.compute(data, start, end, as_of, policy, report="quarterly")
    span = _span(start, end)
    outcomes = sc.mqa_outcomes(data, as_of, policy)
    responses = sc.response_times(data, start, end, policy)
    volume = catalog.mqa_volume(data, start, end, as_of, policy)
    trend = sc.compliance_trend(data, start, end, policy)
    mqa_source = _verdict_source(span, as_of, policy)
    opp_source = f"opportunities created at or after trigger_at by {_iso(as_of)}"
    due = f"sla_clocks where due_at in {span}"
    closed = f"opportunities where is_closed and close_date in {span}, tier and owner from accounts"
    chronic = _with_missing_owner_names(sc.chronic_misses(data, end, as_of, policy), data)
    moves = tier_move_table(data, start, as_of, policy)
    escalations = sc.open_escalations(data, as_of)
    sections = [
        Section("Marketing", tables=[
            Table("mqa_volume", "MQAs per tier per month vs commitment", volume,
                  f"mqas where trigger_at in {span}; policy targets.monthly_mqa_commitments (pro-rated)"),
            *_weekly_mqa_tables(data, start, end, as_of, policy, table),
            Table("marketing_by_tier", "Acceptance, rejection and conversion per tier",
                  sc.marketing_quality(outcomes, start, end, policy), f"{mqa_source}; {opp_source}"),
            Table("marketing_by_owner", "Acceptance, rejection and conversion per owner",
                  _with_owner_names(sc.marketing_quality(outcomes, start, end, policy, by="owner_id"), data),
                  f"{mqa_source}; {opp_source}"),
            Table("engagement", "Account engagement per tier", sc.engagement(data, start, end),
                  f"accounts created before {_iso(end)}; activities of a marketing type with occurred_at in {span}; "
                  "multi-stakeholder = >= 2 distinct contact_id"),
        ], charts=[Chart("mqas_by_month", CHART_TITLES["mqas_by_month"], partial(chart_mqas_by_month, volume),
                         "mqas")]),
        *_leads_section(data, start, end, policy, table),
        marketing_side_section(data, start, end, as_of, policy, table),
        Section("Sales", tables=[
            Table("compliance_by_tier", "SLA clocks per tier", sc.clock_compliance(data, start, end, policy),
                  f"{due}; targets from policy targets.first_touch_met_pct"),
            Table("compliance_by_owner", "SLA clocks per owner",
                  _with_owner_names(sc.clock_compliance(data, start, end, policy, by=("owner_id",)), data), due),
            Table("response_by_tier", "First-touch response per tier (business hours)",
                  sc.response_summary(responses, policy), f"{due} and clock = first_touch; mqas.routed_at"),
            Table("response_by_owner", "First-touch response per owner (business hours)",
                  _with_owner_names(sc.response_summary(responses, policy, by="owner_id"), data),
                  f"{due} and clock = first_touch"),
            Table("progression", "Progression of accepted MQAs", sc.progression(outcomes, start, end),
                  f"{mqa_source}, accepted only; first {opp_source}"),
        ], charts=[
            Chart("response_times", CHART_TITLES["response_times"], partial(chart_response_times, responses, policy),
                  due),
            Chart("compliance_trend", CHART_TITLES["compliance_trend"], partial(chart_compliance_trend, trend), due),
        ]),
        _feedback_section(data, start, end, as_of, policy, table),
        Section("Joint", [
            _credit_text(policy) + " The three add up to all; marketing-influenced is the first two, so it is not "
            "added to the others.",
        ], tables=[
            Table("pipeline", "Pipeline created in the period by attribution",
                  sc.pipeline_attribution(data, start, end, policy),
                  _credit_source(span, policy) + "; from_mqa = an MQA fired on the account by created_at (mqas)"),
            Table("win_rates", "Win rate and sales cycle", sc.win_rates(data, start, end, as_of, policy), closed),
            Table("money", "Won revenue by source and customer acquisition cost", money_table(table, policy),
                  f"{closed}, is_won; source by the pipeline-credit rule; spend: policy money (spend rows and "
                  "spend_file) pro-rated to the period; CAC = spend / opportunities won (metrics catalog: "
                  "won_revenue, marketing_spend, cac)", "" if policy.money.spend else
                  "No spend is recorded (policy money.spend or money.spend_file): CAC is not computed."),
        ]),
        Section("Commitments", [
            "Chronic = missed this quarter and the one before: renegotiate. A miss spread over most owners is a "
            "system problem (fix routing, cadence or staffing); concentrated on a few owners, a coaching matter.",
        ], tables=[
            Table("chronic_misses", "Commitments this quarter and last", chronic,
                  "the tables above recomputed for the quarter containing the period and the quarter before; "
                  "targets from policy targets"),
            Table("tier_moves", "Tier moves: pending, and decided this quarter", moves, _moves_source(as_of)),
            Table("tier_move_decisions", "Tier-move recommendations of the quarter and sales' decisions",
                  move_decisions(data, start, end, as_of, policy, table),
                  _moves_source(as_of) + "; metrics catalog: tier_moves_*, tier_move_age_median_days"),
            Table("open_escalations", "Open escalations", escalations,
                  f"escalations where opened_at <= {_iso(as_of)}, episode open (mqas.ended_at empty or later), "
                  "clock still unmet (sla_clocks.met_at empty or later)"),
        ]),
    ]
    commitments, commitment_notes = commitments_section(data, table, start, end, as_of, policy, label="this quarter")
    sections += [commitments] if commitments is not None else []
    sections.append(_breaches_section(data, policy, start, end, as_of, weekly=False, table=table))
    proposal_section, notes, found = _proposal_section(data, start, end, as_of, policy, policy_text, scoring_text,
                                                       policy_path, scoring_path, table)
    sections.append(proposal_section)
    sections.append(_pipeline_section(data, start, end, scoring_text))
    sections += regional_section(table, policy, span)
    review_sections, review_notes = _quarterly_review_section(data, start, end, as_of, policy, table)
    sections += review_sections
    notes += review_notes
    decisions = [_chronic_decision(chronic, "#table-chronic_misses"),
                 _proposals_decision(found, "#section-proposals"),
                 _moves_decision(moves, "#table-tier_moves"),
                 _escalations_decision(escalations, as_of, "#table-open_escalations")]
    empty = no_data_line(data, period, start, end)
    return Report("quarterly", period, start, end, as_of, f"SLA quarterly review {period}", sections,
                  [empty] * bool(empty) + _evaluation_notes(data, as_of) + _policy_notes(policy) + notes
                  + commitment_notes,
                  sc.headline(data, start, end, as_of, policy, table), period_label(*sc.previous_period(start, end)),
                  decisions, measured=empty is None, metrics=table)


def _quarterly_review_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                              policy: SlaPolicy, table: pd.DataFrame) -> tuple[list[Section], list[str]]:
    """The quarter's campaign calendar per tier (policy ``campaign_plan``) and the review's attendance (policy
    ``review_attendance``), with the warnings (a tier without a campaign, a side absent)."""
    sections, notes = [], []
    if policy.campaign_plan is not None:
        calendar = co.campaign_calendar(data.activities, data.accounts, start, end, as_of)
        tiers = campaign_tier_table(table, policy)
        missing = tiers.loc[tiers["without"], "tier"].tolist()
        plan = co.plan_check(calendar, policy.campaign_plan)
        if len(plan) and (plan["status"] != co.AS_PLANNED).any():
            off = plan[plan["status"] != co.AS_PLANNED]
            notes.append("Campaign plan: " + "; ".join(f"{row.campaign} {row.status}" for row in off.itertuples())
                         + " (policy campaign_plan.campaigns).")
        if missing:
            notes.append("No campaign started this quarter on Tier " + ", ".join(map(str, missing))
                         + " (ABM template: Tier 1 1:1 + ads, Tier 2 campaign + outreach, Tier 3 campaign only).")
        sections.append(Section("Campaign calendar", [
            f"Campaigns started this quarter per tier (campaign_start activities, the subject names the campaign); "
            f"tiers without one: {catalog.value(table, 'tiers_without_campaign'):g}. The ABM template plans them "
            "jointly each quarter: Tier 1 1:1 + ads, Tier 2 campaign + outreach, Tier 3 campaign only.",
        ], tables=[
            Table("campaign_tiers", "Campaigns per tier", tiers.rename(columns={"without": "flagged"}),
                  "policy campaign_plan.tiers; metrics catalog: campaigns_per_tier, tiers_without_campaign"),
            Table("campaign_calendar", "The quarter's campaigns", calendar,
                  f"activities of type campaign_start with occurred_at in {_span(start, end)}; tier from accounts"),
            *([Table("campaign_plan", "The joint plan against the campaigns started", plan,
                     "policy campaign_plan.campaigns (the signed policy); campaign_start subjects and tiers; "
                     "metrics catalog: planned_campaigns_not_started, campaigns_off_plan")] if len(plan) else []),
        ]))
    if policy.review_attendance is not None:
        quarter = sc.quarter_label(start)
        present = co.attendance(data.review_attendance, quarter, policy.review_attendance)
        absent = co.absent_sides(present, policy.review_attendance)
        if absent:
            notes.append(f"Nobody from {' or '.join(absent)} is recorded at the {quarter} account review "
                         f"(`abm-sla review attend --period {quarter} --name ... --side {absent[0]}`).")
        shown = present.assign(attended=present["attended"].map({True: "present", False: "absent"}))
        sections.append(Section("Quarterly review attendance", [
            f"Who attended the {quarter} account review per side (`abm-sla review attend`); sides absent: "
            f"{catalog.value(table, 'review_sides_absent'):g}.",
        ], tables=[Table("review_attendance", f"Attendance of the {quarter} review", shown,
                         f"review_attendance where period = {quarter}; policy review_attendance.required")]))
    return sections, notes
