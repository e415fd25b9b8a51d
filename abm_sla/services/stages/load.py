"""Reading for the stages: the export files, the signals and status changes a stage reads, the as-of, the plan and
its shards, and the run bookkeeping they share (the wall clock, hashes, the rows of a shard)."""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

import pandas as pd
import sqlalchemy as sa

from abm_sla.crm.files.source import FilesSource
from abm_sla.crm.files.specs import FILE_SPECS
from abm_sla.crm.sync import sync_source
from abm_sla.domain import (
    frames,
    marketing,
)
from abm_sla.domain.model import IntentRule, ScoringModel
from abm_sla.domain.policy import SlaPolicy
from abm_sla.errors import AbmSlaError, SourceError
from abm_sla.infra.shards import SHARD_SPACE, Shard
from abm_sla.services import incremental
from abm_sla.warehouse import Warehouse, schema
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


def intent_min_scores(model: ScoringModel) -> list[float]:
    return [rule.min_score for _, rule in model.rules() if isinstance(rule, IntentRule)]


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


def _in_shard(table: sa.Table, shard: Shard) -> sa.ColumnElement[bool]:
    """The rows of ``shard`` in a derived table (every row for a whole run)."""
    return sa.true() if shard.whole else table.c.shard.between(shard.low, shard.high - 1)


def utc_now() -> dt.datetime:
    """The wall clock, for run bookkeeping only (results depend on ``as_of``, never on this)."""
    return dt.datetime.now(dt.UTC)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]
