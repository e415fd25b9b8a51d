"""The Salesforce source against a fake org on 127.0.0.1 (real HTTP, simple-salesforce on the client side)."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import pytest

from abm_sla.crm.mapping import SalesforceConfig
from abm_sla.crm.salesforce.login import client_factory
from abm_sla.crm.salesforce.query import build_soql, object_specs, parse_time
from abm_sla.crm.salesforce.source import SalesforceSource
from abm_sla.domain import frames
from abm_sla.errors import SourceError
from tests.fakes import MemoryStore
from tests.fakes.salesforce import FakeSalesforce

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
N_ACCOUNTS = 7


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def crm_frames() -> dict[str, pd.DataFrame]:
    """A tiny normalized CRM: 7 accounts, contacts, every touch type, a status history."""
    users = [
        {
            "user_id": "005U1",
            "name": "Ann",
            "email": "ann@x.io",
            "role": "Sales",
            "manager_id": "005U2",
            "time_zone": "Europe/Berlin",
            "country": "DE",
            "active": True,
        },
        {
            "user_id": "005U2",
            "name": "Bo",
            "email": "bo@x.io",
            "role": "Manager",
            "manager_id": None,
            "time_zone": "America/New_York",
            "country": "US",
            "active": False,
        },
    ]
    accounts = [
        {
            "account_id": f"001A{i:02d}",
            "name": f"Acme {i}",
            "domain": f"https://www.Acme{i}.com/about",
            "industry": "Software",
            "employees": 100 + i,
            "annual_revenue": 1e6 * i,
            "country": "US",
            "owner_id": "005U1",
            "tier": str(1 + i % 3),
            "created_at": ts("2025-12-01"),
            "updated_at": ts(f"2026-01-{i + 1:02d} 08:00"),
        }
        for i in range(N_ACCOUNTS)
    ]
    contacts = [
        {
            "contact_id": f"003C{i:02d}",
            "account_id": f"001A{i:02d}",
            "title": "VP Sales",
            "email": f"c{i}@acme{i}.com",
            "created_at": ts("2025-12-02"),
            "updated_at": ts(f"2026-01-{i + 1:02d} 09:00"),
        }
        for i in range(N_ACCOUNTS)
    ]
    kinds = [
        "call",
        "email_sent",
        "linkedin_message",
        "meeting",
        "email_open",
        "email_click",
        "form_submit",
        "web_visit",
        "webinar",
    ]
    prefixes = {"call": "00T", "email_sent": "00T", "linkedin_message": "00T", "meeting": "00U"}
    activities = [
        {
            "activity_id": f"{prefixes.get(kind, '00v')}X{n:03d}",
            "account_id": "001A01",
            "type": kind,
            "occurred_at": ts(f"2026-02-{n + 1:02d} 10:00"),
            "contact_id": "003C01",
            "owner_id": "005U1",
            "url": None,
            "subject": f"{kind} {n}",
        }
        for n, kind in enumerate(kinds)
    ]
    opportunities = [
        {
            "opportunity_id": "006O1",
            "account_id": "001A01",
            "stage": "Prospecting",
            "amount": 5000.0,
            "created_at": ts("2026-01-10"),
            "close_date": ts("2026-04-01"),
            "is_closed": False,
            "is_won": False,
        }
    ]
    status = [
        {
            "status_change_id": None,
            "account_id": "001A01",
            "status": "Working",
            "changed_at": ts("2026-02-15 12:00"),
            "changed_by": "005U1",
        },
        {
            "status_change_id": None,
            "account_id": "001A02",
            "status": "Rejected",
            "changed_at": ts("2026-02-16 12:00"),
            "changed_by": "005U1",
        },
    ]
    return {
        "users": pd.DataFrame(users),
        "accounts": pd.DataFrame(accounts),
        "contacts": pd.DataFrame(contacts),
        "activities": pd.DataFrame(activities),
        "opportunities": pd.DataFrame(opportunities),
        "status_changes": pd.DataFrame(status),
    }


class Sleeps(list):
    """An injected sleep that only records."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake():
    with FakeSalesforce(crm_frames(), now=NOW, page_size=3) as server:
        yield server


def make_config(**overrides) -> SalesforceConfig:
    base = {
        "bulk_threshold": None,
        "bulk_poll_seconds": 0,
        "role_map": {"sales": "sales", "manager": "manager"},
        "retry": {"max_attempts": 4, "base_delay": 0.01, "max_delay": 0.05, "timeout": 5},
    }
    return SalesforceConfig.model_validate({**base, **overrides})


def make_source(fake: FakeSalesforce, sleeps: Sleeps | None = None, **overrides) -> SalesforceSource:
    return SalesforceSource(
        make_config(**overrides),
        fake.factory(),
        now=lambda: fake.now,
        sleep=sleeps if sleeps is not None else Sleeps(),
    )


