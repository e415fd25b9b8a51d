"""What the reports show besides the clocks and targets (each absent or off by default): pipeline credit,
spend for CAC, the sign-off, the scoring-refresh prompt, lead measures, the weekly intent list, CRM
updates, the routed record and the monthly review's lists."""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from abm_sla.domain.frames import ACCOUNT_COLUMNS, ACTIVITY_TYPES, MARKETING_TOUCHES
from abm_sla.domain.policy.base import Strict


class PipelineCredit(Strict):
    """Which opportunities marketing gets credit for (one rule for every report; not part of SPEC).

    ``touch_order`` (the seven commitments): marketing-sourced = a marketing touch in the ``lookback_days``
    before the opportunity and before any sales touch; ``mqa``: an MQA fired on the account in that lookback.
    """

    rule: Literal["touch_order", "mqa"] = "touch_order"
    lookback_days: float = Field(default=180, gt=0)


class SpendRow(Strict):
    """Marketing spend of one channel over ``[period_start, period_end)`` (dates or UTC timestamps)."""

    period_start: dt.datetime
    period_end: dt.datetime
    channel: str = Field(min_length=1)
    amount: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> SpendRow:
        if self.period_end <= self.period_start:
            raise ValueError("period_end must be after period_start")
        return self


class Money(Strict):
    """Spend for CAC (not part of SPEC; none by default: no CAC is shown). ``spend`` rows inline, and/or
    ``spend_file``: a CSV ``period_start, period_end, channel, amount`` (relative to the policy file)."""

    spend: tuple[SpendRow, ...] = ()
    spend_file: str = ""


class Signoff(Strict):
    """The SLA's sign-off (not part of SPEC): the roles whose signature every version of the policy needs
    (empty: any signature counts)."""

    roles: tuple[str, ...] = ()


class ScoringRefresh(Strict):
    """The monthly review's scoring-refresh prompt (not part of SPEC; off at 0): shown when the scoring model
    file was last changed more than ``max_age_days`` before the review's end."""

    max_age_days: int = Field(default=0, ge=0)


class Leads(Strict):
    """Lead-level measures (ABM template; not part of SPEC; absent by default: not shown). A lead is a contact of
    an account on the list with a marketing touch in the period. ``personas``: regular expressions matched
    case-insensitively at word boundaries of the contact's title; ``geographies``: ISO alpha-2 countries (or
    ``regions`` names) of the contact's account. A share is shown only when its list is given."""

    personas: tuple[str, ...] = ()
    geographies: tuple[str, ...] = ()
    regions: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    engaged_leads_per_quarter_min: float | None = Field(default=None, ge=0)
    persona_share_pct: float | None = Field(default=None, ge=0, le=100)
    geography_share_pct: float | None = Field(default=None, ge=0, le=100)
    invalid_email_max_pct: float | None = Field(default=None, ge=0, le=100)

    @field_validator("personas")
    @classmethod
    def _patterns(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"persona pattern {pattern!r} is not a regular expression: {error}") from None
        return patterns

    @property
    def countries(self) -> frozenset[str]:
        """The target geographies as upper-case country codes (region names expanded)."""
        out: set[str] = set()
        for name in self.geographies:
            out.update(self.regions.get(name, (name,)))
        return frozenset(code.strip().upper() for code in out)


class IntentList(Strict):
    """The weekly list of accounts with ``min_signals``+ intent signals in the week (basic SLA; not part of SPEC;
    absent by default: not shown). A signal: an intent row with score >= ``min_score``; ``distinct_topics``
    counts each topic once per account and week."""

    min_signals: int = Field(default=3, ge=1)
    min_score: float = Field(default=0, ge=0, le=100)
    distinct_topics: bool = False


class CrmUpdates(Strict):
    """How promptly the CRM is kept up to date (ABM template; not part of SPEC; absent by default: not shown).

    ``hours``: an activity is logged in time when ``logged_at - occurred_at <= hours`` (an activity logged before
    it happened, e.g. a booked meeting, is in time); ``sales_types``: the sales meetings and calls measured (every
    one, not only an MQA's first touch); ``marketing_types``: the engaged-lead touches marketing enters.
    ``logged_pct`` / ``accounts_updated_pct``: optional targets (``>=``) of the shares logged in time and of the
    listed accounts updated in the week."""

    hours: float = Field(default=24, gt=0)
    sales_types: tuple[str, ...] = ("meeting", "call")
    marketing_types: tuple[str, ...] = MARKETING_TOUCHES
    logged_pct: float | None = Field(default=None, ge=0, le=100)
    accounts_updated_pct: float | None = Field(default=None, ge=0, le=100)

    @field_validator("sales_types", "marketing_types")
    @classmethod
    def _known_types(cls, types: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(types) - set(ACTIVITY_TYPES))
        if unknown:
            raise ValueError(f"unknown activity type {unknown[0]!r}")
        return types


class RoutedRecord(Strict):
    """The routed MQA's record is complete (one-page SLA, seven commitments; not part of SPEC; absent by default:
    not shown): ``account_fields`` must be filled on the MQA's account (its profile); with ``reasons`` the MQA
    must carry the score's reasons (the engagement summary the write-back task shows). ``complete_pct``: an
    optional target (``>=``) of the share complete."""

    account_fields: tuple[str, ...] = ("industry", "employees", "country")
    reasons: bool = True
    complete_pct: float | None = Field(default=None, ge=0, le=100)

    @field_validator("account_fields")
    @classmethod
    def _account_fields(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(names) - set(ACCOUNT_COLUMNS) | set(names) & {"account_id"})
        if unknown:
            raise ValueError(f"unknown account field {unknown[0]!r}; known: {', '.join(ACCOUNT_COLUMNS[1:])}")
        return names


class MonthlyReview(Strict):
    """The monthly review's patterns and lists (seven commitments, ABM template; not part of SPEC; absent by
    default: not shown): disqualification patterns, conversion by hand-off source, closed deals, accounts stalled
    after ``stalled_days`` without activity, ``trend_months`` of engagement, the ``top_accounts`` per tier."""

    stalled_days: float = Field(default=30, gt=0)
    top_accounts: int = Field(default=5, ge=1)
    trend_months: int = Field(default=6, ge=2)
