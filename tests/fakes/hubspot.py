"""A fake HubSpot CRM v3 / associations v4 / event analytics / email events server seeded from frames.

Every limit it enforces, with its value and source, is in ``tests/fakes/LIMITS.md``.

Wire facts from crm-apis.md part B: properties are strings or null, datetimes ISO
with ``Z``, ``paging`` omitted on the last page, search takes epoch-ms filters,
pages by numeric ``after`` (limit ≤ 200) and answers 400 past its result cap,
batch reads answer 207 for unknown ids, v4 association reads list ids without
associations as errors, errors are ``{status, message, correlationId, category}``,
429s carry ``policyName`` and optionally ``Retry-After``; non-search responses
carry ``X-HubSpot-RateLimit-*`` headers. Optional enforcement of the 10-second and
search per-second limits answers 429 when a client goes faster.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import re
import time
import uuid
from collections import deque
from typing import Any
from urllib.parse import parse_qs

import pandas as pd
from hubspot import HubSpot

from tests.fakes import FakeServer, Request, Response, json_body

LASTMOD = {"contacts": "lastmodifieddate"}
OBJECT_TYPES = ("companies", "contacts", "deals", "emails", "meetings", "calls", "notes", "tasks")
ASSOCIATION_TYPE = {  # (from, to) → HUBSPOT_DEFINED type id (primary where there is one)
    ("contacts", "companies"): 1,
    ("deals", "companies"): 5,
    ("emails", "companies"): 186,
    ("meetings", "companies"): 188,
    ("calls", "companies"): 182,
    ("notes", "companies"): 190,
    ("tasks", "companies"): 192,
    ("emails", "contacts"): 198,
    ("meetings", "contacts"): 200,
    ("calls", "contacts"): 194,
    ("notes", "contacts"): 202,
    ("tasks", "contacts"): 204,
}
BATCH_READ_MAX = 100  # limits table: tests/fakes/LIMITS.md
HISTORY_BATCH_MAX = 50
HISTORY_BATCH_MESSAGE = "The maximum number of inputs supported in a batch request for property histories is 50"
EVENT_TYPES = {  # event analytics (Enterprise): page views and form submissions, plus custom pe* types
    "web_visit": "e_visited_page",
    "form_submit": "e_submitted_form",
}
EMAIL_EVENT_TYPES = {"email_open": "OPEN", "email_click": "CLICK"}  # email events API (legacy v1)
ALL_EMAIL_EVENT_TYPES = {  # docs: email analytics v1 guide, "Event types"
    "SENT", "DROPPED", "PROCESSED", "DELIVERED", "DEFERRED", "BOUNCE", "OPEN", "CLICK", "STATUSCHANGE",
    "SPAMREPORT", "SUPPRESSED", "PRINT", "FORWARD",
}
EMAIL_EVENTS_MAX = 1000
BURST_MAX = 190  # per 10 s, Professional/Enterprise private apps (2024 changelog); tier-dependent
SEARCH_MAX_LIMIT = 200
ASSOCIATION_PAGE_SIZE = 500  # v4 association reads: 500 a page (the per-record read's default and maximum)
OAUTH_TOKEN_PATHS = ("/oauth/v3/token", "/oauth/2026-03/token")  # the v1 path is sunset on 2027-02-16
OAUTH_V1_TOKEN_PATH = "/oauth/v1/token"
OAUTH_V1_SUNSET_MESSAGE = "The v1 OAuth API was sunset on February 16th, 2027; use POST /oauth/v3/token"
SEARCH_MAX_GROUPS, SEARCH_MAX_FILTERS_PER_GROUP, SEARCH_MAX_FILTERS = 5, 6, 18
SEARCH_MAX_QUERY_CHARS = 3000
SEARCH_MAX_SORTS = 1
SCOPE_OF = {  # path prefix → the scope a token needs (docs: each endpoint's "Required Scopes")
    "/email/public/v1/events": "content",
    "/crm/v3/owners": "crm.objects.owners.read",
    "/crm/v3/objects/companies": "crm.objects.companies.read",
    "/crm/v3/objects/contacts": "crm.objects.contacts.read",
    "/crm/v3/objects/deals": "crm.objects.deals.read",
}
ALL_SCOPES = frozenset(SCOPE_OF.values())
SALES_OBJECTS = {  # sales touch → (object, properties)
    "call": ("calls", {}),
    "meeting": ("meetings", {}),
    "email_sent": ("emails", {"hs_email_direction": "EMAIL", "hs_email_status": "SENT"}),
    "linkedin_message": ("tasks", {"hs_task_type": "LINKED_IN_MESSAGE", "hs_task_status": "COMPLETED"}),
}
SUBJECT = {
    "emails": "hs_email_subject",
    "meetings": "hs_meeting_title",
    "calls": "hs_call_title",
    "tasks": "hs_task_subject",
}


def hs_time(value: Any) -> str | None:
    """``2026-01-05T14:03:22.309Z``."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def parse_hs_time(value: str) -> dt.datetime:
    if value.isdigit():
        return dt.datetime.fromtimestamp(int(value) / 1000, tz=dt.UTC)
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _text(value: Any) -> str | None:
    """A property value as HubSpot sends it: a string, or null."""
    if value is None or (not isinstance(value, (str, bool)) and pd.isna(value)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, pd.Timestamp):
        return hs_time(value)
    return str(value)


