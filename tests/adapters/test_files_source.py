"""The `files` source into a real warehouse (SQLite and PostgreSQL): quarantine, idempotence, updates."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from abm_sla.crm.files.folder import ExportFolder
from abm_sla.crm.files.reading import CHUNK_ROWS
from abm_sla.crm.files.source import FilesSource
from abm_sla.crm.files.specs import DROPPED
from abm_sla.crm.files.validation import normalize_domain
from abm_sla.crm.sync import sync_source
from abm_sla.errors import SourceError
from abm_sla.services import stages
from abm_sla.warehouse import Warehouse, schema

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


@pytest.fixture
def export(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    write(folder, "accounts.csv", """
        name,id,domain,industry,employees,annual_revenue,country,owner_id,tier,created_at,updated_at,crm_extra
        Acme,A1,https://www.Acme.com/,Software,300,1e7,US,U1,Tier 1,2025-01-01T00:00:00Z,2026-01-01T00:00:00Z,keep me
        Beta,A2,beta.io,Retail,40,,FR,U2,,2025-01-01,2026-01-01
        Gamma,A3,gamma.de,Software,many,,DE,U1,2,,
        Dup,A1,dup.com,,,,,,,,
        ,A4,nameless.com,,,,,,,,
        """)
    write(folder, "users.csv", """
        id,name,email,role,manager_id,time_zone,country,active
        U1,Ann,ann@x.com,sales,M1,America/New_York,US,TRUE
        U2,Bob,bob@x.com,sales,M1,,GB,0
        U3,Cy,cy@x.com,sales,M1,Mars/Olympus,US,true
        U4,Di,di@x.com,sales,M1,UTC,US,perhaps
        """)
    write(folder, "contacts.csv", """
        id,account_id,title,email,created_at,updated_at
        C1,A1,VP Sales,c1@acme.com,2025-06-01T00:00:00Z,2025-06-01T00:00:00Z
        C2,A9,CEO,c2@nowhere.com,,
        """)
    write(folder, "activities.csv", """
        id,account_id,type,occurred_at,contact_id,owner_id,url,subject
        X1,A1,web_visit,2026-02-10T10:00:00+01:00,,,https://acme.com/pricing,
        X2,A1, Email_Open ,2026-02-10T10:00:00,C1,,,
        X3,A9,call,2026-02-10T10:00:00Z,,U1,,
        X4,A1,fax,2026-02-10T10:00:00Z,,,,
        X5,A1,call,yesterday,,U1,,
        X1,A2,call,2026-02-10T10:00:00Z,,U1,,
        """)
    write(folder, "intent.csv", """
        account_id,domain,topic,score,observed_at,source
        ,WWW.ACME.COM.,CRM ,80,2026-02-09T00:00:00Z,bombora
        ,nope.com,CRM,80,2026-02-09T00:00:00Z,bombora
        A2,,ERP,seventy,2026-02-09T00:00:00Z,bombora
        A2,,ERP,170,2026-02-09T00:00:00Z,bombora
        ,,ERP,70,2026-02-09T00:00:00Z,bombora
        """)
    write(folder, "opportunities.csv", """
        id,account_id,stage,amount,created_at,close_date,is_closed,is_won
        O1,A1,Won,50000,2026-01-05T00:00:00Z,2026-02-01,true,TRUE
        O2,A1,Open,lots,2026-01-05T00:00:00Z,,false,false
        O3,A1,Open,10,2026-01-05T00:00:00Z,,no,false
        """)
    write(folder, "status_changes.csv", """
        account_id,status,changed_at,changed_by
        A1,working,2026-02-11T10:00:00Z,U1
        A1,rejected,not-a-date,U1
        """)
    return folder


def quarantine(store: Warehouse) -> pd.DataFrame:
    return store.read_table(schema.quarantine).sort_values(["object_name", "row"])


def counts(store: Warehouse) -> dict[str, int]:
    with store.engine.connect() as connection:
        return {
            name: connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for name, table in {**schema.CRM_TABLES, "quarantine": schema.quarantine}.items()
        }


def test_every_quarantine_reason_is_kept_with_file_and_row(export: Path, db_url: str) -> None:
    store = Warehouse(db_url)
    summary = stages.extract_files(store, export, "run-1", NOW)
    reasons = {(row.object_name, row.row): row.reason for row in quarantine(store).itertuples()}
    assert reasons == {
        ("accounts.csv", "4"): "value dropped, row loaded: unusable number in employees: many",
        ("accounts.csv", "5"): "duplicate id A1 in the same file",
        ("accounts.csv", "6"): "missing required value: name",
        ("users.csv", "4"): "unknown time zone Mars/Olympus",
        ("users.csv", "5"): "unparsable boolean in active: perhaps",
        ("contacts.csv", "3"): "unknown account A9",
        ("activities.csv", "4"): "unknown account A9",
        ("activities.csv", "5"): "unknown activity type fax",
        ("activities.csv", "6"): "unparsable timestamp in occurred_at: yesterday",
        ("activities.csv", "7"): "duplicate id X1 in the same file",
        ("intent.csv", "3"): "unknown domain nope.com",
        ("intent.csv", "4"): "unparsable number in score: seventy",
        ("intent.csv", "5"): "score outside 0-100",
        ("intent.csv", "6"): "missing required value: account_id or domain",
        ("opportunities.csv", "3"): "value dropped, row loaded: unusable number in amount: lots",
        ("opportunities.csv", "4"): "unparsable boolean in is_closed: no",
        ("status_changes.csv", "3"): "unparsable timestamp in changed_at: not-a-date",
    }
    # Gamma loads without its employees: its quarantine row is counted as a value dropped
    assert summary["accounts.csv"] == {"loaded": 3, "quarantined": 2, "values_dropped": 1}
    assert summary["activities.csv"] == {"loaded": 2, "quarantined": 4}
    assert summary["intent.csv"] == {"loaded": 1, "quarantined": 4}
    payload = quarantine(store).set_index(["object_name", "row"]).loc[("accounts.csv", "4"), "payload"]
    assert payload["employees"] == "many"


def test_values_are_normalized_and_raw_rows_kept(export: Path, db_url: str) -> None:
    store = Warehouse(db_url)
    stages.extract_files(store, export, "run-1", NOW)
    activities = store.read_kind("activities").set_index("activity_id")
    assert activities.loc["X1", "occurred_at"] == pd.Timestamp("2026-02-10T09:00:00Z")  # +01:00 → UTC
    assert activities.loc["X2", "occurred_at"] == pd.Timestamp("2026-02-10T10:00:00Z")  # naive = UTC
    assert activities.loc["X2", "type"] == "email_open"
    intent = store.read_kind("intent_signals")
    assert intent["account_id"].tolist() == ["A1"]  # found through its domain
    users = store.read_kind("users").set_index("user_id")
    assert users.loc["U2", "time_zone"] == "UTC" and not users.loc["U2", "active"]
    with store.engine.connect() as connection:
        raw = connection.execute(
            sa.select(schema.accounts.c.raw).where(schema.accounts.c.source_id == "A1")
        ).scalar_one()
    assert raw["crm_extra"] == "keep me"


def test_loading_the_same_folder_again_changes_nothing(export: Path, db_url: str) -> None:
    store = Warehouse(db_url)
    stages.extract_files(store, export, "run-1", NOW)
    before = counts(store), store.read_kind("accounts"), store.read_kind("activities")
    stages.extract_files(store, export, "run-2", NOW)
    after = counts(store), store.read_kind("accounts"), store.read_kind("activities")
    assert before[0] == after[0]
    pd.testing.assert_frame_equal(before[1].sort_values("account_id"), after[1].sort_values("account_id"))
    pd.testing.assert_frame_equal(before[2].sort_values("activity_id"), after[2].sort_values("activity_id"))


def test_a_newer_export_updates_by_id_and_an_older_one_does_not(export: Path, tmp_path: Path, db_url: str) -> None:
    store = Warehouse(db_url)
    stages.extract_files(store, export, "run-1", NOW)
    newer = tmp_path / "newer"
    write(newer, "accounts.csv", """
        id,name,domain,updated_at
        A1,Acme Corp,acme.com,2026-02-01T00:00:00Z
        A2,Beta (stale),beta.io,2025-12-01T00:00:00Z
        A5,Epsilon,eps.com,2026-02-01T00:00:00Z
        """)
    write(newer, "activities.csv", """
        id,account_id,type,occurred_at
        X9,A5,form_submit,2026-02-12T00:00:00Z
        """)
    stages.extract_files(store, newer, "run-2", NOW)
    accounts = store.read_kind("accounts").set_index("account_id")
    assert accounts.loc["A1", "name"] == "Acme Corp"
    assert accounts.loc["A2", "name"] == "Beta"
    assert len(accounts) == 4 and "A5" in accounts.index  # A1, A2, A3 (loaded without its employees), A5
    assert set(store.read_kind("activities")["activity_id"]) == {"X1", "X2", "X9"}


def test_references_to_accounts_already_stored_are_valid(export: Path, tmp_path: Path, db_url: str) -> None:
    store = Warehouse(db_url)
    stages.extract_files(store, export, "run-1", NOW)
    later = tmp_path / "later"
    write(later, "accounts.csv", "id,name\n")
    write(later, "intent.csv", """
        domain,topic,score,observed_at
        beta.io,ERP,90,2026-02-20T00:00:00Z
        """)
    summary = stages.extract_files(store, later, "run-2", NOW)
    assert summary["intent.csv"] == {"loaded": 1, "quarantined": 0}


def test_folder_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        ExportFolder(tmp_path / "missing")
    with pytest.raises(SourceError, match=r"no accounts\.csv"):
        ExportFolder(tmp_path)
    write(tmp_path, "accounts.csv", "id,title\nA1,x\n")
    with pytest.raises(SourceError, match="lacks the required column name"):
        ExportFolder(tmp_path).pages()


def test_domains_normalize() -> None:
    raw = pd.Series(["https://www.Acme.com./pricing", " ACME.com ", "http://sub.acme.com", None, ""])
    assert normalize_domain(raw).tolist() == ["acme.com", "acme.com", "sub.acme.com", None, None]


@pytest.mark.parametrize("intent_rows", ["", ",nowhere.org,x,80,2026-03-30T00:00:00Z,b\n"])
def test_an_intent_file_without_usable_rows_loads_the_rest(tmp_path: Path, intent_rows: str) -> None:
    """A header-only intent.csv, or one whose every row is quarantined, is no reason to stop the load."""
    folder = tmp_path / "export"
    write(folder, "accounts.csv", "id,name,domain\nA1,Acme,acme.com\n")
    write(folder, "intent.csv", "account_id,domain,topic,score,observed_at,source\n" + intent_rows)
    store = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    summary = stages.extract_files(store, folder, "load", NOW)
    assert summary["intent.csv"] == {"loaded": 0, "quarantined": 1 if intent_rows else 0}
    assert store.read_kind("accounts")["account_id"].tolist() == ["A1"]
    assert store.read_kind("intent_signals").empty


# -- chunked, change-proportional loads -----------------------------------------------------------------

def crm_rows(store: Warehouse) -> dict[str, pd.DataFrame]:
    """Every CRM table's stored rows (values and raw), sorted, for comparing two loads."""
    out = {}
    with store.engine.connect() as connection:
        for kind, table in schema.CRM_TABLES.items():
            columns = [column for column in table.columns if column.name != "row_hash"]
            rows = connection.execute(sa.select(*columns)).mappings().all()
            frame = pd.DataFrame([dict(row) for row in rows], columns=[column.name for column in columns])
            out[kind] = frame.astype(str).sort_values(["source", "source_id"]).reset_index(drop=True)
    out["quarantine"] = quarantine(store)[["object_name", "row", "reason", "payload_hash"]].reset_index(drop=True)
    return out


