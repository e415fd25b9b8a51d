"""The HubSpot source against a fake portal on 127.0.0.1 (real HTTP, hubspot-api-client as the client)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading

import pandas as pd
import pytest

from abm_sla.crm.hubspot.login import client_factory
from abm_sla.crm.hubspot.query import parse_time
from abm_sla.crm.hubspot.source import HubSpotSource
from abm_sla.crm.limits import RateLimiter
from abm_sla.crm.mapping import HubSpotConfig
from abm_sla.domain import frames
from abm_sla.errors import SourceError
from tests.fakes import MemoryStore
from tests.fakes.hubspot import ALL_SCOPES, FakeHubSpot

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
N_ACCOUNTS = 9
WEBINAR = "pe999_webinar_attended"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def crm_frames() -> dict[str, pd.DataFrame]:
    """A tiny normalized CRM with HubSpot-style numeric ids."""
    users = [
        {
            "user_id": "501",
            "name": "Ann Lee",
            "email": "ann@x.io",
            "role": "Sales Team",
            "manager_id": None,
            "time_zone": "UTC",
            "country": "US",
            "active": True,
        },
        {
            "user_id": "502",
            "name": "Bo Ode",
            "email": "bo@x.io",
            "role": "RevOps",
            "manager_id": None,
            "time_zone": "UTC",
            "country": "US",
            "active": False,
        },
    ]
    accounts = [
        {
            "account_id": f"{100 + i}",
            "name": f"Acme {i}",
            "domain": f"www.acme{i}.com",
            "industry": "Software",
            "employees": 200 + i,
            "annual_revenue": 1e6,
            "country": "US",
            "owner_id": "501",
            "tier": f"Tier {1 + i % 3}",
            "created_at": ts("2025-12-01"),
            "updated_at": ts(f"2026-01-{i + 1:02d} 08:00"),
        }
        for i in range(N_ACCOUNTS)
    ]
    contacts = [
        {
            "contact_id": f"{200 + i}",
            "account_id": f"{100 + i}",
            "title": "CTO",
            "email": f"c{i}@acme.com",
            "created_at": ts("2025-12-02"),
            "updated_at": ts(f"2026-01-{i + 1:02d} 09:00"),
        }
        for i in range(N_ACCOUNTS)
    ]
    contacts.append(
        {
            "contact_id": "299",
            "account_id": None,
            "title": "Intern",
            "email": "x@y.z",
            "created_at": ts("2025-12-02"),
            "updated_at": ts("2026-01-20 09:00"),
        }
    )
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
    activities = [
        {
            "activity_id": f"{300 + n}",
            "account_id": "101",
            "type": kind,
            "occurred_at": ts(f"2026-02-{n + 1:02d} 10:00"),
            "contact_id": "201",
            "owner_id": "501",
            "url": "https://acme.com/pricing" if kind == "web_visit" else None,
            "subject": f"{kind} {n}",
        }
        for n, kind in enumerate(kinds)
    ]
    opportunities = [
        {
            "opportunity_id": "401",
            "account_id": "101",
            "stage": "appointmentscheduled",
            "amount": 5000.0,
            "created_at": ts("2026-01-10"),
            "close_date": ts("2026-04-01"),
            "is_closed": False,
            "is_won": False,
        }
    ]
    status = [
        {
            "account_id": "101",
            "status": "Working",
            "changed_at": ts("2026-02-15 12:00"),
            "changed_by": "501",
        },
        {
            "account_id": "101",
            "status": "Rejected",
            "changed_at": ts("2026-02-20 12:00"),
            "changed_by": "9001",
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
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake():
    with FakeHubSpot(crm_frames(), now=NOW, webinar_event_type=WEBINAR) as server:
        yield server


def make_config(**overrides) -> HubSpotConfig:
    base = {
        "page_size": 3,
        "webinar_event_type": WEBINAR,
        "team_roles": {"sales team": "sales", "revops": "revops"},
        "retry": {"max_attempts": 4, "base_delay": 0.01, "max_delay": 0.05, "timeout": 5},
    }
    return HubSpotConfig.model_validate({**base, **overrides})


def unlimited() -> RateLimiter:
    return RateLimiter(10_000, 1.0)


def make_source(fake: FakeHubSpot, sleeps: Sleeps | None = None, **overrides) -> HubSpotSource:
    return HubSpotSource(
        make_config(**overrides),
        fake.factory(),
        now=lambda: fake.now,
        sleep=sleeps if sleeps is not None else Sleeps(),
        burst_limiter=unlimited(),
        search_limiter=unlimited(),
    )


def test_full_sync_maps_every_object_to_frames(fake):
    store = MemoryStore()
    pages = store.sync(make_source(fake).pages(store))

    assert store.ids("accounts") == {f"{100 + i}" for i in range(N_ACCOUNTS)}
    assert store.ids("contacts") == {f"{200 + i}" for i in range(N_ACCOUNTS)}
    assert any("299" in q.row and "no company" in q.reason for p in pages for q in p.quarantined)
    assert store.ids("opportunities") == {"401"} and store.rows["opportunities"]["401"]["account_id"] == "101"
    users = store.rows["users"]
    assert (users["501"]["role"], users["501"]["active"]) == ("sales", True)
    assert (users["502"]["role"], users["502"]["active"]) == ("revops", False)
    activities = store.rows["activities"]
    assert sorted(r["type"] for r in activities.values()) == sorted(
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
    assert all(r["account_id"] == "101" and r["contact_id"] == "201" for r in activities.values())
    visit = next(r for r in activities.values() if r["type"] == "web_visit")
    assert visit["url"] == "https://acme.com/pricing" and visit["occurred_at"] == ts("2026-02-08 10:00")
    call = next(r for r in activities.values() if r["type"] == "call")
    assert (call["owner_id"], call["subject"]) == ("501", "call 0")
    statuses = sorted((r["changed_at"], r["status"]) for r in store.rows["status_changes"].values())
    assert statuses == [(ts("2026-02-15 12:00"), "working"), (ts("2026-02-20 12:00"), "rejected")]
    account = store.rows["accounts"]["103"]
    assert (account["domain"], account["tier"], account["employees"]) == ("acme3.com", "Tier 1", 203.0)

    for page in pages:
        assert list(page.rows.columns) == [*frames.COLUMNS[page.kind], "raw"]
        for column in frames.TIMESTAMP_COLUMNS[page.kind]:
            assert str(page.rows[column].dtype) == "datetime64[ns, UTC]"
        if page.cursor:
            assert parse_time(page.cursor) <= NOW
    assert sum(1 for p in pages if p.object_name == "companies" and p.kind == "accounts") == 3  # pages of 3
    search = [r for r in fake.requests if r.path.endswith("/search")]
    assert search and all(r.headers["authorization"].startswith("Bearer ") for r in search)


def test_incremental_sync_fetches_only_changes_and_archived_become_deletes(fake):
    store = MemoryStore()
    store.sync(make_source(fake, overlap_seconds=0).pages(store))
    fake.tick(3600)
    fake.update("companies", "102", name="Acme Two", abm_status="Nurture")
    fake.archive("companies", "104")
    fake.archive("calls", "300")
    fake.update("contacts", "203", jobtitle="CEO")
    second = store.sync(make_source(fake, overlap_seconds=0).pages(store))

    changed = {r for p in second if p.kind == "accounts" for r in p.rows["account_id"]}
    assert changed == {"102", "108"}  # the change and the row at the watermark (>=)
    assert store.rows["accounts"]["102"]["name"] == "Acme Two"
    assert "104" not in store.ids("accounts") and "300" not in store.ids("activities")
    assert store.rows["contacts"]["203"]["title"] == "CEO"
    assert "nurture" in {
        r["status"] for r in store.rows["status_changes"].values() if r["account_id"] == "102"
    }
    search_bodies = [r.body for r in fake.requests if r.path.endswith("companies/search")]
    assert b'"GTE"' in search_bodies[-1] and b'"LTE"' in search_bodies[-1]

    fake.tick(3600)
    fake.archive("deals", "401")
    third = store.sync(make_source(fake, overlap_seconds=0).pages(store))
    deletes = {d for p in third for d in p.deleted_ids}
    assert "401" in deletes and deletes <= {"401", "104", "300"}  # new, or stamped at the watermark (>=)
    assert "401" not in store.ids("opportunities")


def test_more_records_at_one_timestamp_than_the_search_cap_are_read_by_id():
    """Issue 25: a bulk import stamps one millisecond on more records than a search can page through."""
    data = crm_frames()
    data["accounts"]["updated_at"] = ts("2026-01-05 08:00")
    with FakeHubSpot(data, now=NOW, search_cap=4) as fake:  # the fake's 10,000-result cap, scaled down
        store = MemoryStore()
        store.sync(make_source(fake, objects=["companies"], search_result_cap=4, page_size=2).pages(store))
        assert store.ids("accounts") == {f"{100 + i}" for i in range(N_ACCOUNTS)}
        bodies = [json.loads(r.body) for r in fake.requests if r.path.endswith("companies/search")]
        assert all("after" not in body for body in bodies)  # keyset: never an offset
        assert any(body["sorts"][0]["propertyName"] == "hs_object_id" for body in bodies)


def test_a_record_modified_mid_sync_makes_no_other_record_skipped():
    """Issue 25: offset paging over hs_lastmodifieddate lost the record that shifted into a read offset."""
    with FakeHubSpot(crm_frames(), now=NOW) as fake:
        store = MemoryStore()
        source = make_source(fake, objects=["companies"], page_size=2, overlap_seconds=0)
        pages = source.pages(store)
        first = next(pages)
        store.store(first)
        fake.tick(60)
        fake.update("companies", first.rows["account_id"].iloc[0], name="Renamed mid-sync")
        store.sync(pages)
        assert store.ids("accounts") == {f"{100 + i}" for i in range(N_ACCOUNTS)}
        store.sync(make_source(fake, objects=["companies"], page_size=2, overlap_seconds=0).pages(store))
        assert store.ids("accounts") == {f"{100 + i}" for i in range(N_ACCOUNTS)}


@pytest.mark.parametrize("retry_after", ["0.02", None])
def test_429_storm_is_retried_honouring_retry_after(fake, retry_after):
    sleeps = Sleeps()
    headers = {"Retry-After": retry_after} if retry_after else {}
    body = {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "policyName": "TEN_SECONDLY_ROLLING",
        "correlationId": "x",
    }
    fake.inject(429, body, headers, times=3, path="/search")
    store = MemoryStore()
    store.sync(make_source(fake, sleeps).pages(store))
    assert store.ids("accounts") == {f"{100 + i}" for i in range(N_ACCOUNTS)}
    if retry_after:
        assert sleeps[:3] == [0.02, 0.02, 0.02]
    else:
        assert len(sleeps) == 3 and all(0 < s <= 0.05 for s in sleeps)


def test_429_storm_that_never_ends_is_a_one_line_error(fake):
    fake.inject(
        429,
        {
            "status": "error",
            "message": "You have reached your secondly limit.",
            "category": "RATE_LIMITS",
            "correlationId": "x",
        },
        times=100,
        path="/search",
    )
    with pytest.raises(SourceError, match="HTTP 429") as caught:
        list(make_source(fake).pages(MemoryStore()))
    assert "\n" not in str(caught.value)


def test_daily_limit_stops_without_retrying(fake):
    sleeps = Sleeps()
    fake.inject(
        429,
        {
            "status": "error",
            "message": "You have reached your daily limit.",
            "errorType": "RATE_LIMIT",
            "policyName": "DAILY",
            "correlationId": "x",
        },
        times=100,
        path="/owners",
    )
    with pytest.raises(SourceError, match="daily API limit"):
        list(make_source(fake, sleeps).pages(MemoryStore()))
    assert sleeps == []


def test_5xx_in_the_middle_of_paging_is_retried(fake):
    sleeps = Sleeps()
    fake.inject(502, "<html>Bad Gateway</html>", path="companies/search", after=1, times=2)
    fake.inject(
        500,
        {"status": "error", "message": "internal", "category": "INTERNAL_ERROR"},
        path="/crm/v4/associations",
        after=2,
    )
    store = MemoryStore()
    store.sync(make_source(fake, sleeps).pages(store))
    assert store.ids("accounts") == {f"{100 + i}" for i in range(N_ACCOUNTS)}
    assert store.ids("contacts") == {f"{200 + i}" for i in range(N_ACCOUNTS)}
    assert len(sleeps) == 3


@pytest.mark.parametrize("stop_after", [1, 2, 4, 7, 10])
def test_a_sync_stopped_midway_resumes_and_yields_every_row_once(fake, stop_after):
    full = MemoryStore()
    full.sync(make_source(fake).pages(full))
    partial = MemoryStore()
    partial.sync(make_source(fake).pages(partial), stop_after=stop_after)
    partial.sync(make_source(fake).pages(partial))
    for kind in full.rows:
        assert partial.rows[kind].keys() == full.rows[kind].keys(), kind


def test_expired_token_builds_a_new_client_once(fake):
    store = MemoryStore()
    pages = make_source(fake).pages(store)
    store.store(next(pages))
    fake.expire_token(reissue=True)
    store.sync(pages)
    assert store.ids("accounts")

    fake.expire_token(reissue=False)
    with pytest.raises(SourceError, match="rejected the access token"):
        list(make_source(fake).pages(MemoryStore()))


def test_shared_limiter_keeps_parallel_sources_under_the_portal_limits():
    """Three sources in threads share one limiter pair; the fake enforces the limits, never has to refuse."""
    with FakeHubSpot(
        crm_frames(), now=NOW, webinar_event_type=WEBINAR, burst=(4, 0.1), search_rate=(2, 0.1)
    ) as fake:
        burst, search = RateLimiter(4, 0.2), RateLimiter(2, 0.2)  # a margin for transit jitter under the GIL
        errors: list[BaseException] = []

        def run() -> None:
            try:
                source = HubSpotSource(
                    make_config(objects=["companies"]),
                    fake.factory(),
                    now=lambda: NOW,
                    burst_limiter=burst,
                    search_limiter=search,
                )
                store = MemoryStore()
                store.sync(source.pages(store))
                assert len(store.ids("accounts")) == N_ACCOUNTS
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=run) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert fake.rate_limited == 0 and fake.count("/search") == 9 and fake.count("/batch/read") == 9


def test_every_call_carries_a_timeout(fake, monkeypatch):
    from hubspot.crm.objects import rest

    seen: list = []
    original = rest.RESTClientObject.request

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("_request_timeout"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(rest.RESTClientObject, "request", spy)
    list(make_source(fake, objects=["companies"]).pages(MemoryStore()))
    assert seen and all(timeout == (5.0, 5.0) for timeout in seen)


def test_credentials_from_env_never_reach_messages_or_logs(fake, monkeypatch, caplog):
    secret = fake.token
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", secret)
    caplog.set_level(logging.DEBUG)
    config = make_config()
    source = HubSpotSource(
        config,
        client_factory(config, host=fake.url),
        now=lambda: NOW,
        sleep=Sleeps(),
        burst_limiter=unlimited(),
        search_limiter=unlimited(),
    )
    store = MemoryStore()
    store.sync(source.pages(store))
    assert store.ids("accounts")

    fake.inject(503, {"status": "error", "message": "down", "category": "INTERNAL_ERROR"}, times=2)
    fake.expire_token(reissue=False)
    with pytest.raises(SourceError) as caught:
        list(source.pages(MemoryStore()))
    assert secret not in str(caught.value) and caught.value.__cause__ is None
    assert all(secret not in record.getMessage() for record in caplog.records)
    assert "HubSpot" in caplog.text


def test_missing_token_names_the_variable(monkeypatch):
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    with pytest.raises(SourceError, match="HUBSPOT_ACCESS_TOKEN"):
        client_factory(HubSpotConfig())()


def many_companies(n: int) -> dict[str, pd.DataFrame]:
    """``n`` companies, each with one status change (for the batch-read caps)."""
    accounts = pd.DataFrame(
        {
            "account_id": [str(1000 + i) for i in range(n)],
            "name": [f"Co {i}" for i in range(n)],
            "domain": [f"co{i}.com" for i in range(n)],
            "owner_id": "501",
            "created_at": ts("2025-12-01"),
            "updated_at": ts("2026-01-05"),
        }
    )
    status = pd.DataFrame(
        {
            "account_id": accounts["account_id"],
            "status": "Working",
            "changed_at": ts("2026-02-01"),
            "changed_by": None,
        }
    )
    return {"accounts": accounts, "status_changes": status}


def test_status_history_is_read_in_batches_of_at_most_50():
    """Finding 1: a 100-company search page needs two history batch reads (HubSpot refuses more than 50)."""
    with FakeHubSpot(many_companies(120), now=NOW) as big:
        store = MemoryStore()
        store.sync(make_source(big, page_size=100, objects=["companies"]).pages(store))
        assert len(store.ids("accounts")) == 120
        assert {r["account_id"] for r in store.rows["status_changes"].values()} == store.ids("accounts")
        reads = [r for r in big.requests if r.path.endswith("/batch/read") and "companies" in r.path]
        sizes = [len(json.loads(r.body)["inputs"]) for r in reads]
        assert max(sizes) <= 50 and sum(sizes) == 120


def test_email_opens_and_clicks_come_from_the_email_events_api_by_recipient(fake):
    """Finding 2: marketing e-mail is not in event analytics; the email events API names the recipient."""
    store = MemoryStore()
    pages = store.sync(make_source(fake).pages(store))
    emails = {r["type"]: r for r in store.rows["activities"].values() if r["type"] in ("email_open", "email_click")}
    assert set(emails) == {"email_open", "email_click"}
    assert all((r["contact_id"], r["account_id"]) == ("201", "101") for r in emails.values())
    assert emails["email_open"]["occurred_at"] == ts("2026-02-05 10:00")
    email_calls = [r for r in fake.requests if r.path == "/email/public/v1/events"]
    assert {r.query["eventType"][0] for r in email_calls} == {"OPEN", "CLICK"}
    analytics = {r.query.get("eventType", [""])[0] for r in fake.requests if r.path.startswith("/events/v3")}
    assert not analytics & {"e_opened_email", "e_clicked_email"}
    assert {p.object_name for p in pages if p.cursor} >= {"email_events:OPEN", "email_events:CLICK"}

    fake.tick(3600)
    fake.email_events.append(
        {"id": "e-new", "created": int(fake.now.timestamp() * 1000) - 1000, "type": "OPEN",
         "recipient": "C3@acme.com", "filteredEvent": False}
    )
    fake.email_events.append(
        {"id": "e-bot", "created": int(fake.now.timestamp() * 1000) - 1000, "type": "OPEN",
         "recipient": "c4@acme.com", "filteredEvent": True}
    )
    store.sync(make_source(fake, objects=["email_events"]).pages(store))
    assert store.rows["activities"]["email:e-new"]["account_id"] == "103"  # e-mail matched ignoring case
    assert "email:e-bot" not in store.ids("activities")  # bot-filtered opens are left out


def test_email_event_types_in_event_analytics_are_a_one_line_config_error():
    from abm_sla.crm.mapping import load_config
    from abm_sla.errors import ConfigError

    with pytest.raises(ConfigError, match=r"e_opened_email.*email_events OPEN"):
        load_config("hubspot", {"marketing_events": {"e_opened_email": "email_open"}})


def test_a_portal_without_event_analytics_or_email_scope_syncs_the_rest_with_warnings():
    """Finding 3: a 403 on event analytics (non-Enterprise) or email events (no scope) is a warning."""
    with FakeHubSpot(
        crm_frames(), now=NOW, webinar_event_type=WEBINAR, enterprise=False,
        scopes=ALL_SCOPES - {"content"},
    ) as fake:
        store = MemoryStore()
        pages = store.sync(make_source(fake).pages(store))
        assert store.ids("accounts") and store.ids("contacts") and store.ids("users")
        assert {r["type"] for r in store.rows["activities"].values()} == {
            "call", "email_sent", "linkedin_message", "meeting"
        }
        warnings = [w for p in pages for w in p.warnings]
        assert len(warnings) == 2 and all("\n" not in w for w in warnings)
        events, email = warnings
        assert "event analytics" in events and "403" in events and "Enterprise" in events
        assert "remove 'events' from sources.hubspot.objects" in events
        assert "MISSING_SCOPES" in email and "'content' scope" in email and "'email_events'" in email
        assert fake.count("/events/v3/events") == 1  # one refusal is enough to skip every event type


def install_oauth_app(fake: FakeHubSpot, monkeypatch) -> None:
    """An OAuth app installed in the fake portal; its refresh token, client id and secret in the environment."""
    fake.oauth_apps[("client-1", "client-secret-1")] = "refresh-secret-1"
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("HUBSPOT_REFRESH_TOKEN", "refresh-secret-1")
    monkeypatch.setenv("HUBSPOT_CLIENT_ID", "client-1")
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", "client-secret-1")


def test_an_oauth_refresh_token_gets_a_new_access_token_when_one_expires(fake, monkeypatch):
    """Finding 6: a long sync survives the 30-minute OAuth token; the refresh token gets a new one."""
    install_oauth_app(fake, monkeypatch)
    config = make_config()
    source = HubSpotSource(config, client_factory(config, host=fake.url), now=lambda: NOW, sleep=Sleeps(),
                           burst_limiter=unlimited(), search_limiter=unlimited())
    store = MemoryStore()
    pages = source.pages(store)
    store.store(next(pages))
    fake.expire_token(reissue=False)  # every token dies; only a refresh gets a new one
    store.sync(pages)
    assert len(store.ids("accounts")) == N_ACCOUNTS and fake.refreshes == 2

    monkeypatch.setenv("HUBSPOT_REFRESH_TOKEN", "revoked")
    with pytest.raises(SourceError, match="token refresh refused: HTTP 400 invalid_grant") as caught:
        client_factory(config, host=fake.url)()
    assert "revoked" not in str(caught.value) and "client-secret-1" not in str(caught.value)


def test_oauth_refresh_uses_the_v3_token_endpoint_with_a_form_body(fake, monkeypatch):
    """Issue 25: /oauth/v1/token is sunset on 2027-02-16; the fake answers it as gone, so only v3 works."""
    install_oauth_app(fake, monkeypatch)
    client = client_factory(make_config(), host=fake.url)()
    assert client.config["access_token"].startswith("oauth-fake-")
    [refresh] = [r for r in fake.requests if r.path.startswith("/oauth/")]
    assert refresh.path == "/oauth/v3/token" and not refresh.query  # secrets in the body, never the URL
    assert b"client_secret=client-secret-1" in refresh.body
    dated = client_factory(make_config(oauth_token_path="/oauth/2026-03/token"), host=fake.url)()
    assert dated.config["access_token"].startswith("oauth-fake-") and fake.refreshes == 2


def test_status_changes_name_the_owner_behind_the_hubspot_user(fake):
    """Finding 5: history's updatedByUserId is a user id; owners map users (userId) to owner ids."""
    assert fake.user_id_of("501") != 501  # the fake gives users ids of their own, as HubSpot does
    for objects in (["owners", "companies"], ["companies"]):  # owners synced first, or looked up
        store = MemoryStore()
        store.sync(make_source(fake, objects=objects).pages(store))
        by = {r["status"]: r["changed_by"] for r in store.rows["status_changes"].values()}
        assert by == {"working": "501", "rejected": None}  # 9001 is no owner's user


