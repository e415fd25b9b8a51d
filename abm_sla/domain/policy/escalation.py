"""Escalation ladders (the first-touch ladder and any clock's), the dispute process and breach alerts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from abm_sla.domain.policy.base import Strict
from abm_sla.domain.policy.clocks import Window

OWNER_MANAGER = "owner_manager"


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
