"""The warehouse adapter: connect, migrate on first use, upsert frames set-based, read frames.

Writes are dialect ``INSERT .. ON CONFLICT`` statements in batches (SQLite and
PostgreSQL), never row-by-row ORM loops, so re-running a load changes nothing. CRM rows
go in bulk as tuples: ``executemany`` of one upsert on SQLite, ``COPY`` into a temporary
staging table and one set-based merge on PostgreSQL; a row whose ``row_hash`` is the
stored one is not written again. The reads (:mod:`abm_sla.warehouse.reads`), the change journal and
run log (:mod:`abm_sla.warehouse.journal`) and the quarantine and file fingerprints
(:mod:`abm_sla.warehouse.quarantine`) are the other parts of :class:`Warehouse`; :mod:`abm_sla.warehouse.connection`
checks and opens the database, :mod:`abm_sla.warehouse.conversion` turns frames into driver values and
:mod:`abm_sla.warehouse.merge` holds the set-based merges.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from abm_sla.crm.base import Page
from abm_sla.errors import WarehouseError
from abm_sla.infra.faults import checkpoint
from abm_sla.warehouse import fresh, schema
from abm_sla.warehouse.connection import (
    _redacted,
    _sqlite_migration_engine,
    _sqlite_pragmas,
    check_database_url,
    read_only_error,
)
from abm_sla.warehouse.conversion import (
    VERSIONED_KINDS,
    _crm_frame,
    _driver_column,
    bound_column,
    records,  # noqa: F401  (the services import it from here)
)
from abm_sla.warehouse.journal import WarehouseJournal
from abm_sla.warehouse.merge import _copy_into, _copy_merge, _on_conflict, _sorted_contains
from abm_sla.warehouse.quarantine import WarehouseQuarantine
from abm_sla.warehouse.reads import WarehouseReads

MIGRATIONS_INI = Path(__file__).with_name("alembic.ini")
#: The newest migration (a test checks it is Alembic's head): a warehouse at it is left alone, without importing
#: Alembic (half a second of every command's start-up).
HEAD_REVISION = "0018_review_attendance"
UPSERT_BATCH_ROWS = 5_000
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


class Stored(NamedTuple):
    """What one stored page did: rows handed over, rows actually inserted or changed."""

    loaded: int
    written: int


class Warehouse(WarehouseQuarantine, WarehouseJournal, WarehouseReads):
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
        #: CRM tables whose current file's bulk load began with the table empty (table -> that file's skip key)
        self._empty_at_start: dict[str, tuple[str, bool]] = {}
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
        engine = _sqlite_migration_engine(self.url) if self.dialect == "sqlite" else self.engine
        try:
            with engine.begin() as connection:
                if self.dialect == "postgresql":
                    connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('abm-sla:migrate'))"))
                _upgrade(connection, self.dialect)
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
        statement = self._upsert_statement(table, list(rows[0]), newer_only_on=newer_only_on, update=update)
        for start in range(0, len(rows), UPSERT_BATCH_ROWS):
            connection.execute(statement, list(rows[start : start + UPSERT_BATCH_ROWS]))

    def upsert_frame(self, connection: Connection, table: sa.Table, frame: pd.DataFrame, *,
                     update: bool = True) -> None:
        """:meth:`upsert` of a frame's rows, bound column by column as driver values
        (:func:`~abm_sla.warehouse.conversion.bound_column`) and executed by the driver: the same stored rows
        without SQLAlchemy's processing of every value (the bulk writes of the stages and backfills)."""
        if frame.empty:
            return
        columns = list(frame.columns)
        statement = self._upsert_statement(table, columns, update=update)
        self._execute_bound(connection, statement, {name: (frame[name], table.c[name]) for name in columns},
                            column_keys=columns)

    def update_frame(self, connection: Connection, table: sa.Table, frame: pd.DataFrame, match: Sequence[str]) -> int:
        """Set the other columns of ``frame`` on the stored rows whose ``match`` columns equal a row's, bound and
        executed as :meth:`upsert_frame` does; returns the rows updated."""
        if frame.empty:
            return 0
        changing = [name for name in frame.columns if name not in match]
        statement = table.update().where(*(table.c[name] == sa.bindparam(f"key_{name}") for name in match)).values(
            {name: sa.bindparam(f"new_{name}") for name in changing})
        bound = {f"key_{name}": (frame[name], table.c[name]) for name in match}
        return self._execute_bound(connection, statement, bound | {
            f"new_{name}": (frame[name], table.c[name]) for name in changing})

    def insert_driver_values(self, connection: Connection, table: sa.Table, values: dict[str, list[Any]]) -> None:
        """Insert rows given column-wise as the driver's values already (JSON as its text, timestamps as
        :func:`~abm_sla.warehouse.conversion.bound_column` gives them), executed by the driver."""
        if values and len(next(iter(values.values()))):
            self._execute_values(connection, table.insert(), values, column_keys=list(values))

    def _execute_bound(self, connection: Connection, statement: Any, columns: dict[str, tuple[pd.Series, sa.Column]],
                       column_keys: list[str] | None = None) -> int:
        """Run ``statement`` once per row of ``columns`` (parameter name: the values and the table column they are
        bound as, :func:`~abm_sla.warehouse.conversion.bound_column`) through the driver, in batches; returns the
        rows the driver counts."""
        values = {name: bound_column(series, column, self.dialect) for name, (series, column) in columns.items()}
        return self._execute_values(connection, statement, values, column_keys)

    def _execute_values(self, connection: Connection, statement: Any, values: dict[str, list[Any]],
                        column_keys: list[str] | None = None) -> int:
        """Run ``statement`` once per row of the driver ``values`` (by parameter name), in batches."""
        compiled = statement.compile(dialect=self.engine.dialect, column_keys=column_keys)
        if compiled.positiontup is not None:  # SQLite: "?" placeholders in the statement's order
            rows: list = list(zip(*(values[name] for name in compiled.positiontup), strict=True))
        else:  # PostgreSQL: named placeholders
            rows = [dict(zip(values, row, strict=True)) for row in zip(*values.values(), strict=True)]
        return sum(connection.exec_driver_sql(compiled.string, rows[start : start + UPSERT_BATCH_ROWS]).rowcount
                   for start in range(0, len(rows), UPSERT_BATCH_ROWS))

    def _upsert_statement(self, table: sa.Table, columns: list[str], *, newer_only_on: str | None = None,
                          update: bool = True):
        """``INSERT .. ON CONFLICT`` on the primary key of ``columns``: update the others (newer rows only with
        ``newer_only_on``), or do nothing (``update=False``)."""
        keys = [column.name for column in table.primary_key.columns]
        changing = [column for column in columns if column not in keys]
        statement = self._insert(table)
        if not update or not changing:
            return statement.on_conflict_do_nothing(index_elements=keys)
        where = None
        if newer_only_on:
            stored, incoming = table.c[newer_only_on], statement.excluded[newer_only_on]
            where = sa.or_(stored.is_(None), incoming > stored)
        return statement.on_conflict_do_update(
            index_elements=keys, set_={column: statement.excluded[column] for column in changing}, where=where)

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
        into_empty = self._loads_into_empty(connection, table, skip_key)
        if into_empty and self.dialect == "sqlite":  # the merge's order (its key): the B-tree grows at its end
            frame = frame.sort_values("source_id", kind="stable")
        columns = list(frame.columns)
        values = [_driver_column(frame[column], self.dialect) for column in columns]
        tuples = list(zip(*values, strict=True))
        versioned = kind in VERSIONED_KINDS
        account = "source_id" if kind in ("accounts", "users") else "account_id"
        if into_empty and self._inserted(connection, table, columns, tuples):
            written = frame[account].tolist()
        elif self.dialect == "postgresql":
            written = _copy_merge(connection, table, columns, tuples, versioned=versioned, returning=account)
        else:
            written = self._staged_merge(connection, table, columns, tuples, versioned=versioned, returning=account)
        return pd.Series(written, dtype=object)

    def _loads_into_empty(self, connection: Connection, table: sa.Table, skip_key: str | None) -> bool:
        """Whether this bulk load of one file (``skip_key``) began with ``table`` empty, asked at its first page.
        Then none of its rows can meet a stored one (the file's ids are unique: a repeated id is quarantined), and
        its pages go straight into the table (``executemany`` on SQLite, ``COPY`` on PostgreSQL): the rows the
        staging table and merge would store, without writing each row twice."""
        if skip_key is None:
            return False
        known = self._empty_at_start.get(table.name)
        if known is None or known[0] != skip_key:
            empty = connection.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is None
            known = self._empty_at_start[table.name] = (skip_key, empty)
        return known[1]

    def _inserted(self, connection: Connection, table: sa.Table, columns: list[str], tuples: list[tuple]) -> bool:
        """Insert the tuples as new rows (one ``executemany``; PostgreSQL: one ``COPY``), or, when one of them is
        stored already (another writer came in between), insert none and return False: the merge then decides."""
        quote = self.engine.dialect.identifier_preparer.quote
        listed = ", ".join(map(quote, columns))
        savepoint = connection.begin_nested()
        try:
            if self.dialect == "postgresql":
                _copy_into(connection, table, columns, tuples)
            else:
                connection.exec_driver_sql(
                    f"INSERT INTO {quote(table.name)} ({listed}) VALUES ({', '.join('?' for _ in columns)})", tuples)
        except (sa.exc.IntegrityError, connection.dialect.dbapi.IntegrityError):
            savepoint.rollback()
            self._empty_at_start.pop(table.name, None)
            return False
        savepoint.commit()
        return True

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
        # every column of the table: the stage lives as long as the connection, and a later write may list others
        connection.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {stage} AS SELECT * FROM {target} WHERE 0")
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


def _upgrade(connection: Connection, dialect: str) -> None:
    """Alembic's upgrade to head, unless the database is at :data:`HEAD_REVISION` already; an empty SQLite
    database gets the schema this process's last one got from it, replayed (:mod:`abm_sla.warehouse.fresh`: the
    same tables, indexes and version row, without ~80 ms of migration scripts)."""
    if stored_revision(connection) == HEAD_REVISION:
        return
    empty = dialect == "sqlite" and fresh.is_empty(connection)
    signature = fresh.scripts_signature(MIGRATIONS_INI.with_name("migrations")) if empty else ()
    if empty and fresh.replay(connection, signature):
        return
    from alembic import command
    from alembic.config import Config

    config = Config(str(MIGRATIONS_INI))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    if empty:
        fresh.record(connection, signature)


def stored_revision(connection: Connection) -> str | None:
    """The migration the database is at (Alembic's version row), None when it has none."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _create_missing_indexes(connection: Connection, tables: Iterable[sa.Table] | None = None) -> None:
    """Create the schema's indexes of ``tables`` (default: the CRM tables) that the database lacks."""
    inspector = sa.inspect(connection)
    for table in schema.CRM_TABLES.values() if tables is None else tables:
        present = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in present:
                index.create(connection)


