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

import requests
import urllib3
from hubspot import HubSpot

from abm_sla.crm.base import CursorStore, Page
from abm_sla.crm.hubspot.errors import (
    AmbiguousWrite,
    EntitlementError,
    HttpStatusError,
    classify_error,
    error_body,
    error_message,
)
from abm_sla.crm.hubspot.events import MarketingEvents
from abm_sla.crm.hubspot.login import DEFAULT_HOST, ClientFactory
from abm_sla.crm.hubspot.query import (
    ASSOCIATION_INPUTS_MAX,
    ENGAGEMENTS,
    OBJECT_KIND,
    OWNER_PROPERTY,
    PRIMARY_COMPANY,
    SEARCH_LIMIT_MAX,
    SUBJECT_PROPERTY,
    SUBTYPE_PROPERTY,
    cursor_text,
    epoch_ms,
    last_modified_property,
    parse_time,
    record_time,
)
from abm_sla.crm.hubspot.records import RecordMapping
from abm_sla.crm.limits import RateLimiter, Retry, RetryPolicy, call_with_retry, redact, shared_limiter
from abm_sla.crm.mapping import HubSpotConfig, TierMapper, conform
from abm_sla.crm.reconcile import IdScan, Reconciling, sales_types
from abm_sla.errors import SourceError

log = logging.getLogger(__name__)


class HubSpotSource(RecordMapping, MarketingEvents, Reconciling):
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



@dataclass(frozen=True)
class _RawResponse:
    """What ``_call`` reads from a response: the JSON bytes in ``data``."""

    data: bytes

