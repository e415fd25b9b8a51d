"""Runs that cost what changed: which accounts a stage run must recompute.

Each completed stage run (score, fire-and-route, evaluate-sla) is recorded in ``stage_runs`` with
its ``as_of``, its configuration version (model and policy content) and the change-journal
position it had seen. The next run of that stage and version takes the latest recorded run at or
before its own ``as_of`` as its *reference* (time ``T0``) and recomputes only the accounts whose
result can differ between ``T0`` and its ``as_of`` (``T``):

- rows stored since the reference (the journal): new or changed accounts, contacts, signals,
  status changes, deletes, late-arriving and back-dated rows alike; users changes count for
  every account of the stages that read users;
- signals whose event time enters the window, ``(T0, T]``, or (scoring) leaves it,
  ``(T0 - window, T - window]``, and accounts created in ``(T0, T]``;
- (scoring limited to the target account list) list rows stored since the reference, and list periods
  whose ``added_at`` or ``removed_at`` lies in ``(T0, T]``;
- (fire-and-route) MQAs stored by other runs since the reference; (evaluate-sla) MQAs without
  clocks yet and the clocks and ladder levels that fall due in ``(T0, T]``, chosen by the SLA stage.

Without a reference (first run, another model or policy, ``--full``, several CRMs unified) a run
recomputes everything. Either way the stored results are the same as a full recompute.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel

from abm_sla.infra.shards import SHARD_SPACE, Shard, all_shards
from abm_sla.warehouse import Warehouse, schema

#: Which journal kinds can change each stage's result.
STAGE_KINDS: dict[str, tuple[str, ...]] = {
    "score": ("accounts", "contacts", "activities", "intent_signals"),
    "fire-and-route": ("accounts", "contacts", "activities", "intent_signals", "status_changes", "mqas",
                       "target_accounts"),
    "evaluate-sla": ("activities", "status_changes", "users"),
}
#: Journal kinds a stage reads for every account (a change to them recomputes everything).
#: (A target account list change can decide whether a list exists at all, so it replays every account.)
WHOLE_CRM_KINDS: dict[str, tuple[str, ...]] = {"evaluate-sla": ("users",), "fire-and-route": ("target_accounts",)}
#: Kinds whose event time has an index of its own, and the longest interval read through it on SQLite.
INDEXED_EVENT_TIME = ("activities", "intent_signals")
NARROW_INTERVAL = pd.Timedelta(days=7)
EVENT_TIME: dict[str, str | tuple[str, ...]] = {
    "activities": "occurred_at", "intent_signals": "observed_at", "status_changes": "changed_at",
    "accounts": "created_at", "target_accounts": ("added_at", "removed_at")}


def run_source(run_id: str | None) -> str:
    """The journal's ``source`` for what a pipeline run itself wrote (the MQAs it fired)."""
    return f"run:{run_id}"


def config_version(*configs: BaseModel) -> str:
    """A short fingerprint of the configurations a stage's results depend on (models, policies)."""
    text = "|".join(config.model_dump_json() for config in configs)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Plan:
    """What one stage run computes: for ``as_of``, against its reference run (none: everything)."""

    stage: str
    as_of: pd.Timestamp
    config_version: str
    journal_seq: int
    shards: int = 1
    reference_as_of: pd.Timestamp | None = None
    reference_seq: int = 0
    reference_run_id: str | None = None

    @property
    def full(self) -> bool:
        return self.reference_as_of is None

    @property
    def mode(self) -> str:
        return "full" if self.full else "incremental"

    def shard_list(self) -> list[Shard]:
        return all_shards(self.shards)


def plan(
    warehouse: Warehouse, stage: str, as_of: pd.Timestamp, version: str, *, full: bool = False, shards: int = 1,
    unified: bool = False,
) -> Plan:
    """The plan of a stage run: its journal position and, unless ``full``, its reference run.

    Several unified CRMs re-key accounts across sources, so their runs use one shard and recompute
    everything.
    """
    position = warehouse.journal_position()
    if unified:
        return Plan(stage, as_of, version, position, shards=1)
    if full:
        return Plan(stage, as_of, version, position, shards=shards)
    table = schema.stage_runs
    query = (
        sa.select(table.c.as_of, table.c.journal_seq, table.c.run_id)
        .where(table.c.stage == stage, table.c.config_version == version, table.c.accounts.is_(None),
               table.c.as_of <= as_of.to_pydatetime())
        .order_by(table.c.as_of.desc(), table.c.id.desc())
        .limit(1)
    )
    with warehouse.engine.connect() as connection:
        reference = connection.execute(query).first()
    if reference is None:
        return Plan(stage, as_of, version, position, shards=shards)
    return Plan(stage, as_of, version, position, shards=shards,
                reference_as_of=pd.Timestamp(reference.as_of).tz_convert("UTC"), reference_seq=reference.journal_seq,
                reference_run_id=reference.run_id)


