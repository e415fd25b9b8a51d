"""The pipeline's stages as plain functions: read the warehouse, call the pure modules, write back.

Prefect tasks (``tasks/``) wrap these one-to-one; the functions themselves know
nothing of Prefect, so the CLI, tests and benchmarks can call them directly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from abm_sla import frames, handoff, routing, scoring, sla
from abm_sla.crm.files import FilesSource
from abm_sla.crm.sync import sync_source
from abm_sla.errors import AbmSlaError
from abm_sla.model import ScoringModel
from abm_sla.policy import SlaPolicy
from abm_sla.warehouse import Warehouse, schema
from abm_sla.warehouse.store import records
from abm_sla.warehouse.view import CrmView

ROUND_ROBIN_KEY = "round_robin:last_assigned"


@dataclass(frozen=True)
class Signals:
    """What the scoring and hand-off stages read for one ``as of``."""

    accounts: pd.DataFrame
    contacts: pd.DataFrame
    activities: pd.DataFrame
    intent_signals: pd.DataFrame


def extract_files(warehouse: Warehouse, path: str | Path, run_id: str, now: dt.datetime) -> dict:
    """Load an export folder; per file, the rows loaded and quarantined."""
    summary = sync_source(warehouse, FilesSource(path), run_id, now)
    kept = ("loaded", "quarantined", "unchanged")  # "unchanged": the file matched its last load and was skipped
    return {file: {key: counts[key] for key in kept if key in counts} for file, counts in summary.items()}


def read_signals(crm: CrmView, as_of: pd.Timestamp, lookback: pd.Timedelta) -> Signals:
    """Accounts that exist as of ``as_of`` and the signals in ``(as_of - lookback, as_of]``."""
    accounts = crm.read_kind("accounts")
    accounts = accounts[accounts["created_at"].isna() | (accounts["created_at"] <= as_of)]
    since, until = (as_of - lookback).to_pydatetime(), as_of.to_pydatetime()
    return Signals(
        accounts=accounts.reset_index(drop=True),
        contacts=crm.read_kind("contacts"),
        activities=crm.read_kind("activities", since=since, until=until),
        intent_signals=crm.read_kind("intent_signals", since=since, until=until),
    )


def score(warehouse: Warehouse, as_of: pd.Timestamp, model: ScoringModel, run_id: str) -> pd.DataFrame:
    """Score every account as of ``as_of`` and keep the scores (with reasons) in the score history."""
    signals = read_signals(CrmView(warehouse), as_of, pd.Timedelta(days=model.window_days))
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


def read_status_changes(crm: CrmView, as_of: pd.Timestamp) -> pd.DataFrame:
    """Status changes known as of ``as_of``."""
    changes = crm.read_kind("status_changes")
    return changes[changes["changed_at"] <= as_of].reset_index(drop=True)


def fire_and_route(
    warehouse: Warehouse, as_of: pd.Timestamp, model: ScoringModel, policy: SlaPolicy, run_id: str
) -> pd.DataFrame:
    """Replay the hand-off, route the new MQAs and store both, exactly once per episode.

    The stage runs under a warehouse lock: a second run racing this one waits, then
    sees these MQAs as already fired, so it fires and routes nothing (no duplicate,
    no skipped round-robin turn).
    """
    crm = CrmView(warehouse)
    signals = read_signals(crm, as_of, pd.Timedelta(days=2 * model.window_days))
    status_changes = read_status_changes(crm, as_of)
    users = crm.read_kind("users")
    with warehouse.engine.begin() as connection:
        warehouse.lock_stage(connection, "fire-and-route")
        prior = warehouse.read_table(schema.mqas, connection=connection)[["account_id", "trigger_at"]]
        fired = handoff.replay_handoffs(
            signals.accounts, signals.contacts, signals.activities, signals.intent_signals,
            status_changes, prior, model, as_of, end_statuses=tuple(policy.end_statuses),
        )
        if fired.empty:
            return fired
        last_assigned = warehouse.get_state(ROUND_ROBIN_KEY, connection)
        routed, last_assigned = routing.route_mqas(
            fired[["account_id", "trigger_at"]], signals.accounts, users, as_of, last_assigned
        )
        rows = fired.drop(columns=["ended_at"], errors="ignore").merge(routed, on=["account_id", "trigger_at"])
        rows = rows.assign(
            model_version=model.version,
            run_id=run_id,
            pricing_visit=rows["reasons"].map(_has_pricing_visit),
            writeback_key=(rows["account_id"] + "|" + rows["trigger_at"].map(pd.Timestamp.isoformat)).map(
                _short_hash
            ),
        )
        columns = [column.name for column in schema.mqas.columns if column.name in rows.columns]
        warehouse.upsert(connection, schema.mqas, records(rows[columns]), update=False)
        warehouse.set_state(connection, ROUND_ROBIN_KEY, last_assigned)
    return rows


def to_evaluate(mqas: pd.DataFrame, clocks: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The MQAs a run as of ``as_of`` evaluates: those whose clocks or escalations can still change.

    Settled (skipped): every clock decided *with* its met_at. A missed clock still gets its met_at
    when the late touch or status change comes (SPEC section 6), and a first touch without one
    leaves the escalation ladder open; once all four have theirs, the first sales touch has
    stopped the ladder and nothing can change, so a run's cost stays with the live MQAs.
    Also skipped: MQAs a run with a later ``as_of`` evaluated already (a backfill running behind
    live runs must not turn their clocks back to an earlier moment).
    """
    keys = ["account_id", "trigger_at"]
    done = clocks[(clocks["status"] != "pending") & clocks["met_at"].notna()]
    complete = done.groupby(keys).size()
    skipped = complete[complete == len(sla.CLOCKS)].index.union(
        pd.MultiIndex.from_frame(clocks.loc[clocks["as_of"] > as_of, keys])
    )
    return mqas[~pd.MultiIndex.from_frame(mqas[keys]).isin(skipped)].reset_index(drop=True)


