"""Set-based merges of CRM rows: ``ON CONFLICT .. DO UPDATE`` of changed (and, versioned, newer) rows only,
PostgreSQL's ``COPY`` into a staging table and one merge from it, membership in sorted stored hashes."""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection


def _sorted_contains(stored: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which ``values`` are in the sorted array ``stored`` (binary search; ``np.isin`` would hash
    ``stored`` again on every call)."""
    if not len(stored):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(stored, values), len(stored) - 1)
    return stored[at] == values


def _on_conflict(table: sa.Table, columns: list[str], quote, *, versioned: bool, distinct: str) -> str:
    """``ON CONFLICT .. DO UPDATE``: only a row that differs (or was deleted), and, versioned, only a newer one."""
    name = quote(table.name)
    keys = [column.name for column in table.primary_key.columns]
    changing = [column for column in columns if column not in keys]
    where = f"({name}.row_hash {distinct} excluded.row_hash OR {name}.deleted_at IS NOT NULL)"
    if versioned and "updated_at" in columns:
        where += f" AND ({name}.updated_at IS NULL OR excluded.updated_at > {name}.updated_at)"
    updates = ", ".join(f"{quote(column)} = excluded.{quote(column)}" for column in changing)
    return f"ON CONFLICT ({', '.join(map(quote, keys))}) DO UPDATE SET {updates} WHERE {where}"


def _copy_into(connection: Connection, table: sa.Table, columns: list[str], tuples: list[tuple]) -> None:
    """PostgreSQL: ``COPY`` the tuples straight into ``table`` (rows none of which is stored yet)."""
    quote = connection.dialect.identifier_preparer.quote
    with connection.connection.driver_connection.cursor() as cursor, cursor.copy(
            f"COPY {quote(table.name)} ({', '.join(map(quote, columns))}) FROM STDIN") as copy:
        for row in tuples:
            copy.write_row(row)


def _copy_merge(
    connection: Connection, table: sa.Table, columns: list[str], tuples: list[tuple], *, versioned: bool,
    returning: str,
) -> list[Any]:
    """PostgreSQL: ``COPY`` the tuples into a temporary staging table (psycopg 3 ``cursor.copy``),
    then one ``INSERT .. SELECT .. ON CONFLICT DO UPDATE``; returns ``returning`` of the rows inserted or changed.

    The staging table lives for the transaction only (``ON COMMIT DROP``); see psycopg's "Using
    COPY TO and COPY FROM" (https://www.psycopg.org/psycopg3/docs/basic/copy.html).
    """
    quote = connection.dialect.identifier_preparer.quote
    target, stage = quote(table.name), quote(f"stage_{table.name}")
    listed = ", ".join(map(quote, columns))
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {stage} (LIKE {target}) ON COMMIT DROP")
        with cursor.copy(f"COPY {stage} ({listed}) FROM STDIN") as copy:
            for row in tuples:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {target} ({listed}) SELECT {listed} FROM {stage} "
            + _on_conflict(table, columns, quote, versioned=versioned, distinct="IS DISTINCT FROM")
            + f" RETURNING {quote(returning)}"
        )
        written = [row[0] for row in cursor.fetchall()]
        cursor.execute(f"DROP TABLE {stage}")
    return written
