"""CRM sync into a real warehouse (SQLite and PostgreSQL) from the fake Salesforce and HubSpot over HTTP.

The helpers at the top are shared with ``test_equivalence.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from abm_sla.crm.base import CursorStore, Page, Source
from abm_sla.crm.config import AppConfig, WritebackConfig, load_app_config, parse_app_config, set_secret_loader
from abm_sla.crm.sync import build_source, sync_source
from abm_sla.crm.writeback import make_writer, mqas_written_back, record_done, write_back
from abm_sla.domain import frames, scorecard
from abm_sla.errors import ConfigError, SourceError
from abm_sla.services import stages
from abm_sla.services.config_files import load_model, load_policy
from abm_sla.services.synthetic import generate_crm
from abm_sla.warehouse import Warehouse, schema, score_history
from abm_sla.warehouse.store import records
from abm_sla.warehouse.view import CrmView, record_system_of_record
from tests.fakes.hubspot import FakeHubSpot
from tests.fakes.salesforce import FakeSalesforce, sf_time

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
WEBINAR = "pe999_webinar_attended"
RETRY = {"max_attempts": 3, "base_delay": 0.0, "max_delay": 0.0, "timeout": 10}
CRMS = ("salesforce", "hubspot")


def app_config(**sections: dict) -> AppConfig:
    """Test settings: no bulk, no waiting, limits out of the way, the fakes' field names."""
    salesforce = {"bulk_threshold": None, "bulk_poll_seconds": 0, "retry": RETRY, **sections.pop("salesforce", {})}
    hubspot = {
        "page_size": 20,
        "webinar_event_type": WEBINAR,
        "requests_per_10s": 100_000,
        "search_per_second": 100_000,
        "retry": RETRY,
        **sections.pop("hubspot", {}),
    }
    return parse_app_config({"sources": {"salesforce": salesforce, "hubspot": hubspot}, **sections})


def start_fake(crm: str, data: dict[str, pd.DataFrame]) -> FakeSalesforce | FakeHubSpot:
    fake = FakeSalesforce(data, now=NOW, page_size=20) if crm == "salesforce" else FakeHubSpot(data, now=NOW)
    return fake.start()


def source_for(crm: str, fake: FakeSalesforce | FakeHubSpot, config: AppConfig | None = None) -> Source:
    """The configured source of ``crm`` on the fake's client, clock and no-op sleep."""
    return build_source(
        crm, config or app_config(), client_factory=fake.factory(), now=lambda: fake.now, sleep=lambda _: None
    )


class StopAfter:
    """A source killed after ``pages`` pages (as if the process died there)."""

    def __init__(self, inner: Source, pages: int) -> None:
        self.inner, self.limit, self.name = inner, pages, inner.name

    def pages(self, cursors: CursorStore) -> Iterator[Page]:
        for index, page in enumerate(self.inner.pages(cursors)):
            if index == self.limit:
                raise KeyboardInterrupt("killed")
            yield page


def _clean(value: object) -> object:
    if value is None or (not isinstance(value, (str, bool, list, dict)) and pd.isna(value)):
        return None
    return value


def _tuples(frame: pd.DataFrame, columns: list[str]) -> set[tuple]:
    return {tuple(_clean(value) for value in row) for row in frame[columns].itertuples(index=False)}


#: What each comparison looks at, per kind (ids, references, the values the pipeline reads).
COMPARED = {
    "accounts": ["account_id", "name", "owner_id", "employees", "industry", "country", "created_at"],
    "contacts": ["contact_id", "account_id", "title"],
    "users": ["user_id", "active"],
    "opportunities": ["opportunity_id", "account_id", "stage", "amount"],
    "activities": ["activity_id", "account_id", "type", "occurred_at", "contact_id"],
    "status_changes": ["account_id", "status", "changed_at"],
}


def expected_rows(crm: str, data: dict[str, pd.DataFrame]) -> dict[str, set[tuple]]:
    """The rows a full sync of a fake seeded with ``data`` must leave, by kind (see :data:`COMPARED`)."""
    activities = data["activities"]
    marketing = activities["type"].isin(frames.MARKETING_TOUCHES)
    activities = activities[~marketing | activities["contact_id"].notna()].copy()  # anonymous: no CRM record
    if crm == "salesforce":  # campaign members become "<member id>:<touch>"
        member = activities["type"].isin(frames.MARKETING_TOUCHES)
        activities.loc[member, "activity_id"] = activities["activity_id"] + ":" + activities["type"]
    else:  # e-mail opens/clicks come from the email events API as "email:<event id>"
        email = activities["type"].isin(["email_open", "email_click"])
        activities.loc[email, "activity_id"] = "email:" + activities["activity_id"]
    status = data["status_changes"].assign(status=data["status_changes"]["status"].str.lower())
    out = {kind: _tuples(data[kind], columns) for kind, columns in COMPARED.items()}
    out["activities"] = _tuples(activities, COMPARED["activities"])
    out["status_changes"] = _tuples(status, COMPARED["status_changes"])
    return out