class Window:
    """A rolling-window counter for the fake's own limit enforcement."""

    def __init__(self, max_calls: int, period: float) -> None:
        self.max_calls, self.period, self.calls = max_calls, period, deque()

    def hit(self) -> bool:
        now = time.monotonic()
        while self.calls and self.calls[0] <= now - self.period:
            self.calls.popleft()
        if len(self.calls) >= self.max_calls:
            return False
        self.calls.append(now)
        return True


class FakeHubSpot(FakeServer):
    """The fake portal; ``now`` is its clock (settable, advanced by :meth:`tick`)."""

    def __init__(
        self,
        data: dict[str, pd.DataFrame] | None = None,
        *,
        now: dt.datetime | None = None,
        status_property: str = "abm_status",
        reason_property: str | None = None,
        tal_property: str = "hs_is_target_account",
        webinar_event_type: str = "pe999_webinar_attended",
        search_cap: int = 10_000,
        burst: tuple[int, float] | None = None,
        search_rate: tuple[int, float] | None = None,
        enterprise: bool = True,
        scopes: frozenset[str] | None = None,
        search_lag: float = 0.0,
        association_page_size: int = ASSOCIATION_PAGE_SIZE,
    ) -> None:
        super().__init__()
        self.now = now or dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
        self.status_property = status_property
        self.reason_property = reason_property  # a company property with sales' reason (issue 14)
        self.tal_property = tal_property  # HubSpot's ABM "Target account" checkbox (issue 15)
        self.webinar_event_type = webinar_event_type
        self.search_cap = search_cap
        self.enterprise = enterprise  # event analytics answers 403 on non-Enterprise portals
        self.search_lag = search_lag  # seconds (portal clock) before a created record is searchable
        self.association_page_size = association_page_size  # v4 batch read: targets per input per page
        self.scopes = set(ALL_SCOPES if scopes is None else scopes)  # the token's scopes
        self.burst = Window(*burst) if burst else None
        self.search_rate = Window(*search_rate) if search_rate else None
        self.objects: dict[str, dict[str, dict]] = {name: {} for name in OBJECT_TYPES}
        self.associations: dict[tuple[str, str, str], list[str]] = {}
        self.history: dict[tuple[str, str], dict[str, list[dict]]] = {}
        self.owners: dict[str, dict] = {}
        self.events: list[dict] = []
        self.email_events: list[dict] = []
        self.tokens = {"pat-na1-fake-secret-token"}
        self.token = "pat-na1-fake-secret-token"
        self.daily_used, self.daily_max = 0, 500_000
        self.oauth_apps: dict[tuple[str, str], str] = {}  # (client id, secret) → refresh token
        self.refreshes = 0
        self.app_id = "2231870"  # the private app behind the token (history sourceId of its writes)
        self.rate_limited = 0  # 429s sent by enforcement
        self._ids = itertools.count(900_000)
        if data:
            self.seed(data)

    # ---- clients ----

    def client(self, token: str | None = None) -> HubSpot:
        return HubSpot(access_token=token or self.token, host=self.url, retry=False)

    def factory(self):
        return lambda: self.client()

    def expire_token(self, reissue: bool = True) -> str | None:
        """Every token is rejected (401); ``reissue`` makes a new one that the next client gets."""
        with self.lock:
            self.tokens.clear()
            if reissue:
                self.token = f"pat-na1-fake-secret-{uuid.uuid4().hex[:8]}"
                self.tokens.add(self.token)
                return self.token
        return None

    # ---- data ----

    def user_id_of(self, owner_id: Any) -> int | None:
        """The HubSpot *user* id behind an owner id (history and audit fields name users, not owners)."""
        owner = self.owners.get(str(_text(owner_id)))
        return owner["userId"] if owner else None

    def new_id(self) -> str:
        return str(next(self._ids))

    def tick(self, seconds: float) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now

    def insert(
        self, obj: str, object_id: str | None, properties: dict, created: Any = None, modified: Any = None
    ) -> dict:
        object_id = str(object_id or self.new_id())
        stamp = hs_time(modified) or hs_time(created) or hs_time(self.now)
        created_text = hs_time(created) or stamp
        props = {k: _text(v) for k, v in properties.items()}
        props.update(
            {
                "hs_object_id": object_id,
                "createdate": created_text,
                LASTMOD.get(obj, "hs_lastmodifieddate"): stamp,
            }
        )
        record = {
            "id": object_id,
            "properties": props,
            "createdAt": created_text,
            "updatedAt": stamp,
            "archived": False,
        }
        with self.lock:
            self.objects[obj][object_id] = record
        return record

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        with self.lock:
            self.associations.setdefault((from_type, str(from_id), to_type), []).append(str(to_id))
            back = (to_type, str(to_id), from_type)
            self.associations.setdefault(back, []).append(str(from_id))

    def update(self, obj: str, object_id: str, by: dict | None = None, **properties: Any) -> dict:
        """Change properties; the last-modified property and updatedAt move to the portal clock.

        ``by``: who changed it, as history records it (default a user in the UI).
        """
        with self.lock:
            record = self.objects[obj][str(object_id)]
            stamp = hs_time(self.now)
            for name, value in properties.items():
                record["properties"][name] = _text(value)
                if obj == "companies" and name in (self.status_property, self.tal_property, "hubspot_owner_id"):
                    self.history.setdefault((obj, str(object_id)), {}).setdefault(name, []).insert(
                        0, {"value": _text(value), "timestamp": stamp, **(by or {"sourceType": "CRM_UI"})}
                    )
            record["properties"][LASTMOD.get(obj, "hs_lastmodifieddate")] = stamp
            record["updatedAt"] = stamp
            return record

    def archive(self, obj: str, object_id: str) -> None:
        """Archive (delete) a record: gone from search, listed with ``archived=true``."""
        with self.lock:
            record = self.objects[obj][str(object_id)]
            record.update(archived=True, archivedAt=hs_time(self.now), updatedAt=hs_time(self.now))

    def seed(self, data: dict[str, pd.DataFrame]) -> None:
        """Records from normalized frames (any subset of kinds)."""

        def rows(kind: str) -> list[dict]:
            frame = data.get(kind)
            return [] if frame is None else frame.to_dict(orient="records")

        for u in rows("users"):
            first, _, last = str(_text(u.get("name")) or "").partition(" ")
            role = _text(u.get("role"))
            self.owners[str(u["user_id"])] = {
                "id": str(u["user_id"]),
                "email": _text(u.get("email")),
                "firstName": first or None,
                "lastName": last or None,
                "userId": int(self.new_id()),
                "type": "PERSON",
                "createdAt": hs_time(self.now),
                "updatedAt": hs_time(self.now),
                "archived": _text(u.get("active")) == "false",
                "teams": [{"id": self.new_id(), "name": role, "primary": True}] if role else [],
            }
        for a in rows("accounts"):
            tier = _text(a.get("tier"))
            match = re.match(r"(?i)^\s*(?:tier\s*)?([123])\s*$", tier or "")
            self.insert(
                "companies",
                a["account_id"],
                {
                    "name": a.get("name"),
                    "domain": a.get("domain"),
                    "industry": a.get("industry"),
                    "numberofemployees": a.get("employees"),
                    "annualrevenue": a.get("annual_revenue"),
                    "country": a.get("country"),
                    "hubspot_owner_id": a.get("owner_id"),
                    "hs_ideal_customer_profile": f"tier_{match.group(1)}" if match else tier,
                },
                a.get("created_at"),
                a.get("updated_at"),
            )
        for i in rows("intent_signals"):
            company = self.objects["companies"].get(str(i.get("account_id")))
            if company:
                company["properties"].update(
                    abm_intent_score=_text(i.get("score")), abm_intent_topic=i.get("topic")
                )
        for c in rows("contacts"):
            self.insert(
                "contacts",
                c["contact_id"],
                {"jobtitle": c.get("title"), "email": c.get("email")},
                c.get("created_at"),
                c.get("updated_at"),
            )
            if _text(c.get("account_id")):
                self.associate("contacts", c["contact_id"], "companies", c["account_id"])
        for o in rows("opportunities"):
            self.insert(
                "deals",
                o["opportunity_id"],
                {
                    "dealstage": o.get("stage"),
                    "amount": o.get("amount"),
                    "closedate": hs_time(o.get("close_date")),
                    "hs_is_closed": bool(o.get("is_closed")),
                    "hs_is_closed_won": bool(o.get("is_won")),
                },
                o.get("created_at"),
                o.get("created_at"),
            )
            self.associate("deals", o["opportunity_id"], "companies", o["account_id"])
        for act in rows("activities"):
            self._seed_activity(act)
        for s in sorted(rows("status_changes"), key=lambda r: r["changed_at"], reverse=True):
            key = ("companies", str(s["account_id"]))
            self.history.setdefault(key, {}).setdefault(self.status_property, []).append(
                {
                    "value": _text(s.get("status")),
                    "timestamp": hs_time(s["changed_at"]),
                    "sourceType": "CRM_UI",
                    "sourceId": f"userId:{self.user_id_of(s.get('changed_by'))}",
                    "updatedByUserId": self.user_id_of(s.get("changed_by")),
                }
            )
            if self.reason_property and _text(s.get("reason")):  # set with the status: same timestamp
                self.history[key].setdefault(self.reason_property, []).append({
                    "value": _text(s.get("reason")), "timestamp": hs_time(s["changed_at"]), "sourceType": "CRM_UI",
                    "sourceId": f"userId:{self.user_id_of(s.get('changed_by'))}",
                    "updatedByUserId": self.user_id_of(s.get("changed_by")),
                })
            company = self.objects["companies"].get(str(s["account_id"]))
            if company and company["properties"].get(self.status_property) is None:
                company["properties"][self.status_property] = _text(s.get("status"))

        self._seed_target_accounts(rows("target_accounts"))

    def _seed_target_accounts(self, periods: list[dict]) -> None:
        """The target account list as the checkbox's history: ticked at ``added_at``, unticked at
        ``removed_at`` (newest first, as HubSpot lists history), and its current value."""
        for p in periods:
            key = ("companies", str(p["account_id"]))
            history = self.history.setdefault(key, {}).setdefault(self.tal_property, [])
            for at, value in ((p.get("added_at"), "true"), (p.get("removed_at"), "false")):
                if _text(at):
                    history.append({"value": value, "timestamp": hs_time(at), "sourceType": "CRM_UI"})
            history.sort(key=lambda change: change["timestamp"], reverse=True)
            company = self.objects["companies"].get(str(p["account_id"]))
            if company is not None and history:
                company["properties"][self.tal_property] = history[0]["value"]

    def _seed_activity(self, act: dict) -> None:
        kind, when, contact = act["type"], act.get("occurred_at"), _text(act.get("contact_id"))
        if kind == "owner_assigned":  # the CRM's own owner change: an entry in hubspot_owner_id's history
            self._seed_owner_change(str(act["account_id"]), _text(act.get("owner_id")), when)
            return
        if kind in SALES_OBJECTS:
            obj, props = SALES_OBJECTS[kind]
            props = {
                **props,
                "hs_timestamp": hs_time(when),
                "hubspot_owner_id": act.get("owner_id"),
                SUBJECT[obj]: act.get("subject"),
            }
            self.insert(obj, act["activity_id"], props, when, when)
            self.associate(obj, act["activity_id"], "companies", act["account_id"])
            if contact:
                self.associate(obj, act["activity_id"], "contacts", contact)
            return
        if not contact:
            return  # anonymous visits are not contact events
        if kind in EMAIL_EVENT_TYPES:
            recipient = (self.objects["contacts"].get(contact) or {}).get("properties", {}).get("email")
            event = {
                "id": str(act["activity_id"]),
                "created": int(pd.Timestamp(when).timestamp() * 1000),
                "type": EMAIL_EVENT_TYPES[kind],
                "recipient": recipient,
                "portalId": 62515,
                "emailCampaignId": 1,
                "filteredEvent": False,
            }
            if kind == "email_click" and _text(act.get("url")):
                event["url"] = _text(act.get("url"))
            self.email_events.append(event)
            return
        event_type = self.webinar_event_type if kind == "webinar" else EVENT_TYPES[kind]
        properties = {"hs_url": _text(act.get("url"))} if kind == "web_visit" else {}
        self.events.append(
            {
                "objectType": "CONTACT",
                "objectId": contact,
                "eventType": event_type,
                "occurredAt": hs_time(when),
                "id": str(act["activity_id"]),
                "properties": properties,
            }
        )

    def _seed_owner_change(self, company_id: str, owner_id: str | None, when: Any) -> None:
        """A change of ``hubspot_owner_id`` in the company's property history (newest first)."""
        history = self.history.setdefault(("companies", company_id), {}).setdefault("hubspot_owner_id", [])
        history.append({"value": owner_id, "timestamp": hs_time(when), "sourceType": "CRM_UI"})
        history.sort(key=lambda change: change["timestamp"], reverse=True)  # the property keeps the frame's owner

    # ---- HTTP ----

    def error_body(self, status: int, message: str, category: str = "INTERNAL_ERROR") -> dict:
        return {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
        }

    def decorate(self, request: Request, response: Response) -> None:
        if request.path.endswith("/search"):
            return  # search responses carry no rate-limit headers
        response.headers.setdefault("X-HubSpot-RateLimit-Daily", str(self.daily_max))
        response.headers.setdefault(
            "X-HubSpot-RateLimit-Daily-Remaining", str(self.daily_max - self.daily_used)
        )
        response.headers.setdefault("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
        burst_max = self.burst.max_calls if self.burst else BURST_MAX
        used = len(self.burst.calls) if self.burst else 0
        response.headers.setdefault("X-HubSpot-RateLimit-Max", str(burst_max))
        response.headers.setdefault("X-HubSpot-RateLimit-Remaining", str(max(0, burst_max - used)))
        response.headers.setdefault("X-HubSpot-Correlation-Id", str(uuid.uuid4()))

    def handle(self, request: Request) -> Response:
        if request.path.rstrip("/") in OAUTH_TOKEN_PATHS and request.method == "POST":
            return self._oauth_token(request)
        if request.path.rstrip("/") == OAUTH_V1_TOKEN_PATH:
            return Response(404, self.error_body(404, OAUTH_V1_SUNSET_MESSAGE, "OBJECT_NOT_FOUND"))
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return Response(
                401, self.error_body(401, "Authentication credentials not found.", "INVALID_AUTHENTICATION")
            )
        limited = self._enforce(request)
        if limited:
            return limited
        refused = self._entitlement(request.path)
        if refused:
            return refused
        with self.lock:
            self.daily_used += 1
        path = request.path.rstrip("/")
        route = [
            (r"^/crm/v3/objects/(\w+)/search$", "POST", self._search),
            (r"^/crm/v3/objects/(\w+)/batch/read$", "POST", self._batch_read),
            (r"^/crm/v3/objects/(\w+)$", "GET", self._list),
            (r"^/crm/v4/associations/(\w+)/(\w+)/batch/read$", "POST", self._associations),
            (r"^/crm/v3/owners$", "GET", self._owners),
            (r"^/events/v3/events$", "GET", self._events),
            (r"^/email/public/v1/events$", "GET", self._email_events),
            (r"^/crm/v3/objects/(\w+)$", "POST", self._create),
            (r"^/crm/v3/objects/(\w+)/([^/]+)$", "PATCH", self._patch),
        ]
        for pattern, method, handler in route:
            match = re.match(pattern, path)
            if match and request.method == method:
                return handler(request, *match.groups())
        return Response(404, self.error_body(404, "resource not found", "OBJECT_NOT_FOUND"))

    def _entitlement(self, path: str) -> Response | None:
        """403 for an API the portal's edition or the token's scopes do not allow."""
        if path.startswith("/events/v3/events") and not self.enterprise:
            return Response(403, self.error_body(
                403, "This API requires a Marketing, Sales, Service or Content Hub Enterprise subscription.",
                "FORBIDDEN"))
        needed = next((scope for prefix, scope in SCOPE_OF.items() if path.startswith(prefix)), None)
        if needed and needed not in self.scopes:
            body = self.error_body(
                403, f"This app hasn't been granted all required scopes to make this call. Required: {needed}",
                "MISSING_SCOPES")
            body["errors"] = [{"message": "One or more of the following scopes are required.",
                               "context": {"requiredGranularScopes": [needed]}}]
            return Response(403, body)
        return None

    def _oauth_token(self, request: Request) -> Response:
        """``POST /oauth/v3/token`` (or ``/oauth/2026-03/token``): form body only; a refresh token of a known
        app → a new 30-minute access token; errors carry RFC 6749 ``error``/``error_description``."""
        if request.query or "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return Response(400, self.error_body(
                400, "parameters must be sent as form-encoded body fields, not as query parameters",
                "VALIDATION_ERROR"))
        form = {key: values[0] for key, values in parse_qs(request.body.decode()).items()}
        app = (form.get("client_id"), form.get("client_secret"))
        if form.get("grant_type") != "refresh_token" or self.oauth_apps.get(app) != form.get("refresh_token"):
            return Response(400, {"error": "invalid_grant",
                                  "error_description": "refresh token is invalid, expired or revoked",
                                  "status": "BAD_REFRESH_TOKEN",
                                  "message": "refresh token is invalid, expired or revoked",
                                  "correlationId": str(uuid.uuid4())})
        with self.lock:
            token = f"oauth-fake-{uuid.uuid4().hex[:12]}"
            self.tokens.add(token)
            self.refreshes += 1
        return Response(200, {"token_type": "bearer", "token_use": "access_token",
                              "refresh_token": form["refresh_token"], "access_token": token, "expires_in": 1800})

    def _enforce(self, request: Request) -> Response | None:
        is_search = request.path.endswith("/search")
        with self.lock:
            if is_search and self.search_rate and not self.search_rate.hit():
                self.rate_limited += 1
                return Response(
                    429,
                    {
                        "status": "error",
                        "message": "You have reached your secondly limit.",
                        "correlationId": str(uuid.uuid4()),
                        "category": "RATE_LIMITS",
                    },
                )
            if not is_search and self.burst and not self.burst.hit():
                self.rate_limited += 1
                return Response(
                    429,
                    {
                        "status": "error",
                        "errorType": "RATE_LIMIT",
                        "message": "You have reached your ten_secondly_rolling limit.",
                        "correlationId": str(uuid.uuid4()),
                        "policyName": "TEN_SECONDLY_ROLLING",
                    },
                    {
                        "X-HubSpot-RateLimit-Max": str(self.burst.max_calls),
                        "X-HubSpot-RateLimit-Remaining": "0",
                    },
                )
        return None

    @staticmethod
    def _list_param(request: Request, name: str) -> list[str]:
        return [item for value in request.query.get(name, []) for item in value.split(",") if item]

    def _view(
        self, obj: str, record: dict, properties: list[str] | None, history: list[str] | None = None
    ) -> dict:
        props = record["properties"]
        shown = {
            "createdate": props.get("createdate"),
            "hs_object_id": props.get("hs_object_id"),
            LASTMOD.get(obj, "hs_lastmodifieddate"): props.get(LASTMOD.get(obj, "hs_lastmodifieddate")),
        }
        for name in properties or []:
            shown[name] = props.get(name)
        view = {
            "id": record["id"],
            "properties": shown,
            "createdAt": record["createdAt"],
            "updatedAt": record["updatedAt"],
            "archived": record["archived"],
        }
        if record.get("archivedAt"):
            view["archivedAt"] = record["archivedAt"]
        if history:
            stored = self.history.get((obj, record["id"]), {})
            view["propertiesWithHistory"] = {name: stored.get(name, []) for name in history}
        return view

    def _list(self, request: Request, obj: str) -> Response:
        if obj not in self.objects:
            return Response(404, self.error_body(404, f"Unknown object type {obj}", "OBJECT_NOT_FOUND"))
        archived = request.query.get("archived", ["false"])[0].lower() == "true"
        limit = min(100, int(request.query.get("limit", ["10"])[0]))
        offset = int(request.query.get("after", ["0"])[0] or 0)
        with self.lock:
            records = sorted(
                (r for r in self.objects[obj].values() if r["archived"] == archived),
                key=lambda r: int(r["id"]) if r["id"].isdigit() else r["id"],
            )
        chunk = records[offset : offset + limit]
        body: dict = {"results": [self._view(obj, r, self._list_param(request, "properties")) for r in chunk]}
        if offset + limit < len(records):
            body["paging"] = {"next": {"after": str(offset + limit), "link": f"?after={offset + limit}"}}
        return Response(200, body)

    def _create(self, request: Request, obj: str) -> Response:
        """``POST /crm/v3/objects/{type}`` with properties and associations → 201 with the new object."""
        if obj not in self.objects:
            return Response(404, self.error_body(404, f"Unknown object type {obj}", "OBJECT_NOT_FOUND"))
        body = json_body(request)
        record = self.insert(obj, None, body.get("properties") or {}, self.now, self.now)
        for association in body.get("associations") or []:
            to_id = str(association["to"]["id"])
            to_type = next((t for t, objects in self.objects.items() if to_id in objects), None)
            if to_type is None:
                return Response(400, self.error_body(400, f"unknown association target {to_id}", "VALIDATION_ERROR"))
            self.associate(obj, record["id"], to_type, to_id)
        return Response(201, self._view(obj, record, list(record["properties"])))

    def _patch(self, request: Request, obj: str, object_id: str) -> Response:
        """``PATCH /crm/v3/objects/{type}/{id}`` → 200 with the updated object (404 if unknown or archived)."""
        record = self.objects.get(obj, {}).get(object_id)
        if record is None or record["archived"]:
            return Response(404, self.error_body(404, "resource not found", "OBJECT_NOT_FOUND"))
        properties = json_body(request).get("properties") or {}
        # API writes by an app: history says INTEGRATION with the app id, and no user
        self.update(obj, object_id, by={"sourceType": "INTEGRATION", "sourceId": self.app_id}, **properties)
        return Response(200, self._view(obj, record, list(properties)))

    def _search(self, request: Request, obj: str) -> Response:
        body = json_body(request)
        limit = int(body.get("limit") or 10)
        after = int(body.get("after") or 0)
        if limit > SEARCH_MAX_LIMIT:
            return Response(400, self.error_body(400, "limit must be at most 200", "VALIDATION_ERROR"))
        groups = body.get("filterGroups") or []
        counts = [len(g.get("filters", [])) for g in groups]
        if (len(groups) > SEARCH_MAX_GROUPS or any(n > SEARCH_MAX_FILTERS_PER_GROUP for n in counts)
                or sum(counts) > SEARCH_MAX_FILTERS):
            return Response(400, self.error_body(400, "too many filters or filter groups", "VALIDATION_ERROR"))
        if len(body.get("sorts") or []) > SEARCH_MAX_SORTS:
            return Response(400, self.error_body(400, "only one sort is allowed", "VALIDATION_ERROR"))
        if len(request.body) > SEARCH_MAX_QUERY_CHARS:
            return Response(400, self.error_body(400, "search query too long", "VALIDATION_ERROR"))
        if after + limit > self.search_cap:
            return Response(
                400,
                self.error_body(
                    400,
                    f"There was a problem with the request: paging past {self.search_cap} results",
                    "VALIDATION_ERROR",
                ),
            )
        indexed_by = hs_time(self.now - dt.timedelta(seconds=self.search_lag))
        with self.lock:
            records = [
                r for r in self.objects.get(obj, {}).values()
                if not r["archived"] and (not self.search_lag or r["createdAt"] <= indexed_by)
            ]
        groups = body.get("filterGroups") or [{"filters": []}]  # filters in a group: AND; groups: OR
        records = [r for r in records if any(all(_matches(r, f) for f in g.get("filters", [])) for g in groups)]
        for sort in reversed(body.get("sorts") or []):
            name = sort["propertyName"] if isinstance(sort, dict) else sort
            descending = isinstance(sort, dict) and sort.get("direction") == "DESCENDING"
            records.sort(
                key=lambda r, n=name: _sortable(r["properties"].get(n)),
                reverse=descending,
            )
        if not body.get("sorts"):
            records.sort(key=lambda r: r["createdAt"])
        visible = records[: self.search_cap]
        chunk = visible[after : after + limit]
        out: dict = {
            "total": len(records),
            "results": [self._view(obj, r, body.get("properties")) for r in chunk],
        }
        if after + limit < len(visible) or (
            after + limit == self.search_cap and len(records) > self.search_cap
        ):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return Response(200, out)

    def _batch_read(self, request: Request, obj: str) -> Response:
        body = json_body(request)
        inputs = body.get("inputs", [])
        if body.get("propertiesWithHistory") and len(inputs) > HISTORY_BATCH_MAX:
            return Response(400, self.error_body(400, HISTORY_BATCH_MESSAGE, "VALIDATION_ERROR"))
        if len(inputs) > BATCH_READ_MAX:
            return Response(
                400, self.error_body(400, f"Batch size must be at most {BATCH_READ_MAX}", "VALIDATION_ERROR")
            )
        results, missing = [], []
        id_property = body.get("idProperty")
        by_property = (
            {str(r["properties"].get(id_property) or "").lower(): r for r in self.objects.get(obj, {}).values()}
            if id_property
            else {}
        )
        for item in inputs:
            if id_property:
                record = by_property.get(str(item["id"]).lower())
            else:
                record = self.objects.get(obj, {}).get(str(item["id"]))
            if record is None or record["archived"]:
                missing.append(str(item["id"]))
            else:
                results.append(
                    self._view(obj, record, body.get("properties"), body.get("propertiesWithHistory"))
                )
        out: dict = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": hs_time(self.now),
            "completedAt": hs_time(self.now),
        }
        if missing:
            out.update(
                numErrors=1,
                errors=[
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "message": f"Could not get some {obj.upper()} objects, they may be "
                        "deleted or not exist. Check that ids are valid.",
                        "context": {"ids": missing},
                    }
                ],
            )
        return Response(207 if missing else 200, out)

    def _associations(self, request: Request, from_type: str, to_type: str) -> Response:
        body = json_body(request)
        if len(body.get("inputs", [])) > 1000:
            return Response(400, self.error_body(400, "at most 1000 inputs", "VALIDATION_ERROR"))
        type_id = ASSOCIATION_TYPE.get((from_type, to_type), 0)
        results, missing = [], []
        size = self.association_page_size
        for item in body.get("inputs", []):
            targets = self.associations.get((from_type, str(item["id"]), to_type), [])
            if not targets:
                missing.append(str(item["id"]))
                continue
            start = _association_offset(item.get("after"))
            result: dict = {
                "from": {"id": str(item["id"])},
                "to": [
                    {
                        "toObjectId": int(t) if t.isdigit() else t,
                        "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}],
                    }
                    for t in targets[start : start + size]
                ],
            }
            if start + size < len(targets):  # paging per input, present only when that input has more
                result["paging"] = {"next": {"after": _association_cursor(start + size)}}
            results.append(result)
        out: dict = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": hs_time(self.now),
            "completedAt": hs_time(self.now),
        }
        if missing:
            out.update(
                numErrors=len(missing),
                errors=[
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                        "message": f"No {to_type} is associated with {from_type} {i}.",
                        "context": {"fromObjectId": [i]},
                    }
                    for i in missing
                ],
            )
        return Response(207 if missing else 200, out)

    def _owners(self, request: Request) -> Response:
        archived = request.query.get("archived", ["false"])[0].lower() == "true"
        limit = min(500, int(request.query.get("limit", ["100"])[0]))
        offset = int(request.query.get("after", ["0"])[0] or 0)
        # Docs differ on archived=true ("only archived" vs "include inactive"); the fake includes every owner
        # with its own ``archived`` flag, so a source must read that flag, not which pass returned the owner.
        owners = [o for o in self.owners.values() if archived or not o["archived"]]
        body: dict = {"results": owners[offset : offset + limit]}
        if offset + limit < len(owners):
            body["paging"] = {"next": {"after": str(offset + limit)}}
        return Response(200, body)

    def _email_events(self, request: Request) -> Response:
        """Email events API: newest first, ``limit`` 1..1000, opaque ``offset`` token, ``hasMore``."""
        q = {key: values[0] for key, values in request.query.items()}
        limit = int(q.get("limit", "10"))
        if not 1 <= limit <= EMAIL_EVENTS_MAX:
            return Response(400, self.error_body(400, f"limit must be between 1 and {EMAIL_EVENTS_MAX}",
                                                 "VALIDATION_ERROR"))
        if q.get("eventType") and q["eventType"] not in ALL_EMAIL_EVENT_TYPES:
            return Response(400, self.error_body(400, f"unknown eventType {q['eventType']}", "VALIDATION_ERROR"))
        start, end = int(q.get("startTimestamp") or 0), int(q.get("endTimestamp") or 2**62)
        offset = int(base64.b64decode(q["offset"]).decode()) if q.get("offset") else 0
        exclude_filtered = q.get("excludeFilteredEvents", "false").lower() == "true"
        events = sorted(
            (
                e
                for e in self.email_events
                if (not q.get("eventType") or e["type"] == q["eventType"])
                and (not q.get("recipient") or e["recipient"] == q["recipient"])
                and start <= e["created"] <= end
                and not (exclude_filtered and e.get("filteredEvent"))
            ),
            key=lambda e: e["created"],
            reverse=True,
        )
        more = offset + limit < len(events)
        body = {
            "events": events[offset : offset + limit],
            "hasMore": more,
            "offset": base64.b64encode(str(offset + limit).encode()).decode() if more else None,
        }
        return Response(200, body)

    def _events(self, request: Request) -> Response:
        q = {key: values[0] for key, values in request.query.items()}
        if q.get("eventType") in ("e_opened_email", "e_clicked_email"):
            # Not event analytics types (marketing e-mail lives in the email events API); strict on purpose.
            return Response(400, self.error_body(400, f"Unknown event type {q['eventType']}", "VALIDATION_ERROR"))
        limit = min(1000, int(q.get("limit", "100")))
        offset = int(q.get("after", "0") or 0)
        after_time = parse_hs_time(q["occurredAfter"]) if q.get("occurredAfter") else None
        before_time = parse_hs_time(q["occurredBefore"]) if q.get("occurredBefore") else None
        events = [
            e
            for e in self.events
            if (not q.get("objectType") or e["objectType"].lower() == q["objectType"].lower())
            and (not q.get("eventType") or e["eventType"] == q["eventType"])
            and (not q.get("objectId") or e["objectId"] == q["objectId"])
            and (after_time is None or parse_hs_time(e["occurredAt"]) >= after_time)
            and (before_time is None or parse_hs_time(e["occurredAt"]) <= before_time)
        ]
        events.sort(key=lambda e: e["occurredAt"], reverse=True)  # newest first, as the API does by default
        body: dict = {"results": events[offset : offset + limit]}
        if offset + limit < len(events):
            body["paging"] = {"next": {"after": str(offset + limit), "link": f"?after={offset + limit}"}}
        return Response(200, body)


