"""Change detection of export files: a file's fingerprint (size, mtime, SHA-256), whether it still matches its last
load, and the fingerprint of the bytes a load actually read (a file that changed while it was read stops the load)."""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from abm_sla.crm.base import FileFingerprint
from abm_sla.crm.files.reading import HASH_BLOCK_BYTES, FileRead, cannot_read
from abm_sla.errors import SourceError


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
        raise cannot_read(path, error) from None
    return FileFingerprint(path.name, resolved, stat.st_size, stat.st_mtime_ns, digest.hexdigest())


def is_unchanged(fingerprints: dict[str, dict[str, Any]], fingerprint: FileFingerprint, stored: dict[str, Any] | None,
              accounts_loaded: bool) -> bool:
    """Same bytes as the last load, and nothing refused or matched then depends on accounts loaded since."""
    if stored is None or stored["sha256"] != fingerprint.sha256:
        return False
    if not stored["reference_rows"]:
        return True
    accounts = fingerprints.get("accounts.csv")
    return not accounts_loaded and not (accounts and accounts["id"] > stored["id"])


def fingerprint_of_read(path: Path, fingerprint: FileFingerprint, read: FileRead,
                        stored: dict[str, Any] | None) -> FileFingerprint:
    """The fingerprint of the bytes actually read; a file that changed while it was read (or since it
    was fingerprinted) stops the load before its last page, so it is never recorded as loaded."""
    if read.opened is None:  # a header without rows: nothing was read past the header
        return fingerprint
    size, mtime_ns, _ = read.opened
    change = read.change(path)
    fast_path = fast_match(fingerprint, stored)
    if change is None and not fast_path and read.digest.hexdigest() != fingerprint.sha256:
        change = "it changed between its fingerprint and its read"
    if change:
        raise SourceError(f"{path.name} changed while it was read: {change}; it is not recorded as loaded "
                          "(the rows read so far are kept), and the next run reads it whole again")
    return dataclasses.replace(fingerprint, size=size, mtime_ns=mtime_ns, sha256=read.digest.hexdigest())


def fast_match(fingerprint: FileFingerprint, stored: dict[str, Any] | None) -> bool:
    """Whether the fingerprint's SHA-256 is the stored one (same path, size and mtime), not a hash of the file."""
    return bool(stored) and (stored["path"], stored["size"], stored["mtime_ns"], stored["sha256"]) == (
        fingerprint.path, fingerprint.size, fingerprint.mtime_ns, fingerprint.sha256)