def stored_rows(warehouse: Warehouse, source: str) -> dict[str, set[tuple]]:
    return {kind: _tuples(warehouse.read_kind(kind, source=source), cols) for kind, cols in COMPARED.items()}


# ---- tests -----------------------------------------------------------------------------------------------




@pytest.fixture(scope="module")
def crm_data() -> dict[str, pd.DataFrame]:
    return generate_crm(n_accounts=60, start="2026-01-01", days=30, seed=11)


@pytest.fixture(params=CRMS)
def crm(request) -> str:
    return request.param


@pytest.fixture
def fake(crm, crm_data):
    server = start_fake(crm, crm_data)
    yield server
    server.stop()


def sync(warehouse: Warehouse, source: Source) -> dict[str, dict[str, int]]:
    return sync_source(warehouse, source, "run-1", NOW)


def test_full_sync_leaves_exactly_the_sources_rows(db_url, crm, fake, crm_data):
    warehouse = Warehouse(db_url)
    summary = sync(warehouse, source_for(crm, fake))

    assert stored_rows(warehouse, crm) == expected_rows(crm, crm_data)
    assert sum(entry["pages"] for entry in summary.values()) > 10  # paged, not one big read
    assert all(entry["quarantined"] == 0 for entry in summary.values())
    first = {kind: len(rows) for kind, rows in stored_rows(warehouse, crm).items()}
    sync(warehouse, source_for(crm, fake))  # a second sync changes nothing
    assert {kind: len(rows) for kind, rows in stored_rows(warehouse, crm).items()} == first


def test_a_skipped_api_is_a_warning_in_the_sync_summary_and_the_run_report(sqlite_url, crm_data):
    """Finding 3: a non-Enterprise portal still syncs, and the run report says what was skipped and why."""
    from tasks.observe import run_report_rows

    with FakeHubSpot(crm_data, now=NOW, enterprise=False) as fake:
        warehouse = Warehouse(sqlite_url)
        summary = sync(warehouse, source_for("hubspot", fake))
    assert warehouse.read_kind("accounts", source="hubspot").shape[0] == len(crm_data["accounts"])
    assert len(summary["events"]["warnings"]) == 1
    rows = run_report_rows({"extract": {"hubspot": summary}})
    warnings = [row for row in rows if row["what"] == "events: warning"]
    assert len(warnings) == 1 and "Enterprise" in warnings[0]["value"]


def _mutate(crm: str, fake, data: dict[str, pd.DataFrame]) -> tuple[str, str]:
    """One account renamed, one deleted, one contact retitled; returns (renamed, deleted)."""
    renamed, deleted = data["accounts"]["account_id"].iloc[[3, 5]]
    contact = data["contacts"]["contact_id"].iloc[0]
    fake.tick(3600)
    if crm == "salesforce":
        fake.update("Account", renamed, Name="Renamed Inc.")
        fake.delete("Account", deleted)
        fake.update("Contact", contact, Title="Chief Executive Officer")
    else:
        fake.update("companies", renamed, name="Renamed Inc.")
        fake.archive("companies", deleted)
        fake.update("contacts", contact, jobtitle="Chief Executive Officer")
    return renamed, deleted


