"""The hand-off and routing stage: replay the hand-off per shard (MQAs fired), then route and store the MQAs
under the warehouse lock and record the run."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from abm_sla.domain import (
    handoff,
    routing,
)
from abm_sla.domain.model import ScoringModel
from abm_sla.domain.policy import SlaPolicy
from abm_sla.infra.faults import checkpoint
from abm_sla.infra.shards import Shard, shard_keys
from abm_sla.services import incremental
from abm_sla.services.stages.load import (
    ROUND_ROBIN_KEY,
    _joined,
    _run_shards,
    _short_hash,
    plan,
    read_signals,
    read_status_changes,
    target_list,
    utc_now,
)
from abm_sla.warehouse import Warehouse, schema, undo
from abm_sla.warehouse.view import CrmView

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
            warehouse.upsert_frame(connection, schema.mqas, rows[columns], update=False)
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


def _has_pricing_visit(reasons: list[dict]) -> bool:
    return any("pricing" in str(reason.get("rule", "")) for reason in reasons or [])
