"""The warehouse adapter: connect, migrate on first use, upsert frames set-based, read frames.

Writes are dialect ``INSERT .. ON CONFLICT`` statements in batches (SQLite and
PostgreSQL), never row-by-row ORM loops, so re-running a load changes nothing. CRM rows
go in bulk as tuples: ``executemany`` of one upsert on SQLite, ``COPY`` into a temporary
staging table and one set-based merge on PostgreSQL; a row whose ``row_hash`` is the
stored one is not written again. The reads (:mod:`abm_sla.warehouse.reads`) and the change journal and
run log (:mod:`abm_sla.warehouse.journal`) are the other halves of :class:`Warehouse`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from abm_sla.crm.base import FileFingerprint, Page, Quarantined
from abm_sla.errors import WarehouseError
from abm_sla.infra.faults import checkpoint
from abm_sla.infra.shards import shard_keys
from abm_sla.warehouse import schema
from abm_sla.warehouse.journal import WarehouseJournal
from abm_sla.warehouse.reads import ID_COLUMN, WarehouseReads

MIGRATIONS_INI = Path(__file__).with_name("alembic.ini")
MAX_BIND_PARAMS = 30_000
UPSERT_BATCH_ROWS = 5_000
#: Tables whose rows carry ``updated_at``: a stored row is replaced only by a newer one.
VERSIONED_KINDS = {"accounts", "contacts"}
#: A page of a bulk load with at most this many rows looks its stored hashes up by key (a small
#: incremental file costs its own rows); a larger one reads the hashes of the source's whole table once.
MAX_ROWS_SEEK = 20_000
#: Dialects whose first bulk load of a file into an empty table builds the secondary indexes after the
#: rows instead of maintaining them row by row (see :meth:`Warehouse.store_page`).
DEFERRED_INDEX_DIALECTS = frozenset({"sqlite"})
#: ... when the page that starts the load has more rows than this.
DEFER_INDEXES_MIN_ROWS = 20_000
#: PostgreSQL: a table is analyzed after a load or a stage run once it has this many pages (8 kB) and grew by a
#: tenth since its last ``ANALYZE`` (or never had one); until then the planner works from no or stale
#: statistics (autovacuum comes by later, or never when it is off). PostgreSQL's "Populating a Database: Run
#: ANALYZE Afterwards" (https://www.postgresql.org/docs/current/populate.html#POPULATE-ANALYZE).
ANALYZE_MIN_PAGES = 128


#: Query parameters of a database URL that hold a secret (libpq's ``password``, ``sslpassword``, ...).
SECRET_QUERY_KEYS = re.compile(r"pass|secret|token|key", re.IGNORECASE)


#: SQLSTATEs of a write refused because the database or the role may not write: a read-only transaction
#: (a standby, ``default_transaction_read_only``) and a missing privilege (a role with only ``SELECT``).
READ_ONLY_SQLSTATES = frozenset({"25006", "42501"})
#: SQLite's words for a file (or a connection, ``?mode=ro``) it may not write.
SQLITE_READ_ONLY = ("readonly database", "read-only database")


def read_only_error(error: BaseException, url: str | None = None) -> WarehouseError | None:
    """The one line to show for a database error that means the warehouse may not be written; None for
    any other error."""
    original = getattr(error, "orig", None) or error
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    first = str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    if state not in READ_ONLY_SQLSTATES and not any(words in first for words in SQLITE_READ_ONLY):
        return None
    where = f" ({_redacted(url)})" if url else ""
    return WarehouseError(f"the warehouse is read-only: {first}{where}; give this user write access (for SQLite, "
                          "to the file and its folder), or use a command that only reads (export, report, runs)")


def _redacted(url: str) -> str:
    """The URL without its password (in the user part or as a query parameter such as ``?password=``),
    for messages."""
    try:
        parsed = sa.engine.make_url(url)
        secrets = {key: "***" for key in parsed.query if SECRET_QUERY_KEYS.search(key)}
        return parsed.update_query_dict(secrets).render_as_string(hide_password=True).replace("%2A%2A%2A", "***")
    except (sa.exc.ArgumentError, ValueError):
        text = re.sub(r"(://[^:/@?]*):[^@/?]*@", r"\1:***@", url)
        return re.sub(r"([?&][^=&]*(?:pass|secret|token|key)[^=&]*=)[^&]*", r"\1***", text, flags=re.IGNORECASE)


def check_database_url(url: str) -> None:
    """Fail in one line on a URL whose port is not a number (SQLAlchemy says ``invalid literal for int()``)."""
    match = re.match(r"^[\w+.-]+://(?:[^@/?]*@)?(?:\[[^\]]*\]|[^:/?]*)(?::([^/?]*))?", url)
    port = match.group(1) if match else None
    if port is not None and not port.isdigit():
        raise WarehouseError(f"invalid database URL {_redacted(url)}: the port {port!r} is not a number")


def _column_values(values: pd.Series) -> list[Any]:
    """One column as driver-ready Python objects: datetimes, ints, floats, bools, str; None for missing."""
    missing = values.isna().to_numpy()
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        naive = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[us]").tolist()
        out = [None if moment is None else moment.replace(tzinfo=dt.UTC) for moment in naive]
    elif values.dtype == object:
        out = [value.item() if isinstance(value, np.generic) else value for value in values]
    else:
        out = values.to_numpy(dtype=object).tolist()
    return [None if gone else value for value, gone in zip(out, missing, strict=True)]


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as driver-ready dicts, converted column by column."""
    columns = list(frame.columns)
    values = [_column_values(frame[column]) for column in columns]
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)] if columns else []


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A stable 64-bit hash of each row's values (pandas' keyed SipHash), as signed integers."""
    return pd.util.hash_pandas_object(frame, index=False).to_numpy().view(np.int64)


def _json_text(values: pd.Series) -> pd.Series:
    """Raw rows as JSON text: dicts serialized (sorted keys), text kept, missing stays None."""
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):  # text already (C-speed check)
        return values.astype(object).where(values.notna(), None)
    return values.map(
        lambda value: json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict) else value
    ).astype(object)


def _timestamp_text(values: pd.Series, dialect: str) -> list[Any]:
    """UTC timestamps as driver text, vectorized: SQLAlchemy's SQLite storage format
    (``YYYY-MM-DD HH:MM:SS.ffffff``, which compares as text in time order), ISO 8601 with
    ``+00:00`` for PostgreSQL's COPY."""
    instants = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[us]")
    text = np.datetime_as_string(instants, unit="us")  # fixed width: the "T" is at the same place in each
    if len(text) and text.dtype.itemsize // 4 > 10:
        text = np.char.add(text, "+00:00") if dialect != "sqlite" else text
        if dialect == "sqlite":
            characters = text.view(np.uint32).reshape(len(text), -1)  # UCS-4 code points, one row a value
            characters[:, 10] = np.where(characters[:, 10] == ord("T"), ord(" "), characters[:, 10])
    out = text.astype(object)
    out[np.isnat(instants)] = None
    return out.tolist()


