"""CSV exports (SPEC section 7): ``scores``, ``mqas``, ``sla``, ``escalations``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from abm_sla import atomic
from abm_sla.errors import AbmSlaError
from abm_sla.sla import CLOCKS, OPTIONAL_CLOCKS
from abm_sla.warehouse import Warehouse, schema, score_history
from abm_sla.warehouse.view import CrmView

#: A text cell starting with one of these is run as a formula by Excel, LibreOffice and Google Sheets
#: (OWASP "CSV Injection"): ``=HYPERLINK(...)`` in an account name would be a live link.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Text that is a plain number (``-12.5``, ``+3``, ``1e6``) cannot be a formula and stays as it is.
PLAIN_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula, prefixed with ``'`` as OWASP recommends (the
    spreadsheet then shows the text as written); numbers, and text that is a plain number, are kept."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype != object and not pd.api.types.is_string_dtype(values.dtype):
            continue
        try:  # a cell that is not text (a number, None) gives NaN here, so False
            risky = values.str.startswith(FORMULA_STARTS, na=False) & ~values.str.fullmatch(PLAIN_NUMBER, na=False)
        except AttributeError:  # no text in the column at all
            continue
        if risky.any():
            out[column] = values.where(~risky, "'" + values[risky].astype(str))
    return out


def iso_utc(values: pd.Series) -> pd.Series:
    """Timestamps as ISO 8601 in UTC (``2026-03-02T14:00:00Z``), empty when missing."""
    text = pd.Series("", index=values.index, dtype=object)  # built as text: an all-missing column stays text
    present = values.notna()
    utc = pd.to_datetime(values[present], utc=True)
    text[present] = utc.map(lambda ts: ts.isoformat().replace("+00:00", "Z"))
    return text


def _with_iso_timestamps(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = iso_utc(out[column])
    return out


def scores(warehouse: Warehouse) -> pd.DataFrame:
    """One row per live account: its score as of the latest run that scored it (latest run on ties)."""
    live = CrmView(warehouse).read_kind("accounts")["account_id"]
    latest = score_history.current_scores(warehouse, live_accounts=live)
    out = latest[["account_id", "as_of", "firmographic", "engagement", "intent", "total", "qualified"]]
    return out.assign(qualified=out["qualified"].map({True: "true", False: "false"}))


def mqas(warehouse: Warehouse) -> pd.DataFrame:
    """One row per MQA: when it fired, when and to whom it was routed, and its score at trigger_at."""
    table = warehouse.read_table(schema.mqas)
    out = table.sort_values(["trigger_at", "account_id"])
    out = out[["account_id", "trigger_at", "routed_at", "tier", "owner_id", "total"]]
    return out.assign(tier=out["tier"].astype("Int64"))


def sla(warehouse: Warehouse) -> pd.DataFrame:
    """One row per MQA and clock, with its status as of the latest run."""
    table = warehouse.read_table(schema.sla_clocks)
    order = {name: rank for rank, name in enumerate(CLOCKS + OPTIONAL_CLOCKS)}
    table = table.assign(_order=table["clock"].map(order))
    table = table.sort_values(["trigger_at", "account_id", "_order", "period"])
    return table[["account_id", "trigger_at", "clock", "status", "due_at", "met_at"]]


def escalations(warehouse: Warehouse) -> pd.DataFrame:
    """One row per escalation level and recipient."""
    table = warehouse.read_table(schema.escalations)
    table = table.sort_values(["trigger_at", "account_id", "clock", "level", "to_user_id"])
    return table[["account_id", "trigger_at", "level", "opened_at", "to_user_id"]]


EXPORTS: dict[str, Callable[[Warehouse], pd.DataFrame]] = {
    "scores": scores,
    "mqas": mqas,
    "sla": sla,
    "escalations": escalations,
}


def export(warehouse: Warehouse, kind: str, out: str | Path) -> int:
    """Write one export as CSV (whole or not at all, formula-like text neutralised); returns the number of rows."""
    if kind not in EXPORTS:
        raise AbmSlaError(f"unknown export {kind!r}: choose one of {', '.join(EXPORTS)}")
    table = spreadsheet_safe(_with_iso_timestamps(EXPORTS[kind](warehouse)))
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_csv(path, table)
    except OSError as error:
        raise AbmSlaError(f"cannot write {path}: {error.strerror or error}") from None
    return len(table)


def has_runs(warehouse: Warehouse) -> bool:
    with warehouse.engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(schema.runs)).scalar_one() > 0
