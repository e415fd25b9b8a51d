"""The monthly review (:func:`build_monthly`) and the sections only it shows."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain import feedback as fb
from abm_sla.domain import metrics as catalog
from abm_sla.domain import review
from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard import SlaData
from abm_sla.errors import AbmSlaError
from abm_sla.services.reporting.commitments import commitments_section
from abm_sla.services.reporting.common import (
    Report,
    Section,
    Table,
    _credit_source,
    _credit_text,
    _iso,
    _measured_accounts,
    _pct_text,
    _span,
    _verdict_source,
    _with_owner_names,
    load_data,
    period_label,
    reusing_catalog_tables,
)
from abm_sla.services.reporting.decisions import _moves_decision
from abm_sla.services.reporting.marketing_side import _tempo_and_coverage
from abm_sla.services.reporting.notes import _evaluation_notes, _policy_notes, no_data_line
from abm_sla.services.reporting.sections import _leads_section, _weekly_mqa_tables, regional_section
from abm_sla.services.reporting.tier_moves import (
    MOVES_LEDGER_TEXT,
    _moves_source,
    _moves_text,
    move_decisions,
    tier_move_table,
)
from abm_sla.warehouse import Warehouse


def _marketing_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                       policy: SlaPolicy) -> Section:
    """Marketing tempo and coverage in the month against the policy, and the touches per tier and channel."""
    return Section("Marketing tempo and coverage", [
        "Tempo is marketing touches per account in the month against policy marketing.tempo (a quarterly tempo "
        "is judged on the quarter's monthly average); coverage is the channels reached per engaged account.",
    ], tables=[*_tempo_and_coverage(data, start, end, as_of, policy), Table(
        "marketing_activity", "Marketing touches per tier and channel", review.marketing_activity(data, start, end),
        f"activities of a marketing type with occurred_at in {_span(start, end)}; accounts created before "
        f"{_iso(end)}, tier from accounts")])


def _content_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                     policy: SlaPolicy, table: pd.DataFrame) -> list[Section]:
    """The month's content coverage of MQAs before sales' first touch (policy ``content_support``)."""
    settings = policy.content_support
    if settings is None:
        return []
    cut = table["segment"].eq(catalog.ALL) | table["segment"].str.startswith("tier=")
    shown = table.loc[(table["metric"] == "content_coverage_rate") & cut, ["segment", "numerator", "denominator",
                                                                            "value"]]
    shown = shown.rename(columns={"numerator": "covered", "denominator": "mqas", "value": "covered_pct"})
    return [Section("Content for sales' touches", [
        f"MQAs whose account received marketing content ({', '.join(settings.types)}) in the "
        f"{settings.lookback_days:g} days before sales' first touch: {_pct_text(table, 'content_coverage_rate')}. "
        "Requests for materials and their 2-business-day answer are the materials clock (requests.csv).",
    ], tables=[Table("content_coverage", "MQAs with content before sales' first touch, per tier", shown,
                     f"mqas with trigger_at in {_span(start, end)}; activities of {', '.join(settings.types)}; "
                     "policy content_support; metrics catalog: content_coverage_rate")])]


def _review_sections(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                     policy: SlaPolicy) -> list[Section]:
    """The monthly review's patterns, lists and decisions (policy ``monthly_review``; decisions whenever any
    is recorded)."""
    span = _span(start, end)
    decisions = review.review_decisions(data.review_decisions, start)
    settings = policy.monthly_review
    decision_section = Section("Decisions", [
        "The decisions the previous review took (follow them up) and those this review took "
        "(`abm-sla decision add --month <month> --text ... --owner ...`; `abm-sla decision done <id>`).",
    ], tables=[Table("review_decisions", "Decisions of the last review and this one", decisions,
                     "review_decisions of the review month and the month before")])
    if settings is None:
        return [decision_section] if len(decisions) else []
    mqa_source = _verdict_source(span, as_of, policy)
    return [
        Section("Disqualification patterns", [
            "Rejected MQAs of the month by the reason sales gave (status reason) and tier, then by owner.",
        ], tables=[
            Table("disqualification_patterns", "Rejected MQAs per reason and tier",
                  fb.rejection_reasons(catalog.mqa_facts(data, start, end, as_of, policy)), f"{mqa_source}; reasons "
                  "from status_changes.reason (trimmed, case ignored), as in the quarterly feedback loop"),
            Table("disqualification_by_owner", "Rejected MQAs per owner and reason",
                  _with_owner_names(review.disqualification_by_owner(data, start, end, as_of, policy), data),
                  f"{mqa_source}; owner from mqas"),
        ]),
        Section("Conversion by hand-off source", [
            "The hand-off source is the signal that fired the MQA (at its trigger_at): a marketing touch's type, or "
            "intent.",
        ], tables=[Table("conversion_by_source", "MQA → SQL and MQA → opportunity per hand-off source",
                         review.conversion_by_source(data, start, end, as_of, policy),
                         f"{mqa_source}; activities and intent_signals at trigger_at")]),
        Section("Closed deals and stalled accounts", [
            f"Stalled: an open opportunity or open MQA and no activity of any kind for {settings.stalled_days:g}+ "
            "days at the month's end.",
        ], tables=[
            Table("closed_deals", "Deals closed in the month", review.closed_deals(data, start, end, as_of, policy),
                  f"opportunities closed in {span} by {_iso(as_of)}; source by the pipeline-credit rule"),
            Table("stalled_accounts", "Stalled accounts", review.stalled_accounts(data, end, settings.stalled_days),
                  f"opportunities open and mqas episodes open at {_iso(end)}; last activity before it"),
        ]),
        Section("Engagement trend and top performers", tables=[
            Table("engagement_trend", f"Engagement by month (last {settings.trend_months})",
                  review.engagement_trend(data, end, settings.trend_months, policy),
                  f"{_measured_accounts(data)} at each month's end; marketing touches per month; metrics catalog: "
                  "engagement_rate, engaged_contacts, engaged_leads of each month"),
            Table("top_accounts", f"Top {settings.top_accounts} accounts per tier by marketing engagement",
                  review.top_accounts(data, start, end, settings.top_accounts),
                  f"{_measured_accounts(data)}; marketing touches, engaged contacts and meetings in {span}"),
        ]),
        decision_section,
    ]


@reusing_catalog_tables
def build_monthly(warehouse: Warehouse | SlaData, period: str, policy: SlaPolicy,
                  as_of: pd.Timestamp | None = None) -> Report:
    """The monthly review: volume against target, the funnel, pipeline by source and the joint number,
    marketing tempo and coverage, tier moves, each against the month before."""
    data = warehouse if isinstance(warehouse, SlaData) else load_data(warehouse)
    start, end = sc.parse_period(period)
    if (end.year - start.year) * 12 + end.month - start.month != 1:
        raise AbmSlaError(f"the monthly review takes a month (2026-03), got {period!r}")
    as_of = as_of if as_of is not None else end
    data = data.known_by(as_of)
    table = catalog.compute(data, start, end, as_of, policy, report="monthly")
    span = _span(start, end)
    before = period_label(*sc.previous_period(start, end))
    mqa_source = _verdict_source(span, as_of, policy) + "; opportunities created at or after trigger_at"
    moves = tier_move_table(data, start, as_of, policy)
    sections = [
        Section("Month over month", [
            f"Each row: {period}, {before} and the change. SQL = an MQA sales accepted; disqualified = its verdict "
            f"is rejected ({', '.join(policy.dispositions.rejected)}). "
            "Time to first contact: median business hours from routing to the first sales touch.",
        ], tables=[Table("monthly_trend", f"{period} against {before}",
                         review.compare(review.monthly_metrics, data, start, end, as_of, policy),
                         f"{mqa_source}; sla_clocks (first_touch) due in {span}; opportunities created in {span}; "
                         "the same for the month before, as of its end")]),
        Section("Volume against target", tables=[
            Table("mqa_volume", "MQAs per tier vs the monthly commitment",
                  catalog.mqa_volume(data, start, end, as_of, policy),
                  f"mqas where trigger_at in {span}; policy targets.monthly_mqa_commitments"),
            *_weekly_mqa_tables(data, start, end, as_of, policy, table),
            Table("marketing_by_tier", "MQA → SQL (accepted), disqualified and conversion per tier",
                  sc.marketing_quality(sc.mqa_outcomes(data, as_of, policy), start, end, policy), mqa_source),
            Table("progression", "SQL → opportunity (accepted MQAs)",
                  sc.progression(sc.mqa_outcomes(data, as_of, policy), start, end), mqa_source),
            Table("response_by_tier", "Time to first contact per tier (business hours)",
                  sc.response_summary(sc.response_times(data, start, end, policy), policy),
                  f"sla_clocks where due_at in {span} and clock = first_touch; mqas.routed_at"),
        ]),
        Section("Pipeline by source", [
            _credit_text(policy) + " The three add up to the joint pipeline: every opportunity created in the month.",
        ], tables=[Table("pipeline_by_source", "Pipeline created in the month by source, and the joint pipeline",
                         review.pipeline_by_source(data, start, end, policy), _credit_source(span, policy)
                         + "; metrics catalog: opportunities_created, pipeline_created, pipeline_created_share "
                         "(segments source=...)")]),
        _marketing_section(data, start, end, as_of, policy),
        *_leads_section(data, start, end, policy, table),
        *_review_sections(data, start, end, as_of, policy),
        *_content_section(data, start, end, as_of, policy, table),
        Section("Tier moves", [_moves_text(policy), MOVES_LEDGER_TEXT], tables=[
            Table("tier_move_decisions", "Recommendations of the month and sales' decisions",
                  move_decisions(data, start, end, as_of, policy, table),
                  _moves_source(as_of) + "; metrics catalog: tier_moves_*, tier_move_age_median_days"),
            Table("tier_moves", "Tier moves: pending, and decided this month", moves, _moves_source(as_of)),
        ]),
    ]
    commitments, commitment_notes = commitments_section(data, table, start, end, as_of, policy, label="this month")
    sections += [commitments] if commitments is not None else []
    sections += regional_section(table, policy, span)
    decisions = [_moves_decision(moves, "#table-tier_moves")]
    empty = no_data_line(data, period, start, end)
    return Report("monthly", period, start, end, as_of, f"SLA monthly review {period}", sections,
                  [empty] * bool(empty) + _evaluation_notes(data, as_of) + _policy_notes(policy) + commitment_notes,
                  sc.headline(data, start, end, as_of, policy, table), before, decisions, measured=empty is None,
                  metrics=table)
