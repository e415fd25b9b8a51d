"""Sync one CRM source into the warehouse, page by page, resumable.

Every page is stored with its rows, deletes, quarantined rows and cursor in one
transaction (``Warehouse.store_page``), so a sync killed at any point resumes from
the last stored page: the source reads the cursors back from the warehouse.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from abm_sla.crm.base import Page, Source
from abm_sla.crm.config import AppConfig
from abm_sla.crm.files import FilesSource
from abm_sla.errors import ConfigError
from abm_sla.warehouse import Warehouse
from abm_sla.warehouse.view import record_system_of_record

SOURCE_NAMES = ("salesforce", "hubspot", "files")


def _tally(summary: dict[str, dict[str, int]], page: Page, loaded: int) -> None:
    entry = summary.setdefault(page.object_name, {"loaded": 0, "deleted": 0, "quarantined": 0, "pages": 0})
    entry["loaded"] += loaded
    entry["deleted"] += len(page.deleted_ids)
    entry["quarantined"] += len(page.quarantined)
    entry["pages"] += 1
    if page.warnings:
        entry.setdefault("warnings", []).extend(page.warnings)


def sync_source(
    warehouse: Warehouse, source: Source, run_id: str | None, now: dt.datetime
) -> dict[str, dict[str, int]]:
    """Store every page ``source`` yields since the warehouse's cursors; per object, what was stored.

    Returns ``{object_name: {"loaded", "deleted", "quarantined", "pages"}}`` (plus ``"warnings"``,
    one line each, when the source skipped something it may not read). An error
    raised by the source (a :class:`~abm_sla.errors.SourceError`) propagates after the
    pages before it are committed, so the next sync continues from there.
    """
    summary: dict[str, dict[str, int]] = {}
    for page in source.pages(warehouse):
        loaded = warehouse.store_page(page, run_id, now)
        _tally(summary, page, loaded)
    return summary


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
    from abm_sla.crm import hubspot, salesforce  # the CRM clients are slow to import; only a sync needs them

    if name == "salesforce":
        config = app_config.sources.salesforce
        return salesforce.SalesforceSource(
            config, client_factory or salesforce.client_factory(config), **source_options
        )
    if name == "hubspot":
        config = app_config.sources.hubspot
        return hubspot.HubSpotSource(
            config, client_factory or hubspot.client_factory(config, host=host), **source_options
        )
    if name == "files":
        folder = path or app_config.sources.files.path
        if not folder:
            raise ConfigError("the files source needs a folder: --path DIR or sources.files.path in abm-sla.yaml")
        return FilesSource(folder)
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
