"""Reading one export file: its header, then chunks of strings with their malformed rows found (ragged rows,
NUL bytes, lines too long to parse), and the identity and SHA-256 of the bytes read on the way."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm_sla.crm.base import Quarantined
from abm_sla.domain import frames
from abm_sla.errors import SourceError

#: Rows per chunk: a chunk of the widest file is ~100 MB in memory, and one transaction.
CHUNK_ROWS = 200_000

HASH_BLOCK_BYTES = 1 << 20


def cannot_read(path: Path, error: Exception) -> SourceError:
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
        raise cannot_read(path, error) from None
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
                    raise cannot_read(path, error) from None
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
    table = table.iloc[:, :width].fillna("").apply(frames.strip_text)
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
        raise cannot_read(path, error) from None
    if first is None:
        return None
    names = [header_name(name) for name in first]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise SourceError(f"{path.name} has the column {twice[0]!r} more than once "
                          "(header names are matched ignoring case and spaces)")
    return names


def skipped_rows(path: Path, skipped: list[tuple[int, str]]) -> list[Quarantined]:
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
