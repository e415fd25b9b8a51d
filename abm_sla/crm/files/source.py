"""The export folder as a CRM source (:class:`FilesSource`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from abm_sla.crm.base import CursorStore, Page
from abm_sla.crm.files.folder import ExportFolder
from abm_sla.crm.files.reading import CHUNK_ROWS
from abm_sla.crm.files.specs import SOURCE
from abm_sla.domain import frames

log = logging.getLogger(__name__)


class FilesSource:
    """The export folder as a :class:`Source`: pages of chunks; accounts already stored count as known.

    With a warehouse as ``cursors``, files that match their last load's fingerprint are skipped.
    """

    name = SOURCE
    #: ``sync_source`` reads the next chunk while one is stored (:func:`abm_sla.crm.sync.read_ahead`).
    read_ahead = True

    def __init__(self, path: str | Path, chunk_rows: int = CHUNK_ROWS, tier_map: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self.chunk_rows = chunk_rows
        self.tier_map = tier_map

    def pages(self, cursors: CursorStore) -> Iterator[Page]:
        def stored_accounts() -> pd.DataFrame | None:
            return cursors.read_kind("accounts", source=self.name) if hasattr(cursors, "read_kind") else None

        def lookup_accounts(ids: list[str]) -> set[str]:
            return cursors.stored_keys("accounts", self.name, ids)

        fingerprints = cursors.file_fingerprints(self.name) if hasattr(cursors, "file_fingerprints") else {}
        waiting = cursors.waiting_references(self.name) if hasattr(cursors, "waiting_references") else None
        folder = ExportFolder(
            self.path, fingerprints=fingerprints, chunk_rows=self.chunk_rows, load_accounts=stored_accounts,
            lookup_accounts=lookup_accounts if hasattr(cursors, "stored_keys") else None,
            domains_needed=waiting is not None and bool(waiting["object_name"].eq("intent.csv").any()),
            tier_map=self.tier_map,
        )
        yield from folder.pages()
        if hasattr(cursors, "waiting_references"):  # rows refused for an account that may have come since
            waiting = cursors.waiting_references(self.name)
            if len(waiting):
                yield from folder.retry_pages(waiting)
        warning = folder.tiers.warning("accounts.csv tier", "sources.files.tier_map")
        if warning:
            log.warning(warning)
            yield Page(SOURCE, "accounts.csv", "accounts", frames.empty("accounts"), warnings=[warning])
