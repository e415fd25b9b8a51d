"""The warehouse adapter: migrations on first use, set-based idempotent upserts, same results on both dialects."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from abm_sla.errors import WarehouseError
from abm_sla.warehouse import Warehouse, schema
from abm_sla.warehouse.quarantine import MAX_BIND_PARAMS
from abm_sla.warehouse.store import HEAD_REVISION, MIGRATIONS_INI


def activity_rows(n: int, day: int = 1) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "activity_id": [f"X{i}" for i in range(n)],
            "account_id": [f"A{i % 7}" for i in range(n)],
            "type": "web_visit",
            "occurred_at": pd.Timestamp(f"2026-01-{day:02d}T12:00:00Z") + pd.to_timedelta(range(n), unit="s"),
            "url": None,
        }
    )


def test_first_use_applies_every_migration(db_url: str) -> None:
    store = Warehouse(db_url)
    with store.engine.connect() as connection:
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        tables = set(sa.inspect(connection).get_table_names())
    head = ScriptDirectory.from_config(Config(str(MIGRATIONS_INI))).get_current_head()
    assert version == head and head != "0001"
    assert head == HEAD_REVISION, "store.HEAD_REVISION must name the newest migration (a warehouse at it is skipped)"
    assert set(schema.metadata.tables) <= tables
    Warehouse(db_url)  # a second start finds nothing to do


def test_upserts_are_batched_idempotent_and_update_by_key(db_url: str) -> None:
    store = Warehouse(db_url)
    big = activity_rows(MAX_BIND_PARAMS // 5 + 123)  # more rows than one batch holds
    with store.engine.begin() as connection:
        store.store_frames(connection, "files", "activities", big)
        store.store_frames(connection, "files", "activities", big)
        store.store_frames(connection, "files", "activities", big.head(3).assign(type="webinar"))
    stored = store.read_kind("activities")
    assert len(stored) == len(big)
    assert (stored.set_index("activity_id").loc[["X0", "X1", "X2"], "type"] == "webinar").all()
    assert stored["occurred_at"].dt.tz is not None


def test_same_source_id_from_two_sources_are_two_rows(db_url: str) -> None:
    store = Warehouse(db_url)
    with store.engine.begin() as connection:
        store.store_frames(connection, "salesforce", "activities", activity_rows(2))
        store.store_frames(connection, "hubspot", "activities", activity_rows(2))
    assert len(store.read_kind("activities")) == 4


def test_soft_deletes_are_filtered_on_read(db_url: str) -> None:
    store = Warehouse(db_url)
    with store.engine.begin() as connection:
        store.store_frames(connection, "files", "activities", activity_rows(3))
        store.mark_deleted(connection, "files", "activities", ["X1"], dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    assert sorted(store.read_kind("activities")["activity_id"]) == ["X0", "X2"]


def test_sqlite_and_postgresql_store_the_same_rows(sqlite_url: str, postgres_url: str) -> None:
    results = []
    for url in (sqlite_url, postgres_url):
        store = Warehouse(url)
        with store.engine.begin() as connection:
            store.store_frames(connection, "files", "activities", activity_rows(50))
            store.store_frames(connection, "files", "activities", activity_rows(10, day=2).assign(type="call"))
        results.append(store.read_kind("activities").sort_values("activity_id").reset_index(drop=True))
    pd.testing.assert_frame_equal(results[0], results[1])


def test_unreachable_database_is_one_clear_line() -> None:
    with pytest.raises(WarehouseError) as raised:
        Warehouse("postgresql+psycopg://nobody:secret-pw@127.0.0.1:1/none?connect_timeout=2")
    message = str(raised.value)
    assert message.startswith("cannot reach the database") and "\n" not in message
    assert "secret-pw" not in message


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        schema.UtcDateTime().process_bind_param(dt.datetime(2026, 1, 1), sa.create_engine("sqlite://").dialect)


def _first_use(url: str, barrier, results) -> None:
    barrier.wait()
    try:
        Warehouse(url)
        results.put("ok")
    except Exception as error:  # the test reports what went wrong in the child
        results.put(f"{type(error).__name__}: {error}")


def test_runs_starting_together_on_a_new_warehouse_migrate_it_once(db_url):
    """Four processes open a warehouse that has no schema yet at the same moment: all of them work."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    racers = [context.Process(target=_first_use, args=(db_url, barrier, results)) for _ in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=120)
    assert [results.get(timeout=10) for _ in racers] == ["ok"] * 4
    assert Warehouse(db_url).read_kind("accounts").empty


