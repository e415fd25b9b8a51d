"""The scoring stage: plan, score each shard, finish (store the scores that changed and record the run)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from pydantic import BaseModel

from abm_sla.domain import (
    marketing,
    scoring,
    whatif,
)
from abm_sla.domain.model import ScoringModel
from abm_sla.domain.policy import SlaPolicy
from abm_sla.infra.faults import checkpoint
from abm_sla.infra.shards import Shard
from abm_sla.services import incremental
from abm_sla.services.stages.load import (
    _only_listed,
    _run_shards,
    count_accounts,
    existing_accounts,
    intent_min_scores,
    plan,
    read_signals,
    tal_exists,
    target_list,
    utc_now,
)
from abm_sla.warehouse import Warehouse, score_history
from abm_sla.warehouse.view import CrmView

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
    started: dt.datetime, parts: list[dict], qualified: int | None = None,
) -> dict:
    """Record the scoring run once every shard stored its scores; returns the stage summary
    (``accounts_scored``: the accounts on the target account list when scoring is limited to it; ``qualified``:
    counted here unless given)."""
    summary = {
        "accounts_scored": count_accounts(warehouse, planned.as_of, listed=_only_listed(policy)),
        "qualified": score_history.count_qualified(warehouse, model.version, planned.as_of) if qualified is None
        else qualified,
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
