"""A new SQLite warehouse's schema, replayed from the last one this process migrated.

Alembic's run of every migration on an empty SQLite database costs ~80 ms of CPU (it loads each script and
rebuilds tables for the batch alterations); the schema it leaves does not depend on the database. The first
empty SQLite warehouse of a process is migrated by Alembic and its outcome recorded: the schema as SQLite stores
it (``sqlite_master``'s SQL, in order) and the rows the migrations left (``alembic_version``'s head). Each later
empty SQLite warehouse of the process gets that outcome replayed in the same ``BEGIN IMMEDIATE`` transaction,
as long as the migration scripts are the same files (their names, sizes and modification times). A warehouse
that has a schema, or a PostgreSQL one, is always migrated by Alembic.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection


class Outcome(NamedTuple):
    """What the migrations leave in an empty SQLite database."""

    statements: tuple[str, ...]  # CREATE statements as SQLite stores them: tables, then indexes, then the rest
    rows: tuple[tuple[str, tuple[str, ...], tuple[tuple, ...]], ...]  # (table, columns, rows) of non-empty tables


#: Migration scripts' signature -> the outcome of migrating an empty SQLite database with them.
_OUTCOMES: dict[tuple, Outcome] = {}


def scripts_signature(migrations: Path) -> tuple:
    """The migration scripts as files (name, size, modification time), with ``env.py``: a changed script is
    another signature."""
    files = [migrations / "env.py", *sorted((migrations / "versions").glob("*.py"))]
    return tuple(_file_signature(path) for path in files)


def _file_signature(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return path.name, stat.st_size, stat.st_mtime_ns


def is_empty(connection: Connection) -> bool:
    """Whether the SQLite database has no schema at all (no table, index, view or trigger)."""
    return connection.exec_driver_sql("SELECT 1 FROM sqlite_master LIMIT 1").first() is None


def replay(connection: Connection, signature: tuple) -> bool:
    """Replay the recorded outcome of ``signature`` on an empty database; False when none is recorded."""
    outcome = _OUTCOMES.get(signature)
    if outcome is None:
        return False
    for statement in outcome.statements:
        connection.exec_driver_sql(statement)
    for table, columns, rows in outcome.rows:
        names = ", ".join(f'"{column}"' for column in columns)
        marks = ", ".join("?" for _ in columns)
        connection.exec_driver_sql(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', list(rows))
    return True


def record(connection: Connection, signature: tuple) -> None:
    """Record what the migrations just left in a database that was empty, for :func:`replay`. Nothing is
    recorded when they left an AUTOINCREMENT counter (a row of ``sqlite_sequence``), which a replay would not
    restore."""
    schema = connection.exec_driver_sql(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
        "ORDER BY rowid").fetchall()
    order = {"table": 0, "index": 1}
    statements = tuple(sql for _, _, sql in sorted(schema, key=lambda entry: order.get(entry[0], 2)))
    rows = []
    tables = [name for kind, name, _ in schema if kind == "table"]
    sequences = connection.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").first()
    if sequences is not None and connection.exec_driver_sql("SELECT 1 FROM sqlite_sequence LIMIT 1").first():
        return
    for table in tables:
        result = connection.execute(sa.text(f'SELECT * FROM "{table}"'))
        found = result.fetchall()
        if found:
            rows.append((table, tuple(result.keys()), tuple(tuple(row) for row in found)))
    _OUTCOMES[signature] = Outcome(statements, tuple(rows))
