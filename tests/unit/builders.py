"""Tiny hand-made normalized frames (``abm_sla.domain.frames`` columns) for the scoring and hand-off tests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pandas as pd

from abm_sla.domain import frames

T0 = pd.Timestamp("2026-03-31T12:00:00Z")
DAY = pd.Timedelta(days=1)
NS = pd.Timedelta(1, unit="ns")
_ids = itertools.count(1)


def ago(days: float = 0, **delta: float) -> pd.Timestamp:
    """``T0`` minus a duration."""
    return T0 - pd.Timedelta(days=days, **delta)


def frame(kind: str, rows: list[dict]) -> pd.DataFrame:
    """A frame of one kind with its columns and UTC timestamps from partial row dicts."""
    out = pd.DataFrame(rows, columns=frames.COLUMNS[kind]) if rows else frames.empty(kind)
    for column in frames.TIMESTAMP_COLUMNS[kind]:
        out[column] = frames.to_utc(out[column].astype(object)) if rows else out[column]
    return out


def account(
    account_id: str = "a",
    employees: float | None = 1000,
    industry: str | None = "Software",
    country: str | None = "US",
    **extra: object,
) -> dict:
    return {
        "account_id": account_id,
        "name": account_id,
        "employees": employees,
        "industry": industry,
        "country": country,
        **extra,
    }


def contact(contact_id: str, account_id: str = "a", title: str | None = "VP Marketing") -> dict:
    return {"contact_id": contact_id, "account_id": account_id, "title": title}


def activity(
    type_: str, at: pd.Timestamp, account_id: str = "a", contact_id: str | None = None, url: str | None = None
) -> dict:
    return {
        "activity_id": f"act{next(_ids)}",
        "account_id": account_id,
        "type": type_,
        "occurred_at": at,
        "contact_id": contact_id,
        "url": url,
    }


def intent(topic: str, score: float, at: pd.Timestamp, account_id: str = "a") -> dict:
    return {
        "intent_id": f"int{next(_ids)}",
        "account_id": account_id,
        "topic": topic,
        "score": score,
        "observed_at": at,
    }


def status(status_: str, at: pd.Timestamp, account_id: str = "a") -> dict:
    return {
        "status_change_id": f"st{next(_ids)}",
        "account_id": account_id,
        "status": status_,
        "changed_at": at,
    }


@dataclass
class Crm:
    """Rows of one small CRM; ``frames()`` gives the inputs of scoring and hand-off."""

    accounts: list[dict] = field(default_factory=lambda: [account()])
    contacts: list[dict] = field(default_factory=list)
    activities: list[dict] = field(default_factory=list)
    intent: list[dict] = field(default_factory=list)
    status_changes: list[dict] = field(default_factory=list)

    def signals(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        return (
            frame("accounts", self.accounts),
            frame("contacts", self.contacts),
            frame("activities", self.activities),
            frame("intent_signals", self.intent),
        )

    def changes(self) -> pd.DataFrame:
        return frame("status_changes", self.status_changes)


def qualifying(at: pd.Timestamp, account_id: str = "a", contact_id: str = "dm") -> list[dict]:
    """Two signals ending at ``at`` that, with a 40-point account and a VP contact, pass every gate.

    A form submit by the VP 1 hour earlier (12) and an anonymous pricing visit at ``at`` (8 + 15):
    firmographic 40, engagement 20, intent 15, total 75, 2 touches.
    """
    return [
        activity("form_submit", at - pd.Timedelta(hours=1), account_id, contact_id),
        activity("web_visit", at, account_id, None, "https://acme.example/pricing"),
    ]