def test_an_owner_is_inactive_by_its_own_archived_flag_not_by_the_pass_that_listed_it(fake):
    """Finding 8: the archived pass may list active owners too; each owner's flag decides."""
    store = MemoryStore()
    store.sync(make_source(fake, objects=["owners"]).pages(store))
    owner_calls = [r for r in fake.requests if "/owners" in r.path]
    assert {r.query["archived"][0].lower() for r in owner_calls} == {"true", "false"}
    assert {k: v["active"] for k, v in store.rows["users"].items()} == {"501": True, "502": False}


def test_reason_property_history_is_read_with_the_status_it_was_set_with():
    frames = crm_frames()
    frames["status_changes"] = frames["status_changes"].assign(reason=[None, "Too small"])
    with FakeHubSpot(frames, now=NOW, webinar_event_type=WEBINAR, reason_property="abm_reason") as server:
        store = MemoryStore()
        store.sync(make_source(server, objects=["owners", "companies"], reason_property="abm_reason").pages(store))
    rows = sorted((r["status"], str(r["reason"])) for r in store.rows["status_changes"].values())
    assert rows == [("rejected", "Too small"), ("working", "None")]


def list_periods(store: MemoryStore) -> set[tuple]:
    """The stored target account list periods: (account, added_at, removed_at), missing as None."""
    return {tuple(None if pd.isna(r[c]) else r[c] for c in ("account_id", "added_at", "removed_at"))
            for r in store.rows.get("target_accounts", {}).values()}


