"""The SLA policy (SPEC section 6) as validated data, loaded from YAML.

Every preset in ``config/presets`` runs through the same engine: windows are
business hours, calendar hours, calendar days or "same business day"; first-touch
windows are per tier with optional overrides keyed on a hand-off signal; the
escalation ladder lists levels with an offset and a recipient.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from abm_sla.domain.frames import (
    ACCOUNT_COLUMNS,
    ACTIVITY_TYPES,
    HOT_FLAG,
    MARKETING_SIDE,
    MARKETING_TOUCHES,
)
from abm_sla.domain.freshness import Freshness
from abm_sla.errors import ConfigError

DEFAULT_PATH = Path(__file__).resolve().parents[3] / "config" / "sla.yaml"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TIERS = (1, 2, 3)
OWNER_MANAGER = "owner_manager"

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WindowKind = Literal["business_hours", "hours", "days", "same_business_day"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BusinessHours(Strict):
    """Opening days and local opening hours (``HH:MM``, quoted in YAML)."""

    days: list[Weekday] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"], min_length=1)
    open: dt.time = dt.time(9)
    close: dt.time = dt.time(17)

    @field_validator("open", "close", mode="before")
    @classmethod
    def _clock_text(cls, value: Any) -> Any:
        if isinstance(value, int):
            raise ValueError("write the time as a quoted 'HH:MM' string")
        return value

    @model_validator(mode="after")
    def _open_before_close(self) -> BusinessHours:
        if self.close <= self.open:
            raise ValueError("close must be later than open")
        return self

    @property
    def weekdays(self) -> tuple[int, ...]:
        """Monday = 0 ... Sunday = 6."""
        return tuple(sorted({WEEKDAYS.index(day) for day in self.days}))

    @property
    def hours_per_week(self) -> float:
        seconds = dt.datetime.combine(dt.date.min, self.close) - dt.datetime.combine(dt.date.min, self.open)
        return seconds.total_seconds() / 3600 * len(self.weekdays)


class Window(Strict):
    """How far a due time is from its start: exactly one of the fields."""

    business_hours: float | None = Field(default=None, ge=0)
    hours: float | None = Field(default=None, ge=0)
    days: float | None = Field(default=None, ge=0)
    same_business_day: bool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Window:
        if len(self._given()) != 1:
            raise ValueError("give exactly one of business_hours, hours, days, same_business_day: true")
        return self

    def _given(self) -> list[str]:
        values = {name: getattr(self, name) for name in type(self).model_fields}
        return [name for name, value in values.items() if value is not None and value is not False]

    @property
    def kind(self) -> WindowKind:
        return self._given()[0]

    @property
    def amount(self) -> float:
        """Hours for ``business_hours``/``hours``, days for ``days``, 0 for ``same_business_day``."""
        value = getattr(self, self.kind)
        return 0.0 if isinstance(value, bool) else float(value)


class FirstTouchOverride(Strict):
    """A window that replaces the tier window when the MQA matches (first matching override wins)."""

    tier: Literal[1, 2, 3] | None = None
    signal: Literal["pricing_visit"] | None = None
    window: Window


class FirstTouchClock(Strict):
    windows: dict[Literal[1, 2, 3], Window]
    overrides: list[FirstTouchOverride] = Field(default_factory=list)

    @field_validator("windows")
    @classmethod
    def _every_tier(cls, windows: dict[int, Window]) -> dict[int, Window]:
        missing = [tier for tier in TIERS if tier not in windows]
        if missing:
            raise ValueError(f"missing window for tier {missing[0]}")
        return windows


class CadenceClock(Strict):
    touches: int = Field(ge=1)
    window: Window


class RecurringClock(Strict):
    """``status_recurring``: while an MQA is open, one clock per period from routed_at (default weekly)."""

    every: Window = Field(default_factory=lambda: Window(days=7))

    @field_validator("every")
    @classmethod
    def _positive(cls, every: Window) -> Window:
        if every.kind == "same_business_day" or every.amount <= 0:
            raise ValueError("the period must be a positive number of business_hours, hours or days")
        return every


class Clocks(Strict):
    """SPEC's four clocks, plus optional ones switched on by the policy (absent = off)."""

    routing_time: Window
    first_touch: FirstTouchClock
    status_update: Window
    cadence: CadenceClock
    #: where routing time ends: ``assigned`` = the owner's assignment in the CRM (write-back success or
    #: the CRM's own ``owner_assigned`` change), else routed_at; ``routed`` = routed_at always (SPEC's letter)
    routing_time_end: Literal["assigned", "routed"] = "assigned"
    quality_feedback: Window | None = None
    status_recurring: RecurringClock | None = None
    #: ABM template: an accepted MQA (a SQL) contacted by sales within this window of its acceptance
    sql_contact: Window | None = None
    #: CRM hygiene: the MQA's first sales touch entered in the CRM within this window of when it happened
    crm_hygiene: Window | None = None
    #: ABM template: an MQA sales has not accepted (a non-SQL lead) contacted within this window of its receipt
    non_sql_contact: Window | None = None


