"""The pipeline's stages as plain functions: read the warehouse, call the pure modules, write back.

Each stage is planned (:mod:`abm_sla.services.incremental`: recompute everything or only what changed
since the reference run), split into account shards (:mod:`abm_sla.infra.shards`) that read and compute
independently, and finished in one step that records the run (and, for the hand-off, routes and
stores the MQAs under the warehouse lock). ``score``, ``fire_and_route`` and ``evaluate_sla`` run
the shards one after another in this process; the Prefect tasks (``tasks/``) call the same pieces
and run the shards as tasks (on Dask when the run names a Dask scheduler). The
functions know nothing of Prefect, so the CLI, tests and benchmarks can call them directly.
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import hashlib
import json
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel

from abm_sla.crm.files.source import FilesSource
from abm_sla.crm.files.specs import FILE_SPECS
from abm_sla.crm.sync import sync_source
from abm_sla.domain import (
    calendar,
    dispositions,
    frames,
    handoff,
    marketing,
    routing,
    scorecard,
    scoring,
    sla,
    tier_moves,
    whatif,
)
from abm_sla.domain.model import IntentRule, ScoringModel
from abm_sla.domain.policy import SlaPolicy
from abm_sla.errors import AbmSlaError, SourceError
from abm_sla.infra.faults import checkpoint
from abm_sla.infra.shards import SHARD_SPACE, Shard, shard_keys
from abm_sla.services import incremental
from abm_sla.warehouse import Warehouse, schema, score_history, undo
from abm_sla.warehouse.store import records
from abm_sla.warehouse.view import CrmView

ROUND_ROBIN_KEY = "round_robin:last_assigned"
#: Accounts per shard when a run does not say how many shards: bounds one shard's memory.
ACCOUNTS_PER_SHARD = 50_000
T = TypeVar("T")


@dataclass(frozen=True)
class Signals:
    """What the scoring and hand-off stages read for one ``as of``."""

    accounts: pd.DataFrame
    contacts: pd.DataFrame
    activities: pd.DataFrame
    intent_signals: pd.DataFrame


def extract_files(warehouse: Warehouse, path: str | Path, run_id: str, now: dt.datetime) -> dict:
    """Load an export folder; per file, the rows loaded and quarantined, and the rows loaded without a value
    (``values_dropped``: recorded in the quarantine table too)."""
    check_export_files(warehouse, Path(path))
    summary = sync_source(warehouse, FilesSource(path), run_id, now)
    kept = ("loaded", "quarantined", "values_dropped", "unchanged", "warnings")  # "unchanged": matched its last load
    return {file: {key: counts[key] for key in kept if key in counts} for file, counts in summary.items()}


def check_export_files(warehouse: Warehouse, folder: Path) -> None:
    """Refuse, in one line, a folder whose files cannot be what they say: a folder named like a CSV file,
    or an ``accounts.csv`` without a single row while the warehouse has no accounts (every other row
    would be quarantined as an unknown account)."""
    for spec in FILE_SPECS:
        if (folder / spec.file).is_dir():
            raise SourceError(f"{folder / spec.file} is a folder, not a CSV file")
    accounts = folder / "accounts.csv"
    if accounts.is_file() and not _has_data_row(accounts) and not _has_accounts(warehouse):
        raise SourceError(f"{accounts} has no rows and the warehouse has no accounts yet: nothing could be "
                          "scored and every other row would be quarantined (is it the right file?)")


def _has_data_row(path: Path) -> bool:
    """Whether a CSV file has a non-blank line after its header (read until found, not the whole file)."""
    with path.open("rb") as handle:
        lines = (line for line in handle if line.lstrip(codecs.BOM_UTF8).strip())
        next(lines, None)  # the header
        return next(lines, None) is not None


def _has_accounts(warehouse: Warehouse) -> bool:
    table = schema.accounts
    with warehouse.engine.connect() as connection:
        return connection.execute(sa.select(table.c.source_id).limit(1)).first() is not None


#: The columns of each kind that scoring and the hand-off replay use (read only those: the rest stay empty).
SCORING_COLUMNS = {
    "contacts": ("contact_id", "account_id", "title"),
    "activities": ("account_id", "type", "occurred_at", "contact_id", "url"),
    "intent_signals": ("account_id", "topic", "score", "observed_at"),
}


def read_signals(
    crm: CrmView, as_of: pd.Timestamp, lookback: pd.Timedelta, shard: Shard | None = None,
    accounts: list[str] | None = None, model: ScoringModel | None = None, *,
    candidates_after: pd.Timestamp | None = None,
) -> Signals:
    """Accounts that exist as of ``as_of`` and the signals in ``(as_of - lookback, as_of]`` (of a shard or
    of chosen accounts if given).

    With ``model``, only what its scoring and hand-off read: the :data:`SCORING_COLUMNS` and the
    activities of its signal types (:attr:`ScoringModel.signal_activity_types`). With
    ``candidates_after`` too (no candidate time up to it is scored: ``as_of`` for a score as of
    ``as_of``), the intent rows up to it are those scoring at least the model's lowest ``min_score``
    (the only ones a score counts; a lower one matters only as a candidate time).
    """
    narrow = {"shard": shard, "accounts": accounts}
    rows = existing_accounts(crm, as_of, shard, accounts)
    since, until = (as_of - lookback).to_pydatetime(), as_of.to_pydatetime()
    if model is None:
        return Signals(
            accounts=rows.reset_index(drop=True), contacts=crm.read_kind("contacts", **narrow),
            activities=crm.read_kind("activities", since=since, until=until, **narrow),
            intent_signals=crm.read_kind("intent_signals", since=since, until=until, **narrow),
        )
    read = {kind: {**narrow, "columns": names} for kind, names in SCORING_COLUMNS.items()}
    scores = intent_min_scores(model)
    if candidates_after is None or not scores:
        intent = crm.read_kind("intent_signals", since=since, until=until, **read["intent_signals"])
    else:
        middle = max(min(candidates_after.to_pydatetime(), until), since)
        intent = crm.read_kind("intent_signals", since=since, until=middle, min_score=min(scores),
                               **read["intent_signals"])
        if middle < until:
            later = crm.read_kind("intent_signals", since=middle, until=until, **read["intent_signals"])
            intent = _joined_frames([intent, later])
    return Signals(
        accounts=rows.reset_index(drop=True), contacts=crm.read_kind("contacts", **read["contacts"]),
        activities=crm.read_kind("activities", since=since, until=until, types=tuple(model.signal_activity_types),
                                 **read["activities"]),
        intent_signals=intent,
    )


def existing_accounts(
    crm: CrmView, as_of: pd.Timestamp, shard: Shard | None = None, accounts: list[str] | None = None
) -> pd.DataFrame:
    """The accounts that exist as of ``as_of`` (created by then; of a shard or of chosen accounts if given)."""
    rows = crm.read_kind("accounts", shard=shard, accounts=accounts)
    return rows[rows["created_at"].isna() | (rows["created_at"] <= as_of)]


def parse_as_of(value: str | dt.datetime | pd.Timestamp) -> pd.Timestamp:
    """An ``as of`` from ISO 8601 text or a timestamp; naive values are UTC."""
    parsed = frames.to_utc(pd.Series([value], dtype="object"), errors="coerce").iloc[0]
    year = re.match(r"\s*[+-]?(\d{4,})(?:-|\d{4}T)", str(value))
    if pd.isna(parsed) and year and not pd.Timestamp.min.year < int(year.group(1)) < pd.Timestamp.max.year:
        raise AbmSlaError(f"--as-of {value!r} is out of range: the year must be between {pd.Timestamp.min.year + 1} "
                          f"and {pd.Timestamp.max.year - 1}")
    if pd.isna(parsed):
        raise AbmSlaError(f"--as-of {value!r} is not an ISO 8601 timestamp (e.g. 2026-03-31T12:00:00Z)")
    return parsed


def check_not_future(
    as_of: pd.Timestamp, now: dt.datetime, tolerance: dt.timedelta, *, allow_future: bool = False
) -> None:
    """Refuse an ``as of`` more than ``tolerance`` ahead of ``now`` unless ``allow_future``: a typo'd year
    would evaluate every clock as missed and open escalations dated in the future."""
    if allow_future or as_of <= pd.Timestamp(now) + pd.Timedelta(tolerance):
        return
    raise AbmSlaError(
        f"as of {as_of.isoformat()} is in the future (now {pd.Timestamp(now).floor('s').isoformat()}); "
        "pass --allow-future (flows: allow_future) to compute for it anyway"
    )


def read_status_changes(
    crm: CrmView, as_of: pd.Timestamp, shard: Shard | None = None, accounts: list[str] | None = None
) -> pd.DataFrame:
    """Status changes known as of ``as_of`` (of a shard or of chosen accounts if given)."""
    changes = crm.read_kind("status_changes", shard=shard, accounts=accounts)
    return changes[changes["changed_at"] <= as_of].reset_index(drop=True)


def plan(
    warehouse: Warehouse, stage: str, as_of: pd.Timestamp, *configs: ScoringModel | SlaPolicy, full: bool = False,
    shards: int | None = None,
) -> incremental.Plan:
    """The plan of one stage run (see :mod:`abm_sla.services.incremental`); ``shards`` None = one per
    :data:`ACCOUNTS_PER_SHARD` accounts, so a run's memory stays bounded as the CRM grows."""
    unified = CrmView(warehouse).unified
    if shards is None:
        shards = max(1, min(SHARD_SPACE, math.ceil(count_accounts(warehouse, as_of) / ACCOUNTS_PER_SHARD)))
    return incremental.plan(warehouse, stage, as_of, incremental.config_version(*configs), full=full,
                            shards=shards, unified=unified)


