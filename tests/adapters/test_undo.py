"""A future ``as of`` is refused unless forced, and any run can be undone to the state before it.

Runs are called directly (``tasks.common.direct_calls``: the flows' body without a Prefect server),
on a small synthetic export folder; after an undo and the next run, all four exports must equal a
warehouse that never saw the undone run.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from abm_sla.errors import AbmSlaError
from abm_sla.infra.settings import database_url_env
from abm_sla.services import demo, exports, synthetic
from abm_sla.services.stages import ROUND_ROBIN_KEY, check_not_future, utc_now
from abm_sla.warehouse import Warehouse, schema, undo
from tasks.common import direct_calls

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    crm = synthetic.generate_crm(n_accounts=120, start=demo.DEMO_START, days=demo.DEMO_DAYS, seed=11)
    return synthetic.write_export_folder(crm, tmp_path_factory.mktemp("undo") / "crm", dirty=True)


@pytest.fixture(scope="module")
def unowned(folder: Path, tmp_path_factory) -> Path:
    """The export with every account's owner blank, so every MQA takes a round-robin turn."""
    out = tmp_path_factory.mktemp("unowned") / "crm"
    shutil.copytree(folder, out)
    accounts = pd.read_csv(out / "accounts.csv", dtype=str, keep_default_na=False)
    accounts.assign(owner_id="").to_csv(out / "accounts.csv", index=False)
    return out


def run(url: str, folder: Path, as_of: str, **options) -> dict:
    from flows.pipeline import run_once

    with database_url_env(url), direct_calls():
        return run_once(url, as_of, "files", str(folder), **options)


def all_exports(url: str) -> dict[str, pd.DataFrame]:
    store = Warehouse(url)
    return {kind: exports._with_iso_timestamps(make(store)).reset_index(drop=True)
            for kind, make in exports.EXPORTS.items()}


def assert_same_exports(url: str, clean_url: str) -> None:
    got, want = all_exports(url), all_exports(clean_url)
    for kind in exports.EXPORTS:
        pd.testing.assert_frame_equal(got[kind], want[kind], check_dtype=False, obj=kind)


def test_future_as_of_refused_beyond_tolerance_unless_forced() -> None:
    tolerance = dt.timedelta(minutes=10)
    check_not_future(pd.Timestamp(NOW + tolerance), NOW, tolerance)  # at the boundary: accepted
    with pytest.raises(AbmSlaError, match=r"in the future.*--allow-future"):
        check_not_future(pd.Timestamp(NOW + tolerance + dt.timedelta(seconds=1)), NOW, tolerance)
    check_not_future(pd.Timestamp("2200-01-01T00:00:00Z"), NOW, tolerance, allow_future=True)


def test_tolerance_is_a_setting(monkeypatch) -> None:
    from abm_sla.infra import settings

    monkeypatch.setenv(settings.FUTURE_TOLERANCE_ENV, "90")
    assert settings.future_tolerance() == dt.timedelta(minutes=90)
    monkeypatch.setenv(settings.FUTURE_TOLERANCE_ENV, "ten")
    with pytest.raises(AbmSlaError, match="not a number of minutes"):
        settings.future_tolerance()


