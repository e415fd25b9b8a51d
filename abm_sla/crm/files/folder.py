"""The ``files`` source: a CRM export folder of CSV files (SPEC section 2).

Files are read in chunks of ``chunk_rows`` rows (memory stays bounded whatever the
file's size) and every chunk is validated set-based; a row that cannot be used
becomes a :class:`Quarantined` row with its reason and the run goes on. Accounts
are checked first so that the other files can be checked against them (and against
the accounts already in the warehouse). Each chunk is one :class:`Page`, stored in
one transaction; a file's last page carries its fingerprint, and a file that matches
the fingerprint of its last load is not read again (one ``unchanged`` page).
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm_sla.crm.base import CursorStore, FileFingerprint, Page, Quarantined
from abm_sla.crm.mapping import TierMapper
from abm_sla.domain import frames
from abm_sla.domain.calendar import usable_zone
from abm_sla.errors import SourceError

SOURCE = "files"
log = logging.getLogger(__name__)
#: Rows per chunk: a chunk of the widest file is ~100 MB in memory, and one transaction.
CHUNK_ROWS = 200_000
HASH_BLOCK_BYTES = 1 << 20
#: Kinds whose stored ``raw`` is the whole CSV row; the high-volume kinds keep only their extra columns.
FULL_RAW_KINDS = frozenset({"accounts", "contacts", "users", "opportunities"})
#: Quarantine reasons that depend on which accounts are known (a later load may accept the row).
REFERENCE_REASONS = ("unknown account ", "unknown domain ")
#: A chunk referring to more accounts not yet known than this reads every stored account once instead of
#: looking its accounts up by key (a small incremental folder costs its own rows, not the warehouse's).
MAX_ACCOUNTS_LOOKUP = 20_000


@dataclass(frozen=True)
class FileSpec:
    """How one CSV file maps to a normalized kind."""

    file: str
    kind: str
    required: tuple[str, ...]
    timestamps: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    booleans: tuple[str, ...] = ()
    id_column: str | None = "id"


FILE_SPECS = (
    FileSpec("accounts.csv", "accounts", ("id", "name"), ("created_at", "updated_at"),
             ("employees", "annual_revenue")),
    FileSpec("users.csv", "users", ("id",), booleans=("active",)),
    FileSpec("contacts.csv", "contacts", ("id", "account_id"), ("created_at", "updated_at")),
    FileSpec("activities.csv", "activities", ("id", "account_id", "type", "occurred_at"),
             ("occurred_at", "logged_at")),
    FileSpec("intent.csv", "intent_signals", ("topic", "score", "observed_at"), ("observed_at",), ("score",),
             id_column=None),
    FileSpec("opportunities.csv", "opportunities", ("id", "account_id"), ("created_at", "close_date"),
             ("amount",), ("is_closed", "is_won")),
    FileSpec("status_changes.csv", "status_changes", ("account_id", "status", "changed_at"), ("changed_at",),
             id_column=None),
    FileSpec("target_accounts.csv", "target_accounts", ("account_id",), ("added_at", "removed_at", "agreed_at"),
             ("priority",), id_column=None),
    # issue 26 (optional): requests between the teams; kind materials | account_info
    FileSpec("requests.csv", "requests", ("request_id", "account_id", "kind", "requested_at"),
             ("requested_at", "answered_at"), id_column="request_id"),
)
#: Kinds whose derived row key may repeat within one file (the later row wins).
KEYS_MAY_REPEAT = frozenset({"status_changes", "target_accounts"})
TRUE_VALUES = {"true", "1"}
FALSE_VALUES = {"false", "0"}
#: A number written with thousands separators.
THOUSANDS = r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?"
#: The plausible range of each optional number: a value outside it (``1e308`` employees, a negative
#: amount) is dropped from its row and recorded, as an unparsable one. The largest employer has about
#: 2.1 million employees and the largest company about $0.7 trillion of revenue; an opportunity of a
#: trillion dollars is a typing error.
PLAUSIBLE = {"employees": (0, 10_000_000), "annual_revenue": (0, 1e13), "amount": (0, 1e12), "priority": (0, 1e6)}
#: Optional numbers that are whole numbers (``3.7`` employees is dropped).
WHOLE_NUMBERS = frozenset({"employees"})
#: The reason of a row loaded without one of its values (stored in ``quarantine`` too).
DROPPED = "value dropped, row loaded: "


def normalize_domain(values: pd.Series) -> pd.Series:
    """``https://www.Acme.com./x`` → ``acme.com``: scheme, ``www.``, case, trailing dots and paths go."""
    text = values.fillna("").astype(str).str.strip().str.lower()
    text = text.str.replace(r"^[a-z][a-z0-9+.-]*://", "", regex=True).str.split("/").str[0]
    text = text.str.replace(r"^www\.", "", regex=True).str.rstrip(".")
    return text.where(text != "", None)


def _cannot_read(path: Path, error: Exception) -> SourceError:
    if isinstance(error, UnicodeDecodeError):
        return SourceError(f"{path.name} is not UTF-8 text")
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return SourceError(f"cannot read {path.name}: {first_line}")


