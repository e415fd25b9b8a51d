"""The reads of incremental runs: by account seeks, and the guard after a run under another configuration."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from abm_sla.infra.shards import Shard, shard_key
from abm_sla.services import incremental
from abm_sla.warehouse import Warehouse

AS_OF = pd.Timestamp("2026-03-31T12:00:00Z")
AT = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)


def record(store: Warehouse, run_id: str, version: str, as_of: pd.Timestamp) -> None:
    planned = incremental.Plan("evaluate-sla", as_of, version, 0)
    with store.engine.begin() as connection:
        incremental.record(connection, planned, run_id, AT, {})


def test_a_run_under_another_policy_after_the_reference_is_seen(sqlite_url: str) -> None:
    store = Warehouse(sqlite_url)
    record(store, "r1", "policy-a", AS_OF)
    planned = incremental.plan(store, "evaluate-sla", AS_OF + pd.Timedelta(hours=1), "policy-a")
    assert planned.reference_run_id == "r1"
    assert not incremental.other_config_since(store, planned)
    record(store, "r2", "policy-b", AS_OF + pd.Timedelta(minutes=30))
    assert incremental.other_config_since(store, planned)
    record(store, "r3", "policy-a", AS_OF + pd.Timedelta(minutes=45))  # a newer reference of the same policy
    assert not incremental.other_config_since(store, incremental.plan(
        store, "evaluate-sla", AS_OF + pd.Timedelta(hours=1), "policy-a"))


def test_reads_of_chosen_accounts_match_the_shard_read(sqlite_url: str) -> None:
    store = Warehouse(sqlite_url)
    ids = [f"A{n}" for n in range(40)]
    rows = pd.DataFrame({"contact_id": [f"C{n}" for n in range(80)], "account_id": ids * 2, "title": "VP"})
    with store.engine.begin() as connection:
        store.store_frames(connection, "files", "contacts", rows)
        store.store_frames(connection, "files", "accounts", pd.DataFrame({"account_id": ids, "name": ids}))
    shard = Shard(1, 2)
    chosen = ids[::3]
    mine = [account for account in chosen if shard.low <= shard_key(account) < shard.high]
    assert mine and len(mine) < len(chosen)  # the choice crosses shards: only this shard's come back
    for kind in ("contacts", "accounts"):
        whole = store.read_kind(kind, shard=shard)
        expected = whole[whole["account_id"].isin(chosen)].sort_values(whole.columns[0], ignore_index=True)
        got = store.read_kind(kind, shard=shard, accounts=chosen).sort_values(whole.columns[0], ignore_index=True)
        pd.testing.assert_frame_equal(got, expected)
        assert set(got["account_id"]) == set(mine)


def test_signals_that_move_no_score_recompute_no_account(sqlite_url: str) -> None:
    """An hour later, only the account with a signal a rule counts is rescored: a low-scoring intent row
    and a sales call (no rule, no gate) entering the window leave theirs out."""
    from abm_sla.services import stages
    from abm_sla.services.config_files import load_model

    store, model, soon = Warehouse(sqlite_url), load_model(), AS_OF + pd.Timedelta(minutes=30)
    ids = ["A1", "A2", "A3"]
    with store.engine.begin() as connection:
        store.store_frames(connection, "files", "accounts", pd.DataFrame({"account_id": ids, "name": ids}))
        store.store_frames(connection, "files", "intent_signals", pd.DataFrame({
            "intent_id": ["I1", "I2"], "account_id": ["A1", "A2"], "topic": "crm", "score": [40.0, 85.0],
            "observed_at": soon}))
        store.store_frames(connection, "files", "activities", pd.DataFrame({
            "activity_id": ["X1"], "account_id": ["A3"], "type": ["call"], "occurred_at": [soon]}))
    stages.score(store, AS_OF, model, None, "first")
    later = stages.score(store, AS_OF + pd.Timedelta(hours=1), model, None, "later")
    assert later["mode"] == "incremental"
    assert later["accounts_recomputed"] == 1 and later["scores_changed"] == 1  # A2's intent topic