def _run_shards(work: Callable[[Shard], T], plan: incremental.Plan) -> list[T]:
    return [work(shard) for shard in plan.shard_list()]


# -- scoring ------------------------------------------------------------------------------------

def score(
    warehouse: Warehouse, as_of: pd.Timestamp, model: ScoringModel, policy: SlaPolicy | None, run_id: str, *,
    full: bool = False, shards: int | None = None,
) -> dict:
    """Score every account as of ``as_of`` (recomputing what changed) and keep the changed scores; with the
    policy's ``target_account_list.only_listed`` and a list, only the accounts on it then (see :func:`score_shard`).
    ``policy`` None: every account (SPEC)."""
    started = utc_now()
    planned = plan(warehouse, "score", as_of, *score_configs(warehouse, model, policy), full=full, shards=shards)
    parts = _run_shards(lambda shard: score_shard(warehouse, planned, model, policy, run_id, shard), planned)
    return finish_score(warehouse, planned, model, policy, run_id, started, parts)


class ListLimit(BaseModel):
    """Part of the scoring stage's configuration version when the policy limits scoring to the target
    account list: whether a list existed, so a run never reuses a reference computed the other way."""

    only_listed: bool = True
    list_exists: bool


def score_configs(warehouse: Warehouse, model: ScoringModel, policy: SlaPolicy | None) -> tuple[BaseModel, ...]:
    """What the scoring stage's results depend on: the model, and with ``only_listed`` on, the
    :class:`ListLimit` (switch off: the model alone, the version runs had before the switch existed)."""
    if not _only_listed(policy):
        return (model,)
    return model, ListLimit(list_exists=tal_exists(warehouse))


def score_windows(planned: incremental.Plan, model: ScoringModel, listed: bool = False) -> dict:
    """Event-time intervals whose signals change a score between the reference run and this one (intent
    rows only if the model has an intent rule); with scoring limited to the target account list
    (``listed``), list periods starting or ending in between."""
    if planned.full:
        return {}
    before, now = planned.reference_as_of, planned.as_of
    moving = [(before, now), (before - model.window, now - model.window)]
    kinds = ("activities", "intent_signals") if intent_min_scores(model) else ("activities",)
    windows = {**dict.fromkeys(kinds, moving), "accounts": [(before, now)]}
    return {**windows, "target_accounts": [(before, now)]} if listed else windows


def score_filters(model: ScoringModel) -> dict:
    """Which signals entering or leaving the window can move a score: activities of the model's signal
    types and intent rows scoring at least its rules' lowest ``min_score``; the others count in no rule
    and no gate (see :func:`read_signals`)."""
    scores = intent_min_scores(model)
    return {"types": {"activities": tuple(model.signal_activity_types)},
            "min_scores": {"intent_signals": min(scores)} if scores else {}}


def intent_min_scores(model: ScoringModel) -> list[float]:
    return [rule.min_score for _, rule in model.rules() if isinstance(rule, IntentRule)]


def score_shard(
    warehouse: Warehouse, planned: incremental.Plan, model: ScoringModel, policy: SlaPolicy | None, run_id: str,
    shard: Shard,
) -> dict:
    """Score one shard's changed accounts and store the scores that changed.

    With ``only_listed`` and a target account list, the accounts off the list at ``as_of``
    (``added_at <= as_of < removed_at`` fails) are not scored: they get a not-scored row
    (:func:`abm_sla.warehouse.score_history.not_scored_rows`) when their latest row is a score."""
    crm = CrmView(warehouse)
    limited = _only_listed(policy) and tal_exists(warehouse)
    kinds = (*incremental.STAGE_KINDS["score"], "target_accounts") if limited else None
    changed = incremental.changed_accounts(warehouse, planned, shard, score_windows(planned, model, limited),
                                           **score_filters(model), kinds=kinds)
    if not changed.everything and incremental.other_config_since(warehouse, planned, model.version):
        changed = incremental.Changed(everything=True)  # another setting's rows (same model) stand in between
    if changed.empty:
        return {"accounts_recomputed": 0, "scores_changed": 0}
    signals = read_signals(crm, planned.as_of, model.window, shard, changed.ids(), model,
                           candidates_after=planned.as_of)
    accounts, off_list = signals.accounts, pd.Series(dtype=object)
    if limited:
        listed = crm.read_kind("target_accounts", shard=shard, accounts=changed.ids())
        on = marketing.on_list_at(listed, accounts["account_id"], planned.as_of).to_numpy(dtype=bool)
        accounts, off_list = accounts[on].reset_index(drop=True), accounts.loc[~on, "account_id"]
    scores = scoring.score_accounts(
        accounts, signals.contacts, signals.activities, signals.intent_signals, model, planned.as_of
    )
    rows = whatif.history_rows(scores, planned.as_of, model.version, run_id)
    if limited:
        rows = pd.concat([rows, score_history.not_scored_rows(off_list, planned.as_of, model.version, run_id)],
                         ignore_index=True)
    with warehouse.engine.begin() as connection:
        stored = score_history.store_changes(warehouse, connection, rows, planned.as_of, model.version)
        checkpoint("score")
    checkpoint("score")
    return {"accounts_recomputed": len(signals.accounts), "scores_changed": stored}


def finish_score(
    warehouse: Warehouse, planned: incremental.Plan, model: ScoringModel, policy: SlaPolicy | None, run_id: str,
    started: dt.datetime, parts: list[dict],
) -> dict:
    """Record the scoring run once every shard stored its scores; returns the stage summary
    (``accounts_scored``: the accounts on the target account list when scoring is limited to it)."""
    summary = {
        "accounts_scored": count_accounts(warehouse, planned.as_of, listed=_only_listed(policy)),
        "qualified": score_history.count_qualified(warehouse, model.version, planned.as_of),
        "accounts_recomputed": sum(part["accounts_recomputed"] for part in parts),
        "scores_changed": sum(part["scores_changed"] for part in parts),
        "mode": planned.mode, "shards": planned.shards, "model_version": model.version,
    }
    with warehouse.engine.begin() as connection:
        incremental.record(connection, planned, run_id, started, summary, model_version=model.version)
        checkpoint("score")
    checkpoint("score")
    warehouse.analyze_changed_tables()
    return summary


