"""The commitments the reports compare against: bands, bounds, tier-move rules, per-week MQAs and
custom targets on any computed metric (:data:`METRICS`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from abm_sla.domain.policy.base import Open


class Band(Open):
    min_pct: float | None = Field(default=None, ge=0, le=100)
    max_pct: float | None = Field(default=None, ge=0, le=100)


class TierMoves(Open):
    """Tier-move rules (see docs/reports/tier-moves-monthly.md) and how long sales has to decide a recommendation."""

    promote_3_to_2: dict[str, Any] | None = None
    promote_2_to_1: dict[str, Any] | None = None
    demote_1_to_2: dict[str, Any] | None = None
    remove_from_list: dict[str, Any] | None = None
    promote_3_to_1: dict[str, Any] | None = None
    decide_within_days: float = Field(default=30, gt=0)
    quiet_days_after_decline: float = Field(default=90, ge=0)
    #: The Tier 3 watch list (implementation guide): each promotion recommended for a Tier 3 account is a
    #: briefing task to its owner, listed in the weekly report and in ``abm-sla export briefings``.
    brief_sales: bool = False


#: Metrics the scorecard computes for any period, usable in ``targets.custom`` (``domain.scorecard.metric_values``
#: computes each one; ``tier`` narrows those marked per tier).
METRICS: dict[str, str] = {
    "mqas": "MQAs fired (per tier or all)",
    "acceptance_pct": "accepted / MQAs, % (per tier or all)",
    "rejection_pct": "rejected / verdicts, % (per tier or all)",
    "mqa_to_opportunity_pct": "MQAs with an opportunity after the trigger, % (per tier or all)",
    "sql_to_opportunity_pct": "accepted MQAs (SQLs) that reached an opportunity, % (per tier or all)",
    "engagement_rate_pct": "accounts with >= 1 marketing touch, % (per tier or all)",
    "multi_stakeholder_pct": "accounts with >= 2 engaged contacts, % (per tier or all)",
    "engaged_contacts_per_account": "mean engaged contacts per engaged account (per tier or all)",
    "engaged_accounts": "accounts in the engaged-account stage at the period end (per tier or all)",
    "tempo_on_pct": "accounts on their tier's touch tempo, % (per tier or all)",
    "channel_coverage_pct": "engaged accounts covered on enough channels, % (per tier or all)",
    "win_rate_pct": "won / closed opportunities, % (per tier or all)",
    "sales_cycle_days": "median days created → won of the opportunities won (per tier or all)",
    "routing_time_met_pct": "routing_time clocks met, % of decided (per tier or all)",
    "first_touch_met_pct": "first_touch clocks met, % of decided (per tier or all)",
    "status_update_met_pct": "status_update clocks met, % of decided (per tier or all)",
    "cadence_met_pct": "cadence clocks met, % of decided (per tier or all)",
    "marketing_response_met_pct": "marketing_response clocks met, % of decided (per tier or all)",
}


class Bounds(Open):
    """A value's acceptable range: ``min`` and/or ``max`` (inclusive)."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be above max")
        return self


class WeeklyMqas(Bounds):
    """A per-week rule on MQAs (basic SLA, early stage: "5-10 qualified accounts per week"), judged week by week
    inside the monthly and quarterly reports; ``tier`` narrows it to one tier (default: every tier)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tier: Literal[1, 2, 3] | None = None


class CustomTarget(Bounds):
    """A target on any computed metric (``METRICS``), optionally for one tier (default: all tiers)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    metric: str
    tier: Literal[1, 2, 3] | None = None
    side: Literal["marketing", "sales", "joint"] = "joint"

    @field_validator("metric")
    @classmethod
    def _known(cls, metric: str) -> str:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
        return metric


class Targets(Open):
    """Commitments the reports compare against (not part of SPEC; all optional).

    Operators: ``*_pct``/``*_rate`` minimums are ``>=`` except ``tier1_acceptance_pct`` and
    ``tier2_mqa_to_opportunity_pct``, which the designs phrase as "above" (``>``).
    """

    first_touch_met_pct: dict[Literal[1, 2, 3], float] | None = None
    rejection_rate: Band | None = None
    tier1_win_rate_pct: float | None = Field(default=None, ge=0, le=100)
    sales_cycle_days_max: float | None = Field(default=None, gt=0)
    opportunity_to_won_pct: float | None = Field(default=None, ge=0, le=100)
    monthly_mqa_commitments: dict[Literal[1, 2, 3], int] | None = None
    #: the optional upper bound of a tier's monthly MQAs (implementation guide: Tier 2 "2-3 MQAs per month"): with
    #: it the month is judged in the band [commitment, max]; absent = only the minimum (the contract's default)
    monthly_mqa_max: dict[Literal[1, 2, 3], int] | None = None
    #: a per-week band of MQAs judged week by week in the monthly and quarterly reports (basic SLA); absent = off
    weekly_mqas: WeeklyMqas | None = None
    tier_moves: TierMoves | None = None
    engagement_rate_pct: float | None = Field(default=None, ge=0, le=100)
    multi_stakeholder_pct: float | None = Field(default=None, ge=0, le=100)
    engaged_contacts_per_account: Bounds | None = None
    tier1_acceptance_pct: float | None = Field(default=None, ge=0, le=100)
    tier2_mqa_to_opportunity_pct: float | None = Field(default=None, ge=0, le=100)
    sql_to_opportunity_pct: float | None = Field(default=None, ge=0, le=100)
    cac_max: float | None = Field(default=None, gt=0)
    custom: list[CustomTarget] = Field(default_factory=list)

    @model_validator(mode="after")
    def _mqa_band(self) -> Targets:
        low = self.monthly_mqa_commitments or {}
        for tier, high in (self.monthly_mqa_max or {}).items():
            if tier not in low:
                raise ValueError(f"monthly_mqa_max: tier {tier} has no monthly_mqa_commitments (the band's minimum)")
            if high < low[tier]:
                raise ValueError(f"monthly_mqa_max: tier {tier}'s max {high} is below its commitment {low[tier]}")
        return self