def record(
    connection: sa.Connection, plan: Plan, run_id: str, started_at: dt.datetime, summary: dict,
    accounts: list[str] | None = None, model_version: str | None = None,
) -> None:
    """Record a completed stage run (inside the transaction of its last write).

    ``accounts`` names the accounts a run computed for when it was not all of them (a what-if
    applied to chosen accounts); ``model_version`` is the scoring model's label for score runs.
    """
    connection.execute(schema.stage_runs.insert().values(
        stage=plan.stage, run_id=run_id, as_of=plan.as_of.to_pydatetime(), config_version=plan.config_version,
        model_version=model_version, journal_seq=plan.journal_seq, accounts=accounts, mode=plan.mode,
        started_at=started_at, summary=json.loads(json.dumps(summary, default=str)),
    ))


def other_config_since(warehouse: Warehouse, plan: Plan, model_version: str | None = None) -> bool:
    """Whether a run of the stage under another configuration (say another SLA policy) was recorded after
    the plan's reference run: its results stand for every account, so this run reads them all.
    ``model_version``: only runs of that scoring model count (scores are stored per model version)."""
    table = schema.stage_runs
    reference = (sa.select(sa.func.max(table.c.id))
                 .where(table.c.stage == plan.stage, table.c.run_id == plan.reference_run_id,
                        table.c.config_version == plan.config_version).scalar_subquery())
    where = [table.c.stage == plan.stage, table.c.config_version != plan.config_version,
             table.c.id > sa.func.coalesce(reference, 0)]
    if model_version is not None:
        where.append(table.c.model_version == model_version)
    query = sa.select(table.c.id).where(*where).limit(1)
    with warehouse.engine.connect() as connection:
        return connection.execute(query).first() is not None


@dataclass
class Changed:
    """The accounts of one shard a run recomputes: ``everything``, or those in ``accounts``."""

    everything: bool
    accounts: set[str] = field(default_factory=set)

    def ids(self) -> list[str] | None:
        """The account filter for reads (None: no filter)."""
        return None if self.everything else sorted(self.accounts)

    @property
    def empty(self) -> bool:
        return not self.everything and not self.accounts


def changed_accounts(
    warehouse: Warehouse, plan: Plan, shard: Shard, windows: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]],
    types: dict[str, tuple[str, ...]] | None = None, min_scores: dict[str, float] | None = None,
    kinds: tuple[str, ...] | None = None,
) -> Changed:
    """The accounts of ``shard`` whose result can differ from the reference run's.

    ``windows`` maps a kind to event-time intervals ``(lo, hi]`` whose rows make their account
    change (signals entering or leaving the window); ``types`` limits a kind's rows to those types
    and ``min_scores`` to those scoring at least that (intent); ``kinds``: the journal kinds that change
    the result (default: the stage's :data:`STAGE_KINDS`).
    """
    if plan.full:
        return Changed(everything=True)
    # its own results are no change
    journal = warehouse.read_journal(plan.reference_seq, plan.journal_seq, shard,
                                     kinds=kinds or STAGE_KINDS[plan.stage],
                                     not_source=run_source(plan.reference_run_id))
    whole = journal["kind"].isin(WHOLE_CRM_KINDS.get(plan.stage, ())) | journal["account_id"].isna()
    if whole.any():
        return Changed(everything=True)
    accounts = set(journal["account_id"])
    for kind, intervals in windows.items():
        for lo, hi in intervals:
            if hi > lo:
                accounts |= accounts_with_events(warehouse, kind, lo, hi, shard, (types or {}).get(kind),
                                                 (min_scores or {}).get(kind))
    return Changed(everything=False, accounts=accounts)


def accounts_with_events(
    warehouse: Warehouse, kind: str, lo: pd.Timestamp, hi: pd.Timestamp, shard: Shard,
    types: tuple[str, ...] | None = None, min_score: float | None = None,
) -> set[str]:
    """Accounts of ``shard`` with a ``kind`` row whose event time is in ``(lo, hi]`` (deleted rows too), of
    ``types`` and scoring at least ``min_score`` if given."""
    table = schema.CRM_TABLES[kind]
    account = table.c.source_id if kind == "accounts" else table.c.account_id
    names = EVENT_TIME[kind]
    inside = [sa.and_(table.c[name] > lo.to_pydatetime(), table.c[name] <= hi.to_pydatetime())
              for name in ((names,) if isinstance(names, str) else names)]
    where = [sa.or_(*inside), account.is_not(None)]
    if not shard.whole:
        # SQLite plans without statistics and would walk the shard's whole range of the (shard, time)
        # index; for a short interval the event-time index reads only the interval ("+ 0": not indexable).
        # Accounts have no created_at index: a scan of the table costs less than a lookup per row of a
        # shard's range unless the shard is a small part of the accounts
        sqlite = warehouse.dialect == "sqlite"
        narrow = sqlite and hi - lo <= NARROW_INTERVAL and kind in INDEXED_EVENT_TIME
        scan = sqlite and kind == "accounts" and shard.high - shard.low > SHARD_SPACE // 16
        shard_number = table.c.shard + 0 if narrow or scan else table.c.shard
        where.append(shard_number.between(shard.low, shard.high - 1))
    if types is not None:
        where.append(table.c.type.in_(list(types)))
    if min_score is not None:
        where.append(table.c.score >= min_score)
    with warehouse.engine.connect() as connection:
        return set(connection.execute(sa.select(account).where(*where).distinct()).scalars())