def store_recalculated(
    warehouse: Warehouse, scores: pd.DataFrame, as_of: pd.Timestamp, model: ScoringModel, run_id: str,
    accounts: list[str] | None, policy: SlaPolicy | None = None,
) -> int:
    """Keep a what-if's scores (of ``accounts``, or of every account) as a scoring run of ``model``; with
    ``only_listed`` and a target account list, the accounts off it get not-scored rows instead."""
    planned = incremental.Plan("score", as_of, incremental.config_version(*score_configs(warehouse, model, policy)),
                               warehouse.journal_position())
    rows = whatif.history_rows(scores, as_of, model.version, run_id)
    listed = target_list(warehouse, CrmView(warehouse), policy, None, accounts)
    if listed is not None:
        existing = existing_accounts(CrmView(warehouse), as_of, accounts=accounts)["account_id"]
        off = existing[~marketing.on_list_at(listed, existing, as_of).to_numpy(dtype=bool)]
        rows = pd.concat([rows[~rows["account_id"].isin(set(off))],
                          score_history.not_scored_rows(off, as_of, model.version, run_id)], ignore_index=True)
    with warehouse.engine.begin() as connection:
        stored = score_history.store_changes(warehouse, connection, rows, as_of, model.version)
        incremental.record(connection, planned, run_id, utc_now(), {"accounts_scored": len(scores),
                           "scores_changed": stored}, accounts=accounts, model_version=model.version)
    return stored


def count_accounts(warehouse: Warehouse, as_of: pd.Timestamp, *, listed: bool = False) -> int:
    """How many accounts exist as of ``as_of`` (the accounts a run scores); ``listed``: of those, the ones on
    the target account list then, when a list exists."""
    view = CrmView(warehouse)
    if listed and tal_exists(warehouse):
        accounts = existing_accounts(view, as_of)
        return int(marketing.on_list_at(view.read_kind("target_accounts"), accounts["account_id"], as_of).sum())
    if view.unified:
        accounts = view.read_kind("accounts")
        return int((accounts["created_at"].isna() | (accounts["created_at"] <= as_of)).sum())
    table = schema.accounts
    query = sa.select(sa.func.count()).where(
        table.c.deleted_at.is_(None), sa.or_(table.c.created_at.is_(None), table.c.created_at <= as_of.to_pydatetime()))
    with warehouse.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


# -- hand-off and routing -----------------------------------------------------------------------

def fire_and_route(
    warehouse: Warehouse, as_of: pd.Timestamp, model: ScoringModel, policy: SlaPolicy, run_id: str, *,
    full: bool = False, shards: int | None = None,
) -> pd.DataFrame:
    """Replay the hand-off, route the new MQAs and store both, exactly once per episode."""
    started = utc_now()
    planned = plan(warehouse, "fire-and-route", as_of, model, policy, full=full, shards=shards)
    parts = _run_shards(lambda shard: fire_shard(warehouse, planned, model, policy, shard), planned)
    return route_and_store(warehouse, planned, model, policy, run_id, started, parts)


def fire_windows(planned: incremental.Plan) -> dict:
    """Event-time intervals whose rows can change any moment of an account's replay between the reference
    run and this one: status changes (an episode ends) and accounts created. (Signals entering the window:
    :func:`entering_accounts`.)"""
    if planned.full:
        return {}
    moving = [(planned.reference_as_of, planned.as_of)]
    return {"status_changes": moving, "accounts": moving}


def entering_accounts(
    warehouse: Warehouse, planned: incremental.Plan, model: ScoringModel, shard: Shard
) -> set[str]:
    """Accounts of ``shard`` with a signal whose event time enters the window since the reference run,
    ``(T0, T]`` (marketing touches of the model's types and intent rows)."""
    lo, hi = planned.reference_as_of, planned.as_of
    if planned.full or not hi > lo:
        return set()
    return (incremental.accounts_with_events(warehouse, "activities", lo, hi, shard,
                                             tuple(model.signal_activity_types))
            | incremental.accounts_with_events(warehouse, "intent_signals", lo, hi, shard))


def fire_shard(
    warehouse: Warehouse, planned: incremental.Plan, model: ScoringModel, policy: SlaPolicy, shard: Shard
) -> pd.DataFrame:
    """The MQAs one shard's changed accounts fire as of the plan's ``as_of`` (not routed, not stored yet),
    each with ``prior_seen``: how many stored MQAs of its account the replay saw.

    Accounts whose rows changed (the journal), with a status change or created since the reference run
    are replayed over the whole window. An account whose only change is a signal entering the window,
    ``(T0, T]``, is replayed from ``T0`` on: its data up to ``T0`` is what the reference run replayed
    (that run's MQAs equal a full recompute's), so every MQA up to ``T0`` it could fire is stored or
    blocked, and only a candidate after ``T0`` can fire; its signals are read back to ``T0 - window``.
    """
    changed = incremental.changed_accounts(warehouse, planned, shard, fire_windows(planned))
    if changed.everything:
        return _replay(warehouse, CrmView(warehouse), planned.as_of, model, policy, shard, None)
    recent = sorted(entering_accounts(warehouse, planned, model, shard) - changed.accounts)
    if changed.empty and not recent:
        return _with_prior_seen(handoff.empty_mqas(), _no_mqas())
    return _replay(warehouse, CrmView(warehouse), planned.as_of, model, policy, shard, changed.ids(),
                   recent=(recent, planned.reference_as_of))


def _replay(
    warehouse: Warehouse, crm: CrmView, as_of: pd.Timestamp, model: ScoringModel, policy: SlaPolicy,
    shard: Shard | None, accounts: list[str] | None, connection: sa.Connection | None = None,
    recent: tuple[list[str], pd.Timestamp] | None = None,
) -> pd.DataFrame:
    """Replay ``accounts`` (None: every account of ``shard``) over the whole window, and ``recent``'s
    accounts from its time on only (see :func:`fire_shard`)."""
    parts, after = [], None
    if accounts is None or accounts:
        parts.append(read_signals(crm, as_of, 2 * model.window, shard, accounts, model))
    if recent and recent[0]:
        ids, since = recent
        parts.append(read_signals(crm, as_of, as_of - since + model.window, shard, ids, model,
                                  candidates_after=since))
        accounts, after = [*accounts, *ids], pd.Series(since, index=ids, dtype="datetime64[ns, UTC]")
    signals = parts[0] if len(parts) == 1 else _joined(parts)
    status_changes = read_status_changes(crm, as_of, shard, accounts)
    prior = _stored_mqas(warehouse, signals.accounts["account_id"], connection)
    fired = handoff.replay_handoffs(
        signals.accounts, signals.contacts, signals.activities, signals.intent_signals,
        status_changes, prior, model, as_of, end_statuses=policy.episode_end_statuses(),
        listed=target_list(warehouse, crm, policy, shard, accounts), after=after,
    )
    return _with_prior_seen(fired, prior)


def _joined(parts: list[Signals]) -> Signals:
    """Signals of disjoint accounts as one."""
    return Signals(*(_joined_frames([getattr(part, field.name) for part in parts]) for field in fields(Signals)))


