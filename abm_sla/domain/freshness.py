"""Source freshness, as dbt users know it: per CRM table, ``warn_after`` / ``error_after`` on its newest row.

A run measures, as of its ``as_of``, how old the newest loaded row of each checked table is (only rows at or
before ``as_of``: a backfill step sees the data as it was then). Older than ``warn_after``: the run says so.
Older than ``error_after``: the data is *stale*; the run still evaluates every clock but opens no
escalations (and so reassigns nobody) unless ``escalate_when_stale`` — a stale export must not page a
manager about a touch that simply has not been exported yet.

By default only *live* runs are checked (those computing for "now": a schedule, a form left empty): a run
for an explicit past moment (a backfill, ``abm-sla run --as-of``) computes SPEC's results unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

if TYPE_CHECKING:
    from abm_sla.domain.policy import SlaPolicy

#: The tables whose freshness can be checked, with the column that dates a row.
EVENT_TIMES = {"activities": "occurred_at", "intent_signals": "observed_at", "status_changes": "changed_at"}
Table = Literal["activities", "intent_signals", "status_changes"]
Status = Literal["pass", "warn", "error"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class After(_Strict):
    """An age as dbt writes it: ``{count: 2, period: day}``."""

    count: PositiveInt
    period: Literal["minute", "hour", "day"]

    @property
    def delta(self) -> pd.Timedelta:
        return pd.Timedelta(**{f"{self.period}s": self.count})

    def text(self) -> str:
        return f"{self.count} {self.period}{'s' if self.count != 1 else ''}"


class TableFreshness(_Strict):
    """When a table's newest row is old enough to warn about, and to call the data stale."""

    warn_after: After | None = None
    error_after: After | None = None

    @model_validator(mode="after")
    def _warn_first(self) -> TableFreshness:
        if self.warn_after and self.error_after and self.warn_after.delta > self.error_after.delta:
            raise ValueError("warn_after must not be longer than error_after")
        return self


def _default_tables() -> dict[str, TableFreshness]:
    return {"activities": TableFreshness(warn_after=After(count=2, period="day"),
                                         error_after=After(count=7, period="day"))}


class Freshness(_Strict):
    """The policy's ``freshness:`` key (defaults: activities warn after 2 days, stale after 7; live runs only;
    no escalations over stale data)."""

    applies_to: Literal["live", "all", "none"] = "live"
    escalate_when_stale: bool = False
    tables: dict[Table, TableFreshness] = Field(default_factory=_default_tables)


@dataclass(frozen=True)
class TableCheck:
    """One table's check: its newest row at or before ``as_of`` and the verdict."""

    table: str
    newest: pd.Timestamp | None
    age: pd.Timedelta | None
    status: Status
    limit: str = ""

    def line(self) -> str:
        if self.newest is None:
            return f"{self.table}: no rows at or before the as of ({self.status})"
        days = self.age / pd.Timedelta(days=1)
        verdict = {"pass": "fresh", "warn": "warn", "error": "STALE"}[self.status]
        limit = f", limit {self.limit}" if self.limit else ""
        return f"{self.table}: newest {self.newest.isoformat()}, {days:.1f} days before the as of ({verdict}{limit})"


@dataclass(frozen=True)
class FreshnessResult:
    """Every checked table's verdict and what the run does about it."""

    checks: tuple[TableCheck, ...]
    escalate: bool

    @property
    def status(self) -> Status:
        statuses = {check.status for check in self.checks}
        return "error" if "error" in statuses else "warn" if "warn" in statuses else "pass"

    @property
    def stale(self) -> bool:
        return self.status == "error"

    def headline(self) -> str:
        if self.stale:
            action = "escalations opened anyway (freshness.escalate_when_stale)" if self.escalate else \
                "clocks evaluated, NO escalations opened (freshness.escalate_when_stale: false)"
            return f"STALE DATA: {action}"
        return "data older than warn_after" if self.status == "warn" else "data fresh"

    def as_dict(self) -> dict:
        """For the run summary (JSON-ready)."""
        return {"status": self.status, "escalate": self.escalate, "headline": self.headline(),
                "checks": [check.line() for check in self.checks]}


def applies(freshness: Freshness, live: bool) -> bool:
    """Whether a run is checked: ``live`` = it computes for now (a schedule), not for an explicit moment."""
    return freshness.applies_to == "all" or (freshness.applies_to == "live" and live)


def check(freshness: Freshness, newest: dict[str, pd.Timestamp | None], as_of: pd.Timestamp) -> FreshnessResult:
    """The verdict per table of ``freshness.tables`` given each one's newest row at or before ``as_of``."""
    checks = tuple(_check_table(name, rule, newest.get(name), as_of) for name, rule in freshness.tables.items())
    stale = any(item.status == "error" for item in checks)
    return FreshnessResult(checks, escalate=not stale or freshness.escalate_when_stale)


def _check_table(name: str, rule: TableFreshness, newest: pd.Timestamp | None, as_of: pd.Timestamp) -> TableCheck:
    if newest is None or pd.isna(newest):
        status: Status = "error" if rule.error_after else "warn" if rule.warn_after else "pass"
        return TableCheck(name, None, None, status)
    age = as_of - newest
    for status, after in (("error", rule.error_after), ("warn", rule.warn_after)):
        if after is not None and age > after.delta:
            return TableCheck(name, newest, age, status, after.text())
    return TableCheck(name, newest, age, "pass")


def without_escalations(policy: SlaPolicy) -> SlaPolicy:
    """``policy`` with no escalation ladders (so no escalation and no reassignment opens); clocks unchanged."""
    empty = type(policy.escalation)(clock=policy.escalation.clock, levels=[])
    return policy.model_copy(update={"escalation": empty, "escalations": []})