class EscalationLevel(Strict):
    """One ladder step: opened ``after`` past the base moment, sent to one or several roles (or the owner's
    manager); ``reassign: true`` also moves the MQA to the next rep by round-robin when the step opens."""

    level: int = Field(ge=1)
    after: Window
    base: Literal["due_at", "routed_at"] = "due_at"
    to: str | tuple[str, ...] = Field(min_length=1)
    ask: str = "make contact and log the call, or reject/nurture the account"
    reassign: bool = False

    @field_validator("after")
    @classmethod
    def _no_same_day(cls, after: Window) -> Window:
        if after.kind == "same_business_day":
            raise ValueError("an escalation offset cannot be same_business_day")
        return after

    @field_validator("to", mode="before")
    @classmethod
    def _normalized(cls, to: Any) -> Any:
        """``revops`` stays text; ``[cmo, head of sales]`` becomes a tuple (one name: text again)."""
        if isinstance(to, str):
            return to.strip().lower()
        if isinstance(to, list | tuple):
            names = tuple(dict.fromkeys(str(name).strip().lower() for name in to if str(name).strip()))
            if not names:
                raise ValueError("name at least one role (or owner_manager)")
            return names[0] if len(names) == 1 else names
        return to

    @property
    def roles(self) -> tuple[str, ...]:
        """The recipients' roles (``owner_manager`` = the owner's manager), in the order given."""
        return (self.to,) if isinstance(self.to, str) else self.to


class Escalation(Strict):
    """SPEC's ladder (the ``escalation:`` key): first-touch misses only."""

    clock: Literal["first_touch"] = "first_touch"
    levels: list[EscalationLevel] = Field(default_factory=list)

    @field_validator("levels")
    @classmethod
    def _numbered(cls, levels: list[EscalationLevel]) -> list[EscalationLevel]:
        numbers = [level.level for level in levels]
        if numbers != list(range(1, len(levels) + 1)):
            raise ValueError(f"levels must be numbered 1..{len(levels)} in order, got {numbers}")
        if sum(level.reassign for level in levels) > 1:
            raise ValueError("at most one level may reassign")
        return levels


class ClockEscalation(Escalation):
    """One entry of ``escalations:``: the ladder of any clock the SLA measures (by its name in sla_clocks)."""

    clock: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")  # type: ignore[assignment]


class DisputeStep(Strict):
    """One step of the dispute process: due ``after`` the dispute was (re)opened, owed by ``who``."""

    step: int = Field(ge=1)
    name: str = Field(min_length=1)
    after: Window
    who: str = Field(min_length=1)

    @field_validator("after")
    @classmethod
    def _calendar(cls, after: Window) -> Window:
        if after.kind not in ("hours", "days"):
            raise ValueError("a dispute step is due after calendar hours or days")
        return after


