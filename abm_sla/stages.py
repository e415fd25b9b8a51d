"""The pipeline's stages as plain functions: read the warehouse, call the pure modules, write back.

Prefect tasks (``tasks/``) wrap these one-to-one; the functions themselves know
nothing of Prefect, so the CLI, tests and benchmarks can call them directly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from abm_sla import frames, scoring
from abm_sla.crm.files import ExportFolder
from abm_sla.errors import AbmSlaError
from abm_sla.model import ScoringModel
from abm_sla.warehouse import Warehouse, schema
from abm_sla.warehouse.store import records


@dataclass(frozen=True)
class Signals:
    """What the scoring and hand-off stages read for one ``as of``."""

    accounts: pd.DataFrame
    contacts: pd.DataFrame
    activities: pd.DataFrame
    intent_signals: pd.DataFrame


def extract_files(warehouse: Warehouse, path: str | Path, run_id: str, now: dt.datetime) -> dict:
    """Load an export folder; per file, the rows loaded and quarantined."""
    folder = ExportFolder(path, stored_accounts=warehouse.read_kind("accounts"))
    summary = {}
    for page in folder.pages():
        loaded = warehouse.store_page(page, run_id, now)
        summary[page.object_name] = {"loaded": loaded, "quarantined": len(page.quarantined)}
    return summary


def read_signals(warehouse: Warehouse, as_of: pd.Timestamp, lookback: pd.Timedelta) -> Signals:
    """Accounts that exist as of ``as_of`` and the signals in ``(as_of - lookback, as_of]``."""
    accounts = warehouse.read_kind("accounts")
    accounts = accounts[accounts["created_at"].isna() | (accounts["created_at"] <= as_of)]
    since, until = (as_of - lookback).to_pydatetime(), as_of.to_pydatetime()
    return Signals(
        accounts=accounts.reset_index(drop=True),
        contacts=warehouse.read_kind("contacts"),
        activities=warehouse.read_kind("activities", since=since, until=until),
        intent_signals=warehouse.read_kind("intent_signals", since=since, until=until),
    )


def score(warehouse: Warehouse, as_of: pd.Timestamp, model: ScoringModel, run_id: str) -> pd.DataFrame:
    """Score every account as of ``as_of`` and keep the scores (with reasons) in the score history."""
    signals = read_signals(warehouse, as_of, pd.Timedelta(days=model.window_days))
    scores = scoring.score_accounts(
        signals.accounts, signals.contacts, signals.activities, signals.intent_signals, model, as_of
    )
    history = pd.DataFrame(
        {
            "account_id": scores["account_id"],
            "as_of": as_of,
            "model_version": model.version,
            "firmographic": scores["firmographic"].astype(int),
            "engagement": scores["engagement"].astype(int),
            "intent": scores["intent"].astype(int),
            "total": scores["total"].astype(int),
            "qualified": scores["qualified"].astype(bool),
            "gates": scores[[c for c in scores.columns if c.startswith("gate_")]].to_dict(orient="records"),
            "reasons": scores["reasons"],
            "run_id": run_id,
        }
    )
    with warehouse.engine.begin() as connection:
        warehouse.upsert(connection, schema.score_history, records(history))
    return scores


def parse_as_of(value: str | dt.datetime | pd.Timestamp) -> pd.Timestamp:
    """An ``as of`` from ISO 8601 text or a timestamp; naive values are UTC."""
    parsed = frames.to_utc(pd.Series([value], dtype="object"), errors="coerce").iloc[0]
    if pd.isna(parsed):
        raise AbmSlaError(f"--as-of {value!r} is not an ISO 8601 timestamp (e.g. 2026-03-31T12:00:00Z)")
    return parsed
