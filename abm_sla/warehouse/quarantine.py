"""What a load refused and what it read: quarantined rows (kept once each, resolved when a later load takes
them in, the ones waiting for a reference) and the fingerprints of the files loaded."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from abm_sla.crm.base import FileFingerprint, Quarantined
from abm_sla.warehouse import schema

MAX_BIND_PARAMS = 30_000


def payload_hash(payload: dict) -> str:
    """A stable fingerprint of a quarantined row, so reloading it adds nothing."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class WarehouseQuarantine:
    """The quarantine and file-fingerprint half of :class:`~abm_sla.warehouse.store.Warehouse` (its engine and
    dialect's INSERT)."""

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