def test_full_sync_maps_every_object_to_frames(fake):
    store = MemoryStore()
    pages = store.sync(make_source(fake).pages(store))

    assert store.ids("accounts") == {f"001A{i:02d}" for i in range(N_ACCOUNTS)}
    assert store.ids("contacts") == {f"003C{i:02d}" for i in range(N_ACCOUNTS)}
    assert store.ids("users") == {"005U1", "005U2"}
    assert store.ids("opportunities") == {"006O1"}
    activities = store.rows["activities"]
    assert sorted(row["type"] for row in activities.values()) == sorted(
        [
            "call",
            "email_sent",
            "linkedin_message",
            "meeting",
            "email_open",
            "email_click",
            "form_submit",
            "web_visit",
            "webinar",
        ]
    )
    statuses = {row["account_id"]: row["status"] for row in store.rows["status_changes"].values()}
    assert statuses == {"001A01": "working", "001A02": "rejected"}

    account = store.rows["accounts"]["001A03"]
    assert account["domain"] == "acme3.com" and account["tier"] == "Tier 1" and account["employees"] == 103.0
    assert account["updated_at"] == ts("2026-01-04 08:00")
    user = store.rows["users"]["005U1"]
    assert (user["role"], user["time_zone"], user["manager_id"], user["active"]) == (
        "sales",
        "Europe/Berlin",
        "005U2",
        True,
    )
    assert store.rows["users"]["005U2"]["active"] is False
    call = next(r for r in activities.values() if r["type"] == "call")
    assert (call["contact_id"], call["owner_id"], call["occurred_at"]) == (
        "003C01",
        "005U1",
        ts("2026-02-01 10:00"),
    )
    webinar = next(r for r in activities.values() if r["type"] == "webinar")
    assert webinar["activity_id"].endswith(":webinar") and webinar["account_id"] == "001A01"

    for page in pages:
        assert list(page.rows.columns) == [*frames.COLUMNS[page.kind], "raw"]
        for column in frames.TIMESTAMP_COLUMNS[page.kind]:
            assert str(page.rows[column].dtype) == "datetime64[ns, UTC]"
        assert page.cursor is not None and parse_time(page.cursor) <= NOW
    # one Page per REST page: 7 accounts in pages of 3 → 3 pages, paged through nextRecordsUrl
    assert sum(1 for p in pages if p.kind == "accounts" and p.object_name == "Account") == 3
    assert fake.count("/query/01gFAKE") >= 2
    assert fake.count("/queryAll") == len(object_specs(make_config()))


def test_soql_is_incremental_ordered_and_bounded_by_the_sync_start():
    spec = next(s for s in object_specs(make_config()) if s.name == "Account")
    soql = build_soql(spec, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), NOW)
    assert "WHERE SystemModstamp >= 2026-01-01T00:00:00Z AND SystemModstamp <= 2026-03-02T12:00:00Z" in soql
    assert soql.endswith("ORDER BY SystemModstamp, Id")
    history = next(s for s in object_specs(make_config()) if s.name == "AccountHistory")
    assert "CreatedDate >= " in build_soql(history, NOW, NOW) and "Field = 'ABM_Status__c'" in build_soql(
        history, NOW, NOW
    )


def test_incremental_sync_fetches_only_changes_and_deletes(fake):
    store = MemoryStore()
    store.sync(make_source(fake, overlap_seconds=0).pages(store))
    cursor_before = store.cursors[("salesforce", "Account")]

    fake.tick(3600)
    fake.update("Account", "001A02", Name="Acme Two")
    fake.delete("Account", "001A04")
    fake.delete("CampaignMember", "00vX004")  # the email_open touch
    fake.update("Task", "00TX000", Subject="call, edited")
    second = store.sync(make_source(fake, overlap_seconds=0).pages(store))

    changed = {row["account_id"] for p in second if p.kind == "accounts" for row in p.rows.to_dict("records")}
    assert changed == {"001A02", "001A06"}  # the change, and the row at the watermark itself (>=)
    assert [d for p in second if p.object_name == "Account" for d in p.deleted_ids] == ["001A04"]
    assert "001A04" not in store.ids("accounts") and store.rows["accounts"]["001A02"]["name"] == "Acme Two"
    assert "00vX004:email_open" not in store.ids("activities")
    assert store.rows["activities"]["00TX000"]["subject"] == "call, edited"
    first_boundary = {
        "User": 2,
        "Contact": 1,
        "Opportunity": 1,
        "Event": 1,
        "CampaignMember": 1,
        "AccountHistory": 1,
    }
    for page in second:  # besides the changes, only rows stamped exactly at the watermark are re-read
        if page.object_name in first_boundary:
            assert len(page.rows) <= first_boundary[page.object_name], page.object_name
    assert parse_time(store.cursors[("salesforce", "Account")]) > parse_time(cursor_before)


def test_overlap_window_rereads_recent_rows_and_the_watermark_never_passes_the_sync_start(fake):
    store = MemoryStore()
    sync_start = NOW - dt.timedelta(hours=1)
    fake.tick(-3600 * 2)
    fake.update("Account", "001A00", Name="early")  # 10:00, before the sync start
    fake.tick(3600 * 2)
    fake.update("Account", "001A01", Name="late")  # 12:00, after the sync start
    source = SalesforceSource(make_config(overlap_seconds=600), fake.factory(), now=lambda: sync_start)
    store.sync(source.pages(store))
    assert parse_time(store.cursors[("salesforce", "Account")]) == NOW - dt.timedelta(hours=2)
    assert "001A01" not in store.ids("accounts")  # changed after the sync start: waits for the next sync

    fake.update("Account", "001A05", Name="five")
    second = store.sync(make_source(fake, overlap_seconds=600).pages(store))
    reread = {r["account_id"] for p in second if p.kind == "accounts" for r in p.rows.to_dict("records")}
    assert reread == {"001A00", "001A01", "001A05"}  # 001A00 again: inside the 10-minute overlap


