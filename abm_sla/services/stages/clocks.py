"""The SLA stage: the clocks and escalation ladders of the MQAs per shard, reassignment on breach, and the
stage's finish (time-due accounts, the run record)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import sqlalchemy as sa

from abm_sla.domain import (
    calendar,
    dispositions,
    frames,
    handoff,
    marketing,
    routing,
    sla,
)
from abm_sla.domain.policy import SlaPolicy
from abm_sla.infra.faults import checkpoint
from abm_sla.infra.shards import Shard, shard_keys
from abm_sla.services import incremental
from abm_sla.services.stages import held_clocks
from abm_sla.services.stages.load import (
    ROUND_ROBIN_KEY,
    _in_shard,
    _run_shards,
    _short_hash,
    plan,
    read_status_changes,
    utc_now,
)
from abm_sla.warehouse import Warehouse, schema, undo
from abm_sla.warehouse.store import records
from abm_sla.warehouse.view import CrmView

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
                                                  _in_shard(schema.mqas, shard)], accounts, EVALUATED_MQA_COLUMNS)
    if fired.empty:
        return {"clocks": 0, "clocks_missed": 0, "escalations": 0, "episodes_ended": 0, "mqas_evaluated": 0}
    status_changes = read_status_changes(crm, as_of, shard, accounts)
    ended_at = handoff.episode_ends(fired, status_changes, as_of, policy.episode_end_statuses())
    newly_ended = fired.assign(ended_at=ended_at)[ended_at.ne(fired["ended_at"]) & ended_at.notna()]
    stored_clocks = held_clocks.read_clocks(warehouse, shard, accounts)
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
    with warehouse.engine.begin() as connection, held_clocks.own_writes(warehouse, connection, shard,
                                                                        accounts is None):
        undo.remember(warehouse, connection, run_id, schema.sla_clocks, stale, only_existing=True)
        undo.delete_keys(connection, schema.sla_clocks, stale)
        clocks, escalations, restamped = _store_clocks(warehouse, connection, clocks, escalations, as_of, run_id,
                                                       stored_clocks)
        undo.remember(warehouse, connection, run_id, schema.mqas, newly_ended, only_existing=True)
        warehouse.update_rows(connection, schema.mqas, records(newly_ended[["account_id", "trigger_at", "ended_at"]]))
        undo.remember(warehouse, connection, run_id, schema.reassignments, candidates)
        warehouse.upsert_frame(connection, schema.reassignments, candidates, update=False)
        checkpoint("evaluate-sla")
    held_clocks.stored_after(warehouse, shard, stored_clocks, stale, clocks, restamped, as_of)
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
    as_of: pd.Timestamp, run_id: str, stored: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Upsert clocks (in place) and insert new escalation rows, logging what they replace for undo.

    ``stored``: the clocks as read before this run evaluated them. An MQA whose stored clocks are exactly the
    evaluated ones with the same values (most of them: a run changes few clocks but stamps every one with its
    ``as_of``) gets only its ``as_of`` set, one ``UPDATE`` per MQA instead of a row per clock written whole; the
    stored rows end up the same (a count that differs from the expected one writes every row whole). Returns the
    clocks and escalations stored and, per clock, whether it was only restamped."""
    clock_columns = [column.name for column in schema.sla_clocks.columns if column.name in clocks.columns]
    escalation_columns = [c.name for c in schema.escalations.columns if c.name in escalations.columns]
    clocks = clocks.assign(as_of=as_of, shard=shard_keys(clocks["account_id"]))
    # the owner is in the key ("" = none): a reassigned MQA's new owner's ladder is kept beside the old one's
    escalations = escalations.assign(shard=shard_keys(escalations["account_id"]),
                                     owner_id=escalations["owner_id"].astype("object").where(
                                         escalations["owner_id"].notna(), ""))
    undo.remember(warehouse, connection, run_id, schema.sla_clocks, clocks)
    # the escalations are inserted, never changed: of a backfill's steps, each inserts those not logged before
    opened = escalations[undo.unlogged(run_id, schema.escalations, escalations)]
    undo.remember(warehouse, connection, run_id, schema.escalations, opened)
    columns = [*clock_columns, "as_of", "shard"]
    same = _unchanged_mqas(clocks[columns], stored) if stored is not None else np.zeros(len(clocks), dtype=bool)
    if not _restamped(warehouse, connection, clocks.loc[same, MQA_KEY].drop_duplicates(), as_of, int(same.sum())):
        same[:] = False
    warehouse.upsert_frame(connection, schema.sla_clocks, clocks.loc[~same, columns])
    warehouse.upsert_frame(connection, schema.escalations, opened[[*escalation_columns, "shard"]], update=False)
    return clocks, escalations, pd.Series(same, index=clocks.index)