def _association_cursor(offset: int) -> str:
    """An opaque ``after`` token, as HubSpot's look (base64), never a bare number."""
    return base64.urlsafe_b64encode(f"assoc-{offset}".encode()).decode()


def _association_offset(after: str | None) -> int:
    return int(base64.urlsafe_b64decode(after.encode()).decode().removeprefix("assoc-")) if after else 0


def _comparable(value: str) -> Any:
    """A property value as search compares it: a datetime (ISO or epoch ms), else a number, else the text."""
    if not value.isdigit():
        try:
            return parse_hs_time(value)
        except ValueError:
            pass
    try:
        return float(value)
    except ValueError:
        return value


def _sortable(value: str | None) -> Any:
    return (0, "") if value is None else (1, _comparable(value))


def _matches(record: dict, flt: dict) -> bool:
    value = record["properties"].get(flt["propertyName"])
    operator = flt["operator"]
    if operator == "HAS_PROPERTY":
        return value is not None
    if operator == "NOT_HAS_PROPERTY":
        return value is None
    if value is None:
        return False
    left, right = _comparable(value), _comparable(str(flt.get("value")))
    if isinstance(left, dt.datetime) and isinstance(right, float):  # a datetime property, epoch-ms filter
        right = dt.datetime.fromtimestamp(right / 1000, tz=dt.UTC)
    if type(left) is not type(right):
        left, right = value, str(flt.get("value"))
    return {
        "EQ": left == right,
        "NEQ": left != right,
        "LT": left < right,
        "LTE": left <= right,
        "GT": left > right,
        "GTE": left >= right,
    }[operator]