def _joined_frames(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames of one kind's columns as one (empty frames left out, so the columns keep their types; a column
    all empty in one part takes the other part's type, as pandas does today: its warning is silenced)."""
    kept = [part for part in parts if len(part)] or parts[:1]
    if len(kept) == 1:
        return kept[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return pd.concat(kept, ignore_index=True)


def target_list(
    warehouse: Warehouse, crm: CrmView, policy: SlaPolicy | None, shard: Shard | None, accounts: list[str] | None,
) -> pd.DataFrame | None:
    """The target account list rows of the accounts replayed (or scored) when the policy limits the hand-off
    and scoring to the list (``target_account_list.only_listed``) and a list exists; None: every account (SPEC)."""
    if not _only_listed(policy) or not tal_exists(warehouse):
        return None
    return crm.read_kind("target_accounts", shard=shard, accounts=accounts)


def _only_listed(policy: SlaPolicy | None) -> bool:
    return policy is not None and policy.target_account_list is not None and policy.target_account_list.only_listed


def tal_exists(warehouse: Warehouse) -> bool:
    """Whether the warehouse holds a target account list (any live ``target_accounts`` row)."""
    table = schema.target_accounts
    with warehouse.engine.connect() as connection:
        return connection.execute(sa.select(table.c.source_id).where(table.c.deleted_at.is_(None)).limit(1)
                                  ).first() is not None


def _stored_mqas(warehouse: Warehouse, accounts: pd.Series, connection: sa.Connection | None = None) -> pd.DataFrame:
    """The stored MQA keys of ``accounts``."""
    table = schema.mqas
    ids = accounts.dropna().astype(str).unique().tolist()
    return warehouse.select_in([table.c.account_id, table.c.trigger_at], [], table.c.account_id, ids, connection)


def _with_prior_seen(fired: pd.DataFrame, prior: pd.DataFrame) -> pd.DataFrame:
    seen = prior.groupby("account_id").size().rename("prior_seen")
    return fired.join(seen, on="account_id").fillna({"prior_seen": 0}).astype({"prior_seen": "int64"})


def route_and_store(
    warehouse: Warehouse, planned: incremental.Plan, model: ScoringModel, policy: SlaPolicy, run_id: str,
    started: dt.datetime, parts: list[pd.DataFrame],
) -> pd.DataFrame:
    """Route the shards' MQAs and store them, exactly once, under the warehouse lock.

    A run racing this one waits for the lock, then finds these MQAs stored. Accounts whose stored
    MQAs changed since their shard read them (a concurrent run fired for them) are replayed again
    inside the lock, so no episode is fired twice or overlaps another. Round-robin turns are
    handed out here, in one place, in (trigger_at, account_id) order.
    """
    as_of = planned.as_of
    fired = pd.concat(parts, ignore_index=True) if parts else _no_mqas()
    crm = CrmView(warehouse)
    users = crm.read_kind("users")
    with warehouse.engine.begin() as connection:
        warehouse.lock_stage(connection, "fire-and-route")
        fired = _recheck_under_lock(warehouse, crm, fired, planned, model, policy, connection)
        rows = fired.drop(columns=["ended_at", "prior_seen"], errors="ignore")
        if len(rows):
            accounts = crm.read_kind("accounts", accounts=rows["account_id"].unique().tolist())
            last_assigned = warehouse.get_state(ROUND_ROBIN_KEY, connection)
            routed, last_assigned = routing.route_mqas(rows[["account_id", "trigger_at"]], accounts, users, as_of,
                                                       last_assigned)
            rows = rows.merge(routed, on=["account_id", "trigger_at"])
            rows = rows.assign(
                model_version=model.version,
                run_id=run_id,
                pricing_visit=rows["reasons"].map(_has_pricing_visit),
                writeback_key=(rows["account_id"] + "|" + rows["trigger_at"].map(pd.Timestamp.isoformat)).map(
                    _short_hash
                ),
            )
            rows["shard"] = shard_keys(rows["account_id"])
            columns = [column.name for column in schema.mqas.columns if column.name in rows.columns]
            warehouse.upsert(connection, schema.mqas, records(rows[columns]), update=False)
            undo.remember_state(connection, run_id, ROUND_ROBIN_KEY)
            warehouse.set_state(connection, ROUND_ROBIN_KEY, last_assigned)
            warehouse.journal(connection, incremental.run_source(run_id), "mqas", rows["account_id"].drop_duplicates(),
                              started)
        incremental.record(connection, planned, run_id, started,
                           {"mqas_fired": len(rows), "mode": planned.mode, "shards": planned.shards})
        checkpoint("fire-and-route")
    checkpoint("fire-and-route")
    warehouse.analyze_changed_tables()
    return rows.sort_values(["trigger_at", "account_id"], ignore_index=True) if len(rows) else rows


def _recheck_under_lock(
    warehouse: Warehouse, crm: CrmView, fired: pd.DataFrame, planned: incremental.Plan, model: ScoringModel,
    policy: SlaPolicy, connection: sa.Connection,
) -> pd.DataFrame:
    """``fired`` less what a concurrent run stored meanwhile (replaying those accounts again)."""
    if fired.empty:
        return fired
    stored = _stored_mqas(warehouse, fired["account_id"], connection)
    now_seen = stored.groupby("account_id").size()
    seen_then = fired.drop_duplicates("account_id").set_index("account_id")["prior_seen"]
    stale = seen_then.index[seen_then.to_numpy() != now_seen.reindex(seen_then.index, fill_value=0).to_numpy()]
    if stale.empty:
        return fired
    again = _replay(warehouse, crm, planned.as_of, model, policy, None, stale.tolist(), connection)
    return pd.concat([fired[~fired["account_id"].isin(set(stale))], again], ignore_index=True)


def _no_mqas() -> pd.DataFrame:
    return pd.DataFrame({"account_id": pd.Series(dtype=object), "trigger_at": pd.Series(dtype="datetime64[ns, UTC]")})


# -- SLA clocks ---------------------------------------------------------------------------------

def to_evaluate(
    mqas: pd.DataFrame, clocks: pd.DataFrame, as_of: pd.Timestamp, policy: SlaPolicy | None = None
) -> pd.DataFrame:
    """The MQAs a run as of ``as_of`` evaluates: those whose clocks or escalations can still change.

    Settled (skipped): every clock decided *with* its met_at. A missed clock still gets its met_at
    when the late touch or status change comes (SPEC section 6), and a first touch without one
    leaves the escalation ladder open; once all four have theirs, the first sales touch has
    stopped the ladder and nothing can change, so a run's cost stays with the live MQAs.
    With the policy's optional clocks on, an MQA whose episode is open is never settled (a rejection
    or a new week can come), nor one with an undecided optional clock; nor one written back to the
    CRM since its routing time was measured (true routing time, ``writeback_done_at``).
    Also skipped: MQAs a run with a later ``as_of`` evaluated already (a backfill running behind
    live runs must not turn their clocks back to an earlier moment).
    """
    keys = ["account_id", "trigger_at"]
    recurring = clocks["clock"].eq("status_recurring")
    final = (clocks["status"] != "pending") & (clocks["met_at"].notna() | recurring)
    base = clocks["clock"].isin(sla.CLOCKS)
    complete = clocks[final & base].groupby(keys).size()
    settled = complete[complete == len(sla.CLOCKS)].index
    unsettled = [clocks.loc[~final & ~base, keys]]
    if policy is not None and any(getattr(policy.clocks, name) for name in sla.OPTIONAL_CLOCKS):
        unsettled.append(mqas.loc[mqas["ended_at"].isna(), keys])
    unsettled.append(rewritten(mqas, clocks, as_of))
    settled = settled.difference(pd.MultiIndex.from_frame(pd.concat(unsettled).astype({"account_id": object})))
    skipped = settled.union(pd.MultiIndex.from_frame(clocks.loc[clocks["as_of"] > as_of, keys]))
    return mqas[~pd.MultiIndex.from_frame(mqas[keys]).isin(skipped)].reset_index(drop=True)


def rewritten(mqas: pd.DataFrame, clocks: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Keys of the MQAs written back to the CRM (by ``as_of``) since their routing time was measured."""
    keys = ["account_id", "trigger_at"]
    if "writeback_done_at" not in mqas or not mqas["writeback_done_at"].notna().any():
        return mqas.loc[[], keys]
    written = mqas.loc[mqas["writeback_done_at"].notna() & (mqas["writeback_done_at"] <= as_of),
                       [*keys, "writeback_done_at"]]
    routing = clocks.loc[clocks["clock"].eq("routing_time"), [*keys, "met_at"]]
    written = written.merge(routing, on=keys, how="left")
    return written.loc[written["met_at"].ne(written["writeback_done_at"]), keys]


def due_between(
    mqas: pd.DataFrame, clocks: pd.DataFrame, users: pd.DataFrame, policy: SlaPolicy,
    after: pd.Timestamp, upto: pd.Timestamp,
) -> pd.Series:
    """Per MQA (index of ``mqas``): whether time alone can change its clocks or ladder in ``(after, upto]``.

    That is an MQA without clocks yet, a pending clock falling due, or a ladder level whose moment
    comes (its clock missed without a met_at: a touch or an episode end is data, found elsewhere).
    """
    keys = ["account_id", "trigger_at"]
    index = pd.MultiIndex.from_frame(mqas[keys])
    evaluated = pd.MultiIndex.from_frame(clocks[keys])
    falling_due = clocks[(clocks["status"] == "pending") & clocks["due_at"].notna() & (clocks["due_at"] <= upto)]
    open_ladders = clocks[clocks["met_at"].isna()]
    levels = sla.ladder_times(open_ladders, mqas, users, policy)
    climbing = levels[(levels["at"] > after) & (levels["at"] <= upto)]
    due = pd.MultiIndex.from_frame(pd.concat([falling_due[keys], climbing[keys]]))
    return pd.Series(~index.isin(evaluated) | index.isin(due), index=mqas.index)


def evaluate_sla(
    warehouse: Warehouse, as_of: pd.Timestamp, policy: SlaPolicy, *, full: bool = False, shards: int | None = None,
    run_id: str = "",
) -> dict:
    """Record episode ends, then evaluate the clocks and escalations that can change; clocks update in place."""
    started = utc_now()
    planned = plan(warehouse, "evaluate-sla", as_of, policy, full=full, shards=shards)
    parts = _run_shards(lambda shard: sla_shard(warehouse, planned, policy, shard, run_id), planned)
    return finish_sla(warehouse, planned, run_id, started, parts, policy)


def sla_shard(
    warehouse: Warehouse, planned: incremental.Plan, policy: SlaPolicy, shard: Shard, run_id: str = "",
) -> dict:
    """Evaluate one shard's MQAs whose clocks or escalations can change; store them and the episode ends
    (what they replace is logged for ``abm-sla undo`` under ``run_id``).

    An incremental run reads only the MQAs of its candidate accounts: those whose data changed
    (:func:`incremental.changed_accounts`) and those time alone can change (:func:`time_due_accounts`).
    Every other MQA's clocks, ladder and episode end are what the reference run stored: each run stores
    the episode ends as of its ``as_of``, and an end moves only with a status change in the window or in
    the journal.
    """
    as_of = planned.as_of
    crm = CrmView(warehouse)
    users = crm.read_kind("users")
    changed, accounts = None, None
    if not planned.full:
        moving = [(planned.reference_as_of, as_of)]
        kinds = incremental.STAGE_KINDS[planned.stage] + (("opportunities",) if policy.clocks.status_recurring else ())
        changed = incremental.changed_accounts(warehouse, planned, shard, {"activities": moving,
                                               "status_changes": moving},
                                               {"activities": frames.SALES_TOUCHES + frames.OWNER_EVENTS
                                                + marketing.research_types(policy)}, kinds=kinds)
        if not changed.everything and not incremental.other_config_since(warehouse, planned):
            accounts = sorted(changed.accounts | time_due_accounts(warehouse, planned, policy, users, shard))
    fired = _of_accounts(warehouse, schema.mqas, [schema.mqas.c.trigger_at <= as_of.to_pydatetime(),
                                                  _in_shard(schema.mqas, shard)], accounts)
    if fired.empty:
        return {"clocks": 0, "clocks_missed": 0, "escalations": 0, "episodes_ended": 0, "mqas_evaluated": 0}
    status_changes = read_status_changes(crm, as_of, shard, accounts)
    ended_at = handoff.episode_ends(fired, status_changes, as_of, policy.episode_end_statuses())
    newly_ended = fired.assign(ended_at=ended_at)[ended_at.ne(fired["ended_at"]) & ended_at.notna()]
    stored_clocks = _of_accounts(warehouse, schema.sla_clocks, [_in_shard(schema.sla_clocks, shard)], accounts)
    mqas = to_evaluate(fired.assign(ended_at=ended_at), stored_clocks, as_of, policy)
    if changed is not None and not changed.everything:
        touched = changed.accounts | set(newly_ended["account_id"]) \
            | set(rewritten(mqas, stored_clocks, as_of)["account_id"])
        wanted = (mqas["account_id"].isin(touched)
                  | due_between(mqas, stored_clocks, users, policy, planned.reference_as_of, as_of))
        mqas = mqas[wanted.to_numpy(dtype=bool)].reset_index(drop=True)
    clocks, escalations = _clocks_and_ladders(crm, mqas, status_changes, users, policy, as_of, shard)
    due = sla.reassignments_due(clocks, mqas, users, policy, as_of)
    candidates = reassignment_candidates(due, mqas, run_id)
    stale = stale_periods(stored_clocks, clocks, mqas)
    with warehouse.engine.begin() as connection:
        undo.remember(warehouse, connection, run_id, schema.sla_clocks, stale, only_existing=True)
        undo.delete_keys(connection, schema.sla_clocks, stale)
        clocks, escalations = _store_clocks(warehouse, connection, clocks, escalations, as_of, run_id)
        undo.remember(warehouse, connection, run_id, schema.mqas, newly_ended, only_existing=True)
        warehouse.update_rows(connection, schema.mqas, records(newly_ended[["account_id", "trigger_at", "ended_at"]]))
        undo.remember(warehouse, connection, run_id, schema.reassignments, candidates)
        warehouse.upsert(connection, schema.reassignments, records(candidates), update=False)
        checkpoint("evaluate-sla")
    checkpoint("evaluate-sla")
    return {
        "clocks": len(clocks),
        "clocks_missed": int((clocks["status"] == "missed").sum()),
        "escalations": len(escalations),
        "episodes_ended": len(newly_ended),
        "mqas_evaluated": len(mqas),
    }


def stale_periods(stored: pd.DataFrame, clocks: pd.DataFrame, mqas: pd.DataFrame) -> pd.DataFrame:
    """Keys of the stored ``status_recurring`` periods of the evaluated ``mqas`` that their evaluation no longer
    gives: a late (back-dated) opportunity or episode end moved the clock's stop before them."""
    keys = ["account_id", "trigger_at", "clock", "period"]
    recurring = stored.loc[stored["clock"].eq("status_recurring"), keys]
    if recurring.empty:
        return recurring
    evaluated = pd.MultiIndex.from_frame(mqas[["account_id", "trigger_at"]])
    recurring = recurring[pd.MultiIndex.from_frame(recurring[["account_id", "trigger_at"]]).isin(evaluated)]
    given = pd.MultiIndex.from_frame(clocks[keys]) if len(clocks) else pd.MultiIndex.from_tuples([], names=keys)
    return recurring[~pd.MultiIndex.from_frame(recurring.astype({"period": int})).isin(given)].reset_index(drop=True)


def _clock_activities(
    crm: CrmView, mqas: pd.DataFrame, policy: SlaPolicy, as_of: pd.Timestamp, shard: Shard | None, accounts: list[str],
) -> pd.DataFrame:
    """The activities the clocks and the ladder read: sales touches since the first trigger; with the
    marketing_response clock on, also web visits in its lookback and the research activities."""
    if mqas.empty:
        return frames.empty("activities")
    since = mqas["trigger_at"].min() - pd.Timedelta(seconds=1)
    read = {"until": as_of.to_pydatetime(), "shard": shard, "accounts": accounts}
    touches = crm.read_kind("activities", since=since.to_pydatetime(),
                            types=frames.SALES_TOUCHES + frames.OWNER_EVENTS, **read)
    response = policy.marketing.response if policy.marketing is not None else None
    if response is None:
        return touches
    lookback = since - pd.Timedelta(days=response.lookback_days)
    more = crm.read_kind("activities", since=lookback.to_pydatetime(),
                         types=tuple(dict.fromkeys(("web_visit", *response.met_by))), **read)
    return pd.concat([touches, more], ignore_index=True).drop_duplicates("activity_id", ignore_index=True)


def _clocks_and_ladders(
    crm: CrmView, mqas: pd.DataFrame, status_changes: pd.DataFrame, users: pd.DataFrame, policy: SlaPolicy,
    as_of: pd.Timestamp, shard: Shard | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The clocks and escalations of ``mqas`` as of ``as_of`` (reads the activities and opportunities they need)."""
    accounts = mqas["account_id"].unique().tolist()
    activities = _clock_activities(crm, mqas, policy, as_of, shard, accounts)
    opportunities = crm.read_kind("opportunities", shard=shard, accounts=accounts) \
        if policy.clocks.status_recurring and len(mqas) else None
    regional = crm.read_kind("accounts", shard=shard, accounts=accounts) if policy.regions and len(mqas) else None
    clocks = sla.evaluate_clocks(mqas, activities, status_changes, users, policy, as_of, opportunities, regional)
    return clocks, sla.evaluate_escalations(clocks, mqas, activities, users, policy, as_of)


def _store_clocks(
    warehouse: Warehouse, connection: sa.Connection, clocks: pd.DataFrame, escalations: pd.DataFrame,
    as_of: pd.Timestamp, run_id: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Upsert clocks (in place) and insert new escalation rows, logging what they replace for undo."""
    clock_columns = [column.name for column in schema.sla_clocks.columns if column.name in clocks.columns]
    escalation_columns = [c.name for c in schema.escalations.columns if c.name in escalations.columns]
    clocks = clocks.assign(as_of=as_of, shard=shard_keys(clocks["account_id"]))
    # the owner is in the key ("" = none): a reassigned MQA's new owner's ladder is kept beside the old one's
    escalations = escalations.assign(shard=shard_keys(escalations["account_id"]),
                                     owner_id=escalations["owner_id"].astype("object").where(
                                         escalations["owner_id"].notna(), ""))
    undo.remember(warehouse, connection, run_id, schema.sla_clocks, clocks)
    undo.remember(warehouse, connection, run_id, schema.escalations, escalations)
    warehouse.upsert(connection, schema.sla_clocks, records(clocks[[*clock_columns, "as_of", "shard"]]))
    warehouse.upsert(connection, schema.escalations, records(escalations[[*escalation_columns, "shard"]]),
                     update=False)
    return clocks, escalations


# -- reassignment on breach ---------------------------------------------------------------------

REASSIGN_COLUMNS = ["account_id", "trigger_at", "clock", "level", "reassigned_at", "from_owner_id", "status",
                    "run_id", "shard"]


def reassignment_candidates(due: pd.DataFrame, mqas: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """MQAs a reassigning level opened for (``sla.reassignments_due``; the earliest per MQA), not reassigned
    before: the rows ``reassignments`` gets as ``pending`` (the finishing step hands out the turns)."""
    opened = due
    if "reassigned_at" in mqas and len(opened):
        done = mqas.loc[mqas["reassigned_at"].notna(), ["account_id", "trigger_at"]]
        opened = opened[~pd.MultiIndex.from_frame(opened[["account_id", "trigger_at"]]).isin(
            pd.MultiIndex.from_frame(done))]
    opened = opened.sort_values(["opened_at", "clock"], kind="stable").drop_duplicates(["account_id", "trigger_at"])
    out = opened.rename(columns={"opened_at": "reassigned_at", "owner_id": "from_owner_id"}).assign(
        status="pending", run_id=run_id, shard=shard_keys(opened["account_id"]))
    return out[REASSIGN_COLUMNS].reset_index(drop=True)


def apply_reassignments(warehouse: Warehouse, policy: SlaPolicy, as_of: pd.Timestamp, run_id: str) -> dict:
    """Hand the pending reassignments their round-robin turns, exactly once, under the routing lock.

    Each reassigned MQA gets its new owner (``mqas.owner_id``), ``reassigned_at`` (the level's opening:
    a moment of the data, not of the run) and fresh clocks from that moment, evaluated and stored in
    the same transaction; the audit row gets the new owner, the reason and a write-back key. A run
    racing this one waits for the lock and finds nothing pending. Returns ``reassigned, kept``.
    """
    table = schema.reassignments
    pending = warehouse.read_table(table, table.c.status == "pending")
    if pending.empty:
        return {"reassigned": 0, "kept": 0}
    crm = CrmView(warehouse)
    users = crm.read_kind("users")
    accounts = pending["account_id"].unique().tolist()
    mqas = warehouse.read_table(schema.mqas, schema.mqas.c.account_id.in_(accounts))
    status_changes = read_status_changes(crm, as_of, accounts=accounts)
    with warehouse.engine.begin() as connection:
        warehouse.lock_stage(connection, "fire-and-route")
        still = warehouse.read_table(table, table.c.status == "pending", connection)
        pending = pending.merge(still[["account_id", "trigger_at"]], on=["account_id", "trigger_at"])
        if pending.empty:
            return {"reassigned": 0, "kept": 0}
        state = warehouse.get_state(ROUND_ROBIN_KEY, connection)
        chosen, state = routing.reassign_owners(pending, users, state)
        done = pending.assign(to_owner_id=chosen["to_owner_id"], reason=chosen["reason"],
                              status=chosen["to_owner_id"].notna().map({True: "reassigned", False: "kept"}))
        done["writeback_key"] = (done["account_id"] + "|" + done["trigger_at"].map(pd.Timestamp.isoformat)
                                 + "|reassign").map(_short_hash).where(done["status"] == "reassigned")
        moved = done[done["status"] == "reassigned"]
        changed = mqas.merge(moved[["account_id", "trigger_at", "to_owner_id", "reassigned_at"]],
                             on=["account_id", "trigger_at"], suffixes=("_old", ""))
        changed = changed.drop(columns=["reassigned_at_old", "owner_id"]).rename(columns={"to_owner_id": "owner_id"})
        undo.remember(warehouse, connection, run_id, table, done, only_existing=True)
        undo.remember(warehouse, connection, run_id, schema.mqas, changed, only_existing=True)
        undo.remember_state(connection, run_id, ROUND_ROBIN_KEY)
        warehouse.set_state(connection, ROUND_ROBIN_KEY, state)
        warehouse.update_rows(connection, table, records(done[["account_id", "trigger_at", "to_owner_id", "status",
                                                               "reason", "writeback_key"]]))
        warehouse.update_rows(connection, schema.mqas, records(changed[["account_id", "trigger_at", "owner_id",
                                                                        "reassigned_at"]]))
        if len(changed):
            fresh = changed[changed["trigger_at"] <= as_of].reset_index(drop=True)
            clocks, escalations = _clocks_and_ladders(crm, fresh, status_changes, users, policy, as_of, None)
            _store_clocks(warehouse, connection, clocks, escalations, as_of, run_id)
        warehouse.journal(connection, incremental.run_source(run_id), "mqas", done["account_id"].drop_duplicates(),
                          utc_now())
        checkpoint("evaluate-sla")
    return {"reassigned": len(moved), "kept": len(done) - len(moved)}


def time_due_accounts(
    warehouse: Warehouse, planned: incremental.Plan, policy: SlaPolicy, users: pd.DataFrame, shard: Shard
) -> set[str]:
    """Accounts of ``shard`` with an MQA that time alone can change between the reference run and this one
    (see :func:`due_between`), found in the database: MQAs without clocks, pending clocks falling due, open
    ladders (a missed clock of any ladder without its met_at) with a level coming in the interval, and MQAs
    written back to the CRM since their routing time was measured (:func:`rewritten`)."""
    as_of, mqas, clocks = planned.as_of.to_pydatetime(), schema.mqas, schema.sla_clocks
    same_mqa = [clocks.c.account_id == mqas.c.account_id, clocks.c.trigger_at == mqas.c.trigger_at]
    unevaluated = warehouse.select_frame([mqas.c.account_id], [mqas.c.trigger_at <= as_of, _in_shard(mqas, shard),
                                                               ~sa.exists().where(*same_mqa)])
    falling_due = warehouse.select_frame([clocks.c.account_id], [
        _in_shard(clocks, shard), clocks.c.status == "pending", clocks.c.due_at.is_not(None), clocks.c.due_at <= as_of])
    open_ladders = warehouse.select_frame(
        [clocks.c.account_id, clocks.c.trigger_at, clocks.c.clock, clocks.c.status, clocks.c.due_at,
         clocks.c.owner_id, mqas.c.routed_at, mqas.c.reassigned_at],
        [*same_mqa, _in_shard(clocks, shard), clocks.c.clock.in_([ladder.clock for ladder in policy.ladders]),
         clocks.c.status == "missed", clocks.c.met_at.is_(None)])
    levels = sla.ladder_times(open_ladders, open_ladders, users, policy)
    climbing = levels.loc[(levels["at"] > planned.reference_as_of) & (levels["at"] <= planned.as_of), "account_id"]
    written = warehouse.select_frame([mqas.c.account_id], [
        *same_mqa, _in_shard(mqas, shard), clocks.c.clock == "routing_time", mqas.c.writeback_done_at.is_not(None),
        mqas.c.writeback_done_at <= as_of,
        sa.or_(clocks.c.met_at.is_(None), clocks.c.met_at != mqas.c.writeback_done_at)])
    return set(unevaluated["account_id"]) | set(falling_due["account_id"]) | set(climbing) | set(written["account_id"])


def _of_accounts(
    warehouse: Warehouse, table: sa.Table, where: list, accounts: list[str] | None
) -> pd.DataFrame:
    """A derived table's rows matching ``where``, of ``accounts`` only unless None."""
    if accounts is None:
        return warehouse.read_table(table, sa.and_(*where))
    return warehouse.select_in(list(table.columns), where, table.c.account_id, accounts)


def finish_sla(
    warehouse: Warehouse, planned: incremental.Plan, run_id: str, started: dt.datetime, parts: list[dict],
    policy: SlaPolicy | None = None,
) -> dict:
    """Apply the reassignments on breach the shards found (with ``policy``), then record the SLA run;
    returns the stage summary, with ``users_on_utc``: users whose time zone is unknown, whose clocks
    ran on UTC instead, and ``unknown_statuses``: status values the policy's dispositions do not map
    (kept, never dropped)."""
    keys = ("clocks", "clocks_missed", "escalations", "episodes_ended", "mqas_evaluated")
    summary = {key: sum(part[key] for part in parts) for key in keys}
    if policy is not None:
        summary.update(apply_reassignments(warehouse, policy, planned.as_of, run_id))
    fallbacks = calendar.unusable_zones(CrmView(warehouse).read_kind("users"))
    if len(fallbacks):
        summary["users_on_utc"] = [f"{user} ({zone!r})" for user, zone in fallbacks.itertuples(index=False)]
    unknown = unknown_statuses(warehouse, policy) if policy is not None else None
    if unknown is not None and len(unknown):
        summary["unknown_statuses"] = dispositions.summary_of_unknown(unknown)
    with warehouse.engine.begin() as connection:
        incremental.record(connection, planned, run_id, started,
                           {**summary, "mode": planned.mode, "shards": planned.shards})
        checkpoint("evaluate-sla")
    checkpoint("evaluate-sla")
    warehouse.analyze_changed_tables()
    return summary


def unknown_statuses(warehouse: Warehouse, policy: SlaPolicy) -> pd.DataFrame:
    """Status values of the stored status changes that the policy cannot map, counted in SQL."""
    t = schema.status_changes
    query = (sa.select(t.c.status, sa.func.count().label("changes"),
                       sa.func.count(sa.distinct(t.c.account_id)).label("accounts"),
                       sa.func.min(t.c.changed_at).label("first_at"), sa.func.max(t.c.changed_at).label("last_at"))
             .where(t.c.deleted_at.is_(None)).group_by(t.c.status))
    with warehouse.engine.connect() as connection:
        counts = pd.DataFrame(connection.execute(query).all(), columns=dispositions.UNKNOWN_COLUMNS)
    return dispositions.unknown_from_counts(counts, policy)


def _in_shard(table: sa.Table, shard: Shard) -> sa.ColumnElement[bool]:
    """The rows of ``shard`` in a derived table (every row for a whole run)."""
    return sa.true() if shard.whole else table.c.shard.between(shard.low, shard.high - 1)


def utc_now() -> dt.datetime:
    """The wall clock, for run bookkeeping only (results depend on ``as_of``, never on this)."""
    return dt.datetime.now(dt.UTC)


def _has_pricing_visit(reasons: list[dict]) -> bool:
    return any("pricing" in str(reason.get("rule", "")) for reason in reasons or [])


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


TIER_MOVES_KEY = "tier_moves:last_as_of"
#: What the last ledger run saw (its as-of, journal position, configuration and the first activity on record):
#: the next day's run recomputes only the accounts whose candidacy can have changed since.
TIER_MOVES_REFERENCE_KEY = "tier_moves:reference"
#: The CRM kinds the tier-move rules read.
TIER_MOVE_KINDS = ("accounts", "contacts", "activities", "intent_signals", "opportunities")
#: With more than this share of the accounts to recompute, the ledger reads every account (as cheap).
TIER_MOVES_WHOLE_SHARE = 0.5
#: The rules compare inactive days rounded to a tenth: a crossing may come this much early or late.
ROUNDING = pd.Timedelta(hours=2)


def record_tier_moves(warehouse: Warehouse, as_of: pd.Timestamp, policy: SlaPolicy, model: ScoringModel,
                      run_id: str = "", full: bool = False) -> dict:
    """Advance the tier-move ledger as of ``as_of``: decide pending recommendations from the accounts' tiers,
    record the new ones (:mod:`abm_sla.domain.tier_moves`); undoable with the run. Once per UTC day: a later run the
    same day (``sla-monitor`` runs every 15 minutes) skips it. No rules in the policy: no-op.

    Incremental: against the ledger run before (same rules, earlier, the ledger untouched since), only the
    accounts whose candidacy can have changed are recomputed (:func:`tier_move_accounts`); every other
    account's candidacy is what that run saw, and that run recorded it or found it blocked by a
    recommendation still pending or a decline still quiet. The ledger is the same as ``full`` gives."""
    rules = policy.targets.tier_moves if policy.targets else None
    last = warehouse.get_state(TIER_MOVES_KEY)
    if rules is None or (last and pd.Timestamp(last).normalize() == as_of.normalize() and as_of >= pd.Timestamp(last)):
        return {"tier_moves_recommended": 0, "tier_moves_decided": 0}
    view = CrmView(warehouse)
    reference = {"as_of": as_of.isoformat(), "journal_seq": warehouse.journal_position(),
                 "version": incremental.config_version(rules, model)}  # the position before anything is read
    table = schema.tier_move_recommendations
    stored = tier_moves.conform(warehouse.read_table(table))
    accounts, opportunities = view.read_kind("accounts"), view.read_kind("opportunities")
    decided = tier_moves.decide(stored, accounts, as_of, rules)
    first_at = None if view.unified else warehouse.first_activity_at(as_of.to_pydatetime())
    reference["first_at"] = None if first_at is None or pd.isna(first_at) else first_at.isoformat()
    chosen = None
    if not full and not view.unified:
        before = _tier_move_reference(warehouse, last, reference, stored, as_of)
        if before is not None:
            chosen = tier_move_accounts(warehouse, before, reference["journal_seq"], as_of, rules, accounts,
                                        opportunities, stored, decided, first_at)
        if chosen is not None and len(chosen) > TIER_MOVES_WHOLE_SHARE * len(accounts):
            chosen = None
    intent, facts = _tier_move_window(view, as_of, rules, chosen, first_at)
    candidates = _tier_move_candidates(view, as_of, policy, model, accounts, opportunities, intent, facts, chosen)
    after = tier_moves.record(decided, candidates, as_of, rules)
    merged = after.merge(stored, on=["account_id", "recommended_at"], how="left", suffixes=("", "_was"),
                         indicator=True)
    changed = merged["_merge"].eq("left_only") | merged["decision"].ne(merged["decision_was"]) | merged[
        "evaluated_at"].ne(merged["evaluated_at_was"])
    rows = after[changed.to_numpy()].assign(run_id=run_id or None)
    with warehouse.engine.begin() as connection:
        undo.remember(warehouse, connection, run_id, table, rows[["account_id", "recommended_at"]])
        warehouse.upsert(connection, table, records(rows))
        for key, value in ((TIER_MOVES_KEY, as_of.isoformat()), (TIER_MOVES_REFERENCE_KEY, json.dumps(reference))):
            undo.remember_state(connection, run_id, key)
            warehouse.set_state(connection, key, value)
    decided_count = int((merged["decision"].ne(tier_moves.PENDING) & merged["decision_was"].eq(tier_moves.PENDING))
                        .sum())
    return {"tier_moves_recommended": int(merged["_merge"].eq("left_only").sum()), "tier_moves_decided": decided_count,
            "tier_moves_accounts_recomputed": len(accounts) if chosen is None else len(chosen)}


def _tier_move_window(view: CrmView, as_of: pd.Timestamp, rules, chosen: set[str] | None,
                      first_at: pd.Timestamp | None) -> tuple[pd.DataFrame, scorecard.ActivityFacts]:
    """The window's intent rows that may count and its activity facts (:meth:`CrmView.activity_facts`, the first
    and last activities left to :func:`_tier_move_candidates`): of every account, or of the ``chosen`` ones."""
    window = scorecard.tier_move_window(rules)
    since, until = (as_of - window).to_pydatetime(), as_of.to_pydatetime()
    ids = None if chosen is None else sorted(chosen)
    intent = view.read_kind("intent_signals", since=since, until=until, min_score=scorecard.tier_move_intent_min(rules),
                            columns=("account_id", "topic", "score", "observed_at"), accounts=ids)
    if ids is None:
        return intent, view.activity_facts(as_of, window, extent=False)
    buying = view.warehouse.read_kind(
        "activities", since=since, until=until, types=(*scorecard.HIGH_INTENT_TOUCHES, "web_visit"),
        columns=("account_id", "type", "url", "occurred_at"), url_contains={"web_visit": scorecard.HIGH_INTENT_PAGES},
        accounts=ids)
    pairs = view.warehouse.activity_contacts(since, until, frames.MARKETING_TOUCHES, accounts=ids)
    extent = pd.DataFrame({"first_at": pd.Series(dtype="datetime64[ns, UTC]"),
                           "last_at": pd.Series(dtype="datetime64[ns, UTC]")}, index=pd.Index([], dtype=object))
    return intent, scorecard.ActivityFacts(extent, buying[["account_id", "type", "url", "occurred_at"]], pairs,
                                           first_at=first_at)


def _tier_move_candidates(view: CrmView, as_of: pd.Timestamp, policy: SlaPolicy, model: ScoringModel,
                          accounts: pd.DataFrame, opportunities: pd.DataFrame, intent: pd.DataFrame,
                          facts: scorecard.ActivityFacts, chosen: set[str] | None) -> pd.DataFrame:
    """``scorecard.tier_moves`` of every account (``chosen`` None) or of the ``chosen`` ones only: then their
    first and last activity and the titles of their engaged contacts are read by key."""
    if chosen is None:
        if not view.unified:
            extent = view.warehouse.activity_extent(as_of.to_pydatetime())
            facts = dataclasses.replace(facts, extent=extent.set_index("account_id")[["first_at", "last_at"]])
        contacts = view.read_kind("contacts", columns=("contact_id", "account_id", "title"))
    else:
        def mine(frame: pd.DataFrame) -> pd.DataFrame:
            return frame[frame["account_id"].astype(str).isin(chosen)]

        last = view.warehouse.last_activities(as_of.to_pydatetime(), sorted(chosen)).set_index("account_id")
        extent = last.assign(first_at=pd.NaT)[["first_at", "last_at"]]  # facts.first_at stands for the first ones
        facts = dataclasses.replace(facts, extent=extent)
        accounts, opportunities = mine(accounts), mine(opportunities)
        contacts = view.warehouse.contacts_by_id(facts.touch_pairs["contact_id"].astype(str).unique())
    data = scorecard.SlaData.of(accounts=accounts, opportunities=opportunities, contacts=contacts,
                                intent_signals=intent)
    return scorecard.tier_moves(data, as_of, policy, model.decision_maker_pattern, facts=facts)


def _tier_move_reference(warehouse: Warehouse, last: str | None, now: dict, stored: pd.DataFrame,
                         as_of: pd.Timestamp) -> dict | None:
    """The last ledger run's reference when this run can build on it: same rules and model, the same first
    activity on record, earlier than ``as_of``, and no ledger row newer than it (else None: recompute all)."""
    text = warehouse.get_state(TIER_MOVES_REFERENCE_KEY)
    if not text or not last:
        return None
    before = json.loads(text)
    reference_as_of = pd.Timestamp(before["as_of"])
    if (before["as_of"] != last or before["version"] != now["version"] or before["first_at"] != now["first_at"]
            or reference_as_of >= as_of):
        return None
    latest = stored[["recommended_at", "decided_at", "evaluated_at"]].max().max() if len(stored) else pd.NaT
    if pd.notna(latest) and latest > reference_as_of:
        return None
    return {**before, "as_of": reference_as_of}


def tier_move_accounts(warehouse: Warehouse, reference: dict, journal_seq: int, as_of: pd.Timestamp, rules,
                       accounts: pd.DataFrame,
                       opportunities: pd.DataFrame, stored: pd.DataFrame, decided: pd.DataFrame,
                       first_at: pd.Timestamp | None) -> set[str] | None:
    """The accounts whose tier-move candidacy or ledger standing can differ from the reference run's
    (``T0``) at ``as_of`` (``T``); None: every account. A superset is harmless, a missing account is not:

    - rows stored since (the journal) of the kinds the rules read; for contacts, also the accounts whose
      window touches are by those accounts' contacts (a title counts for the account touched);
    - intent and opportunities entering the window, ``(T0, T]``, and opportunities closing then; activities
      entering it that can count or end an inactivity (:func:`_tier_move_entering`);
      Signals *leaving* the window need no recompute: they only lower counts the rules compare with ``>=``,
      so they can end a candidacy but never start one, nor unmask a later rule (the two promotions, the
      last rules, need different tiers);
    - inactivity crossing a rule's limit ``L``: the last activity, or an account's creation, in ``(T0 - L, T - L]``
      (two hours wider each side: days are rounded to 0.1); when the activity records begin in it, every
      account without activity crosses: None;
    - the ledger: recommendations decided now, and declines whose quiet period ends in ``(T0, T]``.
    """
    reference_as_of = reference["as_of"]
    journal = warehouse.read_journal(reference["journal_seq"], journal_seq, kinds=TIER_MOVE_KINDS)
    if journal["account_id"].isna().any():
        return None
    chosen = set(journal["account_id"].astype(str))
    touched = journal.loc[journal["kind"].eq("contacts"), "account_id"]
    if len(touched):
        window = scorecard.tier_move_window(rules)
        people = warehouse.contact_ids(touched.astype(str).unique())
        pairs = warehouse.activity_contacts((as_of - window).to_pydatetime(), as_of.to_pydatetime(),
                                            frames.MARKETING_TOUCHES, contacts=people.tolist())
        chosen |= set(pairs["account_id"].astype(str))
    whole = Shard(0, 1)
    chosen |= _tier_move_entering(warehouse, reference_as_of, as_of, rules, accounts)
    chosen |= incremental.accounts_with_events(warehouse, "intent_signals", reference_as_of, as_of, whole,
                                               min_score=scorecard.tier_move_intent_min(rules))
    opps = opportunities.assign(account_id=opportunities["account_id"].astype(str))
    for column in ("created_at", "close_date"):
        chosen |= set(opps.loc[(opps[column] > reference_as_of) & (opps[column] <= as_of), "account_id"])
    created = accounts["created_at"]
    for limit in tier_moves.inactivity_limits(rules):
        lo, hi = reference_as_of - limit - ROUNDING, as_of - limit + ROUNDING
        if first_at is not None and lo < first_at <= hi:  # every account older than the records crosses now
            return None
        chosen |= warehouse.accounts_going_quiet(lo.to_pydatetime(), hi.to_pydatetime(), as_of.to_pydatetime())
        chosen |= set(accounts.loc[(created > lo) & (created <= hi), "account_id"].astype(str))
    return chosen | tier_moves.ledger_changes(stored, decided, reference_as_of, as_of, rules)


def _tier_move_entering(warehouse: Warehouse, since: pd.Timestamp, as_of: pd.Timestamp, rules,
                        accounts: pd.DataFrame) -> set[str]:
    """Of the accounts with live activities in ``(since, as_of]``, those whose candidacy they can change: one
    counts toward a promotion (:func:`tier_moves.entering_may_count`), or the account may have been inactive
    at ``since`` (:func:`tier_moves.inactive_at`). Another account's new activities leave it as active as it
    was, with the same counts."""
    entering = warehouse.read_kind("activities", since=since.to_pydatetime(), until=as_of.to_pydatetime(),
                                   columns=("account_id", "type", "url", "occurred_at"))
    entering = entering[entering["account_id"].notna()]
    counting = tier_moves.entering_may_count(entering, accounts)
    others = set(entering["account_id"].astype(str)) - counting
    last = warehouse.last_activities(since.to_pydatetime(), sorted(others)) if others else None
    return counting | (tier_moves.inactive_at(others, last, since, rules, ROUNDING) if others else set())