def load(store: Warehouse, folder: Path, run_id: str = "run", chunk_rows: int = CHUNK_ROWS) -> dict:
    return sync_source(store, FilesSource(folder, chunk_rows=chunk_rows), run_id, NOW)


def with_intent_duplicate(export: Path) -> Path:
    """The fixture's folder plus an intent row repeated three rows later (another chunk of 2 rows)."""
    with (export / "intent.csv").open("a", encoding="utf-8") as handle:
        handle.write(",acme.com,crm,80,2026-02-09T00:00:00Z,bombora\n")
    return export


def test_a_file_read_in_many_chunks_gives_the_rows_and_quarantine_of_one(
    export: Path, tmp_path: Path, db_url: str, sqlite_url: str
) -> None:
    """Chunks of 2 rows: the duplicate ids A1 (rows 1 and 4), X1 (rows 1 and 6) and a repeated intent
    row span chunks and are still quarantined once, with the same reasons and line numbers."""
    folder = with_intent_duplicate(export)
    whole, chunked = Warehouse(sqlite_url), Warehouse(db_url.replace("warehouse.db", "chunked.db"))
    one = load(whole, folder)
    many = load(chunked, folder, chunk_rows=2)
    assert many["activities.csv"]["pages"] == 3 and one["activities.csv"]["pages"] == 1
    for file, counts in one.items():
        assert (many[file]["loaded"], many[file]["quarantined"]) == (counts["loaded"], counts["quarantined"])
    reasons = {(row.object_name, row.row): row.reason for row in quarantine(chunked).itertuples()}
    assert reasons[("accounts.csv", "5")] == "duplicate id A1 in the same file"
    assert reasons[("activities.csv", "7")] == "duplicate id X1 in the same file"
    assert reasons[("intent.csv", "7")] == "duplicate intent row (same account, topic, time, source) in the file"
    expected, got = crm_rows(whole), crm_rows(chunked)
    for kind in expected:
        pd.testing.assert_frame_equal(expected[kind], got[kind], obj=kind)


