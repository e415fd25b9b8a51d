"""The generated reference of the catalog, ``docs/metrics.md`` (``abm-sla docs metrics``)."""

from __future__ import annotations

from abm_sla.domain.metrics.base import (
    COLUMNS,
)
from abm_sla.domain.metrics.catalog import CATALOG

# -- the reference -------------------------------------------------------------------------------------

_UNITS = {"count": "count", "money": "amount (currency of the CRM)", "pct": "% (100 × numerator / denominator)",
          "hours": "business hours", "calendar_hours": "calendar hours", "days": "days",
          "fraction": "fraction (0-1)"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def reference_markdown() -> str:
    """``docs/metrics.md``: every catalog entry, for a reader who wants to know what a number means and where its
    data comes from (generated: ``abm-sla docs metrics``)."""
    lines = [
        "# Metrics reference",
        "",
        "<!-- generated from abm_sla/domain/metrics/ by `abm-sla docs metrics --out docs/metrics.md`; "
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
        "opened, `clock=first_touch`, `level=2` or their cross `clock=first_touch,level=2` (segment `clock_level`); "
        "for the tier-move recommendations, `rule=promote_3_to_1` (the tier-move rule).",
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
