"""The score history, stored as changes: a row when an account's points, gates or reasons change.

A scoring run at ``as_of`` under a model version writes an account's row only when its score
differs from the account's latest stored row at or before ``as_of`` under that version
(``score_hash`` compares them); the run itself is recorded in ``stage_runs``. An account's score
as of a run is therefore its latest row at or before the run's ``as_of``. A run behind a later one
(a backfill) that changes an account also pins the later run's value for it, so every recorded
run still reads what it computed. :func:`dense` turns the changes back into a row per account and
run for the readers that want one (the threshold backtest).

An account a run did not score because it is off the target account list (policy
``target_account_list.only_listed`` with a list) gets a *not scored* row (:func:`not_scored_rows`:
no points, not qualified, ``score_hash`` :data:`NOT_SCORED`) when that differs from its latest row, so
its earlier score stops being its score from that run on. Readers (:func:`current_scores`,
:func:`dense`) leave those rows out: the account has no score as of such a run.
"""

from __future__ import annotations

import hashlib

import numpy as np
import orjson
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from abm_sla.domain.scoring import distinct_rows
from abm_sla.warehouse import schema, undo
from abm_sla.warehouse.store import Warehouse

VALUE_COLUMNS = ["firmographic", "engagement", "intent", "total", "qualified", "gates", "reasons"]
KEY_COLUMNS = ["account_id", "as_of", "model_version"]
STAGE = "score"
_IN_BATCH = 1000
#: ``score_hash`` of a "not scored: off the target account list" row (never a SHA-1 hex digest).
NOT_SCORED = "not scored: off the target account list"
NOT_SCORED_REASON = {"rule": "not_scored", "detail": "off the target account list"}


def score_hashes(rows: pd.DataFrame) -> list[str]:
    """A fingerprint per row of its points, gates and reasons (:data:`NOT_SCORED` for a not-scored row). Rows with
    the same numbers and the same gates and reasons objects (scored rows of one profile share them) are hashed
    once."""
    numbers = VALUE_COLUMNS[:-2]  # each of one type throughout: equal values give equal JSON
    if len(rows) and all(pd.api.types.is_integer_dtype(rows[name]) or pd.api.types.is_bool_dtype(rows[name])
                         for name in numbers):
        hashes = _shared_hashes(rows, numbers)
    else:
        hashes = _row_hashes(rows, numbers)
    if "score_hash" in rows:  # not-scored rows come with theirs
        return [given if given == NOT_SCORED else computed for given, computed in zip(rows["score_hash"], hashes,
                                                                                     strict=True)]
    return hashes


def _digest(row: list) -> str:
    return hashlib.sha1(orjson.dumps(row, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)).hexdigest()


def _shared_hashes(rows: pd.DataFrame, numbers: list[str]) -> list[str]:
    """:func:`score_hashes` of rows whose numbers are integers or booleans: grouped column-wide by their numbers
    and the identity of their gates and reasons objects, one digest per group."""
    columns = [rows[name].to_numpy(dtype=np.int64) for name in numbers]
    columns += [np.fromiter(map(id, rows[name].tolist()), dtype=np.int64, count=len(rows))
                for name in VALUE_COLUMNS[-2:]]
    codes, first = distinct_rows(columns, len(rows))
    values = rows[VALUE_COLUMNS].iloc[first].to_numpy(dtype=object).tolist()
    digests = np.array([_digest(row) for row in values], dtype=object)
    return digests[codes].tolist()


def _row_hashes(rows: pd.DataFrame, numbers: list[str]) -> list[str]:
    """:func:`score_hashes` row by row (rows with the same numbers and the same gates and reasons objects hashed
    once when every number column is of one type)."""
    values = rows[VALUE_COLUMNS].to_numpy(dtype=object).tolist()
    shared = all(rows[name].dtype != object for name in numbers)
    known: dict[tuple, str] = {}
    hashes = []
    for row in values:
        key = (*row[:-2], id(row[-2]), id(row[-1])) if shared else None
        digest = known.get(key) if shared else None
        if digest is None:
            digest = _digest(row)
            if shared:
                known[key] = digest
        hashes.append(digest)
    return hashes