def test_reloading_an_unchanged_folder_writes_nothing_and_says_unchanged(
    export: Path, tmp_path: Path, db_url: str
) -> None:
    store = Warehouse(db_url)
    first = load(store, export, "run-1")
    assert not any(counts.get("unchanged") for counts in first.values())
    before = crm_rows(store)
    again = load(store, export, "run-2")
    assert all(counts["unchanged"] and counts["written"] == 0 and counts["loaded"] == 0 for counts in again.values())
    (export / "users.csv").touch()  # a new mtime, same bytes: the content hash decides
    moved = tmp_path / "copy"
    moved.mkdir()
    for path in export.iterdir():
        (moved / path.name).write_bytes(path.read_bytes())
    for folder in (export, moved):
        summary = stages.extract_files(store, folder, "run-3", NOW)
        assert summary["users.csv"] == {"loaded": 0, "quarantined": 0, "unchanged": True}
        assert all(counts.get("unchanged") for counts in summary.values())
    after = crm_rows(store)
    for kind in before:
        pd.testing.assert_frame_equal(before[kind], after[kind], obj=kind)


def test_a_changed_file_writes_only_the_rows_that_changed(export: Path, db_url: str) -> None:
    store = Warehouse(db_url)
    load(store, export, "run-1")
    activities = (export / "activities.csv").read_text(encoding="utf-8")
    changed = activities.replace("X2,A1, Email_Open ,", "X2,A1,email_click,")
    changed += "X8,A2,webinar,2026-02-11T00:00:00Z,,,,\n"
    (export / "activities.csv").write_text(changed, encoding="utf-8")
    summary = load(store, export, "run-2")
    assert summary["activities.csv"]["loaded"] == 3 and summary["activities.csv"]["written"] == 2
    assert summary["activities.csv"]["quarantined"] == 4
    assert all(counts.get("unchanged") for file, counts in summary.items() if file != "activities.csv")
    stored = store.read_kind("activities").set_index("activity_id")
    assert stored.loc["X2", "type"] == "email_click" and stored.loc["X8", "type"] == "webinar"
    assert stored.loc["X1", "occurred_at"] == pd.Timestamp("2026-02-10T09:00:00Z")
    assert load(store, export, "run-3")["activities.csv"] == {
        "loaded": 0, "written": 0, "deleted": 0, "quarantined": 0, "pages": 1, "unchanged": True
    }


def test_an_unchanged_file_is_read_again_when_accounts_it_referred_to_arrive(export: Path, db_url: str) -> None:
    """contacts.csv refused C2 (unknown account A9); once an export brings A9, the same contacts.csv loads C2."""
    store = Warehouse(db_url)
    load(store, export, "run-1")
    with (export / "accounts.csv").open("a", encoding="utf-8") as handle:
        handle.write("Nine,A9,nine.com,,,,,,,,,\n")
    summary = load(store, export, "run-2")
    assert summary["accounts.csv"]["written"] == 1
    assert "unchanged" not in summary["contacts.csv"] and summary["contacts.csv"]["written"] == 1
    assert summary["users.csv"]["unchanged"]  # users refer to no account
    assert set(store.read_kind("contacts")["contact_id"]) == {"C1", "C2"}
    assert set(store.read_kind("activities")["activity_id"]) == {"X1", "X2", "X3"}


def test_high_volume_rows_keep_only_their_extra_columns_as_raw(tmp_path: Path, db_url: str) -> None:
    folder = tmp_path / "export"
    write(folder, "accounts.csv", "id,name\nA1,Acme\n")
    write(folder, "activities.csv", """
        id,account_id,type,occurred_at,campaign
        X1,A1,webinar,2026-02-10T10:00:00Z,Spring launch
        X2,A1,webinar,2026-02-10T11:00:00Z,
        """)
    store = Warehouse(db_url)
    load(store, folder)
    with store.engine.connect() as connection:
        raw = dict(connection.execute(sa.select(schema.activities.c.source_id, schema.activities.c.raw)).all())
        account = connection.execute(sa.select(schema.accounts.c.raw)).scalar_one()
    assert raw == {"X1": {"campaign": "Spring launch"}, "X2": None}
    assert account == {"id": "A1", "name": "Acme"}