def test_incremental_sync_fetches_only_changes_and_applies_deletes(db_url, crm, fake, crm_data):
    warehouse = Warehouse(db_url)
    config = app_config(salesforce={"overlap_seconds": 0}, hubspot={"overlap_seconds": 0})
    full = sync(warehouse, source_for(crm, fake, config))
    full_requests = fake.count()
    renamed, deleted = _mutate(crm, fake, crm_data)

    before, searches_before = fake.count(), fake.count("/search")
    summary = sync(warehouse, source_for(crm, fake, config))
    incremental_requests = fake.count() - before

    accounts = warehouse.read_kind("accounts", source=crm).set_index("account_id")
    assert accounts.loc[renamed, "name"] == "Renamed Inc." and deleted not in accounts.index
    contact = crm_data["contacts"]["contact_id"].iloc[0]
    contacts = warehouse.read_kind("contacts", source=crm).set_index("contact_id")
    assert contacts.loc[contact, "title"] == "Chief Executive Officer"
    account_object = "Account" if crm == "salesforce" else "companies"
    # the change plus at most the row stamped exactly at the stored watermark (>=)
    assert summary[account_object]["loaded"] <= 2
    assert sum(entry["deleted"] for entry in summary.values()) >= 1
    loaded = sum(entry["loaded"] for entry in summary.values())
    users = len(crm_data["users"])  # all stamped at the watermark (Salesforce) / no change filter (HubSpot owners)
    boundary = 20  # per object and event type, the rows stamped exactly at its watermark, and status histories
    assert loaded <= users + boundary < sum(entry["loaded"] for entry in full.values()) / 10, summary
    if crm == "salesforce":  # one query per object; only the 25 users (all at the watermark) take 2 pages;
        # one userinfo call tells the integration user (its status changes are not sales' answer); User and
        # Account are described once (the configured fields are checked before the first query)
        assert incremental_requests == len(salesforce_object_names()) + 2 + 2
    else:  # one search per object (companies, contacts, deals, emails, meetings, calls, tasks), no paging
        assert fake.count("/search") - searches_before == 7
    assert incremental_requests < full_requests


def salesforce_object_names() -> list[str]:
    from abm_sla.crm.salesforce.query import object_specs

    return [spec.name for spec in object_specs(app_config().sources.salesforce)]


@pytest.mark.parametrize("stop_after", [1, 4, 9, 17])
def test_a_sync_killed_after_n_pages_resumes_to_exactly_the_sources_rows(db_url, crm, fake, crm_data, stop_after):
    warehouse = Warehouse(db_url)
    with pytest.raises(KeyboardInterrupt):
        sync(warehouse, StopAfter(source_for(crm, fake), stop_after))
    assert sum(len(rows) for rows in stored_rows(warehouse, crm).values()) > 0
    resumed = sync(warehouse, source_for(crm, fake))
    assert stored_rows(warehouse, crm) == expected_rows(crm, crm_data)
    fresh = Warehouse(db_url.replace("warehouse.db", "fresh.db")) if "sqlite" in db_url else None
    if fresh is not None:  # the resumed sync did not start over
        full = sync(fresh, source_for(crm, fake))
        resumed_rows, full_rows = (sum(e["loaded"] for e in run.values()) for run in (resumed, full))
        assert resumed_rows < full_rows if stop_after > 2 else resumed_rows <= full_rows


def test_a_fault_that_outlasts_the_retries_stops_the_sync_and_the_next_one_completes(db_url, crm, fake, crm_data):
    warehouse = Warehouse(db_url)
    path = "/query" if crm == "salesforce" else "/search"
    fake.inject(503, "<html>Service Unavailable</html>", path=path, after=6, times=1_000)
    with pytest.raises(SourceError) as caught:
        sync(warehouse, source_for(crm, fake))
    assert "\n" not in str(caught.value)
    stored_before = sum(len(rows) for rows in stored_rows(warehouse, crm).values())
    assert stored_before > 0  # pages before the fault are kept
    fake.faults.clear()
    sync(warehouse, source_for(crm, fake))
    assert stored_rows(warehouse, crm) == expected_rows(crm, crm_data)


def _purge(crm: str, fake, account: str, activity: str | None = None) -> None:
    """Gone without a trace the APIs can show (recycle bin emptied / purged or merged away)."""
    with fake.lock:
        if crm == "salesforce":
            fake.records["Account"].pop(account)
            if activity:
                fake.records["Task"].pop(activity, None) or fake.records["Event"].pop(activity, None)
        else:
            fake.objects["companies"].pop(account)
            if activity:
                next(objects for objects in fake.objects.values() if activity in objects).pop(activity)


def test_a_weekly_id_scan_soft_deletes_what_the_crm_purged(db_url, crm, fake, crm_data):
    """Deletes the APIs can no longer show do not leave ghosts: every 7 days an id scan removes them."""
    warehouse = Warehouse(db_url)
    sync(warehouse, source_for(crm, fake))  # the first sync starts the reconciliation clock
    account = crm_data["accounts"]["account_id"].iloc[4]
    sales = crm_data["activities"][crm_data["activities"]["type"].isin(frames.SALES_TOUCHES)]
    activity = sales["activity_id"].iloc[0]
    _purge(crm, fake, account, activity)

    fake.tick(86_400)
    before = fake.count()
    summary = sync_source(warehouse, source_for(crm, fake), "run-2", fake.now)
    assert not any(name.endswith(":reconcile") for name in summary)  # not due yet: no id scan
    assert account in set(warehouse.read_kind("accounts", source=crm)["account_id"])

    fake.tick(7 * 86_400)
    summary = sync_source(warehouse, source_for(crm, fake), "run-3", fake.now)
    assert fake.count() > before
    gone = {name: entry["deleted"] for name, entry in summary.items() if name.endswith(":reconcile")}
    assert sum(gone.values()) == 2, summary
    assert account not in set(warehouse.read_kind("accounts", source=crm)["account_id"])
    assert activity not in set(warehouse.read_kind("activities", source=crm)["activity_id"])
    assert stored_rows(warehouse, crm)["contacts"] == expected_rows(crm, crm_data)["contacts"]  # nothing else


