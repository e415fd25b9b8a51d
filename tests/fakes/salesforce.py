"""A fake Salesforce REST + Bulk 2.0 server seeded from normalized frames (wire facts: crm-apis.md part A).

Serves ``query``/``queryAll`` (with and without trailing slash) with relative
``nextRecordsUrl`` paging, ``batchSize`` from ``Sforce-Query-Options``, JSON-array
error bodies, ``Sforce-Limit-Info`` on every response, ``/limits/`` and the Bulk
2.0 query job lifecycle (UploadComplete → InProgress → JobComplete, CSV results
with ``Sforce-NumberOfRecords``/``Sforce-Locator``, 412 before completion). SOQL
support is what the source sends: a field list (parent fields like
``Contact.AccountId``), ``AND``-ed comparisons, ``ORDER BY`` and ``COUNT()``.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import itertools
import re
from typing import Any
from urllib.parse import parse_qs

import jwt
import pandas as pd
import requests
from simple_salesforce import Salesforce

from abm_sla.crm.salesforce.login import TimeoutAdapter, timeout_session
from tests.fakes import FakeServer, Request, Response, json_body

VERSION = "59.0"
FIELDS: dict[str, tuple[str, ...]] = {
    "User": (
        "Id",
        "Name",
        "Email",
        "IsActive",
        "ManagerId",
        "TimeZoneSidKey",
        "UserRoleId",
        "Country",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
    ),
    "UserRole": ("Id", "Name", "SystemModstamp"),
    "Account": (
        "Id",
        "Name",
        "Website",
        "Industry",
        "NumberOfEmployees",
        "AnnualRevenue",
        "BillingCountry",
        "OwnerId",
        "Tier__c",
        "ABM_Status__c",
        "Intent_Score__c",
        "Intent_Topic__c",
        "ABM_Target_Account__c",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "IsDeleted",
    ),
    "Contact": (
        "Id",
        "AccountId",
        "FirstName",
        "LastName",
        "Title",
        "Email",
        "OwnerId",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "IsDeleted",
    ),
    "Opportunity": (
        "Id",
        "AccountId",
        "Name",
        "StageName",
        "Amount",
        "CloseDate",
        "IsClosed",
        "IsWon",
        "OwnerId",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "IsDeleted",
    ),
    "Task": (
        "Id",
        "AccountId",
        "WhatId",
        "WhoId",
        "OwnerId",
        "Type",
        "TaskSubtype",
        "Subject",
        "Status",
        "IsClosed",
        "ActivityDate",
        "CompletedDateTime",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "IsDeleted",
        "IsArchived",
    ),
    "Event": (
        "Id",
        "AccountId",
        "WhatId",
        "WhoId",
        "OwnerId",
        "Type",
        "Subject",
        "StartDateTime",
        "EndDateTime",
        "ActivityDateTime",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "IsDeleted",
        "IsArchived",
    ),
    "Campaign": ("Id", "Name", "Type", "Status", "CreatedDate", "SystemModstamp", "IsDeleted"),
    "CampaignMember": (
        "Id",
        "CampaignId",
        "ContactId",
        "LeadId",
        "Status",
        "HasResponded",
        "FirstRespondedDate",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "IsDeleted",
    ),
    "AccountHistory": (
        "Id",
        "AccountId",
        "Field",
        "OldValue",
        "NewValue",
        "CreatedDate",
        "CreatedById",
        "IsDeleted",
    ),
}
CURRENCY_OBJECTS: dict[str, tuple[str, ...]] = {  # only in a multi-currency org
    "CurrencyType": ("Id", "IsoCode", "ConversionRate", "IsCorporate", "IsActive", "DecimalPlaces"),
    "DatedConversionRate": ("Id", "IsoCode", "ConversionRate", "StartDate", "NextStartDate"),
}
WRITE_ONLY_FIELDS = {"Task": ("Description", "Priority", "IsReminderSet", "ReminderDateTime")}
PREFIX = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "Task": "00T",
    "Event": "00U",
    "Campaign": "701",
    "CampaignMember": "00v",
    "AccountHistory": "017",
    "UserRole": "00E",
    "CurrencyType": "02c",
    "DatedConversionRate": "04w",
}
RELATION_OBJECT = {"Owner": "User", "CreatedBy": "User", "Manager": "User"}
DATETIME_FIELDS = {
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "CompletedDateTime",
    "StartDateTime",
    "EndDateTime",
    "ActivityDateTime",
}
DATE_FIELDS = {"CloseDate", "ActivityDate", "FirstRespondedDate"}
CAMPAIGNS = {  # marketing touch → (campaign type, member status)
    "webinar": ("Webinar", "Attended"),
    "email_click": ("Email", "Clicked"),
    "email_open": ("Email", "Opened"),
    "form_submit": ("Web", "Form Submitted"),
    "web_visit": ("Web", "Visited"),
}
SALES_TASKS = {
    "call": ("Call", "Call"),
    "email_sent": ("Email", "Email"),
    "linkedin_message": ("LinkedIn", "LinkedIn"),
}


def sf_time(value: Any) -> str | None:
    """A timestamp as Salesforce REST writes it: ``2026-01-05T14:03:22.000+0000``."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}+0000"