def test_newer_updated_at_wins_through_copy_and_merge(tmp_path: Path, postgres_url: str) -> None:
    """On PostgreSQL the rows go through COPY into a staging table and one merge: a later updated_at
    replaces the stored row, an older or missing one does not, a stored row without one is replaced."""
    store = Warehouse(postgres_url)
    first, second = tmp_path / "first", tmp_path / "second"
    write(first, "accounts.csv", """
        id,name,updated_at
        A1,Acme,2026-01-01T00:00:00Z
        A2,Beta,2026-01-01T00:00:00Z
        A3,Gamma,2026-01-01T00:00:00Z
        A4,Delta,
        """)
    write(second, "accounts.csv", """
        id,name,updated_at
        A1,Acme Corp,2026-01-02T00:00:00Z
        A2,Beta (stale),2025-12-31T00:00:00Z
        A3,Gamma (undated),
        A4,Delta Inc,2026-01-02T00:00:00Z
        """)
    load(store, first)
    summary = load(store, second)
    assert summary["accounts.csv"]["written"] == 2
    names = store.read_kind("accounts").set_index("account_id")["name"].to_dict()
    assert names == {"A1": "Acme Corp", "A2": "Beta", "A3": "Gamma", "A4": "Delta Inc"}


def test_a_load_killed_mid_way_completes_on_the_next_run(export: Path, db_url: str, sqlite_url: str,
                                                         monkeypatch) -> None:
    """Chunks of 2 rows; the load dies inside the 6th page's transaction (nothing of that page is kept,
    the pages before it are); the next load of the same folder gives exactly a clean load's result."""
    store = Warehouse(db_url)
    real, calls = Warehouse.write_frames, []

    def dying(self, connection, source, kind, rows, **options):
        calls.append(kind)
        written = real(self, connection, source, kind, rows, **options)
        if len(calls) == 6:
            raise KeyboardInterrupt("killed")
        return written

    monkeypatch.setattr(Warehouse, "write_frames", dying)
    with pytest.raises(KeyboardInterrupt):
        load(store, export, "run-1", chunk_rows=2)
    monkeypatch.setattr(Warehouse, "write_frames", real)
    partial = counts(store)
    assert partial["accounts"] > 0 and partial["activities"] == 0
    load(store, export, "run-2", chunk_rows=2)
    clean = Warehouse(sqlite_url.replace("warehouse.db", "clean.db"))
    load(clean, export, "clean", chunk_rows=2)
    expected, got = crm_rows(clean), crm_rows(store)
    for kind in expected:
        pd.testing.assert_frame_equal(expected[kind], got[kind], obj=kind)
    assert all(counts.get("unchanged") for counts in load(store, export, "run-3").values())


def test_the_run_summary_says_unchanged(export: Path, sqlite_url: str) -> None:
    from rich.console import Console

    from abm_sla.services.summary import print_sync_summary

    store = Warehouse(sqlite_url)
    stages.extract_files(store, export, "run-1", NOW)
    console = Console(record=True, width=100)
    print_sync_summary("files", stages.extract_files(store, export, "run-2", NOW), console)
    lines = [line for line in console.export_text().splitlines() if ".csv" in line]
    assert len(lines) == 7 and all("unchanged" in line for line in lines)


# -- malformed input (issue 13, items 2 and 3) ----------------------------------------------------------

def test_basic_format_timestamps_load(tmp_path: Path, sqlite_url: str) -> None:
    """ISO 8601 basic format (20260101T013058Z) beside extended and naive values: parsed, never an abort."""
    folder = tmp_path / "export"
    write(folder, "accounts.csv", "id,name,updated_at\nA1,Acme,20260101T013058Z\n")
    write(folder, "activities.csv", """
        id,account_id,type,occurred_at
        X1,A1,call,20260101T013058Z
        X2,A1,call,2026-01-01T00:00:00
        X3,A1,call,20260101T013058+0100
        X4,A1,call,20261301T000000Z
        """)
    store = Warehouse(sqlite_url)
    summary = stages.extract_files(store, folder, "load", NOW)
    assert summary["activities.csv"] == {"loaded": 3, "quarantined": 1}
    stamps = store.read_kind("activities").set_index("activity_id")["occurred_at"]
    assert stamps.to_dict() == {"X1": pd.Timestamp("2026-01-01T01:30:58Z"), "X2": pd.Timestamp("2026-01-01T00:00:00Z"),
                                "X3": pd.Timestamp("2026-01-01T00:30:58Z")}
    assert store.read_kind("accounts")["updated_at"].tolist() == [pd.Timestamp("2026-01-01T01:30:58Z")]


@pytest.mark.parametrize("chunk_rows", [2, CHUNK_ROWS])
def test_ragged_rows_and_nul_bytes_are_quarantined_one_by_one(tmp_path: Path, sqlite_url: str,
                                                             chunk_rows: int) -> None:
    """Extra fields in the first data row, in a later row (also as a chunk's first row) and far too many;
    a NUL byte inside a field; a short row is read with its missing fields empty."""
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "accounts.csv").write_bytes(
        b"id,name,employees\n"
        b"A0,Zero,10,extra\n"
        b"A1,Acme,1\n"
        b"A2,Beta,2,x\n"
        b"A3,Ga\x00mma,3\n"
        b"A4,Four\n"
        b"A5,Five,5,a,b,c,d,e,f,g,h,i,j,k\n"
        b"A6,Six,6\n"
    )
    store = Warehouse(sqlite_url)
    summary = stages.extract_files(store, folder, "load", NOW)
    assert summary["accounts.csv"] == {"loaded": 3, "quarantined": 4}
    assert sorted(store.read_kind("accounts")["account_id"]) == ["A1", "A4", "A6"]
    rows = quarantine(store).set_index("row")
    ragged = "ragged row: more fields than the header's 3"
    assert rows["reason"].to_dict() == {"2": ragged, "4": ragged, "5": "NUL byte in name", "7": ragged}
    assert rows.loc["2", "payload"] == {"id": "A0", "name": "Zero", "employees": "10", "field_4": "extra"}
    assert rows.loc["7", "payload"]["line"].startswith("A5,Five,5,a,b")
    assert stages.extract_files(store, folder, "again", NOW)["accounts.csv"]["unchanged"]


