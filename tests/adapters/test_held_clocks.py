"""The SLA stage's stored clocks held across a one-pass backfill's steps (``held_clocks``) are the stored ones."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from abm_sla.infra.shards import Shard
from abm_sla.services import backfill, stages
from abm_sla.services.stages import held_clocks
from abm_sla.warehouse import Warehouse, schema
from tests.adapters.test_backfill_engine import EXAMPLE, steps_of
from tests.adapters.test_incremental import MODEL, NOW, POLICY, Crm

KEY = ["account_id", "trigger_at", "clock", "period"]


def by_key(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(KEY).reset_index(drop=True)


def loaded(tmp_path: Path, url: str | None = None) -> Warehouse:
    store = Warehouse(url or f"sqlite:///{tmp_path / 'w.db'}")
    stages.extract_files(store, Crm(tmp_path).arrive(*EXAMPLE["first"]), "load-1", NOW)
    return store


@pytest.mark.parametrize(("dialect", "shards"), [("sqlite", 1), ("sqlite", 2), ("postgres", 2)])
def test_after_every_step_the_held_clocks_are_the_stored_ones(tmp_path: Path, request, dialect: str,
                                                              shards: int) -> None:
    """Hourly steps through the first touches' deadlines and ladders: clocks restamped, written whole, new ones.
    PostgreSQL with two shards only: the sharding is the same code on either dialect (the suite's time)."""
    store = loaded(tmp_path, request.getfixturevalue(f"{dialect}_url"))
    compared: list[int] = []

    def check(as_of: pd.Timestamp, summary: dict) -> None:
        for shard, frame in held_clocks._HELD[store.url].shards.items():
            stored = store.select_frame(list(schema.sla_clocks.columns), [stages.load._in_shard(schema.sla_clocks,
                                                                                                 shard)])
            pd.testing.assert_frame_equal(by_key(frame), by_key(stored), obj=f"clocks held at {as_of}")
            compared.append(len(frame))

    backfill.run(store, steps_of(("hourly", 24 * 4 - 4, 30)), MODEL, POLICY, "one-pass", full=True, shards=shards,
                 on_step=check)
    assert len(compared) >= 20 and max(compared) > 0  # most steps had clocks held
    store.engine.dispose()


def test_held_clocks_are_read_again_after_any_other_write(tmp_path: Path) -> None:
    store = loaded(tmp_path)
    backfill.run(store, steps_of(("daily", 40, 5)), MODEL, POLICY, "one-pass", full=True)
    whole = Shard(0, 1)
    stored = store.read_table(schema.sla_clocks)
    first = stored.iloc[0]
    assert len(stored) > 4
    with held_clocks.clocks_held(store.url):
        pd.testing.assert_frame_equal(held_clocks.read_clocks(store, whole), stored)
        assert whole in held_clocks._HELD[store.url].shards
        table = schema.sla_clocks
        with store.engine.begin() as connection:  # this process: same count, same newest as_of
            changed = connection.execute(table.update().where(
                table.c.account_id == first["account_id"], table.c.trigger_at == first["trigger_at"].to_pydatetime(),
                table.c.clock == first["clock"]).values(status="changed")).rowcount
        assert changed == 1
        assert "changed" in set(held_clocks.read_clocks(store, whole)["status"])
        store.engine.dispose()
        with sqlite3.connect(tmp_path / "w.db") as other:  # another process: a live run stamps a later as_of
            other.execute("UPDATE sla_clocks SET status = 'later', as_of = '2027-01-01 00:00:00.000000' "
                          "WHERE account_id = ? AND clock = ?", (first["account_id"], first["clock"]))
        assert "later" in set(held_clocks.read_clocks(store, whole)["status"])
        assert held_clocks.read_clocks(store, whole, [first["account_id"]])["account_id"].eq(
            first["account_id"]).all()  # of chosen accounts: read, never held
    assert not held_clocks._HELD
    store.engine.dispose()