def test_5xx_in_the_middle_of_paging_is_retried_with_backoff(fake):
    sleeps = Sleeps()
    fake.inject(503, "<html>Service Unavailable</html>", path="/query/01gFAKE", times=2, after=1)
    fake.inject(500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": "boom"}], path="/queryAll", after=3)
    store = MemoryStore()
    store.sync(make_source(fake, sleeps).pages(store))
    assert store.ids("accounts") == {f"001A{i:02d}" for i in range(N_ACCOUNTS)}
    assert len(sleeps) == 3 and all(0 < s <= 0.05 for s in sleeps)


def test_429_storm_gives_up_with_a_one_line_error_after_the_configured_attempts(fake):
    sleeps = Sleeps()
    fake.inject(429, "Too Many Requests", times=100)
    with pytest.raises(SourceError, match="HTTP 429") as caught:
        list(make_source(fake, sleeps).pages(MemoryStore()))
    assert "\n" not in str(caught.value)
    assert len(sleeps) == 3 and fake.count() == 4


def test_request_limit_exceeded_stops_with_a_clear_message_and_keeps_earlier_pages(fake):
    store = MemoryStore()
    pages = make_source(fake).pages(store)
    store.store(next(pages))
    fake.request_limit_exceeded = True
    with pytest.raises(SourceError, match="REQUEST_LIMIT_EXCEEDED"):
        store.sync(pages)
    assert store.ids("users") and ("salesforce", "User") in store.cursors


def test_quota_guard_stops_at_the_configured_share_of_the_daily_quota(fake):
    fake.api_used, fake.api_total = 893, 1000
    store = MemoryStore()
    with pytest.raises(SourceError, match=r"used 9\d\d of its 1000 daily API requests.*90%"):
        store.sync(make_source(fake, quota_share=0.9).pages(store))
    assert store.pages >= 1  # stopped after the pages it could afford, which are kept
    requests_made = fake.count()
    assert requests_made <= 8


def test_expired_session_logs_in_again(fake):
    store = MemoryStore()
    pages = make_source(fake).pages(store)
    store.store(next(pages))
    fake.expire_session(reissue=True)
    store.sync(pages)
    assert store.ids("accounts") == {f"001A{i:02d}" for i in range(N_ACCOUNTS)}
    assert len(fake.tokens) == 1


def test_expired_session_without_a_way_to_log_in_is_a_clean_error(fake):
    fake.expire_session(reissue=False)
    with pytest.raises(SourceError, match="session expired or invalid"):
        list(make_source(fake).pages(MemoryStore()))


@pytest.mark.parametrize("stop_after", [1, 3, 5, 9])
def test_a_sync_stopped_midway_resumes_and_yields_every_row_once(fake, stop_after):
    full = MemoryStore()
    full.sync(make_source(fake).pages(full))

    partial = MemoryStore()
    consumed = partial.sync(make_source(fake).pages(partial), stop_after=stop_after)
    assert len(consumed) == stop_after
    resumed = partial.sync(make_source(fake).pages(partial))
    assert resumed, "the resumed sync re-reads from the stored cursors"
    for kind in full.rows:
        assert partial.rows[kind].keys() == full.rows[kind].keys(), kind
    first_pages_accounts = [r for p in consumed if p.kind == "accounts" for r in p.rows["account_id"]]
    resumed_accounts = [r for p in resumed if p.kind == "accounts" for r in p.rows["account_id"]]
    assert len(set(first_pages_accounts) & set(resumed_accounts)) <= 1  # only the overlap is re-read


def test_bulk_path_above_the_threshold_reads_the_same_rows(fake):
    rest = MemoryStore()
    rest.sync(make_source(fake).pages(rest))
    bulk_store = MemoryStore()
    pages = bulk_store.sync(make_source(fake, bulk_threshold=5, bulk_page_size=4).pages(bulk_store))

    assert fake.count("/jobs/query", method="POST") >= 1
    assert fake.count("/results") >= 2
    account_pages = [p for p in pages if p.kind == "accounts" and p.object_name.startswith("Account")]
    data_pages = [p for p in account_pages if p.object_name == "Account:bulk"]
    assert len(data_pages) == 2 and all(len(p.rows) for p in data_pages)
    # unordered results: each page stores the job's next locator; the watermark moves after the last one
    assert [p.object_name for p in account_pages][-1] == "Account"
    assert account_pages[-1].cursor == rest.cursors[("salesforce", "Account")]  # the newest stamp, as REST's
    for kind in rest.rows:
        assert bulk_store.rows[kind].keys() == rest.rows[kind].keys(), kind
    bulk_account = {k: v for k, v in bulk_store.rows["accounts"]["001A03"].items() if k != "raw"}
    rest_account = {k: v for k, v in rest.rows["accounts"]["001A03"].items() if k != "raw"}
    assert bulk_account == rest_account


def test_failed_bulk_job_is_a_clean_error(fake):
    fake.bulk_fail = True
    with pytest.raises(SourceError, match="bulk query Account"):
        list(make_source(fake, bulk_threshold=5).pages(MemoryStore()))


def test_intent_field_becomes_intent_signals_with_the_cursor_on_the_last_page(fake):
    fake.update("Account", "001A01", Intent_Score__c=82.0, Intent_Topic__c="ABM software")
    fake.update("Account", "001A02", Intent_Score__c=140.0)
    store = MemoryStore()
    pages = store.sync(
        make_source(fake, intent_score_field="Intent_Score__c", intent_topic_field="Intent_Topic__c").pages(
            store
        )
    )
    intents = list(store.rows["intent_signals"].values())
    assert [(i["account_id"], i["topic"], i["score"]) for i in intents] == [("001A01", "ABM software", 82.0)]
    assert any("outside 0-100" in q.reason for p in pages for q in p.quarantined)
    account_pages = [p for p in pages if p.object_name == "Account"]
    assert all(p.cursor is None for p in account_pages if p.kind == "accounts")
    assert all(p.cursor is not None for p in account_pages if p.kind == "intent_signals")


def test_a_mapped_field_the_org_lacks_is_one_warning_naming_its_config_key_and_the_rest_syncs(fake):
    store = MemoryStore()
    pages = store.sync(make_source(fake, tier_field="Tier_X__c", objects=["Account"]).pages(store))
    warnings = [line for page in pages for line in page.warnings]
    assert warnings == ["Salesforce Account has no field Tier_X__c (sources.salesforce.tier_field): accounts sync "
                        "without a tier; set the key to your field or to null"]
    assert len(store.ids("accounts")) == N_ACCOUNTS


def test_a_vanilla_org_syncs_without_tier_and_status_and_says_which_keys_to_map():
    """Issue 25: the default config names Tier__c and ABM_Status__c; a vanilla org has neither (its query would
    be refused with INVALID_FIELD). Checked against describe() before the first query; the rest syncs."""
    with FakeSalesforce(crm_frames(), now=NOW, page_size=3, custom_fields=False) as org:
        store = MemoryStore()
        pages = store.sync(make_source(org).pages(store))
        queries = [r.query.get("q", [""])[0] for r in org.requests if "/query" in r.path]
        kinds = ["describe" if r.path.endswith("/describe") else "query" for r in org.requests
                 if r.path.endswith("/describe") or "/query" in r.path]
    warnings = [line for page in pages for line in page.warnings if "sources.salesforce" in line]
    assert [w.split(" (")[1].split(")")[0] for w in warnings] == ["sources.salesforce.tier_field",
                                                                   "sources.salesforce.status_field"]
    assert all("\n" not in w for w in warnings) and "Tier__c" in warnings[0] and "ABM_Status__c" in warnings[1]
    assert len(store.ids("accounts")) == N_ACCOUNTS and store.ids("contacts") and store.ids("activities")
    assert {row["tier"] for row in store.rows["accounts"].values()} == {None}
    assert not store.rows.get("status_changes") and not any("__c" in q for q in queries)
    assert kinds[: kinds.index("query")] == ["describe", "describe"]  # User and Account, before the first query


def test_the_fake_refuses_an_unknown_field_as_salesforce_does_and_the_error_is_one_line():
    with FakeSalesforce(crm_frames(), now=NOW, custom_fields=False) as org:
        source = make_source(org, objects=["Account"])
        with pytest.raises(SourceError, match=r"INVALID_FIELD No such column 'Tier__c' on entity 'Account'\.$"):
            list(source._query_all("SELECT Id, Tier__c FROM Account", "read accounts"))


def test_credentials_from_env_never_reach_messages_or_logs(fake, monkeypatch, caplog):
    secret = fake.token
    monkeypatch.setenv("SF_INSTANCE_URL", fake.url)
    monkeypatch.setenv("SF_ACCESS_TOKEN", secret)
    caplog.set_level(logging.DEBUG)
    config = make_config()
    source = SalesforceSource(config, client_factory(config, session=fake.session()), sleep=Sleeps())
    store = MemoryStore()
    store.sync(source.pages(store))
    assert store.ids("accounts")

    fake.inject(503, "down", times=2)
    fake.expire_session(reissue=False)
    with pytest.raises(SourceError) as caught:
        list(source.pages(MemoryStore()))
    assert secret not in str(caught.value) and secret not in repr(caught.value)
    assert caught.value.__cause__ is None
    assert all(secret not in record.getMessage() for record in caplog.records)
    assert "Salesforce" in caplog.text  # the retries were logged


def test_missing_credentials_name_the_variables_not_values(monkeypatch):
    for name in SalesforceConfig().credentials.env.values():
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SourceError, match="SF_ACCESS_TOKEN"):
        client_factory(SalesforceConfig())()


