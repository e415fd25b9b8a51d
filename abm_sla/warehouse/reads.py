"""The warehouse's reads: frames of a kind (by time window, shard or accounts), activity extents and pairs,
select helpers and the stage state; a one-pass backfill caches the CRM reads (:func:`crm_reads_cached`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from abm_sla.domain import frames
from abm_sla.infra.shards import Shard
from abm_sla.warehouse import schema
from abm_sla.warehouse.held import ENTERING_SELECTION, HeldPairs, LastSeen

ID_COLUMN = {kind: columns[0] for kind, columns in frames.COLUMNS.items()}
#: Accounts per IN list of a read.
MAX_ACCOUNTS_IN_QUERY = 5_000
#: Reads of more accounts than this read their shard and filter in memory instead of seeking each account.
MAX_ACCOUNTS_SEEK = 20_000
#: The dtype every timestamp column is read as.
_UTC = pd.DatetimeTZDtype("ns", "UTC")

#: Per warehouse URL, while :func:`crm_reads_cached` is on: the CRM reads without a time window (accounts,
#: opportunities, users, contacts...) by arguments, with the journal position they were read at.
_CRM_READS: dict[str, dict[tuple, tuple[int, pd.DataFrame]]] = {}


@contextmanager
def crm_reads_cached(url: str) -> Iterator[None]:
    """Within it, :meth:`Warehouse.read_kind` of ``url`` without ``since``/``until``/``accounts`` reads a kind once
    and hands out copies until the change journal records a write of that kind (a load committed since: read
    again). A one-pass backfill's steps read the same unchanged tables at every step."""
    outer = url in _CRM_READS
    _CRM_READS.setdefault(url, {})
    try:
        yield
    finally:
        if not outer:
            _CRM_READS.pop(url, None)


#: Within :func:`crm_reads_cached`: what windowed reads are held (:meth:`WarehouseReads.hold_events`).
_HELD_KEY = ("held-events",)
#: Within :func:`crm_reads_cached`: every account's last activity at a moment (:meth:`WarehouseReads.last_activities`).
_LAST_SEEN_KEY = ("last-seen",)
#: The kinds whose windowed reads can be held, by their event time.
HELD_EVENT_TIME = {"activities": "occurred_at", "intent_signals": "observed_at"}


@dataclass(frozen=True)
class _Held:
    """What :meth:`WarehouseReads.hold_events` holds: windowed reads ending by ``until``, of the activities of
    ``types`` (or fewer; with ``any_type`` also a read of every type) and of the intent signals; each
    selection read ``horizon`` past the end asked for (None: to ``until``)."""

    until: pd.Timestamp
    types: frozenset[str]
    any_type: bool
    horizon: pd.Timedelta | None

    def covers(self, kind: str, types: Sequence[str] | None, until: dt.datetime) -> bool:
        if kind not in HELD_EVENT_TIME or pd.Timestamp(until) > self.until:
            return False
        if kind != "activities":
            return types is None
        return self.any_type if types is None else set(types) <= self.types

    def end(self, until: dt.datetime) -> pd.Timestamp:
        """Where a held read asked for up to ``until`` ends."""
        return self.until if self.horizon is None else min(self.until, pd.Timestamp(until) + self.horizon)


def _slice(moments: pd.Series, since: dt.datetime | pd.Timestamp, until: dt.datetime | pd.Timestamp) -> slice:
    """The positions of ``moments`` (in time order) in ``(since, until]``."""
    low, high = np.searchsorted(pd.DatetimeIndex(moments).asi8, [pd.Timestamp(since).value, pd.Timestamp(until).value],
                                side="right")
    return slice(int(low), int(high))


def _read_key(kind: str, arguments: dict) -> tuple:
    def frozen(value: Any) -> Any:
        if isinstance(value, dict):
            return tuple(sorted((key, frozen(item)) for key, item in value.items()))
        if isinstance(value, list | tuple):
            return tuple(frozen(item) for item in value)
        return value

    return (kind, *((name, frozen(value)) for name, value in sorted(arguments.items())))