def test_an_id_scan_that_would_delete_most_rows_deletes_nothing_and_warns(sqlite_url, crm_data):
    with FakeHubSpot(crm_data, now=NOW) as fake:
        warehouse = Warehouse(sqlite_url)
        sync(warehouse, source_for("hubspot", fake))
        with fake.lock:
            fake.objects["companies"].clear()  # e.g. the token lost access to companies
        fake.tick(8 * 86_400)
        summary = sync_source(warehouse, source_for("hubspot", fake), "run-2", fake.now)
    assert summary["companies:reconcile"]["deleted"] == 0
    assert "nothing was deleted" in summary["companies:reconcile"]["warnings"][0]
    assert len(warehouse.read_kind("accounts", source="hubspot")) == len(crm_data["accounts"])


def test_tier_values_outside_the_tier_map_are_left_empty_with_one_warning(sqlite_url, crm, crm_data):
    """Issue 25: "Strategic" or "A" silently routed as Tier 3; now one warning a run names them, and a
    configured tier map maps them."""
    data = {**crm_data, "accounts": crm_data["accounts"].copy()}
    data["accounts"]["tier"] = data["accounts"]["tier"].astype("object")
    data["accounts"].iloc[:3, data["accounts"].columns.get_loc("tier")] = ["Strategic", "Strategic", "A"]
    odd = list(data["accounts"]["account_id"].iloc[:3])
    with start_fake(crm, data) as fake:
        warehouse = Warehouse(sqlite_url)
        summary = sync(warehouse, source_for(crm, fake))
        warnings = [w for entry in summary.values() for w in entry.get("warnings", []) if "tier values" in w]
        assert len(warnings) == 1 and "'Strategic' (2), 'A' (1)" in warnings[0]
        assert f"sources.{crm}.tier_map" in warnings[0]
        stored = warehouse.read_kind("accounts", source=crm).set_index("account_id")["tier"]
        assert stored[odd].isna().all() and stored.drop(odd).dropna().isin(["Tier 1", "Tier 2", "Tier 3"]).all()

        mapped = Warehouse(sqlite_url.replace("warehouse.db", "mapped.db"))
        config = app_config(**{crm: {"tier_map": {"Strategic": 1, "A": "Tier 2"}}})
        summary = sync(mapped, source_for(crm, fake, config))
        assert not [w for entry in summary.values() for w in entry.get("warnings", []) if "tier values" in w]
        stored = mapped.read_kind("accounts", source=crm).set_index("account_id")["tier"]
        assert stored[odd].tolist() == ["Tier 1", "Tier 1", "Tier 2"]


# ---- write-back ---------------------------------------------------------------------------------------


ON = WritebackConfig(enabled=True)


def seed_mqas(warehouse: Warehouse, crm: str, data: dict[str, pd.DataFrame], n: int = 2) -> list[str]:
    """``n`` routed MQAs of accounts synced from ``crm``, with a first-touch deadline; returns their account ids."""
    accounts = data["accounts"].iloc[:n]
    owner = data["users"]["user_id"].iloc[7]
    trigger = pd.Timestamp(NOW) - pd.Timedelta(hours=3)
    mqas = pd.DataFrame(
        {
            "account_id": accounts["account_id"].to_numpy(),
            "trigger_at": trigger,
            "firmographic": 30, "engagement": 20, "intent": 15, "total": 65,
            "reasons": [[{"category": "engagement", "rule": "form_submit", "count": 2, "points": 24}]] * n,
            "model_version": "test", "tier": 1,
            "owner_id": [owner] * n,
            "routed_at": pd.Timestamp(NOW) - pd.Timedelta(hours=1),
            "writeback_key": [f"wbkey{i:04d}" for i in range(n)],
        }
    )
    clocks = mqas[["account_id", "trigger_at"]].assign(
        clock="first_touch", status="pending", due_at=pd.Timestamp(NOW) + pd.Timedelta(hours=2)
    )
    with warehouse.engine.begin() as connection:
        warehouse.store_frames(connection, crm, "accounts", data["accounts"])
        warehouse.store_frames(connection, crm, "users", data["users"])
        warehouse.upsert(connection, schema.mqas, records(mqas))
        warehouse.upsert(connection, schema.sla_clocks, records(clocks))
    return list(mqas["account_id"])