def check_not_unreadable(path: Path) -> None:
    """Stop the load, in one line, when an export file's name is there but is no readable file (a symbolic
    link to itself or to nothing, a folder, a FIFO): skipping it would run the SLA without its rows."""
    if not os.path.lexists(path):
        return
    try:
        path.stat()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        if isinstance(error, FileNotFoundError):
            reason = "a symbolic link to a file that does not exist"
        raise SourceError(f"cannot read {path.name}: {reason}; fix or remove it (nothing was loaded)") from None
    raise SourceError(f"cannot read {path.name}: not a regular file; fix or remove it (nothing was loaded)")


#: Whitespace other than the space that ``str.strip`` removes, in ASCII (other whitespace is not ASCII).
_OTHER_SPACE = ("\t", "\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x1f")


def _strip(values: pd.Series) -> pd.Series:
    """``values.str.strip()``, skipped when no value starts or ends with whitespace: the check joins the
    column once and searches the joined text (C speed), stripping costs a Python call per value."""
    joined = "\x00".join(values.tolist())
    if (
        joined.isascii()
        and " \x00" not in joined and "\x00 " not in joined
        and not joined.startswith(" ") and not joined.endswith(" ")
        and not any(space in joined for space in _OTHER_SPACE)
    ):
        return values
    return values.str.strip()


#: Spare columns past the header: a row with values there has more fields than the header (ragged).
SPARE_FIELDS = 8
#: NUL bytes are read as this character (pandas' parser would cut the field at a NUL).
NUL_MARK = "\x1a"


@dataclass
class FileRead:
    """What one read of a file saw: the SHA-256 and count of the bytes read, and the file's identity
    (size, mtime, inode) when it was opened, to tell whether the file changed while it was read."""

    digest: Any = dataclasses.field(default_factory=hashlib.sha256)
    bytes_read: int = 0
    opened: tuple[int, int, int] | None = None

    def change(self, path: Path) -> str | None:
        """Why the file is not the one that was read from start to end (None: it is)."""
        try:
            now = _identity(path.stat())
        except OSError as error:
            return f"it can no longer be read ({error.strerror or error})"
        size, mtime_ns, inode = self.opened or now
        if now[2] != inode:
            return "it was replaced by another file"
        if now[0] != size or self.bytes_read != size:
            return f"its size went from {size:,} to {now[0]:,} bytes ({self.bytes_read:,} read)"
        if now[1] != mtime_ns:
            return "it was written to"
        return None


def _identity(stat: os.stat_result) -> tuple[int, int, int]:
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


class _NulMarking(io.RawIOBase):
    """A binary file whose NUL bytes read as :data:`NUL_MARK`, so a row with one can be quarantined;
    the bytes read are hashed on the way (into ``read``)."""

    def __init__(self, path: Path, read: FileRead | None = None) -> None:
        super().__init__()
        self.handle = path.open("rb")
        self.read_state = read if read is not None else FileRead()
        self.read_state.opened = _identity(os.fstat(self.handle.fileno()))

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.handle.read(len(buffer))
        self.read_state.digest.update(data)
        self.read_state.bytes_read += len(data)
        data = data.replace(b"\x00", NUL_MARK.encode())
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.handle.close()
        super().close()


@dataclass
class Chunk:
    """Rows of one file, index = line number - 2 (the header is line 1). ``problems`` holds the reason of
    malformed rows (more fields than the header, a NUL byte), ``extras`` the values past the header of
    such rows, ``skipped`` the ``(line, reason)`` of rows too long for the parser to keep at all."""

    table: pd.DataFrame
    problems: pd.Series
    skipped: list[tuple[int, str]]
    extras: pd.DataFrame | None = None


def read_chunks(path: Path, chunk_rows: int = CHUNK_ROWS, read: FileRead | None = None) -> Iterator[Chunk]:
    """A CSV file as chunks of strings ('' for empty cells and for fields missing at the end of a row).

    The header row is parsed as a row into the header's columns plus :data:`SPARE_FIELDS` spare ones:
    a row with values in a spare column is ragged (quarantined, never shifted into other columns); a
    row longer still is skipped by pandas' parser and reported in ``skipped`` with its line number.
    (Spare columns, not ``on_bad_lines`` alone: pandas' chunked C parser truncates an over-long first
    row of a chunk instead of reporting it.) A NUL byte inside a field makes its row a problem too
    (pandas would silently cut the field there). ``read``, if given, collects the hash of the bytes read.
    """
    header = read_header(path)
    if header is None:
        return
    skipped: list[tuple[int, str]] = []
    try:
        reader = pd.read_csv(
            io.BufferedReader(_NulMarking(path, read), HASH_BLOCK_BYTES), dtype=str, keep_default_na=False,
            encoding="utf-8", chunksize=chunk_rows, header=None, names=range(len(header) + SPARE_FIELDS),
            on_bad_lines="warn",
        )
    except (UnicodeDecodeError, pd.errors.ParserError, OSError) as error:
        raise _cannot_read(path, error) from None
    first = True
    with reader:
        while True:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", pd.errors.ParserWarning)
                try:
                    table = reader.get_chunk(chunk_rows + 1 if first else chunk_rows)  # the header is a row
                except StopIteration:
                    return
                except (UnicodeDecodeError, pd.errors.ParserError, OSError) as error:
                    raise _cannot_read(path, error) from None
            new = _skipped_lines(caught, len(header))
            skipped.extend(new)
            if first:
                table, first = table.iloc[1:], False
            yield _chunk(table, header, skipped, new)


