"""Storing clocks: a clock unchanged but for ``as_of`` is restamped (a narrow UPDATE), and the stored rows are the
same as writing every row whole."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abm_sla.services.stages import clocks as clocks_stage
from abm_sla.services.stages.clocks import CLOCK_KEY, _store_clocks, stored_unchanged
from abm_sla.warehouse import Warehouse, schema

T0 = pd.Timestamp("2026-03-01T12:00:00Z")
T1 = pd.Timestamp("2026-03-02T12:00:00Z")
TRIGGER = pd.Timestamp("2026-02-27T09:30:00.123456Z")


def clocks(rows: list[tuple]) -> pd.DataFrame:
    """Clock rows ``account_id, clock, status, due_at, met_at, tier`` of one trigger, owner ``u1``."""
    frame = pd.DataFrame(rows, columns=["account_id", "clock", "status", "due_at", "met_at", "tier"])
    for name in ("due_at", "met_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame.assign(trigger_at=TRIGGER, period=0, owner_id="u1")[
        ["account_id", "trigger_at", "clock", "period", "status", "due_at", "met_at", "owner_id", "tier"]]


NO_ESCALATIONS = pd.DataFrame({"account_id": pd.Series(dtype=object), "owner_id": pd.Series(dtype=object)})
FIRST = clocks([
    ("a1", "first_touch", "pending", "2026-03-03T10:00:00Z", None, 1),
    ("a1", "routing_time", "met", "2026-02-27T10:30:00Z", "2026-02-27T09:40:00Z", 1),
    ("a2", "first_touch", "pending", "2026-03-01T15:00:00Z", None, 2),
    ("a3", "first_touch", "missed", "2026-02-28T10:00:00Z", None, 3),
])
SECOND = clocks([
    ("a1", "first_touch", "pending", "2026-03-03T10:00:00Z", None, 1),  # unchanged: restamped
    ("a1", "routing_time", "met", "2026-02-27T10:30:00Z", "2026-02-27T09:40:00Z", 1),  # unchanged
    ("a2", "first_touch", "missed", "2026-03-01T15:00:00Z", None, 2),  # changed status
    ("a3", "first_touch", "missed", "2026-02-28T10:00:00Z", "2026-03-02T08:00:00Z", 3),  # met late
    ("a4", "first_touch", "pending", "2026-03-04T10:00:00Z", None, 1),  # new
])


def stored(store: Warehouse) -> pd.DataFrame:
    return store.read_table(schema.sla_clocks).sort_values(CLOCK_KEY, ignore_index=True)


def store_both_ways(url: str, prepare=None, first: pd.DataFrame = FIRST) -> tuple[pd.DataFrame, pd.DataFrame]:
    """SECOND stored over ``first`` with the clocks read before (restamping) and without (every row whole)."""
    out = []
    for restamp in (True, False):
        store = Warehouse(url)
        with store.engine.begin() as connection:
            connection.execute(schema.sla_clocks.delete())
            _store_clocks(store, connection, first, NO_ESCALATIONS, T0, "")
        before = stored(store)
        if prepare is not None:
            prepare(store)
        with store.engine.begin() as connection:
            _store_clocks(store, connection, SECOND, NO_ESCALATIONS, T1, "", before if restamp else None)
        out.append(stored(store))
        store.engine.dispose()
    return out[0], out[1]


def test_restamping_stores_what_writing_every_row_stores(db_url: str, monkeypatch) -> None:
    restamps = []
    restamp = clocks_stage._restamped

    def counted(warehouse, connection, mqas, as_of, expected) -> bool:
        done = restamp(warehouse, connection, mqas, as_of, expected)
        restamps.append((mqas["account_id"].tolist(), expected, done))
        return done

    monkeypatch.setattr(clocks_stage, "_restamped", counted)
    restamped, whole = store_both_ways(db_url)
    assert (["a1"], 2, True) in restamps  # a1's two unchanged clocks: one UPDATE, not two rows written whole
    pd.testing.assert_frame_equal(restamped, whole)
    assert restamped["as_of"].eq(T1).all() and len(restamped) == 5
    assert restamped.loc[restamped["account_id"].eq("a3"), "met_at"].notna().all()


def test_a_stored_clock_the_run_does_not_evaluate_keeps_its_as_of(db_url: str) -> None:
    other = clocks([("a1", "status_update", "met", "2026-03-01T10:00:00Z", "2026-02-28T10:00:00Z", 1)])
    restamped, whole = store_both_ways(db_url, first=pd.concat([FIRST, other], ignore_index=True))
    pd.testing.assert_frame_equal(restamped, whole)
    assert restamped.loc[restamped["clock"].eq("status_update"), "as_of"].tolist() == [T0]


def test_a_clock_deleted_after_it_was_read_is_written_whole(db_url: str) -> None:
    def delete_a1(store: Warehouse) -> None:
        with store.engine.begin() as connection:
            connection.execute(schema.sla_clocks.delete().where(schema.sla_clocks.c.clock == "routing_time"))

    restamped, whole = store_both_ways(db_url, delete_a1)
    pd.testing.assert_frame_equal(restamped, whole)
    assert len(restamped) == 5


def test_unchanged_means_equal_as_stored() -> None:
    base = clocks([("a1", "first_touch", "pending", "2026-03-03T10:00:00.000001Z", None, 1)])
    same = stored_unchanged

    def variant(**values) -> pd.DataFrame:
        return base.assign(**values)

    assert same(base, base, CLOCK_KEY).tolist() == [True]
    assert same(base, variant(tier=1.0), CLOCK_KEY).tolist() == [True]  # the same number, another type
    assert same(base, variant(as_of=T1), CLOCK_KEY).tolist() == [True]  # as_of is what is restamped
    assert same(base, variant(due_at=base["due_at"].dt.as_unit("us")), CLOCK_KEY).tolist() == [True]
    nanosecond = variant(due_at=base["due_at"] + pd.Timedelta(nanoseconds=1))
    assert same(nanosecond, base, CLOCK_KEY).tolist() == [True]  # stored to the microsecond
    assert same(base, variant(due_at=base["due_at"] + pd.Timedelta(microseconds=1)), CLOCK_KEY).tolist() == [False]
    assert same(base, variant(met_at=base["due_at"]), CLOCK_KEY).tolist() == [False]  # missing vs a moment
    assert same(base, variant(owner_id=None), CLOCK_KEY).tolist() == [False]
    assert same(base, variant(status="missed"), CLOCK_KEY).tolist() == [False]
    assert same(base, variant(tier=2), CLOCK_KEY).tolist() == [False]
    assert same(base, variant(period=1), CLOCK_KEY).tolist() == [False]  # another key: not stored
    assert same(base, base.drop(columns="tier"), CLOCK_KEY).tolist() == [False]  # a column not read
    assert same(base, base.iloc[:0], CLOCK_KEY).tolist() == [False]


@pytest.mark.parametrize("missing", [None, np.nan, pd.NaT])
def test_missing_equals_missing(missing) -> None:
    base = clocks([("a1", "first_touch", "pending", "2026-03-03T10:00:00Z", None, 1)])
    assert stored_unchanged(base, base.assign(met_at=missing), CLOCK_KEY).tolist() == [True]
