"""The score history stored as changes: same answers as a row per account per run, old warehouses migrated."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from abm_sla.services import exports, stages
from abm_sla.services.config_files import load_model
from abm_sla.warehouse import Warehouse, schema, score_history
from abm_sla.warehouse.store import MIGRATIONS_INI, records
from tests.adapters.test_incremental import NOW, START, Crm

RUN_HOURS = [24 * 10, 24 * 10 + 1, 24 * 11, 24 * 12, 24 * 40]


def loaded(db_url: str, tmp_path) -> Warehouse:
    crm = Crm(tmp_path / "crm")
    folder = crm.arrive([("pricing", "A1", 24 * 9, True), ("webinar", "A1", 24 * 10 + 12, True),
                         ("intent", "A1", 24 * 10 + 20, False), ("email_click", "A2", 24 * 11 + 2, False),
                         ("form_submit", "A3", 24 * 9 + 5, True), ("rejected", "A1", 24 * 11, False)], None)
    store = Warehouse(db_url)
    stages.extract_files(store, folder, "load", NOW)
    return store


def test_a_run_stores_only_the_scores_that_changed(sqlite_url, tmp_path):
    store = loaded(sqlite_url, tmp_path)
    for hours in RUN_HOURS:
        stages.score(store, START + pd.Timedelta(hours=hours), load_model(), None, f"run-{hours}", full=True)
    history = store.read_table(schema.score_history)
    assert len(history) < 5 * len(RUN_HOURS)  # five accounts, five runs: far fewer rows than 25
    dense = score_history.dense(history, score_history.score_runs(store))
    assert len(dense) == 5 * len(RUN_HOURS)  # back to a row per account and run
    last = dense[dense["as_of"] == dense["as_of"].max()].set_index("account_id")["total"]
    exported = exports.scores(store).set_index("account_id")["total"]
    pd.testing.assert_series_equal(last.sort_index(), exported.sort_index(), check_names=False, check_dtype=False)


def test_a_backfill_behind_later_runs_keeps_what_they_read(sqlite_url, tmp_path):
    store = loaded(sqlite_url, tmp_path)
    model = load_model()
    later, earlier = START + pd.Timedelta(hours=24 * 12), START + pd.Timedelta(hours=24 * 10 + 14)
    stages.score(store, START + pd.Timedelta(hours=24 * 5), model, None, "early", full=True)
    stages.score(store, later, model, None, "later", full=True)
    before = score_history.dense(store.read_table(schema.score_history), score_history.score_runs(store))
    stages.score(store, earlier, model, None, "backfill", full=True)  # changes A1 between the two runs
    after = score_history.dense(store.read_table(schema.score_history), score_history.score_runs(store))
    keep = ["account_id", "as_of", "total"]
    unchanged = after[after["as_of"] != earlier][keep].sort_values(keep).reset_index(drop=True)
    pd.testing.assert_frame_equal(unchanged, before[keep].sort_values(keep).reset_index(drop=True))
    assert (after[after["as_of"] == earlier]["total"].to_numpy() > 0).any()


def test_an_old_warehouse_keeps_its_answers_after_the_migration(sqlite_url, tmp_path):
    """A warehouse at the previous revision with a row per account per run: same exports and backtest rows."""
    dense_store = loaded(f"sqlite:///{tmp_path / 'dense.db'}", tmp_path)
    model = load_model()
    for hours in RUN_HOURS:
        stages.score(dense_store, START + pd.Timedelta(hours=hours), model, None, f"run-{hours}", full=True)
    expected_scores = exports.scores(dense_store)
    expected_dense = score_history.dense(dense_store.read_table(schema.score_history),
                                         score_history.score_runs(dense_store))
    old = Warehouse(sqlite_url, migrate=False)
    config = Config(str(MIGRATIONS_INI))
    with old.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002_load_fingerprints")
    columns = ["account_id", "as_of", "model_version", "firmographic", "engagement", "intent", "total", "qualified",
               "gates", "reasons", "run_id"]
    rows = expected_dense.assign(run_id=expected_dense["as_of"].map(lambda t: f"run-{t.isoformat()}"))[columns]
    old_history = sa.Table("score_history", sa.MetaData(), *(sa.Column(c.name, c.type) for c in
                                                            schema.score_history.columns if c.name in columns))
    runs = pd.DataFrame({"run_id": rows["run_id"].unique()})
    with old.engine.begin() as connection:
        connection.execute(old_history.insert(), records(rows))
        connection.execute(schema.runs.insert(), [{"run_id": run, "kind": "run", "status": "completed",
                                                   "started_at": NOW} for run in runs["run_id"]])
        for kind, table in (("accounts", schema.accounts), ("users", schema.users)):
            frame = dense_store.read_table(table).drop(columns=["shard"], errors="ignore")
            connection.execute(sa.Table(kind, sa.MetaData(), *(sa.Column(c.name, c.type) for c in table.columns
                                                               if c.name != "shard")).insert(),
                               records(frame))
    migrated = Warehouse(sqlite_url)  # applies 0003: change-only history, runs recorded
    history = migrated.read_table(schema.score_history)
    assert len(history) < len(rows)
    assert history["score_hash"].notna().all()
    pd.testing.assert_frame_equal(exports.scores(migrated), expected_scores, check_dtype=False)
    keep = ["account_id", "as_of", "total", "qualified"]
    got = score_history.dense(history, score_history.score_runs(migrated))[keep]
    pd.testing.assert_frame_equal(got.sort_values(keep).reset_index(drop=True),
                                  expected_dense[keep].sort_values(keep).reset_index(drop=True), check_dtype=False)
    again = stages.score(migrated, START + pd.Timedelta(hours=24 * 41), model, None, "after")
    assert again["mode"] == "full" and again["accounts_scored"] == 5  # legacy runs are no reference


def test_qualified_counts_of_many_moments_at_once_are_each_moment_s_count(db_url):
    """``count_qualified_at`` (a one-pass backfill's steps) equals ``count_qualified`` at each moment: accounts
    qualifying and dropping out, rows exactly at a moment, another model's rows, moments before any row."""
    store = Warehouse(db_url)
    day = pd.Timedelta(days=1)
    history = [("A", 1, True), ("A", 3, False), ("A", 5, True), ("B", 2, True), ("C", 2, False), ("C", 4, True),
               ("C", 6, True), ("D", 3, True), ("E", 4, False)]
    rows = pd.DataFrame([{"account_id": account, "as_of": START + day * days, "model_version": version,
                          "firmographic": 0, "engagement": 0, "intent": 0, "total": 0, "qualified": qualified,
                          "gates": {}, "reasons": [], "run_id": "r", "score_hash": f"{account}{days}{version}"}
                         for account, days, qualified in history for version in ("v1", "v2")
                         if version == "v1" or account in "AD"])
    rows.loc[rows["model_version"].eq("v2"), "qualified"] = ~rows.loc[rows["model_version"].eq("v2"), "qualified"]
    with store.engine.begin() as connection:
        store.upsert_frame(connection, schema.score_history, rows)
    moments = [START + day * days for days in (0, 1, 2, 2.5, 3, 4, 5, 6, 9)]
    for version in ("v1", "v2", "v3"):
        each = [score_history.count_qualified(store, version, moment) for moment in moments]
        assert score_history.count_qualified_at(store, version, moments) == each
    assert [score_history.count_qualified(store, "v1", moment) for moment in moments] == [0, 1, 2, 2, 2, 3, 4, 4, 4]


def test_rows_sharing_gates_and_reasons_objects_hash_as_their_own_copies():
    """Scored rows of one profile share their gates and reasons objects: hashed once, each row still gets the
    hash of its own values (numbers included)."""
    import copy

    gates, reasons = {"gate_total": True}, [{"rule": "webinar", "points": 10}]
    rows = pd.DataFrame({"firmographic": [10, 10, 10, 0], "engagement": [5, 5, 6, 0], "intent": [0, 0, 0, 0],
                         "total": [15, 15, 16, 0], "qualified": [False, False, False, False],
                         "gates": [gates, gates, gates, {}], "reasons": [reasons, reasons, reasons, []]})
    copies = rows.assign(gates=[copy.deepcopy(g) for g in rows["gates"]],
                         reasons=[copy.deepcopy(r) for r in rows["reasons"]])
    hashes = score_history.score_hashes(rows)
    assert hashes == score_history.score_hashes(copies)
    assert hashes[0] == hashes[1] and len(set(hashes)) == 3


def test_grouped_hashes_equal_each_rows_own_hash():
    """Rows grouped column-wide by their numbers and shared objects hash as each row alone: equal numbers with
    other objects, other numbers with the same objects, booleans, and a score not scored (its given hash kept)."""
    import hashlib

    import orjson

    gates, other, reasons = {"gate_total": True}, {"gate_total": False}, [{"rule": "webinar", "points": 10}]
    rows = pd.DataFrame({"firmographic": [10, 10, 10, 10, 0], "engagement": [5, 5, 5, 6, 0], "intent": [0] * 5,
                         "total": [15, 15, 15, 16, 0], "qualified": [True, True, False, True, False],
                         "gates": [gates, other, gates, gates, {}], "reasons": [reasons, reasons, reasons, reasons, []],
                         "score_hash": ["", "", "", "", score_history.NOT_SCORED]})

    def alone(row: list) -> str:
        return hashlib.sha1(orjson.dumps(row, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)).hexdigest()

    expected = [alone(row) for row in rows[score_history.VALUE_COLUMNS].to_numpy(dtype=object).tolist()]
    assert score_history.score_hashes(rows) == [*expected[:4], score_history.NOT_SCORED]
    assert len(set(expected[:4])) == 4
    floats = rows.astype({"total": "float64"})  # not integers: hashed row by row, as before
    assert score_history.score_hashes(floats)[:4] == [alone(row) for row in floats[score_history.VALUE_COLUMNS]
                                                       .to_numpy(dtype=object).tolist()][:4]