def created_tasks(crm: str, fake) -> list[dict]:
    """Tasks the write-back created in the fake (their subjects carry the key)."""
    if crm == "salesforce":
        return [t for t in fake.records["Task"].values() if "[abm-sla " in str(t.get("Subject"))]
    return [t for t in fake.objects["tasks"].values() if "[abm-sla " in str(t["properties"].get("hs_task_subject"))]


def task_posts(crm: str, fake) -> int:
    path = "/sobjects/Task/" if crm == "salesforce" else "/crm/v3/objects/tasks"
    return sum(1 for r in fake.requests if r.method == "POST" and r.path.rstrip("/").endswith(path.rstrip("/")))


def test_write_back_creates_one_task_per_mqa_and_sets_the_status_once(sqlite_url, crm, fake, crm_data):
    warehouse = Warehouse(sqlite_url)
    accounts = seed_mqas(warehouse, crm, crm_data)
    writer = make_writer(source_for(crm, fake))

    none = {"pending": 0, "created": 0, "existing": 0, "failed": 0, "skipped": 0}
    assert write_back(warehouse, writer, ON, NOW) == {**none, "pending": 2, "created": 2}
    assert write_back(warehouse, writer, ON, NOW) == none

    tasks = created_tasks(crm, fake)
    assert len(tasks) == 2 and task_posts(crm, fake) == 2
    if crm == "salesforce":
        assert {t["WhatId"] for t in tasks} == set(accounts)
        assert {t["OwnerId"] for t in tasks} == {crm_data["users"]["user_id"].iloc[7]}
        assert {t["ReminderDateTime"] for t in tasks} == {"2026-03-02T14:00:00Z"}
        assert "form_submit: 24 points" in tasks[0]["Description"]
        assert all(fake.records["Account"][a]["ABM_Status__c"] == "MQA" for a in accounts)
    else:
        task_ids = {t["id"] for t in tasks}
        linked = {fake.associations[("tasks", t, "companies")][0] for t in task_ids}
        assert linked == set(accounts)
        assert {t["properties"]["hs_timestamp"] for t in tasks} == {"2026-03-02T14:00:00Z"}
        assert all(fake.objects["companies"][a]["properties"]["abm_status"] == "MQA" for a in accounts)
    done = mqas_written_back(warehouse)
    assert done["writeback_done_at"].notna().all()


def test_a_crash_after_the_crm_call_and_before_the_record_creates_nothing_twice(sqlite_url, crm, fake, crm_data):
    warehouse = Warehouse(sqlite_url)
    seed_mqas(warehouse, crm, crm_data, n=1)
    writer = make_writer(source_for(crm, fake))

    def die(*_args) -> None:
        raise KeyboardInterrupt("process killed after the CRM call")

    with pytest.raises(KeyboardInterrupt):
        write_back(warehouse, writer, ON, NOW, on_done=die)
    assert mqas_written_back(warehouse)["writeback_done_at"].isna().all()  # rolled back with the transaction
    assert len(created_tasks(crm, fake)) == 1

    counts = write_back(warehouse, writer, ON, NOW, on_done=record_done)
    assert counts == {"pending": 1, "created": 0, "existing": 1, "failed": 0, "skipped": 0}
    assert len(created_tasks(crm, fake)) == 1 and task_posts(crm, fake) == 1
    assert mqas_written_back(warehouse)["writeback_done_at"].notna().all()


@pytest.mark.parametrize("status", [502, 504, "dropped", "503-not-committed"])
def test_a_write_that_succeeded_but_whose_answer_was_lost_creates_one_task(sqlite_url, crm, crm_data, status):
    """Finding 7: the POST commits, the gateway answers 5xx, HubSpot's search index lags; still one task."""
    fake = FakeHubSpot(crm_data, now=NOW, search_lag=30).start() if crm == "hubspot" else start_fake(crm, crm_data)
    try:
        warehouse = Warehouse(sqlite_url)
        seed_mqas(warehouse, crm, crm_data, n=1)
        path = "/sobjects/Task" if crm == "salesforce" else "/crm/v3/objects/tasks"
        code = {"dropped": 0, "503-not-committed": 503}.get(status, status)
        fake.inject(code, "<html>Gateway</html>", path=path, method="POST",
                    commit=status != "503-not-committed", drop=status == "dropped")
        writer = make_writer(source_for(crm, fake))
        counts = write_back(warehouse, writer, ON, NOW)
        assert counts["failed"] == 0 and counts["created"] + counts["existing"] == 1
        assert len(created_tasks(crm, fake)) == 1

        with warehouse.engine.begin() as connection:  # as if the record had been lost: the writer looks again
            connection.execute(schema.mqas.update().values(writeback_done_at=None))
        assert write_back(warehouse, writer, ON, NOW)["existing"] == 1
        assert len(created_tasks(crm, fake)) == 1
    finally:
        fake.stop()


