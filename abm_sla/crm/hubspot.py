"""The HubSpot source on hubspot-api-client v12: incremental pages of normalized frames.

Companies, contacts, deals and engagements are read with the CRM search API
filtered on the last-modified property (``lastmodifieddate`` for contacts,
``hs_lastmodifieddate`` for the others) between ``cursor - overlap`` and the
sync's start, sorted ascending; each search page becomes a :class:`Page` whose
cursor is the page's newest change. Search pages by keyset, never by offset: each
query starts at the last timestamp seen (a timestamp shared by more records than a
page holds is read by ``hs_object_id``), so a record modified mid-sync skips no
other and the 10,000-result cap is never reached. Company ids come from v4
association batch reads (each input paged on its own); archived records (which search
never returns) are listed with ``archived=true`` and become deletes. Marketing
touches come from the event analytics API (page views with their URL, form
submissions, a configurable webinar event type; Enterprise hubs only) and from
the email events API (marketing e-mail opens and clicks, whose recipient is an
e-mail address matched to a contact); owners become users.

Every call goes through one shared rate limiter per limit (the 10-second burst
and the search per-second limit), retries 429/5xx/timeouts with backoff and
Retry-After, and carries a timeout.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import requests
import urllib3
from hubspot import HubSpot

from abm_sla.crm.base import CursorStore, Page, Quarantined
from abm_sla.crm.files import normalize_domain
from abm_sla.crm.limits import (
    RateLimiter,
    Retry,
    RetryPolicy,
    call_with_retry,
    parse_retry_after,
    redact,
    shared_limiter,
)
from abm_sla.crm.mapping import (
    HubSpotConfig,
    TierMapper,
    conform,
    list_periods,
    owner_assignments,
    stable_id,
    to_bool,
    to_float,
)
from abm_sla.crm.reconcile import IdScan, Reconciling, sales_types
from abm_sla.errors import SourceError

log = logging.getLogger(__name__)
ClientFactory = Callable[[], HubSpot]

OBJECT_KIND = {"companies": "accounts", "contacts": "contacts", "deals": "opportunities"}
ENGAGEMENTS = ("emails", "meetings", "calls", "notes", "tasks")
SUBTYPE_PROPERTY = {"emails": "hs_email_direction", "tasks": "hs_task_type"}
SUBJECT_PROPERTY = {
    "emails": "hs_email_subject",
    "meetings": "hs_meeting_title",
    "calls": "hs_call_title",
    "tasks": "hs_task_subject",
    "notes": None,
}
OWNER_PROPERTY = "hubspot_owner_id"
PRIMARY_COMPANY = {"contacts": 1, "deals": 5}  # association type ids of the primary company
# Batch read caps: 100 inputs, 50 when ``propertiesWithHistory`` is asked for (HubSpot answers 400 "The maximum
# number of inputs supported in a batch request for property histories is 50"); hubspot-api-client 12.0.0
# hubspot/utils/objects.py PAGE_MAX_SIZE = 100, PROPERTY_HISTORY_MAX_SIZE = 50.
BATCH_READ_MAX = 100
EMAIL_EVENTS_MAX = 1000  # email events API ``limit`` maximum (docs: 1 <= limit <= 1000)
DEFAULT_HOST = "https://api.hubapi.com"
HISTORY_BATCH_MAX = 50
SEARCH_LIMIT_MAX = 200  # search ``limit`` maximum (CRM search guide)
ASSOCIATION_INPUTS_MAX = 1000  # v4 association batch read inputs (changelog 2025-02-10)


def client_factory(config: HubSpotConfig, host: str | None = None) -> ClientFactory:
    """Builds a client from the credentials the config names; urllib3 retries are off (ours apply).

    With an OAuth app's refresh token, client id and secret, every call (the first, and each after a
    401) gets a new access token from the v3 token endpoint (``POST /oauth/v3/token``, form body,
    grant_type=refresh_token; HubSpot OAuth access tokens live 30 minutes), so a long sync survives
    expiry. Otherwise the private app token (or a static OAuth access token) is read from the environment
    again.
    """

    def make() -> HubSpot:
        creds = config.credentials.resolve()
        base = host or config.host
        if {"refresh_token", "client_id", "client_secret"} <= creds.keys():
            token = refresh_access_token(base or DEFAULT_HOST, creds, config)
        else:
            token = creds.get("access_token")
        if not token:
            raise SourceError(f"no HubSpot access token: set {missing_token_hint(config)}")
        kwargs: dict[str, Any] = {"access_token": token, "retry": False}
        if base:
            kwargs["host"] = base
        return HubSpot(**kwargs)

    return make


def missing_token_hint(config: HubSpotConfig) -> str:
    """The variable of the private app token, and the OAuth app's variables when the config names them."""
    env = config.credentials.env
    text = env.get("access_token", "access_token")
    oauth = [env[key] for key in ("refresh_token", "client_id", "client_secret") if key in env]
    return f"{text} (or the OAuth app's {', '.join(oauth)})" if len(oauth) == 3 else text


