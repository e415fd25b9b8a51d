"""What every CRM source yields, after dlt's verified sources: small pages with a cursor.

A source reads one CRM object at a time and yields :class:`Page` objects. The
warehouse stores each page's rows, its deletes, its quarantined rows and the new
cursor **in one transaction** (``Warehouse.store_page``), so a sync killed
mid-way resumes from the last stored page and neither loses nor duplicates rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd


@dataclass(frozen=True)
class Quarantined:
    """A source row that could not be used, kept with the reason."""

    object_name: str
    row: str
    reason: str
    payload: dict


@dataclass(frozen=True)
class FileFingerprint:
    """An export file as read: size and mtime (the fast check), SHA-256 of its bytes (the truth).

    ``rows``, ``quarantined`` and ``reference_rows`` (rows whose fate depends on the accounts
    known) are filled in when the file has been read to its end. ``unchanged_since`` is the id
    of the stored fingerprint the file still matches (then nothing of it is read again).
    """

    file: str
    path: str
    size: int
    mtime_ns: int
    sha256: str
    rows: int = 0
    quarantined: int = 0
    reference_rows: int = 0
    unchanged_since: int | None = None


@dataclass
class Page:
    """One page of one CRM object, already normalized to a ``frames`` kind.

    ``rows`` has the columns of ``frames.COLUMNS[kind]`` plus an optional ``raw``
    column (the CRM record as a dict). ``deleted_ids`` are source ids to mark
    deleted. ``cursor`` is the watermark to store with the page (None: keep).
    ``fingerprint`` (export files: on a file's last page) is recorded with the page;
    ``unchanged`` marks a file skipped because it matches the fingerprint of its last load.
    ``warnings`` are one-line notes for the run report (e.g. an API the account
    is not entitled to was skipped).
    ``resolved_quarantine`` are ids of quarantined rows this page loads after all (their account came).
    ``skip_key`` (pages of one bulk load of one file share it) lets the warehouse drop rows it
    already holds exactly so before writing (see ``Warehouse.store_frames``).
    """

    source: str
    object_name: str
    kind: str
    rows: pd.DataFrame
    deleted_ids: list[str] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    cursor: str | None = None
    fingerprint: FileFingerprint | None = None
    unchanged: bool = False
    warnings: list[str] = field(default_factory=list)
    skip_key: str | None = None
    resolved_quarantine: list[int] = field(default_factory=list)


class CursorStore(Protocol):
    """Where a source reads the watermark stored with its last page."""

    def get_cursor(self, source: str, object_name: str) -> str | None: ...


class Source(Protocol):
    """A CRM source: ``pages`` yields every page changed since the stored cursors."""

    name: str

    def pages(self, cursors: CursorStore) -> Iterator[Page]: ...