def _driver_column(values: pd.Series, dialect: str) -> list[Any]:
    """One column as values the driver takes without SQLAlchemy's type processing (None for missing)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return _timestamp_text(values, dialect)
    if values.dtype == object and not any(isinstance(value, np.generic) for value in values.head(1000)):
        array = values.to_numpy(dtype=object, copy=True)
        array[pd.isna(array)] = None
        return array.tolist()
    return _column_values(values)


class Stored(NamedTuple):
    """What one stored page did: rows handed over, rows actually inserted or changed."""

    loaded: int
    written: int


def payload_hash(payload: dict) -> str:
    """A stable fingerprint of a quarantined row, so reloading it adds nothing."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()



class Warehouse(WarehouseJournal, WarehouseReads):
    """One database: SQLite by default, PostgreSQL in production."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        check_database_url(url)
        try:
            self.engine: Engine = sa.create_engine(url, future=True)
        except (sa.exc.ArgumentError, ImportError, ValueError) as error:
            raise WarehouseError(f"invalid database URL {_redacted(url)}: {error}") from None
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._stored_hashes: tuple[str, np.ndarray] | None = None
        #: CRM tables whose secondary indexes are dropped for the bulk load of one file (table -> its skip key)
        self._deferred_indexes: dict[str, str] = {}
        if migrate:
            self.migrate()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        """Apply every Alembic migration not yet applied (first use creates the schema).

        One process at a time: PostgreSQL under an advisory lock, SQLite in a ``BEGIN IMMEDIATE``
        transaction (its write lock), so runs starting together on a new warehouse wait for the
        first one's migration and then find nothing left to do.
        """
        config = Config(str(MIGRATIONS_INI))
        engine = _sqlite_migration_engine(self.url) if self.dialect == "sqlite" else self.engine
        try:
            with engine.begin() as connection:
                if self.dialect == "postgresql":
                    connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('abm-sla:migrate'))"))
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                _create_missing_indexes(connection)  # a bulk load stopped before it rebuilt them
                checkpoint("migrate")
        except sa.exc.DBAPIError as error:
            read_only = read_only_error(error, self.url)
            if read_only is not None:
                raise read_only from None
            if not isinstance(error, sa.exc.OperationalError):
                raise
            reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
            raise WarehouseError(f"cannot reach the database {_redacted(self.url)}: {reason}") from None
        finally:
            if engine is not self.engine:
                engine.dispose()

    # -- writes -------------------------------------------------------------------------------

    def upsert(
        self,
        connection: Connection,
        table: sa.Table,
        rows: Sequence[dict[str, Any]],
        *,
        newer_only_on: str | None = None,
        update: bool = True,
    ) -> None:
        """Insert rows or update them on their primary key: one compiled statement, executed in batches.

        ``newer_only_on`` names a timestamp column: a stored row is replaced only by a
        strictly later one. ``update=False`` keeps stored rows untouched.
        """
        if not rows:
            return
        keys = [column.name for column in table.primary_key.columns]
        changing = [column for column in rows[0] if column not in keys]
        statement = self._insert(table)
        if not update or not changing:
            statement = statement.on_conflict_do_nothing(index_elements=keys)
        else:
            where = None
            if newer_only_on:
                stored, incoming = table.c[newer_only_on], statement.excluded[newer_only_on]
                where = sa.or_(stored.is_(None), incoming > stored)
            statement = statement.on_conflict_do_update(
                index_elements=keys,
                set_={column: statement.excluded[column] for column in changing},
                where=where,
            )
        for start in range(0, len(rows), UPSERT_BATCH_ROWS):
            connection.execute(statement, list(rows[start : start + UPSERT_BATCH_ROWS]))

    def update_rows(self, connection: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
        """Set columns of existing rows, matched on the primary key (one executemany)."""
        if not rows:
            return
        keys = [column.name for column in table.primary_key.columns]
        changing = [column for column in rows[0] if column not in keys]
        statement = (
            table.update()
            .where(*(table.c[key] == sa.bindparam(f"key_{key}") for key in keys))
            .values({column: sa.bindparam(f"new_{column}") for column in changing})
        )
        connection.execute(
            statement,
            [{**{f"key_{k}": row[k] for k in keys}, **{f"new_{c}": row[c] for c in changing}} for row in rows],
        )

    def store_frames(
        self, connection: Connection, source: str, kind: str, rows: pd.DataFrame, *, skip_key: str | None = None
    ) -> int:
        """Upsert one kind's normalized rows (plus an optional ``raw`` column); returns the rows written.

        A stored row is rewritten only when its values differ (``row_hash``) or it was soft-deleted,
        and, for accounts and contacts, only by a strictly later ``updated_at``. Rows go as tuples:
        a staging table (``executemany`` on SQLite, ``COPY`` on PostgreSQL) and one merge from it. With
        ``skip_key`` (one bulk load of one file), rows stored exactly so are dropped before they reach the database:
        the stored hashes of ``source``'s live rows of the kind are read once per key, as a sorted array.
        """
        if rows.empty:
            return 0
        return len(self.write_frames(connection, source, kind, rows, skip_key=skip_key))

    def write_frames(
        self, connection: Connection, source: str, kind: str, rows: pd.DataFrame, *, skip_key: str | None = None
    ) -> pd.Series:
        """:meth:`store_frames`, returning the account id of every row inserted or changed (the journal's input)."""
        if rows.empty:
            return pd.Series(dtype=object)
        table = schema.CRM_TABLES[kind]
        frame = _crm_frame(table, kind, source, rows)
        if skip_key is not None:
            frame = frame[~self._stored_identically(connection, table, source, skip_key, frame)]
            if frame.empty:
                return pd.Series(dtype=object)
        columns = list(frame.columns)
        values = [_driver_column(frame[column], self.dialect) for column in columns]
        tuples = list(zip(*values, strict=True))
        versioned = kind in VERSIONED_KINDS
        account = "source_id" if kind in ("accounts", "users") else "account_id"
        if self.dialect == "postgresql":
            written = _copy_merge(connection, table, columns, tuples, versioned=versioned, returning=account)
        else:
            written = self._staged_merge(connection, table, columns, tuples, versioned=versioned, returning=account)
        return pd.Series(written, dtype=object)

    def _stored_identically(
        self, connection: Connection, table: sa.Table, source: str, key: str, frame: pd.DataFrame
    ) -> np.ndarray:
        """Which rows of ``frame`` are stored exactly so (live, same ``row_hash``): a small page seeks its own
        keys; a larger one (or one whose load has read them already) uses every stored hash of the table."""
        hashes = frame["row_hash"].to_numpy()
        if len(frame) > MAX_ROWS_SEEK or (self._stored_hashes is not None and self._stored_hashes[0] == key):
            return _sorted_contains(self._hashes_stored(connection, table, source, key), hashes)
        stored = self.select_in(
            [table.c.source_id, table.c.row_hash],
            [table.c.source == source, table.c.deleted_at.is_(None), table.c.row_hash.is_not(None)],
            table.c.source_id, frame["source_id"].unique().tolist(), connection,
        )
        pairs = pd.MultiIndex.from_arrays([stored["source_id"].astype(object), stored["row_hash"].astype(np.int64)])
        return pd.MultiIndex.from_arrays([frame["source_id"].astype(object), hashes]).isin(pairs)

    def stored_keys(self, kind: str, source: str, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are live rows of ``source`` in ``kind``'s table (primary-key seeks)."""
        table = schema.CRM_TABLES[kind]
        found = self.select_in([table.c.source_id], [table.c.source == source, table.c.deleted_at.is_(None)],
                               table.c.source_id, list(ids))
        return set(found["source_id"])

    def _hashes_stored(self, connection: Connection, table: sa.Table, source: str, key: str) -> np.ndarray:
        """The sorted ``row_hash`` of ``source``'s live rows in ``table``, read once per ``key``."""
        if self._stored_hashes is None or self._stored_hashes[0] != key:
            query = sa.select(table.c.row_hash).where(
                table.c.source == source, table.c.deleted_at.is_(None), table.c.row_hash.is_not(None)
            ).execution_options(yield_per=500_000)
            result = connection.execute(query)
            parts = [np.fromiter((row[0] for row in batch), dtype=np.int64, count=len(batch))
                     for batch in result.partitions()]
            hashes = np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
            self._stored_hashes = (key, hashes)
        return self._stored_hashes[1]

    def _staged_merge(
        self, connection: Connection, table: sa.Table, columns: list[str], tuples: list[tuple], *, versioned: bool,
        returning: str,
    ) -> list[Any]:
        """SQLite: the tuples into a temporary staging table (one ``executemany``), then one upsert from it;
        returns ``returning`` of the rows inserted or changed."""
        quote = self.engine.dialect.identifier_preparer.quote
        target, stage = quote(table.name), quote(f"stage_{table.name}")
        listed = ", ".join(map(quote, columns))
        keys = ", ".join(quote(column.name) for column in table.primary_key.columns)  # B-tree inserts in key order
        connection.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {stage} AS SELECT {listed} FROM {target} WHERE 0")
        connection.exec_driver_sql(f"DELETE FROM {stage}")
        connection.exec_driver_sql(f"INSERT INTO {stage} ({listed}) VALUES ({', '.join('?' for _ in columns)})",
                                   tuples)
        cursor = connection.connection.driver_connection.cursor()  # plain tuples back, no Row per written row
        try:
            cursor.execute(
                f"INSERT INTO {target} ({listed}) SELECT {listed} FROM {stage} WHERE true ORDER BY {keys} "
                + _on_conflict(table, columns, quote, versioned=versioned, distinct="IS NOT")
                + f" RETURNING {quote(returning)}"
            )
            written = [row[0] for row in cursor.fetchall()]
        finally:
            cursor.close()
        connection.exec_driver_sql(f"DELETE FROM {stage}")
        return written

    def mark_deleted(
        self, connection: Connection, source: str, kind: str, source_ids: Iterable[str], at: dt.datetime
    ) -> None:
        """Soft-delete rows a CRM reports deleted; readers filter them out once."""
        ids = list(source_ids)
        if not ids:
            return
        table = schema.CRM_TABLES[kind]
        for start in range(0, len(ids), 1000):
            connection.execute(
                table.update()
                .where(table.c.source == source, table.c.source_id.in_(ids[start : start + 1000]))
                .values(deleted_at=at)
            )

    def _insert(self, table: sa.Table):
        """The dialect's INSERT, which knows ON CONFLICT."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def store_quarantine(
        self, connection: Connection, source: str, rows: Sequence[Quarantined], run_id: str | None,
        at: dt.datetime,
    ) -> None:
        """Keep rows that could not be used, once each (same row, same reason), with their reason."""
        if not rows:
            return
        values = [
            {
                "source": source, "object_name": row.object_name, "row": row.row, "reason": row.reason,
                "payload": row.payload, "payload_hash": payload_hash(row.payload),
                "first_run_id": run_id, "recorded_at": at,
            }
            for row in rows
        ]
        batch_size = MAX_BIND_PARAMS // len(values[0])
        for start in range(0, len(values), batch_size):
            statement = self._insert(schema.quarantine).values(values[start : start + batch_size])
            connection.execute(statement.on_conflict_do_nothing())

    def resolve_quarantine(
        self, connection: Connection, ids: Sequence[int], run_id: str | None, at: dt.datetime
    ) -> None:
        """Mark quarantined rows that a later load took in after all (they stay, as the audit trail)."""
        table = schema.quarantine
        for start in range(0, len(ids), 1000):
            connection.execute(table.update().where(table.c.id.in_(list(ids[start:start + 1000])))
                               .values(resolved_at=at, resolved_run_id=run_id))

    def waiting_references(self, source: str) -> pd.DataFrame:
        """Quarantined rows refused for an account or domain not known then, not resolved since:
        ``id, object_name, reason, payload`` (a later load retries them)."""
        table = schema.quarantine
        waiting = sa.or_(*(table.c.reason.startswith(prefix) for prefix in ("unknown account ", "unknown domain ")))
        columns = [table.c.id, table.c.object_name, table.c.reason, table.c.payload]
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(*columns).where(
                table.c.source == source, table.c.resolved_at.is_(None), waiting).order_by(table.c.id)).fetchall()
        return pd.DataFrame(rows, columns=["id", "object_name", "reason", "payload"])

    def store_page(self, page: Page, run_id: str | None, at: dt.datetime) -> Stored:
        """Rows, deletes, quarantine, cursor, file fingerprint and change journal of one page in one transaction.

        The first large page of a file's bulk load into an empty table (SQLite) drops the table's secondary
        indexes in its transaction; the file's last page (the one with its fingerprint) builds them again
        after its commit: one sort per index instead of a random B-tree insert per row and index. A load
        stopped in between leaves them to :meth:`restore_indexes` (the end of every sync, every migrate).
        """
        with self.engine.begin() as connection:
            self._defer_indexes(connection, page)
            written = self.write_frames(connection, page.source, page.kind, page.rows, skip_key=page.skip_key)
            self.mark_deleted(connection, page.source, page.kind, page.deleted_ids, at)
            self.store_quarantine(connection, page.source, page.quarantined, run_id, at)
            self.resolve_quarantine(connection, page.resolved_quarantine, run_id, at)
            if page.fingerprint is not None:
                self.record_fingerprint(connection, page.source, page.fingerprint, run_id, at)
            if page.cursor is not None:
                self.upsert(
                    connection,
                    schema.sync_cursors,
                    [{"source": page.source, "object_name": page.object_name, "cursor": page.cursor,
                      "updated_at": at}],
                )
            self.journal(connection, page.source, page.kind, self._page_accounts(connection, page, written), at)
        if page.fingerprint is not None or self._deferred_indexes.get(page.kind, page.skip_key) != page.skip_key:
            self.restore_indexes()
        return Stored(len(page.rows), len(written))

    def _defer_indexes(self, connection: Connection, page: Page) -> None:
        """Drop the secondary indexes of ``page``'s table for its file's bulk load when the table is empty."""
        if (self.dialect not in DEFERRED_INDEX_DIALECTS or page.skip_key is None
                or len(page.rows) <= DEFER_INDEXES_MIN_ROWS or page.kind in self._deferred_indexes):
            return
        table = schema.CRM_TABLES[page.kind]
        if connection.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is not None:
            return
        quote = self.engine.dialect.identifier_preparer.quote
        for index in table.indexes:
            connection.exec_driver_sql(f"DROP INDEX IF EXISTS {quote(index.name)}")
        self._deferred_indexes[page.kind] = page.skip_key

    def restore_indexes(self) -> None:
        """Build every index a bulk load dropped (and any other the schema has and the database lacks)."""
        if not self._deferred_indexes:
            return
        with self.engine.begin() as connection:  # SQLite's default 2 MB cache: a larger one made the sort slower
            _create_missing_indexes(connection, [schema.CRM_TABLES[kind] for kind in self._deferred_indexes])
        self._deferred_indexes = {}

    def analyze_changed_tables(self) -> list[str]:
        """PostgreSQL: ``ANALYZE`` this schema's tables of :data:`ANALYZE_MIN_PAGES` pages or more that grew by a
        tenth since their last analyze, or never had one; returns their names. Growth is read off the table's
        size against the pages its last analyze saw (``pg_class.relpages``; the activity statistics can lag
        seconds behind). A no-op on SQLite (its plans are chosen without statistics, and this code's queries
        are written for that)."""
        if self.dialect != "postgresql":
            return []
        query = sa.text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "CROSS JOIN LATERAL (SELECT pg_relation_size(c.oid) / current_setting('block_size')::int AS pages) s "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND s.pages >= :least "
            "AND (c.reltuples <= 0 OR s.pages >= 1.1 * c.relpages) ORDER BY c.relname")
        with self.engine.connect() as connection:
            names = [name for name in connection.execute(query, {"least": ANALYZE_MIN_PAGES}).scalars()
                     if name in schema.metadata.tables]
        quote = self.engine.dialect.identifier_preparer.quote
        with self.engine.begin() as connection:
            for name in names:
                connection.exec_driver_sql(f"ANALYZE {quote(name)}")
        return names

    def record_fingerprint(
        self, connection: Connection, source: str, fingerprint: FileFingerprint, run_id: str | None, at: dt.datetime
    ) -> None:
        """Keep a file's fingerprint with its load; an unchanged file only refreshes its path and mtime."""
        table = schema.load_fingerprints
        if fingerprint.unchanged_since is not None:
            connection.execute(
                table.update()
                .where(table.c.id == fingerprint.unchanged_since)
                .values(path=fingerprint.path, size=fingerprint.size, mtime_ns=fingerprint.mtime_ns)
            )
            return
        connection.execute(table.insert().values(
            source=source, file=fingerprint.file, path=fingerprint.path, size=fingerprint.size,
            mtime_ns=fingerprint.mtime_ns, sha256=fingerprint.sha256, rows=fingerprint.rows,
            quarantined=fingerprint.quarantined, reference_rows=fingerprint.reference_rows, run_id=run_id,
            loaded_at=at,
        ))

    def file_fingerprints(self, source: str) -> dict[str, dict[str, Any]]:
        """The latest fingerprint recorded for each file of ``source`` (with its ``id``)."""
        table = schema.load_fingerprints
        latest = (
            sa.select(sa.func.max(table.c.id)).where(table.c.source == source).group_by(table.c.file).scalar_subquery()
        )
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(table).where(table.c.id.in_(latest))).mappings().all()
        return {row["file"]: dict(row) for row in rows}


def _create_missing_indexes(connection: Connection, tables: Iterable[sa.Table] | None = None) -> None:
    """Create the schema's indexes of ``tables`` (default: the CRM tables) that the database lacks."""
    inspector = sa.inspect(connection)
    for table in schema.CRM_TABLES.values() if tables is None else tables:
        present = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in present:
                index.create(connection)


def _sorted_contains(stored: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which ``values`` are in the sorted array ``stored`` (binary search; ``np.isin`` would hash
    ``stored`` again on every call)."""
    if not len(stored):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(stored, values), len(stored) - 1)
    return stored[at] == values


def _crm_frame(table: sa.Table, kind: str, source: str, rows: pd.DataFrame) -> pd.DataFrame:
    """A page's rows as the table's columns: ``source``, ``source_id``, the values present, ``raw`` as
    JSON text, ``deleted_at`` cleared and ``row_hash``; one row per id (the newest, else the last)."""
    renamed = rows.rename(columns={ID_COLUMN[kind]: "source_id"})
    keep = [
        column.name for column in table.columns
        if column.name in renamed.columns and column.name not in ("source", "deleted_at", "row_hash")
    ]
    frame = renamed[keep].copy()
    if "raw" in frame:
        frame["raw"] = _json_text(frame["raw"])
    if kind in VERSIONED_KINDS and "updated_at" in frame:
        frame = frame.sort_values("updated_at", kind="stable", na_position="first")
    frame = frame.drop_duplicates("source_id", keep="last")
    frame["row_hash"] = row_hashes(frame)
    frame.insert(0, "source", source)
    frame["deleted_at"] = None
    if "shard" in table.c:  # derived from the account id, so outside the row hash
        keys = shard_keys(frame["source_id" if kind == "accounts" else "account_id"])
        frame["shard"] = pd.Series(keys, index=frame.index).astype(object).where(keys >= 0, None)
    return frame


def _on_conflict(table: sa.Table, columns: list[str], quote, *, versioned: bool, distinct: str) -> str:
    """``ON CONFLICT .. DO UPDATE``: only a row that differs (or was deleted), and, versioned, only a newer one."""
    name = quote(table.name)
    keys = [column.name for column in table.primary_key.columns]
    changing = [column for column in columns if column not in keys]
    where = f"({name}.row_hash {distinct} excluded.row_hash OR {name}.deleted_at IS NOT NULL)"
    if versioned and "updated_at" in columns:
        where += f" AND ({name}.updated_at IS NULL OR excluded.updated_at > {name}.updated_at)"
    updates = ", ".join(f"{quote(column)} = excluded.{quote(column)}" for column in changing)
    return f"ON CONFLICT ({', '.join(map(quote, keys))}) DO UPDATE SET {updates} WHERE {where}"


def _copy_merge(
    connection: Connection, table: sa.Table, columns: list[str], tuples: list[tuple], *, versioned: bool,
    returning: str,
) -> list[Any]:
    """PostgreSQL: ``COPY`` the tuples into a temporary staging table (psycopg 3 ``cursor.copy``),
    then one ``INSERT .. SELECT .. ON CONFLICT DO UPDATE``; returns ``returning`` of the rows inserted or changed.

    The staging table lives for the transaction only (``ON COMMIT DROP``); see psycopg's "Using
    COPY TO and COPY FROM" (https://www.psycopg.org/psycopg3/docs/basic/copy.html).
    """
    quote = connection.dialect.identifier_preparer.quote
    target, stage = quote(table.name), quote(f"stage_{table.name}")
    listed = ", ".join(map(quote, columns))
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {stage} (LIKE {target}) ON COMMIT DROP")
        with cursor.copy(f"COPY {stage} ({listed}) FROM STDIN") as copy:
            for row in tuples:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {target} ({listed}) SELECT {listed} FROM {stage} "
            + _on_conflict(table, columns, quote, versioned=versioned, distinct="IS DISTINCT FROM")
            + f" RETURNING {quote(returning)}"
        )
        written = [row[0] for row in cursor.fetchall()]
        cursor.execute(f"DROP TABLE {stage}")
    return written


def _sqlite_migration_engine(url: str) -> Engine:
    """SQLite with transactional DDL under the write lock: the driver's own transaction handling is
    off and every transaction is ``BEGIN IMMEDIATE`` (SQLAlchemy's recipe for pysqlite)."""
    engine = sa.create_engine(url, future=True)
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    sa.event.listen(engine, "connect", lambda dbapi_connection, _record: setattr(
        dbapi_connection, "isolation_level", None))
    sa.event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """A busy timeout and WAL, so a reader and a writer (or two runs) wait instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    _enable_wal(cursor)
    cursor.close()


def _enable_wal(cursor, attempts: int = 200) -> None:
    """Switch to WAL. On a new database runs starting together race for the switch, and SQLite answers
    ``database is locked`` at once instead of waiting for its busy timeout: retry briefly (~10 s at most)."""
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.05)