def test_future_run_is_refused_before_it_writes(tmp_path: Path, folder: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    with pytest.raises(AbmSlaError, match="in the future"):
        run(url, folder, "2200-01-01T00:00:00Z")
    assert Warehouse(url).read_table(schema.runs).empty


def test_undo_of_a_future_run_restores_the_warehouse(db_url: str, tmp_path: Path, folder: Path) -> None:
    """The issue's case: 03-31, 2200 (forced), undo 2200, 04-01 == a warehouse that never saw 2200."""
    url, clean = db_url, f"sqlite:///{tmp_path / 'clean.db'}"
    run(url, folder, "2026-03-31T12:00:00Z")
    future = run(url, folder, "2200-01-01T00:00:00Z", allow_future=True)
    store = Warehouse(url)
    assert (store.read_table(schema.sla_clocks)["status"] == "missed").sum() > 0
    done = undo.undo_run(store, future["run_id"], utc_now())
    assert [summary["run_id"] for summary in done] == [future["run_id"]]
    run(url, folder, "2026-04-01T12:00:00Z")
    for as_of in ("2026-03-31T12:00:00Z", "2026-04-01T12:00:00Z"):
        run(clean, folder, as_of)
    assert_same_exports(url, clean)
    runs = undo.list_runs(store).set_index("run_id")
    assert runs.loc[future["run_id"], "status"] == "undone"
    assert store.read_table(schema.undo_log).query("run_id == @future['run_id']").empty
    assert not (store.read_table(schema.stage_runs)["run_id"] == future["run_id"]).any()


def test_undo_removes_fired_mqas_and_gives_back_their_round_robin_turns(tmp_path: Path, unowned: Path) -> None:
    folder = unowned
    url, clean = f"sqlite:///{tmp_path / 'w.db'}", f"sqlite:///{tmp_path / 'clean.db'}"
    run(url, folder, "2026-02-01T12:00:00Z")
    store = Warehouse(url)
    turn_before = store.get_state(ROUND_ROBIN_KEY)
    later = run(url, folder, "2026-03-31T12:00:00Z")
    assert later["handoff"]["mqas_fired"] > 0 and store.get_state(ROUND_ROBIN_KEY) != turn_before
    [done] = undo.undo_run(store, later["run_id"], utc_now())
    assert done["mqas_removed"] == later["handoff"]["mqas_fired"]
    assert store.get_state(ROUND_ROBIN_KEY) == turn_before
    run(clean, folder, "2026-02-01T12:00:00Z")
    assert_same_exports(url, clean)  # the state before the undone run, to the row
    run(url, folder, "2026-03-31T12:00:00Z")  # and the next runs carry on as if it never happened
    run(clean, folder, "2026-03-31T12:00:00Z")
    assert_same_exports(url, clean)
    assert store.get_state(ROUND_ROBIN_KEY) == Warehouse(clean).get_state(ROUND_ROBIN_KEY)


def test_a_run_followed_by_later_runs_is_undone_only_with_them(tmp_path: Path, folder: Path) -> None:
    url, clean = f"sqlite:///{tmp_path / 'w.db'}", f"sqlite:///{tmp_path / 'clean.db'}"
    run(url, folder, "2026-03-01T12:00:00Z")
    middle = run(url, folder, "2026-03-15T12:00:00Z")
    last = run(url, folder, "2026-03-31T12:00:00Z")
    store = Warehouse(url)
    with pytest.raises(AbmSlaError, match=rf"followed by 1 run.*{last['run_id']}.*--and-later"):
        undo.undo_run(store, middle["run_id"], utc_now())
    done = undo.undo_run(store, middle["run_id"], utc_now(), and_later=True)
    assert [summary["run_id"] for summary in done] == [last["run_id"], middle["run_id"]]
    assert undo.undo_run(store, middle["run_id"], utc_now()) == [{"run_id": middle["run_id"],
                                                                  "status": "undone already"}]
    run(clean, folder, "2026-03-01T12:00:00Z")
    assert_same_exports(url, clean)
    with pytest.raises(AbmSlaError, match="no run 'nope'"):
        undo.undo_run(store, "nope", utc_now())


def test_a_rerun_at_the_same_as_of_restores_the_scores_it_overwrote(tmp_path: Path, folder: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    run(url, folder, "2026-03-31T12:00:00Z")
    store = Warehouse(url)
    before = all_exports(url)
    with store.engine.begin() as connection:  # a changed account, so the re-run overwrites its score row
        connection.execute(schema.accounts.update().where(schema.accounts.c.source_id.in_(
            sa.select(schema.accounts.c.source_id).limit(5).scalar_subquery())).values(employees=0, row_hash=0))
        store.journal(connection, "test", "accounts", pd.Series(["*"]), NOW)
    again = run(url, folder, "2026-03-31T12:00:00Z", load=False, full=True)
    assert again["scoring"]["scores_changed"] > 0
    undo.undo_run(store, again["run_id"], utc_now())
    pd.testing.assert_frame_equal(all_exports(url)["scores"], before["scores"])


def test_only_the_newest_runs_keep_their_undo_log(tmp_path: Path, folder: Path, monkeypatch) -> None:
    monkeypatch.setenv(undo.KEEP_RUNS_ENV, "1")
    url = f"sqlite:///{tmp_path / 'w.db'}"
    first = run(url, folder, "2026-03-01T12:00:00Z")
    second = run(url, folder, "2026-03-31T12:00:00Z")
    store = Warehouse(url)
    assert set(store.read_table(schema.undo_log)["run_id"]) == {second["run_id"]}
    with pytest.raises(AbmSlaError, match=r"older than the last 1 runs, whose undo logs are kept"):
        undo.undo_run(store, first["run_id"], utc_now(), and_later=True)
    undo.undo_run(store, second["run_id"], utc_now())


def test_a_run_as_of_a_moment_with_microseconds_is_undone(db_url: str, folder: Path) -> None:
    """A scheduled run is "as of now", to the microsecond; its undo (and the CLI's and the flow's, the
    same function) restores the state before it, whichever runs with whole seconds came before."""
    run(db_url, folder, "2026-03-01T12:00:00Z")
    scheduled = run(db_url, folder, "2026-03-31T19:40:20.405851+00:00")
    store = Warehouse(db_url)
    [done] = undo.undo_run(store, scheduled["run_id"], utc_now())
    assert done["run_id"] == scheduled["run_id"] and done["as_of"].startswith("2026-03-31 19:40:20.405851")
    assert undo.list_runs(store).set_index("run_id").loc[scheduled["run_id"], "status"] == "undone"
    assert store.read_table(schema.undo_log).query("run_id == @scheduled['run_id']").empty


def warehouse_state(url: str) -> dict[str, pd.DataFrame]:
    """Every table of the warehouse, sorted, for checking that nothing changed."""
    store, out = Warehouse(url), {}
    for table in schema.metadata.sorted_tables:
        if table.name == "alembic_version":
            continue
        frame = store.read_table(table).astype(str)
        out[table.name] = frame.sort_values(list(frame.columns), ignore_index=True) if len(frame.columns) else frame
    return out


def test_undo_and_later_is_one_transaction(db_url: str, folder: Path, monkeypatch) -> None:
    """A failure while undoing the target, after the later run was undone, leaves every table as before."""
    run(db_url, folder, "2026-03-01T12:00:00Z")
    middle = run(db_url, folder, "2026-03-15T12:00:00.5Z")
    last = run(db_url, folder, "2026-03-31T12:00:00Z")
    before = warehouse_state(db_url)
    real, undone = undo._delete_own_rows, []

    def failing_on_the_target(warehouse, connection, run_id):
        undone.append(run_id)
        if run_id == middle["run_id"]:
            raise RuntimeError("disk full")
        return real(warehouse, connection, run_id)

    monkeypatch.setattr(undo, "_delete_own_rows", failing_on_the_target)
    with pytest.raises(RuntimeError, match="disk full"):
        undo.undo_run(Warehouse(db_url), middle["run_id"], utc_now(), and_later=True)
    assert undone == [last["run_id"], middle["run_id"]]
    after = warehouse_state(db_url)
    for name, frame in before.items():
        pd.testing.assert_frame_equal(after[name], frame, obj=name)


def test_keys_logged_once_are_known_as_logged_inside_the_block_only(tmp_path: Path) -> None:
    """``unlogged``: a backfill's step inserts only the escalations whose keys no earlier step logged."""
    store = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    at = pd.Timestamp("2026-03-02T09:00Z")
    rows = pd.DataFrame({"account_id": ["A", "B", "C"], "trigger_at": [at, at, at], "clock": "first_touch",
                         "level": [1, 1, 2], "to_user_id": ["M1", "M1", "M2"], "owner_id": ["U1", "U2", ""]})
    assert undo.unlogged("run", schema.escalations, rows).tolist() == [True, True, True]
    with undo.logged_once("run"), store.engine.begin() as connection:
        undo.remember(store, connection, "run", schema.escalations, rows.iloc[[0, 2]])
        assert undo.unlogged("run", schema.escalations, rows).tolist() == [False, True, False]
        assert undo.unlogged("other", schema.escalations, rows).tolist() == [True, True, True]
        moved = rows.assign(trigger_at=at + pd.Timedelta(microseconds=1))  # another key
        assert undo.unlogged("run", schema.escalations, moved).tolist() == [True, True, True]
        # the same key values of another table (mqas and reassignments share their key's columns) are its own
        undo.remember(store, connection, "run", schema.mqas, rows.iloc[[1]][["account_id", "trigger_at"]])
        assert undo.unlogged("run", schema.mqas, rows).tolist() == [True, False, True]
        assert undo.unlogged("run", schema.reassignments, rows).tolist() == [True, True, True]
    assert undo.unlogged("run", schema.escalations, rows).tolist() == [True, True, True]


def test_the_undo_log_s_timestamps_are_each_moment_s_isoformat() -> None:
    moments = pd.Series(pd.to_datetime(["2026-04-01T00:05:00Z", None, "2026-04-01T00:05:00.123456Z",
                                        "1969-12-31T23:59:59.000001Z", "2026-04-01T00:05:00.1Z"], utc=True,
                                       format="ISO8601"))
    nanoseconds = pd.Series(pd.to_datetime(["2026-04-01T00:05:00.123456789Z"], utc=True))
    for values in (moments, nanoseconds, moments.astype(object)):
        assert undo._iso_texts(values).tolist() == [None if pd.isna(moment) else moment.isoformat()
                                                    for moment in values]


def test_columns_logged_in_one_entry_are_put_back_after_whole_rows_and_once_per_key(db_url: str) -> None:
    """``remember_columns``: in a backfill's block a row logged whole is not logged again by columns; a row whose
    columns were logged and that is logged whole later gets back both its other columns and its first stamp."""
    store, table = Warehouse(db_url), schema.tier_move_recommendations
    t0, t1, t2 = (pd.Timestamp("2026-03-02T00:00Z") + pd.Timedelta(days=n) for n in range(3))
    ledger = pd.DataFrame({"account_id": ["A", "B", "C"], "recommended_at": [t0, t0, t0], "rule": "promote",
                           "from_tier": "Tier 3", "proposed_tier": "Tier 2", "reason": None, "decision": "pending",
                           "decided_at": pd.NaT, "decision_note": None, "evaluated_at": t0, "run_id": "r0"})
    with store.engine.begin() as connection:
        store.upsert_frame(connection, table, ledger)
    original = store.read_table(table).sort_values("account_id", ignore_index=True)
    store.start_run("bf", "backfill", t1.to_pydatetime(), NOW)

    def stamp(connection, keys: list[str], at: pd.Timestamp) -> int:
        rows = store.read_table(table).query("account_id in @keys")
        logged = undo.remember_columns(connection, "bf", table,
                                       rows[["account_id", "recommended_at", "evaluated_at", "run_id"]])
        connection.execute(table.update().where(table.c.account_id.in_(keys)).values(evaluated_at=at, run_id="bf"))
        return logged

    def change(connection, key: str, **values) -> None:
        undo.remember(store, connection, "bf", table, ledger.loc[ledger["account_id"].eq(key), _KEYS])
        connection.execute(table.update().where(table.c.account_id == key).values(**values))

    with undo.logged_once("bf"):
        with store.engine.begin() as connection:  # step 1: A's reason changed (logged whole), then all stamped
            change(connection, "A", reason="edited")
            assert stamp(connection, ["A", "B", "C"], t1) == 2  # A's state before is logged already
        with store.engine.begin() as connection:  # step 2: B decided after its stamp; A and C stamped again
            change(connection, "B", decision="accepted", decided_at=t1)
            assert stamp(connection, ["A", "C"], t2) == 0
    log = store.read_table(schema.undo_log).query("run_id == 'bf'")
    assert log["table_name"].value_counts().to_dict() == {table.name: 2, table.name + undo.COLUMNS_ENTRY: 1}
    store.finish_run("bf", "completed", NOW, {}, None)
    summary = undo.undo_run(store, "bf", NOW)[0]
    assert summary["tier_move_recommendations_restored"] == 3
    pd.testing.assert_frame_equal(store.read_table(table).sort_values("account_id", ignore_index=True), original)


_KEYS = ["account_id", "recommended_at"]