def _login_env(monkeypatch, **values: str) -> None:
    """Only these Salesforce variables are set (``""`` = set but empty)."""
    for name in SalesforceConfig().credentials.env.values():
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("token", ["", "TOKEN123"])
def test_username_and_password_log_in_with_a_security_token_even_an_empty_one(fake, monkeypatch, token):
    """Finding 4: an empty security token (trusted IP range) is a valid login, not a dropped variable."""
    fake.logins["rev@acme.io"] = ("pw-secret", token)
    _login_env(monkeypatch, SF_USERNAME="rev@acme.io", SF_PASSWORD="pw-secret", SF_SECURITY_TOKEN=token)
    config = make_config(objects=["Account"])
    source = SalesforceSource(config, client_factory(config, session=fake.session()), sleep=Sleeps())
    store = MemoryStore()
    store.sync(source.pages(store))
    assert len(store.ids("accounts")) == N_ACCOUNTS and fake.logins_served == ["soap"]


def test_username_and_password_without_a_security_token_is_one_clear_line(fake, monkeypatch):
    _login_env(monkeypatch, SF_USERNAME="rev@acme.io", SF_PASSWORD="pw-secret")
    config = make_config()
    with pytest.raises(SourceError, match="SF_SECURITY_TOKEN") as caught:
        client_factory(config, session=fake.session())()
    assert "\n" not in str(caught.value) and "pw-secret" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_a_wrong_password_is_one_line_without_the_secret(fake, monkeypatch):
    fake.logins["rev@acme.io"] = ("right", "")
    _login_env(monkeypatch, SF_USERNAME="rev@acme.io", SF_PASSWORD="wrong-pass", SF_SECURITY_TOKEN="")
    with pytest.raises(SourceError, match="INVALID_LOGIN") as caught:
        client_factory(make_config(), session=fake.session())()
    assert "wrong-pass" not in str(caught.value) and "\n" not in str(caught.value)