def test_a_task_on_a_later_association_page_is_found_not_created_twice(sqlite_url, crm_data):
    """Issue 25: v4 association batch reads page per input; the written task sits past the first page."""
    with FakeHubSpot(crm_data, now=NOW, association_page_size=5) as fake:
        warehouse = Warehouse(sqlite_url)
        [account] = seed_mqas(warehouse, "hubspot", crm_data, n=1)
        for n in range(12):  # the company's older tasks fill the first pages
            task = fake.insert("tasks", None, {"hs_task_subject": f"old task {n}"})
            fake.associate("tasks", task["id"], "companies", account)
        writer = make_writer(source_for("hubspot", fake))
        assert write_back(warehouse, writer, ON, NOW)["created"] == 1
        with warehouse.engine.begin() as connection:  # the record was lost: the writer must find its task
            connection.execute(schema.mqas.update().values(writeback_done_at=None))
        assert write_back(warehouse, writer, ON, NOW)["existing"] == 1
        assert len(created_tasks("hubspot", fake)) == 1 and task_posts("hubspot", fake) == 1


def test_the_write_back_never_answers_its_own_status_clock(sqlite_url, crm, fake, crm_data):
    """Finding 10: the status the writer sets, and any change by the integration user, is read back by the
    next sync but never stored as a status change (so it can't meet the status-update clock)."""
    warehouse = Warehouse(sqlite_url)
    sync(warehouse, source_for(crm, fake))
    accounts = seed_mqas(warehouse, crm, crm_data, n=2)
    assert write_back(warehouse, make_writer(source_for(crm, fake)), ON, NOW)["created"] == 2
    fake.tick(60)
    rep = crm_data["users"]["user_id"].iloc[3]
    if crm == "salesforce":  # the integration user also sets another value; a rep answers on the second
        fake.insert("AccountHistory", {"AccountId": accounts[0], "Field": "ABM_Status__c", "NewValue": "Nurture",
                                       "CreatedDate": sf_time(fake.now), "CreatedById": fake.integration_user})
        fake.insert("AccountHistory", {"AccountId": accounts[1], "Field": "ABM_Status__c", "NewValue": "Working",
                                       "CreatedDate": sf_time(fake.now), "CreatedById": rep})
    else:
        fake.update("companies", accounts[0], by={"sourceType": "INTEGRATION", "sourceId": fake.app_id},
                    abm_status="Nurture")
        fake.update("companies", accounts[1], by={"sourceType": "CRM_UI", "updatedByUserId": fake.user_id_of(rep)},
                    abm_status="Working")
    config = app_config(hubspot={"integration_app_ids": [fake.app_id]} if crm == "hubspot" else {})
    sync(warehouse, source_for(crm, fake, config))

    changes = warehouse.read_kind("status_changes", source=crm)
    recent = changes[changes["changed_at"] >= pd.Timestamp(NOW)]
    assert list(zip(recent["account_id"], recent["status"], strict=True)) == [(accounts[1], "working")]
    assert not (changes["status"] == "mqa").any()


def test_write_back_is_off_by_default_and_a_refusal_leaves_the_mqa_pending(sqlite_url, crm, fake, crm_data):
    warehouse = Warehouse(sqlite_url)
    seed_mqas(warehouse, crm, crm_data, n=1)
    writer = make_writer(source_for(crm, fake))
    assert write_back(warehouse, writer, WritebackConfig(), NOW)["pending"] == 0 and fake.count() == 0

    fake.inject(400, [{"errorCode": "INVALID_FIELD", "message": "nope"}] if crm == "salesforce" else
                {"status": "error", "message": "nope", "category": "VALIDATION_ERROR"}, method="POST", times=1)
    assert write_back(warehouse, writer, ON, NOW)["failed"] == 1
    assert mqas_written_back(warehouse)["writeback_done_at"].isna().all()
    assert write_back(warehouse, writer, ON, NOW)["created"] == 1