def test_target_account_periods_come_from_the_history_of_hs_is_target_account():
    """Issue 15: HubSpot's "Target account" company checkbox; ticked opens a period, unticked closes it."""
    data = crm_frames()
    data["target_accounts"] = pd.DataFrame({"account_id": ["101", "102"], "added_at": [ts("2026-02-01"),
                                            ts("2026-02-05 09:30")], "removed_at": [ts("2026-02-10"), pd.NaT]})
    with FakeHubSpot(data, now=NOW, webinar_event_type=WEBINAR) as server:
        store = MemoryStore()
        store.sync(make_source(server, objects=["companies"], overlap_seconds=0,
                               tal_property="hs_is_target_account").pages(store))
        assert list_periods(store) == {("101", ts("2026-02-01"), ts("2026-02-10")),
                                       ("102", ts("2026-02-05 09:30"), None)}
        assert all(pd.isna(r["agreed_at"]) for r in store.rows["target_accounts"].values())
        server.tick(3600)
        server.update("companies", "102", hs_is_target_account=False)  # unticked in the UI: the period ends
        server.update("companies", "103", hs_is_target_account=True)  # ticked: a new period
        store.sync(make_source(server, objects=["companies"], overlap_seconds=0,
                               tal_property="hs_is_target_account").pages(store))
        now = pd.Timestamp(server.now).floor("ms")
        assert list_periods(store) == {("101", ts("2026-02-01"), ts("2026-02-10")),
                                       ("102", ts("2026-02-05 09:30"), now), ("103", now, None)}
        assert len(store.rows["target_accounts"]) == 3  # 102's row was updated, not doubled


