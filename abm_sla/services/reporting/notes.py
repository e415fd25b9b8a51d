"""The notes above a report: no data in the period, clocks evaluated earlier, targets the policy lacks."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard import SlaData
from abm_sla.services.reporting.common import Report, _iso, _span, period_label


def no_data_line(data: SlaData, period: str, start: pd.Timestamp, end: pd.Timestamp) -> str | None:
    """One line when the pipeline measured nothing in the period (else None)."""
    if sc.has_data(data, start, end):
        return None
    latest = sc.latest_measurement(data)
    where = (f"the warehouse's latest measurement is {latest:%Y-%m-%d} ({period_label(*_period_of(latest))})"
             if latest is not None else "the warehouse has no scores, MQAs or clocks yet")
    return f"No data for {period}: no score, MQA or SLA clock in {_span(start, end)}; {where}."


def no_data_note(report: Report) -> str:
    """The report's "No data for …" note (other notes, such as the sign-off line, may come before it)."""
    return next((note for note in report.notes if note.startswith("No data for ")), report.notes[0])


def _period_of(moment: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    year, week, _ = moment.isocalendar()
    return sc.parse_period(f"{year}-W{week:02d}")


def _evaluation_notes(data: SlaData, as_of: pd.Timestamp) -> list[str]:
    """Say when the clocks were last evaluated if that is before the report's as-of."""
    evaluated = data.clocks_evaluated_at()
    if evaluated is None or evaluated >= as_of:
        return []
    return [f"Clock statuses are those of the last SLA evaluation, as of {_iso(evaluated)}: a clock due "
            f"between then and {_iso(as_of)} still shows as pending. Run `sla-monitor` (or `abm-sla run`) "
            "as of the period's end for final figures."]


def _policy_notes(policy: SlaPolicy) -> list[str]:
    targets = policy.targets
    if targets is None:
        return ["The policy has no targets section: numbers are shown without targets."]
    missing = [name for name in ("first_touch_met_pct", "rejection_rate", "tier1_win_rate_pct",
                                 "sales_cycle_days_max", "opportunity_to_won_pct", "monthly_mqa_commitments",
                                 "tier_moves") if getattr(targets, name) is None]
    notes = [f"Targets not set in the policy: {', '.join(missing)}."] if missing else []
    unknown = sc.unknown_owner_keys(policy)
    if unknown:
        notes.append(f"Policy owners names no commitment of the scorecard: {', '.join(unknown)} (use a commitment "
                     "name such as first_touch_met_pct, custom:<metric>, or a side: marketing, sales, joint).")
    return [*notes, f"Policy: {policy.name}. Status-update and cadence clocks have no % target in the policy."]