def test_write_back_to_the_other_crm_uses_its_ids_and_skips_companies_it_lacks(sqlite_url, crm_data):
    """MQAs keyed by Salesforce ids, written to HubSpot, which holds two of the three companies."""
    warehouse = Warehouse(sqlite_url)
    accounts = seed_mqas(warehouse, "salesforce", crm_data, n=3)
    hs_data = {
        "accounts": crm_data["accounts"].iloc[:2].assign(account_id=lambda f: "HS" + f["account_id"]),
        "users": crm_data["users"].assign(user_id=lambda f: "HS" + f["user_id"]),  # the same people (emails)
    }
    with warehouse.engine.begin() as connection:
        for kind, rows in hs_data.items():
            warehouse.store_frames(connection, "hubspot", kind, rows)
    fake = start_fake("hubspot", hs_data)
    try:
        counts = write_back(warehouse, make_writer(source_for("hubspot", fake)), ON, NOW)
        tasks = created_tasks("hubspot", fake)
        linked = {fake.associations[("tasks", t["id"], "companies")][0] for t in tasks}
    finally:
        fake.stop()
    assert counts == {"pending": 3, "created": 2, "existing": 0, "failed": 0, "skipped": 1}
    assert linked == {"HS" + a for a in accounts[:2]}
    assert {t["properties"]["hubspot_owner_id"] for t in tasks} == {"HS" + crm_data["users"]["user_id"].iloc[7]}
    done = mqas_written_back(warehouse).set_index("account_id")["writeback_done_at"]
    assert done[accounts[:2]].notna().all() and pd.isna(done[accounts[2]])


# ---- both CRMs ----------------------------------------------------------------------------------------


def sync_both(warehouse: Warehouse, sf_data: dict, hs_data: dict, config) -> None:
    """Sync a Salesforce fake and a HubSpot fake, seeded with these frames, into one warehouse."""
    sf, hs = start_fake("salesforce", sf_data), start_fake("hubspot", hs_data)
    try:
        sync(warehouse, source_for("salesforce", sf, config))
        sync(warehouse, source_for("hubspot", hs, config))
    finally:
        sf.stop()
        hs.stop()


def test_both_crms_synced_into_one_warehouse_unify_into_one_account_per_company(db_url, crm_data):
    """Salesforce has all 60 companies; HubSpot has 30 of them (other ids, other domain spellings) and 10 more."""
    accounts = crm_data["accounts"]
    shared = accounts.iloc[30:].assign(
        account_id=lambda f: "HS" + f["account_id"], domain=lambda f: "https://WWW." + f["domain"].str.upper() + "./"
    )
    extra = accounts.iloc[:10].assign(
        account_id=lambda f: "HSX" + f["account_id"], domain=lambda f: "new-" + f["domain"]
    )
    hs_accounts = pd.concat([shared, extra], ignore_index=True)
    hs_contacts = crm_data["contacts"][crm_data["contacts"]["account_id"].isin(accounts["account_id"].iloc[30:])]
    hs_contacts = hs_contacts.assign(
        contact_id="HS" + hs_contacts["contact_id"], account_id="HS" + hs_contacts["account_id"]
    )
    hs_data = {"accounts": hs_accounts, "contacts": hs_contacts, "users": crm_data["users"]}
    sf_data = {kind: crm_data[kind] for kind in ("accounts", "contacts", "users")}
    config = app_config(salesforce={"objects": ["User", "Account", "Contact"]},
                        hubspot={"objects": ["owners", "companies", "contacts"]})
    warehouse = Warehouse(db_url)
    sync_both(warehouse, sf_data, hs_data, config)

    view = CrmView(warehouse)
    unified = {kind: view.read_kind(kind) for kind in ("accounts", "contacts", "users")}
    lookup = view.links.mapping.set_index(["source", "source_account_id"])["account_id"]

    assert view.sources == ["hubspot", "salesforce"] and view.links.priority == ("salesforce", "hubspot")
    assert len(unified["accounts"]) == 70 and unified["accounts"]["account_id"].is_unique
    assert all(lookup[("hubspot", "HS" + a)] == a for a in accounts["account_id"].iloc[30:])
    assert all(lookup[("hubspot", "HSX" + a)] == "HSX" + a for a in accounts["account_id"].iloc[:10])
    assert set(unified["contacts"]["account_id"]) <= set(unified["accounts"]["account_id"])
    assert len(unified["contacts"]) == len(crm_data["contacts"]) + len(hs_contacts)
    assert len(unified["users"]) == len(crm_data["users"])  # the same people in both CRMs (matched by email)

    summary = stages.score(warehouse, pd.Timestamp(NOW), load_model(), None, "both")  # the pipeline reads the view
    scored = score_history.current_scores(warehouse)
    assert summary["accounts_scored"] == 70 and summary["mode"] == "full"  # several CRMs: always a full run
    assert len(scored) == 70 and scored["account_id"].is_unique
    hs_ids, _ = view.source_ids("hubspot")
    assert hs_ids[accounts["account_id"].iloc[40]] == "HS" + accounts["account_id"].iloc[40]

    # the daily tier-move ledger reads the unified view too (its activity facts from the re-keyed rows)
    policy, model, as_of = load_policy(), load_model(), pd.Timestamp(NOW)
    everything = scorecard.SlaData.of(**{kind: view.read_kind(kind) for kind in
                                         ("accounts", "contacts", "activities", "intent_signals", "opportunities")})
    expected = scorecard.tier_moves(everything, as_of, policy, model.decision_maker_pattern)
    stages.record_tier_moves(warehouse, as_of, policy, model, "both")
    ledger = warehouse.read_table(schema.tier_move_recommendations)
    assert len(expected) and sorted(ledger["account_id"]) == sorted(expected["account_id"])


