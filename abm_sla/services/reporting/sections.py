"""Sections more than one report shows: the feedback loop, escalations and disputes, the weekly MQA band,
leads, the regional appendix."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import breaches, dispositions, regions, review
from abm_sla.domain import feedback as fb
from abm_sla.domain import metrics as catalog
from abm_sla.domain import scorecard as sc
from abm_sla.domain.metrics import quarterly_tables as qt
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard import SlaData
from abm_sla.domain.sla import OPTIONAL_CLOCKS
from abm_sla.services.reporting.common import Section, Table, _iso, _measured_accounts, _span, _with_owner_names
from abm_sla.services.reporting.design_tables import regional_compliance


def _feedback_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                      policy: SlaPolicy, table: pd.DataFrame) -> Section:
    """Issue 14's feedback loop: dispositions, disqualification patterns, conversion by hand-off source,
    the optional clocks' compliance, unknown status values and what routing time measures."""
    span = _span(start, end)
    outcomes = sc.mqa_outcomes(data, as_of, policy)
    basis = fb.routing_basis(table, policy)
    episode = (f"mqas where trigger_at in {span}; disposition = that of the MQA's verdict (as in the scorecard), "
               f"else the latest status_changes.status of the episode (trigger_at to ended_at or {_iso(as_of)}), "
               "mapped by policy dispositions")
    switched = [name for name in OPTIONAL_CLOCKS if getattr(policy.clocks, name)]
    text = [fb.routing_sentence(basis),
            "Feedback clocks on in this policy: " + (", ".join(switched) if switched else "none (switch on clocks."
                                                    + " / ".join(OPTIONAL_CLOCKS) + ")") + "."]
    return Section("Feedback loop", text, tables=[
        Table("disposition_mix_by_tier", "Disposition mix per tier", fb.disposition_mix(outcomes, start, end, "tier"),
              episode),
        Table("disposition_mix_by_owner", "Disposition mix per owner",
              _with_owner_names(fb.disposition_mix(outcomes, start, end, "owner_id"), data), episode),
        Table("disqualification_patterns", "Rejection reasons, ranked (disqualification patterns)",
              fb.rejection_reasons(catalog.mqa_facts(data, start, end, as_of, policy)),
              f"{episode}; rejected = verdict class {', '.join(policy.dispositions.rejected)}; reason = the latest "
              "status_changes.reason from trigger_at to the account's next MQA"),
        Table("conversion_by_source", "Conversion by hand-off source",
              fb.conversion_by_source(data, start, end, as_of, policy),
              f"mqas where trigger_at in {span}; source = the scoring rule of the signal at trigger_at found in "
              f"mqas.reasons (else the top non-firmographic reason); opportunities created by {_iso(as_of)}"),
        Table("feedback_compliance", "Feedback and recurring-status clocks per owner",
              _with_owner_names(fb.optional_compliance(data, start, end), data),
              f"sla_clocks where due_at in {span} and clock in ({', '.join(OPTIONAL_CLOCKS)})"),
        Table("routing_basis", "What routing time was measured to", basis,
              f"sla_clocks where due_at in {span} and clock = routing_time; mqas.writeback_done_at; activities "
              "of type owner_assigned; metrics catalog: " + ", ".join(catalog.ROUTING_BASES.values())),
        Table("unknown_statuses", "Status values the policy does not map (kept, never dropped)",
              dispositions.unknown_statuses(data.status_changes[data.status_changes["changed_at"] <= as_of], policy),
              f"status_changes by {_iso(as_of)}; map from policy dispositions.map and the built-in map"),
    ])


def _breaches_section(data: SlaData, policy: SlaPolicy, start: pd.Timestamp, end: pd.Timestamp,
                      as_of: pd.Timestamp, *, weekly: bool, table: pd.DataFrame) -> Section:
    """Escalations by clock and level, reassignments on breach, and disputes (open ones with their step;
    the quarter's counts, time to close and outcomes)."""
    span = _span(start, end)
    ladders = ", ".join(ladder.clock for ladder in policy.ladders) or "none"
    tables = [
        Table("escalations_by_clock", "Escalations by clock and level",
              breaches.escalations_by_clock(data, start, end, table),
              f"escalations where opened_at in {span}; roles from users (active); clocks with a ladder: {ladders}; "
              "metrics catalog: escalated_mqas, escalation_recipients (segments clock=...,level=...)"),
        Table("reassignments", "Reassignments on breach", breaches.reassignments(data, start, end),
              f"reassignments where reassigned_at in {span}; written back = reassignments.writeback_done_at set"),
        Table("open_disputes", "Open disputes: current step and due date", breaches.open_disputes(data, policy, as_of),
              f"disputes open at {_iso(as_of)}; steps from policy disputes.steps, due from the (re)opening"),
    ]
    if not weekly:
        tables += [
            Table("reassignments_by_clock", "Reassignments per clock", breaches.reassignment_counts(table),
                  f"reassignments where reassigned_at in {span}; metrics catalog: "
                  + ", ".join(breaches.REASSIGNMENT_COLUMNS.values()) + " (segments clock=...)"),
            Table("dispute_counts", "Disputes in the period", qt.dispute_counts(table),
                  f"dispute_notes (opened, reopened, closed) with at in {span}; open at the end = last event before "
                  f"{_iso(end)} not a closing; days to close from the first opening; outcome of each closing "
                  "(metrics catalog: disputes_*, dispute_close_median_days)"),
            Table("closed_disputes", "Disputes closed", breaches.closed_disputes(data, start, end),
                  f"disputes closed (and still closed) with closed_at in {span}"),
        ]
    return Section("Escalations, reassignments and disputes", [
        "Every clock with a ladder in the policy escalates; a reassigning level moves the MQA to the next rep. "
        "Disputes stay here until closed with a resolution."], tables=tables)