def parse_sf_time(text: str) -> dt.datetime:
    text = text.replace("Z", "+00:00")
    if text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _clean(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and pd.isna(value):
        return None
    if value is pd.NaT or (not isinstance(value, (str, bool, int, float)) and pd.isna(value)):
        return None
    return value


class HttpsToHttp(TimeoutAdapter):
    """simple-salesforce forces https; this adapter sends its requests to the plain-HTTP fake.

    With ``base`` (the fake's URL) every host goes there too, so ``https://login.salesforce.com``
    (SOAP and OAuth logins) reaches the fake like the instance does.
    """

    def __init__(self, timeout: float, base: str | None = None, **kwargs: Any) -> None:
        self.base = base
        super().__init__(timeout, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if self.base:
            host = re.match(r"^https?://([^/]+)", request.url)
            request.headers["X-Fake-Host"] = host.group(1) if host else ""  # which host the client meant
            request.url = re.sub(r"^https?://[^/]+", self.base, request.url)
        else:
            request.url = request.url.replace("https://", "http://", 1)
        return super().send(request, **kwargs)


SOAP_LOGIN_OK = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">
<soapenv:Body><loginResponse><result><metadataServerUrl>{url}/services/Soap/m/59.0/00DFAKE</metadataServerUrl>
<passwordExpired>false</passwordExpired><sandbox>false</sandbox>
<serverUrl>{url}/services/Soap/u/59.0/00DFAKE</serverUrl><sessionId>{token}</sessionId>
<userId>{user}</userId></result></loginResponse></soapenv:Body></soapenv:Envelope>"""
SOAP_LOGIN_FAULT = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" \
xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>\
<faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, password, \
security token; or user locked out.</faultstring><detail><sf:LoginFault><sf:exceptionCode>INVALID_LOGIN\
</sf:exceptionCode><sf:exceptionMessage>Invalid username, password, security token; or user locked out.\
</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"""


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class FakeSalesforce(FakeServer):
    """The fake org. ``now`` is the org clock (settable, advanced by :meth:`tick`)."""

    def __init__(
        self,
        data: dict[str, pd.DataFrame] | None = None,
        *,
        now: dt.datetime | None = None,
        page_size: int | None = None,
        status_field: str = "ABM_Status__c",
        reason_field: str | None = None,
        tal_field: str = "ABM_Target_Account__c",
        api_total: int = 100_000,
        bulk_polls: int = 1,
        custom_fields: bool = True,
        currencies: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        # the org's fields: a vanilla org (``custom_fields=False``) has none of the ``__c`` fields
        self.fields: dict[str, tuple[str, ...]] = {
            obj: tuple(f for f in names if custom_fields or not f.endswith("__c")) for obj, names in FIELDS.items()
        }
        # a multi-currency org: {ISO code: units per corporate unit}, the corporate currency first (rate 1.0)
        self.corporate = next(iter(currencies)) if currencies else None
        if currencies:
            self.fields |= CURRENCY_OBJECTS
            for obj in ("Account", "Opportunity"):
                self.fields[obj] += ("CurrencyIsoCode",)
        if custom_fields:  # the org's history-tracked custom fields, whatever they are called
            extra = [f for f in (status_field, reason_field, tal_field) if f and f not in self.fields["Account"]]
            self.fields["Account"] += tuple(extra)
        self.now = now or dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
        self.page_size = page_size
        self.status_field = status_field
        self.reason_field = reason_field  # a history-tracked Account field with sales' reason (issue 14)
        self.tal_field = tal_field  # a history-tracked Account checkbox: on the target account list (issue 15)
        self.records: dict[str, dict[str, dict]] = {name: {} for name in self.fields}
        self.api_used, self.api_total = 0, api_total
        self.request_limit_exceeded = False
        self.tokens: set[str] = set()
        self.token = self.issue_token()
        self.locators: dict[str, tuple[list[dict], int]] = {}
        self.jobs: dict[str, dict] = {}
        self.bulk_polls = bulk_polls
        self.bulk_fail = False
        # logins: username → (password, security token); "" = the org trusts this IP range
        self.logins: dict[str, tuple[str, str]] = {}
        self.refresh_tokens: dict[str, str] = {}  # refresh token → consumer key (connected app)
        self.jwt_apps: dict[str, str] = {}  # consumer key → username allowed to use JWT bearer
        self.rotate_refresh_tokens = False  # the connected app's "refresh token rotation" setting
        self.client_credentials: dict[str, str] = {}  # consumer key → secret (client credentials flow enabled)
        self.experience_sites: set[str] = set()  # Experience Cloud site URLs valid as a JWT aud
        self.token_hosts: list[str] = []  # the host each OAuth token request was addressed to
        self.expire_on: str | None = None  # a path: the sessions die just before the next request to it
        self.integration_user = "005FAKEINTEGRATN"  # the user every login acts as
        self.logins_served: list[str] = []  # "soap", "refresh_token", "jwt"
        self._ids = itertools.count(1)
        for iso, rate in (currencies or {}).items():
            self.insert("CurrencyType", {"IsoCode": iso, "ConversionRate": rate, "IsCorporate": iso == self.corporate,
                                         "IsActive": True, "DecimalPlaces": 2})
        if data:
            self.seed(data)

    # ---- auth ----

    def issue_token(self) -> str:
        """A new valid session id (what a fresh login would return)."""
        token = f"00DFAKE!session-{len(self.tokens) + 1:04d}-secret"
        self.tokens.add(token)
        self.token = token
        return token

    def expire_session(self, reissue: bool = True) -> None:
        """Every session dies (401 INVALID_SESSION_ID); ``reissue`` lets the next login get a new one."""
        with self.lock:
            self.tokens.clear()
            if reissue:
                self.issue_token()

    def expire_before(self, path: str) -> None:
        """Every session dies just before the next request to ``path`` (a new login gets a new one)."""
        self.expire_on = path

    def session(self) -> requests.Session:
        """Every host (instance and login.salesforce.com) is this fake."""
        return timeout_session(5, HttpsToHttp(5, base=self.url))

    def client(self, token: str | None = None) -> Salesforce:
        return Salesforce(
            instance_url=self.url, session_id=token or self.token, session=self.session(), version=VERSION
        )

    def factory(self):
        """A client factory that "logs in" again each call (picks up the newest session id)."""
        return lambda: self.client()

    # ---- data ----

    def new_id(self, obj: str) -> str:
        return f"{PREFIX[obj]}FAKE{next(self._ids):011d}"[:18]

    def insert(self, obj: str, record: dict) -> dict:
        """Add a record; unset fields are null, stamps default to the org clock."""
        row = dict.fromkeys(self.fields[obj])
        row.update({k: _clean(v) for k, v in record.items()})
        row["Id"] = row["Id"] or self.new_id(obj)
        if "CurrencyIsoCode" in row and row["CurrencyIsoCode"] is None:  # a record's currency: the corporate one
            row["CurrencyIsoCode"] = self.corporate
        stamp = sf_time(self.now)
        for name in ("CreatedDate", "SystemModstamp", "LastModifiedDate"):
            if name in row and row[name] is None:
                row[name] = row.get("SystemModstamp") or stamp
        for name in ("IsDeleted", "IsArchived"):
            if name in row and row[name] is None:
                row[name] = False
        with self.lock:
            self.records[obj][row["Id"]] = row
        return row

    def update(self, obj: str, record_id: str, **fields: Any) -> dict:
        """Change fields; SystemModstamp and LastModifiedDate move to the org clock. A change of the
        history-tracked target account checkbox adds its AccountHistory row (OldValue, NewValue: booleans)."""
        with self.lock:
            row = self.records[obj][record_id]
            old, old_owner = row.get(self.tal_field), row.get("OwnerId")
        if obj == "Account" and fields.get("OwnerId") and fields["OwnerId"] != old_owner:
            self.record_owner_change(record_id, old_owner, fields["OwnerId"])
        if obj == "Account" and self.tal_field in fields and bool(fields[self.tal_field]) != bool(old):
            self.insert("AccountHistory", {"AccountId": record_id, "Field": self.tal_field, "OldValue": bool(old),
                                           "NewValue": bool(fields[self.tal_field]), "CreatedDate": sf_time(self.now),
                                           "CreatedById": "005FAKEUSER00001"})
        with self.lock:
            row = self.records[obj][record_id]
            row.update(fields)
            row["SystemModstamp"] = sf_time(self.now)
            if "LastModifiedDate" in row:
                row["LastModifiedDate"] = row["SystemModstamp"]
            return row

    def record_owner_change(self, account_id: str, old: str | None, new: str, at: Any = None) -> None:
        """Two AccountHistory rows with ``Field = 'Owner'``, as for every lookup field: the users' names (what
        the UI shows) and their ids (API only)."""
        names = {key: self.records["User"].get(key or "", {}).get("Name") or key for key in (old, new)}
        stamp = sf_time(at) if at is not None else sf_time(self.now)
        for old_value, new_value in ((names[old], names[new]), (old, new)):
            self.insert("AccountHistory", {"AccountId": account_id, "Field": "Owner", "OldValue": old_value,
                                           "NewValue": new_value, "CreatedDate": stamp,
                                           "CreatedById": "005FAKEUSER00001"})

    def delete(self, obj: str, record_id: str) -> None:
        """Soft delete: to the Recycle Bin (visible to queryAll only, IsDeleted = true)."""
        self.update(obj, record_id, IsDeleted=True)

    def tick(self, seconds: float) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now

    def seed(self, data: dict[str, pd.DataFrame]) -> None:
        """Records from normalized frames (any subset of kinds)."""

        def rows(kind: str) -> list[dict]:
            frame = data.get(kind)
            return [] if frame is None else frame.to_dict(orient="records")

        roles: dict[str, str] = {}
        for u in rows("users"):
            role = _clean(u.get("role"))
            if role and role not in roles:
                roles[role] = self.insert("UserRole", {"Name": role})["Id"]
            self.insert(
                "User",
                {
                    "Id": u["user_id"],
                    "Name": u.get("name"),
                    "Email": u.get("email"),
                    "IsActive": bool(u.get("active", True)) if _clean(u.get("active")) is not None else True,
                    "ManagerId": u.get("manager_id"),
                    "TimeZoneSidKey": _clean(u.get("time_zone")) or "UTC",
                    "UserRoleId": roles.get(role),
                    "Country": u.get("country"),
                },
            )
        for a in rows("accounts"):
            stamp = sf_time(_clean(a.get("updated_at")) or _clean(a.get("created_at")) or self.now)
            self.insert(
                "Account",
                {
                    "Id": a["account_id"],
                    "Name": a.get("name"),
                    "Website": a.get("domain"),
                    "Industry": a.get("industry"),
                    "NumberOfEmployees": _int(a.get("employees")),
                    "AnnualRevenue": _clean(a.get("annual_revenue")),
                    "BillingCountry": a.get("country"),
                    "OwnerId": a.get("owner_id"),
                    "Tier__c": a.get("tier"),
                    "CreatedDate": sf_time(_clean(a.get("created_at"))) or stamp,
                    "SystemModstamp": stamp,
                },
            )
        for i in rows("intent_signals"):
            if i.get("account_id") in self.records["Account"]:
                self.records["Account"][i["account_id"]].update(
                    {"Intent_Score__c": _clean(i.get("score")), "Intent_Topic__c": i.get("topic")}
                )
        for c in rows("contacts"):
            stamp = sf_time(_clean(c.get("updated_at")) or _clean(c.get("created_at")) or self.now)
            self.insert(
                "Contact",
                {
                    "Id": c["contact_id"],
                    "AccountId": c.get("account_id"),
                    "Title": c.get("title"),
                    "Email": c.get("email"),
                    "CreatedDate": sf_time(_clean(c.get("created_at"))) or stamp,
                    "SystemModstamp": stamp,
                },
            )
        for o in rows("opportunities"):
            stamp = sf_time(_clean(o.get("created_at")) or self.now)
            close = _clean(o.get("close_date"))
            self.insert(
                "Opportunity",
                {
                    "Id": o["opportunity_id"],
                    "AccountId": o.get("account_id"),
                    "StageName": o.get("stage"),
                    "Amount": _clean(o.get("amount")),
                    "CloseDate": pd.Timestamp(close).strftime("%Y-%m-%d") if close is not None else None,
                    "IsClosed": bool(_clean(o.get("is_closed"))),
                    "IsWon": bool(_clean(o.get("is_won"))),
                    "CreatedDate": stamp,
                    "SystemModstamp": stamp,
                },
            )
        campaigns: dict[str, str] = {}
        for act in rows("activities"):
            self._seed_activity(act, campaigns)
        for s in rows("status_changes"):
            self.insert(
                "AccountHistory",
                {
                    "AccountId": s["account_id"],
                    "Field": self.status_field,
                    "NewValue": s.get("status"),
                    "CreatedDate": sf_time(s.get("changed_at")),
                    "CreatedById": s.get("changed_by"),
                },
            )
            if self.reason_field and _clean(s.get("reason")):  # saved with the status: same CreatedDate
                self.insert(
                    "AccountHistory",
                    {
                        "AccountId": s["account_id"],
                        "Field": self.reason_field,
                        "NewValue": _clean(s.get("reason")),
                        "CreatedDate": sf_time(s.get("changed_at")),
                        "CreatedById": s.get("changed_by"),
                    },
                )

        self._seed_target_accounts(rows("target_accounts"))

    def _seed_target_accounts(self, periods: list[dict]) -> None:
        """The target account list as the checkbox and its AccountHistory: ticked at ``added_at`` (a period
        without one: ticked when the account was created, which Salesforce does not record as field
        history), unticked at ``removed_at``."""
        for p in sorted(periods, key=lambda p: str(sf_time(_clean(p.get("added_at"))) or "")):
            account = self.records["Account"].get(p["account_id"])
            if account is None:
                continue
            for at, value in ((_clean(p.get("added_at")), True), (_clean(p.get("removed_at")), False)):
                if at is not None:
                    self.insert("AccountHistory", {"AccountId": p["account_id"], "Field": self.tal_field,
                                                   "OldValue": not value, "NewValue": value,
                                                   "CreatedDate": sf_time(at), "CreatedById": "005FAKEUSER00001"})
            account[self.tal_field] = _clean(p.get("removed_at")) is None

    def _seed_activity(self, act: dict, campaigns: dict[str, str]) -> None:
        kind, when = act["type"], sf_time(act.get("occurred_at"))
        who = _clean(act.get("contact_id"))
        if kind == "owner_assigned":  # the CRM's own assignment: an Owner change in the field history
            self.record_owner_change(act["account_id"], None, act["owner_id"], at=act.get("occurred_at"))
        elif kind in CAMPAIGNS:
            if not who:
                return  # an anonymous visit has no CampaignMember
            campaign_type, status = CAMPAIGNS[kind]
            if kind not in campaigns:
                campaigns[kind] = self.insert(
                    "Campaign", {"Name": f"{campaign_type} {kind}", "Type": campaign_type}
                )["Id"]
            self.insert(
                "CampaignMember",
                {
                    "Id": act["activity_id"],
                    "CampaignId": campaigns[kind],
                    "ContactId": who,
                    "Status": status,
                    "HasResponded": True,
                    "CreatedDate": when,
                    "LastModifiedDate": when,
                    "SystemModstamp": when,
                },
            )
        elif kind == "meeting":
            self.insert(
                "Event",
                {
                    "Id": act["activity_id"],
                    "AccountId": act["account_id"],
                    "WhoId": who,
                    "WhatId": act["account_id"],
                    "OwnerId": act.get("owner_id"),
                    "Type": "Meeting",
                    "Subject": act.get("subject"),
                    "StartDateTime": when,
                    "CreatedDate": when,
                    "SystemModstamp": when,
                },
            )
        else:
            task_type, subtype = SALES_TASKS[kind]
            self.insert(
                "Task",
                {
                    "Id": act["activity_id"],
                    "AccountId": act["account_id"],
                    "WhoId": who,
                    "WhatId": act["account_id"],
                    "OwnerId": act.get("owner_id"),
                    "Type": task_type,
                    "TaskSubtype": subtype,
                    "Subject": act.get("subject"),
                    "Status": "Completed",
                    "IsClosed": True,
                    "CompletedDateTime": when,
                    "CreatedDate": when,
                    "SystemModstamp": when,
                },
            )

    # ---- HTTP ----

    def error_body(self, status: int, message: str) -> Any:
        return [{"message": message, "errorCode": "UNKNOWN_EXCEPTION"}]

    def decorate(self, request: Request, response: Response) -> None:
        response.headers.setdefault("Sforce-Limit-Info", f"api-usage={self.api_used}/{self.api_total}")

    def handle(self, request: Request) -> Response:
        if self.expire_on and request.path == self.expire_on:
            self.expire_on = None
            self.expire_session(reissue=False)
        if re.match(r"^/services/Soap/u/[\d.]+$", request.path) and request.method == "POST":
            return self._soap_login(request)
        if request.path == "/services/oauth2/token" and request.method == "POST":
            return self._oauth_token(request)
        if request.path == "/services/oauth2/userinfo" and request.method == "GET":
            if request.headers.get("authorization", "")[7:] not in self.tokens:  # an expired session, too
                return Response(403, "Bad_OAuth_Token", content_type="text/plain")
            return Response(200, {"user_id": self.integration_user, "organization_id": "00DFAKE",
                                  "preferred_username": "integration@acme.io"})
        with self.lock:
            self.api_used += 1
        match = re.match(rf"^/services/data/v{re.escape(VERSION)}/(.*)$", request.path)
        if not match:
            return Response(
                404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
            )
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return Response(
                401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
            )
        if self.request_limit_exceeded:
            return Response(
                403, [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
            )
        rest = match.group(1)
        try:
            return self._route(request, rest)
        except SoqlError as error:
            return Response(400, [{"message": error.message, "errorCode": error.code}])

    def _route(self, request: Request, rest: str) -> Response:
        if rest.rstrip("/") in ("query", "queryAll") and request.method == "GET":
            query = request.query.get("q", [""])[0]
            return self._query(query, rest.startswith("queryAll"), request)
        more = re.match(r"^query(?:All)?/([^/]+)-(\d+)$", rest)
        if more and request.method == "GET":
            return self._page(more.group(1), int(more.group(2)))
        if rest.rstrip("/") == "limits":
            return Response(
                200,
                {"DailyApiRequests": {"Max": self.api_total, "Remaining": self.api_total - self.api_used}},
            )
        if rest.rstrip("/") == "jobs/query" and request.method == "POST":
            return self._create_job(json_body(request))
        job = re.match(r"^jobs/query/([^/]+)(/results)?$", rest)
        if job and request.method == "GET":
            return self._job_results(job.group(1), request) if job.group(2) else self._job_info(job.group(1))
        described = re.match(r"^sobjects/(\w+)/describe/?$", rest)
        if described and request.method == "GET":
            return self._describe(described.group(1))
        create = re.match(r"^sobjects/(\w+)/?$", rest)
        if create and request.method == "POST":
            return self._create(create.group(1), json_body(request))
        patch = re.match(r"^sobjects/(\w+)/([^/]+)$", rest)
        if patch and request.method == "PATCH":
            return self._patch(patch.group(1), patch.group(2), json_body(request))
        return Response(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])

    # ---- logins ----

    def _soap_login(self, request: Request) -> Response:
        """SOAP ``login``: the password field carries password + security token (token may be empty).
        API version 65.0 and later have no ``login()`` (SOAP API End-of-Life Policy)."""
        version = float(request.path.rsplit("/", 1)[-1])
        if version >= 65.0:
            return Response(500, SOAP_LOGIN_FAULT.replace("INVALID_LOGIN", "UNSUPPORTED_API_VERSION"),
                            content_type="text/xml;charset=UTF-8")
        text = request.body.decode()
        user = re.search(r"<n1:username>(.*?)</n1:username>", text)
        password = re.search(r"<n1:password>(.*?)</n1:password>", text)
        expected = self.logins.get(html.unescape(user.group(1))) if user else None
        if not (expected and password and html.unescape(password.group(1)) == expected[0] + expected[1]):
            return Response(500, SOAP_LOGIN_FAULT, content_type="text/xml;charset=UTF-8")
        with self.lock:
            self.logins_served.append("soap")
            token = self.issue_token()
        return Response(200, SOAP_LOGIN_OK.format(url=self.url, token=token, user=self.integration_user),
                        content_type="text/xml;charset=UTF-8")

    def _oauth_token(self, request: Request) -> Response:
        """OAuth 2.0 token endpoint: refresh token, JWT bearer and client credentials grants (form-encoded).

        Refresh token rotation: the answer carries a new refresh token and the one used is invalid from then
        on. JWT: ``aud`` must be https://login.salesforce.com, https://test.salesforce.com or an Experience
        Cloud site, never a My Domain ("audience is invalid"). Client credentials: only on a My Domain host."""
        form = {key: values[0] for key, values in parse_qs(request.body.decode()).items()}
        grant = form.get("grant_type") or ""
        host = request.headers.get("x-fake-host", "")
        with self.lock:
            self.token_hosts.append(host)
        refused = self._refuse_grant(grant, form, request, host)
        if refused:
            return Response(400, {"error": "invalid_grant", "error_description": refused})
        with self.lock:
            self.logins_served.append("jwt" if grant.endswith("jwt-bearer") else grant)
            token = self.issue_token()
            rotated = None
            if grant == "refresh_token" and self.rotate_refresh_tokens:
                client = self.refresh_tokens.pop(form["refresh_token"])
                rotated = f"rt-rotated-{len(self.tokens):04d}-secret"
                self.refresh_tokens[rotated] = client
        body = {"access_token": token, "instance_url": self.url, "token_type": "Bearer",
                "id": f"{self.url}/id/00DFAKE/{self.integration_user}",
                "issued_at": str(int(self.now.timestamp() * 1000)), "signature": "fake"}
        return Response(200, body | ({"refresh_token": rotated} if rotated else {}))

    def _refuse_grant(self, grant: str, form: dict[str, str], request: Request, host: str) -> str | None:
        """Why a token request is refused (Salesforce answers 400 ``invalid_grant``), or None."""
        if grant == "refresh_token":
            known = self.refresh_tokens.get(form.get("refresh_token", "")) == form.get("client_id")
            return None if known else "expired access/refresh token"
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            claims = jwt.decode(form.get("assertion", ""), options={"verify_signature": False})
            audiences = {"https://login.salesforce.com", "https://test.salesforce.com", *self.experience_sites}
            if claims.get("aud") not in audiences:
                return "audience is invalid"
            approved = self.jwt_apps.get(claims.get("iss")) == claims.get("sub")
            return None if approved else "invalid assertion"
        if grant == "client_credentials":
            if host.split(".")[0] in ("login", "test"):
                return "request not supported on this domain"
            basic = request.headers.get("authorization", "")
            key, _, secret = base64.b64decode(basic[6:] or b"").decode().partition(":")
            return None if key and self.client_credentials.get(key) == secret else "invalid client credentials"
        return "unsupported grant type"

    # ---- writes ----

    def _writable(self, obj: str, body: dict) -> None:
        unknown = [name for name in body if name not in self.fields[obj] + WRITE_ONLY_FIELDS.get(obj, ())]
        if unknown:
            raise SoqlError("INVALID_FIELD", f"No such column '{unknown[0]}' on sobject of type {obj}")

    def _create(self, obj: str, body: dict) -> Response:
        """``POST /sobjects/{T}/`` → 201 ``{id, success, errors}``; a Task's AccountId follows its WhatId."""
        if obj not in FIELDS:
            return Response(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
        self._writable(obj, body)
        record = {key: value for key, value in body.items() if key != "Id"}
        if obj in ("Task", "Event"):
            what = record.get("WhatId")
            record.setdefault("AccountId", what if what in self.records["Account"] else None)
            record.setdefault("IsClosed", record.get("Status") == "Completed")
        row = self.insert(obj, record)
        return Response(201, {"id": row["Id"], "success": True, "errors": []})

    def _patch(self, obj: str, record_id: str, body: dict) -> Response:
        """``PATCH /sobjects/{T}/{Id}`` → 204; a tracked status field change adds an AccountHistory row."""
        if obj not in FIELDS or record_id not in self.records[obj] or self.records[obj][record_id].get("IsDeleted"):
            return Response(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
        self._writable(obj, body)
        old = self.records[obj][record_id].get(self.status_field)
        self.update(obj, record_id, **body)
        if obj == "Account" and self.status_field in body and body[self.status_field] != old:
            self.insert(
                "AccountHistory",
                {"AccountId": record_id, "Field": self.status_field, "OldValue": old,
                 "NewValue": body[self.status_field], "CreatedDate": sf_time(self.now),
                 "CreatedById": self.integration_user},  # the API user made the change
            )
        return Response(204)

    # ---- SOQL ----

    def run_soql(self, soql: str, include_deleted: bool) -> tuple[str, list[str] | None, list[dict]]:
        """(object, fields or None for COUNT(), matching flat records sorted as asked)."""
        parsed = re.match(
            r"^\s*SELECT\s+(.+?)\s+FROM\s+(\w+)(?:\s+WHERE\s+(.+?))?(?:\s+ORDER\s+BY\s+(.+?))?"
            r"(?:\s+LIMIT\s+(\d+))?\s*$",
            soql,
            re.IGNORECASE | re.DOTALL,
        )
        if not parsed:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token in: {soql[:80]}")
        selected, obj, where, order, limit = parsed.groups()
        if obj not in self.fields:
            raise SoqlError("INVALID_TYPE", f"sObject type '{obj}' is not supported.")
        fields = None if selected.strip().upper() == "COUNT()" else [f.strip() for f in selected.split(",")]
        for name in fields or []:
            self._check_field(obj, name)
        conditions = [
            self._condition(obj, text) for text in re.split(r"\s+AND\s+", where or "", flags=re.I) if text
        ]
        with self.lock:
            rows = [dict(r) for r in self.records[obj].values()]
        rows = [
            r
            for r in rows
            if (include_deleted or not r.get("IsDeleted")) and all(test(r) for test in conditions)
        ]
        for part in reversed([p.strip() for p in (order or "").split(",") if p.strip()]):
            name, *direction = part.split()
            rows.sort(
                key=lambda r, n=name: _sort_key(n, r.get(n)),
                reverse=bool(direction and direction[0].upper() == "DESC"),
            )
        if limit:
            rows = rows[: int(limit)]
        return obj, fields, rows

    def _check_field(self, obj: str, name: str) -> None:
        if "." in name:
            relation, field = name.split(".", 1)
            target = self._target(relation)
            if relation == "Who" and field in ("Type", "Name", "Id"):
                return
            if target in FIELDS and (relation + "Id") in self.fields[obj] and field in self.fields[target]:
                return
        elif name in self.fields[obj]:
            return
        # Salesforce's message quotes the query around the column and adds advice: five lines, as an org says it
        raise SoqlError("INVALID_FIELD", f"\n{name}\n^\nERROR at Row:1:Column:8\nNo such column '{name}' on "
                        f"entity '{obj}'. If you are attempting to use a custom field, be sure to append the '__c' "
                        "after the custom field name. Please reference your WSDL or the describe call for the "
                        "appropriate names.")

    def _describe(self, obj: str) -> Response:
        """``GET sobjects/{T}/describe``: the org's fields (reference fields with their relationship name)."""
        if obj not in self.fields:
            return Response(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
        fields = [{"name": name, "type": _field_type(name), "custom": name.endswith("__c"),
                   "relationshipName": name[:-2] if _field_type(name) == "reference" else None}
                  for name in self.fields[obj]]
        return Response(200, {"name": obj, "custom": False, "queryable": True, "fields": fields})

    def _target(self, relation: str) -> str:
        return RELATION_OBJECT.get(relation, relation)

    def _condition(self, obj: str, text: str):
        listed = re.match(r"^\s*([\w.]+)\s+IN\s*\((.+)\)\s*$", text, re.IGNORECASE)
        if listed:  # ``Field IN ('a', 'b')`` (SOQL comparison operators: IN)
            name, values = listed[1], {_literal(v.strip()) for v in listed[2].split(",")}
            self._check_field(obj, name)
            return lambda row: row.get(name) in values
        cond = re.match(r"^\s*([\w.]+)\s*(>=|<=|!=|=|>|<)\s*(.+?)\s*$", text)
        if not cond:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: {text}")
        name, op, raw = cond.groups()
        self._check_field(obj, name)
        value = _literal(raw)
        ops = {
            ">=": lambda a, b: a >= b,
            "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b,
            "<": lambda a, b: a < b,
            "=": lambda a, b: a == b,
            "!=": lambda a, b: a != b,
        }

        def test(row: dict) -> bool:
            current = row.get(name)
            if isinstance(value, dt.datetime):
                current = parse_sf_time(current) if current else None
            if current is None or value is None:
                return (op == "=" and current is None and value is None) or (op == "!=" and current != value)
            return ops[op](current, value)

        return test

    def _value(self, row: dict, name: str) -> Any:
        if "." not in name:
            return row.get(name)
        relation, field = name.split(".", 1)
        related_id = row.get(relation + "Id")
        if relation == "Who":
            if related_id in self.records["Contact"]:
                return "Contact" if field == "Type" else related_id
            return "Lead" if related_id and field == "Type" else None
        related = self.records.get(self._target(relation), {}).get(related_id)
        return related.get(field) if related else None

    def _json_record(self, obj: str, row: dict, fields: list[str]) -> dict:
        out: dict = {
            "attributes": {"type": obj, "url": f"/services/data/v{VERSION}/sobjects/{obj}/{row['Id']}"}
        }
        for name in fields:
            if "." not in name:
                out[name] = row.get(name)
                continue
            relation, field = name.split(".", 1)
            related_id = row.get(relation + "Id")
            if not related_id:
                out[relation] = None
                continue
            target = "Name" if relation == "Who" else self._target(relation)
            nested = out.get(relation) or {
                "attributes": {
                    "type": target,
                    "url": f"/services/data/v{VERSION}/sobjects/{target}/{related_id}",
                }
            }
            nested[field] = self._value(row, name)
            out[relation] = nested
        return out

    def _query(self, soql: str, include_deleted: bool, request: Request) -> Response:
        obj, fields, rows = self.run_soql(soql, include_deleted)
        if fields is None:
            return Response(200, {"totalSize": len(rows), "done": True, "records": []})
        records = [self._json_record(obj, row, fields) for row in rows]
        batch = self.page_size or _batch_size(request.headers.get("sforce-query-options"))
        locator = f"01gFAKE{next(self._ids):08d}"
        with self.lock:
            self.locators[locator] = (records, batch)
        return self._page(locator, 0)

    def _page(self, locator: str, offset: int) -> Response:
        if locator not in self.locators:
            return Response(400, [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}])
        records, batch = self.locators[locator]
        chunk = records[offset : offset + batch]
        body: dict = {"totalSize": len(records), "done": offset + batch >= len(records), "records": chunk}
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/v{VERSION}/query/{locator}-{offset + batch}"
        return Response(200, body)

    # ---- Bulk 2.0 ----

    def _create_job(self, body: dict) -> Response:
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            return Response(400, [{"errorCode": "INVALIDJOB", "message": f"bad operation {operation}"}])
        obj, fields, rows = self.run_soql(body.get("query", ""), operation == "queryAll")
        if fields is None:
            raise SoqlError("FeatureNotEnabled", "Aggregate queries are not supported by Bulk API 2.0")
        job_id = f"750FAKE{next(self._ids):08d}"
        csv_rows = [[_csv_value(self._value(row, name)) for name in fields] for row in rows]
        job = {
            "id": job_id,
            "operation": operation,
            "object": obj,
            "createdById": "005FAKE",
            "createdDate": sf_time(self.now),
            "systemModstamp": sf_time(self.now),
            "state": "UploadComplete",
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(VERSION),
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
        }
        with self.lock:
            self.jobs[job_id] = {"info": job, "polls": 0, "header": fields, "rows": csv_rows}
        return Response(200, job)

    def _job_info(self, job_id: str) -> Response:
        job = self.jobs.get(job_id)
        if not job:
            return Response(
                404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
            )
        job["polls"] += 1
        info = job["info"]
        if self.bulk_fail:
            info.update(state="Failed", errorMessage="InvalidBatch : fake failure")
        elif job["polls"] > self.bulk_polls:
            info.update(state="JobComplete", numberRecordsProcessed=len(job["rows"]))
        else:
            info.update(state="InProgress")
        return Response(200, {**info, "jobType": "V2Query", "retries": 0, "totalProcessingTime": 10})

    def _job_results(self, job_id: str, request: Request) -> Response:
        job = self.jobs.get(job_id)
        if not job:
            return Response(
                404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
            )
        if job["info"]["state"] != "JobComplete":
            return Response(412, [{"errorCode": "JOB_NOT_COMPLETE", "message": "job is not complete"}])
        size = int(request.query.get("maxRecords", ["50000"])[0])
        locator = request.query.get("locator", [""])[0]
        offset = int(base64.b64decode(locator).decode()) if locator else 0
        chunk = job["rows"][offset : offset + size]
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(job["header"])
        writer.writerows(chunk)
        next_offset = offset + size
        next_locator = (
            base64.b64encode(str(next_offset).encode()).decode() if next_offset < len(job["rows"]) else "null"
        )
        return Response(
            200,
            out.getvalue(),
            {"Sforce-NumberOfRecords": str(len(chunk)), "Sforce-Locator": next_locator},
            content_type="text/csv",
        )


def _field_type(name: str) -> str:
    """A describe ``type`` good enough for the source: ids, references, stamps, the rest strings."""
    if name == "Id":
        return "id"
    if name.endswith("Id") and name != "Id":
        return "reference"
    return "datetime" if name in DATETIME_FIELDS else "date" if name in DATE_FIELDS else "string"


def _int(value: Any) -> int | None:
    value = _clean(value)
    return None if value is None else int(value)


def _batch_size(header: str | None) -> int:
    match = re.search(r"batchSize=(\d+)", header or "")
    return min(2000, max(200, int(match.group(1)))) if match else 2000


def _literal(raw: str) -> Any:
    if raw.startswith("'") and raw.endswith("'"):
        return raw[1:-1].replace("\\'", "'")
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if re.match(r"^\d{4}-\d{2}-\d{2}T", raw):
        return parse_sf_time(raw)
    try:
        return float(raw)
    except ValueError:
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: {raw}") from None


def _sort_key(name: str, value: Any) -> tuple:
    if value is None:
        return (0, "")
    if name in DATETIME_FIELDS:
        return (1, parse_sf_time(value))
    return (1, value)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