def test_headers_differing_only_in_case_are_one_clear_line(tmp_path: Path, sqlite_url: str) -> None:
    folder = tmp_path / "export"
    write(folder, "accounts.csv", "id,name,ID\nA1,Acme,a1\n")
    with pytest.raises(SourceError, match=r"^accounts\.csv has the column 'id' more than once"):
        stages.extract_files(Warehouse(sqlite_url), folder, "load", NOW)


def test_a_bad_optional_value_drops_the_value_not_the_account(tmp_path: Path, sqlite_url: str) -> None:
    """issue 13 item 4: 1,000 reads as 1000; NaN, 0x10, a negative or infinite count loads the account
    without it (the problem is recorded), so its contacts and activities are not 'unknown account'."""
    folder = tmp_path / "export"
    write(folder, "accounts.csv", """
        id,name,employees,annual_revenue
        A1,One,"1,000","1,234,567.5"
        A2,Two,NaN,
        A3,Three,0x10,
        A4,Four,-5,
        A5,Five,inf,-1
        """)
    write(folder, "activities.csv", "id,account_id,type,occurred_at\n"
          + "".join(f"X{i},A{i},call,2026-02-10T10:00:00Z\n" for i in range(1, 6)))
    store = Warehouse(sqlite_url)
    summary = sync_source(store, FilesSource(folder), "load", NOW)
    assert summary["accounts.csv"]["loaded"] == 5 and summary["accounts.csv"]["quarantined"] == 0
    assert summary["accounts.csv"]["values_dropped"] == 4
    assert summary["activities.csv"]["loaded"] == 5
    accounts = store.read_kind("accounts").set_index("account_id")
    assert accounts.loc["A1", "employees"] == 1000 and accounts.loc["A1", "annual_revenue"] == 1234567.5
    assert accounts.loc[["A2", "A3", "A4", "A5"], "employees"].isna().all()
    reasons = quarantine(store).set_index("row")["reason"].to_dict()
    assert reasons == {
        "3": "value dropped, row loaded: unusable number in employees: NaN",
        "4": "value dropped, row loaded: unusable number in employees: 0x10",
        "5": "value dropped, row loaded: number outside 0 to 10,000,000 in employees: -5",
        "6": "value dropped, row loaded: unusable number in employees: inf",
    }


def test_headers_like_occurred_at_match_their_column(tmp_path: Path, sqlite_url: str) -> None:
    folder = tmp_path / "export"
    write(folder, "accounts.csv", "ID,Name\nA1,Acme\n")
    write(folder, "activities.csv", "Id,Account ID,Type,Occurred At,contact-id\nX1,A1,call,2026-01-01T00:00:00Z,\n")
    store = Warehouse(sqlite_url)
    summary = stages.extract_files(store, folder, "load", NOW)
    assert summary["activities.csv"] == {"loaded": 1, "quarantined": 0}
    assert store.read_kind("activities")["occurred_at"].tolist() == [pd.Timestamp("2026-01-01T00:00:00Z")]


def test_zones_pandas_cannot_use_are_refused_at_load(tmp_path: Path, sqlite_url: str) -> None:
    """posixrules, Factory and localtime open in zoneinfo but not in pandas: unknown, like any typo."""
    folder = tmp_path / "export"
    write(folder, "accounts.csv", "id,name\nA1,Acme\n")
    write(folder, "users.csv", "id,time_zone\nU1,posixrules\nU2,Factory\nU3,localtime\nU4,Europe/Berlin\n")
    store = Warehouse(sqlite_url)
    stages.extract_files(store, folder, "load", NOW)
    assert store.read_kind("users")["user_id"].tolist() == ["U4"]
    reasons = quarantine(store)["reason"].tolist()
    assert sorted(reasons) == sorted(f"unknown time zone {zone}" for zone in ("posixrules", "Factory", "localtime"))


def test_rows_that_came_before_their_account_load_when_it_arrives(tmp_path: Path, db_url: str) -> None:
    """Issue 13 item 5: an incremental export's activities and intent for an account of a later export are
    quarantined, then loaded when that export brings the account, and their quarantine rows marked resolved."""
    first, second = tmp_path / "first", tmp_path / "second"
    write(first, "accounts.csv", "id,name,domain\nA1,Acme,acme.com\n")
    write(first, "activities.csv", "id,account_id,type,occurred_at\nX1,A1,call,2026-01-02T00:00:00Z\n"
                                   "X2,A2,call,2026-01-03T00:00:00Z\nX3,A3,call,2026-01-04T00:00:00Z\n")
    write(first, "intent.csv", "domain,topic,score,observed_at\nbeta.example,CRM,80,2026-01-02T00:00:00Z\n")
    write(second, "accounts.csv", "id,name,domain\nA2,Beta,beta.example\n")
    store = Warehouse(db_url)
    load(store, first, "run-1")
    assert set(quarantine(store)["reason"]) == {"unknown account A2", "unknown account A3",
                                                 "unknown domain beta.example"}
    summary = load(store, second, "run-2")
    assert summary["activities.csv:retried"]["loaded"] == 1 and summary["intent.csv:retried"]["loaded"] == 1
    assert set(store.read_kind("activities")["activity_id"]) == {"X1", "X2"}
    assert store.read_kind("intent_signals")["account_id"].tolist() == ["A2"]
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(schema.quarantine.c.reason, schema.quarantine.c.resolved_run_id)).all()
    assert dict(rows) == {"unknown account A2": "run-2", "unknown account A3": None,
                          "unknown domain beta.example": "run-2"}
    again = load(store, second, "run-3")  # nothing waits for a known account any more: nothing retried
    assert not any(name.endswith(":retried") for name in again)