def refresh_access_token(base: str, creds: dict[str, str], config: HubSpotConfig) -> str:
    """A new OAuth access token for the refresh token from the v3 token endpoint, parameters in the form body
    (https://developers.hubspot.com/docs/api-reference/legacy/authentication/manage-oauth-tokens)."""
    data = {
        "grant_type": "refresh_token",
        "refresh_token": creds["refresh_token"],
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
    }
    timeout = (min(10.0, config.retry.timeout), config.retry.timeout)
    try:
        response = requests.post(f"{base.rstrip('/')}{config.oauth_token_path}", data=data, timeout=timeout)
    except requests.RequestException as error:
        raise SourceError(f"HubSpot token refresh failed: {type(error).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not body.get("access_token"):
        detail = oauth_error_detail(body)
        message = f"HubSpot token refresh refused: HTTP {response.status_code} {detail}".strip()
        raise SourceError(redact(message, config.credentials.secrets()))
    return str(body["access_token"])


def oauth_error_detail(body: dict) -> str:
    """RFC 6749 ``error``/``error_description`` (v3), else HubSpot's ``status``/``category`` and ``message``."""
    code = body.get("error") or body.get("status") or body.get("category")
    text = body.get("error_description") or body.get("message")
    return " ".join(str(part) for part in (code, text) if part)


def last_modified_property(object_type: str) -> str:
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


def parse_time(value: Any) -> dt.datetime | None:
    """ISO 8601 (``…Z``), epoch milliseconds or a date → aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    text = str(value).strip()
    if text.isdigit():
        return dt.datetime.fromtimestamp(int(text) / 1000, tz=dt.UTC)
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def epoch_ms(value: dt.datetime) -> str:
    """Epoch milliseconds, exact (integer arithmetic: a float product can land one millisecond short)."""
    return str((value.astimezone(dt.UTC) - EPOCH) // dt.timedelta(milliseconds=1))


def record_time(record: dict, lastmod: str) -> dt.datetime:
    """A search result's last-modified time (``updatedAt`` when the property is missing)."""
    return parse_time(record["properties"].get(lastmod) or record.get("updatedAt"))


def cursor_text(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class HubSpotSource(Reconciling):
    """Yields pages of every configured HubSpot object changed since the stored cursors."""

    def __init__(
        self,
        config: HubSpotConfig,
        client_factory: ClientFactory,
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        sleep: Callable[[float], None] | None = None,
        burst_limiter: RateLimiter | None = None,
        search_limiter: RateLimiter | None = None,
    ) -> None:
        self.config, self.name = config, config.name
        self.factory, self.now = client_factory, now
        self.policy = RetryPolicy(config.retry.max_attempts, config.retry.base_delay, config.retry.max_delay)
        if sleep is not None:
            self.policy.sleep = sleep
        self.burst = burst_limiter or shared_limiter(f"{config.name}:burst", config.requests_per_10s, 10.0)
        self.search_limit = search_limiter or shared_limiter(
            f"{config.name}:search", config.search_per_second, 1.0
        )
        self.timeout = (min(10.0, config.retry.timeout), config.retry.timeout)
        self.statuses = {key.lower(): value for key, value in config.status_map.items()}
        self.tiers = TierMapper(config.tier_map)
        self.teams = {key.lower(): value for key, value in config.team_roles.items()}
        self._client: HubSpot | None = None
        self._owners_by_user: dict[str, str] | None = None
        self.calls = 0

    # ---- public ----

    def pages(self, cursors: CursorStore) -> Iterator[Page]:
        """Owners, companies, contacts, deals, engagements, then marketing events."""
        sync_start = self.now().astimezone(dt.UTC).replace(microsecond=0)
        for obj in self.config.objects:
            if obj == "owners":
                yield from self._owner_pages()
            elif obj == "events":
                yield from self._event_pages(cursors, sync_start)
            elif obj == "email_events":
                yield from self._email_event_pages(cursors, sync_start)
            elif obj in ENGAGEMENTS and not self._maps_engagement(obj):
                continue
            else:
                yield from self._object_pages(obj, cursors, sync_start)
        yield from self.reconcile(cursors, sync_start)
        warning = self.tiers.warning(f"HubSpot companies ({self.config.tier_property})",
                                     f"sources.{self.name}.tier_map")
        if warning:
            log.warning(warning)
            yield Page(self.name, "companies", "accounts", conform("accounts", []), warnings=[warning])

    def id_scans(self) -> list[IdScan]:
        """Companies, contacts, deals, and the mapped engagements (sales touches); events are immutable."""
        configured = self.config.objects
        scans = [IdScan(obj, OBJECT_KIND[obj], (obj,)) for obj in ("companies", "contacts", "deals")
                 if obj in configured]
        engagements = tuple(o for o in ENGAGEMENTS if o in configured and self._maps_engagement(o))
        if engagements:
            scans.append(IdScan("+".join(engagements), "activities", engagements, sales_types()))
        return scans

    def list_ids(self, scan: IdScan) -> Iterator[str]:
        """Every live (unarchived) id, 100 a page (the list API; search would stop at 10,000)."""
        for obj in scan.objects:
            after = None
            while True:
                result = self._call(
                    lambda c, a=after, o=obj: c.crm.objects.basic_api.get_page(
                        o, limit=100, after=a, archived=False, properties=["hs_object_id"],
                        _request_timeout=self.timeout, _preload_content=False,
                    ),
                    f"list {obj} ids",
                )
                yield from (str(r["id"]) for r in result.get("results", []))
                after = ((result.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break

    # ---- CRM objects ----

    def _lower(self, cursors: CursorStore, object_name: str) -> dt.datetime | None:
        stored = cursors.get_cursor(self.name, object_name)
        if not stored:
            return None
        return parse_time(stored) - dt.timedelta(seconds=self.config.overlap_seconds)

    def _object_pages(self, obj: str, cursors: CursorStore, sync_start: dt.datetime) -> Iterator[Page]:
        lastmod = last_modified_property(obj)
        for records in self.search(
            obj, self._properties(obj), lastmod, self._lower(cursors, obj), sync_start
        ):
            newest = max(record_time(r, lastmod) for r in records)
            pages = self._map(obj, records)
            pages[-1].cursor = cursor_text(min(newest, sync_start))
            yield from pages
        yield from self._archived_pages(obj, cursors)

    def search(
        self, obj: str, properties: list[str], lastmod: str, lower: dt.datetime | None, upper: dt.datetime
    ) -> Iterator[list[dict]]:
        """Search pages in ``lastmod`` order, paged by keyset (the last timestamp seen), never by offset.

        Every query reads the *first* page of ``lower ≤ lastmod ≤ upper`` sorted by ``lastmod`` (HubSpot
        allows one sort rule), so a record modified mid-sync (it moves past ``upper``) shifts no other
        record into a skipped offset, and no query pages near the 10,000-result cap. The next query starts
        at the page's last timestamp, leaving out the ids already read at it. A full page of one timestamp
        (more records changed in the same millisecond than a page holds, possibly more than 10,000) is read
        as its own keyset on ``hs_object_id``; the query after it starts strictly after that timestamp.
        """
        size = min(self.config.page_size, self.config.search_result_cap)
        strict, seen_at_lower = False, set()
        while True:
            window = self._window(lastmod, lower, upper, strict)
            limit = min(size + len(seen_at_lower), SEARCH_LIMIT_MAX)  # room for the ids read already
            records, more = self._search_page(obj, properties, [window], lastmod, limit)
            fresh = [r for r in records if str(r["id"]) not in seen_at_lower]
            if not more:
                if fresh:
                    yield fresh
                return
            last = record_time(records[-1], lastmod)
            if lower is not None and not strict and last == lower:
                yield from self._same_time_pages(obj, properties, lastmod, lower, size, seen_at_lower)
                strict, seen_at_lower = True, set()
                continue
            if fresh:
                yield fresh
            lower, strict = last, False
            seen_at_lower = {str(r["id"]) for r in records if record_time(r, lastmod) == last}

    def _same_time_pages(
        self, obj: str, properties: list[str], lastmod: str, at: dt.datetime, size: int, seen: set[str]
    ) -> Iterator[list[dict]]:
        """Every record whose ``lastmod`` is exactly ``at``, by keyset on ``hs_object_id`` (ascending)."""
        log.info("HubSpot %s: a full page changed at %s; reading that timestamp by id", obj, cursor_text(at))
        last_id: str | None = None
        while True:
            filters = [{"propertyName": lastmod, "operator": "EQ", "value": epoch_ms(at)}]
            if last_id is not None:
                filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": last_id})
            records, more = self._search_page(obj, properties, [{"filters": filters}], "hs_object_id", size)
            fresh = [r for r in records if str(r["id"]) not in seen]
            if fresh:
                yield fresh
            if not more:
                return
            last_id = str(records[-1]["id"])

    @staticmethod
    def _window(lastmod: str, lower: dt.datetime | None, upper: dt.datetime, strict: bool) -> dict:
        """The filter group ``lower ≤ lastmod ≤ upper`` (``<`` when ``strict``; no lower bound when None)."""
        filters = [{"propertyName": lastmod, "operator": "LTE", "value": epoch_ms(upper)}]
        if lower is not None:
            filters.insert(0, {"propertyName": lastmod, "operator": "GT" if strict else "GTE",
                               "value": epoch_ms(lower)})
        return {"filters": filters}

    def _search_page(
        self, obj: str, properties: list[str], groups: list[dict], sort: str, size: int
    ) -> tuple[list[dict], bool]:
        """The first page of one search sorted ascending by ``sort``, and whether the search has more."""
        body = {
            "filterGroups": groups,
            "properties": properties,
            "limit": size,
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
        }
        result = self._call(
            lambda c, b=body: c.crm.objects.search_api.do_search(
                obj, b, _request_timeout=self.timeout, _preload_content=False
            ),
            f"search {obj}",
            search=True,
        )
        records = result.get("results", [])
        return records, bool(records) and len(records) >= size and bool((result.get("paging") or {}).get("next"))

    def _archived_pages(self, obj: str, cursors: CursorStore) -> Iterator[Page]:
        """Archived records (never in search) as deletes; the scan is full, so the cursor is on the end."""
        object_name = f"{obj}.archived"
        lower = self._lower(cursors, object_name)
        newest: dt.datetime | None = None
        after = None
        while True:
            result = self._call(
                lambda c, a=after: c.crm.objects.basic_api.get_page(
                    obj,
                    limit=min(100, self.config.page_size),
                    after=a,
                    archived=True,
                    properties=["hs_object_id"],
                    _request_timeout=self.timeout,
                    _preload_content=False,
                ),
                f"list archived {obj}",
            )
            ids = []
            for record in result.get("results", []):
                archived_at = parse_time(record.get("archivedAt") or record.get("updatedAt"))
                if lower is None or archived_at is None or archived_at >= lower:
                    ids.append(str(record["id"]))
                if archived_at is not None:
                    newest = max(newest, archived_at) if newest else archived_at
            after = ((result.get("paging") or {}).get("next") or {}).get("after")
            page = Page(
                self.name, object_name, self._kind(obj), conform(self._kind(obj), []), deleted_ids=ids
            )
            if not after:
                page.cursor = cursor_text(newest) if newest else None
                if ids or page.cursor:
                    yield page
                return
            if ids:
                yield page

    def _kind(self, obj: str) -> str:
        return OBJECT_KIND.get(obj, "activities")

    def _properties(self, obj: str) -> list[str]:
        c = self.config
        base = {
            "companies": [
                "name",
                "domain",
                "industry",
                "numberofemployees",
                "annualrevenue",
                c.country_property,
                OWNER_PROPERTY,
                c.tier_property,
                c.status_property,
                c.tal_property,
                c.intent_score_property,
                c.intent_topic_property,
                "createdate",
            ],
            "contacts": ["jobtitle", "email", "createdate"],
            "deals": ["dealstage", "amount", "createdate", "closedate", "hs_is_closed", "hs_is_closed_won"],
        }.get(
            obj,
            [
                "hs_timestamp",
                "hubspot_owner_id",
                "hs_task_status",
                SUBTYPE_PROPERTY.get(obj),
                SUBJECT_PROPERTY.get(obj),
            ],
        )
        return [p for p in dict.fromkeys([*base, last_modified_property(obj)]) if p]

    def _maps_engagement(self, obj: str) -> bool:
        return any(key.split(":")[0] == obj for key in self.config.sales_touches)

    # ---- mapping ----

    def _map(self, obj: str, records: list[dict]) -> list[Page]:
        kind = self._kind(obj)
        page = Page(self.name, obj, kind, conform(kind, []))
        if obj == "companies":
            return self._map_companies(records, page)
        companies = self.companies_of(obj, [r["id"] for r in records])
        if obj == "contacts":
            rows = [
                {
                    "contact_id": r["id"],
                    "account_id": companies.get(r["id"]),
                    "title": r["properties"].get("jobtitle"),
                    "email": r["properties"].get("email"),
                    "created_at": r["properties"].get("createdate") or r.get("createdAt"),
                    "updated_at": r["properties"].get("lastmodifieddate") or r.get("updatedAt"),
                }
                for r in records
            ]
        elif obj == "deals":
            rows = [
                {
                    "opportunity_id": r["id"],
                    "account_id": companies.get(r["id"]),
                    "stage": r["properties"].get("dealstage"),
                    "amount": to_float(r["properties"].get("amount")),
                    "created_at": r["properties"].get("createdate") or r.get("createdAt"),
                    "close_date": r["properties"].get("closedate"),
                    "is_closed": to_bool(r["properties"].get("hs_is_closed")),
                    "is_won": to_bool(r["properties"].get("hs_is_closed_won")),
                }
                for r in records
            ]
        else:
            rows = self._engagement_rows(obj, records, companies, page)
        self._finish(page, rows, records)
        return [page]

    def _finish(self, page: Page, rows: list[dict], records: list[dict]) -> None:
        """Rows without a company are quarantined; the rest become the page's rows."""
        id_column = page.rows.columns[0]
        by_id = {str(r["id"]): r for r in records}
        kept = []
        for row in rows:
            if row.get("account_id"):
                kept.append(row)
            else:
                record = by_id.get(str(row[id_column]).split(":")[0], {})
                page.quarantined.append(
                    Quarantined(
                        page.object_name,
                        str(row[id_column]),
                        f"{page.object_name} {row[id_column]} has no company",
                        record,
                    )
                )
        page.rows = conform(page.kind, kept, [by_id.get(str(r[id_column]).split(":")[0]) for r in kept])

    def _engagement_rows(
        self, obj: str, records: list[dict], companies: dict[str, str], page: Page
    ) -> list[dict]:
        contacts = self.associations(obj, "contacts", [r["id"] for r in records])
        rows = []
        for r in records:
            props = r["properties"]
            touch = self._touch(obj, props)
            if touch is None:
                page.deleted_ids.append(r["id"])
                continue
            rows.append(
                {
                    "activity_id": r["id"],
                    "account_id": companies.get(r["id"]),
                    "type": touch,
                    "occurred_at": props.get("hs_timestamp") or r.get("createdAt"),
                    "contact_id": (contacts.get(r["id"]) or [None])[0],
                    "owner_id": props.get("hubspot_owner_id"),
                    "subject": props.get(SUBJECT_PROPERTY.get(obj) or ""),
                }
            )
        return rows

    def _touch(self, obj: str, props: dict) -> str | None:
        if obj == "tasks" and props.get("hs_task_status") not in (None, "COMPLETED"):
            return None
        subtype = props.get(SUBTYPE_PROPERTY.get(obj, ""))
        touches = self.config.sales_touches
        return (
            touches.get(f"{obj}:{subtype}") if subtype and f"{obj}:{subtype}" in touches else touches.get(obj)
        )

    def _map_companies(self, records: list[dict], page: Page) -> list[Page]:
        c = self.config
        props = [r["properties"] for r in records]
        domains = normalize_domain(pd.Series([p.get("domain") for p in props], dtype="object"))
        raw_tiers = pd.Series([p.get(c.tier_property) if c.tier_property else None for p in props], dtype="object")
        tiers = self.tiers.map(raw_tiers)
        rows = [
            {
                "account_id": r["id"],
                "name": p.get("name"),
                "domain": domain,
                "industry": p.get("industry"),
                "employees": to_float(p.get("numberofemployees")),
                "annual_revenue": to_float(p.get("annualrevenue")),
                "country": p.get(c.country_property),
                "owner_id": p.get(OWNER_PROPERTY),
                "tier": tier,
                "created_at": p.get("createdate") or r.get("createdAt"),
                "updated_at": p.get("hs_lastmodifieddate") or r.get("updatedAt"),
            }
            for r, p, domain, tier in zip(records, props, domains, tiers, strict=True)
        ]
        page.rows = conform("accounts", rows, records)
        pages = [page]
        histories = self._company_histories(records)
        if c.status_property:
            pages.append(self._status_page(histories))
        if c.intent_score_property:
            pages.append(self._intent_page(records))
        if c.tal_property:
            pages.append(self._tal_page(histories))
        owners = self._owner_page(histories) if c.owner_history else None
        if owners is not None and len(owners.rows):  # most pages change no owner: no empty page
            pages.append(owners)
        return pages

    def _company_histories(self, records: list[dict]) -> list[tuple[dict, dict]]:
        """The histories every company page needs (status, reason, target account, owner), in one read."""
        c = self.config
        props = [c.status_property, c.reason_property, c.tal_property, OWNER_PROPERTY if c.owner_history else None]
        wanted = [p for p in dict.fromkeys(props) if p]
        return list(self._histories(records, wanted, "read company property history")) if wanted else []

    def _owner_page(self, histories: list[tuple[dict, dict]]) -> Page:
        """``owner_assigned`` activities from the history of ``hubspot_owner_id`` (who the CRM assigned, when)."""
        rows, raws = [], []
        for company, history in histories:
            changes = history.get(OWNER_PROPERTY, [])
            found = owner_assignments(str(company["id"]), [(c.get("timestamp"), c.get("value")) for c in changes])
            rows += found
            raws += [{"id": row["activity_id"], OWNER_PROPERTY: changes} for row in found]
        return Page(self.name, "companies", "activities", conform("activities", rows, raws))

    def _histories(self, records: list[dict], props: list[str], what: str) -> Iterator[tuple[dict, dict]]:
        """(company, ``propertiesWithHistory``) of the page's companies, in batch reads of ≤50 with history."""
        for start in range(0, len(records), HISTORY_BATCH_MAX):
            body = {
                "inputs": [{"id": r["id"]} for r in records[start : start + HISTORY_BATCH_MAX]],
                "properties": props,
                "propertiesWithHistory": props,
            }
            result = self._call(
                lambda c, b=body: c.crm.objects.batch_api.read(
                    "companies", b, archived=False, _request_timeout=self.timeout, _preload_content=False
                ),
                what,
            )
            for company in result.get("results", []):
                yield company, company.get("propertiesWithHistory") or {}

    def _tal_page(self, histories: list[tuple[dict, dict]]) -> Page:
        """The target account list periods of the page's companies, from the history of ``tal_property``
        (``hs_is_target_account``: HubSpot keeps a property's history from the company's creation, so a box
        never ticked has no period). A company's whole history is read whenever it changed, so a period
        that ended since the last sync updates its row."""
        prop = self.config.tal_property
        rows, raws = [], []
        for company, history in histories:
            changes = history.get(prop, [])
            periods = list_periods(str(company["id"]), [(c.get("timestamp"), c.get("value")) for c in changes])
            rows += periods
            raws += [{"id": company["id"], prop: changes}] * len(periods)
        return Page(self.name, "companies", "target_accounts", conform("target_accounts", rows, raws))

    def _status_page(self, histories: list[tuple[dict, dict]]) -> Page:
        """The status property's history of the page's companies (batch reads of ≤50 with history).

        With ``reason_property``, its history too: a reason set with a status (same timestamp) is that
        change's reason; one set on its own is a row with an empty status (a reason for the current verdict).
        """
        prop, reason_prop = self.config.status_property, self.config.reason_property
        rows, raws, deleted = [], [], []
        for company, history in histories:
            reasons = {change.get("timestamp"): str(change["value"]).strip()
                       for change in history.get(reason_prop, []) if reason_prop
                       and change.get("value") is not None and str(change["value"]).strip()}
            stamps = set()
            for change in history.get(prop, []):
                value = change.get("value")
                if value is None or not str(value).strip():
                    continue
                change_id = stable_id(company["id"], change.get("timestamp"), value)
                if self.is_integration_change(change):
                    deleted.append(change_id)  # never sales' answer; gone if stored before
                    continue
                stamps.add(change.get("timestamp"))
                status = self.statuses.get(str(value).lower(), str(value).strip().lower())
                rows.append(self._status_row(change_id, company["id"], status, change,
                                             reasons.get(change.get("timestamp"))))
                raws.append(change)
            for change in history.get(reason_prop, []) if reason_prop else []:
                stamp = change.get("timestamp")
                if stamp in reasons and stamp not in stamps and not self.is_integration_change(change):
                    change_id = stable_id(company["id"], stamp, "reason:" + reasons[stamp])
                    rows.append(self._status_row(change_id, company["id"], None, change, reasons[stamp]))
                    raws.append(change)
        return Page(self.name, "companies", "status_changes", conform("status_changes", rows, raws),
                    deleted_ids=deleted)

    def _status_row(self, change_id: str, company_id: str, status: str | None, change: dict,
                    reason: str | None) -> dict:
        return {"status_change_id": change_id, "account_id": company_id, "status": status,
                "changed_at": change.get("timestamp"), "changed_by": self.owner_of_user(change.get("updatedByUserId")),
                "reason": reason}

    def is_integration_change(self, change: dict) -> bool:
        """A history entry the integration made: the write-back's value, a configured integration user,
        or a configured app (``sourceId`` of INTEGRATION/API changes). Never sales' answer."""
        c = self.config
        if str(change.get("value") or "").strip().lower() in {v.strip().lower() for v in c.writeback_status_values}:
            return True
        user = change.get("updatedByUserId")
        if user is not None and str(user) in set(c.integration_user_ids):
            return True
        source = str(change.get("sourceId") or "")
        return change.get("sourceType") in ("INTEGRATION", "API") and source in set(c.integration_app_ids)

    def _intent_page(self, records: list[dict]) -> Page:
        c = self.config
        page = Page(self.name, "companies", "intent_signals", conform("intent_signals", []))
        rows, raws = [], []
        for r in records:
            p = r["properties"]
            score = to_float(p.get(c.intent_score_property))
            if score is None:
                continue
            if not 0 <= score <= 100:
                page.quarantined.append(
                    Quarantined("companies", r["id"], f"intent score {score} outside 0-100", r)
                )
                continue
            topic = (p.get(c.intent_topic_property) if c.intent_topic_property else None) or c.intent_topic
            observed = p.get("hs_lastmodifieddate") or r.get("updatedAt")
            rows.append(
                {
                    "intent_id": stable_id(r["id"], topic.strip().lower(), observed),
                    "account_id": r["id"],
                    "topic": topic,
                    "score": score,
                    "observed_at": observed,
                    "provider": c.intent_provider,
                }
            )
            raws.append(r)
        page.rows = conform("intent_signals", rows, raws)
        return page

    # ---- associations ----

    def associations(self, from_type: str, to_type: str, ids: list[str]) -> dict[str, list[str]]:
        """``{from id: [to ids]}`` by v4 batch read (≤1,000 inputs a call); primary associations first.

        The batch read pages *per input*: a record with more associations than one page carries its own
        ``paging.next.after``, which goes back in as ``{"id", "after"}`` until no input has one left.
        """
        primary = PRIMARY_COMPANY.get(from_type) if to_type == "companies" else None
        targets: dict[str, list[dict]] = {}
        pending: list[tuple[str, str | None]] = [(str(i), None) for i in ids]
        seen: set[tuple[str, str]] = set()
        while pending:
            batch, pending = pending[:ASSOCIATION_INPUTS_MAX], pending[ASSOCIATION_INPUTS_MAX:]
            body = {"inputs": [{"id": i, **({"after": a} if a else {})} for i, a in batch]}
            result = self._call(
                lambda c, b=body: c.crm.associations.v4.batch_api.get_page(
                    from_type, to_type, b, _request_timeout=self.timeout, _preload_content=False
                ),
                f"read {from_type}→{to_type} associations",
            )
            for item in result.get("results", []):
                from_id = str(item["from"]["id"])
                targets.setdefault(from_id, []).extend(item.get("to", []))
                after = ((item.get("paging") or {}).get("next") or {}).get("after")
                if after and (from_id, str(after)) not in seen:
                    seen.add((from_id, str(after)))
                    pending.append((from_id, str(after)))
        return {
            from_id: [str(t["toObjectId"]) for t in sorted(found, key=lambda t: (
                not any(a.get("typeId") == primary for a in t.get("associationTypes", [])),
                str(t.get("toObjectId")),
            ))]
            for from_id, found in targets.items()
        }

    def companies_of(self, obj: str, ids: list[str]) -> dict[str, str]:
        return {key: value[0] for key, value in self.associations(obj, "companies", ids).items() if value}

    # ---- owners ----

    def owner_of_user(self, user_id: Any) -> str | None:
        """The owner id of a HubSpot *user* id (history's ``updatedByUserId``); None when no owner has it."""
        if user_id is None or str(user_id).strip() == "":
            return None
        if self._owners_by_user is None:
            for _ in self._owner_pages():  # fills the map; the pages themselves are not needed here
                pass
        return (self._owners_by_user or {}).get(str(user_id))

    def _remember_users(self, owners: list[dict]) -> None:
        """Owners carry ``userId`` (and ``userIdIncludingInactive``): the user behind each owner."""
        known = self._owners_by_user if self._owners_by_user is not None else {}
        for owner in owners:
            for key in ("userId", "userIdIncludingInactive"):
                if owner.get(key) is not None:
                    known.setdefault(str(owner[key]), str(owner["id"]))
        self._owners_by_user = known

    def _owner_pages(self) -> Iterator[Page]:
        """Every owner once, each sync (no change filter on the owners API); archived owners are inactive."""
        self._owners_by_user, seen = {}, set()
        for archived in (False, True):
            after = None
            while True:
                result = self._call(
                    lambda c, a=after, arch=archived: c.crm.owners.owners_api.get_page(
                        limit=100,
                        after=a,
                        archived=arch,
                        _request_timeout=self.timeout,
                        _preload_content=False,
                    ),
                    "list owners",
                )
                owners = [o for o in result.get("results", []) if str(o["id"]) not in seen]
                seen.update(str(o["id"]) for o in owners)
                self._remember_users(owners)
                if owners:
                    yield Page(
                        self.name,
                        "owners",
                        "users",
                        conform("users", [self._user(o, archived) for o in owners], owners),
                    )
                after = ((result.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break

    def _user(self, owner: dict, archived: bool) -> dict:
        teams = owner.get("teams") or []
        team = next((t for t in teams if t.get("primary")), teams[0] if teams else None)
        role = self.teams.get(str(team.get("name")).lower()) if team else None
        name = " ".join(p for p in (owner.get("firstName"), owner.get("lastName")) if p) or None
        return {
            "user_id": str(owner["id"]),
            "name": name,
            "email": owner.get("email"),
            "role": role or self.config.default_role,
            "manager_id": None,
            "time_zone": self.config.default_time_zone,
            "country": self.config.default_country,
            "active": not owner.get("archived", archived),  # the owner's own flag; the pass only if absent
        }

    # ---- marketing events ----

    def _event_pages(self, cursors: CursorStore, sync_start: dt.datetime) -> Iterator[Page]:
        """Event analytics; a portal without the entitlement (403) is a warning, not a failed sync."""
        try:
            yield from self._event_type_pages(cursors, sync_start)
        except EntitlementError as error:
            yield self._skipped("events", "event analytics (page views, form submissions, webinars)", error,
                                "a Marketing, Sales, Service or Content Hub Enterprise portal")

    def _skipped(self, object_name: str, what: str, error: EntitlementError, needs: str) -> Page:
        """An empty page whose warning says what was skipped, why and how to stop asking."""
        warning = (
            f"HubSpot {what} skipped: {error.detail}; it needs {needs} and a token with its scopes. "
            f"The other objects were synced. To stop asking, remove '{object_name}' from "
            "sources.hubspot.objects in abm-sla.yaml."
        )
        log.warning(warning)
        return Page(self.name, object_name, "activities", conform("activities", []), warnings=[warning])

    def _event_type_pages(self, cursors: CursorStore, sync_start: dt.datetime) -> Iterator[Page]:
        """Contact events of each configured type; unordered pages, so the cursor rides on the last one."""
        for event_type, touch in self.config.event_touches().items():
            object_name = f"events:{event_type}"
            lower = self._lower(cursors, object_name)
            after, newest, pending = None, None, None
            while True:
                result = self._call(
                    lambda c, a=after, e=event_type, lo=lower: c.events.events_api.get_page(
                        object_type="contact",
                        event_type=e,
                        occurred_after=lo,
                        occurred_before=sync_start,
                        limit=self.config.page_size,
                        after=a,
                        _request_timeout=self.timeout,
                        _preload_content=False,
                    ),
                    f"read {event_type} events",
                )
                events = result.get("results", [])
                if events:
                    times = [parse_time(e.get("occurredAt")) for e in events]
                    newest = max([t for t in [newest, *times] if t is not None])
                    if pending:
                        yield pending
                    pending = self._event_page(object_name, touch, events)
                after = ((result.get("paging") or {}).get("next") or {}).get("after")
                if not after or not events:
                    break
            if pending:
                pending.cursor = cursor_text(min(newest, sync_start))
                yield pending

    def _event_page(self, object_name: str, touch: str, events: list[dict]) -> Page:
        contact_ids = sorted({str(e.get("objectId")) for e in events})
        companies = self.companies_of("contacts", contact_ids)
        rows = [
            {
                "activity_id": str(e["id"]),
                "account_id": companies.get(str(e.get("objectId"))),
                "type": touch,
                "occurred_at": e.get("occurredAt"),
                "contact_id": str(e.get("objectId")),
                "url": (e.get("properties") or {}).get("hs_url"),
            }
            for e in events
        ]
        page = Page(self.name, object_name, "activities", conform("activities", []))
        for event in events:
            event["id"] = str(event["id"])
        self._finish(page, rows, events)
        return page

    # ---- marketing e-mail events ----

    def _email_event_pages(self, cursors: CursorStore, sync_start: dt.datetime) -> Iterator[Page]:
        """Email events; a token without the ``content`` scope (403) is a warning, not a failed sync."""
        try:
            yield from self._email_event_type_pages(cursors, sync_start)
        except EntitlementError as error:
            yield self._skipped("email_events", "marketing e-mail events (opens, clicks)", error,
                                "Marketing Hub (Starter or higher) and the 'content' scope")

    def _email_event_type_pages(self, cursors: CursorStore, sync_start: dt.datetime) -> Iterator[Page]:
        """Opens and clicks from the email events API (newest first, so the cursor rides on the last page).

        ``GET /email/public/v1/events?eventType=OPEN&startTimestamp=…&endTimestamp=…&limit=1000&offset=…``
        answers ``{"events": [...], "hasMore", "offset"}``; each event names its recipient by e-mail
        address (https://developers.hubspot.com/docs/api-reference/legacy/email-analytics-v1/guide).
        """
        for event_type, touch in self.config.email_events.items():
            object_name = f"email_events:{event_type}"
            lower = self._lower(cursors, object_name)
            params: dict[str, Any] = {
                "eventType": event_type,
                "endTimestamp": epoch_ms(sync_start),
                "limit": EMAIL_EVENTS_MAX,
                "excludeFilteredEvents": str(self.config.exclude_filtered_email_events).lower(),
            }
            if lower is not None:
                params["startTimestamp"] = epoch_ms(lower)
            offset, newest, pending = None, None, None
            while True:
                query = {**params, **({"offset": offset} if offset else {})}
                result = self._call(
                    lambda c, q=query: self._get(c, "/email/public/v1/events", q),
                    f"read {event_type} email events",
                )
                events = result.get("events") or []
                if events:
                    times = [parse_time(e.get("created")) for e in events]
                    newest = max([t for t in [newest, *times] if t is not None])
                    if pending:
                        yield pending
                    pending = self._email_event_page(object_name, touch, events)
                offset = result.get("offset")
                if not result.get("hasMore") or not events or not offset:
                    break
            if pending:
                pending.cursor = cursor_text(min(newest, sync_start))
                yield pending

    def _email_event_page(self, object_name: str, touch: str, events: list[dict]) -> Page:
        """Recipients become contacts (batch read by the unique ``email`` property), contacts companies."""
        contacts = self.contacts_by_email(sorted({str(e.get("recipient") or "").lower() for e in events} - {""}))
        companies = self.companies_of("contacts", sorted(set(contacts.values())))
        page = Page(self.name, object_name, "activities", conform("activities", []))
        rows, raws = [], []
        for event in events:
            event["id"] = str(event["id"])
            contact = contacts.get(str(event.get("recipient") or "").lower())
            if contact is None:
                page.quarantined.append(
                    Quarantined(object_name, event["id"], "email event recipient is no HubSpot contact", event)
                )
                continue
            rows.append(
                {
                    "activity_id": f"email:{event['id']}",
                    "account_id": companies.get(contact),
                    "type": touch,
                    "occurred_at": parse_time(event.get("created")),
                    "contact_id": contact,
                    "url": event.get("url"),
                }
            )
            raws.append({**event, "id": f"email:{event['id']}"})
        self._finish(page, rows, raws)
        return page

    def contacts_by_email(self, emails: list[str]) -> dict[str, str]:
        """``{lower-case e-mail: contact id}`` by batch reads on ``idProperty=email`` (≤100 inputs)."""
        found: dict[str, str] = {}
        for start in range(0, len(emails), BATCH_READ_MAX):
            body = {
                "inputs": [{"id": email} for email in emails[start : start + BATCH_READ_MAX]],
                "idProperty": "email",
                "properties": ["email"],
            }
            result = self._call(
                lambda c, b=body: c.crm.objects.batch_api.read(
                    "contacts", b, archived=False, _request_timeout=self.timeout, _preload_content=False
                ),
                "read contacts by e-mail",
            )
            for contact in result.get("results", []):
                email = str((contact.get("properties") or {}).get("email") or "").lower()
                if email:
                    found[email] = str(contact["id"])
        return found

    def _get(self, client: HubSpot, path: str, params: dict) -> _RawResponse:
        """A GET the generated client has no API for (legacy endpoints), with the client's token and host."""
        base = (client.config.get("host") or DEFAULT_HOST).rstrip("/")
        response = requests.get(
            f"{base}{path}",
            params=params,
            headers={"Authorization": f"Bearer {client.config['access_token']}", "Accept": "application/json"},
            timeout=self.timeout,
        )
        if response.status_code >= 300:
            raise HttpStatusError(response.status_code, response.text, response.headers)
        return _RawResponse(response.content)

    # ---- calls ----

    def _hs(self) -> HubSpot:
        if self._client is None:
            self._client = self.factory()
        return self._client

    def _call(
        self, call: Callable[[HubSpot], Any], what: str, search: bool = False, idempotent: bool = True
    ) -> dict:
        """One rate-limited API call with retries, one re-login on 401 and one-line errors; JSON body.

        ``idempotent=False`` (a create): only answers that prove nothing was written (429, 401) are
        retried; a timeout, dropped connection or 5xx raises :class:`AmbiguousWrite` at once, for the
        caller to look for the record before writing again.
        """
        relogins = 0

        def attempt() -> dict:
            (self.search_limit if search else self.burst).acquire()
            self.calls += 1
            response = call(self._hs())
            return json.loads(response.data or b"{}")

        def classify(error: BaseException) -> Retry | None:
            nonlocal relogins
            status = getattr(error, "status", None)
            if status == 401 and relogins == 0:
                relogins += 1
                self._client = None
                return Retry("access token rejected; building a new client", after=0)
            verdict = classify_error(error)
            if verdict is not None and not idempotent and status != 429:
                raise AmbiguousWrite(f"HubSpot {what}: {verdict.reason}; the write may have happened") from None
            return verdict

        try:
            return call_with_retry(attempt, classify, self.policy, what=f"HubSpot {what}")
        except SourceError:
            raise
        except (urllib3.exceptions.HTTPError, requests.RequestException) as error:
            raise SourceError(
                f"HubSpot {what} failed: {type(error).__name__} (gave up after retries)"
            ) from None
        except Exception as error:
            status = getattr(error, "status", None)
            if status is None:
                raise
            message = redact(error_message(error, what), self.config.credentials.secrets())
            if status == 403:
                body = error_body(error)
                detail = " ".join(str(p) for p in ("HTTP 403", body.get("category"), body.get("message")) if p)
                raise EntitlementError(message, redact(detail, self.config.credentials.secrets())) from None
            raise SourceError(message) from None


class AmbiguousWrite(SourceError):
    """A write whose outcome is unknown (timeout, dropped connection, 5xx): look before writing again."""


class EntitlementError(SourceError):
    """HubSpot answered 403: the portal's edition or the token's scopes do not allow this API."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


class HttpStatusError(Exception):
    """A non-2xx answer to a raw request, shaped like the client's ``ApiException`` (status, body, headers)."""

    def __init__(self, status: int, body: str, headers: Any) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.body, self.headers = status, body, headers


@dataclass(frozen=True)
class _RawResponse:
    """What ``_call`` reads from a response: the JSON bytes in ``data``."""

    data: bytes


def error_body(error: BaseException) -> dict:
    body = getattr(error, "body", None)
    try:
        parsed = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def classify_error(error: BaseException) -> Retry | None:
    """Transient HubSpot faults: 429 (not the daily limit), 5xx, timeouts, dropped connections."""
    if isinstance(error, (urllib3.exceptions.HTTPError, requests.Timeout, requests.ConnectionError)):
        return Retry(type(error).__name__)
    status = getattr(error, "status", None)
    if status == 429:
        body = error_body(error)
        if body.get("policyName") == "DAILY":
            return None
        headers = getattr(error, "headers", None) or {}
        return Retry(
            f"HTTP 429 {body.get('policyName') or 'rate limit'}",
            parse_retry_after(headers.get("Retry-After")),
        )
    if isinstance(status, int) and status >= 500:
        return Retry(f"HTTP {status}")
    return None


def error_message(error: BaseException, what: str) -> str:
    status = getattr(error, "status", None)
    body = error_body(error)
    if status == 401:
        return "HubSpot rejected the access token (401); check the token and its scopes"
    if status == 429 and body.get("policyName") == "DAILY":
        return "HubSpot daily API limit reached; the pages read so far are kept, sync again tomorrow"
    detail = " ".join(str(part) for part in (body.get("category"), body.get("message")) if part)
    return f"HubSpot {what} failed: HTTP {status} {detail}".strip()
