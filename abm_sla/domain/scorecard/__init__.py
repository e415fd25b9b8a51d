"""The SLA scorecard: marketing, sales and joint numbers per tier and per owner, for any period.

Pure and vectorized. Every function takes the frames (:class:`SlaData`), a period ``[start, end)`` and
an ``as_of``: outcomes (statuses, opportunities, wins) count only when they happened at or before it.
Targets come from the policy's ``targets`` section; a missing target leaves its column empty.

Definitions (the report footnotes repeat them):

- an MQA belongs to the period of its ``trigger_at``; its *verdict* is the class (the policy's
  ``dispositions.accepted`` / ``dispositions.rejected``) of the latest disposition of its episode in one
  (:func:`abm_sla.domain.dispositions.episode_dispositions`);
- an MQA *converts* when an opportunity on the account is created at or after ``trigger_at`` (same bound);
- a clock belongs to the period its ``due_at`` falls in, as evaluated in ``sla_clocks``; met % is
  met / (met + missed), pending clocks are counted apart;
- response time is business hours from ``routed_at`` to the first-touch ``met_at`` in the owner's
  calendar (:mod:`abm_sla.domain.calendar`), 0 when the touch came before routing;
- win rate and opportunity → won are won / closed over opportunities closed in the period; the sales
  cycle is days from ``created_at`` to ``close_date`` of the opportunities won in the period.

The package holds it by concept: ``data`` (:class:`SlaData`, the shared helpers), ``periods``, ``quality``
(marketing's MQAs and engagement), ``clocks`` (sales' clocks, response times, escalations), ``pipeline``
(progression, credit, attribution, win rates), ``judgement`` (a commitment row), ``benchmarks``,
``commitment_table`` (commitments, headline, chronic misses) and ``tier_rules``. Below: every public name.
"""

from abm_sla.domain.scorecard.benchmarks import (
    BENCHMARKS,
    CATALOG_IDS,
    METRIC_SAMPLES,
    benchmark_commitments,
    metric_values,
)
from abm_sla.domain.scorecard.clocks import (
    RESPONSE_METRICS,
    clock_compliance,
    clock_misses,
    clock_names,
    clocks_due,
    compliance_trend,
    open_escalations,
    response_summary,
    response_times,
    tier_window,
    window_text,
)
from abm_sla.domain.scorecard.commitment_table import (
    BENCHMARK_SIDES,
    SAMPLE_UNITS,
    SIDES,
    chronic_misses,
    commitment_owner,
    commitment_sides,
    commitments,
    headline,
    unknown_owner_keys,
)
from abm_sla.domain.scorecard.data import (
    ALL,
    CLOCKS,
    DAY,
    DERIVED_COLUMNS,
    MARKETING_RESPONSE,
    TIERS,
    SlaData,
    account_dimensions,
    catalog_breakdown,
    empty_derived,
    normalize_tier,
    owner_names,
    pct,
    within,
)
from abm_sla.domain.scorecard.judgement import (
    COMMITMENT_COLUMNS,
    catalog_table,
    custom_name,
    has_data,
    latest_measurement,
)
from abm_sla.domain.scorecard.periods import (
    parse_period,
    previous_period,
    previous_quarter,
    quarter_label,
    quarter_of,
    weeks,
)
from abm_sla.domain.scorecard.pipeline import (
    ATTRIBUTION_METRICS,
    CREDIT_PARTS,
    MIN_SAMPLE,
    PROGRESSION_METRICS,
    WIN_METRICS,
    credit_parts,
    opportunity_frame,
    pipeline_attribution,
    pipeline_credit,
    progression,
    win_rates,
)
from abm_sla.domain.scorecard.quality import (
    ENGAGEMENT_METRICS,
    QUALITY_METRICS,
    WEEKLY_MQA_COLUMNS,
    engagement,
    listed_accounts,
    marketing_quality,
    mqa_outcomes,
    rejection_position,
    weekly_mqas,
)
from abm_sla.domain.scorecard.tier_rules import (
    HIGH_INTENT_PAGES,
    HIGH_INTENT_TOUCHES,
    ActivityFacts,
    account_activity,
    activity_extent,
    activity_facts,
    buying_signal_days,
    buying_signal_pages,
    engaged_stakeholders,
    tier_move_intent_min,
    tier_move_window,
    tier_moves,
)

__all__ = [
    "ALL",
    "ATTRIBUTION_METRICS",
    "BENCHMARKS",
    "BENCHMARK_SIDES",
    "CATALOG_IDS",
    "CLOCKS",
    "COMMITMENT_COLUMNS",
    "CREDIT_PARTS",
    "DAY",
    "DERIVED_COLUMNS",
    "ENGAGEMENT_METRICS",
    "HIGH_INTENT_PAGES",
    "HIGH_INTENT_TOUCHES",
    "MARKETING_RESPONSE",
    "METRIC_SAMPLES",
    "MIN_SAMPLE",
    "PROGRESSION_METRICS",
    "QUALITY_METRICS",
    "RESPONSE_METRICS",
    "SAMPLE_UNITS",
    "SIDES",
    "TIERS",
    "WEEKLY_MQA_COLUMNS",
    "WIN_METRICS",
    "ActivityFacts",
    "SlaData",
    "account_activity",
    "account_dimensions",
    "activity_extent",
    "activity_facts",
    "benchmark_commitments",
    "buying_signal_days",
    "buying_signal_pages",
    "catalog_breakdown",
    "catalog_table",
    "chronic_misses",
    "clock_compliance",
    "clock_misses",
    "clock_names",
    "clocks_due",
    "commitment_owner",
    "commitment_sides",
    "commitments",
    "compliance_trend",
    "credit_parts",
    "custom_name",
    "empty_derived",
    "engaged_stakeholders",
    "engagement",
    "has_data",
    "headline",
    "latest_measurement",
    "listed_accounts",
    "marketing_quality",
    "metric_values",
    "mqa_outcomes",
    "normalize_tier",
    "open_escalations",
    "opportunity_frame",
    "owner_names",
    "parse_period",
    "pct",
    "pipeline_attribution",
    "pipeline_credit",
    "previous_period",
    "previous_quarter",
    "progression",
    "quarter_label",
    "quarter_of",
    "rejection_position",
    "response_summary",
    "response_times",
    "tier_move_intent_min",
    "tier_move_window",
    "tier_moves",
    "tier_window",
    "unknown_owner_keys",
    "weekly_mqas",
    "weeks",
    "win_rates",
    "window_text",
    "within",
]
