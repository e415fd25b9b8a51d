"""Bulk writes and reads: ``Warehouse.upsert_frame`` (driver values bound column-wide) stores exactly what
``Warehouse.upsert`` of the same rows as dicts stores, and a read gives the values SQLAlchemy's rows give, on
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from abm_sla.warehouse import Warehouse, schema
from abm_sla.warehouse.store import records

T0 = pd.Timestamp("2026-03-01T12:00:00.123456Z")


def scores(total: int) -> pd.DataFrame:
    """Score-history rows with every kind of value the table takes: numpy integers and booleans, JSON lists of
    dicts (one empty), a missing run id, a microsecond timestamp."""
    return pd.DataFrame({
        "account_id": ["a1", "a2", "a3"],
        "as_of": pd.Series([T0, T0, T0 + pd.Timedelta(days=1)]),
        "model_version": "v1",
        "firmographic": np.array([10, 0, 5], dtype=np.int64),
        "engagement": np.array([20, 0, 5], dtype=np.int64),
        "intent": np.array([total, 0, 5], dtype=np.int64),
        "total": np.array([30 + total, 0, 15], dtype=np.int64),
        "qualified": np.array([True, False, False]),
        "gates": [{"gate_total": True, "gate_categories": False}, {}, {"gate_total": False}],
        "reasons": [[{"category": "intent", "rule": "surge", "count": 2, "points": total}], [],
                    [{"category": "firmographic", "rule": "industry: saas", "count": 1, "points": 5}]],
        "run_id": ["r1", None, np.nan],
        "score_hash": ["h1", "h2", "h3"],
    })


def clocks(status: str) -> pd.DataFrame:
    """Clock rows with missing timestamps (NaT), a missing tier (NaN in a float column) and aware datetimes in an
    object column."""
    return pd.DataFrame({
        "account_id": ["a1", "a2"], "trigger_at": [T0, T0], "clock": ["first_touch", "routing_time"],
        "period": [0, 0], "status": [status, "met"],
        "due_at": pd.to_datetime([T0 + pd.Timedelta(hours=4), pd.NaT], utc=True),
        "met_at": pd.Series([None, dt.datetime(2026, 3, 1, 13, tzinfo=dt.UTC)], dtype=object),
        "owner_id": ["u1", None], "tier": [1.0, np.nan], "as_of": T0, "shard": [3, 4],
    })


def stored(store: Warehouse, table: sa.Table) -> list[tuple]:
    """The table's rows as the driver hands them over (SQLite: the stored text), in key order."""
    keys = ", ".join(column.name for column in table.primary_key.columns)
    with store.engine.connect() as connection:
        return connection.exec_driver_sql(f"SELECT * FROM {table.name} ORDER BY {keys}").all()


def both_ways(store: Warehouse, table: sa.Table, frames: list[tuple[pd.DataFrame, bool]]) -> tuple[list, list]:
    """The table after writing ``frames`` (each with its ``update`` flag) in turn through ``upsert`` of dicts,
    then, emptied, through ``upsert_frame``."""
    out = []
    for by_frame in (False, True):
        with store.engine.begin() as connection:
            connection.execute(table.delete())
        for frame, update in frames:
            with store.engine.begin() as connection:
                if by_frame:
                    store.upsert_frame(connection, table, frame, update=update)
                else:
                    store.upsert(connection, table, records(frame), update=update)
        out.append(stored(store, table))
    return out[0], out[1]


def test_score_rows_are_stored_alike_inserted_updated_and_kept(db_url: str) -> None:
    store = Warehouse(db_url)
    by_dicts, by_frame = both_ways(store, schema.score_history, [(scores(7), True), (scores(9), True),
                                                                 (scores(11), False)])
    assert by_frame == by_dicts
    assert len(by_frame) == 3
    read = store.read_table(schema.score_history).sort_values("account_id", ignore_index=True)
    assert read.loc[0, "total"] == 39 and read.loc[0, "reasons"][0]["points"] == 9  # updated, then kept
    assert read.loc[0, "as_of"] == T0 and read.loc[1, "reasons"] == [] and pd.isna(read.loc[1, "run_id"])


