"""The SLA policy (SPEC section 6) as validated data, loaded from YAML.

Every preset in ``config/presets`` runs through the same engine: windows are
business hours, calendar hours, calendar days or "same business day"; first-touch
windows are per tier with optional overrides keyed on a hand-off signal; the
escalation ladder lists levels with an offset and a recipient.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from abm_sla.errors import ConfigError

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "config" / "sla.yaml"
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


class Clocks(Strict):
    routing_time: Window
    first_touch: FirstTouchClock
    status_update: Window
    cadence: CadenceClock


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
    promote_3_to_2: dict[str, Any] | None = None
    promote_2_to_1: dict[str, Any] | None = None
    demote_1_to_2: dict[str, Any] | None = None
    remove_from_list: dict[str, Any] | None = None


class Targets(Open):
    """Commitments the reports compare against (not part of SPEC; all optional)."""

    first_touch_met_pct: dict[Literal[1, 2, 3], float] | None = None
    rejection_rate: Band | None = None
    tier1_win_rate_pct: float | None = Field(default=None, ge=0, le=100)
    sales_cycle_days_max: float | None = Field(default=None, gt=0)
    opportunity_to_won_pct: float | None = Field(default=None, ge=0, le=100)
    monthly_mqa_commitments: dict[Literal[1, 2, 3], int] | None = None
    tier_moves: TierMoves | None = None


class SlaPolicy(Strict):
    """The whole SLA policy; see ``config/sla.yaml`` for the default (SPEC section 6)."""

    name: str = "default"
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    end_statuses: list[str] = Field(default_factory=lambda: ["rejected", "nurture"], min_length=1)
    clocks: Clocks
    escalation: Escalation = Field(default_factory=Escalation)
    escalations: list[ClockEscalation] = Field(default_factory=list)
    disputes: Disputes = Field(default_factory=Disputes)
    targets: Targets | None = None

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


def load_policy(path: str | Path | None = None) -> SlaPolicy:
    """Read and validate a policy file (default ``config/sla.yaml``); errors are one-line ConfigErrors."""
    source = Path(path) if path is not None else DEFAULT_PATH
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(f"SLA policy {source}: not a YAML text file (binary content at byte {error.start})") from None
    except OSError as error:
        raise ConfigError(f"SLA policy {source}: cannot read the file ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"SLA policy {source}: not valid YAML{where}") from None
    return parse_policy(data, str(source))


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