def _skipped_lines(caught: list, expected: int) -> list[tuple[int, str]]:
    """``(line, reason)`` of the lines pandas' parser skipped, from its warnings."""
    pattern = r"Skipping line (\d+): expected \d+ fields"
    return [(int(line), ragged_reason(expected)) for warning in caught
            for line in re.findall(pattern, str(warning.message))]


def ragged_reason(width: int) -> str:
    return f"ragged row: more fields than the header's {width}"


def _chunk(table: pd.DataFrame, header: list[str], skipped: list[tuple[int, str]],
           new: list[tuple[int, str]]) -> Chunk:
    """Name the columns, number the rows by line (counting the lines skipped so far), find malformed rows."""
    width = len(header)
    spare = table.iloc[:, width:].fillna("")
    ragged = (spare != "").any(axis=1).to_numpy()
    extras = spare[ragged]
    extras.columns = [f"field_{width + 1 + i}" for i in range(spare.shape[1])]
    table = table.iloc[:, :width].fillna("").apply(_strip)
    table.columns = header
    lines = table.index.to_numpy() + 1  # row 0 is the header, line 1
    if skipped:  # pandas numbers rows without the lines it skipped
        offsets = np.sort(np.array([line for line, _ in skipped])) - np.arange(len(skipped))
        lines = lines + np.searchsorted(offsets, lines, side="right")
    table.index = pd.Index(lines - 2)
    extras.index = table.index[ragged]
    problems = pd.Series(None, index=table.index, dtype=object)
    problems[ragged] = ragged_reason(width)
    for column in header:
        if NUL_MARK in "".join(table[column].tolist()):
            bad = table[column].str.contains(NUL_MARK, regex=False) & problems.isna()
            problems[bad] = f"NUL byte in {column}"
    return Chunk(table, problems, new, extras)


def header_name(name: str) -> str:
    """A header as a column name: ``Occurred At``, `` occurred-at `` and ``OCCURRED_AT`` are ``occurred_at``."""
    return re.sub(r"[\s\-]+", "_", name.replace("\x00", "").strip().lower())