def test_the_recorded_system_of_record_decides_whose_ids_and_owners_win(sqlite_url, crm_data):
    accounts = crm_data["accounts"].iloc[:5]
    first_user = crm_data["users"]["user_id"].iloc[0]
    hs_accounts = accounts.assign(account_id="HS" + accounts["account_id"], owner_id=first_user)
    warehouse = Warehouse(sqlite_url)
    config = app_config(salesforce={"objects": ["User", "Account"]}, hubspot={"objects": ["owners", "companies"]})
    sync_both(warehouse, {"accounts": accounts, "users": crm_data["users"]},
              {"accounts": hs_accounts, "users": crm_data["users"]}, config)
    assert set(CrmView(warehouse).read_kind("accounts")["account_id"]) == set(accounts["account_id"])

    record_system_of_record(warehouse, owner="hubspot", tier="hubspot")
    unified = CrmView(warehouse).read_kind("accounts").set_index("account_id")
    assert set(unified.index) == set(hs_accounts["account_id"])
    assert (unified["owner_id"] == first_user).all()


# ---- abm-sla.yaml ---------------------------------------------------------------------------------------



EXAMPLE = Path(__file__).resolve().parents[2] / "abm-sla.example.yaml"


def test_the_example_config_is_valid_and_equals_the_defaults():
    assert load_app_config(EXAMPLE) == AppConfig()  # the example documents the defaults
    assert load_app_config(EXAMPLE).writeback.enabled is False


def test_no_file_gives_the_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_app_config()
    assert config.system_of_record.owner == "salesforce" and config.writeback_target() == "salesforce"
    (tmp_path / "abm-sla.yaml").write_text("system_of_record: {owner: hubspot}\nwriteback: {enabled: true}\n")
    assert load_app_config().writeback_target() == "hubspot"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources: {hubspot: {page_size: 500}}", "sources.hubspot.page_size: Input should be less than or equal"),
        ("writeback: {enabled: true, dry_run: true}", "writeback.dry_run: Extra inputs are not permitted"),
        ("system_of_record: {owner: pipedrive}", "system_of_record.owner: Input should be 'salesforce' or"),
        ("sources: [1, 2", "not valid YAML"),
        ("- a list", "the top level must be a mapping"),
    ],
)
def test_a_bad_config_is_one_line_naming_the_field(tmp_path, text, message):
    path = tmp_path / "abm-sla.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_app_config(path)
    assert "\n" not in str(caught.value)


def test_credentials_from_prefect_secret_blocks_through_an_injected_loader(monkeypatch):
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    config = parse_app_config({"sources": {"hubspot": {"credentials": {"env": {"access_token": "HUBSPOT_ACCESS_TOKEN"},
                                                                       "blocks": {"access_token": "hs-token"}}}}})
    credentials = config.sources.hubspot.credentials
    with pytest.raises(ConfigError, match="Prefect Secret blocks \\(hs-token\\)"):
        credentials.resolve()
    set_secret_loader({"hs-token": "pat-from-block"}.__getitem__)
    try:
        assert credentials.resolve() == {"access_token": "pat-from-block"}
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-from-env")
        assert credentials.resolve() == {"access_token": "pat-from-env"}  # a set variable wins
    finally:
        set_secret_loader(None)


def test_build_source_names_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="unknown source 'pipedrive'"):
        build_source("pipedrive", app_config())
    with pytest.raises(ConfigError, match="needs a folder"):
        build_source("files", app_config())
