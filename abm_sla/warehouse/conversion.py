"""Frames as driver values: a column as Python objects or driver text (timestamps, raw JSON), rows as
dicts, row hashes, and a page's rows as a CRM table's columns."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from abm_sla.infra.shards import shard_keys
from abm_sla.warehouse import schema
from abm_sla.warehouse.reads import ID_COLUMN

#: Tables whose rows carry ``updated_at``: a stored row is replaced only by a newer one.
VERSIONED_KINDS = {"accounts", "contacts"}


def _column_values(values: pd.Series) -> list[Any]:
    """One column as driver-ready Python objects: datetimes, ints, floats, bools, str; None for missing."""
    missing = values.isna().to_numpy()
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        naive = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[us]").tolist()
        out = [None if moment is None else moment.replace(tzinfo=dt.UTC) for moment in naive]
    elif values.dtype == object:
        out = [value.item() if isinstance(value, np.generic) else value for value in values]
    else:
        out = values.to_numpy(dtype=object).tolist()
    return [None if gone else value for value, gone in zip(out, missing, strict=True)]


def bound_column(values: pd.Series, column: sa.Column, dialect: str) -> list[Any]:
    """One column as the driver values SQLAlchemy's bind processing of ``column``'s type would give, computed
    column-wide: UTC timestamps as SQLite's stored text (aware datetimes on PostgreSQL), JSON as its text (a
    missing value as ``null``), everything else as :func:`_column_values`. A naive timestamp is refused."""
    if isinstance(column.type, sa.JSON):
        return _json_texts(_column_values(values))
    if isinstance(column.type, schema.UtcDateTime):
        values = _utc(values, column.name)
        return _timestamp_text(values, dialect) if dialect == "sqlite" else _column_values(values)
    return _column_values(values)


def _json_texts(values: list[Any]) -> list[str]:
    """Each value as JSON text; an object given several times (the reasons and gates scored rows share) is
    serialized once."""
    texts: dict[int, str] = {}
    out = []
    for value in values:
        text = texts.get(id(value))
        if text is None:
            text = texts[id(value)] = json.dumps(value)
        out.append(text)
    return out


def _utc(values: pd.Series, name: str) -> pd.Series:
    """A timestamp column as ``datetime64[ns, UTC]`` (aware datetimes or missing values only)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values
    naive = next((value for value in values.dropna() if getattr(value, "tzinfo", None) is None), None)
    if naive is not None:
        raise ValueError(f"{name}: abm-sla stores UTC-aware timestamps only, got {naive!r}")
    return pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as driver-ready dicts, converted column by column."""
    columns = list(frame.columns)
    values = [_column_values(frame[column]) for column in columns]
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)] if columns else []


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A stable 64-bit hash of each row's values (pandas' keyed SipHash), as signed integers."""
    return pd.util.hash_pandas_object(frame, index=False).to_numpy().view(np.int64)


def _json_text(values: pd.Series) -> pd.Series:
    """Raw rows as JSON text: dicts serialized (sorted keys), text kept, missing stays None."""
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):  # text already (C-speed check)
        return values.astype(object).where(values.notna(), None)
    return values.map(
        lambda value: json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict) else value
    ).astype(object)


def _timestamp_text(values: pd.Series, dialect: str) -> list[Any]:
    """UTC timestamps as driver text, vectorized: SQLAlchemy's SQLite storage format
    (``YYYY-MM-DD HH:MM:SS.ffffff``, which compares as text in time order), ISO 8601 with
    ``+00:00`` for PostgreSQL's COPY."""
    instants = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[us]")
    text = np.datetime_as_string(instants, unit="us")  # fixed width: the "T" is at the same place in each
    if len(text) and text.dtype.itemsize // 4 > 10:
        text = np.char.add(text, "+00:00") if dialect != "sqlite" else text
        if dialect == "sqlite":
            characters = text.view(np.uint32).reshape(len(text), -1)  # UCS-4 code points, one row a value
            characters[:, 10] = np.where(characters[:, 10] == ord("T"), ord(" "), characters[:, 10])
    out = text.astype(object)
    out[np.isnat(instants)] = None
    return out.tolist()


def _driver_column(values: pd.Series, dialect: str) -> list[Any]:
    """One column as values the driver takes without SQLAlchemy's type processing (None for missing)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return _timestamp_text(values, dialect)
    if values.dtype == object and not any(isinstance(value, np.generic) for value in values.head(1000)):
        array = values.to_numpy(dtype=object, copy=True)
        array[pd.isna(array)] = None
        return array.tolist()
    return _column_values(values)


def _crm_frame(table: sa.Table, kind: str, source: str, rows: pd.DataFrame) -> pd.DataFrame:
    """A page's rows as the table's columns: ``source``, ``source_id``, the values present, ``raw`` as
    JSON text, ``deleted_at`` cleared and ``row_hash``; one row per id (the newest, else the last)."""
    renamed = rows.rename(columns={ID_COLUMN[kind]: "source_id"})
    keep = [
        column.name for column in table.columns
        if column.name in renamed.columns and column.name not in ("source", "deleted_at", "row_hash")
    ]
    frame = renamed[keep].copy()
    if "raw" in frame:
        frame["raw"] = _json_text(frame["raw"])
    if kind in VERSIONED_KINDS and "updated_at" in frame:
        frame = frame.sort_values("updated_at", kind="stable", na_position="first")
    frame = frame.drop_duplicates("source_id", keep="last")
    frame["row_hash"] = row_hashes(frame)
    frame.insert(0, "source", source)
    frame["deleted_at"] = None
    if "shard" in table.c:  # derived from the account id, so outside the row hash
        keys = shard_keys(frame["source_id" if kind == "accounts" else "account_id"])
        frame["shard"] = pd.Series(keys, index=frame.index).astype(object).where(keys >= 0, None)
    return frame