def _template_steps() -> list[DisputeStep]:
    """The ABM template: week 1 the owners meet, week 2 the managers, month 2 the SLA renegotiation."""
    return [DisputeStep(step=1, name="owners meet", after=Window(days=7), who="account owners"),
            DisputeStep(step=2, name="managers meet", after=Window(days=14), who="sales and marketing managers"),
            DisputeStep(step=3, name="SLA renegotiation", after=Window(days=60), who="SLA renegotiation")]


class Disputes(Strict):
    steps: list[DisputeStep] = Field(default_factory=_template_steps, min_length=1)

    @field_validator("steps")
    @classmethod
    def _ordered(cls, steps: list[DisputeStep]) -> list[DisputeStep]:
        if [step.step for step in steps] != list(range(1, len(steps) + 1)):
            raise ValueError("steps must be numbered 1..n in order")
        hours = [step.after.amount * (24 if step.after.kind == "days" else 1) for step in steps]
        if hours != sorted(hours):
            raise ValueError("each step must be due no earlier than the one before")
        return steps


class Open(BaseModel):
    """Report settings: known fields are checked, unknown ones are kept for later reports."""

    model_config = ConfigDict(extra="allow", frozen=True)


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


# -- the marketing side (issue 15; not part of SPEC, every part optional) ---------------------------

Channel = Literal["email", "ads", "content", "events"]
DEFAULT_CHANNELS: dict[str, list[str]] = {
    "email": ["email_open", "email_click"],
    "ads": ["ad_click"],
    "content": ["content_download", "form_submit", "web_visit"],
    "events": ["webinar", "event_attended"],
}


class Tempo(Strict):
    """Marketing touches per account per ``per`` (month or quarter): at least ``min``, at most ``max``."""

    min: int = Field(ge=0)
    max: int | None = Field(default=None, ge=0)
    per: Literal["month", "quarter"] = "month"

    @model_validator(mode="after")
    def _ordered(self) -> Tempo:
        if self.max is not None and self.max < self.min:
            raise ValueError("max must not be below min")
        return self


class Coverage(Strict):
    """An engaged account is covered when its touches in the period span ``channels_min`` channels."""

    channels_min: int = Field(default=3, ge=1, le=4)


class EngagedAccount(Strict):
    """The stage before the MQA: ``contacts_min`` distinct contacts with a marketing touch in the
    ``within_days`` ending at the moment, on the target account list when one exists."""

    contacts_min: int = Field(default=2, ge=1)
    within_days: float = Field(default=30, gt=0)
    listed_only: bool = True


class MarketingResponse(Strict):
    """The ``marketing_response`` clock: a Tier-``tiers`` MQA whose account visited a pricing page in the
    ``lookback_days`` up to its trigger_at is owed marketing research within ``window`` of the first such
    visit, met by the first activity of a ``met_by`` type at or after that visit."""

    tiers: list[Literal[1, 2, 3]] = Field(default_factory=lambda: [1], min_length=1)
    page: str = Field(default="/pricing", min_length=1)
    lookback_days: float = Field(default=30, gt=0)
    window: Window = Field(default_factory=lambda: Window(business_hours=2))
    met_by: list[str] = Field(default_factory=lambda: ["account_research"], min_length=1)

    @field_validator("met_by")
    @classmethod
    def _lower(cls, types: list[str]) -> list[str]:
        return [kind.strip().lower() for kind in types]


