"""The warehouse's change journal (which accounts of which kind a write changed, read back by incremental stages),
the sync cursors and the run log."""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from abm_sla.crm.base import Page
from abm_sla.infra.shards import Shard, shard_keys
from abm_sla.warehouse import schema

#: A page touching more accounts than this is journaled per shard (every account of the shard changed).
JOURNAL_MAX_ACCOUNTS = 50_000


class WarehouseJournal:
    """The journal and run-log half of :class:`~abm_sla.warehouse.store.Warehouse` (its engine, dialect and
    upserts)."""

    def _page_accounts(self, connection: Connection, page: Page, written: pd.Series) -> pd.Series | None:
        """The account ids a page changed: of its rows written, of its deletes (None: users, any change)."""
        if page.kind == "users":
            return None if len(written) or page.deleted_ids else pd.Series(dtype=object)
        ids = written
        if page.deleted_ids:
            table = schema.CRM_TABLES[page.kind]
            account = table.c.source_id if page.kind == "accounts" else table.c.account_id
            deleted = []
            for start in range(0, len(page.deleted_ids), 1000):
                deleted += connection.execute(sa.select(account).where(
                    table.c.source == page.source,
                    table.c.source_id.in_(page.deleted_ids[start: start + 1000]))).scalars().all()
            ids = pd.concat([ids, pd.Series(deleted, dtype=object)], ignore_index=True)
        return ids.dropna().astype(str).drop_duplicates()

    def journal(
        self, connection: Connection, source: str, kind: str, account_ids: pd.Series | None, at: dt.datetime
    ) -> None:
        """Record what a write changed, after everything else in its transaction.

        On PostgreSQL the journal is appended under an advisory lock held to commit, and
        :meth:`journal_position` takes the same lock, so a run never sees a later position
        while an earlier one is still uncommitted (SQLite has one writer at a time anyway).
        """
        if account_ids is not None and account_ids.empty:
            return
        if account_ids is None:
            shards, accounts = [None], [None]
        elif len(account_ids) > JOURNAL_MAX_ACCOUNTS:
            keys = np.unique(shard_keys(account_ids))
            shards = keys[keys >= 0].tolist()
            accounts = [None] * len(shards)
        else:
            shards, accounts = shard_keys(account_ids).tolist(), account_ids.tolist()
        self._lock_journal(connection)
        table = schema.change_journal  # driver values column-wide: no SQLAlchemy parameter processing per row
        dialect = connection.dialect  # the time as SQLAlchemy binds it (SQLite: its text), once a page
        recorded = table.c.recorded_at.type.dialect_impl(dialect).bind_processor(dialect)(at)
        values = {"shard": shards, "account_id": accounts, "kind": [kind] * len(shards),
                  "source": [source] * len(shards), "recorded_at": [recorded] * len(shards)}
        self._execute_values(connection, table.insert(), values, column_keys=list(values))

    def _lock_journal(self, connection: Connection) -> None:
        if self.dialect == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('abm-sla:journal'))"))

    def journal_position(self) -> int:
        """The last committed journal position (0 before any load)."""
        with self.engine.begin() as connection:
            self._lock_journal(connection)
            return int(connection.execute(sa.select(sa.func.max(schema.change_journal.c.seq))).scalar() or 0)

    def read_journal(
        self, after: int, upto: int, shard: Shard | None = None, kinds: Sequence[str] | None = None,
        not_source: str | None = None,
    ) -> pd.DataFrame:
        """Journal rows in ``(after, upto]`` (of one shard, plus the rows that concern every shard), of
        ``kinds`` and not of ``not_source`` if given."""
        table = schema.change_journal
        where = [table.c.seq > after, table.c.seq <= upto]
        if kinds is not None:
            where.append(table.c.kind.in_(list(kinds)))
        if not_source is not None:
            where.append(table.c.source != not_source)
        if shard is not None and not shard.whole:
            where.append(sa.or_(table.c.shard.is_(None), table.c.shard.between(shard.low, shard.high - 1)))
        columns = [table.c.kind, table.c.source, table.c.shard, table.c.account_id]
        with self.engine.connect() as connection:
            return pd.DataFrame(connection.execute(sa.select(*columns).where(*where)).fetchall(),
                                columns=["kind", "source", "shard", "account_id"])

    def get_cursor(self, source: str, object_name: str) -> str | None:
        table = schema.sync_cursors
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(table.c.cursor).where(table.c.source == source, table.c.object_name == object_name)
            ).scalar_one_or_none()

    # -- run log ------------------------------------------------------------------------------

    def start_run(self, run_id: str, kind: str, as_of: dt.datetime | None, started_at: dt.datetime,
                  flow_run_id: str | None = None) -> None:
        with self.engine.begin() as connection:
            self.upsert(
                connection,
                schema.runs,
                [{"run_id": run_id, "kind": kind, "as_of": as_of, "started_at": started_at,
                  "status": "running", "finished_at": None, "summary": None, "model_version": None,
                  "pid": os.getpid(), "host": socket.gethostname(), "flow_run_id": flow_run_id}],
            )

    def finish_run(
        self, run_id: str, status: str, finished_at: dt.datetime, summary: dict, model_version: str | None
    ) -> None:
        table = schema.runs
        with self.engine.begin() as connection:
            connection.execute(
                table.update()
                .where(table.c.run_id == run_id)
                .values(status=status, finished_at=finished_at, summary=summary, model_version=model_version)
            )