def _sync_across_an_expiry(fake: FakeSalesforce, config: SalesforceConfig) -> MemoryStore:
    """Store one page, let every session die (no reissue), then finish the sync."""
    source = SalesforceSource(config, client_factory(config, session=fake.session()), sleep=Sleeps())
    store = MemoryStore()
    pages = source.pages(store)
    store.store(next(pages))
    fake.expire_session(reissue=False)
    store.sync(pages)
    return store


def test_a_refresh_token_gets_a_new_session_when_one_expires(fake, monkeypatch):
    """Finding 6: the OAuth refresh token flow, not the expired token read again."""
    fake.refresh_tokens["rt-secret-1"] = "CONSUMER1"
    _login_env(monkeypatch, SF_REFRESH_TOKEN="rt-secret-1", SF_CONSUMER_KEY="CONSUMER1",
               SF_CONSUMER_SECRET="cs-secret")
    store = _sync_across_an_expiry(fake, make_config())
    assert store.ids("accounts") == {f"001A{i:02d}" for i in range(N_ACCOUNTS)}
    assert fake.logins_served == ["refresh_token", "refresh_token"]


def test_an_expired_static_token_falls_back_to_a_password_login(fake, monkeypatch):
    fake.logins["rev@acme.io"] = ("pw-secret", "")
    _login_env(monkeypatch, SF_ACCESS_TOKEN=fake.token, SF_INSTANCE_URL=fake.url, SF_USERNAME="rev@acme.io",
               SF_PASSWORD="pw-secret", SF_SECURITY_TOKEN="")
    store = _sync_across_an_expiry(fake, make_config())
    assert len(store.ids("accounts")) == N_ACCOUNTS and fake.logins_served == ["soap"]


def test_a_jwt_bearer_key_gets_a_new_session_when_one_expires(fake, monkeypatch):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    fake.jwt_apps["CONSUMER2"] = "rev@acme.io"
    _login_env(monkeypatch, SF_USERNAME="rev@acme.io", SF_CONSUMER_KEY="CONSUMER2", SF_PRIVATE_KEY=pem)
    store = _sync_across_an_expiry(fake, make_config())
    assert len(store.ids("accounts")) == N_ACCOUNTS and fake.logins_served[:2] == ["jwt", "jwt"]


def test_bulk_results_are_streamed_page_by_page_and_a_stopped_sync_resumes_at_the_next_locator(fake):
    """Finding 9: each result page is stored as it arrives; a resumed sync asks for the next page of the
    same job (no new job, no page read twice)."""
    bulk = {"bulk_threshold": 1, "bulk_page_size": 2, "objects": ["Account"]}
    store = MemoryStore()
    source = make_source(fake, **bulk)
    pages = source.pages(store)
    first = next(pages)
    assert first.object_name == "Account:bulk" and len(first.rows) == 2
    assert fake.count("/results") == 1  # streamed: nothing read ahead of the page being stored
    store.store(first)
    store.store(next(pages))
    del pages  # the process dies here

    resumed = store.sync(make_source(fake, **bulk).pages(store))
    assert store.ids("accounts") == {f"001A{i:02d}" for i in range(N_ACCOUNTS)}
    assert fake.count("/jobs/query", method="POST") == 1 and fake.count("/results") == 4  # 7 rows, pages of 2
    assert sum(len(p.rows) for p in resumed if p.kind == "accounts") == 3
    assert parse_time(store.cursors[("salesforce", "Account")]) == ts(f"2026-01-{N_ACCOUNTS:02d} 08:00")  # newest row

    store.sync(make_source(fake, **bulk).pages(store))  # a finished job is not resumed again
    assert fake.count("/results") == 4


def test_bulk_calls_count_against_the_daily_quota_guard(fake):
    """Finding 9: job polls and result pages are API calls; the guard sees them and stops in the middle."""
    fake.api_used, fake.api_total = 880, 1000
    store = MemoryStore()
    source = make_source(fake, bulk_threshold=1, bulk_page_size=1, objects=["Account"], quota_share=0.89)
    with pytest.raises(SourceError, match=r"used 89\d of its 1000 daily API requests"):
        store.sync(source.pages(store))
    assert 0 < fake.count("/results") < N_ACCOUNTS and store.ids("accounts")  # pages before the stop are kept


def test_reason_field_is_read_with_its_status_and_a_reason_saved_alone_is_kept():
    frames = crm_frames()
    frames["status_changes"] = frames["status_changes"].assign(reason=[None, "No budget"])
    with FakeSalesforce(frames, now=NOW, page_size=3, reason_field="ABM_Reason__c") as server:
        server.insert("AccountHistory", {"AccountId": "001A01", "Field": "ABM_Reason__c", "NewValue": "Wrong contact",
                                         "CreatedDate": "2026-02-17T09:00:00.000+0000", "CreatedById": "005U1"})
        store = MemoryStore()
        store.sync(make_source(server, objects=["User", "Account", "AccountHistory"],
                               reason_field="ABM_Reason__c").pages(store))
    rows = sorted((r["account_id"], str(r["status"]), str(r["reason"])) for r in store.rows["status_changes"].values())
    assert rows == [("001A01", "None", "Wrong contact"), ("001A01", "working", "None"),
                    ("001A02", "rejected", "No budget")]


def list_periods(store: MemoryStore) -> set[tuple]:
    """The stored target account list periods: (account, added_at, removed_at), missing as None."""
    return {tuple(None if pd.isna(r[c]) else r[c] for c in ("account_id", "added_at", "removed_at"))
            for r in store.rows.get("target_accounts", {}).values()}


