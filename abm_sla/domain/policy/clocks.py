"""The SLA's clocks: business hours, windows (how far a due time is from its start) and the clock
settings (routing time, first touch per tier with overrides, status update, cadence, optional ones)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from abm_sla.domain.policy.base import Strict

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TIERS = (1, 2, 3)

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WindowKind = Literal["business_hours", "hours", "days", "same_business_day"]


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
