"""Connecting to the warehouse: a database URL checked and redacted, a refused write recognized as a
read-only database, SQLite's busy timeout and WAL, its migration engine under the write lock."""

from __future__ import annotations

import re
import sqlite3
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from abm_sla.errors import WarehouseError

#: Query parameters of a database URL that hold a secret (libpq's ``password``, ``sslpassword``, ...).
SECRET_QUERY_KEYS = re.compile(r"pass|secret|token|key", re.IGNORECASE)


#: SQLSTATEs of a write refused because the database or the role may not write: a read-only transaction
#: (a standby, ``default_transaction_read_only``) and a missing privilege (a role with only ``SELECT``).
READ_ONLY_SQLSTATES = frozenset({"25006", "42501"})
#: SQLite's words for a file (or a connection, ``?mode=ro``) it may not write.
SQLITE_READ_ONLY = ("readonly database", "read-only database")


def read_only_error(error: BaseException, url: str | None = None) -> WarehouseError | None:
    """The one line to show for a database error that means the warehouse may not be written; None for
    any other error."""
    original = getattr(error, "orig", None) or error
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    first = str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    if state not in READ_ONLY_SQLSTATES and not any(words in first for words in SQLITE_READ_ONLY):
        return None
    where = f" ({_redacted(url)})" if url else ""
    return WarehouseError(f"the warehouse is read-only: {first}{where}; give this user write access (for SQLite, "
                          "to the file and its folder), or use a command that only reads (export, report, runs)")


def _redacted(url: str) -> str:
    """The URL without its password (in the user part or as a query parameter such as ``?password=``),
    for messages."""
    try:
        parsed = sa.engine.make_url(url)
        secrets = {key: "***" for key in parsed.query if SECRET_QUERY_KEYS.search(key)}
        return parsed.update_query_dict(secrets).render_as_string(hide_password=True).replace("%2A%2A%2A", "***")
    except (sa.exc.ArgumentError, ValueError):
        text = re.sub(r"(://[^:/@?]*):[^@/?]*@", r"\1:***@", url)
        return re.sub(r"([?&][^=&]*(?:pass|secret|token|key)[^=&]*=)[^&]*", r"\1***", text, flags=re.IGNORECASE)


def check_database_url(url: str) -> None:
    """Fail in one line on a URL whose port is not a number (SQLAlchemy says ``invalid literal for int()``)."""
    match = re.match(r"^[\w+.-]+://(?:[^@/?]*@)?(?:\[[^\]]*\]|[^:/?]*)(?::([^/?]*))?", url)
    port = match.group(1) if match else None
    if port is not None and not port.isdigit():
        raise WarehouseError(f"invalid database URL {_redacted(url)}: the port {port!r} is not a number")


def _sqlite_migration_engine(url: str) -> Engine:
    """SQLite with transactional DDL under the write lock: the driver's own transaction handling is
    off and every transaction is ``BEGIN IMMEDIATE`` (SQLAlchemy's recipe for pysqlite)."""
    engine = sa.create_engine(url, future=True)
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    sa.event.listen(engine, "connect", lambda dbapi_connection, _record: setattr(
        dbapi_connection, "isolation_level", None))
    sa.event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """A busy timeout and WAL, so a reader and a writer (or two runs) wait instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    _enable_wal(cursor)
    cursor.close()


def _enable_wal(cursor, attempts: int = 200) -> None:
    """Switch to WAL. On a new database runs starting together race for the switch, and SQLite answers
    ``database is locked`` at once instead of waiting for its busy timeout: retry briefly (~10 s at most)."""
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.05)