def test_target_account_periods_come_from_the_checkbox_field_history():
    """Issue 15: a history-tracked Account checkbox (``tal_field``); a box ticked at creation has no history."""
    data = crm_frames()
    at = lambda text: pd.Timestamp(text, tz="UTC")  # noqa: E731
    data["target_accounts"] = pd.DataFrame({
        "account_id": ["001A01", "001A02", "001A03"],
        "added_at": [at("2026-02-01"), at("2026-02-05 09:30"), pd.NaT],  # 001A03: ticked when created
        "removed_at": [at("2026-02-10"), pd.NaT, pd.NaT]})
    with FakeSalesforce(data, now=NOW, page_size=3) as server:
        store = MemoryStore()
        sync = lambda: store.sync(make_source(server, objects=["Account"], overlap_seconds=0,  # noqa: E731
                                              tal_field="ABM_Target_Account__c").pages(store))
        sync()
        assert list_periods(store) == {("001A01", at("2026-02-01"), at("2026-02-10")),
                                       ("001A02", at("2026-02-05 09:30"), None), ("001A03", None, None)}
        server.tick(3600)
        server.update("Account", "001A03", ABM_Target_Account__c=False)  # unticked: the period ends now
        server.update("Account", "001A04", ABM_Target_Account__c=True)  # ticked: a new period
        sync()
        now = pd.Timestamp(server.now)
        assert list_periods(store) == {("001A01", at("2026-02-01"), at("2026-02-10")),
                                       ("001A02", at("2026-02-05 09:30"), None), ("001A03", None, now),
                                       ("001A04", now, None)}
        assert len(store.rows["target_accounts"]) == 4  # 001A03's row was updated, not doubled
        soql = [r.query.get("q", [""])[0] for r in server.requests if "AccountHistory" in str(r.query)]
        assert soql and all("Field = 'ABM_Target_Account__c' AND AccountId IN (" in q for q in soql)


def test_without_a_tal_field_no_list_is_read(fake):
    store = MemoryStore()
    store.sync(make_source(fake, objects=["Account"]).pages(store))
    assert not list_periods(store)
    assert not any("AccountHistory" in str(r.query) for r in fake.requests)


# -- auth that survives real orgs (issue 25) ---------------------------------------------------------------


def _rotating(fake: FakeSalesforce, monkeypatch) -> None:
    fake.rotate_refresh_tokens = True
    fake.refresh_tokens["rt-secret-1"] = "CONSUMER1"
    _login_env(monkeypatch, SF_REFRESH_TOKEN="rt-secret-1", SF_CONSUMER_KEY="CONSUMER1",
               SF_CONSUMER_SECRET="cs-secret")


def test_a_rotated_refresh_token_is_kept_atomically_in_the_token_file_for_the_next_run(
        fake, monkeypatch, tmp_path, caplog):
    """With rotation on, each refresh invalidates the token used: the re-login in the same run and the next run
    use the newest one, kept in the token file (mode 0600), never logged."""
    _rotating(fake, monkeypatch)
    caplog.set_level(logging.DEBUG)
    token_file = tmp_path / "secrets" / "sf-refresh-token"
    config = make_config(token_store={"kind": "file", "path": str(token_file)})
    store = _sync_across_an_expiry(fake, config)  # two refreshes in one run
    assert len(store.ids("accounts")) == N_ACCOUNTS
    kept = token_file.read_text()
    assert set(fake.refresh_tokens) == {kept} and kept != "rt-secret-1"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in token_file.parent.iterdir()] == ["sf-refresh-token"]  # no temporary file left

    next_run = SalesforceSource(config, client_factory(config, session=fake.session()), sleep=Sleeps())
    MemoryStore().sync(next_run.pages(MemoryStore()))  # SF_REFRESH_TOKEN still holds the first, used token
    assert fake.logins_served == ["refresh_token"] * 3 and token_file.read_text() in fake.refresh_tokens
    assert not any(t in caplog.text for t in ("rt-secret-1", kept, token_file.read_text()))


def test_without_a_token_store_a_rotation_warns_and_the_next_run_says_what_to_do(fake, monkeypatch, caplog):
    _rotating(fake, monkeypatch)
    store = _sync_across_an_expiry(fake, make_config())  # the rotated token is kept in memory for this run
    assert len(store.ids("accounts")) == N_ACCOUNTS
    assert "token_store" in caplog.text and "rt-rotated" not in caplog.text
    with pytest.raises(SourceError, match=r"refresh_token.*invalid_grant.*token_store") as caught:
        client_factory(make_config(), session=fake.session())()
    assert "\n" not in str(caught.value) and "rt-secret-1" not in str(caught.value)


def test_a_token_store_of_another_kind_comes_from_the_registered_factory(fake, monkeypatch):
    """The adapter never imports Prefect: ``kind: prefect-secret`` opens whatever tasks/ registered."""
    from abm_sla.crm.tokens import register_token_store

    class Block:
        value: str | None = None

        def load(self) -> str | None:
            return self.value

        def save(self, token: str) -> None:
            self.value = token

    block = Block()
    _rotating(fake, monkeypatch)
    register_token_store("prefect-secret", lambda config: block)
    try:
        config = make_config(token_store={"kind": "prefect-secret", "block": "sf-refresh-token"})
        _sync_across_an_expiry(fake, config)
    finally:
        register_token_store("prefect-secret", None)
    assert block.value in fake.refresh_tokens and len(fake.refresh_tokens) == 1


@pytest.mark.parametrize(("domain", "audience"), [("acme.my", "https://login.salesforce.com"),
                                                  ("acme--uat.sandbox.my", "https://test.salesforce.com")])
