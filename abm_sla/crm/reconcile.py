"""Periodic id reconciliation: soft-delete what a CRM no longer has, when its APIs cannot say so.

Incremental syncs see deletes only while the APIs still show them: Salesforce's
``queryAll`` lists a deleted row (``IsDeleted = true``) until the recycle bin is
emptied (about 15 days, or at once on a hard delete), HubSpot lists archived
records but not purged or merged-away ones. A sync paused longer than that, a
purge or a merge would leave ghosts forever. So every ``reconcile_every_days``
(default 7) a source lists the ids of every live record it maps (ids only: one
cheap call per 2,000 Salesforce or 100 HubSpot ids) and the ids stored for that
source but no longer in the CRM are soft-deleted, as pages through
``Warehouse.store_page`` like any other delete.

Safeguards: the stored ids are read before the scan (a row synced meanwhile is
never at risk); nothing is deleted for an object whose scan failed; and a scan
that would delete more than ``reconcile_max_share`` of an object's stored rows
(a lost permission, a wrong filter) deletes nothing and says so in the run
report.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import sqlalchemy as sa

from abm_sla.crm.base import CursorStore, Page
from abm_sla.crm.mapping import conform
from abm_sla.domain import frames

log = logging.getLogger(__name__)
RECONCILE_CURSOR = "reconcile"  # cursor object name: when the last reconciliation finished (ISO UTC)


@dataclass(frozen=True)
class IdScan:
    """One reconciliation: the CRM objects whose ids cover the stored rows of ``kind`` (of ``types``)."""

    name: str
    kind: str
    objects: tuple[str, ...]
    types: tuple[str, ...] | None = None  # activity types these objects produce (None: every row of kind)
    crm_id: Callable[[str], str] = str  # stored id → CRM id (e.g. "<member id>:<touch>" → member id)


def stored_ids(store: CursorStore, source: str, scan: IdScan) -> set[str] | None:
    """Live stored ids of ``scan`` (a warehouse: one narrow query); None when the store cannot say."""
    live_ids = getattr(store, "live_ids", None)
    if live_ids is not None:
        return set(live_ids(source, scan.kind, scan.types))
    engine = getattr(store, "engine", None)
    if engine is None:
        return None
    from abm_sla.warehouse import schema  # the warehouse is an adapter; only a real store needs it

    table = schema.CRM_TABLES[scan.kind]
    query = sa.select(table.c.source_id).where(table.c.source == source, table.c.deleted_at.is_(None))
    if scan.types is not None:
        query = query.where(table.c.type.in_(list(scan.types)))
    with engine.connect() as connection:
        return {str(row[0]) for row in connection.execute(query)}


def due(store: CursorStore, source: str, every_days: float | None, now: dt.datetime) -> bool | None:
    """True when a reconciliation is due, False when not, None when it has never run (start the clock)."""
    if every_days is None:
        return False
    last = store.get_cursor(source, RECONCILE_CURSOR)
    if not last:
        return None
    when = dt.datetime.fromisoformat(last.replace("Z", "+00:00"))
    return now - when >= dt.timedelta(days=every_days)


def reconcile_pages(
    store: CursorStore,
    source: str,
    scans: Iterable[IdScan],
    list_ids: Callable[[IdScan], Iterable[str]],
    *,
    every_days: float | None,
    max_share: float,
    now: dt.datetime,
    force: bool = False,
) -> Iterator[Page]:
    """Pages of soft-deletes for ids the CRM no longer has (when due), then the reconciliation's cursor.

    ``list_ids(scan)`` yields every live CRM id of the scan's objects. The first time (no cursor yet)
    only starts the clock: the sync that just ran was a full one.
    """
    state = True if force else due(store, source, every_days, now)
    if state is False:
        return
    stamp = now.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if state is None:
        yield Page(source, RECONCILE_CURSOR, "accounts", conform("accounts", []), cursor=stamp)
        return
    for scan in scans:
        stored = stored_ids(store, source, scan)
        if stored is None:
            return
        crm = set(list_ids(scan))
        gone = sorted(i for i in stored if scan.crm_id(i) not in crm)
        page = Page(source, f"{scan.name}:reconcile", scan.kind, conform(scan.kind, []))
        if stored and len(gone) > max_share * len(stored):
            warning = (
                f"{source} {scan.name}: the id scan would delete {len(gone)} of {len(stored)} stored rows "
                f"(more than {max_share:.0%}); nothing was deleted — check the integration user's access"
            )
            log.warning(warning)
            page.warnings.append(warning)
        else:
            page.deleted_ids = gone
            if gone:
                log.info("%s %s: %d rows gone from the CRM, soft-deleted", source, scan.name, len(gone))
        yield page
    yield Page(source, RECONCILE_CURSOR, "accounts", conform("accounts", []), cursor=stamp)


class Reconciling:
    """What a CRM source mixes in to offer the periodic id scan: it gives ``name``, ``config`` (with
    ``reconcile_every_days`` and ``reconcile_max_share``), ``id_scans()`` and ``list_ids``."""

    def reconcile(self, cursors: CursorStore, now: dt.datetime, force: bool = False) -> Iterator[Page]:
        """Soft-deletes for ids the CRM no longer has (purged, merged away), every ``reconcile_every_days``."""
        yield from reconcile_pages(
            cursors, self.name, self.id_scans(), self.list_ids, every_days=self.config.reconcile_every_days,
            max_share=self.config.reconcile_max_share, now=now, force=force,
        )


def sales_types() -> tuple[str, ...]:
    return tuple(frames.SALES_TOUCHES)


def marketing_types() -> tuple[str, ...]:
    return tuple(frames.MARKETING_TOUCHES)