KILLED_LOADER = """
import datetime as dt, sys
from abm_sla.crm.files.source import FilesSource
from abm_sla.crm.sync import sync_source
from abm_sla.warehouse import Warehouse

real = Warehouse.store_page
def store_page(self, page, run_id, at):
    stored = real(self, page, run_id, at)
    print(page.object_name, flush=True)  # committed; wait for the parent before the next page
    sys.stdin.readline()
    return stored
Warehouse.store_page = store_page
sync_source(Warehouse(sys.argv[1]), FilesSource(sys.argv[2], chunk_rows=2), "killed", dt.datetime(2026, 3, 1,
            tzinfo=dt.UTC))
"""


def test_a_load_killed_with_sigkill_completes_on_the_next_run(export: Path, db_url: str, sqlite_url: str) -> None:
    """A real process, killed (SIGKILL) after its 6th committed page (contacts.csv; chunks of 2 rows, with
    the next chunk already read ahead): the re-load gives exactly what a clean load gives."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", KILLED_LOADER, db_url, str(export)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    for _ in range(5):
        assert child.stdout.readline().strip()
        child.stdin.write("\n")
        child.stdin.flush()
    assert child.stdout.readline().strip() == "contacts.csv"  # committed; the child waits for us
    child.kill()
    child.wait(timeout=30)
    store = Warehouse(db_url)
    assert counts(store)["contacts"] > 0 and counts(store)["activities"] == 0
    load(store, export, "rerun", chunk_rows=2)
    clean = Warehouse(sqlite_url.replace("warehouse.db", "clean.db"))
    load(clean, export, "clean", chunk_rows=2)
    expected, got = crm_rows(clean), crm_rows(store)
    for kind in expected:
        pd.testing.assert_frame_equal(expected[kind], got[kind], obj=kind)


def test_status_changes_reason_column_is_optional(export: Path, sqlite_url: str) -> None:
    store = Warehouse(sqlite_url)
    stages.extract_files(store, export, "run-1", NOW)
    assert store.read_kind("status_changes")["reason"].isna().all()  # no reason column: no reasons
    write(export, "status_changes.csv", """
        account_id,status,changed_at,changed_by,reason
        A1,rejected,2026-02-11T10:00:00Z,U1, No budget this year
        A1,Callback requested,2026-02-12T10:00:00Z,U1,
        """)
    stages.extract_files(store, export, "run-2", NOW)
    stored = store.read_kind("status_changes").set_index("status")
    assert stored.loc["rejected", "reason"] == "No budget this year"
    assert pd.isna(stored.loc["Callback requested", "reason"])  # an unknown status value is kept as it is


def test_target_accounts_and_marketing_activity_types_load(tmp_path: Path, sqlite_url: str) -> None:
    """target_accounts.csv: keyed on (account, added_at), a later row updates removed_at; unknown accounts and
    bad dates are quarantined; the marketing channel and research types are known activity types."""
    folder = tmp_path / "export"
    write(folder, "accounts.csv", "id,name\nA1,Acme\nA2,Beta\n")
    write(folder, "activities.csv", """
        id,account_id,type,occurred_at
        X1,A1,ad_click,2026-01-05T10:00:00Z
        X2,A1,Account_Research,2026-01-05T11:00:00Z
        X3,A1,event_attended,2026-01-06T10:00:00Z
        X4,A1,content_download,2026-01-06T10:00:00Z
        """)
    write(folder, "target_accounts.csv", """
        account_id,added_at,removed_at,agreed_at,agreed_by
        A1,2026-01-01T00:00:00Z,,2026-01-01T00:00:00Z,U1
        A2,,,2026-01-01T00:00:00Z,U1
        A1,2026-01-01T00:00:00Z,2026-02-01T00:00:00Z,2026-02-01T00:00:00Z,U1
        A9,2026-01-01T00:00:00Z,,,
        A2,2026-02-01,soon,,
        """)
    store = Warehouse(sqlite_url)
    summary = stages.extract_files(store, folder, "load", NOW)
    assert summary["activities.csv"] == {"loaded": 4, "quarantined": 0}
    assert summary["target_accounts.csv"]["quarantined"] == 2
    rows = store.read_kind("target_accounts").set_index("account_id")
    assert rows.loc["A1", "removed_at"] == pd.Timestamp("2026-02-01T00:00:00Z")  # the later row of the key won
    assert pd.isna(rows.loc["A2", "added_at"]) and len(rows) == 2
    reasons = set(store.read_table(schema.quarantine)["reason"])
    assert {"unknown account A9", "unparsable timestamp in removed_at: soon"} <= reasons


def big_activities(rows: int, account: str = "A1") -> str:
    """An activities file of ``rows`` rows (a few MB), so a read takes several blocks of the file."""
    lines = [f"X{i:07d},{account},call,2026-02-10T10:00:00Z,,U1,https://acme.com/{'p' * 40},subject {i}"
             for i in range(rows)]
    return "id,account_id,type,occurred_at,contact_id,owner_id,url,subject\n" + "\n".join(lines) + "\n"


def test_a_file_replaced_while_it_is_read_is_not_recorded_as_loaded(export: Path, db_url: str, monkeypatch) -> None:
    """activities.csv is rewritten (another export) after the first chunk was read: the load stops with one
    line, the file is not fingerprinted as loaded, and the next run, with the original back, loads every
    row (never "unchanged" with rows missing)."""
    original, replacement = big_activities(60_000), big_activities(20_000, account="A2")
    path = export / "activities.csv"
    path.write_text(original, encoding="utf-8")
    store = Warehouse(db_url)
    real_page, pages = ExportFolder._page, []

    def rewriting_after_the_first_chunk(self, spec, chunk, seen_ids, seen_intent):
        if spec.kind == "activities":
            pages.append(len(chunk.table))
            if len(pages) == 1:
                path.write_text(replacement, encoding="utf-8")  # in place, as an export tool rewriting it
        return real_page(self, spec, chunk, seen_ids, seen_intent)

    monkeypatch.setattr(ExportFolder, "_page", rewriting_after_the_first_chunk)
    with pytest.raises(SourceError, match=r"^activities\.csv changed while it was read: .*next run reads it whole"):
        load(store, export, "run-1", chunk_rows=5_000)
    assert len(pages) > 1
    assert "activities.csv" not in store.file_fingerprints("files")
    monkeypatch.setattr(ExportFolder, "_page", real_page)
    path.write_text(original, encoding="utf-8")  # the original put back
    summary = load(store, export, "run-2", chunk_rows=5_000)
    assert not summary["activities.csv"].get("unchanged")
    stored = store.read_kind("activities").set_index("activity_id")
    assert set(stored.index) >= {f"X{i:07d}" for i in range(60_000)}
    assert (stored.loc[[f"X{i:07d}" for i in range(60_000)], "account_id"] == "A1").all()
    recorded = store.file_fingerprints("files")["activities.csv"]
    assert recorded["sha256"] == hashlib.sha256(original.encode()).hexdigest() and recorded["rows"] == 60_000
    assert load(store, export, "run-3")["activities.csv"]["unchanged"]


def test_the_fingerprint_is_of_the_bytes_read(export: Path, sqlite_url: str, monkeypatch) -> None:
    """A file that changes between its fingerprint and its read (same size, so a size check alone misses it)
    is not recorded with the fingerprint of bytes it never read."""
    import abm_sla.crm.files.folder as files

    path = export / "activities.csv"
    path.write_text(big_activities(30_000), encoding="utf-8")
    changed = path.read_text(encoding="utf-8").replace("subject 1\n", "subject 9\n")
    real_fingerprint = files.fingerprint_file

    def then_changed(file, stored):
        fingerprint = real_fingerprint(file, stored)
        if file.name == "activities.csv":
            file.write_text(changed, encoding="utf-8")
        return fingerprint

    monkeypatch.setattr(files, "fingerprint_file", then_changed)
    with pytest.raises(SourceError, match=r"^activities\.csv changed while it was read"):
        load(Warehouse(sqlite_url), export, "run-1")


@pytest.mark.parametrize("target", ["activities.csv", "nowhere.csv"])
def test_an_unreadable_export_file_stops_the_load_in_one_line(export: Path, sqlite_url: str, target: str) -> None:
    """A symbolic link loop (or a link to nothing) named activities.csv is not skipped: the run would
    count no touches and open escalations for every MQA. The load stops before writing anything."""
    (export / "activities.csv").unlink()
    (export / "activities.csv").symlink_to(export / target)
    store = Warehouse(sqlite_url)
    with pytest.raises(SourceError, match=r"^cannot read activities\.csv: .*; fix or remove it") as raised:
        stages.extract_files(store, export, "run-1", NOW)
    assert "\n" not in str(raised.value)
    assert counts(store)["accounts"] == 0


def test_implausible_numbers_are_dropped_with_their_reason_and_counted(tmp_path: Path, sqlite_url: str) -> None:
    """1e308 or 3.7 employees, a negative or absurd revenue or amount: the row loads without the value, the
    quarantine table says why, and the run summary counts those records (they are quarantine rows too)."""
    from rich.console import Console

    from abm_sla.services.summary import print_sync_summary

    folder = tmp_path / "export"
    write(folder, "accounts.csv", """
        id,name,employees,annual_revenue
        A1,One,1e308,5e6
        A2,Two,3.7,1e15
        A3,Three,250,-1
        A4,Four,10000000,1e13
        """)
    write(folder, "opportunities.csv", """
        id,account_id,stage,amount
        O1,A1,Open,-100
        O2,A1,Open,5e12
        O3,A1,Open,25000.50
        """)
    store = Warehouse(sqlite_url)
    summary = stages.extract_files(store, folder, "load", NOW)
    assert summary["accounts.csv"] == {"loaded": 4, "quarantined": 0, "values_dropped": 3}
    assert summary["opportunities.csv"] == {"loaded": 3, "quarantined": 0, "values_dropped": 2}
    accounts = store.read_kind("accounts").set_index("account_id")
    assert accounts["employees"].isna().tolist() == [True, True, False, False]
    assert accounts.loc["A2", "annual_revenue"] != accounts.loc["A2", "annual_revenue"]  # NaN: dropped
    assert accounts.loc["A4", "employees"] == 10_000_000 and accounts.loc["A4", "annual_revenue"] == 1e13
    amounts = store.read_kind("opportunities").set_index("opportunity_id")["amount"]
    assert amounts.isna().tolist() == [True, True, False] and amounts["O3"] == 25000.5
    reasons = quarantine(store).set_index(["object_name", "row"])["reason"].str.removeprefix(DROPPED).to_dict()
    assert reasons == {
        ("accounts.csv", "2"): "number outside 0 to 10,000,000 in employees: 1e308",
        ("accounts.csv", "3"): "not a whole number in employees: 3.7",
        ("accounts.csv", "4"): "number outside 0 to 10,000,000,000,000 in annual_revenue: -1",
        ("opportunities.csv", "2"): "number outside 0 to 1,000,000,000,000 in amount: -100",
        ("opportunities.csv", "3"): "number outside 0 to 1,000,000,000,000 in amount: 5e12",
    }
    console = Console(record=True, width=120)
    print_sync_summary("files", summary, console)
    text = console.export_text()
    assert "values dropped" in text
    assert re.search(r"accounts\.csv\s+│\s+4\s+│\s+0\s+│\s+3", text), text
def test_tier_values_outside_the_tier_map_load_without_a_tier_and_one_warning(tmp_path: Path, sqlite_url: str):
    """Issue 25: "Strategic" and "A" silently became Tier 3; SPEC's values (any case, ``tier_1``) still map."""
    folder = tmp_path / "tiers"
    write(folder, "accounts.csv", """
        name,id,domain,industry,employees,annual_revenue,country,owner_id,tier,created_at,updated_at
        Acme,A1,acme.com,,,,US,,Tier 1,2025-01-01,2026-01-01
        Beta,A2,beta.io,,,,US,,tier_2,2025-01-01,2026-01-01
        Gamma,A3,gamma.de,,,,US,,3,2025-01-01,2026-01-01
        Delta,A4,delta.de,,,,US,,Strategic,2025-01-01,2026-01-01
        Eps,A5,eps.de,,,,US,,A,2025-01-01,2026-01-01
        Zeta,A6,zeta.de,,,,US,,Strategic,2025-01-01,2026-01-01
        """)
    store = Warehouse(sqlite_url)
    summary = stages.extract_files(store, folder, "run-1", NOW)
    [warning] = summary["accounts.csv"]["warnings"]
    assert "'Strategic' (2), 'A' (1)" in warning and "sources.files.tier_map" in warning
    tiers = store.read_kind("accounts", source="files").set_index("account_id")["tier"]
    assert tiers.to_dict() == {"A1": "Tier 1", "A2": "Tier 2", "A3": "Tier 3", "A4": None, "A5": None, "A6": None}
    with store.engine.connect() as connection:  # nothing stored is lost: the row keeps the value it carried
        raw = connection.execute(
            sa.select(schema.accounts.c.raw).where(schema.accounts.c.source_id == "A4")).scalar_one()
    assert raw["tier"] == "Strategic"

    mapped = Warehouse(sqlite_url.replace("warehouse.db", "mapped.db"))
    summary = sync_source(mapped, FilesSource(folder, tier_map={"Strategic": "1", "A": "2"}), "run-1", NOW)
    assert "warnings" not in summary.get("accounts.csv", {})
    tiers = mapped.read_kind("accounts", source="files").set_index("account_id")["tier"]
    assert tiers[["A4", "A5", "A6"]].tolist() == ["Tier 1", "Tier 2", "Tier 1"]


