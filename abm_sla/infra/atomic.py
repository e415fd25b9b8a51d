"""Files written whole or not at all: a reader (or the next run) sees the last good file, never half a new one.

Every file the tool writes for people (reports, their tables, charts and diffs, exports, what-if CSVs)
goes through :func:`atomic_write`: the bytes go to a hidden temporary file in the same folder, are
flushed to disk, and the temporary file is renamed over the target (``os.replace``, atomic on one file
system). A failure on the way (a full disk, a kill) leaves the previous file as it was and the
temporary file removed (after a ``kill -9`` a ``.<name>.*.tmp`` file may stay behind; it is never read).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pandas as pd


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on a clean exit it replaces ``path``."""
    target = Path(path)
    binary = "b" in mode
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb" if binary else "w", encoding=None if binary else encoding,
                       newline=None if binary else "") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, _mode(target))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _mode(target: Path) -> int:
    """The permissions of the file replaced, else ``rw-r--r--`` (a temporary file starts as ``rw-------``)."""
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        return 0o644


def write_text(path: str | Path, text: str) -> None:
    """``Path.write_text`` (UTF-8), atomically."""
    with atomic_write(path) as handle:
        handle.write(text)


def write_bytes(path: str | Path, data: bytes) -> None:
    """``Path.write_bytes``, atomically."""
    with atomic_write(path, "wb", encoding=None) as handle:
        handle.write(data)


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    """``frame.to_csv(path, index=False)``, atomically."""
    with atomic_write(path) as handle:
        frame.to_csv(handle, index=False)
