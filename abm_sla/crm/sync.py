"""Sync one CRM source into the warehouse, page by page, resumable.

Every page is stored with its rows, deletes, quarantined rows and cursor in one
transaction (``Warehouse.store_page``), so a sync killed at any point resumes from
the last stored page: the source reads the cursors back from the warehouse.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from abm_sla.crm.base import Page, Source
from abm_sla.crm.config import AppConfig
from abm_sla.crm.files.source import FilesSource
from abm_sla.crm.files.specs import DROPPED
from abm_sla.errors import ConfigError
from abm_sla.infra.faults import checkpoint
from abm_sla.infra.progress import track
from abm_sla.warehouse import Warehouse
from abm_sla.warehouse.store import Stored
from abm_sla.warehouse.view import record_system_of_record

SOURCE_NAMES = ("salesforce", "hubspot", "files")


def _tally(summary: dict[str, dict[str, int]], page: Page, stored: Stored) -> None:
    entry = summary.setdefault(
        page.object_name, {"loaded": 0, "written": 0, "deleted": 0, "quarantined": 0, "pages": 0}
    )
    entry["loaded"] += stored.loaded
    entry["written"] += stored.written
    entry["deleted"] += len(page.deleted_ids)
    dropped = sum(row.reason.startswith(DROPPED) for row in page.quarantined)
    entry["quarantined"] += len(page.quarantined) - dropped
    if dropped:
        entry["values_dropped"] = entry.get("values_dropped", 0) + dropped
    entry["pages"] += 1
    if page.unchanged:
        entry["unchanged"] = True
    if page.warnings:
        entry.setdefault("warnings", []).extend(page.warnings)


def sync_source(
    warehouse: Warehouse, source: Source, run_id: str | None, now: dt.datetime
) -> dict[str, dict[str, int]]:
    """Store every page ``source`` yields since the warehouse's cursors; per object, what was stored.

    Returns ``{object_name: {"loaded", "written", "deleted", "quarantined", "pages"}}``: ``loaded``
    rows were handed over, ``written`` of them were new or changed (an identical row is not written
    again); an export file that matches its last load is skipped and marked ``"unchanged": True``;
    ``values_dropped`` counts rows loaded without an unusable optional value (kept in ``quarantine``
    with the reason ``value dropped, row loaded: ...``); ``warnings`` lists one line per thing the source
    skipped because it may not read it. An error
    raised by the source (a :class:`~abm_sla.errors.SourceError`) propagates after the
    pages before it are committed, so the next sync continues from there.
    """
    summary: dict[str, dict[str, int]] = {}
    pages = source.pages(warehouse)
    if getattr(source, "read_ahead", False):
        pages = read_ahead(pages)
    with track(f"load {source.name}") as bar:  # rows and rate on a terminal (abm_sla.infra.progress)
        try:
            for page in pages:
                stored = warehouse.store_page(page, run_id, now)
                _tally(summary, page, stored)
                bar.advance(rows=stored.loaded)
                checkpoint("extract")
        finally:  # indexes a bulk load dropped are built again even when the source fails midway
            warehouse.restore_indexes()
    warehouse.analyze_changed_tables()  # PostgreSQL: plans from the statistics of what was just loaded
    return summary


def read_ahead(pages: Iterator[Page]) -> Iterator[Page]:
    """``pages``, the next one read and validated in a thread while this one is stored.

    The database works outside the GIL (PostgreSQL in its own process, SQLite inside ``sqlite3``'s
    steps), so reading the next chunk overlaps writing this one; one page ahead keeps memory bounded.
    An error of the source is raised here, in the order the pages came; leaving early stops the thread.
    """
    handoff: queue.Queue = queue.Queue(maxsize=1)
    stop, done = threading.Event(), object()

    def produce() -> None:
        try:
            for page in pages:
                if stop.is_set():
                    return
                handoff.put(page)
            handoff.put(done)
        except BaseException as error:  # handed to the consumer, raised there
            handoff.put(error)

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while (item := handoff.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # free the producer's slot until it has seen the stop
            with contextlib.suppress(queue.Empty):
                handoff.get(timeout=0.05)


def build_source(
    name: str,
    app_config: AppConfig,
    *,
    client_factory: Callable[[], Any] | None = None,
    host: str | None = None,
    path: str | Path | None = None,
    **source_options: Any,
) -> Source:
    """The configured source ``salesforce``, ``hubspot`` or ``files``.

    ``client_factory`` replaces the login from credentials (tests, custom auth);
    ``host`` points the HubSpot client elsewhere; ``path`` is the export folder
    (default ``sources.files.path``). ``source_options`` go to the source class
    (``now``, ``sleep``, rate limiters).
    """
    # the CRM clients are slow to import; only a sync needs them
    from abm_sla.crm.hubspot import login as hubspot_login
    from abm_sla.crm.hubspot import source as hubspot_source
    from abm_sla.crm.salesforce import login as salesforce_login
    from abm_sla.crm.salesforce import source as salesforce_source

    if name == "salesforce":
        config = app_config.sources.salesforce
        return salesforce_source.SalesforceSource(
            config, client_factory or salesforce_login.client_factory(config), **source_options
        )
    if name == "hubspot":
        config = app_config.sources.hubspot
        return hubspot_source.HubSpotSource(
            config, client_factory or hubspot_login.client_factory(config, host=host), **source_options
        )
    if name == "files":
        folder = path or app_config.sources.files.path
        if not folder:
            raise ConfigError("the files source needs a folder: --path DIR or sources.files.path in abm-sla.yaml")
        return FilesSource(folder, tier_map=app_config.sources.files.tier_map)
    raise ConfigError(f"unknown source {name!r}; choose one of {', '.join(SOURCE_NAMES)}")


def sync(
    warehouse: Warehouse,
    name: str,
    app_config: AppConfig,
    run_id: str | None,
    now: dt.datetime,
    *,
    path: str | Path | None = None,
    **build_options: Any,
) -> dict[str, dict[str, int]]:
    """Sync the configured source ``name`` (:func:`build_source`), recording the system of record first."""
    source = build_source(name, app_config, path=path, **build_options)
    chosen = app_config.system_of_record
    record_system_of_record(warehouse, owner=chosen.owner, tier=chosen.tier)
    return sync_source(warehouse, source, run_id, now)