def test_activities_logged_at_column_is_optional(export: Path, sqlite_url: str) -> None:
    """Issue 26: ``logged_at`` (the crm_hygiene clock) loads when given; a folder without it loads as
    before; an unparsable value quarantines the row like an unparsable occurred_at."""
    store = Warehouse(sqlite_url)
    stages.extract_files(store, export, "run-1", NOW)
    assert store.read_kind("activities")["logged_at"].isna().all()
    write(export, "activities.csv", """
        id,account_id,type,occurred_at,contact_id,owner_id,url,subject,logged_at
        L1,A1,call,2026-02-10T10:00:00Z,,U1,,,2026-02-11T10:00:00Z
        L2,A1,meeting,2026-02-10T11:00:00Z,,U1,,,
        L3,A1,call,2026-02-10T12:00:00Z,,U1,,,later
        """)
    stages.extract_files(store, export, "run-2", NOW)
    stored = store.read_kind("activities").set_index("activity_id")
    assert stored.loc["L1", "logged_at"] == pd.Timestamp("2026-02-11T10:00:00Z")
    assert pd.isna(stored.loc["L2", "logged_at"]) and "L3" not in stored.index
    assert quarantine(store)["reason"].str.contains("unparsable timestamp in logged_at").any()


def test_requests_file_is_optional_and_validated(export: Path, sqlite_url: str) -> None:
    """Issue 26: ``requests.csv`` loads into ``requests`` when present; a folder without it loads exactly as before
    (no requests, the same tables and quarantine); a bad kind, time or account quarantines the row."""
    store = Warehouse(sqlite_url)
    summary = stages.extract_files(store, export, "run-1", NOW)
    assert "requests.csv" not in str(summary) and store.read_kind("requests").empty
    before = quarantine(store)
    write(export, "requests.csv", """
        request_id,account_id,kind,requested_by,requested_at,answered_at,owner_id
        R1,A1,Materials,U1,2026-02-10T10:00:00Z,2026-02-11T09:00:00Z,
        R2,A1,account_info,M1,2026-02-10T11:00:00+01:00,,U1
        R3,A1,gossip,U1,2026-02-10T12:00:00Z,,
        R4,A1,materials,U1,yesterday,,
        R5,A9,materials,U1,2026-02-10T12:00:00Z,,
        R6,A1,materials,U1,2026-02-10T12:00:00Z,soon,
        """)
    stages.extract_files(store, export, "run-2", NOW)
    stored = store.read_kind("requests").set_index("request_id")
    assert sorted(stored.index) == ["R1", "R2"]
    assert stored.loc["R1", "kind"] == "materials" and stored.loc["R2", "owner_id"] == "U1"
    assert stored.loc["R2", "requested_at"] == pd.Timestamp("2026-02-10T10:00:00Z")
    assert pd.isna(stored.loc["R2", "answered_at"])
    rows = quarantine(store)
    assert before["object_name"].ne("requests.csv").all()
    reasons = set(rows.loc[rows["object_name"] == "requests.csv", "reason"])
    assert {"unknown request kind gossip", "unparsable timestamp in requested_at: yesterday", "unknown account A9",
            "unparsable timestamp in answered_at: soon"} <= reasons