#: The primary key of ``sla_clocks``, and of the MQA a clock belongs to.
CLOCK_KEY = ["account_id", "trigger_at", "clock", "period"]
MQA_KEY = ["account_id", "trigger_at"]


def _unchanged_mqas(clocks: pd.DataFrame, stored: pd.DataFrame) -> np.ndarray:
    """Per row of ``clocks``: whether every clock of its MQA is stored with the same values
    (:func:`stored_unchanged`) and ``stored`` holds no other clock of that MQA."""
    if clocks.empty or stored.empty:
        return np.zeros(len(clocks), dtype=bool)
    same = pd.Series(stored_unchanged(clocks, stored, CLOCK_KEY), index=clocks.index)
    by_mqa = [clocks[name] for name in MQA_KEY]
    whole = same.groupby(by_mqa, sort=False).transform("all").to_numpy(dtype=bool)
    evaluated = same.groupby(by_mqa, sort=False).transform("size").to_numpy()
    kept = stored.groupby(MQA_KEY).size().reindex(pd.MultiIndex.from_frame(clocks[MQA_KEY])).to_numpy()
    return whole & (evaluated == kept)


def stored_unchanged(rows: pd.DataFrame, stored: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """Per row of ``rows``: whether ``stored`` holds a row with its key and the same values in every other column
    of ``rows`` but ``as_of``, as the warehouse stores them (timestamps to the microsecond, missing equals
    missing, a number equals the same number of another type). Anything else is "changed"."""
    columns = [name for name in rows.columns if name not in keys and name != "as_of"]
    if rows.empty or stored.empty or not set(columns) <= set(stored.columns):
        return np.zeros(len(rows), dtype=bool)
    stored = stored.drop_duplicates(keys)
    at = pd.MultiIndex.from_frame(stored[keys]).get_indexer(pd.MultiIndex.from_frame(rows[keys]))
    found = at >= 0
    same = found.copy()
    for name in columns:
        same &= _same_values(rows[name], stored[name].iloc[np.where(found, at, 0)])
    return same


def _same_values(left: pd.Series, right: pd.Series) -> np.ndarray:
    """Elementwise equality as stored: see :func:`stored_unchanged`."""
    missing = left.isna().to_numpy() & right.isna().to_numpy()
    if any(pd.api.types.is_datetime64_any_dtype(values) for values in (left, right)):
        try:  # microseconds since the epoch (NaT: the same number on both sides)
            left, right = (pd.DatetimeIndex(values if pd.api.types.is_datetime64_any_dtype(values)
                                            else pd.to_datetime(values, utc=True)).as_unit("ns").asi8 // 1_000
                           for values in (left, right))
        except (TypeError, ValueError):
            return missing
    elif all(pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
             for values in (left, right)):
        left, right = left.to_numpy(dtype="float64", na_value=np.nan), right.to_numpy(dtype="float64", na_value=np.nan)
    else:
        left, right = left.to_numpy(dtype=object), right.to_numpy(dtype=object)
    return np.asarray(left == right, dtype=bool) | missing


def _restamped(warehouse: Warehouse, connection: sa.Connection, mqas: pd.DataFrame, as_of: pd.Timestamp,
               expected: int) -> bool:
    """Set ``as_of`` of every stored clock of ``mqas``; False when that is not ``expected`` clocks (rows
    written or deleted since they were read: the caller writes the clocks whole instead)."""
    if mqas.empty:
        return True
    return warehouse.update_frame(connection, schema.sla_clocks, mqas[MQA_KEY].assign(as_of=as_of), MQA_KEY) == expected


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


#: The columns of an MQA the SLA stage reads: all but its score reasons (JSON, parsed per row).
EVALUATED_MQA_COLUMNS = [column for column in schema.mqas.columns if column.name != "reasons"]


def _of_accounts(
    warehouse: Warehouse, table: sa.Table, where: list, accounts: list[str] | None, columns: list | None = None,
) -> pd.DataFrame:
    """A derived table's rows matching ``where`` (``columns``, default all), of ``accounts`` only unless None."""
    columns = list(table.columns) if columns is None else columns
    if accounts is None:
        return warehouse.select_frame(columns, where)
    return warehouse.select_in(columns, where, table.c.account_id, accounts)


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
