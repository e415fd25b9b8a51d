"""Loads that cost what they carry: indexes built after a bulk first load, small pages and folders that look
up only their own keys (stored hashes, known accounts) instead of reading whole tables."""

from __future__ import annotations

import datetime as dt
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from abm_sla.crm.files.source import FilesSource
from abm_sla.crm.sync import sync_source
from abm_sla.errors import SourceError
from abm_sla.warehouse import Warehouse, schema, store
from tests.adapters.test_files_source import crm_rows, write

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
ACCOUNTS = """
    id,name,domain,updated_at
    A1,Acme,acme.com,2026-01-01T00:00:00Z
    A2,Beta,beta.io,2026-01-01T00:00:00Z
    A3,Gamma,gamma.de,2026-01-01T00:00:00Z
    """
ACTIVITIES = """
    id,account_id,type,occurred_at,url
    X1,A1,web_visit,2026-02-10T10:00:00Z,https://acme.com/pricing
    X2,A2,email_open,2026-02-10T11:00:00Z,
    X3,A9,call,2026-02-10T12:00:00Z,
    X4,A3,webinar,2026-02-11T10:00:00Z,
    X5,A1,form_submit,2026-02-12T10:00:00Z,
    """


def index_names(url: str) -> set[str]:
    inspector = sa.inspect(sa.create_engine(url))
    return {index["name"] for table in schema.CRM_TABLES for index in inspector.get_indexes(table)}


def schema_indexes() -> set[str]:
    return {index.name for table in schema.CRM_TABLES.values() for index in table.indexes}


def dropped_indexes(warehouse: Warehouse) -> list[str]:
    """The ``DROP INDEX`` statements ``warehouse`` runs from now on."""
    seen: list[str] = []
    sa.event.listen(warehouse.engine, "before_cursor_execute",
                    lambda _c, _cur, statement, *_rest: seen.append(statement) if "DROP INDEX" in statement else None)
    return seen


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    write(first, "accounts.csv", ACCOUNTS)
    write(first, "activities.csv", ACTIVITIES)
    write(second, "accounts.csv", """
        id,name,domain,updated_at
        A1,Acme Inc,acme.com,2026-02-01T00:00:00Z
        A2,Beta old,beta.io,2025-06-01T00:00:00Z
        A4,Delta,delta.io,2026-02-01T00:00:00Z
        """)
    write(second, "activities.csv", """
        id,account_id,type,occurred_at,url
        X1,A1,web_visit,2026-02-10T10:00:00Z,https://acme.com/pricing
        X2,A2,email_click,2026-02-10T11:00:00Z,
        X6,A4,webinar,2026-02-13T10:00:00Z,
        X7,A9,call,2026-02-13T10:00:00Z,
        """)
    return first, second