def test_target_accounts_priority_and_campaign_start_are_optional(export: Path, sqlite_url: str) -> None:
    """Issue 26 (top accounts, Tier 1 research): ``target_accounts.priority`` loads when given, a list without
    the column loads as before (no priority), an unparsable one is dropped from its row (the row loads); a
    ``campaign_start`` activity is a known type."""
    store = Warehouse(sqlite_url)
    write(export, "target_accounts.csv", """
        account_id,added_at,removed_at,agreed_at,agreed_by
        A1,2026-01-01T00:00:00Z,,2026-01-01T00:00:00Z,U1
        """)
    stages.extract_files(store, export, "run-1", NOW)
    assert store.read_kind("target_accounts")["priority"].isna().all()
    write(export, "target_accounts.csv", """
        account_id,added_at,removed_at,agreed_at,agreed_by,priority
        A1,2026-01-01T00:00:00Z,,2026-01-01T00:00:00Z,U1,2
        A2,2026-01-01T00:00:00Z,,2026-01-01T00:00:00Z,U1,first
        """)
    write(export, "activities.csv", """
        id,account_id,type,occurred_at,contact_id,owner_id,url,subject
        K1,A1,campaign_start,2026-02-10T10:00:00Z,,,,Q1 dinner
        """)
    stages.extract_files(store, export, "run-2", NOW)
    listed = store.read_kind("target_accounts").set_index("account_id")
    assert listed.loc["A1", "priority"] == 2.0 and pd.isna(listed.loc["A2", "priority"])
    assert "K1" in set(store.read_kind("activities")["activity_id"])