class WarehouseReads:
    """The read half of :class:`~abm_sla.warehouse.store.Warehouse` (its engine, URL and change journal)."""

    def read_kind(
        self,
        kind: str,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        source: str | None = None,
        types: Sequence[str] | None = None,
        shard: Shard | None = None,
        accounts: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        min_score: float | None = None,
        url_contains: dict[str, Sequence[str]] | None = None,
    ) -> pd.DataFrame:
        """One kind's live rows (deletes filtered here, once) as a normalized frame.

        ``since``/``until`` bound the kind's event time (activities, intent, status
        changes), so a run reads only the windows it scores; ``source`` keeps one
        source's rows (several sources are unified by :class:`abm_sla.warehouse.view.CrmView`);
        ``types`` keeps the activities of those (normalized) types; ``shard`` keeps one account shard
        and ``accounts`` those accounts (kinds that belong to an account). ``columns`` reads only those
        of the frame's columns (the others come back empty); ``min_score`` keeps the intent rows
        scoring at least that; ``url_contains`` (activity type -> texts) keeps the activities of those types
        only when their lower-cased url contains one of the texts.
        """
        arguments = {"source": source, "types": types, "shard": shard, "columns": columns, "min_score": min_score,
                     "url_contains": url_contains}
        cache = _CRM_READS.get(self.url)
        if cache is not None and since is not None and until is not None:
            held = self._held_events(cache, kind, arguments, since, until)
            if held is not None:
                return _of_shard_and_accounts(held, shard, accounts)
        if cache is None or since is not None or until is not None or accounts is not None:
            return self._read_kind(kind, since=since, until=until, accounts=accounts, **arguments)
        key, position = _read_key(kind, arguments), self.journal_position()
        read_at, frame = cache.get(key, (None, None))
        if read_at is None or (read_at != position and len(self.read_journal(read_at, position, kinds=[kind]))):
            frame = self._read_kind(kind, since=None, until=None, accounts=None, **arguments)
        cache[key] = (position, frame)
        return frame.copy()

    def hold_events(self, until: dt.datetime, types: Sequence[str], *, any_type: bool = False,
                    horizon: pd.Timedelta | None = None) -> None:
        """Within :func:`crm_reads_cached`: a read of the activities of ``types`` (or fewer; with ``any_type`` also
        of every type) or of the intent signals, in a window ending by ``until``, reads its selection from the
        window's start to ``until`` (or ``horizon`` past the window's end) once; later reads inside that range
        filter it in memory, while the journal records no write of the kind since. A one-pass backfill's SLA
        stage and tier-move ledger read windows that move by one step at every step."""
        cache = _CRM_READS.get(self.url)
        if cache is not None:
            cache[_HELD_KEY] = _Held(pd.Timestamp(until), frozenset(types), any_type, horizon)

    def _held_events(self, cache: dict, kind: str, arguments: dict, since: dt.datetime, until: dt.datetime
                     ) -> pd.DataFrame | None:
        """The rows of ``kind`` selected by ``arguments`` in ``(since, until]``, every shard, from the held read
        (made or renewed here); None when they are not held (:meth:`hold_events`)."""
        found = self._held_rows(cache, kind, arguments, since, until)
        return None if found is None else found[0].iloc[found[1]]

    def _held_rows(self, cache: dict, kind: str, arguments: dict, since: dt.datetime, until: dt.datetime
                   ) -> tuple[pd.DataFrame, slice] | None:
        """:meth:`_held_events` as the held frame (the same object until it is read again) and the positions of
        ``(since, until]`` in it."""
        held: _Held | None = cache.get(_HELD_KEY)
        if held is None or not held.covers(kind, arguments["types"], until):
            return None
        selection = {**arguments, "shard": None}
        key, position = ("held", *_read_key(kind, selection)), self.journal_position()
        read_at, start, end, frame = cache.get(key, (None, None, None, None))

        def read(after: pd.Timestamp, to: pd.Timestamp) -> pd.DataFrame:
            rows = self._read_kind(kind, since=after.to_pydatetime(), until=to.to_pydatetime(), accounts=None,
                                   **selection)
            return rows.sort_values(HELD_EVENT_TIME[kind], kind="stable", ignore_index=True)

        stale = read_at is None or (read_at != position and len(self.read_journal(read_at, position, kinds=[kind])))
        if stale or pd.Timestamp(since) < start:
            start, end = pd.Timestamp(since), held.end(until)
            frame = read(start, end)
        elif pd.Timestamp(until) > end:  # the window moved past the held rows: drop those before it, read the rest
            kept = frame.iloc[_slice(frame[HELD_EVENT_TIME[kind]], since, end)]
            start, later = pd.Timestamp(since), read(end, held.end(until))
            parts = [part for part in (kept, later) if len(part)]  # an empty read's columns may be typed otherwise
            frame = pd.concat(parts, ignore_index=True) if len(parts) == 2 else (parts or [later])[0].reset_index(
                drop=True)
            end = held.end(until)
        cache[key] = (position, start, end, frame)
        return frame, _slice(frame[HELD_EVENT_TIME[kind]], since, until)

    def _read_kind(
        self, kind: str, *, since: dt.datetime | None, until: dt.datetime | None, source: str | None,
        types: Sequence[str] | None, shard: Shard | None, accounts: Sequence[str] | None,
        columns: Sequence[str] | None, min_score: float | None, url_contains: dict[str, Sequence[str]] | None,
    ) -> pd.DataFrame:
        table = schema.CRM_TABLES[kind]
        id_column = ID_COLUMN[kind]
        wanted = frames.COLUMNS[kind] if columns is None else [c for c in frames.COLUMNS[kind] if c in columns]
        selected = [table.c.source_id.label(id_column)] if id_column in wanted else []
        selected += [table.c[column] for column in wanted if column != id_column and column in table.c]
        where = [table.c.deleted_at.is_(None)]
        if source is not None:
            where.append(table.c.source == source)
        if types is not None:
            where.append(table.c.type.in_(list(types)))
        if min_score is not None:
            where.append(table.c.score >= min_score)
        for kind_of_activity, texts in (url_contains or {}).items():
            where.append(sa.or_(table.c.type != kind_of_activity,
                                *(sa.func.lower(table.c.url).contains(text, autoescape=True) for text in texts)))
        event_time = {"activities": "occurred_at", "intent_signals": "observed_at"}.get(kind)
        if event_time and since is not None:
            where.append(table.c[event_time] > since)
        if event_time and until is not None:
            where.append(table.c[event_time] <= until)
        account = table.c.source_id if kind == "accounts" else table.c.get("account_id")
        sharded = shard is not None and not shard.whole and "shard" in table.c
        if accounts is not None and account is not None and len(accounts) <= MAX_ACCOUNTS_SEEK:
            # index seeks per account (the shard's range scan would read all of its rows)
            if kind == "accounts" and source is None:  # the primary key is (source, source_id)
                where.append(table.c.source.in_(self.sources()))
            frame = conform(kind, self.select_in(selected, where, account, sorted(accounts)))
            if sharded:
                frame = frame[shard.contains(frame["account_id"])]
            return frame.reset_index(drop=True)
        if sharded:
            where.append(table.c.shard.between(shard.low, shard.high - 1))
        frame = conform(kind, self._frame(selected, where))
        if accounts is not None:
            frame = frame[frame["account_id"].isin(set(accounts))].reset_index(drop=True)
        return frame

    def activity_extent(self, until: dt.datetime) -> pd.DataFrame:
        """``account_id, first_at, last_at`` of each account's live activities at or before ``until``: one
        aggregate query (what the tier-move rules need of the activities before their window). SQLite scans
        the table: through the (account, time) index it looks every row up in the table (25 s instead of 5.7 s
        at 200,000 accounts)."""
        table = schema.CRM_TABLES["activities"]
        query = sa.select(table.c.account_id, sa.func.min(table.c.occurred_at), sa.func.max(table.c.occurred_at)).where(
            table.c.deleted_at.is_(None), table.c.occurred_at <= until, table.c.account_id.is_not(None),
        ).group_by(table.c.account_id)
        if self.dialect == "sqlite":  # the text in time order, aggregated and handed over as text; a table scan
            query = sa.text(
                f"SELECT account_id, min(occurred_at), max(occurred_at) FROM {table.name} NOT INDEXED "
                "WHERE deleted_at IS NULL AND occurred_at <= :until AND account_id IS NOT NULL GROUP BY account_id"
            ).bindparams(sa.bindparam("until", until, type_=schema.UtcDateTime))
        position = self.journal_position()
        with self.engine.connect() as connection:
            frame = pd.DataFrame(connection.execute(query).fetchall(), columns=["account_id", "first_at", "last_at"])
        frame = _utc_columns(frame, ("first_at", "last_at"))
        cache = _CRM_READS.get(self.url)
        if cache is not None:  # the last activities of later moments advance from here (:meth:`last_activities`)
            last = pd.Series(frame["last_at"].to_numpy(), index=frame["account_id"].to_numpy(dtype=object))
            cache[_LAST_SEEN_KEY] = LastSeen(pd.Timestamp(until), position, last[~last.index.duplicated()])
        return frame

    def newest_event(self, kind: str, column: str, until: dt.datetime) -> pd.Timestamp | None:
        """The newest ``column`` of the live rows of CRM table ``kind`` at or before ``until`` (None if none)."""
        return self._event_bound(sa.func.max, kind, column, until)

    def oldest_event(self, kind: str, column: str, until: dt.datetime) -> pd.Timestamp | None:
        """The oldest ``column`` of the live rows of CRM table ``kind`` at or before ``until`` (None if none)."""
        return self._event_bound(sa.func.min, kind, column, until)

    def _event_bound(self, aggregate: Any, kind: str, column: str, until: dt.datetime) -> pd.Timestamp | None:
        table = schema.CRM_TABLES[kind]
        query = sa.select(aggregate(table.c[column])).where(table.c.deleted_at.is_(None), table.c[column] <= until)
        with self.engine.connect() as connection:
            value = connection.execute(query).scalar()
        return None if value is None else pd.Timestamp(value)

    def last_activities(self, until: dt.datetime, accounts: Sequence[str]) -> pd.DataFrame:
        """``account_id, last_at`` of ``accounts`` (those with a live activity at or before ``until``): per account
        one backward walk of the (account, time) index to its first live row, not a read of all its rows. Within
        :func:`crm_reads_cached`, after :meth:`activity_extent` of a moment no later than ``until``, the live accounts'
        answers come from memory: that extent advanced by the held activities since (:meth:`_last_seen`)."""
        seen = self._last_seen(until)
        if seen is not None:
            live = set(self.read_kind("accounts", columns=("account_id",))["account_id"].astype(str))
            asked = {str(account) for account in accounts}
            known = seen.of(sorted(asked & live))
            rest = sorted(asked - live)  # an account row deleted, or none: as stored
            return pd.concat([known, self._last_activities(until, rest)], ignore_index=True) if rest else known
        return self._last_activities(until, accounts)

    def _last_seen(self, until: dt.datetime) -> LastSeen | None:
        """Within :func:`crm_reads_cached`: every account's last live activity at ``until``, from the last
        :meth:`activity_extent` (of a moment no later) advanced by the held activities of any type since, while the
        journal records no activity written since that extent; None otherwise."""
        cache = _CRM_READS.get(self.url)
        seen: LastSeen | None = None if cache is None else cache.get(_LAST_SEEN_KEY)
        if seen is None or pd.Timestamp(until) < seen.until:
            return None
        position = self.journal_position()
        if position != seen.position and len(self.read_journal(seen.position, position, kinds=["activities"])):
            cache.pop(_LAST_SEEN_KEY, None)
            return None
        if pd.Timestamp(until) > seen.until:
            held = self._held_rows(cache, "activities", dict(ENTERING_SELECTION), seen.until, until)
            if held is None:
                return None
            seen = seen.advanced(held[0].iloc[held[1]], pd.Timestamp(until), position)
            cache[_LAST_SEEN_KEY] = seen
        return seen

    def _last_activities(self, until: dt.datetime, accounts: Sequence[str]) -> pd.DataFrame:
        table, owners = schema.CRM_TABLES["activities"], schema.CRM_TABLES["accounts"]
        last = (sa.select(table.c.occurred_at)
                .where(table.c.account_id == owners.c.source_id, table.c.occurred_at <= until,
                       table.c.deleted_at.is_(None))
                .order_by(table.c.occurred_at.desc()).limit(1).scalar_subquery())
        values, parts, sources = sorted(set(accounts)), [], self.sources()
        with self.engine.connect() as connection:
            for start in range(0, len(values), MAX_ACCOUNTS_IN_QUERY):
                batch = values[start:start + MAX_ACCOUNTS_IN_QUERY]
                query = sa.select(owners.c.source_id, last).where(owners.c.source.in_(sources),
                                                                  owners.c.source_id.in_(batch))
                parts.append(pd.DataFrame(connection.execute(query).fetchall(), columns=["account_id", "last_at"]))
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["account_id", "last_at"])
        frame = frame.dropna(subset=["last_at"]).drop_duplicates("account_id").reset_index(drop=True)
        return _utc_columns(frame, ("last_at",))

    def accounts_going_quiet(self, lo: dt.datetime, hi: dt.datetime, until: dt.datetime) -> set[str]:
        """Accounts with an activity in ``(lo, hi]`` (deleted ones too) and no live one in ``(hi, until]``: those
        whose last activity may lie in ``(lo, hi]`` (a superset); one index seek per account of the interval."""
        table = schema.CRM_TABLES["activities"]
        later = table.alias("later")
        quiet = ~sa.exists().where(later.c.account_id == table.c.account_id, later.c.occurred_at > hi,
                                   later.c.occurred_at <= until, later.c.deleted_at.is_(None))
        query = sa.select(table.c.account_id).distinct().where(
            table.c.occurred_at > lo, table.c.occurred_at <= hi, table.c.account_id.is_not(None), quiet)
        with self.engine.connect() as connection:
            return set(connection.execute(query).scalars())

    def first_activity_at(self, until: dt.datetime) -> pd.Timestamp:
        """The earliest live activity of an account at or before ``until`` (NaT: none), through the event-time
        index: the first live row in time order."""
        table = schema.CRM_TABLES["activities"]
        query = (sa.select(table.c.occurred_at)
                 .where(table.c.deleted_at.is_(None), table.c.occurred_at <= until, table.c.account_id.is_not(None))
                 .order_by(table.c.occurred_at).limit(1))
        with self.engine.connect() as connection:
            first = connection.execute(query).scalar_one_or_none()
        return pd.NaT if first is None else pd.Timestamp(first).tz_convert("UTC")

    def contact_ids(self, accounts: Sequence[str]) -> pd.Series:
        """The ids of every contact row of ``accounts``, deleted ones too (what a contacts change may touch)."""
        table = schema.CRM_TABLES["contacts"]
        ids = self.select_in([table.c.source_id], [], table.c.account_id, sorted(set(accounts)))
        return ids["source_id"].astype(str).drop_duplicates() if len(ids) else pd.Series(dtype=object)

    def contacts_by_id(self, ids: Sequence[str]) -> pd.DataFrame:
        """The live contacts with those ids (``contact_id, account_id, title``; the other columns empty); within
        :func:`crm_reads_cached` from one read of every contact."""
        if self.url in _CRM_READS:
            every = self.read_kind("contacts", columns=("contact_id", "account_id", "title"))
            return every[every["contact_id"].isin(set(ids))].reset_index(drop=True)
        table = schema.CRM_TABLES["contacts"]
        selected = [table.c.source_id.label("contact_id"), table.c.account_id, table.c.title]
        where = [table.c.deleted_at.is_(None), table.c.source.in_(self.sources("contacts"))]  # the key's seeks
        return conform("contacts", self.select_in(selected, where, table.c.source_id, sorted(set(ids))))

    def activity_contacts(self, since: dt.datetime, until: dt.datetime, types: Sequence[str],
                          accounts: Sequence[str] | None = None, contacts: Sequence[str] | None = None) -> pd.DataFrame:
        """The distinct ``account_id, contact_id`` of live activities of ``types`` in ``(since, until]``; of those
        ``accounts`` (index seeks) or by those ``contacts`` if given."""
        table = schema.CRM_TABLES["activities"]
        columns = [table.c.account_id, table.c.contact_id]
        where = [table.c.deleted_at.is_(None), table.c.occurred_at > since, table.c.occurred_at <= until,
                 table.c.type.in_(list(types)), table.c.account_id.is_not(None), table.c.contact_id.is_not(None)]
        cache = _CRM_READS.get(self.url)
        selection = {"source": None, "types": list(types), "shard": None, "min_score": None, "url_contains": None,
                     "columns": ("account_id", "contact_id", "type", "occurred_at")}
        held = self._held_rows(cache, "activities", selection, since, until) if cache is not None and \
            contacts is None else None
        if held is not None:
            return HeldPairs.of(cache, held[0]).between(held[1], accounts)
        if accounts is not None or contacts is not None:
            column, values = (table.c.account_id, accounts) if accounts is not None else (table.c.contact_id, contacts)
            frame = self.select_in(columns, where, column, sorted(set(values)))
            return frame.drop_duplicates(ignore_index=True)[["account_id", "contact_id"]]
        with self.engine.connect() as connection:
            return pd.DataFrame(connection.execute(sa.select(*columns).distinct().where(*where)).fetchall(),
                                columns=["account_id", "contact_id"])

    def sources(self, kind: str = "accounts") -> list[str]:
        """The sources that hold live rows of ``kind`` (accounts by default), by name: one primary-key seek per
        source found (a ``DISTINCT`` would read every row, and every stage asks)."""
        table = schema.CRM_TABLES[kind]
        found: list[str] = []
        with self.engine.connect() as connection:
            while True:
                after = [table.c.source > found[-1]] if found else []
                query = (sa.select(table.c.source).where(table.c.deleted_at.is_(None), *after)
                         .order_by(table.c.source).limit(1))
                source = connection.execute(query).scalar_one_or_none()
                if source is None:
                    return found
                found.append(source)

    def read_table(self, table: sa.Table, where: Any = None, connection: Connection | None = None) -> pd.DataFrame:
        """A derived table as a frame, UTC timestamps parsed (inside ``connection``'s transaction if given)."""
        return self._frame(list(table.columns), [] if where is None else [where], connection)

    def select_frame(self, columns: list, where: list, connection: Connection | None = None) -> pd.DataFrame:
        """Selected columns (of any table or subquery) as a DataFrame, UTC timestamps parsed."""
        return self._frame(columns, where, connection)

    def select_in(
        self, columns: list, where: list, column: sa.ColumnElement, values: Sequence[Any],
        connection: Connection | None = None, batch: int = MAX_ACCOUNTS_IN_QUERY,
    ) -> pd.DataFrame:
        """:meth:`select_frame` of the rows whose ``column`` is one of ``values`` (IN lists of ``batch``;
        each is a run of index seeks, so the read costs the rows asked for, not the table)."""
        values = list(values)
        parts = [self._frame(columns, [*where, column.in_(values[i:i + batch])], connection)
                 for i in range(0, len(values), batch)]
        if len(parts) == 1:
            return parts[0]
        return pd.concat(parts, ignore_index=True) if parts else self._frame(columns, [sa.false()], connection)

    def _frame(self, columns: list, where: list, connection: Connection | None = None) -> pd.DataFrame:
        """Selected columns as a DataFrame; timestamps parsed vectorized (SQLite hands them over as text)."""
        stamps = [column.name for column in columns if isinstance(column.type, schema.UtcDateTime)]
        if self.dialect == "sqlite":
            columns = [
                sa.type_coerce(column, sa.String).label(column.name) if column.name in stamps else column
                for column in columns
            ]
        query = sa.select(*columns).where(*where)
        if connection is None:
            with self.engine.connect() as own:
                frame = self._result_frame(own.execute(query), columns, stamps)
        else:
            frame = self._result_frame(connection.execute(query), columns, stamps)
        for name in stamps:
            if frame[name].dtype != _UTC:  # SQLite's rows are parsed as the frame is built
                frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601").astype(_UTC)
        return frame

    def _result_frame(self, result: sa.CursorResult, columns: list, stamps: Sequence[str] = ()) -> pd.DataFrame:
        """A result's rows as a frame. SQLite: the driver's tuples (no ``Row`` built per row), each column put
        through its type's result processor (JSON, booleans) only where the type has one, the ``stamps`` columns
        (ISO 8601 text) parsed as UTC timestamps before the frame is built (not set into it afterwards)."""
        keys = list(result.keys())
        if self.dialect != "sqlite":
            return pd.DataFrame(result.fetchall(), columns=keys)
        try:
            rows = result.cursor.fetchall()
        finally:
            result.close()
        if not rows:
            return pd.DataFrame(rows, columns=keys)
        values: dict[str, Any] = {}
        for key, column, raw in zip(keys, columns, zip(*rows, strict=True), strict=True):
            process = column.type.result_processor(self.engine.dialect, None)
            if key in stamps:
                values[key] = _parsed_stamps(raw)
            else:
                values[key] = raw if process is None else [process(value) for value in raw]
        return pd.DataFrame(values, columns=keys)

    def lock_stage(self, connection: Connection, name: str) -> None:
        """Serialize one stage across processes for the rest of the transaction.

        PostgreSQL takes a transaction-scoped advisory lock; SQLite takes its write
        lock by writing first. A second run racing the first waits, then reads what
        the first one wrote, so its work becomes a no-op instead of a duplicate.
        """
        if self.dialect == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
        else:
            self.set_state(connection, f"lock:{name}", "held")

    def set_state(self, connection: Connection, key: str, value: str | None) -> None:
        self.upsert(connection, schema.routing_state, [{"key": key, "value": value}])

    def get_state(self, key: str, connection: Connection | None = None) -> str | None:
        table = schema.routing_state
        query = sa.select(table.c.value).where(table.c.key == key)
        if connection is not None:
            return connection.execute(query).scalar_one_or_none()
        with self.engine.connect() as connection:
            return connection.execute(query).scalar_one_or_none()