def regional_section(table: pd.DataFrame, policy: SlaPolicy, span: str) -> list[Section]:
    """The regional appendix (policy ``regions``; none without it): each region's windows beside the master
    policy's, and compliance per region from the metrics catalog's ``region=`` rows."""
    if not policy.regions:
        return []
    return [Section("Regional appendix", [
        "Each region runs the master SLA's structure with its own windows (one-page SLA: \"the adaptation is "
        "documented region by region in a single SLA appendix\"). An account belongs to the region listing its "
        "country, else to its owner's country's; (none) = accounts of no region, on the master policy's windows.",
    ], tables=[
        Table("regional_windows", "Windows each region replaces", regions.appendix_windows(policy),
              "policy regions (countries, clocks) beside the master policy's clocks"),
        Table("regional_compliance", "SLA clocks per region", regional_compliance(table, policy),
              f"sla_clocks where due_at in {span}; region from accounts.country, else the owner's users.country; "
              "metrics catalog segments region=...; targets from policy regions.<name>.targets"),
    ])]


def _weekly_mqa_tables(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                       policy: SlaPolicy, table: pd.DataFrame) -> list[Table]:
    """The per-week MQA rule judged week by week (policy ``targets.weekly_mqas``; none without it)."""
    rule = policy.targets.weekly_mqas if policy.targets is not None else None
    if rule is None:
        return []
    found = catalog.row(table, "mqa_weeks_in_band_rate")
    weeks = int(np.nan_to_num(found["denominator"])) if found is not None else 0
    inside = int(np.nan_to_num(found["numerator"])) if found is not None else 0
    band = "-".join(f"{bound:g}" for bound in (rule.min, rule.max) if bound is not None)
    band = band if rule.min is not None and rule.max is not None else (
        f">= {rule.min:g}" if rule.min is not None else f"<= {rule.max:g}")
    tier = f"Tier {rule.tier} " if rule.tier is not None else ""
    return [Table("mqa_weeks", f"{tier}MQAs per week against the weekly band {band}: {inside} of {weeks} "
                  f"week{'' if weeks == 1 else 's'} in band", sc.weekly_mqas(data, start, end, as_of, policy),
                  f"mqas by ISO week (Monday UTC) of trigger_at, weeks starting in {_span(start, end)}; a week is "
                  f"judged once it has ended by {_iso(as_of)}; policy targets.weekly_mqas; metrics catalog: mqas of "
                  "each week" + (f" (tier={rule.tier})" if rule.tier is not None else ""))]


def _leads_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy,
                   table: pd.DataFrame) -> list[Section]:
    """The lead measures of the period against the policy's targets (policy ``leads``; none without it)."""
    settings = policy.leads
    if settings is None:
        return []
    measures = review.lead_measures(table, policy)
    by_tier = table[table["segment"].str.startswith("tier=") & table["metric"].isin(list(measures["metric"]))]
    by_tier = by_tier.pivot(index="segment", columns="metric", values="value")
    by_tier = by_tier.reindex(columns=[metric for metric in measures["metric"]]).reset_index()
    personas = ", ".join(settings.personas) or "none given"
    geographies = ", ".join(settings.geographies) or "none given"
    return [Section("Leads", [
        "A lead is a contact of an account on the list with a marketing touch in the period. Personas (title, "
        f"whole words, any case): {personas}. Geographies (the account's country): {geographies}. An invalid "
        "email is empty or not of the form name@domain.tld. The engaged-leads target is per quarter, pro-rated "
        "to the period.",
    ], tables=[
        Table("lead_measures", "Lead volume and quality against target", measures,
              f"contacts with a marketing touch (activities) in {_span(start, end)}, of {_measured_accounts(data)}; "
              "titles and emails from contacts, country from accounts; targets from policy leads"),
        Table("leads_by_tier", "Lead measures per tier", by_tier, "as above, per the account's tier"),
    ])]
