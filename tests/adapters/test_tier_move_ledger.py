"""The tier-move ledger in the warehouse: recorded by a run, once per account, decided from the CRM, undoable."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from abm_sla.domain import scorecard as sc
from abm_sla.errors import WarehouseError
from abm_sla.services import stages
from abm_sla.services.config_files import load_model, load_policy
from abm_sla.services.stages.tier_moves import _stamp_pending
from abm_sla.warehouse import Warehouse, schema, undo
from abm_sla.warehouse.view import CrmView
from tests.unit.test_scorecard import sample_data

KINDS = ("accounts", "contacts", "activities", "opportunities", "users")


def test_a_run_records_moves_once_and_reads_sales_decision_from_the_crm(sqlite_url):
    store, data = Warehouse(sqlite_url), sample_data()
    accounts = data.accounts.assign(updated_at=pd.Timestamp("2025-06-01", tz="UTC"))
    with store.engine.begin() as connection:
        for kind in KINDS:
            rows = accounts if kind == "accounts" else getattr(data, kind)
            store.store_frames(connection, "files", kind, rows.dropna(axis=1, how="all"))
    policy, model = load_policy(), load_model()
    first = pd.Timestamp("2026-03-09", tz="UTC")
    assert stages.record_tier_moves(store, first, policy, model, "r1")["tier_moves_recommended"] == 4
    same_day = stages.record_tier_moves(store, first + pd.Timedelta(hours=6), policy, model, "r2")
    assert same_day == {"tier_moves_recommended": 0, "tier_moves_decided": 0}  # once a UTC day
    assert store.get_state(stages.TIER_MOVES_KEY) == first.isoformat()
    again = stages.record_tier_moves(store, first + pd.Timedelta(days=1), policy, model, "r2")
    assert again["tier_moves_recommended"] == again["tier_moves_decided"] == 0  # once, until decided
    assert store.get_state(stages.TIER_MOVES_KEY) == (first + pd.Timedelta(days=1)).isoformat()
    promoted = accounts.assign(tier=accounts["tier"].where(accounts["account_id"] != "A6", "Tier 1"),
                               updated_at=accounts["updated_at"].where(accounts["account_id"] != "A6",
                                                                       pd.Timestamp("2026-03-11", tz="UTC")))
    with store.engine.begin() as connection:
        store.store_frames(connection, "files", "accounts", promoted.dropna(axis=1, how="all"))
    now = dt.datetime.now(dt.UTC)
    store.start_run("r3", "run", pd.Timestamp("2026-03-12", tz="UTC"), now)
    decided = stages.record_tier_moves(store, pd.Timestamp("2026-03-12", tz="UTC"), policy, model, "r3")
    store.finish_run("r3", "completed", now, {}, None)
    assert decided["tier_moves_decided"] == 1
    ledger = store.read_table(schema.tier_move_recommendations).set_index("account_id")
    assert ledger.loc["A6", "decision"] == "accepted"
    assert ledger.loc["A6", "decided_at"] == pd.Timestamp("2026-03-11", tz="UTC")
    assert (ledger.drop(index="A6")["decision"] == "pending").all()
    undo.undo_run(store, "r3", dt.datetime.now(dt.UTC))
    assert store.read_table(schema.tier_move_recommendations).set_index("account_id").loc["A6", "decision"] == \
        "pending"


def test_the_ledger_reads_only_the_window_yet_finds_the_moves_all_the_activities_give(db_url):
    """The daily ledger reads facts the database computes (first and last activity per account, the window's
    possible buying signals, its engaged contacts), not every activity: they equal the pure ones, and the moves
    are those of the whole history, deleted and later rows left out."""
    store, data = Warehouse(db_url), sample_data()
    as_of = pd.Timestamp("2026-03-09", tz="UTC")
    acts = data.activities
    later = acts.head(3).assign(activity_id=lambda f: "late-" + f["activity_id"],
                                occurred_at=as_of + pd.Timedelta(days=2))
    gone = acts.head(2).assign(activity_id=lambda f: "gone-" + f["activity_id"],
                               occurred_at=pd.Timestamp("2026-03-08", tz="UTC"))
    pages = acts.head(2).assign(activity_id=["shout", "blog"], type="web_visit",
                                occurred_at=as_of - pd.Timedelta(days=1),
                                url=["https://ACME.com/Pricing?x=1", "https://acme.com/blog/price"])
    acts = pd.concat([acts, pages], ignore_index=True)
    with store.engine.begin() as connection:
        for kind in KINDS:
            rows = pd.concat([acts, later, gone]) if kind == "activities" else getattr(data, kind)
            store.store_frames(connection, "files", kind, rows.dropna(axis=1, how="all"))
        store.mark_deleted(connection, "files", "activities", gone["activity_id"], dt.datetime.now(dt.UTC))
    extent = store.activity_extent(as_of.to_pydatetime()).set_index("account_id")
    expected_extent = sc.activity_extent(acts[acts["occurred_at"] <= as_of])
    pd.testing.assert_frame_equal(extent.sort_index(), expected_extent.sort_index(), check_names=False)
    window = pd.Timedelta(days=30)
    facts, expected_facts = CrmView(store).activity_facts(as_of, window), sc.activity_facts(acts, as_of, window)
    assert set(facts.buying["url"].dropna()) == {"https://acme.com/pricing", "https://ACME.com/Pricing?x=1",
                                                  "https://acme.com/demo?x=1"} & set(expected_facts.buying["url"])
    pd.testing.assert_series_equal(sc.buying_signal_days(facts.buying).sort_index(),
                                   sc.buying_signal_days(expected_facts.buying).sort_index())
    assert facts.touch_pairs.sort_values(["account_id", "contact_id"]).values.tolist() == \
        expected_facts.touch_pairs.sort_values(["account_id", "contact_id"]).values.tolist()
    policy, model = load_policy(), load_model()
    data = sc.SlaData.of(**{**vars(data), "activities": acts})
    expected = sc.tier_moves(data, as_of, policy, model.decision_maker_pattern)
    assert len(expected) > 0
    stages.record_tier_moves(store, as_of, policy, model, "r1")
    ledger = store.read_table(schema.tier_move_recommendations).sort_values("account_id")
    assert ledger["account_id"].tolist() == sorted(expected["account_id"])
    assert ledger["rule"].tolist() == expected.sort_values("account_id")["rule"].tolist()


def test_a_run_stamps_the_pending_recommendations_it_evaluated_and_fails_on_a_ledger_changed_under_it(sqlite_url):
    """The pending rows a run evaluates get its ``evaluated_at`` and run id in one statement; the rows it counted
    must be the rows stamped (a ledger changed since it was read rolls the run's write back)."""
    store, data = Warehouse(sqlite_url), sample_data()
    with store.engine.begin() as connection:
        for kind in KINDS:
            rows = data.accounts.assign(updated_at=pd.Timestamp("2025-06-01", tz="UTC")) if kind == "accounts" \
                else getattr(data, kind)
            store.store_frames(connection, "files", kind, rows.dropna(axis=1, how="all"))
    policy, model = load_policy(), load_model()
    first = pd.Timestamp("2026-03-09", tz="UTC")
    stages.record_tier_moves(store, first, policy, model, "r1")
    stages.record_tier_moves(store, first + pd.Timedelta(days=1), policy, model, "r2")
    ledger = store.read_table(schema.tier_move_recommendations)
    assert len(ledger) == 4 and ledger["decision"].eq("pending").all()
    assert ledger["evaluated_at"].eq(first + pd.Timedelta(days=1)).all() and ledger["run_id"].eq("r2").all()
    later, keys = first + pd.Timedelta(days=2), ledger[["account_id", "recommended_at"]]
    with pytest.raises(WarehouseError, match="changed while it was advanced"), store.engine.begin() as connection:
        _stamp_pending(store, connection, later, "r3", keys.head(3))
    assert store.read_table(schema.tier_move_recommendations)["run_id"].eq("r2").all()  # rolled back
    now = dt.datetime.now(dt.UTC)
    store.start_run("r3", "run", later.to_pydatetime(), now)
    with store.engine.begin() as connection:
        _stamp_pending(store, connection, later, "r3", keys)
        _stamp_pending(store, connection, later, "r3", keys.head(0))  # nothing counted: no statement
    store.finish_run("r3", "completed", now, {}, None)
    stamped = store.read_table(schema.tier_move_recommendations)
    assert stamped["evaluated_at"].eq(later).all() and stamped["run_id"].eq("r3").all()
    log = store.read_table(schema.undo_log).query("run_id == 'r3'")
    assert log["table_name"].tolist() == ["tier_move_recommendations#columns"]  # one entry for the four stamps
    undo.undo_run(store, "r3", now)
    pd.testing.assert_frame_equal(store.read_table(schema.tier_move_recommendations), ledger)
