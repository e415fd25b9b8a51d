"""The catalog's vocabulary: the :class:`Metric` entry, the metrics table's columns, the kinds, units and
segments, and the names the facts and the entries share (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from abm_sla.domain import dispositions
from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy import DISPOSITIONS
from abm_sla.domain.sla import OPTIONAL_CLOCKS

#: The columns of every metrics table (stable: BI tools read them).
COLUMNS = ["report", "period_start", "period_end", "metric", "segment", "numerator", "denominator", "value",
           "unit", "target", "verdict", "additive"]
ALL = "all"
#: The units of hours (business or calendar), whose percentiles are kept to two decimals.
HOUR_UNITS = ("hours", "calendar_hours")
SEGMENTS = ("tier", "owner", "source", "list", "region", "clock", "level", "rule", "band")
#: ``source=`` segment names of the pipeline-credit rule's three parts (sourced, influenced only, sales).
SOURCE_SEGMENTS = ("marketing", "influenced", "sales")
MET, MISSED = "met", "missed"


@dataclass(frozen=True)
class Metric:
    """One catalog entry."""

    id: str
    label: str
    definition: str
    unit: str  # count, money, pct (100 × numerator / denominator), hours (business), calendar_hours, days, fraction
    family: str  # which facts it is computed from (mqas, clocks, responses, created, closed, accounts, meetings)
    numerator: str
    denominator: str = ""
    segments: tuple[str, ...] = ("tier", "owner")
    period_by: str = ""
    target: str = ""
    kind: str = "count"  # count, sum, ratio (a pct), per (numerator / denominator, empty when either is 0),
    # mean (numerator / denominator, empty when the denominator is 0), median, p80 and p90 (linear),
    # per_month (numerator / the calendar months of the period elapsed by as_of, :func:`elapsed_months`), auc and
    # lift (:data:`RANKING`)
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


#: Families measured at the period's last moment (a snapshot: the weeks of a month do not add up to it): the
#: accounts at one moment, the escalations open at the period's end, and the distinct counts (a lead or an
#: intent-list account of two months is one of their quarter).
SNAPSHOT_FAMILIES = ("accounts", "escalations", "tempo", "stage", "coverage", "conversations", "top_accounts",
                     "leads", "intent", "account_updates", "campaign_tiers", "campaign_plan", "attendance",
                     "list_agreement", "disputes_open")


#: The statuses a clock can have (sla_clocks.status), each counted by the clock family.
CLOCK_STATUSES = ("met", "missed", "pending")
#: Every clock the clock family measures (the SLA clocks, marketing's response and the optional ones).
ALL_CLOCKS = (*sc.CLOCKS, sc.MARKETING_RESPONSE, *OPTIONAL_CLOCKS)
#: The dispositions the disposition-mix metrics count: the built-in ones, ``other`` (a name only the policy's
#: map adds), ``unknown`` (a status value the map lacks) and ``none`` (no status change yet).
OTHER_DISPOSITION, NO_DISPOSITION = "other", "none"
MIX_DISPOSITIONS = (*DISPOSITIONS, OTHER_DISPOSITION, dispositions.UNKNOWN, NO_DISPOSITION)
#: An account on the list is quiet after this many days without any activity (the weekly Tier 1 status).
QUIET_DAYS = 30
#: The cross segment of the headline's per-owner split: ``tier=1,owner=U003``.
TIER_OWNER = "tier_owner"
#: What a routing_time clock due in the period was measured to (the feedback loop's routing-basis table), in the
#: table's order, and the catalog metric counting each.
ROUTING_BASES = {"CRM write-back": "routing_clocks_crm_writeback",
                 "CRM owner change": "routing_clocks_crm_owner_change",
                 "pipeline run (routed_at)": "routing_clocks_pipeline_run",
                 "not routed yet": "routing_clocks_not_routed"}
#: The cross segment of the escalations-by-clock-and-level table: ``clock=first_touch,level=2``.
CLOCK_LEVEL = "clock_level"
#: A kind counting the distinct values of a fact column (an MQA, a person) per segment: not additive.
DISTINCT = "distinct"
#: A kind taking a segment's share of the whole: 100 × the segment's sum of a fact column / the sum over every
#: fact row (the ``all`` row: 100 when the sum is not 0); not additive.
SHARE = "share"
#: A kind taking the smallest value of a fact column per segment (the age of the youngest agreement).
SMALLEST = "min"
#: Kinds ranking a score (``column``) against an outcome (``over``, boolean) per segment: the area under the ROC
#: curve and the outcome rate in the top tenth by score over the overall rate (the quarterly pipeline check).
RANKING = ("auc", "lift")
#: A unit: a share as a fraction (0-1, to 4 decimals), as the scoring model's evaluation shows it.
FRACTION = "fraction"
