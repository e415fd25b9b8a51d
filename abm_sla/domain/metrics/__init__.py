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

The package by concept: ``base`` (:class:`Metric`, columns, kinds, segments), ``catalog`` and ``catalog_tables``
(:data:`CATALOG`, the entries), ``facts`` (one frame per family), ``aggregate`` (per segment, :func:`compute`),
``targets`` (targets and verdicts), ``reading`` (read, change, a family's tables per month or week, the MQA volume
table, the CSV form) and ``reference`` (``docs/metrics.md``).
Below: the names the other modules use.
"""

from abm_sla.domain.metrics.aggregate import (
    compute,
    elapsed_months,
    family_table,
    reusing_tables,
    row,
    tier_owner_values,
    tier_table,
    value,
)
from abm_sla.domain.metrics.base import (
    ALL,
    CLOCK_STATUSES,
    COLUMNS,
    MET,
    MISSED,
    MIX_DISPOSITIONS,
    PER_MONTH,
    QUANTILES,
    QUIET_DAYS,
    ROUTING_BASES,
    SOURCE_SEGMENTS,
    Metric,
)
from abm_sla.domain.metrics.catalog import BY_ID, CATALOG, clock_metric_ids, disposition_metric_id
from abm_sla.domain.metrics.facts import (
    FOLLOW_UP_LOOKBACK,
    account_engagement,
    account_facts,
    clock_facts,
    closed_facts,
    created_facts,
    escalation_level_facts,
    marketing_facts,
    meeting_facts,
    mqa_fact_columns,
    mqa_facts,
    reassignment_facts,
    response_facts,
    routing_basis_facts,
    stage_fact_columns,
    team_clocks,
    tempo_fact_columns,
)
from abm_sla.domain.metrics.reading import change, csv_frame, mqa_volume, per_period, read
from abm_sla.domain.metrics.reference import reference_markdown
from abm_sla.domain.metrics.targets import target_bound

__all__ = ["ALL", "BY_ID", "CATALOG", "CLOCK_STATUSES", "COLUMNS", "FOLLOW_UP_LOOKBACK", "MET", "MISSED",
           "MIX_DISPOSITIONS", "PER_MONTH", "QUANTILES", "QUIET_DAYS", "ROUTING_BASES", "SOURCE_SEGMENTS", "Metric",
           "account_engagement", "account_facts", "change", "clock_facts", "clock_metric_ids", "closed_facts",
           "compute", "created_facts", "csv_frame", "disposition_metric_id", "elapsed_months",
           "escalation_level_facts", "family_table", "marketing_facts", "meeting_facts", "mqa_fact_columns",
           "mqa_facts", "mqa_volume", "per_period", "read", "reassignment_facts", "reference_markdown",
           "response_facts", "reusing_tables", "routing_basis_facts", "row", "stage_fact_columns", "target_bound",
           "team_clocks", "tempo_fact_columns",
           "tier_owner_values", "tier_table", "value"]