def read_header(path: Path) -> list[str] | None:
    """A CSV file's column names (:func:`header_name`); None for an empty file. A name given twice
    (``id`` and ``ID``) stops the load with one line."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first = next(csv.reader(handle), None)
    except UnicodeDecodeError:
        raise SourceError(f"{path.name} is not UTF-8 text") from None
    except (csv.Error, OSError) as error:
        raise _cannot_read(path, error) from None
    if first is None:
        return None
    names = [header_name(name) for name in first]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise SourceError(f"{path.name} has the column {twice[0]!r} more than once "
                          "(header names are matched ignoring case and spaces)")
    return names


def fingerprint_file(path: Path, stored: dict[str, Any] | None) -> FileFingerprint:
    """Size, mtime and SHA-256 of a file, streamed in blocks; the bytes are checked to be UTF-8 on the way.

    When ``stored`` (the fingerprint of the file's last load) has the same path, size and mtime, the
    file is taken as unchanged without reading it (the fast check); otherwise its SHA-256 decides.
    """
    stat = path.stat()
    resolved = str(path.resolve())
    if stored and (stored["path"], stored["size"], stored["mtime_ns"]) == (resolved, stat.st_size, stat.st_mtime_ns):
        return FileFingerprint(path.name, resolved, stat.st_size, stat.st_mtime_ns, stored["sha256"])
    digest, decoder = hashlib.sha256(), codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as handle:
            while block := handle.read(HASH_BLOCK_BYTES):
                digest.update(block)
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise SourceError(f"{path.name} is not UTF-8 text") from None
    except OSError as error:
        raise _cannot_read(path, error) from None
    return FileFingerprint(path.name, resolved, stat.st_size, stat.st_mtime_ns, digest.hexdigest())


class SeenIds:
    """The ids of one file seen in earlier chunks, as sorted 64-bit hashes (8 bytes an id).

    Recent chunks' hashes are kept as separate sorted arrays and merged once there are
    ``merge_every`` of them, so checking a chunk costs a few binary searches. Two different
    ids share a hash with probability 2**-64: for a 10M-row file, a false duplicate about once in
    370,000 loads.
    """

    def __init__(self, merge_every: int = 8) -> None:
        self.merged = np.empty(0, dtype=np.uint64)
        self.recent: list[np.ndarray] = []
        self.merge_every = merge_every

    def seen_before(self, ids: pd.Series) -> pd.Series:
        """Which of ``ids`` an earlier call saw; remembers them all."""
        hashes = pd.util.hash_array(ids.to_numpy(dtype=object))
        seen = np.zeros(len(hashes), dtype=bool)
        for known in (self.merged, *self.recent):
            if len(known):
                at = np.minimum(np.searchsorted(known, hashes), len(known) - 1)
                seen |= known[at] == hashes
        self.recent.append(np.unique(hashes))
        if len(self.recent) >= self.merge_every:
            self.merged = np.unique(np.concatenate([self.merged, *self.recent]))
            self.recent = []
        return pd.Series(seen, index=ids.index)


class RowChecks:
    """Collects the first reason each row of one file cannot be used."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.table = table
        self.reason = pd.Series(None, index=table.index, dtype="object")
        self.notes = pd.Series(None, index=table.index, dtype="object")

    def note(self, bad: pd.Series, message: pd.Series | str) -> None:
        """Record a value dropped from rows that still load (the first such problem of each row)."""
        new = bad & self.notes.isna()
        if new.any():
            self.notes[new] = message[new] if isinstance(message, pd.Series) else message

    def fail(self, bad: pd.Series, message: pd.Series | str) -> None:
        """Give rows that are bad (and not failed already) this reason."""
        new = bad & self.reason.isna()
        if new.any():
            self.reason[new] = message[new] if isinstance(message, pd.Series) else message

    @property
    def ok(self) -> pd.Series:
        return self.reason.isna()


def _present(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table:
        return pd.Series(False, index=table.index)
    return table[column] != ""


def _parse_timestamps(values: pd.Series) -> pd.Series:
    """ISO 8601 to UTC (NaT when unparsable); a value pandas chokes on costs its row, never the load."""
    try:
        return frames.to_utc(values, errors="coerce")
    except (TypeError, ValueError, OverflowError):
        return pd.Series([_parse_one_timestamp(value) for value in values], index=values.index,
                         dtype="datetime64[ns, UTC]")


def _parse_one_timestamp(value: str) -> pd.Timestamp:
    try:
        return frames.to_utc(pd.Series([value], dtype=object), errors="coerce").iloc[0]
    except (TypeError, ValueError, OverflowError):
        return pd.NaT


def _parse_numbers(values: pd.Series) -> pd.Series:
    """Numbers, with thousands separators (``1,000``, ``1,234,567.5``) read; NaN when unparsable."""
    grouped = values.str.fullmatch(THOUSANDS, na=False)
    text = values.where(~grouped, values.str.replace(",", "", regex=False))
    return pd.to_numeric(text.replace("", None), errors="coerce").astype(float)


def _parse_booleans(values: pd.Series) -> pd.Series:
    lowered = values.str.lower()
    truth = {**dict.fromkeys(TRUE_VALUES, True), **dict.fromkeys(FALSE_VALUES, False)}
    return lowered.map(truth).astype("object")


class ExportFolder:
    """Reads and validates one export folder into pages of normalized rows, chunk by chunk.

    ``stored_accounts`` are the accounts already in the warehouse (they count as known), or
    ``load_accounts`` reads them on first need; with ``lookup_accounts`` (ids -> the ids stored) a chunk
    that refers to few accounts not known yet looks them up by key instead (at most
    :data:`MAX_ACCOUNTS_LOOKUP`; more read every stored account once). Domains need every stored
    account: they are read at the first accounts chunk when the folder has an intent file (or
    ``domains_needed``), as before, else only when a retried row asks;
    ``fingerprints`` the latest stored fingerprint per file (``Warehouse.file_fingerprints``):
    a file that still matches its fingerprint is skipped, unless rows of it were refused or
    matched through accounts (``reference_rows``) and accounts were loaded since.
    """

    def __init__(
        self,
        path: str | Path,
        stored_accounts: pd.DataFrame | None = None,
        *,
        fingerprints: dict[str, dict[str, Any]] | None = None,
        chunk_rows: int = CHUNK_ROWS,
        load_accounts: Any = None,
        lookup_accounts: Any = None,
        domains_needed: bool = False,
        tier_map: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.tiers = TierMapper(tier_map)
        if not self.path.is_dir():
            raise SourceError(f"export folder {self.path} does not exist or is not a folder")
        if not (self.path / "accounts.csv").is_file():
            check_not_unreadable(self.path / "accounts.csv")
            raise SourceError(f"export folder {self.path} has no accounts.csv (the one required file)")
        self.stored_accounts = stored_accounts
        self.load_accounts = load_accounts
        self.lookup_accounts = lookup_accounts
        # read the stored domains before this load's accounts are written (their old domains still count)
        self.domains_early = (domains_needed or lookup_accounts is None or stored_accounts is not None
                              or (self.path / "intent.csv").is_file())
        self.fingerprints = fingerprints or {}
        self.chunk_rows = chunk_rows
        self.accounts_loaded = False
        self._known: set[str] = set()  # accepted by this load, and stored ones found
        self._absent: set[str] = set()  # looked up and not stored
        self._all_stored = False  # every stored account is in _known
        self._domains: pd.Series | None = None
        self._pending_domains: list[pd.Series] = []  # accepted before the stored domains were read

    def pages(self) -> Iterator[Page]:
        """Pages per file present, in dependency order (accounts first); headers and encodings of every
        file are checked first, so a missing column or a non-UTF-8 file stops the load before any write."""
        present = []
        for spec in FILE_SPECS:
            path = self.path / spec.file
            if not path.is_file():
                check_not_unreadable(path)
                continue
            if self._check_header(spec, path):
                present.append((spec, fingerprint_file(path, self.fingerprints.get(spec.file))))
        return self._pages(present)

    def retry_pages(self, waiting: pd.DataFrame) -> Iterator[Page]:
        """Rows quarantined by earlier loads for an account or domain not known then, validated again now
        that the accounts of this load (and the stored ones) are known: one page per file, named
        ``<file>:retried``, whose ``resolved_quarantine`` names the quarantined rows it loads."""
        specs = {spec.file: spec for spec in FILE_SPECS}
        for file, group in waiting.groupby("object_name", sort=False):
            spec = specs.get(str(file))
            if spec is None:
                continue
            payloads = [payload if isinstance(payload, dict) else json.loads(payload) for payload in group["payload"]]
            table = pd.DataFrame(payloads, dtype=object).fillna("").astype(str)
            table.columns = [header_name(str(column)) for column in table.columns]
            if not self._now_known(spec, table).any():
                continue
            table.index = pd.RangeIndex(len(table))
            chunk = Chunk(table, pd.Series(None, index=table.index, dtype=object), [])
            page, _ = self._page(spec, chunk, SeenIds(), SeenIds())
            page.object_name = f"{spec.file}:retried"
            page.resolved_quarantine = [int(i) for i in group["id"].to_numpy()[page.rows.index.to_numpy()]]
            page.quarantined = []  # rows still refused keep their first quarantine row
            yield page

    def _now_known(self, spec: FileSpec, table: pd.DataFrame) -> pd.Series:
        """Which waiting rows refer to an account or domain known now."""
        account = table.get("account_id", pd.Series("", index=table.index))
        known = self.known(account)
        if "domain" in table:
            known |= normalize_domain(table["domain"]).isin(set(self.domains.index))
        return known

    def _pages(self, present: list[tuple[FileSpec, FileFingerprint]]) -> Iterator[Page]:
        for spec, fingerprint in present:
            stored = self.fingerprints.get(spec.file)
            if self._unchanged(spec, fingerprint, stored):
                unchanged = dataclasses.replace(fingerprint, unchanged_since=stored["id"])
                yield Page(SOURCE, spec.file, spec.kind, frames.empty(spec.kind), fingerprint=unchanged,
                           unchanged=True)
                continue
            yield from self._file_pages(spec, fingerprint)
            if spec.kind == "accounts":
                self.accounts_loaded = True

    def _unchanged(self, spec: FileSpec, fingerprint: FileFingerprint, stored: dict[str, Any] | None) -> bool:
        """Same bytes as the last load, and nothing refused or matched then depends on accounts loaded since."""
        if stored is None or stored["sha256"] != fingerprint.sha256:
            return False
        if not stored["reference_rows"]:
            return True
        accounts = self.fingerprints.get("accounts.csv")
        return not self.accounts_loaded and not (accounts and accounts["id"] > stored["id"])

    def _check_header(self, spec: FileSpec, path: Path) -> bool:
        columns = read_header(path)
        if columns is None:
            return False
        required = spec.required + (("account_id|domain",) if spec.kind == "intent_signals" else ())
        for column in required:
            if not any(option in columns for option in column.split("|")):
                raise SourceError(f"{spec.file} lacks the required column {column.replace('|', ' or ')}")
        return True

    def _file_pages(self, spec: FileSpec, fingerprint: FileFingerprint) -> Iterator[Page]:
        """One page per chunk; the last one carries the file's fingerprint with its counts."""
        seen_ids, seen_intent = SeenIds(), SeenIds()
        rows = quarantined = reference_rows = 0
        pending: Page | None = None
        path = self.path / spec.file
        # rows stored identically are dropped before the database (one read of the stored hashes per file);
        # not for status changes or list rows, whose key may repeat within a file (a later row replaces an earlier one)
        skip_key = None if spec.kind in KEYS_MAY_REPEAT else f"{spec.file}:{uuid.uuid4().hex}"
        read = FileRead()
        for chunk in read_chunks(path, self.chunk_rows, read):
            if pending is not None:
                yield pending
            pending, references = self._page(spec, chunk, seen_ids, seen_intent)
            pending.skip_key = skip_key
            pending.quarantined.extend(_skipped_rows(path, chunk.skipped))
            rows += len(chunk.table) + len(chunk.skipped)
            quarantined += len(pending.quarantined)
            reference_rows += references
        if pending is None:  # a header without rows
            header = pd.DataFrame(columns=read_header(path), dtype=object)
            empty = Chunk(header, pd.Series(None, index=header.index, dtype=object), [])
            pending, _ = self._page(spec, empty, seen_ids, seen_intent)
        pending.fingerprint = self._fingerprint_of_read(spec, path, fingerprint, read)
        pending.fingerprint = dataclasses.replace(
            pending.fingerprint, rows=rows, quarantined=quarantined, reference_rows=reference_rows
        )
        yield pending

    def _fingerprint_of_read(self, spec: FileSpec, path: Path, fingerprint: FileFingerprint,
                             read: FileRead) -> FileFingerprint:
        """The fingerprint of the bytes actually read; a file that changed while it was read (or since it
        was fingerprinted) stops the load before its last page, so it is never recorded as loaded."""
        if read.opened is None:  # a header without rows: nothing was read past the header
            return fingerprint
        size, mtime_ns, _ = read.opened
        change = read.change(path)
        fast_path = self._fast_match(spec, fingerprint)
        if change is None and not fast_path and read.digest.hexdigest() != fingerprint.sha256:
            change = "it changed between its fingerprint and its read"
        if change:
            raise SourceError(f"{spec.file} changed while it was read: {change}; it is not recorded as loaded "
                              "(the rows read so far are kept), and the next run reads it whole again")
        return dataclasses.replace(fingerprint, size=size, mtime_ns=mtime_ns, sha256=read.digest.hexdigest())

    def _fast_match(self, spec: FileSpec, fingerprint: FileFingerprint) -> bool:
        """Whether the fingerprint's SHA-256 is the stored one (same path, size and mtime), not a hash of the file."""
        stored = self.fingerprints.get(spec.file)
        return bool(stored) and (stored["path"], stored["size"], stored["mtime_ns"], stored["sha256"]) == (
            fingerprint.path, fingerprint.size, fingerprint.mtime_ns, fingerprint.sha256)

    def known(self, ids: pd.Series) -> pd.Series:
        """Which ``ids`` are known accounts: accepted by this load or stored. Ids not known yet are looked
        up by key when they are few (and a lookup is given), else every stored account is read once."""
        if not self._all_stored:
            asked = set(pd.unique(ids[~ids.isin(self._known)].dropna())) - self._absent
            if asked and self.lookup_accounts is not None and len(asked) <= MAX_ACCOUNTS_LOOKUP:
                found = set(self.lookup_accounts(sorted(asked)))
                self._known |= found
                self._absent |= asked - found
            elif asked:
                self._read_stored_accounts()
        return ids.isin(self._known)

    @property
    def domains(self) -> pd.Series:
        """Account id by normalized domain (the last account with a domain wins)."""
        if self._domains is None:
            self._read_stored_accounts()
        return self._domains

    def _read_stored_accounts(self) -> None:
        """Every stored account: its id known, its domain mapped (then the domains this load accepted)."""
        stored = self.stored_accounts
        if stored is None and self.load_accounts is not None:
            stored = self.load_accounts()
        stored = stored if stored is not None else frames.empty("accounts")
        self._known |= set(stored["account_id"].dropna())
        self._all_stored = True
        if self._domains is None:
            self._domains = pd.Series(stored["account_id"].to_numpy(), index=normalize_domain(stored["domain"]))
            for accepted in self._pending_domains:
                self._add_domains(accepted)
            self._pending_domains = []

    def _page(self, spec: FileSpec, chunk: Chunk, seen_ids: SeenIds, seen_intent: SeenIds) -> tuple[Page, int]:
        """One chunk validated and normalized; also how many of its rows depend on the accounts known."""
        table = chunk.table
        checks = RowChecks(table)
        checks.fail(chunk.problems.notna(), chunk.problems)
        for column in spec.required:
            checks.fail(~_present(table, column), f"missing required value: {column}")
        if spec.id_column:
            ids = table.loc[chunk.problems.isna(), spec.id_column]  # a malformed row's id is no id
            duplicate = ids.duplicated(keep="first") | seen_ids.seen_before(ids)
            checks.fail(duplicate.reindex(table.index, fill_value=False),
                        "duplicate id " + table[spec.id_column] + " in the same file")
        parsed = self._parse_values(spec, table, checks)
        by_domain = self._check_references(spec, table, parsed, checks)
        rows = self._normalize(spec, table[checks.ok], parsed.loc[checks.ok])
        if spec.kind == "intent_signals":
            duplicate = rows["intent_id"].duplicated(keep="first")
            earlier = seen_intent.seen_before(rows.loc[~duplicate, "intent_id"])
            duplicate[earlier.index[earlier]] = True
            rows, dropped = rows[~duplicate], rows.index[duplicate]
            checks.reason[dropped] = "duplicate intent row (same account, topic, time, source) in the file"
        if spec.kind == "accounts":
            self._accept_accounts(rows)
        reasons = checks.reason.dropna()
        references = int(reasons.str.startswith(REFERENCE_REASONS).sum()) + int(by_domain[checks.ok].sum())
        quarantined = self._quarantined(spec, table, checks, chunk.extras)
        quarantined += self._dropped_values(spec, table, checks)
        return Page(SOURCE, spec.file, spec.kind, rows, quarantined=quarantined), references

    def _accept_accounts(self, rows: pd.DataFrame) -> None:
        self._known.update(rows["account_id"])
        new_domains = pd.Series(rows["account_id"].to_numpy(), index=normalize_domain(rows["domain"]))
        if self._domains is None and not self.domains_early:
            self._pending_domains.append(new_domains)
            return
        self._add_domains(new_domains)

    def _add_domains(self, new_domains: pd.Series) -> None:
        domains = pd.concat([self.domains, new_domains])
        domains = domains[domains.index.notna()]
        self._domains = domains[~domains.index.duplicated(keep="last")]

    def _parse_values(self, spec: FileSpec, table: pd.DataFrame, checks: RowChecks) -> pd.DataFrame:
        parsed = pd.DataFrame(index=table.index)
        for column in spec.timestamps:
            if column not in table:
                continue
            parsed[column] = _parse_timestamps(table[column])
            checks.fail(_present(table, column) & parsed[column].isna(),
                        f"unparsable timestamp in {column}: " + table[column])
        for column in spec.numbers:
            if column not in table:
                continue
            parsed[column] = _parse_numbers(table[column])
            unparsable = _present(table, column) & parsed[column].isna()
            if column in spec.required:
                checks.fail(unparsable, f"unparsable number in {column}: " + table[column])
                continue
            # an optional value that cannot be used is dropped, not its row (nor the rows that refer to it)
            refused = unparsable | ~np.isfinite(parsed[column].fillna(0))
            checks.note(refused, f"unusable number in {column}: " + table[column])
            low, high = PLAUSIBLE.get(column, (-np.inf, np.inf))
            implausible = ~refused & parsed[column].notna() & ~parsed[column].between(low, high)
            checks.note(implausible, f"number outside {low:,.0f} to {high:,.0f} in {column}: " + table[column])
            if column in WHOLE_NUMBERS:
                fraction = ~refused & ~implausible & parsed[column].notna() & (parsed[column] % 1 != 0)
                implausible |= fraction
                checks.note(fraction, f"not a whole number in {column}: " + table[column])
            parsed.loc[refused | implausible, column] = np.nan
        for column in spec.booleans:
            if column not in table:
                continue
            parsed[column] = _parse_booleans(table[column])
            checks.fail(_present(table, column) & parsed[column].isna(),
                        f"unparsable boolean in {column}: " + table[column])
        if spec.kind == "activities":
            kind = table["type"].str.lower()
            parsed["type"] = kind
            checks.fail(~kind.isin(frames.ACTIVITY_TYPES), "unknown activity type " + table["type"])
        if spec.kind == "requests":
            kind = table["kind"].str.strip().str.lower()
            parsed["kind"] = kind
            checks.fail(~kind.isin(frames.REQUEST_KINDS), "unknown request kind " + table["kind"])
        if spec.kind == "intent_signals":
            checks.fail(parsed["score"].notna() & ~parsed["score"].between(0, 100), "score outside 0-100")
        if spec.kind == "users" and "time_zone" in table:
            zones = table["time_zone"][_present(table, "time_zone")]
            bad = zones[~zones.map(usable_zone)]  # posixrules, Factory, localtime: unknown too
            checks.fail(table.index.to_series().isin(bad.index), "unknown time zone " + table["time_zone"])
        return parsed

    def _check_references(
        self, spec: FileSpec, table: pd.DataFrame, parsed: pd.DataFrame, checks: RowChecks
    ) -> pd.Series:
        """Refuse rows of unknown accounts (or domains); returns which rows found their account by domain."""
        by_domain = pd.Series(False, index=table.index)
        if spec.kind in ("accounts", "users"):
            return by_domain
        account_id = table["account_id"] if "account_id" in table else pd.Series("", index=table.index)
        if spec.kind == "intent_signals":
            domain = normalize_domain(table.get("domain", pd.Series(None, index=table.index)))
            found = domain.map(self.domains)
            checks.fail((account_id == "") & domain.isna(), "missing required value: account_id or domain")
            checks.fail((account_id == "") & domain.notna() & found.isna(),
                        "unknown domain " + domain.fillna(""))
            parsed["account_id"] = account_id.where(account_id != "", found)
            by_domain = (account_id == "") & parsed["account_id"].notna()
        else:
            parsed["account_id"] = account_id
        known = self.known(parsed["account_id"])
        checks.fail(_present(table, "account_id") & ~known, "unknown account " + account_id)
        return by_domain

    def _normalize(self, spec: FileSpec, table: pd.DataFrame, parsed: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(index=table.index)
        columns = frames.COLUMNS[spec.kind]
        source_names = {"provider": "source"}
        for column in columns:
            name = source_names.get(column, column)
            if column in parsed:
                out[column] = parsed[column]
            elif name in table:
                out[column] = table[name].replace("", None)
            else:
                out[column] = None
        if spec.id_column:
            out[columns[0]] = table[spec.id_column]
        elif spec.kind == "intent_signals":
            key = ["account_id", "topic", "observed_at", "provider"]
            out["intent_id"] = _hash_ids(out, key, normalize="topic")
        elif spec.kind == "target_accounts":  # one membership period per account and added_at
            added = out["added_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").fillna("")
            out["target_account_id"] = out["account_id"] + "|" + added
        else:
            out["status_change_id"] = (
                out["account_id"] + "|" + out["changed_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                + "|" + out["status"].str.lower()
            )
        if spec.kind == "accounts":  # SPEC's tier values (and the configured tier map); others: no tier
            out["tier"] = self.tiers.map(out["tier"])
        if spec.kind == "users":
            out["time_zone"] = out["time_zone"].fillna("UTC")
            out["active"] = out["active"].astype("object").where(out["active"].notna(), True)
        out["raw"] = raw_json(spec, table)
        return frames_conform(spec.kind, out)

    def _dropped_values(self, spec: FileSpec, table: pd.DataFrame, checks: RowChecks) -> list[Quarantined]:
        """Rows loaded without a value they carried: kept in the quarantine table with what was dropped."""
        noted = checks.notes.notna() & checks.ok
        if not noted.any():
            return []
        payloads = table[noted].to_dict(orient="records")
        lines = (table.index[noted] + 2).astype(str)
        return [Quarantined(spec.file, line, DROPPED + note, payload)
                for line, note, payload in zip(lines, checks.notes[noted], payloads, strict=True)]

    def _quarantined(
        self, spec: FileSpec, table: pd.DataFrame, checks: RowChecks, extras: pd.DataFrame | None = None
    ) -> list[Quarantined]:
        bad = checks.reason.notna()
        line_numbers = (table.index[bad] + 2).astype(str)  # the header is line 1
        payloads = table[bad].to_dict(orient="records")
        if extras is not None and len(extras):  # a ragged row keeps the values past the header too
            more = extras.reindex(table.index[bad]).to_dict(orient="records")
            payloads = [{**payload, **{key: value for key, value in fields.items() if isinstance(value, str) and value}}
                        for payload, fields in zip(payloads, more, strict=True)]
        return [
            Quarantined(spec.file, line, reason, payload)
            for line, reason, payload in zip(line_numbers, checks.reason[bad], payloads, strict=True)
        ]


def _skipped_rows(path: Path, skipped: list[tuple[int, str]]) -> list[Quarantined]:
    """Lines the parser could not split, quarantined with their text (read again; they are rare)."""
    if not skipped:
        return []
    wanted = dict(skipped)
    texts: dict[int, str] = {}
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        for number, text in enumerate(handle, start=1):
            if number in wanted:
                texts[number] = text.rstrip("\r\n").replace("\x00", NUL_MARK)
                if len(texts) == len(wanted):
                    break
    return [Quarantined(path.name, str(line), reason, {"line": texts.get(line, "")}) for line, reason in skipped]


def raw_json(spec: FileSpec, table: pd.DataFrame) -> pd.Series:
    """The raw row kept for audit, as JSON text: the whole CSV row for the low-volume kinds; for
    activities, intent and status changes only the columns the loader does not normalize (None
    when there are none or all are empty), so a 10M-row file is not stored twice."""
    columns = list(table.columns)
    if spec.kind not in FULL_RAW_KINDS:
        normalized = set(frames.COLUMNS[spec.kind]) | {"id", "source"}  # an intent row's domain stays
        columns = [column for column in columns if column not in normalized]
        if not columns:
            return pd.Series(None, index=table.index, dtype=object)
    if table.empty:
        return pd.Series(None, index=table.index, dtype=object)
    text = pd.Series(table[columns].to_json(orient="records", lines=True).splitlines(), index=table.index,
                     dtype=object)
    if spec.kind not in FULL_RAW_KINDS:
        text = text.where((table[columns] != "").any(axis=1), None)
    return text


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


def _hash_ids(rows: pd.DataFrame, columns: list[str], normalize: str) -> pd.Series:
    """A stable id for rows the CRM gives none (intent signals)."""
    parts = rows[columns].astype(str)
    parts[normalize] = parts[normalize].str.strip().str.lower()
    joined = parts[columns[0]].str.cat(parts[columns[1:]], sep="|")  # an empty frame gives an empty column
    return joined.map(lambda text: hashlib.sha1(text.encode()).hexdigest()[:20]).astype("object")


def frames_conform(kind: str, rows: pd.DataFrame) -> pd.DataFrame:
    """Normalized columns (plus ``raw``) with UTC timestamps and numbers as floats."""
    ordered = rows[[*frames.COLUMNS[kind], "raw"]].copy()
    for column in frames.TIMESTAMP_COLUMNS[kind]:
        ordered[column] = pd.to_datetime(ordered[column], utc=True).astype("datetime64[ns, UTC]")
    for column in ("employees", "annual_revenue", "score", "amount"):
        if column in ordered:
            ordered[column] = pd.to_numeric(ordered[column]).astype(float)
    return ordered