def test_a_warehouse_at_0005_upgrades_its_clocks_to_the_period_key(db_url: str) -> None:
    from alembic import command

    engine = sa.create_engine(db_url)
    config = Config(str(MIGRATIONS_INI))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005_quarantine_resolved")
        connection.execute(sa.text("INSERT INTO sla_clocks (account_id, trigger_at, clock, status) "
                                   "VALUES ('A', '2026-03-02 08:00:00', 'first_touch', 'met')"))
    store = Warehouse(db_url)  # migrates to head
    assert store.read_table(schema.sla_clocks)[["clock", "period"]].values.tolist() == [["first_touch", 0]]
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        assert inspector.get_pk_constraint("sla_clocks")["constrained_columns"][-1] == "period"
        assert "reason" in {column["name"] for column in inspector.get_columns("status_changes")}


@pytest.mark.parametrize("most", [50_000, 2])
def test_the_journal_records_a_row_per_account_or_per_shard_of_a_page(
    db_url: str, most: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page's changed accounts are journaled one row each, in order (at most ``JOURNAL_MAX_ACCOUNTS``), else one row
    per shard they fall in; users: one row for the whole CRM. Kind, source and the time are on every row."""
    from abm_sla.infra.shards import shard_key
    from abm_sla.warehouse import journal

    monkeypatch.setattr(journal, "JOURNAL_MAX_ACCOUNTS", most)
    warehouse = Warehouse(db_url)
    at = dt.datetime(2026, 3, 1, 9, 30, 15, tzinfo=dt.timezone(dt.timedelta(hours=2)))  # whole seconds: ".000000"
    accounts = pd.Series(["A3", "A1", "Ä2"], index=[7, 3, 5])
    with warehouse.engine.begin() as connection:
        warehouse.journal(connection, "files", "activities", accounts, at)
        warehouse.journal(connection, "files", "users", None, at)
        warehouse.journal(connection, "files", "contacts", pd.Series([], dtype=object), at)
    table = schema.change_journal
    with warehouse.engine.connect() as connection:
        rows = connection.execute(sa.select(table.c.kind, table.c.source, table.c.shard, table.c.account_id,
                                            table.c.recorded_at).order_by(table.c.seq)).all()
    utc = at.astimezone(dt.UTC)
    if most == 2:
        per_account = [("activities", "files", key, None, utc) for key in sorted({shard_key(a) for a in accounts})]
    else:
        per_account = [("activities", "files", shard_key(account), account, utc) for account in accounts]
    assert [tuple(row) for row in rows] == [*per_account, ("users", "files", None, None, utc)]
    assert all(isinstance(row.shard, int) or row.shard is None for row in rows)
    if warehouse.dialect == "sqlite":  # stored as SQLAlchemy stores a time (text compared as text: same format)
        with warehouse.engine.connect() as connection:
            stored = set(connection.exec_driver_sql("SELECT recorded_at FROM change_journal").scalars())
        assert stored == {"2026-03-01 07:30:15.000000"}


def test_one_connection_stores_rows_of_a_kind_given_with_other_columns(db_url: str) -> None:
    """The merge's staging table holds every column: a second write of a kind on the same connection with a
    column the first lacked is stored, not refused."""
    store = Warehouse(db_url)
    logged = pd.Timestamp("2026-01-03T08:00:00Z")
    later = activity_rows(2).assign(activity_id=["Y0", "Y1"], logged_at=logged)
    with store.engine.begin() as connection:
        store.store_frames(connection, "files", "activities", activity_rows(2))
        store.store_frames(connection, "files", "activities", later)
    stored = store.read_table(schema.CRM_TABLES["activities"]).set_index("source_id")
    assert len(stored) == 4 and stored.loc["Y1", "logged_at"] == logged and pd.isna(stored.loc["X1", "logged_at"])