def test_jwt_with_a_my_domain_keeps_the_login_audience_and_asks_the_my_domain(fake, monkeypatch, domain, audience):
    import jwt

    pem = _private_key()
    fake.jwt_apps["CONSUMER2"] = "rev@acme.io"
    _login_env(monkeypatch, SF_USERNAME="rev@acme.io", SF_CONSUMER_KEY="CONSUMER2", SF_PRIVATE_KEY=pem,
               SF_DOMAIN=domain)
    store = _sync_across_an_expiry(fake, make_config(objects=["Account"]))
    assert len(store.ids("accounts")) == N_ACCOUNTS and fake.logins_served == ["jwt", "jwt"]
    assert fake.token_hosts == [f"{domain}.salesforce.com"] * 2
    assertion = next(r for r in fake.requests if r.path == "/services/oauth2/token").body.decode()
    claims = jwt.decode(assertion.split("assertion=")[1].split("&")[0], options={"verify_signature": False})
    assert claims["aud"] == audience


def test_client_credentials_log_in_on_the_my_domain_and_again_after_an_expiry(fake, monkeypatch):
    fake.client_credentials["CONSUMER3"] = "cc-secret"
    _login_env(monkeypatch, SF_CONSUMER_KEY="CONSUMER3", SF_CONSUMER_SECRET="cc-secret", SF_DOMAIN="acme.my")
    store = _sync_across_an_expiry(fake, make_config(objects=["Account"]))
    assert len(store.ids("accounts")) == N_ACCOUNTS
    assert fake.logins_served == ["client_credentials"] * 2 and fake.token_hosts == ["acme.my.salesforce.com"] * 2


def test_client_credentials_without_a_my_domain_is_one_clear_line(fake, monkeypatch):
    _login_env(monkeypatch, SF_CONSUMER_KEY="CONSUMER3", SF_CONSUMER_SECRET="cc-secret")
    with pytest.raises(SourceError, match=r"SF_DOMAIN.*My Domain") as caught:
        client_factory(make_config(), session=fake.session())()
    assert "\n" not in str(caught.value) and "cc-secret" not in str(caught.value)


def test_a_password_login_warns_with_its_retirement_and_is_refused_from_api_65(fake, monkeypatch, caplog):
    fake.logins["rev@acme.io"] = ("pw-secret", "")
    _login_env(monkeypatch, SF_USERNAME="rev@acme.io", SF_PASSWORD="pw-secret", SF_SECURITY_TOKEN="")
    client_factory(make_config(), session=fake.session())()
    assert "Summer '27" in caplog.text and "65.0" in caplog.text and "pw-secret" not in caplog.text
    with pytest.raises(SourceError, match=r"not available on API version 65.0.*Summer '27") as caught:
        client_factory(make_config(version="65.0"), session=fake.session())()
    assert "\n" not in str(caught.value)


def _private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_an_expired_session_on_userinfo_is_renewed_so_the_integrations_own_status_writes_are_not_answers(
        fake, monkeypatch):
    """The integration user comes from userinfo; a session that dies right before that call is renewed (not
    skipped with a warning), so a status the integration wrote is never stored as sales' answer."""
    fake.refresh_tokens["rt-secret-1"] = "CONSUMER1"
    _login_env(monkeypatch, SF_REFRESH_TOKEN="rt-secret-1", SF_CONSUMER_KEY="CONSUMER1")
    fake.insert("AccountHistory", {"AccountId": "001A03", "Field": "ABM_Status__c", "NewValue": "Working",
                                   "CreatedDate": "2026-02-20T09:00:00.000+0000", "CreatedById": fake.integration_user})
    fake.expire_before("/services/oauth2/userinfo")
    config = make_config(objects=["AccountHistory"])
    store = MemoryStore()
    store.sync(SalesforceSource(config, client_factory(config, session=fake.session()), sleep=Sleeps()).pages(store))
    assert fake.logins_served == ["refresh_token", "refresh_token"]
    by_account = {row["account_id"]: row["status"] for row in store.rows["status_changes"].values()}
    assert by_account == {"001A01": "working", "001A02": "rejected"}  # not 001A03's integration write


def test_the_bulk_cursor_is_the_newest_server_stamp_not_the_local_clock(fake):
    """A local clock an hour ahead of the org's: the bulk watermark is the newest SystemModstamp read (as on the
    REST path), so a row the org changes a minute later is read by the next sync, not skipped for good."""
    bulk = {"bulk_threshold": 1, "bulk_page_size": 3, "objects": ["Account"]}
    skewed = lambda: fake.now + dt.timedelta(hours=1)  # noqa: E731
    store = MemoryStore()
    source = lambda: SalesforceSource(make_config(**bulk), fake.factory(), now=skewed, sleep=Sleeps())  # noqa: E731
    store.sync(source().pages(store))
    assert parse_time(store.cursors[("salesforce", "Account")]) == ts(f"2026-01-{N_ACCOUNTS:02d} 08:00")

    fake.tick(60)
    fake.update("Account", "001A03", Name="Renamed by the org")
    store.sync(source().pages(store))
    assert store.rows["accounts"]["001A03"]["name"] == "Renamed by the org"
    assert parse_time(store.cursors[("salesforce", "Account")]) == fake.now  # the org's stamp, not the local clock