def evaluate_sla(warehouse: Warehouse, as_of: pd.Timestamp, policy: SlaPolicy) -> dict:
    """Record episode ends, then evaluate the clocks and escalations that can change; clocks update in place."""
    fired = warehouse.read_table(schema.mqas, schema.mqas.c.trigger_at <= as_of.to_pydatetime())
    if fired.empty:
        return {"clocks": 0, "clocks_missed": 0, "escalations": 0, "episodes_ended": 0}
    crm = CrmView(warehouse)
    status_changes = read_status_changes(crm, as_of)
    ended_at = handoff.episode_ends(fired, status_changes, as_of, tuple(policy.end_statuses))
    newly_ended = fired.assign(ended_at=ended_at)[ended_at.ne(fired["ended_at"]) & ended_at.notna()]
    mqas = to_evaluate(fired.assign(ended_at=ended_at), warehouse.read_table(schema.sla_clocks), as_of)
    activities = crm.read_kind(  # clocks and the ladder read sales touches only
        "activities", since=(mqas["trigger_at"].min() - pd.Timedelta(seconds=1)).to_pydatetime(),
        until=as_of.to_pydatetime(), types=frames.SALES_TOUCHES,
    ) if len(mqas) else frames.empty("activities")
    users = crm.read_kind("users")
    clocks = sla.evaluate_clocks(mqas, activities, status_changes, users, policy, as_of)
    escalations = sla.evaluate_escalations(clocks, mqas, activities, users, policy, as_of)
    clock_columns = [column.name for column in schema.sla_clocks.columns if column.name in clocks.columns]
    escalation_columns = [c.name for c in schema.escalations.columns if c.name in escalations.columns]
    with warehouse.engine.begin() as connection:
        warehouse.upsert(connection, schema.sla_clocks, records(clocks.assign(as_of=as_of)[[*clock_columns, "as_of"]]))
        warehouse.upsert(connection, schema.escalations, records(escalations[escalation_columns]), update=False)
        warehouse.update_rows(connection, schema.mqas, records(newly_ended[["account_id", "trigger_at", "ended_at"]]))
    return {
        "clocks": len(clocks),
        "clocks_missed": int((clocks["status"] == "missed").sum()),
        "escalations": len(escalations),
        "episodes_ended": len(newly_ended),
    }


def _has_pricing_visit(reasons: list[dict]) -> bool:
    return any("pricing" in str(reason.get("rule", "")) for reason in reasons or [])


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]