def test_a_bulk_first_load_builds_the_indexes_after_its_rows_and_later_loads_still_merge(
    folders: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the bulk threshold at 1 row, the first load of each file drops the table's secondary indexes and
    builds them after its last page: every index is there afterwards, and both loads give exactly what a load
    maintaining its indexes row by row gives (newer updated_at wins, quarantine, written counts)."""
    first, second = folders
    plain = Warehouse(f"sqlite:///{tmp_path / 'plain.db'}")
    plain_summaries = [sync_source(plain, FilesSource(folder, chunk_rows=2), "run", NOW) for folder in folders]
    monkeypatch.setattr(store, "DEFER_INDEXES_MIN_ROWS", 1)
    url = f"sqlite:///{tmp_path / 'bulk.db'}"
    bulk = Warehouse(url)
    drops = dropped_indexes(bulk)
    summary = sync_source(bulk, FilesSource(first, chunk_rows=2), "run", NOW)
    assert any("ix_activities_account_time" in statement for statement in drops)
    assert any("ix_accounts_domain" in statement for statement in drops)
    assert index_names(url) == schema_indexes()
    drops.clear()
    summary_again = sync_source(bulk, FilesSource(second, chunk_rows=2), "run", NOW)
    assert drops == []  # the tables hold rows now: indexes maintained as rows come
    assert index_names(url) == schema_indexes()
    assert [summary, summary_again] == plain_summaries
    for kind, frame in crm_rows(plain).items():
        pd.testing.assert_frame_equal(crm_rows(bulk)[kind], frame)


def test_indexes_dropped_by_a_load_that_fails_are_built_again(
    folders: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source failing after the first page of a bulk load: the sync builds the dropped indexes before it
    raises; and a warehouse left without them (a process killed) gets them back when it is next opened."""
    monkeypatch.setattr(store, "DEFER_INDEXES_MIN_ROWS", 1)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    warehouse = Warehouse(url)

    class Failing:
        name = "files"

        def pages(self, cursors):
            yield next(iter(FilesSource(folders[0], chunk_rows=2).pages(cursors)))
            raise SourceError("the export went away")

    drops = dropped_indexes(warehouse)
    with pytest.raises(SourceError):
        sync_source(warehouse, Failing(), "run", NOW)
    assert drops and index_names(url) == schema_indexes()
    with warehouse.engine.begin() as connection:
        connection.exec_driver_sql("DROP INDEX ix_activities_account_time")
    Warehouse(url)
    assert index_names(url) == schema_indexes()


def activity_rows(ids: list[str], accounts: list[str], types: list[str]) -> pd.DataFrame:
    return pd.DataFrame({
        "activity_id": ids, "account_id": accounts, "type": types,
        "occurred_at": pd.Timestamp("2026-02-10T10:00:00Z"), "contact_id": None, "owner_id": None, "url": None,
        "subject": None,
    })


@pytest.mark.parametrize("seek", [True, False])
def test_a_page_skips_exactly_the_rows_stored_identically(
    db_url: str, seek: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Identical live rows are skipped; a changed one, a new one and a soft-deleted identical one are written.
    A small page seeks its own keys (the table's hashes are never read whole); a large page reads them once."""
    if not seek:
        monkeypatch.setattr(store, "MAX_ROWS_SEEK", 0)
    warehouse = Warehouse(db_url)
    stored = activity_rows(["X1", "X2", "X3", "X4"], ["A1", "A1", "A2", "A3"], ["call"] * 4)
    with warehouse.engine.begin() as connection:
        assert warehouse.store_frames(connection, "files", "activities", stored) == 4
        warehouse.mark_deleted(connection, "files", "activities", ["X4"], NOW)
    page = activity_rows(["X1", "X2", "X3", "X4", "X5"], ["A1", "A1", "A2", "A3", "A3"],
                         ["call", "email_open", "call", "call", "call"])
    with warehouse.engine.begin() as connection:
        written = warehouse.write_frames(connection, "files", "activities", page, skip_key="activities.csv:1")
    assert sorted(written) == ["A1", "A3", "A3"]  # X2 changed, X4 undeleted, X5 new
    assert (warehouse._stored_hashes is None) == seek
    live = warehouse.read_kind("activities").set_index("activity_id")
    assert live.loc["X2", "type"] == "email_open" and set(live.index) == {"X1", "X2", "X3", "X4", "X5"}


def test_a_small_folder_looks_up_its_accounts_by_key(
    folders: tuple[Path, Path], tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An incremental folder without intent rows checks its references by primary key: the stored accounts are
    not read whole, rows of stored accounts load, rows of unknown ones are quarantined as before."""
    warehouse = Warehouse(db_url)
    sync_source(warehouse, FilesSource(folders[0]), "first", NOW)
    small = tmp_path / "small"
    write(small, "accounts.csv", "id,name,domain,updated_at\nA4,Delta,delta.io,2026-02-01T00:00:00Z\n")
    write(small, "activities.csv", """
        id,account_id,type,occurred_at,url
        N1,A1,web_visit,2026-02-20T10:00:00Z,
        N2,A4,webinar,2026-02-20T10:00:00Z,
        N3,A8,call,2026-02-20T10:00:00Z,
        N4,A2,call,2026-02-20T10:00:00Z,
        """)
    real = Warehouse.read_kind

    def no_whole_accounts(self, kind, **options):
        assert not (kind == "accounts" and options.get("accounts") is None), "every stored account was read"
        return real(self, kind, **options)

    monkeypatch.setattr(Warehouse, "read_kind", no_whole_accounts)
    summary = sync_source(warehouse, FilesSource(small), "small", NOW)
    assert summary["activities.csv"]["written"] == 3 and summary["activities.csv"]["quarantined"] == 1
    table = schema.quarantine
    with warehouse.engine.connect() as connection:
        reasons = connection.execute(sa.select(table.c.reason).where(table.c.first_run_id == "small")).scalars().all()
    assert reasons == ["unknown account A8"]


def test_postgresql_tables_a_load_changed_much_are_analyzed_after_it(postgres_url, tmp_path, monkeypatch):
    """After a sync, PostgreSQL has statistics of what it loaded (its planner would otherwise plan the next runs'
    queries from none when autovacuum is off or has not come by yet); a table analyzed since it last grew is not
    analyzed again."""
    monkeypatch.setattr(store, "ANALYZE_MIN_PAGES", 2)
    rows = "\n".join(f"X{n},A{1 + n % 3},email_open,2026-02-10T10:00:00Z," for n in range(300))
    folder = tmp_path / "export"
    write(folder, "accounts.csv", ACCOUNTS)
    write(folder, "activities.csv", textwrap.dedent(ACTIVITIES).lstrip() + rows + "\n")
    warehouse = Warehouse(postgres_url)
    sync_source(warehouse, FilesSource(folder), "load", NOW)
    query = sa.text("SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
                    "AND last_analyze IS NOT NULL")
    with warehouse.engine.connect() as connection:
        assert "activities" in set(connection.execute(query).scalars())
    assert warehouse.analyze_changed_tables() == []  # nothing changed since


@pytest.fixture
def two_urls(db_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two empty warehouses of ``db_url``'s dialect: ``db_url`` and another file (SQLite) or schema (PostgreSQL)."""
    if db_url.startswith("sqlite"):
        yield db_url, f"sqlite:///{tmp_path / 'other.db'}"
        return
    base, _, _ = db_url.partition("?options=")
    name = f"abm_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    yield db_url, f"{base}?options=-csearch_path%3D{name}"
    with admin.begin() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
    admin.dispose()


def stored_in_order(warehouse: Warehouse) -> dict[str, list[tuple]]:
    """Every CRM table's rows with their hash, in the order they were inserted on SQLite (rowid), by key on
    PostgreSQL; and the change journal in order."""
    order = "rowid, *" if warehouse.dialect == "sqlite" else "*"
    out = {}
    with warehouse.engine.connect() as connection:
        for kind, table in schema.CRM_TABLES.items():
            by = "rowid" if warehouse.dialect == "sqlite" else "source, source_id"
            out[kind] = [tuple(row) for row in connection.exec_driver_sql(
                f"SELECT {order} FROM {table.name} ORDER BY {by}")]
        out["journal"] = [tuple(row) for row in connection.exec_driver_sql(
            "SELECT seq, kind, source, shard, account_id FROM change_journal ORDER BY seq")]
    return out


def merges(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tables merged through a staging table from now on (SQLite and PostgreSQL)."""
    seen: list[str] = []
    staged, copied = Warehouse._staged_merge, store._copy_merge

    def staged_merge(self, connection, table, *args, **kwargs):
        seen.append(table.name)
        return staged(self, connection, table, *args, **kwargs)

    def copy_merge(connection, table, *args, **kwargs):
        seen.append(table.name)
        return copied(connection, table, *args, **kwargs)

    monkeypatch.setattr(Warehouse, "_staged_merge", staged_merge)
    monkeypatch.setattr(store, "_copy_merge", copy_merge)
    return seen


UNSORTED_ACTIVITIES = """
    id,account_id,type,occurred_at,url
    X5,A1,form_submit,2026-02-12T10:00:00Z,
    X1,A1,web_visit,2026-02-10T10:00:00Z,https://acme.com/pricing
    X4,A3,webinar,2026-02-11T10:00:00Z,
    X2,A2,email_open,2026-02-10T11:00:00Z,
    X3,A9,call,2026-02-10T12:00:00Z,
    X1,A2,call,2026-02-10T12:00:00Z,
    """


def test_a_load_into_empty_tables_stores_its_rows_as_the_merge_does(
    folders: tuple[Path, Path], two_urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file's load that begins with its table empty puts its pages straight into the table (no staging
    table; SQLite: in key order): the same rows, row hashes, rowids, journal, quarantine and counts as the
    staging table and merge give; the next folder's loads (tables not empty) merge as before."""
    write(folders[0], "activities.csv", UNSORTED_ACTIVITIES)  # ids out of order, one repeated in a later page
    merged_tables = merges(monkeypatch)
    direct = Warehouse(two_urls[0])
    direct_summaries = [sync_source(direct, FilesSource(folders[0], chunk_rows=2), "run", NOW)]
    assert merged_tables == []
    direct_summaries.append(sync_source(direct, FilesSource(folders[1], chunk_rows=2), "run", NOW))
    assert {"accounts", "activities"} <= set(merged_tables)  # the tables hold rows now
    monkeypatch.setattr(Warehouse, "_loads_into_empty", lambda *_args: False)
    merged = Warehouse(two_urls[1])
    merged_summaries = [sync_source(merged, FilesSource(folder, chunk_rows=2), "run", NOW) for folder in folders]
    assert direct_summaries == merged_summaries
    assert direct_summaries[0]["activities.csv"]["quarantined"] == 2  # X3: unknown account; the second X1
    assert stored_in_order(direct) == stored_in_order(merged)
    for kind, frame in crm_rows(merged).items():
        pd.testing.assert_frame_equal(crm_rows(direct)[kind], frame)


class WriterBetweenPages:
    """The export folder's pages, with another writer (its own connections) storing ``rows`` of a file's table
    after its first page."""

    name = "files"

    def __init__(self, folder: Path, url: str, kind: str, rows: pd.DataFrame) -> None:
        self.source, self.warehouse = FilesSource(folder, chunk_rows=2), Warehouse(url)
        self.kind, self.rows = kind, rows

    def pages(self, cursors):
        for number, page in enumerate(self.source.pages(cursors)):
            yield page
            if page.kind == self.kind and number and self.rows is not None:
                with self.warehouse.engine.begin() as connection:
                    self.warehouse.store_frames(connection, "files", self.kind, self.rows)
                self.rows = None


def test_a_row_another_writer_stored_between_two_pages_is_merged_not_refused(
    folders: tuple[Path, Path], two_urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table was empty at the file's first page, but another writer stored a row of its next page
    in between: that page is merged (the stored row updated where it differs), as it is without the
    straight insert, and nothing of the page is lost or stored twice."""
    other = activity_rows(["X4", "X9"], ["A3", "A3"], ["call", "call"])
    results = []
    for url in two_urls:
        if url == two_urls[1]:
            monkeypatch.setattr(Warehouse, "_loads_into_empty", lambda *_args: False)
        warehouse = Warehouse(url)
        summary = sync_source(warehouse, WriterBetweenPages(folders[0], url, "activities", other), "run", NOW)
        results.append((summary, stored_in_order(warehouse)))
    assert results[0] == results[1]
    live = Warehouse(two_urls[0]).read_kind("activities").set_index("activity_id")
    assert live.loc["X4", "type"] == "webinar" and set(live.index) == {"X1", "X2", "X4", "X5", "X9"}
