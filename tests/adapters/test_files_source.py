"""The `files` source into a real warehouse (SQLite and PostgreSQL): quarantine, idempotence, updates."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from abm_sla import stages
from abm_sla.crm.files import ExportFolder, normalize_domain
from abm_sla.errors import SourceError
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
        ("accounts.csv", "4"): "unparsable number in employees: many",
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
        ("opportunities.csv", "3"): "unparsable number in amount: lots",
        ("opportunities.csv", "4"): "unparsable boolean in is_closed: no",
        ("status_changes.csv", "3"): "unparsable timestamp in changed_at: not-a-date",
    }
    assert summary["accounts.csv"] == {"loaded": 2, "quarantined": 3}
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
    assert len(accounts) == 3 and "A5" in accounts.index
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