def _of_shard_and_accounts(frame: pd.DataFrame, shard: Shard | None, accounts: Sequence[str] | None) -> pd.DataFrame:
    """The rows of ``frame`` in ``shard`` and of ``accounts`` (None: no filter), renumbered."""
    if shard is not None and not shard.whole:
        frame = frame[shard.contains(frame["account_id"])]
    if accounts is not None:
        frame = frame[frame["account_id"].isin(set(accounts))]
    return frame.reset_index(drop=True)


def _parsed_stamps(raw: Sequence[Any]) -> pd.api.extensions.ExtensionArray:
    """SQLite's timestamps (ISO 8601 text, None for none) as UTC timestamps."""
    return pd.to_datetime(pd.Series(raw, dtype=object), utc=True, format="ISO8601").astype(_UTC).array


def _utc_columns(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """``frame`` with ``names`` parsed as UTC timestamps (SQLite hands them over as ISO 8601 text)."""
    for name in names:
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601").astype("datetime64[ns, UTC]")
    return frame



def conform(kind: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Give a frame exactly its kind's columns, with UTC timestamps."""
    out = frame.reindex(columns=frames.COLUMNS[kind])
    for column in frames.TIMESTAMP_COLUMNS[kind]:
        if out[column].dtype != _UTC:  # a column the read parsed already is left as it is (parsing it again costs)
            out[column] = pd.to_datetime(out[column], utc=True).astype(_UTC)
    return out