class Marketing(Strict):
    """Marketing's commitments: touch tempo per tier, channel coverage, the engaged-account stage and
    (when ``response`` is set) the ``marketing_response`` clock."""

    channels: dict[Channel, list[str]] = Field(default_factory=lambda: dict(DEFAULT_CHANNELS))
    tempo: dict[Literal[1, 2, 3], Tempo] = Field(default_factory=dict)
    coverage: Coverage = Field(default_factory=Coverage)
    engaged_account: EngagedAccount = Field(default_factory=EngagedAccount)
    response: MarketingResponse | None = None

    @field_validator("channels")
    @classmethod
    def _types(cls, channels: dict[str, list[str]]) -> dict[str, list[str]]:
        return {name: [kind.strip().lower() for kind in kinds] for name, kinds in channels.items()}

    @property
    def touch_types(self) -> tuple[str, ...]:
        """Every activity type that counts as a marketing touch for tempo and coverage."""
        return tuple(dict.fromkeys(kind for kinds in self.channels.values() for kind in kinds))


class TargetAccountList(Strict):
    """The target account list (``target_accounts.csv``): ``only_listed`` hands off only accounts on the
    list at the trigger moment (when any list row exists); ``agreement_days`` is how old the last
    recorded agreement may be before the reports flag it (monthly: 31)."""

    only_listed: bool = False
    agreement_days: float = Field(default=31, gt=0)
    size: ListSize | None = None
    top_accounts: TopAccounts | None = None


# -- Tier 1 commitments and the top of the target account list (issue 26; docs/designs/tier1-commitments.md) ----

class QualifiedConversation(Strict):
    """At least one qualified conversation per account per quarter: an activity of a ``types`` type with a
    contact of the account who (``engaged_only``) had a marketing touch in the ``engaged_within_days`` up to it."""

    types: list[str] = Field(default_factory=lambda: ["meeting", "call"], min_length=1)
    engaged_only: bool = True
    engaged_within_days: float = Field(default=90, gt=0)

    @field_validator("types")
    @classmethod
    def _lower(cls, types: list[str]) -> list[str]:
        return [kind.strip().lower() for kind in types]


class SalesFollowUp(Strict):
    """Sales contacts the account within ``window`` of a marketing touch (the first touch not yet answered)."""

    window: Window = Field(default_factory=lambda: Window(business_hours=40))


class CampaignResearch(Strict):
    """Marketing's account research (an activity of a ``met_by`` type) within ``within_days`` of the account's
    campaign start (an activity of a ``started_by`` type; one per account and campaign subject)."""

    within_days: float = Field(default=30, gt=0)
    started_by: list[str] = Field(default_factory=lambda: ["campaign_start"], min_length=1)
    met_by: list[str] = Field(default_factory=lambda: ["account_research"], min_length=1)

    @field_validator("started_by", "met_by")
    @classmethod
    def _lower(cls, types: list[str]) -> list[str]:
        return [kind.strip().lower() for kind in types]


class Tier1Commitments(Strict):
    """The implementation guide's Tier 1 commitments, for the accounts of ``tiers`` (each part off when null)."""

    tiers: list[Literal[1, 2, 3]] = Field(default_factory=lambda: [1], min_length=1)
    conversation: QualifiedConversation | None = Field(default_factory=QualifiedConversation)
    sales_follow_up: SalesFollowUp | None = Field(default_factory=SalesFollowUp)
    research: CampaignResearch | None = Field(default_factory=CampaignResearch)