def test_owner_changes_become_owner_assigned_and_a_first_sync_says_how_far_history_reaches(fake):
    """AccountHistory ``Owner`` rows (Salesforce writes one with names, one with ids) feed ``owner_assigned``,
    which ends routing time; the first sync of the history says the 18/24-month retention, later ones do not."""
    fake.tick(3600)
    fake.update("Account", "001A03", OwnerId="005U2")
    store = MemoryStore()
    source = lambda: make_source(fake, objects=["User", "Account", "AccountOwnerHistory"])  # noqa: E731
    first = store.sync(source().pages(store))
    owners = [(r["account_id"], r["type"], r["owner_id"], r["occurred_at"]) for r in store.rows["activities"].values()]
    assert owners == [("001A03", "owner_assigned", "005U2", pd.Timestamp(fake.now))]  # the id row, not "Bo"
    retention = [line for page in first for line in page.warnings if "24 months" in line]
    assert len(retention) == 1 and "18 months" in retention[0]
    soql = [r.query.get("q", [""])[0] for r in fake.requests if "AccountHistory" in str(r.query)]
    assert soql and all("Field = 'Owner'" in q for q in soql)

    again = store.sync(source().pages(store))
    assert not [line for page in again for line in page.warnings]


def test_a_multi_currency_org_reports_amounts_in_its_corporate_currency():
    """Issue 25: amounts were summed across currencies. CurrencyIsoCode (found by describe) and the org's rates
    convert them to the corporate currency: dated rates for opportunities (by CloseDate), current ones else."""
    with FakeSalesforce(crm_frames(), now=NOW, currencies={"EUR": 1.0, "USD": 1.25, "GBP": 0.8}) as org:
        org.insert("DatedConversionRate", {"IsoCode": "USD", "ConversionRate": 1.25, "StartDate": "2026-01-01",
                                           "NextStartDate": "2026-04-01"})
        org.insert("DatedConversionRate", {"IsoCode": "USD", "ConversionRate": 1.1, "StartDate": "2026-04-01",
                                           "NextStartDate": "9999-12-31"})
        org.insert("Opportunity", {"Id": "006O2", "AccountId": "001A02", "StageName": "Prospecting", "Amount": 1100.0,
                                   "CurrencyIsoCode": "USD", "CloseDate": "2026-05-01"})
        org.insert("Opportunity", {"Id": "006O3", "AccountId": "001A02", "StageName": "Prospecting", "Amount": 400.0,
                                   "CurrencyIsoCode": "GBP", "CloseDate": "2026-02-01"})
        org.update("Account", "001A02", AnnualRevenue=2_500_000.0, CurrencyIsoCode="USD")
        store = MemoryStore()
        pages = store.sync(make_source(org, objects=["Account", "Opportunity"]).pages(store))
    amounts = {key: row["amount"] for key, row in store.rows["opportunities"].items()}
    assert amounts == pytest.approx({"006O1": 5000.0, "006O2": 1000.0, "006O3": 500.0})  # USD: May's rate
    assert store.rows["accounts"]["001A02"]["annual_revenue"] == pytest.approx(2_000_000.0)
    said = [line for page in pages for line in page.warnings if "currency" in line]
    assert len(said) == 1 and "in EUR, the org's corporate currency" in said[0]


def test_a_single_currency_org_reads_no_rates():
    with FakeSalesforce(crm_frames(), now=NOW) as org:
        store = MemoryStore()
        store.sync(make_source(org, objects=["Account", "Opportunity"]).pages(store))
        assert not any("Currency" in str(r.query) for r in org.requests)
    assert store.rows["opportunities"]["006O1"]["amount"] == 5000.0


def test_a_stale_stored_refresh_token_gives_way_to_a_newly_configured_one(fake, monkeypatch, tmp_path):
    """The app was authorized again and SF_REFRESH_TOKEN holds the new token: the stored, revoked one is refused
    and the configured one is used (and stored)."""
    token_file = tmp_path / "sf-refresh-token"
    token_file.write_text("rt-revoked")
    fake.refresh_tokens["rt-reauthorized"] = "CONSUMER1"
    _login_env(monkeypatch, SF_REFRESH_TOKEN="rt-reauthorized", SF_CONSUMER_KEY="CONSUMER1")
    config = make_config(objects=["Account"], token_store={"kind": "file", "path": str(token_file)})
    store = _sync_across_an_expiry(fake, config)
    assert len(store.ids("accounts")) == N_ACCOUNTS and token_file.read_text() == "rt-reauthorized"
    assert fake.logins_served == ["refresh_token", "refresh_token"]
    assert fake.count("/services/oauth2/token") == 3  # one refusal of the stored token, then straight to the new


def test_a_task_type_maps_to_a_hot_flag_when_configured(fake):
    """Issue 26: sales flag an account hot with a task type (``task_types: {"Hot Account": hot_flag}``); a task type
    mapped to anything else but a sales touch or hot_flag is refused in the config."""
    when = "2026-02-02T10:00:00.000+0000"
    fake.insert("Task", {"Id": "00THOT1", "AccountId": "001A01", "WhatId": "001A01", "OwnerId": "005U1",
                         "Type": "Hot Account", "TaskSubtype": "Task", "Subject": "Hot!", "Status": "Completed",
                         "IsClosed": True, "CompletedDateTime": when, "CreatedDate": when, "SystemModstamp": when})
    types = {"Call": "call", "Email": "email_sent", "Meeting": "meeting", "LinkedIn": "linkedin_message",
             "Hot Account": "hot_flag"}
    store = MemoryStore()
    store.sync(make_source(fake, task_types=types).pages(store))
    flag = store.rows["activities"]["00THOT1"]
    assert (flag["type"], flag["account_id"], flag["owner_id"]) == ("hot_flag", "001A01", "005U1")
    default = MemoryStore()
    default.sync(make_source(fake).pages(default))
    assert "00THOT1" not in default.rows["activities"]  # unmapped: not an activity, as before
    with pytest.raises(ValueError, match="not sales touch types"):
        make_config(task_types={"Hot Account": "account_research"})