def not_scored_rows(accounts: pd.Series, as_of: pd.Timestamp, model_version: str, run_id: str) -> pd.DataFrame:
    """``score_history`` rows saying the run did not score ``accounts`` (off the target account list)."""
    ids = accounts.astype(str).reset_index(drop=True)
    return pd.DataFrame({
        "account_id": ids, "as_of": as_of, "model_version": model_version,
        **{name: 0 for name in ("firmographic", "engagement", "intent", "total")}, "qualified": False,
        "gates": [{} for _ in range(len(ids))], "reasons": [[NOT_SCORED_REASON] for _ in range(len(ids))],
        "run_id": run_id, "score_hash": NOT_SCORED,
    })


def scored(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` less the not-scored ones (:data:`NOT_SCORED`)."""
    if "score_hash" not in rows or rows.empty:
        return rows
    return rows[rows["score_hash"].ne(NOT_SCORED).to_numpy(dtype=bool)]


def store_changes(
    warehouse: Warehouse, connection: Connection, rows: pd.DataFrame, as_of: pd.Timestamp, model_version: str,
) -> int:
    """Write the rows (``score_history`` columns, one ``as_of`` and model) whose score changed; returns how many.

    Compared with each account's latest row at or before ``as_of``; for a run behind later runs,
    the next later run's value is pinned first for every account this one changes.
    """
    if rows.empty:
        return 0
    rows = rows.assign(score_hash=score_hashes(rows))
    accounts = rows["account_id"].tolist()
    before = latest(warehouse, connection, model_version, as_of, accounts, columns=["score_hash"])
    known = rows.merge(before[["account_id", "score_hash"]].rename(columns={"score_hash": "stored_hash"}),
                       on="account_id", how="left")
    changed = rows[known["stored_hash"].to_numpy() != known["score_hash"].to_numpy()]
    if changed.empty:
        return 0
    _pin_next_run(warehouse, connection, changed["account_id"].tolist(), as_of, model_version)
    replaced = changed[changed["account_id"].isin(set(before.loc[before["as_of"] == as_of, "account_id"]))]
    if len(replaced):  # a run at the same as_of as an earlier one overwrites its rows: log them for undo
        undo.remember(warehouse, connection, str(changed["run_id"].iloc[0]), schema.score_history,
                      replaced[KEY_COLUMNS], only_existing=True)
    columns = [column.name for column in schema.score_history.columns if column.name in changed.columns]
    warehouse.upsert_frame(connection, schema.score_history, changed[columns])
    return len(changed)


def latest(
    warehouse: Warehouse, connection: Connection | None, model_version: str, as_of: pd.Timestamp,
    accounts: list[str] | None = None, columns: list[str] | None = None,
) -> pd.DataFrame:
    """Each account's latest row at or before ``as_of`` under ``model_version`` (of ``accounts`` if given)."""
    table = schema.score_history
    wanted = [table.c[name] for name in ("account_id", "as_of", *(columns or [c.name for c in table.columns
                                                                              if c.name not in KEY_COLUMNS]))]
    ranked = sa.select(*wanted, sa.func.row_number().over(
        partition_by=table.c.account_id, order_by=table.c.as_of.desc()).label("rank"))
    ranked = ranked.where(table.c.model_version == model_version, table.c.as_of <= as_of.to_pydatetime())
    if accounts is not None and len(accounts) <= 20 * _IN_BATCH:
        parts = [_latest(warehouse, connection, ranked.where(table.c.account_id.in_(accounts[i:i + _IN_BATCH])))
                 for i in range(0, len(accounts), _IN_BATCH)]
        return pd.concat(parts, ignore_index=True) if parts else _latest(warehouse, connection, ranked.where(
            sa.false()))
    frame = _latest(warehouse, connection, ranked)
    return frame[frame["account_id"].isin(set(accounts))] if accounts is not None else frame


def count_qualified(warehouse: Warehouse, model_version: str, as_of: pd.Timestamp) -> int:
    """How many accounts pass every hand-off gate as of ``as_of`` (their latest score under the model),
    counted in the database (no row leaves it)."""
    table, later = schema.score_history, schema.score_history.alias("later")
    until = as_of.to_pydatetime()
    # the qualified rows with no later row of their account by ``as_of``: one primary-key seek per
    # qualified row, where ranking every row (a window function) sorts the whole table
    newer = sa.exists().where(later.c.account_id == table.c.account_id, later.c.model_version == model_version,
                              later.c.as_of > table.c.as_of, later.c.as_of <= until)
    query = sa.select(sa.func.count()).select_from(table).where(
        table.c.model_version == model_version, table.c.as_of <= until, table.c.qualified.is_(True), ~newer)
    with warehouse.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def count_qualified_at(warehouse: Warehouse, model_version: str, moments: list[pd.Timestamp]) -> list[int]:
    """:func:`count_qualified` at each of ``moments``, from one read: each qualified row with the moment its
    account's next row replaces it (one seek per qualified row, as one :func:`count_qualified` costs). A row is
    an account's latest at ``t`` from its ``as_of`` until that next row, so the count at ``t`` is the rows begun
    by ``t`` less those replaced by ``t``."""
    if not moments:
        return []
    table, later = schema.score_history, schema.score_history.alias("later")
    replaced = (sa.select(sa.func.min(later.c.as_of))
                .where(later.c.account_id == table.c.account_id, later.c.model_version == model_version,
                       later.c.as_of > table.c.as_of).scalar_subquery())
    query = sa.select(table.c.as_of, replaced).where(
        table.c.model_version == model_version, table.c.as_of <= max(moments).to_pydatetime(),
        table.c.qualified.is_(True))
    with warehouse.engine.connect() as connection:
        rows = connection.execute(query).all()
    begun, ended = (pd.to_datetime(pd.Series([row[number] for row in rows], dtype=object), utc=True,
                                   format="ISO8601") for number in (0, 1))
    begun = np.sort(begun.to_numpy(dtype="datetime64[ns]"))
    ended = np.sort(ended.dropna().to_numpy(dtype="datetime64[ns]"))
    at = np.array([pd.Timestamp(moment).tz_convert("UTC").tz_localize(None).to_datetime64() for moment in moments])
    counts = np.searchsorted(begun, at, side="right") - np.searchsorted(ended, at, side="right")
    return [int(count) for count in counts]


def _latest(warehouse: Warehouse, connection: Connection | None, ranked: sa.Select) -> pd.DataFrame:
    inner = ranked.subquery()
    columns = [column for column in inner.c if column.name != "rank"]
    return warehouse.select_frame(columns, [inner.c.rank == 1], connection)


def _pin_next_run(
    warehouse: Warehouse, connection: Connection, accounts: list[str], as_of: pd.Timestamp, model_version: str,
) -> None:
    """Before changing accounts at ``as_of``, keep the value the next later run reads for them."""
    runs = schema.stage_runs
    following = connection.execute(
        sa.select(sa.func.min(runs.c.as_of)).where(
            runs.c.stage == STAGE, runs.c.model_version == model_version, runs.c.as_of > as_of.to_pydatetime())
    ).scalar()
    if following is None:
        return
    following = pd.Timestamp(following).tz_convert("UTC") if pd.Timestamp(following).tzinfo else \
        pd.Timestamp(following).tz_localize("UTC")
    current = latest(warehouse, connection, model_version, following, accounts)
    needs_pin = current[current["as_of"] <= as_of]  # nothing of theirs between this run and the next
    if needs_pin.empty:
        return
    pinned = needs_pin.assign(as_of=following, model_version=model_version)
    columns = [column.name for column in schema.score_history.columns if column.name in pinned.columns]
    warehouse.upsert_frame(connection, schema.score_history, pinned[columns], update=False)


def score_runs(warehouse: Warehouse) -> pd.DataFrame:
    """The recorded scoring runs, oldest first: as_of, model_version, run_id, accounts (None = all)."""
    runs = schema.stage_runs
    frame = warehouse.select_frame(
        [runs.c.id, runs.c.as_of, runs.c.model_version, runs.c.run_id, runs.c.accounts],
        [runs.c.stage == STAGE])
    return frame.sort_values(["as_of", "id"], kind="stable").reset_index(drop=True)


def current_scores(warehouse: Warehouse, live_accounts: pd.Series | None = None) -> pd.DataFrame:
    """Per account, its score as of the latest run that scored it (its ``as_of`` is that run's).

    The latest run that scored every account decides, unless a later run scored chosen accounts
    (a what-if applied to them). ``live_accounts`` keeps only those ids.
    """
    runs = score_runs(warehouse)
    if runs.empty:
        return warehouse.read_table(schema.score_history).iloc[0:0].drop(columns=["score_hash"], errors="ignore")
    whole = runs[runs["accounts"].isna()]
    chosen = []
    if len(whole):
        last = whole.iloc[-1]
        later = runs.loc[whole.index[-1] + 1:]
    else:
        last, later = None, runs
    overrides = later.explode("accounts").dropna(subset=["accounts"]).drop_duplicates("accounts", keep="last")
    if last is not None:
        rows = latest(warehouse, None, last["model_version"], last["as_of"])
        rows = rows[~rows["account_id"].isin(set(overrides["accounts"]))]
        chosen.append(rows.assign(as_of=last["as_of"], model_version=last["model_version"]))
    for (as_of, version), group in overrides.groupby(["as_of", "model_version"], sort=False):
        rows = latest(warehouse, None, version, as_of, group["accounts"].astype(str).tolist())
        chosen.append(rows.assign(as_of=as_of, model_version=version))
    out = scored(pd.concat(chosen, ignore_index=True))
    if live_accounts is not None:
        out = out[out["account_id"].isin(set(live_accounts))]
    return out.sort_values("account_id").reset_index(drop=True)


def dense(changes: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The change rows expanded to one row per account and recorded run (each run's ``as_of``).

    A change row of an account counts for the runs of its model from its ``as_of`` up to the
    account's next change; a run that scored chosen accounts covers only those. Not-scored rows (off the
    target account list) end the span of the score before them and are left out.
    """
    if changes.empty or runs.empty:
        return changes.iloc[0:0]
    parts = []
    for version, rows in changes.groupby("model_version", sort=False):
        times = runs.loc[runs["model_version"] == version, "as_of"].drop_duplicates().sort_values()
        if times.empty:
            continue
        rows = rows.sort_values(["account_id", "as_of"], kind="stable").reset_index(drop=True)
        starts = rows["as_of"]
        ends = starts.shift(-1).where(rows["account_id"].eq(rows["account_id"].shift(-1)))
        moments = times.to_numpy(dtype="datetime64[ns]")
        lo = np.searchsorted(moments, starts.to_numpy(dtype="datetime64[ns]"), side="left")
        hi = np.where(ends.isna(), len(moments),
                      np.searchsorted(moments, ends.fillna(starts).to_numpy(dtype="datetime64[ns]"), side="left"))
        counts = np.maximum(hi - lo, 0)
        expanded = rows.loc[rows.index.repeat(counts)].reset_index(drop=True)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        expanded["as_of"] = pd.to_datetime(moments[np.repeat(lo, counts) + offsets], utc=True)
        parts.append(expanded)
    if not parts:
        return changes.iloc[0:0]
    out = pd.concat(parts, ignore_index=True)
    chosen = runs.dropna(subset=["accounts"])
    if len(chosen):
        scoped = chosen.explode("accounts")[["as_of", "model_version", "accounts"]]
        whole = runs[runs["accounts"].isna()][["as_of", "model_version"]].drop_duplicates().assign(_whole=True)
        out = out.merge(whole, on=["as_of", "model_version"], how="left")
        out = out.merge(scoped.rename(columns={"accounts": "account_id"}).assign(_chosen=True).drop_duplicates(),
                        on=["as_of", "model_version", "account_id"], how="left")
        out = out[out["_whole"].eq(True) | out["_chosen"].eq(True)].drop(columns=["_whole", "_chosen"])
    return scored(out).reset_index(drop=True)