class ListSize(Strict):
    """The target account list's agreed size (ABM template: 50-300 accounts)."""

    min: int = Field(default=50, ge=0)
    max: int = Field(default=300, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> ListSize:
        if self.max < self.min:
            raise ValueError("max must not be below min")
        return self


class TopAccounts(Strict):
    """The top ``size`` accounts of the list (by ``target_accounts.priority``, 1 first; else by score): each
    reached personally by sales (an activity of a ``reach_types`` type with an owner) in the ``reach_days``
    up to the moment, and the top revisited (a list row of one of them agreed) within ``revisit_days``."""

    size: int = Field(default=50, ge=1)
    reach_days: float = Field(default=31, gt=0)
    reach_types: list[str] = Field(default_factory=lambda: ["call", "email_sent", "meeting", "linkedin_message"],
                                   min_length=1)
    revisit_days: float = Field(default=60, gt=0)


DISPOSITIONS = (
    "accepted", "rejected", "nurture", "contacted", "interested", "not_ready", "meeting_held", "no_show",
    "unqualified",
)
#: Raw CRM status value (compared trimmed, lower case, runs of spaces/_/- as one space) → disposition.
#: ``working`` is Salesforce's standard "Working - Contacted"; ``disqualified`` is its "Unqualified".
DEFAULT_DISPOSITION_MAP = {
    **{name.replace("_", " "): name for name in DISPOSITIONS},
    "working": "contacted", "working contacted": "contacted", "disqualified": "unqualified",
    "no show": "no_show", "noshow": "no_show", "meeting booked": "interested",
}


def status_key(value: object) -> str:
    """How a raw status value is compared: trimmed, lower case, runs of spaces, ``_`` and ``-`` as one space."""
    return " ".join(str(value).strip().lower().replace("_", " ").replace("-", " ").split())


class Dispositions(Strict):
    """Sales' verdicts: raw status → disposition, which dispositions end an episode and need a reason.

    ``map`` entries are added to (and override) :data:`DEFAULT_DISPOSITION_MAP`; a status in neither is
    *unknown*: kept, reported, never dropped. ``end`` adds the raw statuses of these dispositions to
    ``end_statuses`` (empty = SPEC: only ``end_statuses`` end an episode).
    """

    map: dict[str, str] = Field(default_factory=dict)
    end: list[str] = Field(default_factory=list)
    feedback: list[str] = Field(default_factory=lambda: ["rejected", "unqualified"])
    #: The verdict classes: an MQA whose episode's latest verdict disposition is in ``accepted`` is
    #: accepted, in ``rejected`` rejected (the rejection rate's numerator); others have no verdict.
    accepted: list[str] = Field(default_factory=lambda: ["accepted"], min_length=1)
    rejected: list[str] = Field(default_factory=lambda: ["rejected", "unqualified"], min_length=1)

    @field_validator("map")
    @classmethod
    def _keys(cls, mapping: dict[str, str]) -> dict[str, str]:
        return {status_key(raw): status_key(value).replace(" ", "_") for raw, value in mapping.items()}

    @model_validator(mode="after")
    def _disjoint_verdicts(self) -> Dispositions:
        both = sorted(set(self.accepted) & set(self.rejected))
        if both:
            raise ValueError(f"disposition {both[0]!r} is both accepted and rejected")
        return self

    @field_validator("end", "feedback", "accepted", "rejected")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        return [status_key(name).replace(" ", "_") for name in names]

    @property
    def mapping(self) -> dict[str, str]:
        """The effective raw status (``status_key``) → disposition map."""
        return {**DEFAULT_DISPOSITION_MAP, **self.map}

    def statuses_of(self, dispositions: list[str]) -> list[str]:
        """The raw status keys that map to any of ``dispositions``."""
        return sorted(raw for raw, name in self.mapping.items() if name in set(dispositions))


class Alerts(Strict):
    """Breach alerts (not part of SPEC; off unless ``block`` names a notification block).

    ``block`` is a Prefect notification block as ``<block type>/<name>`` (``slack-webhook/sla-channel``,
    ``ms-teams-webhook/revops``, ``email/revops`` or ``custom-webhook/chat``), configured on the worker's
    Prefect server. ``mode``: ``each`` sends every new escalation level once, ``digest`` one message a UTC
    day, ``both`` both. Levels opened more than ``max_age_hours`` before the wall clock are never sent (a
    backfill of an old period, or alerts turned on over old breaches, pages nobody)."""

    block: str = Field(default="", pattern=r"^$|^[a-z0-9-]+/.+$")
    mode: Literal["each", "digest", "both"] = "each"
    max_age_hours: float = Field(default=24, gt=0)

    @property
    def each(self) -> bool:
        return bool(self.block) and self.mode in ("each", "both")

    @property
    def digest(self) -> bool:
        return bool(self.block) and self.mode in ("digest", "both")


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


#: Where a commitment's owner may be named besides its own name: a default per side of the scorecard.
OWNER_SIDES = ("marketing", "sales", "joint")


def _owners(owners: dict[str, str]) -> dict[str, str]:
    """``owners`` keys trimmed and lower case (a commitment name, ``custom:<metric>`` or a side), values trimmed."""
    out = {}
    for key, who in owners.items():
        name, person = str(key).strip().lower(), str(who).strip()
        if not re.fullmatch(r"[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)?", name):
            raise ValueError(f"owners: {key!r} is not a commitment name (e.g. first_touch_met_pct) or a side")
        if not person:
            raise ValueError(f"owners: {key!r} names nobody")
        out[name] = person
    return out


COUNTRY = r"^[A-Z]{2}$"


class RegionClocks(Strict):
    """A region's windows: each given one replaces the master policy's for the region's MQAs (first_touch per
    tier: the tiers not given keep the master window; the master's signal overrides still apply after)."""

    routing_time: Window | None = None
    first_touch: dict[Literal[1, 2, 3], Window] = Field(default_factory=dict)
    status_update: Window | None = None
    cadence: CadenceClock | None = None


class Region(Strict):
    """One region of the regional appendix: its countries (ISO 3166 alpha-2), windows and met-% targets."""

    countries: tuple[str, ...] = Field(min_length=1)
    clocks: RegionClocks = Field(default_factory=RegionClocks)
    #: clock name → minimum met % of the region's clocks due in a period (all tiers)
    targets: dict[str, float] = Field(default_factory=dict)

    @field_validator("countries", mode="before")
    @classmethod
    def _upper(cls, countries: Any) -> Any:
        if isinstance(countries, str):
            countries = [countries]
        if isinstance(countries, list | tuple):
            codes = tuple(dict.fromkeys(str(code).strip().upper() for code in countries))
            bad = [code for code in codes if not re.fullmatch(COUNTRY, code)]
            if bad:
                raise ValueError(f"{bad[0]!r} is not an ISO 3166 alpha-2 country code")
            return codes
        return countries

    @field_validator("targets")
    @classmethod
    def _met_pct(cls, targets: dict[str, float]) -> dict[str, float]:
        for clock, value in targets.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", clock):
                raise ValueError(f"{clock!r} is not a clock name (e.g. first_touch)")
            if not 0 <= value <= 100:
                raise ValueError(f"the {clock} target must be a met % between 0 and 100")
        return targets


class Requests(Strict):
    """Answers owed between the teams (issue 26, ABM template; ``requests.csv``): a window per request kind,
    absent = that kind's clock is off. ``materials``: marketing answers sales' requests for materials;
    ``account_info``: sales answers marketing's requests for account information."""

    materials: Window | None = None
    account_info: Window | None = None


class HotAccounts(Strict):
    """Sales flags an account hot (an activity of type ``hot_flag``) and marketing coordinates within
    ``window``: the first activity of a ``coordinated_by`` type on the account at or after the flag."""

    window: Window = Field(default_factory=lambda: Window(business_hours=8))
    coordinated_by: list[str] = Field(default_factory=lambda: ["account_research"], min_length=1)

    @field_validator("coordinated_by")
    @classmethod
    def _known_types(cls, types: list[str]) -> list[str]:
        lowered = [value.strip().lower() for value in types]
        unknown = [value for value in lowered if value not in ACTIVITY_TYPES or value == HOT_FLAG]
        if unknown:
            raise ValueError(f"not an activity type marketing logs: {', '.join(unknown)}")
        return lowered


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


def _marketing_types(types: list[str]) -> list[str]:
    """Activity types, lower-cased; each must be a marketing-side type."""
    lowered = [kind.strip().lower() for kind in types]
    unknown = [kind for kind in lowered if kind not in MARKETING_SIDE]
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not a marketing activity type")
    return lowered


class Coordination(Strict):
    """1:1 outreach coordinated with marketing's campaigns (ABM template; not part of SPEC; absent by default: not
    shown): a sales touch and a marketing touch to the same contact (the same account when either has no contact)
    within ``window_hours`` of each other is a collision (a duplicate or conflicting message)."""

    window_hours: float = Field(default=24, gt=0)
    #: marketing's messages that collide with a sales touch (default: its emails, opened or clicked, and its ads;
    #: the contact's own visits, forms, downloads and attendance are not messages)
    marketing_types: list[str] = Field(default_factory=lambda: ["email_open", "email_click", "ad_click"],
                                       min_length=1)

    @field_validator("marketing_types")
    @classmethod
    def _known(cls, types: list[str]) -> list[str]:
        return _marketing_types(types)


class ContentSupport(Strict):
    """Marketing's content for sales' touches (seven commitments; not part of SPEC; absent by default: not shown):
    an MQA is covered when its account received a marketing touch of a ``types`` type in the ``lookback_days``
    before sales' first touch of the episode (before the MQA's as-of moment while sales has not touched it)."""

    types: list[str] = Field(default_factory=lambda: ["content_download"], min_length=1)
    lookback_days: float = Field(default=90, gt=0)

    @field_validator("types")
    @classmethod
    def _known(cls, types: list[str]) -> list[str]:
        return _marketing_types(types)


class PlannedCampaign(Strict):
    """One campaign of the joint plan: the tiers it is assigned to and the personas it addresses (free text)."""

    tiers: list[Literal[1, 2, 3]] = Field(min_length=1)
    personas: list[str] = Field(default_factory=list)


class CampaignPlan(Strict):
    """Campaigns planned each quarter per tier (ABM template; not part of SPEC; absent by default: not shown): the
    quarter's campaigns are the subjects of ``campaign_start`` activities, per tier of the accounts they started
    on; every tier of ``tiers`` without one is flagged. ``campaigns``: the joint plan (in the signed policy), by
    campaign name (the ``campaign_start`` subject): each planned campaign is checked against its starts."""

    tiers: list[Literal[1, 2, 3]] = Field(default_factory=lambda: [1, 2, 3], min_length=1)
    campaigns: dict[str, PlannedCampaign] = Field(default_factory=dict)

    @field_validator("campaigns")
    @classmethod
    def _trimmed(cls, campaigns: dict[str, PlannedCampaign]) -> dict[str, PlannedCampaign]:
        return {name.strip(): plan for name, plan in campaigns.items()}


class ReviewAttendance(Strict):
    """Attendance of the quarterly account review (implementation guide; not part of SPEC; absent by default: not
    shown): the quarterly report shows who attended per side (``abm-sla review attend``) and warns when a side of
    ``required`` has nobody."""

    required: list[Literal["sales", "marketing"]] = Field(default_factory=lambda: ["sales", "marketing"],
                                                          min_length=1)


class SlaPolicy(Strict):
    """The whole SLA policy; see ``config/sla.yaml`` for the default (SPEC section 6)."""

    name: str = "default"
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    end_statuses: list[str] = Field(default_factory=lambda: ["rejected", "nurture"], min_length=1)
    clocks: Clocks
    escalation: Escalation = Field(default_factory=Escalation)
    dispositions: Dispositions = Field(default_factory=Dispositions)
    escalations: list[ClockEscalation] = Field(default_factory=list)
    disputes: Disputes = Field(default_factory=Disputes)
    targets: Targets | None = None
    marketing: Marketing | None = None
    target_account_list: TargetAccountList | None = None
    tier1_commitments: Tier1Commitments | None = None
    alerts: Alerts = Field(default_factory=Alerts)
    freshness: Freshness = Field(default_factory=Freshness)
    pipeline_credit: PipelineCredit = Field(default_factory=PipelineCredit)
    money: Money = Field(default_factory=Money)
    signoff: Signoff = Field(default_factory=Signoff)
    scoring_refresh: ScoringRefresh = Field(default_factory=ScoringRefresh)
    leads: Leads | None = None
    intent_list: IntentList | None = None
    monthly_review: MonthlyReview | None = None
    #: issue 26 (ABM template): every meeting, call and engaged-lead touch logged within 24 h, the listed
    #: accounts updated weekly; absent = off
    crm_updates: CrmUpdates | None = None
    #: issue 26 (one-page SLA, seven commitments): the routed MQA's record complete; absent = off
    routed_record: RoutedRecord | None = None
    #: issue 26 (ABM template): answers to requests between the teams, hot accounts; absent = off
    requests: Requests | None = None
    hot_accounts: HotAccounts | None = None
    #: issue 26 (ABM template, seven commitments, implementation guide): outreach collisions, content before
    #: sales' first touch, the quarter's campaigns per tier, attendance of the quarterly review; absent = off
    coordination: Coordination | None = None
    content_support: ContentSupport | None = None
    campaign_plan: CampaignPlan | None = None
    review_attendance: ReviewAttendance | None = None
    #: who owns each commitment (a person or role, shown beside it on every scorecard): keyed by the commitment's
    #: name (``first_touch_met_pct``, ``custom:<metric>``...) or by a side (``marketing``, ``sales``, ``joint``)
    #: as the default of its commitments; empty = no owner shown (not part of SPEC)
    owners: dict[str, str] = Field(default_factory=dict)
    #: the regional appendix (not part of SPEC; empty = off): region name → its countries, windows and targets
    regions: dict[str, Region] = Field(default_factory=dict)

    @field_validator("owners")
    @classmethod
    def _owner_names(cls, owners: dict[str, str]) -> dict[str, str]:
        return _owners(owners)

    @field_validator("regions")
    @classmethod
    def _disjoint_regions(cls, regions: dict[str, Region]) -> dict[str, Region]:
        seen: dict[str, str] = {}
        for name, region in regions.items():
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 _.-]*", name):
                raise ValueError(f"region name {name!r}: use letters, digits, spaces, '_', '.' or '-'")
            for code in region.countries:
                if code in seen:
                    raise ValueError(f"country {code} is in two regions ({seen[code]} and {name})")
                seen[code] = name
        return regions

    @model_validator(mode="after")
    def _one_ladder_per_clock(self) -> SlaPolicy:
        clocks = [ladder.clock for ladder in self.ladders]
        twice = sorted({clock for clock in clocks if clocks.count(clock) > 1})
        if twice:
            raise ValueError(f"the {twice[0]} ladder is given twice (escalation and escalations)")
        return self

    @property
    def ladders(self) -> list[Escalation]:
        """Every clock's ladder with levels: ``escalation`` (SPEC's first-touch ladder) then ``escalations``."""
        return [ladder for ladder in (self.escalation, *self.escalations) if ladder.levels]

    @field_validator("end_statuses")
    @classmethod
    def _lower(cls, statuses: list[str]) -> list[str]:
        return [status.strip().lower() for status in statuses]

    def episode_end_statuses(self) -> tuple[str, ...]:
        """Raw statuses that end an episode: ``end_statuses`` plus those of ``dispositions.end``."""
        extra = self.dispositions.statuses_of(self.dispositions.end)
        spaced = [status for raw in extra for status in {raw, raw.replace(" ", "_"), raw.replace(" ", "-")}]
        return tuple(dict.fromkeys([*self.end_statuses, *sorted(spaced)]))


def parse_policy(data: Any, source: str = "SLA policy") -> SlaPolicy:
    """Validate already-parsed policy data."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the policy must be a mapping of settings, got {type(data).__name__}")
    try:
        return SlaPolicy.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = first["msg"].replace("\n", " ")
        raise ConfigError(f"{source}: {field}: {message}") from None