def test_rows_sharing_one_reasons_list_or_gates_dict_store_each_row_alike(db_url: str) -> None:
    """Scored rows of one profile share their reasons and gates objects (serialized once per object)."""
    frame = scores(7)
    reasons, gates = frame.at[0, "reasons"], frame.at[0, "gates"]
    frame["reasons"] = pd.Series([reasons, [], reasons], dtype=object)
    frame["gates"] = pd.Series([gates, gates, {"gate_total": False}], dtype=object)
    by_dicts, by_frame = both_ways(Warehouse(db_url), schema.score_history, [(frame, True)])
    assert by_frame == by_dicts


def test_clock_rows_with_missing_values_are_stored_alike(db_url: str) -> None:
    store = Warehouse(db_url)
    by_dicts, by_frame = both_ways(store, schema.sla_clocks, [(clocks("pending"), True), (clocks("missed"), True)])
    assert by_frame == by_dicts
    read = store.read_table(schema.sla_clocks).sort_values("account_id", ignore_index=True)
    assert read["status"].tolist() == ["missed", "met"] and pd.isna(read.loc[1, "due_at"])
    assert read.loc[1, "met_at"] == pd.Timestamp("2026-03-01T13:00:00Z") and pd.isna(read.loc[1, "tier"])


@pytest.mark.parametrize("moment", [pd.Timestamp("2026-03-01T12:00:00"), dt.datetime(2026, 3, 1, 12)])
def test_a_naive_timestamp_is_refused_and_nothing_is_written(db_url: str, moment) -> None:
    store = Warehouse(db_url)
    frame = clocks("pending").assign(due_at=pd.Series([moment, None], dtype=object))
    with pytest.raises(ValueError, match="due_at: abm-sla stores UTC-aware timestamps only"), \
            store.engine.begin() as connection:
        store.upsert_frame(connection, schema.sla_clocks, frame)
    assert stored(store, schema.sla_clocks) == []


def test_a_read_gives_the_values_sqlalchemy_gives_booleans_and_json_included(db_url: str) -> None:
    store = Warehouse(db_url)
    mqas = pd.DataFrame({
        "account_id": ["a1", "a2", "a3"], "trigger_at": [T0, T0, T0], "firmographic": 1, "engagement": 2,
        "intent": 3, "total": 6, "reasons": [[{"rule": "surge", "points": 3}], [], None], "model_version": "v1",
        "tier": [1, None, 3], "pricing_visit": [True, None, False], "routed_at": [T0, pd.NaT, T0]})
    with store.engine.begin() as connection:
        connection.execute(schema.mqas.delete())
        store.upsert_frame(connection, schema.mqas, mqas)
    read = store.read_table(schema.mqas).sort_values("account_id", ignore_index=True)
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(*schema.mqas.columns).order_by(schema.mqas.c.account_id)).fetchall()
    expected = pd.DataFrame(rows, columns=[column.name for column in schema.mqas.columns])
    for name in ("trigger_at", "routed_at", "ended_at", "reassigned_at", "writeback_done_at"):
        expected[name] = pd.to_datetime(expected[name], utc=True).astype("datetime64[ns, UTC]")
    pd.testing.assert_frame_equal(read, expected)
    assert [value if value is None else type(value) for value in read["pricing_visit"]] == [bool, None, bool]
    assert read["pricing_visit"].tolist() == [True, None, False] and read["reasons"].tolist()[1:] == [[], None]


def test_update_frame_sets_the_other_columns_of_the_matching_rows_and_counts_them(db_url: str) -> None:
    store = Warehouse(db_url)
    table = schema.sla_clocks
    with store.engine.begin() as connection:
        store.upsert_frame(connection, table, clocks("pending"))
    later = T0 + pd.Timedelta(hours=5)
    keys = pd.DataFrame({"account_id": ["a1", "a2", "zz"], "trigger_at": [T0, T0, T0]}).assign(as_of=later)
    with store.engine.begin() as connection:
        assert store.update_frame(connection, table, keys, ["account_id", "trigger_at"]) == 2  # "zz": no row
    read = store.read_table(table).sort_values("account_id", ignore_index=True)
    assert read["as_of"].eq(later).all() and read["status"].tolist() == ["pending", "met"]
    with store.engine.begin() as connection:
        assert store.update_frame(connection, table, keys.iloc[2:], ["account_id", "trigger_at"]) == 0