def test_without_a_tal_property_no_list_is_read():
    data = crm_frames()
    data["target_accounts"] = pd.DataFrame({"account_id": ["101"], "added_at": [ts("2026-02-01")],
                                            "removed_at": [pd.NaT]})
    with FakeHubSpot(data, now=NOW, webinar_event_type=WEBINAR) as server:
        store = MemoryStore()
        store.sync(make_source(server, objects=["companies"]).pages(store))
        assert not list_periods(store)
        assert not any(b"hs_is_target_account" in (r.body or b"") for r in server.requests)


def test_owner_changes_in_hubspot_become_owner_assigned_and_end_routing_time(fake):
    """Issue 25: the history of hubspot_owner_id feeds owner_assigned, so routing time ends when HubSpot
    assigned the owner, not only at our own write-back."""
    from abm_sla.domain import sla

    store = MemoryStore()
    store.sync(make_source(fake, objects=["companies"]).pages(store))
    assert not [r for r in store.rows.get("activities", {}).values() if r["type"] == "owner_assigned"]
    trigger = pd.Timestamp(fake.now)
    fake.tick(1800)
    fake.update("companies", "101", hubspot_owner_id="502")  # a rep assigns the company in HubSpot
    fake.tick(60)
    for _ in range(2):  # a re-read of the history updates the row, never doubles it
        store.sync(make_source(fake, objects=["companies"]).pages(store))
    [change] = [r for r in store.rows["activities"].values() if r["type"] == "owner_assigned"]
    assert (change["account_id"], change["owner_id"]) == ("101", "502")
    assert change["occurred_at"] == trigger + pd.Timedelta(seconds=1800)

    episodes = pd.DataFrame({"account_id": ["101"], "trigger_at": [trigger],
                             "routed_at": [trigger + pd.Timedelta(hours=5)], "writeback_done_at": [pd.NaT]})
    activities = pd.DataFrame(list(store.rows["activities"].values()))
    assigned = sla.assignment_at(episodes, activities, trigger + pd.Timedelta(days=1))
    assert assigned.iloc[0] == trigger + pd.Timedelta(seconds=1800)
