"""Sync one CRM source into the warehouse, page by page, resumable.

Every page is stored with its rows, deletes, quarantined rows and cursor in one
transaction (``Warehouse.store_page``), so a sync killed at any point resumes from
the last stored page: the source reads the cursors back from the warehouse.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from abm_sla import frames
from abm_sla.crm import hubspot, salesforce
from abm_sla.crm.base import CursorStore, Page, Source
from abm_sla.crm.config import AppConfig
from abm_sla.crm.files import SOURCE as FILES_SOURCE
from abm_sla.crm.files import ExportFolder
from abm_sla.errors import ConfigError
from abm_sla.warehouse import Warehouse, schema
from abm_sla.warehouse.store import ID_COLUMN, conform

SOURCE_NAMES = ("salesforce", "hubspot", "files")


class FilesSource:
    """The export folder as a :class:`Source`: one page per file; accounts already stored count as known."""

    name = FILES_SOURCE

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def pages(self, cursors: CursorStore) -> Iterator[Page]:
        stored = cursors.read_kind("accounts") if hasattr(cursors, "read_kind") else None
        yield from ExportFolder(self.path, stored_accounts=stored).pages()


def _tally(summary: dict[str, dict[str, int]], page: Page, loaded: int) -> None:
    entry = summary.setdefault(page.object_name, {"loaded": 0, "deleted": 0, "quarantined": 0, "pages": 0})
    entry["loaded"] += loaded
    entry["deleted"] += len(page.deleted_ids)
    entry["quarantined"] += len(page.quarantined)
    entry["pages"] += 1


def sync_source(
    warehouse: Warehouse, source: Source, run_id: str | None, now: dt.datetime
) -> dict[str, dict[str, int]]:
    """Store every page ``source`` yields since the warehouse's cursors; per object, what was stored.

    Returns ``{object_name: {"loaded", "deleted", "quarantined", "pages"}}``. An error
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


def read_source_kind(warehouse: Warehouse, source: str, kind: str) -> pd.DataFrame:
    """One source's live rows of one kind as a normalized frame (``Warehouse.read_kind`` mixes sources)."""
    table = schema.CRM_TABLES[kind]
    where = sa.and_(table.c.source == source, table.c.deleted_at.is_(None))
    rows = warehouse.read_table(table, where).rename(columns={"source_id": ID_COLUMN[kind]})
    return conform(kind, rows) if len(rows) else frames.empty(kind)


def read_source_frames(warehouse: Warehouse, source: str) -> dict[str, pd.DataFrame]:
    """Every kind of one source, for :func:`abm_sla.crm.unify.unify_frames`."""
    return {kind: read_source_kind(warehouse, source, kind) for kind in frames.COLUMNS}
