"""Undo a run: put back every derived row it replaced and remove every row it added.

Each stage remembers, in the transaction of its write, the rows it is about to replace
(:func:`remember`: their values before the run, or only their key when the run adds them) in
``undo_log``. Rows a run adds that carry its ``run_id`` (score changes, fired MQAs) need no log
entry. :func:`undo_run` restores, in one transaction, the earliest logged state of each key,
deletes the run's own rows, its ``stage_runs`` rows and its log, journals the accounts whose MQAs
changed (so incremental runs recompute them) and marks the run ``undone``.

Runs are undone newest first: a later run computed from this run's results (clocks are updated in
place), so undoing a run that later runs followed means undoing them too (``and_later``), all in
one transaction: a failure on any of them leaves every run as it was.
Loaded CRM rows are kept: nothing stored from a CRM is lost, and a re-run finds them unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from abm_sla.errors import AbmSlaError
from abm_sla.warehouse import schema
from abm_sla.warehouse.store import Warehouse, records

#: The derived tables a run writes, by name.
TABLES = {table.name: table for table in (schema.sla_clocks, schema.escalations, schema.mqas,
                                          schema.score_history, schema.routing_state,
                                          schema.tier_move_recommendations, schema.reassignments)}
#: Tables whose added rows carry the adding run's ``run_id``.
RUN_ID_TABLES = (schema.score_history, schema.mqas)
_BATCH = 1000
UTC_NS = pd.DatetimeTZDtype("ns", "UTC")
KEEP_RUNS_ENV = "ABM_SLA_UNDO_KEEP_RUNS"
DEFAULT_KEEP_RUNS = 100


#: Keys already logged, per run id logging each key once (:func:`logged_once`): per table name, the keys' tuples.
_LOGGED: dict[str, dict[str, set[tuple]]] = {}


@contextmanager
def logged_once(run_id: str) -> Iterator[None]:
    """Within the block (in this process), :func:`remember` and :func:`remember_state` log each key once for
    ``run_id``: a run writing the same rows many times (a backfill's steps) keeps only their state before it,
    which is all the undo restores (the earliest logged state of each key)."""
    _LOGGED[run_id] = {}
    try:
        yield
    finally:
        _LOGGED.pop(run_id, None)


def _tags(table: sa.Table, keys: pd.DataFrame) -> list[tuple]:
    """Each key as a hashable tuple (conformed ``keys``: a timestamp as its nanoseconds, which hash fast), built
    column-wise by ``zip``."""
    columns = [pd.DatetimeIndex(keys[name]).asi8.tolist() if isinstance(keys[name].dtype, pd.DatetimeTZDtype)
               else keys[name].tolist() for name in _keys(table)]
    return list(zip(*columns, strict=True))


def _logged(run_id: str, table: sa.Table, entry: str | None = None) -> set[tuple] | None:
    """The keys of ``table`` logged for ``run_id`` in a :func:`logged_once` block (None outside one): logged whole,
    or by the kind of entry ``entry`` names (:func:`remember_columns`)."""
    tables = _LOGGED.get(run_id)
    return None if tables is None else tables.setdefault(entry or table.name, set())


def _not_logged_yet(run_id: str, table: sa.Table, keys: pd.DataFrame) -> pd.DataFrame:
    """``keys`` (conformed) less those already logged for ``run_id`` in a :func:`logged_once` block."""
    return keys if run_id not in _LOGGED else keys[unlogged(run_id, table, keys)]


def unlogged(run_id: str, table: sa.Table, rows: pd.DataFrame) -> np.ndarray:
    """Per row of ``rows``: whether its key is not logged yet for ``run_id`` (every row outside a
    :func:`logged_once` block). In the block, a key logged already was stored then: by this run after it logged
    it, or before the run."""
    seen = _logged(run_id, table)
    if seen is None or rows.empty:
        return np.ones(len(rows), dtype=bool)
    tags = _tags(table, _conformed(table, rows[_keys(table)]))
    return ~np.fromiter(map(seen.__contains__, tags), dtype=bool, count=len(tags))


def _mark_logged(run_id: str, table: sa.Table, keys: pd.DataFrame) -> None:
    seen = _logged(run_id, table)
    if seen is not None and len(keys):
        seen.update(_tags(table, _conformed(table, keys)))


class UndoError(AbmSlaError):
    """A run cannot be undone (unknown, still running, or followed by later runs)."""


def _keys(table: sa.Table) -> list[str]:
    return [column.name for column in table.primary_key.columns]


def _stamps(table: sa.Table) -> list[str]:
    return [column.name for column in table.columns if isinstance(column.type, schema.UtcDateTime)]


def _conformed(table: sa.Table, frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamp columns as ``datetime64[ns, UTC]`` so keys from frames and from the database compare."""
    out = frame.copy()
    for name in _stamps(table):
        if name in out and out[name].dtype != UTC_NS:  # parsing a parsed column walks it row by row
            out[name] = pd.to_datetime(out[name], utc=True, format="ISO8601").astype(UTC_NS)
    return out


def stored_rows(warehouse: Warehouse, connection: Connection, table: sa.Table, keys: pd.DataFrame) -> pd.DataFrame:
    """The stored rows of ``table`` whose primary key is one of ``keys`` (inside ``connection``)."""
    names = _keys(table)
    first = names[0]
    ids = keys[first].dropna().unique().tolist()
    stored = _conformed(table, warehouse.select_in(list(table.columns), [], table.c[first], ids, connection, _BATCH))
    return stored.merge(_conformed(table, keys[names]).drop_duplicates(), on=names)


def remember(
    warehouse: Warehouse, connection: Connection, run_id: str, table: sa.Table, keys: pd.DataFrame, *,
    only_existing: bool = False,
) -> int:
    """Log the rows of ``table`` with these keys as they are before ``run_id`` writes them; returns entries.

    A key not stored yet is logged as added (the undo deletes it) unless ``only_existing`` (rows
    the run adds carry its ``run_id`` and are found by it).
    """
    if not run_id or keys.empty:
        return 0
    names = _keys(table)
    keys = _not_logged_yet(run_id, table, _conformed(table, keys[names]).drop_duplicates(ignore_index=True))
    if keys.empty:
        return 0
    stored = stored_rows(warehouse, connection, table, keys)
    rows, existed = _json_texts(table, stored), [True] * len(stored)
    _mark_logged(run_id, table, stored)
    if not only_existing:
        added = keys.merge(stored[names], on=names, how="left", indicator=True)
        added = added[added["_merge"] == "left_only"][names]
        rows += _json_texts(table, added)
        existed += [False] * len(added)
        _mark_logged(run_id, table, added)
    warehouse.insert_driver_values(connection, schema.undo_log, {
        "run_id": [run_id] * len(rows), "table_name": [table.name] * len(rows), "existed": existed, "row": rows})
    return len(rows)


#: The undo-log ``table_name`` of a columnar entry (:func:`remember_columns`) is the table's name and this.
COLUMNS_ENTRY = "#columns"


def remember_columns(connection: Connection, run_id: str, table: sa.Table,
                     before: pd.DataFrame) -> int:
    """Log in one entry some columns of stored rows as they are before ``run_id`` sets those columns on all of
    them (``before``: the rows' keys and those columns, as stored); returns the rows logged.

    One entry, column by column, instead of one per row: for a statement that stamps many rows at once (the
    tier-move ledger's daily stamp of its pending recommendations). The undo puts these columns back after the
    whole rows logged by :func:`remember`. In a :func:`logged_once` block a row logged whole already is not logged
    here, nor one logged here already; one logged here can still be logged whole later (its other columns)."""
    if not run_id or before.empty:
        return 0
    entry = table.name + COLUMNS_ENTRY
    rows = _conformed(table, before).drop_duplicates(_keys(table), ignore_index=True)
    rows = rows[unlogged_columns(run_id, table, rows)]
    if rows.empty:
        return 0
    stamped = _logged(run_id, table, entry)
    if stamped is not None:
        stamped.update(_tags(table, rows))
    connection.execute(schema.undo_log.insert().values(run_id=run_id, table_name=entry, existed=True,
                                                       row=_columnar_json(table, rows)))
    return len(rows)


def unlogged_columns(run_id: str, table: sa.Table, rows: pd.DataFrame) -> np.ndarray:
    """Per row of ``rows``: whether :func:`remember_columns` would log it for ``run_id`` (every row outside a
    :func:`logged_once` block; in it, the rows logged neither whole nor by their columns yet)."""
    whole, stamped = _logged(run_id, table), _logged(run_id, table, table.name + COLUMNS_ENTRY)
    if whole is None or stamped is None or rows.empty:
        return np.ones(len(rows), dtype=bool)
    tags = _tags(table, _conformed(table, rows[_keys(table)]))
    return np.fromiter((tag not in whole and tag not in stamped for tag in tags), dtype=bool, count=len(tags))


def _columnar_json(table: sa.Table, rows: pd.DataFrame) -> dict:
    """``rows`` column by column, each as its distinct values (timestamps as ISO 8601 text) and each row's code."""
    out = {}
    for name in rows.columns:
        values = _iso_texts(rows[name]) if name in _stamps(table) else rows[name]
        codes, distinct = pd.factorize(values, use_na_sentinel=False)
        out[name] = {"values": [None if pd.isna(value) else value for value in pd.Index(distinct).tolist()],
                     "codes": codes.tolist()}
    return out


def _columnar_rows(table: sa.Table, entry: dict) -> pd.DataFrame:
    """The rows a :func:`remember_columns` entry holds."""
    return _conformed(table, pd.DataFrame({name: np.asarray(column["values"], dtype=object)[column["codes"]]
                                           for name, column in entry.items()}))


def remember_state(connection: Connection, run_id: str, key: str) -> None:
    """Log one ``routing_state`` value (a round-robin turn) before ``run_id`` changes it."""
    if not run_id:
        return
    table = schema.routing_state
    seen = _logged(run_id, table)
    if seen is not None:
        if (key,) in seen:
            return
        seen.add((key,))
    value = connection.execute(sa.select(table.c.value).where(table.c.key == key)).first()
    connection.execute(schema.undo_log.insert().values(
        run_id=run_id, table_name=table.name, existed=value is not None,
        row={"key": key, "value": None if value is None else value[0]}))


def _json_texts(table: sa.Table, frame: pd.DataFrame) -> list[str]:
    """Rows as the undo log's JSON text: timestamps as ISO 8601 text (exact to the microsecond), anything else
    JSON cannot hold as its text."""
    out = frame[[column for column in frame.columns if column in table.c]].copy()
    for name in _stamps(table):
        if name in out:
            out[name] = _iso_texts(out[name])
    return [json.dumps(row, default=str) for row in records(out)]


def _iso_texts(moments: pd.Series) -> pd.Series:
    """Each timestamp's ``isoformat()`` (None for none), column-wide for UTC timestamps to the microsecond."""
    if isinstance(moments.dtype, pd.DatetimeTZDtype) and str(moments.dt.tz) == "UTC":
        nanoseconds = pd.DatetimeIndex(moments).asi8
        if not (nanoseconds[moments.notna().to_numpy()] % 1_000).any():
            text = pd.Series(np.datetime_as_string(moments.to_numpy(dtype="datetime64[us]"), unit="us"),
                             index=moments.index, dtype=object)
            whole = (nanoseconds % 1_000_000_000) == 0  # isoformat leaves out zero fractions
            text = text.where(~whole, text.str.slice(0, 19)) + "+00:00"
            return text.where(moments.notna(), None).astype(object)
    return moments.map(lambda moment: None if pd.isna(moment) else moment.isoformat()).astype(object)


# -- undo ----------------------------------------------------------------------------------------

def undo_run(warehouse: Warehouse, run_id: str, now: dt.datetime, *, and_later: bool = False) -> list[dict]:
    """Undo ``run_id`` (and, if ``and_later``, every run started after it, newest first); one summary per run."""
    runs = list_runs(warehouse)
    chosen = runs[runs["run_id"] == run_id]
    if chosen.empty:
        raise UndoError(f"no run {run_id!r} in this warehouse (`abm-sla runs` lists them)")
    run = chosen.iloc[0]
    if run["status"] != "undone" and int(chosen.index[0]) >= keep_runs():
        raise UndoError(f"run {run_id} is older than the last {keep_runs()} runs, whose undo logs are kept "
                        f"({KEEP_RUNS_ENV})")
    later = runs[(runs["started_at"] > run["started_at"]) & (runs["status"] != "undone")]
    later = later[~_marks_step_of(later, run_id)]  # a one-pass backfill's step records are undone with it
    if len(later) and not and_later:
        names = ", ".join(later["run_id"].head(5))
        raise UndoError(f"run {run_id} was followed by {len(later)} run(s) ({names}): they computed from its "
                        "results; undo them first, newest first, or pass --and-later")
    order = [*later.sort_values("started_at", ascending=False)["run_id"], run_id]
    with warehouse.engine.begin() as connection:  # all of them or none: a failure on any leaves every run as it was
        warehouse.lock_stage(connection, "fire-and-route")  # SQLite: the write lock from here on
        return [_undo_one(warehouse, connection, name, now) for name in order]


def _undo_one(warehouse: Warehouse, connection: Connection, run_id: str, now: dt.datetime) -> dict:
    """Undo one run inside the caller's transaction."""
    runs = schema.runs
    run = connection.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
    if run["status"] == "undone":
        return {"run_id": run_id, "status": "undone already"}
    if run["status"] == "running" and process_alive(run["pid"], run["host"]):
        raise UndoError(f"run {run_id} is still running (process {run['pid']} on {run['host']}); "
                        "stop it first")
    restored = _restore(warehouse, connection, run_id)
    summary = {"run_id": run_id, "as_of": str(run["as_of"]), **restored}
    summary.update(_delete_own_rows(warehouse, connection, run_id))
    connection.execute(schema.stage_runs.delete().where(schema.stage_runs.c.run_id == run_id))
    connection.execute(schema.undo_log.delete().where(schema.undo_log.c.run_id == run_id))
    connection.execute(runs.update().where(runs.c.run_id == run_id).values(
        status="undone", finished_at=run["finished_at"] or now,
        summary={**(run["summary"] or {}), "undone_at": now.isoformat(), "undo": summary}))
    steps = warehouse.select_frame([runs.c.run_id, runs.c.kind, runs.c.summary],
                                   [runs.c.kind == STEP_KIND, runs.c.status != "undone"], connection)
    owned = steps.loc[_marks_step_of(steps, run_id), "run_id"].tolist()
    if owned:  # its backfill steps are to run again
        connection.execute(runs.update().where(runs.c.run_id.in_(owned)).values(status="undone"))
    return summary


#: The run-log kind of a finished backfill step (``flows/backfill.py``), naming its run in its summary.
STEP_KIND = "backfill-step"


def _marks_step_of(runs: pd.DataFrame, run_id: str) -> pd.Series:
    """Which rows of ``runs`` record a backfill step computed by ``run_id``."""
    owner = runs["summary"].map(lambda summary: (summary or {}).get("pipeline_run_id"))
    return runs["kind"].eq(STEP_KIND) & owner.eq(run_id)


def _restore(warehouse: Warehouse, connection: Connection, run_id: str) -> dict:
    """Put back the earliest logged state of every key the run replaced or added."""
    log = schema.undo_log
    entries = connection.execute(
        sa.select(log.c.table_name, log.c.existed, log.c.row).where(log.c.run_id == run_id).order_by(log.c.id)
    ).all()
    restored: dict[str, pd.DataFrame] = {}
    accounts: set[str] = set()
    for name, table in TABLES.items():
        rows = [(existed, row) for table_name, existed, row in entries if table_name == name]
        if not rows:
            continue
        frame = pd.DataFrame([row for _, row in rows]).assign(_existed=[existed for existed, _ in rows])
        frame = _conformed(table, frame).drop_duplicates(_keys(table), keep="first")
        before, added = frame[frame["_existed"]], frame[~frame["_existed"]]
        delete_keys(connection, table, added)
        if len(before):
            values = before.drop(columns=["_existed"])
            warehouse.upsert_frame(connection, table, values[[c for c in values.columns if c in table.c]])
        restored[name] = frame[_keys(table)]
        if name == schema.mqas.name:
            accounts |= set(frame["account_id"])
    for name, table in TABLES.items():  # after the whole rows: a row can be in both, its columns' earliest values
        stamped = [row for table_name, _, row in entries if table_name == name + COLUMNS_ENTRY]
        if stamped:
            keys = _restore_columns(warehouse, connection, table, stamped)
            restored[name] = pd.concat([restored.get(name), keys]).drop_duplicates()
    if accounts:
        warehouse.journal(connection, "undo", "mqas", pd.Series(sorted(accounts), dtype=object),
                          dt.datetime.now(dt.UTC))
    return {f"{name}_restored": len(keys) for name, keys in restored.items()}


def _restore_columns(warehouse: Warehouse, connection: Connection, table: sa.Table, entries: list[dict]
                     ) -> pd.DataFrame:
    """Set back the columns :func:`remember_columns` logged in ``entries`` (oldest first; a key's earliest values
    win); returns the keys."""
    frames = [_columnar_rows(table, entry) for entry in entries]
    for columns in dict.fromkeys(tuple(frame.columns) for frame in frames):
        same = pd.concat([frame for frame in frames if tuple(frame.columns) == columns], ignore_index=True)
        warehouse.update_frame(connection, table, same.drop_duplicates(_keys(table), keep="first"), _keys(table))
    return pd.concat([frame[_keys(table)] for frame in frames], ignore_index=True)


def delete_keys(connection: Connection, table: sa.Table, keys: pd.DataFrame) -> None:
    """Delete the rows of ``table`` with these primary keys."""
    if keys.empty:
        return
    names = _keys(table)
    statement = table.delete().where(*(table.c[name] == sa.bindparam(f"k_{name}") for name in names))
    connection.execute(statement, [{f"k_{k}": v for k, v in row.items()} for row in records(keys[names])])


def _delete_own_rows(warehouse: Warehouse, connection: Connection, run_id: str) -> dict:
    """Delete the score changes and MQAs the run added (their round-robin turns are restored from the log)."""
    mqas = schema.mqas
    fired = warehouse.select_frame([mqas.c.account_id, mqas.c.writeback_done_at], [mqas.c.run_id == run_id],
                                   connection)
    out = {"mqas_removed": len(fired), "mqas_written_back": int(fired["writeback_done_at"].notna().sum())}
    if len(fired):
        warehouse.journal(connection, "undo", "mqas", fired["account_id"].drop_duplicates(), dt.datetime.now(dt.UTC))
    for table in RUN_ID_TABLES:
        result = connection.execute(table.delete().where(table.c.run_id == run_id))
        if table is schema.score_history:
            out["scores_removed"] = result.rowcount
    return out


def keep_runs() -> int:
    """How many of the newest runs keep their undo log: ``ABM_SLA_UNDO_KEEP_RUNS``, else 100."""
    text = os.environ.get(KEEP_RUNS_ENV, "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else DEFAULT_KEEP_RUNS


def prune(warehouse: Warehouse) -> int:
    """Drop the undo log of every run but the newest :func:`keep_runs` (they can no longer be undone);
    returns the entries dropped. Bounds the log: a run logs one entry per clock it evaluates."""
    runs = schema.runs
    with warehouse.engine.begin() as connection:
        newest = sa.select(runs.c.run_id).order_by(runs.c.started_at.desc()).limit(keep_runs()).scalar_subquery()
        done = connection.execute(schema.undo_log.delete().where(schema.undo_log.c.run_id.not_in(newest)))
    return done.rowcount


# -- the run log ---------------------------------------------------------------------------------

def list_runs(warehouse: Warehouse, limit: int | None = None) -> pd.DataFrame:
    """The runs, newest first, a ``running`` one whose process is gone shown as ``dead``."""
    runs = warehouse.read_table(schema.runs).sort_values("started_at", ascending=False, ignore_index=True)
    if limit:
        runs = runs.head(limit)
    dead = (runs["status"] == "running") & ~runs.apply(lambda run: process_alive(run["pid"], run["host"]), axis=1) \
        if len(runs) else pd.Series(dtype=bool)
    return runs.assign(status=runs["status"].where(~dead, "dead")) if len(runs) else runs


def mark_dead_runs(warehouse: Warehouse, now: dt.datetime) -> int:
    """Record ``dead`` for the ``running`` rows of this host whose process is gone (killed); returns how many."""
    table = schema.runs
    running = warehouse.select_frame([table.c.run_id, table.c.pid, table.c.host], [table.c.status == "running"])
    gone = running[[not process_alive(pid, host) for pid, host in zip(running["pid"], running["host"], strict=True)]]
    if gone.empty:
        return 0
    with warehouse.engine.begin() as connection:
        connection.execute(table.update().where(table.c.run_id.in_(gone["run_id"].tolist()),
                                                table.c.status == "running").values(status="dead", finished_at=now))
    return len(gone)


def this_process() -> dict[str, Any]:
    """The pid and host a running run records."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def process_alive(pid: Any, host: Any) -> bool:
    """Whether the process of a ``running`` row may still be running (another host's: assumed so)."""
    if pid is None or pd.isna(pid):
        return True  # recorded before runs named their process: cannot tell
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
