"""The Salesforce source on simple-salesforce: incremental pages of normalized frames.

Each object is read with ``queryAll`` (so soft-deleted rows arrive with
``IsDeleted = true`` and become deletes) as
``WHERE SystemModstamp >= <cursor - overlap> AND SystemModstamp <= <sync start>
ORDER BY SystemModstamp, Id``, paging through ``nextRecordsUrl``. Every REST page
becomes one :class:`Page` whose cursor is the page's largest SystemModstamp, so
the watermark never passes the sync's start and a sync stopped after any page
resumes there (the overlap re-reads a few rows; the warehouse merges by id).
Objects whose change count is above ``bulk_threshold`` are read with Bulk API 2.0
(unordered, so only its last page carries the cursor).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import requests
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import Operation
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceOperationError,
    SalesforceRefusedRequest,
)

from abm_sla.crm.base import CursorStore, Page, Quarantined
from abm_sla.crm.files import normalize_domain
from abm_sla.crm.limits import Retry, RetryPolicy, call_with_retry, redact
from abm_sla.crm.mapping import (
    SalesforceConfig,
    TierMapper,
    conform,
    list_periods,
    stable_id,
    to_bool,
    to_float,
)
from abm_sla.crm.reconcile import IdScan, Reconciling, marketing_types, sales_types
from abm_sla.crm.tokens import TokenStore, open_token_store
from abm_sla.errors import SourceError

log = logging.getLogger(__name__)
#: Account ids per AccountHistory query of the target account list field: 200 quoted 18-character ids keep the
#: SOQL text (a GET query string) near 5,000 characters, far under the 100,000 characters SOQL allows.
TAL_HISTORY_BATCH = 200
ClientFactory = Callable[[], Salesforce]


# -- HTTP session ------------------------------------------------------------------------------------


class TimeoutAdapter(requests.adapters.HTTPAdapter):
    """Gives every request a timeout (simple-salesforce sets none, bulk calls take no kwargs)."""

    def __init__(self, timeout: float, **kwargs: Any) -> None:
        self.timeout = timeout
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def timeout_session(timeout: float, adapter: requests.adapters.HTTPAdapter | None = None) -> requests.Session:
    """A requests session whose every call times out after ``timeout`` seconds."""
    session = requests.Session()
    mounted = adapter or TimeoutAdapter(timeout)
    session.mount("https://", mounted)
    session.mount("http://", mounted)
    return session


LOGIN_HINT = (
    "set a refresh token with a connected app (SF_REFRESH_TOKEN, SF_CONSUMER_KEY, SF_CONSUMER_SECRET), a JWT "
    "bearer key (SF_USERNAME, SF_CONSUMER_KEY, SF_PRIVATE_KEY_FILE or SF_PRIVATE_KEY), client credentials "
    "(SF_CONSUMER_KEY, SF_CONSUMER_SECRET and SF_DOMAIN set to your My Domain, e.g. acme.my) or an access token "
    "and instance URL (SF_ACCESS_TOKEN, SF_INSTANCE_URL); a username and password with SF_SECURITY_TOKEN "
    "(empty when your IP range is trusted) still works until Salesforce retires the login"
)
#: SOAP ``login()`` (simple-salesforce's username + password + security token login): Salesforce retires it in
#: Summer '27 and API version 65.0 and later no longer offer it (SOAP API Developer Guide, End-of-Life Policy).
SOAP_LOGIN_RETIREMENT = "Salesforce retires SOAP login() in Summer '27 and refuses it from API version 65.0"
SOAP_LOGIN_LAST_VERSION = 64.0
#: The OAuth username-password flow (username + password + connected app): retired on 2027-02-20 (Salesforce
#: Help 005461976, "Migrate from OAuth Username-Password to Client Credentials Flow").
OAUTH_PASSWORD_RETIREMENT = "Salesforce retires the OAuth username-password flow on 2027-02-20"
PASSWORD_ADVICE = "move to a refresh token, a JWT bearer key or client credentials (docs/crm/salesforce-hubspot.md)"


def is_my_domain(domain: str | None) -> bool:
    """``acme.my`` / ``acme--uat.sandbox.my`` (a My Domain), not the shared ``login`` / ``test`` hosts."""
    return bool(domain) and domain not in ("login", "test")


def jwt_audience(domain: str | None, configured: str | None = None) -> str:
    """The JWT bearer assertion's ``aud`` host: ``login`` or ``test`` (a sandbox), never the My Domain
    (Salesforce Help, "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration": aud is
    https://login.salesforce.com, https://test.salesforce.com or an Experience Cloud site URL)."""
    if configured:
        return configured
    return "test" if domain == "test" or "sandbox" in str(domain or "").split(".") else "login"


def login_kwargs(
    creds: dict[str, str], empty: set[str], audience: str | None = None
) -> list[tuple[str, dict[str, str]]]:
    """Every way to log in the credentials allow, best first, as ``(mode, Salesforce kwargs)``.

    A refresh token (OAuth 2.0 refresh token flow), a JWT bearer key and client credentials get a new
    token on every login; a static access token cannot, so after it expired the next login uses the
    others. JWT with a My Domain: ``aud`` stays login/test and the token request goes to the My Domain
    (simple-salesforce: ``domain`` makes the audience, ``instance_url`` the token host). Client
    credentials need a My Domain (simple-salesforce refuses ``login``/``test`` for them) and are used
    only without a username (with one, the username flows are what the app was set up for).
    ``security_token`` set but empty is kept (orgs that trust the caller's IP range need none).
    """
    has = lambda *names: all(name in creds for name in names)  # noqa: E731
    my_domain = creds.get("domain") if is_my_domain(creds.get("domain")) else None
    domain = {"domain": creds["domain"]} if "domain" in creds else {}
    modes: list[tuple[str, dict[str, str]]] = []
    if has("refresh_token", "consumer_key"):
        modes.append(("refresh_token", {k: creds[k] for k in ("refresh_token", "consumer_key", "consumer_secret")
                                         if k in creds} | domain))
    key = "privatekey_file" if "privatekey_file" in creds else "privatekey"
    if has("username", "consumer_key", key):
        token_host = {"instance_url": my_domain} if my_domain else {}
        modes.append(("jwt", {k: creds[k] for k in ("username", "consumer_key", key)}
                      | {"domain": jwt_audience(creds.get("domain"), audience)} | token_host))
    if has("consumer_key", "consumer_secret") and my_domain and "username" not in creds:
        modes.append(("client_credentials", {"consumer_key": creds["consumer_key"],
                                             "consumer_secret": creds["consumer_secret"], "domain": my_domain}))
    if has("session_id", "instance_url"):
        modes.append(("token", {"session_id": creds["session_id"], "instance_url": creds["instance_url"]}))
    if has("username", "password") and ("security_token" in creds or "security_token" in empty):
        token = creds.get("security_token", "")
        modes.append(("password", {"username": creds["username"], "password": creds["password"],
                                   "security_token": token} | domain))
    elif has("username", "password", "consumer_key", "consumer_secret"):
        modes.append(("oauth_password", {k: creds[k] for k in ("username", "password", "consumer_key",
                                                               "consumer_secret")} | domain))
    return modes


@dataclass(frozen=True)
class TokenGrant:
    """A token endpoint's answer: the session, its instance, and a new refresh token when rotation is on."""

    access_token: str
    instance_url: str
    refresh_token: str | None = None


def refresh_token_login(session: requests.Session, kwargs: dict[str, str]) -> TokenGrant:
    """OAuth 2.0 refresh token flow: ``POST https://{domain}.salesforce.com/services/oauth2/token``.

    Answers ``{"access_token", "instance_url", …}`` and, with refresh token rotation on, a new
    ``refresh_token`` (the one sent is invalid from then on) (Salesforce Help, "OAuth 2.0 Refresh Token
    Flow for Renewed Sessions"); a 400 ``{"error": "invalid_grant", …}`` means the refresh token was
    revoked, expired or, with rotation, already used.
    """
    domain = kwargs.get("domain", "login")
    data = {"grant_type": "refresh_token", "refresh_token": kwargs["refresh_token"],
            "client_id": kwargs["consumer_key"]}
    if kwargs.get("consumer_secret"):
        data["client_secret"] = kwargs["consumer_secret"]
    response = session.post(f"https://{domain}.salesforce.com/services/oauth2/token", data=data)
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or "access_token" not in body:
        code = body.get("error") or f"HTTP {response.status_code}"
        raise SalesforceAuthenticationFailed(code, body.get("error_description") or "token refresh refused")
    return TokenGrant(body["access_token"], body["instance_url"], body.get("refresh_token"))


class RefreshTokens:
    """The refresh token to use next: the store's (a rotated one from an earlier run), else the configured
    one; a rotated token replaces it in memory and, with a store, in the store (never in a log)."""

    def __init__(self, store: TokenStore | None) -> None:
        self.store = store
        self.current: str | None = None
        self.warned = False

    def pick(self, configured: str | None) -> str | None:
        if self.current is None and self.store is not None:
            self.current = self.store.load()
        return self.current or configured

    def accepted(self, used: str, new: str | None) -> None:
        """Salesforce took ``used`` and answered ``new`` (rotation) or nothing: the token to use next is kept
        (the store is seeded with the first accepted token, and replaced on every rotation)."""
        token = new or used
        if token == self.current:
            return
        self.current = token
        if self.store is not None:
            self.store.save(token)
        elif new and new != used and not self.warned:
            self.warned = True
            log.warning("Salesforce rotated the refresh token (refresh token rotation is on) and no "
                        "sources.salesforce.token_store is set: the next run's SF_REFRESH_TOKEN is no longer "
                        "valid (invalid_grant); set token_store (kind file or prefect-secret)")

    def secrets(self) -> list[str]:
        return [self.current] if self.current else []


def _login_failure(mode: str, error: SalesforceAuthenticationFailed) -> str:
    code = str(getattr(error, "code", "") or "login refused")
    if mode == "refresh_token" and code == "invalid_grant":
        return (f"Salesforce login ({mode}) failed: {code}: the refresh token is revoked, expired or already "
                "used (with refresh token rotation on, keep the newest one with sources.salesforce.token_store)")
    return f"Salesforce login ({mode}) failed: {code}"


def client_factory(config: SalesforceConfig, session: requests.Session | None = None) -> ClientFactory:
    """Builds a client from the credentials the config names; called again to log in anew.

    The first call uses the best way the credentials allow (:func:`login_kwargs`); each further call
    (after a session expired) moves past a static access token that was already used, so a refresh
    token, JWT key, client credentials or password gets a fresh session instead of re-reading the
    expired token. A refresh token rotated by Salesforce is kept in ``token_store``. A password login
    logs its retirement date once.
    """
    used_tokens: set[str] = set()
    refresh = RefreshTokens(open_token_store(config.token_store))
    warned: set[str] = set()

    def make() -> Salesforce:
        creds = config.credentials.resolve()
        configured = creds.get("refresh_token")
        chosen = refresh.pick(configured)
        if chosen:
            creds["refresh_token"] = chosen
        secrets = [*config.credentials.secrets(), *refresh.secrets()]
        modes = login_kwargs(creds, config.credentials.set_empty(), config.jwt_audience)
        if not modes:
            raise SourceError(_no_login_message(config, creds))
        fresh = [mode for mode in modes if mode[0] != "token" or mode[1]["session_id"] not in used_tokens]
        mode, kwargs = (fresh or modes)[0]
        _check_password_login(mode, config, warned)
        http = session or timeout_session(config.retry.timeout)
        try:
            if mode == "refresh_token":
                kwargs, grant = _refresh(http, kwargs, configured)
                refresh.accepted(kwargs["refresh_token"], grant.refresh_token)
                kwargs = {"session_id": grant.access_token, "instance_url": grant.instance_url}
            elif mode == "token":
                used_tokens.add(kwargs["session_id"])
            return Salesforce(version=config.version, session=http, **kwargs)
        except SalesforceAuthenticationFailed as error:
            raise SourceError(redact(_login_failure(mode, error), [*secrets, *refresh.secrets()])) from None
        except requests.RequestException as error:
            raise SourceError(f"Salesforce is unreachable: {type(error).__name__}") from None

    return make


def _refresh(
    http: requests.Session, kwargs: dict[str, str], configured: str | None
) -> tuple[dict[str, str], TokenGrant]:
    """The refresh token flow with the token picked; when Salesforce refuses a stored token and the configured
    one differs (re-authorized since), the configured one is tried once."""
    try:
        return kwargs, refresh_token_login(http, kwargs)
    except SalesforceAuthenticationFailed as error:
        if getattr(error, "code", "") != "invalid_grant" or not configured or configured == kwargs["refresh_token"]:
            raise
    log.warning("Salesforce refused the stored refresh token; trying the configured one (SF_REFRESH_TOKEN)")
    kwargs = kwargs | {"refresh_token": configured}
    return kwargs, refresh_token_login(http, kwargs)


def _no_login_message(config: SalesforceConfig, creds: dict[str, str]) -> str:
    if {"username", "password"} <= creds.keys():
        return ("Salesforce username and password need a security token: set SF_SECURITY_TOKEN (to an empty "
                "value when your org trusts this IP range) or SF_CONSUMER_KEY and SF_CONSUMER_SECRET")
    if {"consumer_key", "consumer_secret"} <= creds.keys() and "username" not in creds:
        return ("Salesforce client credentials need SF_DOMAIN set to your My Domain (e.g. acme.my or "
                "acme--uat.sandbox.my): login.salesforce.com and test.salesforce.com do not serve that flow")
    names = ", ".join(sorted(config.credentials.env.values()))
    return f"no Salesforce credentials: {LOGIN_HINT} (variables: {names})"


def _check_password_login(mode: str, config: SalesforceConfig, warned: set[str]) -> None:
    """A password login is retired: refused (one line) on API versions without SOAP login(), else a warning
    with the date, once per factory."""
    if mode == "password" and float(config.version) > SOAP_LOGIN_LAST_VERSION:
        raise SourceError(f"Salesforce password login is not available on API version {config.version}: "
                          f"{SOAP_LOGIN_RETIREMENT}; {PASSWORD_ADVICE}")
    if mode in ("password", "oauth_password") and mode not in warned:
        warned.add(mode)
        retirement = SOAP_LOGIN_RETIREMENT if mode == "password" else OAUTH_PASSWORD_RETIREMENT
        log.warning("Salesforce: logging in with a username and password; %s: %s", retirement, PASSWORD_ADVICE)


# -- objects -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectSpec:
    """One Salesforce object: its fields, its cursor field and the kind it becomes."""

    name: str
    kind: str
    fields: tuple[str, ...]
    cursor_field: str = "SystemModstamp"
    where: str | None = None
    deletable: bool = True
    sobject: str | None = None  # the object queried when ``name`` is a view of another (AccountOwnerHistory)

    @property
    def table(self) -> str:
        return self.sobject or self.name


def object_specs(config: SalesforceConfig, multi_currency: bool = False) -> list[ObjectSpec]:
    """The configured objects, in load order, with the fields the mapping needs (``CurrencyIsoCode`` of
    accounts and opportunities in a multi-currency org)."""
    optional = lambda *names: tuple(name for name in names if name)  # noqa: E731
    currency = ("CurrencyIsoCode",) if multi_currency else ()
    specs = {
        "User": ObjectSpec(
            "User",
            "users",
            (
                "Id",
                "Name",
                "Email",
                "IsActive",
                "ManagerId",
                "TimeZoneSidKey",
                *optional(config.user_role_field, config.user_country_field),
                "SystemModstamp",
            ),
            deletable=False,
        ),
        "Account": ObjectSpec(
            "Account",
            "accounts",
            (
                "Id",
                "Name",
                "Website",
                "Industry",
                "NumberOfEmployees",
                "AnnualRevenue",
                config.country_field,
                "OwnerId",
                *optional(config.tier_field, config.intent_score_field, config.intent_topic_field,
                          config.tal_field),
                *currency,
                "CreatedDate",
                "SystemModstamp",
                "IsDeleted",
            ),
        ),
        "Contact": ObjectSpec(
            "Contact",
            "contacts",
            ("Id", "AccountId", "Title", "Email", "CreatedDate", "SystemModstamp", "IsDeleted"),
        ),
        "Opportunity": ObjectSpec(
            "Opportunity",
            "opportunities",
            (
                "Id",
                "AccountId",
                "StageName",
                "Amount",
                *currency,
                "CreatedDate",
                "CloseDate",
                "IsClosed",
                "IsWon",
                "SystemModstamp",
                "IsDeleted",
            ),
        ),
        "Task": ObjectSpec(
            "Task",
            "activities",
            (
                "Id",
                "AccountId",
                "WhoId",
                "Who.Type",
                "OwnerId",
                "Type",
                "TaskSubtype",
                "Subject",
                "IsClosed",
                "CompletedDateTime",
                "CreatedDate",
                "SystemModstamp",
                "IsDeleted",
            ),
        ),
        "Event": ObjectSpec(
            "Event",
            "activities",
            (
                "Id",
                "AccountId",
                "WhoId",
                "Who.Type",
                "OwnerId",
                "Type",
                "Subject",
                "StartDateTime",
                "CreatedDate",
                "SystemModstamp",
                "IsDeleted",
            ),
        ),
        "CampaignMember": ObjectSpec(
            "CampaignMember",
            "activities",
            (
                "Id",
                "ContactId",
                "Contact.AccountId",
                "Campaign.Type",
                "Status",
                "LastModifiedDate",
                "SystemModstamp",
                "IsDeleted",
            ),
        ),
    }
    if config.status_field:
        specs["AccountHistory"] = ObjectSpec(
            "AccountHistory",
            "status_changes",
            ("Id", "AccountId", "Field", "NewValue", "CreatedDate", "CreatedById", "IsDeleted"),
            cursor_field="CreatedDate",
            where=(f"Field IN ('{config.status_field}', '{config.reason_field}')" if config.reason_field
                   else f"Field = '{config.status_field}'"),
        )
    specs["AccountOwnerHistory"] = ObjectSpec(  # owner changes: the CRM's own assignment (owner_assigned)
        "AccountOwnerHistory",
        "activities",
        ("Id", "AccountId", "Field", "NewValue", "CreatedDate", "CreatedById", "IsDeleted"),
        cursor_field="CreatedDate",
        where="Field = 'Owner'",
        deletable=False,
        sobject="AccountHistory",
    )
    return [specs[name] for name in config.objects if name in specs]


#: Field history retention (Salesforce: 18 months in the org, up to 24 months through the API, longer only with
#: Field Audit Trail), said in the run summary of a first sync of the status or owner history.
HISTORY_RETENTION = ("Salesforce keeps field history 18 months in the org and up to 24 months through the API "
                     "(longer only with Field Audit Trail): this first sync's status and owner changes start at "
                     "most 24 months back")
#: Config keys naming a field of the org, with the object that has it (checked against ``describe()``).
CONFIGURED_FIELDS = (
    ("tier_field", "Account"),
    ("status_field", "Account"),
    ("reason_field", "Account"),
    ("tal_field", "Account"),
    ("intent_score_field", "Account"),
    ("intent_topic_field", "Account"),
    ("country_field", "Account"),
    ("user_role_field", "User"),
    ("user_country_field", "User"),
)
MISSING_EFFECT = {
    "tier_field": "accounts sync without a tier",
    "status_field": "status changes are not read",
    "reason_field": "status changes sync without reasons",
    "tal_field": "no target account list is read",
    "intent_score_field": "no CRM intent is read",
    "intent_topic_field": "intent uses the configured intent_topic",
    "country_field": "accounts sync without a country",
    "user_role_field": "users sync without a role",
    "user_country_field": "users sync without a country",
}


# -- time ------------------------------------------------------------------------------------------------


def parse_time(value: str | None) -> dt.datetime | None:
    """``2026-01-05T14:03:22.000+0000`` / ``…Z`` / date-only → aware UTC datetime."""
    if not value:
        return None
    text = str(value).strip().replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def soql_time(value: dt.datetime) -> str:
    """An unquoted SOQL datetime literal (second precision, UTC)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cursor_text(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_soql(
    spec: ObjectSpec, lower: dt.datetime | None, upper: dt.datetime, order: bool = True, count: bool = False
) -> str:
    """``SELECT … WHERE <cursor> >= lower AND <cursor> <= upper [AND …] ORDER BY <cursor>, Id``."""
    conditions = [f"{spec.cursor_field} >= {soql_time(lower)}"] if lower else []
    conditions.append(f"{spec.cursor_field} <= {soql_time(upper)}")
    if spec.where:
        conditions.append(spec.where)
    selected = "COUNT()" if count else ", ".join(spec.fields)
    soql = f"SELECT {selected} FROM {spec.table} WHERE {' AND '.join(conditions)}"
    return soql + (f" ORDER BY {spec.cursor_field}, Id" if order and not count else "")


# -- records → frames ---------------------------------------------------------------------------------


def flatten(record: dict, prefix: str = "") -> dict:
    """A REST record without ``attributes``; parent lookups become ``Parent.Field`` keys."""
    flat: dict = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, dict):
            if "records" not in value:
                flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def parse_csv(text: str) -> list[dict]:
    """Bulk 2.0 CSV results as flat records (empty cell = missing)."""
    reader = csv.DictReader(io.StringIO(text))
    return [{key: (value if value != "" else None) for key, value in row.items()} for row in reader]


@dataclass
class CurrencyRates:
    """A multi-currency org's conversion rates to its corporate currency (``CurrencyType``: units of a
    currency per corporate unit) and, with advanced currency management, dated rates (``DatedConversionRate``,
    ``StartDate`` ≤ day < ``NextStartDate``), which Salesforce applies to opportunities by ``CloseDate``."""

    corporate: str
    rates: dict[str, float]
    dated: dict[str, list[tuple[str, str, float]]] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)

    def convert(self, amount: float | None, iso: str | None, on: str | None = None) -> float | None:
        """``amount`` in ``iso`` as corporate currency (dated rate of day ``on`` when there is one)."""
        if amount is None or not iso or iso == self.corporate:
            return amount
        day = str(on or "")[:10]
        rate = next((r for start, end, r in self.dated.get(iso, []) if day and start <= day < end), None)
        rate = rate or self.rates.get(iso)
        if not rate:
            self.unknown.add(iso)
            return None
        return amount / rate

    def summary(self) -> str:
        how = "opportunities at the dated rate of their close date, " if self.dated else ""
        return (f"Salesforce amounts (opportunity Amount, account AnnualRevenue) are in {self.corporate}, the org's "
                f"corporate currency: converted from {len(self.rates)} currencies, {how}others at the current "
                "rates (CurrencyType)")


class RecordMapper:
    """Maps flat Salesforce records of one object to a :class:`Page` (rows, deletes, quarantine)."""

    def __init__(self, config: SalesforceConfig, source: str) -> None:
        self.config, self.source = config, source
        self.roles = {key.lower(): value for key, value in config.role_map.items()}
        self.statuses = {key.lower(): value for key, value in config.status_map.items()}
        self.tiers = TierMapper(config.tier_map)
        self.campaign_kinds = sorted({rule.touch for rule in config.campaign_touches})
        self.integration_users: set[str] = set(config.integration_user_ids)
        self.currency: CurrencyRates | None = None  # set in a multi-currency org

    def pages(self, spec: ObjectSpec, records: list[dict], cursor: str | None) -> list[Page]:
        """One page (two for Account when an intent field is mapped; the cursor rides on the last)."""
        live = [r for r in records if not (spec.deletable and to_bool(r.get("IsDeleted")))]
        deleted = [r["Id"] for r in records if spec.deletable and to_bool(r.get("IsDeleted"))]
        page = Page(self.source, spec.name, spec.kind, conform(spec.kind, []), deleted_ids=deleted)
        getattr(self, f"_map_{spec.name.lower()}")(live, page)
        pages = [page]
        if spec.name == "Account" and self.config.intent_score_field:
            pages.append(self._intent_page(live))
        pages[-1].cursor = cursor
        return pages

    def _money(self, value: object, record: dict, on: str | None = None) -> float | None:
        """A currency field in the corporate currency (as it is in a single-currency org)."""
        amount = to_float(value)
        return self.currency.convert(amount, record.get("CurrencyIsoCode"), on) if self.currency else amount

    def _set(self, page: Page, rows: list[dict], raws: list[dict]) -> None:
        page.rows = conform(page.kind, rows, raws)

    def _quarantine(self, page: Page, record: dict, reason: str) -> None:
        page.quarantined.append(Quarantined(page.object_name, str(record.get("Id")), reason, record))

    def _map_user(self, records: list[dict], page: Page) -> None:
        rows = []
        for r in records:
            role = r.get(self.config.user_role_field or "")
            rows.append(
                {
                    "user_id": r["Id"],
                    "name": r.get("Name"),
                    "email": r.get("Email"),
                    "role": self.roles.get(str(role).lower(), role) if role else None,
                    "manager_id": r.get("ManagerId"),
                    "time_zone": r.get("TimeZoneSidKey") or "UTC",
                    "country": r.get(self.config.user_country_field or ""),
                    "active": to_bool(r.get("IsActive")) is not False,
                }
            )
        self._set(page, rows, records)

    def _map_account(self, records: list[dict], page: Page) -> None:
        domains = normalize_domain(pd.Series([r.get("Website") for r in records], dtype="object"))
        field = self.config.tier_field
        tiers = self.tiers.map(pd.Series([r.get(field) if field else None for r in records], dtype="object"))
        rows = [
            {
                "account_id": r["Id"],
                "name": r.get("Name"),
                "domain": domain,
                "industry": r.get("Industry"),
                "employees": to_float(r.get("NumberOfEmployees")),
                "annual_revenue": self._money(r.get("AnnualRevenue"), r),
                "country": r.get(self.config.country_field),
                "owner_id": r.get("OwnerId"),
                "tier": tier,
                "created_at": r.get("CreatedDate"),
                "updated_at": r.get("SystemModstamp"),
            }
            for r, domain, tier in zip(records, domains, tiers, strict=True)
        ]
        self._set(page, rows, records)

    def _intent_page(self, records: list[dict]) -> Page:
        page = Page(self.source, "Account", "intent_signals", conform("intent_signals", []))
        rows, raws = [], []
        for r in records:
            score = to_float(r.get(self.config.intent_score_field))
            if score is None:
                continue
            if not 0 <= score <= 100:
                self._quarantine(page, r, f"intent score {score} outside 0-100")
                continue
            topic = r.get(self.config.intent_topic_field) if self.config.intent_topic_field else None
            topic = topic or self.config.intent_topic
            rows.append(
                {
                    "intent_id": stable_id(r["Id"], topic.strip().lower(), r.get("SystemModstamp")),
                    "account_id": r["Id"],
                    "topic": topic,
                    "score": score,
                    "observed_at": r.get("SystemModstamp"),
                    "provider": self.config.intent_provider,
                }
            )
            raws.append(r)
        self._set(page, rows, raws)
        return page

    def _with_account(self, page: Page, records: list[dict], account_key: str = "AccountId") -> list[dict]:
        kept = []
        for r in records:
            if r.get(account_key):
                kept.append(r)
            else:
                self._quarantine(page, r, f"{page.object_name} {r.get('Id')} has no account")
        return kept

    def _map_contact(self, records: list[dict], page: Page) -> None:
        records = self._with_account(page, records)
        rows = [
            {
                "contact_id": r["Id"],
                "account_id": r["AccountId"],
                "title": r.get("Title"),
                "email": r.get("Email"),
                "created_at": r.get("CreatedDate"),
                "updated_at": r.get("SystemModstamp"),
            }
            for r in records
        ]
        self._set(page, rows, records)

    def _map_opportunity(self, records: list[dict], page: Page) -> None:
        records = self._with_account(page, records)
        rows = [
            {
                "opportunity_id": r["Id"],
                "account_id": r["AccountId"],
                "stage": r.get("StageName"),
                "amount": self._money(r.get("Amount"), r, r.get("CloseDate")),
                "created_at": r.get("CreatedDate"),
                "close_date": r.get("CloseDate"),
                "is_closed": to_bool(r.get("IsClosed")),
                "is_won": to_bool(r.get("IsWon")),
            }
            for r in records
        ]
        self._set(page, rows, records)

    def _activities(
        self,
        page: Page,
        records: list[dict],
        touch: Callable[[dict], str | None],
        when: Callable[[dict], str | None],
    ) -> None:
        """Touches become rows; records that are no touch (any more) are listed as deletes."""
        touches = []
        for r in records:
            kind = touch(r)
            if kind is None:
                page.deleted_ids.append(r["Id"])
            else:
                touches.append((r, kind))
        kept = self._with_account(page, [r for r, _ in touches])
        kinds = {r["Id"]: kind for r, kind in touches}
        rows = [
            {
                "activity_id": r["Id"],
                "account_id": r["AccountId"],
                "type": kinds[r["Id"]],
                "occurred_at": when(r),
                "owner_id": r.get("OwnerId"),
                "subject": r.get("Subject"),
                "contact_id": r.get("WhoId") if _is_contact(r) else None,
                "logged_at": r.get("CreatedDate"),  # when it was entered in the CRM (crm_hygiene)
            }
            for r in kept
        ]
        self._set(page, rows, kept)

    def _map_task(self, records: list[dict], page: Page) -> None:
        types = self.config.task_types

        def touch(r: dict) -> str | None:
            if to_bool(r.get("IsClosed")) is False:
                return None
            return types.get(r.get("Type") or "") or types.get(r.get("TaskSubtype") or "")

        self._activities(page, records, touch, lambda r: r.get("CompletedDateTime") or r.get("CreatedDate"))

    def _map_event(self, records: list[dict], page: Page) -> None:
        touch = lambda r: self.config.event_types.get(r.get("Type") or "", self.config.event_default_touch)  # noqa: E731
        self._activities(page, records, touch, lambda r: r.get("StartDateTime") or r.get("CreatedDate"))

    def campaign_touch(self, record: dict) -> str | None:
        """The first campaign rule matching the member's campaign type and status (case ignored)."""
        kind = str(record.get("Campaign.Type") or "").lower()
        status = str(record.get("Status") or "").lower()
        for rule in self.config.campaign_touches:
            if rule.campaign_type is not None and rule.campaign_type.lower() != kind:
                continue
            if rule.status is not None and rule.status.lower() != status:
                continue
            return rule.touch
        return None

    def _map_campaignmember(self, records: list[dict], page: Page) -> None:
        """A member becomes one touch per (member, touch type): Opened then Clicked keeps both."""
        page.deleted_ids = [f"{i}:{kind}" for i in page.deleted_ids for kind in self.campaign_kinds]
        rows, raws = [], []
        for r in records:
            kind = self.campaign_touch(r)
            if kind is None or not r.get("ContactId"):
                continue  # not a touch, or a lead (no account yet)
            if not r.get("Contact.AccountId"):
                self._quarantine(page, r, f"campaign member {r['Id']} has a contact without an account")
                continue
            rows.append(
                {
                    "activity_id": f"{r['Id']}:{kind}",
                    "account_id": r["Contact.AccountId"],
                    "type": kind,
                    "occurred_at": r.get("LastModifiedDate") or r.get("SystemModstamp"),
                    "contact_id": r["ContactId"],
                }
            )
            raws.append(r)
        self._set(page, rows, raws)

    def _map_accountownerhistory(self, records: list[dict], page: Page) -> None:
        """Owner changes become ``owner_assigned`` activities (``owner_id`` = the new owner). Salesforce writes
        two history rows per change of a lookup field, one with the names and one with the ids: the id row
        (a user id, key prefix 005) is kept; a queue (00G) is no owner's assignment."""
        kept = [r for r in records if re.fullmatch(r"005[0-9A-Za-z]+", str(r.get("NewValue") or ""))]
        rows = [
            {
                "activity_id": r["Id"],
                "account_id": r.get("AccountId"),
                "type": "owner_assigned",
                "occurred_at": r.get("CreatedDate"),
                "owner_id": r["NewValue"],
                "subject": None,
                "contact_id": None,
            }
            for r in kept
        ]
        self._set(page, rows, kept)

    def is_integration_change(self, record: dict) -> bool:
        """A status change the integration made (its user, or the write-back's value): not sales' answer."""
        value = str(record.get("NewValue") or "").strip().lower()
        if value in {v.strip().lower() for v in self.config.writeback_status_values}:
            return True
        by = str(record.get("CreatedById") or "")[:15]
        return bool(by) and by in {str(u)[:15] for u in self.integration_users}

    def _map_accounthistory(self, records: list[dict], page: Page) -> None:
        """Status changes; the integration's own are left out (and deleted if stored before).

        With ``reason_field``, a reason saved with a status (same account and CreatedDate) is that
        change's reason; a reason saved on its own is a row with an empty status (a reason for the
        current verdict).
        """
        reason_field = (self.config.reason_field or "").lower()
        is_reason = [bool(reason_field) and str(r.get("Field") or "").lower() == reason_field for r in records]
        reasons = {(r.get("AccountId"), r.get("CreatedDate")): str(r["NewValue"]).strip()
                   for r, flag in zip(records, is_reason, strict=True)
                   if flag and r.get("NewValue") is not None and str(r["NewValue"]).strip()}
        paired: set[tuple] = set()
        rows, raws = [], []
        for r, flag in zip(records, is_reason, strict=True):
            if flag:
                continue
            value = r.get("NewValue")
            if value is None or not str(value).strip():
                continue
            if self.is_integration_change(r):
                page.deleted_ids.append(r["Id"])
                continue
            key = (r.get("AccountId"), r.get("CreatedDate"))
            paired.add(key)
            status = self.statuses.get(str(value).lower(), str(value).strip().lower())
            rows.append(
                {
                    "status_change_id": r["Id"],
                    "account_id": r.get("AccountId"),
                    "status": status,
                    "changed_at": r.get("CreatedDate"),
                    "changed_by": r.get("CreatedById"),
                    "reason": reasons.get(key),
                }
            )
            raws.append(r)
        for r, flag in zip(records, is_reason, strict=True):
            key = (r.get("AccountId"), r.get("CreatedDate"))
            if flag and key in reasons and key not in paired and not self.is_integration_change(r):
                rows.append({"status_change_id": r["Id"], "account_id": r.get("AccountId"), "status": None,
                             "changed_at": r.get("CreatedDate"), "changed_by": r.get("CreatedById"),
                             "reason": reasons[key]})
                raws.append(r)
        self._set(page, rows, raws)


# -- Bulk 2.0 ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkState:
    """Where a Bulk 2.0 read is: the job, the locator of the next result page, the job's upper bound."""

    job_id: str
    locator: str
    upper: str
    done: bool = False
    newest: str = ""  # the newest cursor-field value (the server's SystemModstamp) in the pages read so far

    def text(self) -> str:
        return json.dumps({"job": self.job_id, "locator": self.locator, "upper": self.upper, "done": self.done,
                           "newest": self.newest})

    @classmethod
    def parse(cls, text: str | None) -> BulkState | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(str(data["job"]), str(data.get("locator") or ""), str(data["upper"]), bool(data["done"]),
                       str(data.get("newest") or ""))
        except (ValueError, KeyError, TypeError):
            return None


def bulk_object(spec: ObjectSpec) -> str:
    """The cursor name under which a Bulk 2.0 read of ``spec`` keeps its job and locator."""
    return f"{spec.name}:bulk"


def bulk_client(sf: Salesforce, spec: ObjectSpec) -> Any:
    """simple-salesforce's Bulk 2.0 client of one object (job create/get and one result page per call)."""
    return getattr(sf.bulk2, spec.table)._client


# -- the source -------------------------------------------------------------------------------------------


class SalesforceSource(Reconciling):
    """Yields pages of every configured object changed since the stored cursors."""

    def __init__(
        self,
        config: SalesforceConfig,
        client_factory: ClientFactory,
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.config, self.name = config, config.name
        self.factory, self.now = client_factory, now
        self.policy = RetryPolicy(config.retry.max_attempts, config.retry.base_delay, config.retry.max_delay)
        if sleep is not None:
            self.policy.sleep = sleep
        self.mapper = RecordMapper(config, self.name)
        self._client: Salesforce | None = None
        self._described: dict[str, dict[str, dict]] = {}
        self._usage: tuple[int, int] | None = None  # (used, total) daily API requests, from the last response
        self.calls = 0

    # ---- public ----

    def pages(self, cursors: CursorStore) -> Iterator[Page]:
        """Every configured object in order; each page carries its own cursor.

        First the configured fields are checked against each object's ``describe()``: a mapped field
        the org does not have (a vanilla org has no ``Tier__c``) is one warning line naming the config
        key, and the rest syncs without it (its column stays empty)."""
        sync_start = self.now().astimezone(dt.UTC).replace(microsecond=0)
        warnings = self._check_fields()
        multi_currency = self._read_currencies(warnings)
        retention_said = False
        for spec in object_specs(self.config, multi_currency):
            stored = cursors.get_cursor(self.name, spec.name)
            if spec.table == "AccountHistory" and stored is None and not retention_said:
                retention_said = True
                log.warning(HISTORY_RETENTION)
                warnings.setdefault(spec.name, []).append(HISTORY_RETENTION)
            job = BulkState.parse(cursors.get_cursor(self.name, bulk_object(spec)))
            pages = self.object_pages(spec, parse_time(stored) if stored else None, sync_start, job)
            yield from self._said_first(spec, warnings.pop(spec.name, []), pages)
        for name, lines in warnings.items():  # an object not configured for reading: still said
            kind = "accounts" if name == "Account" else "users"
            yield Page(self.name, name, kind, conform(kind, []), warnings=lines)
        yield from self.reconcile(cursors, sync_start)
        warning = self.mapper.tiers.warning(f"Salesforce Account.{self.config.tier_field}",
                                            f"sources.{self.name}.tier_map")
        if warning:
            log.warning(warning)
            yield Page(self.name, "Account", "accounts", conform("accounts", []), warnings=[warning])

    def _said_first(self, spec: ObjectSpec, lines: list[str], pages: Iterator[Page]) -> Iterator[Page]:
        """``pages`` with ``lines`` on the first of them (on an empty page of their own when there is none)."""
        for page in pages:
            page.warnings[:0], lines = lines, []
            yield page
        if lines:
            yield Page(self.name, spec.name, spec.kind, conform(spec.kind, []), warnings=lines)

    def describe(self, sobject: str) -> dict[str, dict]:
        """``sobject``'s fields by name (``GET sobjects/{T}/describe``), relationship names too
        (``UserRole`` of ``UserRoleId``), read once per source."""
        if sobject not in self._described:
            result = self._call(lambda sf: getattr(sf, sobject).describe(), f"describe {sobject}")
            fields = {str(f["name"]): f for f in result.get("fields", [])}
            fields |= {str(f["relationshipName"]): f for f in fields.values() if f.get("relationshipName")}
            self._described[sobject] = fields
        return self._described[sobject]

    def has_field(self, sobject: str, name: str) -> bool:
        """Whether ``sobject`` has field ``name`` (``Parent.Field``: whether it has the relationship)."""
        return name.split(".", 1)[0] in self.describe(sobject)

    def _check_fields(self) -> dict[str, list[str]]:
        """Configured fields the org lacks become ``None`` in this source's config, each with one warning
        (by the object that would have read it); a missing standard field stays and fails as the org says."""
        warnings: dict[str, list[str]] = {}
        updates: dict[str, None] = {}
        for key, sobject in CONFIGURED_FIELDS:
            field = getattr(self.config, key)
            if not field or sobject not in self._sobjects() or self.has_field(sobject, field):
                continue
            updates[key] = None
            line = (f"Salesforce {sobject} has no field {field} (sources.salesforce.{key}): "
                    f"{MISSING_EFFECT.get(key, 'synced without it')}; set the key to your field or to null")
            log.warning(line)
            warnings.setdefault(sobject, []).append(line)
        if updates:
            self.config = self.config.model_copy(update=updates)
            self.mapper.config = self.config
        return warnings

    def _read_currencies(self, warnings: dict[str, list[str]]) -> bool:
        """In a multi-currency org (``CurrencyIsoCode`` on Account or Opportunity), the rates to the corporate
        currency, and one line saying which currency the amounts are in."""
        money = [name for name in ("Opportunity", "Account") if name in self.config.objects]
        if not money or not self.has_field(money[-1], "CurrencyIsoCode"):
            return False
        types = list(self._query_all("SELECT IsoCode, ConversionRate, IsCorporate FROM CurrencyType",
                                     "read the currency rates"))
        corporate = next((str(t["IsoCode"]) for t in types if to_bool(t.get("IsCorporate"))), "")
        dated: dict[str, list[tuple[str, str, float]]] = {}
        for r in self._query_all("SELECT IsoCode, ConversionRate, StartDate, NextStartDate FROM DatedConversionRate",
                                 "read the dated currency rates"):
            dated.setdefault(str(r["IsoCode"]), []).append(
                (str(r.get("StartDate") or "0001-01-01"), str(r.get("NextStartDate") or "9999-12-31"),
                 float(r["ConversionRate"])))
        rates = {str(t["IsoCode"]): float(t["ConversionRate"]) for t in types if t.get("ConversionRate")}
        self.mapper.currency = CurrencyRates(corporate, rates, dated)
        line = self.mapper.currency.summary()
        log.info(line)
        warnings.setdefault(money[0], []).append(line)
        return True

    def _sobjects(self) -> set[str]:
        return {spec.table for spec in object_specs(self.config)} | (
            {"Account"} if "AccountHistory" in self.config.objects else set())

    def id_scans(self) -> list[IdScan]:
        """What an id scan covers: accounts, contacts, opportunities, Task/Event touches, campaign members."""
        configured = set(self.config.objects)
        scans = [IdScan(name, kind, (name,)) for name, kind in
                 (("Account", "accounts"), ("Contact", "contacts"), ("Opportunity", "opportunities"))
                 if name in configured]
        activities = tuple(name for name in ("Task", "Event") if name in configured)
        if activities:
            scans.append(IdScan("+".join(activities), "activities", activities, sales_types()))
        if "CampaignMember" in configured:
            scans.append(IdScan("CampaignMember", "activities", ("CampaignMember",), marketing_types(),
                                lambda stored: stored.split(":")[0]))
        return scans

    def list_ids(self, scan: IdScan) -> Iterator[str]:
        """Every live id (archived activities included: ``queryAll`` with ``IsDeleted = false``)."""
        headers = {"Sforce-Query-Options": "batchSize=2000"}
        timeout = self.config.retry.timeout
        for name in scan.objects:
            soql = f"SELECT Id FROM {name} WHERE IsDeleted = false"
            result = self._call(
                lambda sf, q=soql: sf.query(q, include_deleted=True, headers=headers, timeout=timeout),
                f"list {name} ids",
            )
            while True:
                yield from (str(r["Id"]) for r in result.get("records", []))
                if result.get("done", True):
                    break
                result = self._call(
                    lambda sf, url=result["nextRecordsUrl"]: sf.query_more(
                        url, identifier_is_url=True, headers=headers, timeout=timeout
                    ),
                    f"list {name} ids",
                )

    def object_pages(
        self,
        spec: ObjectSpec,
        cursor: dt.datetime | None,
        sync_start: dt.datetime,
        job: BulkState | None = None,
    ) -> Iterator[Page]:
        """One object's pages between ``cursor - overlap`` and ``sync_start`` (or an unfinished bulk job's)."""
        if spec.name == "AccountHistory":
            self.mapper.integration_users |= self.integration_user()
        if job is not None and not job.done:
            yield from self._bulk_pages(spec, job)
            return
        lower = cursor - dt.timedelta(seconds=self.config.overlap_seconds) if cursor else None
        if self._use_bulk(spec, lower, sync_start):
            yield from self._bulk_pages(spec, self._start_bulk(spec, lower, sync_start))
            return
        soql = build_soql(spec, lower, sync_start)
        headers = {"Sforce-Query-Options": f"batchSize={self.config.page_size}"}
        timeout = self.config.retry.timeout
        result = self._call(
            lambda sf: sf.query(soql, include_deleted=True, headers=headers, timeout=timeout),
            f"query {spec.name}",
        )
        while True:
            records = [flatten(record) for record in result.get("records", [])]
            if records:
                cursor_value = max(parse_time(r[spec.cursor_field]) for r in records)
                yield from self._with_list(spec, records,
                                           self.mapper.pages(spec, records, cursor_text(min(cursor_value, sync_start))))
            if result.get("done", True):
                return
            next_url = result["nextRecordsUrl"]
            result = self._call(
                lambda sf, url=next_url: sf.query_more(
                    url, identifier_is_url=True, headers=headers, timeout=timeout
                ),
                f"query {spec.name}",
            )

    def _with_list(self, spec: ObjectSpec, records: list[dict], pages: list[Page]) -> list[Page]:
        """An Account page's pages plus, with ``tal_field``, the target account list periods of its accounts
        (the page's cursor moves to that last page, so a resumed sync never skips it)."""
        if spec.name != "Account" or not self.config.tal_field or not records:
            return pages
        listed = self._list_page([r for r in records if not to_bool(r.get("IsDeleted"))])
        listed.cursor, pages[-1].cursor = pages[-1].cursor, None
        return [*pages, listed]

    def _list_page(self, accounts: list[dict]) -> Page:
        """``target_accounts`` rows of ``accounts`` from the whole AccountHistory of ``tal_field`` (a change of
        the checkbox moves the Account's SystemModstamp, so the account is on a page whenever it changed).
        Salesforce records no field history when a record is created, so a box ticked at creation shows
        as the first change's OldValue, or (no change at all) as the field's current value: a period
        without ``added_at``."""
        field = self.config.tal_field
        changes: dict[str, list[dict]] = {}
        for start in range(0, len(accounts), TAL_HISTORY_BATCH):
            ids = ", ".join(f"'{r['Id']}'" for r in accounts[start:start + TAL_HISTORY_BATCH])
            soql = (f"SELECT AccountId, OldValue, NewValue, CreatedDate FROM AccountHistory "
                    f"WHERE Field = '{field}' AND AccountId IN ({ids}) ORDER BY CreatedDate, Id")
            for record in self._query_all(soql, "read the target account list history"):
                changes.setdefault(str(record["AccountId"]), []).append(record)
        rows, raws = [], []
        for account in accounts:
            history = changes.get(str(account["Id"]), [])
            initially = to_bool(history[0].get("OldValue") if history else account.get(field)) is True
            periods = list_periods(str(account["Id"]), [(c.get("CreatedDate"), c.get("NewValue")) for c in history],
                                   initially)
            rows += periods
            raws += [{"Id": account["Id"], field: account.get(field), "history": history}] * len(periods)
        return Page(self.name, "Account", "target_accounts", conform("target_accounts", rows, raws))

    def _query_all(self, soql: str, what: str) -> Iterator[dict]:
        """Every record of a small SOQL query, page after page."""
        timeout = self.config.retry.timeout
        result = self._call(lambda sf: sf.query(soql, timeout=timeout), what)
        while True:
            yield from (flatten(record) for record in result.get("records", []))
            if result.get("done", True):
                return
            result = self._call(lambda sf, url=result["nextRecordsUrl"]: sf.query_more(
                url, identifier_is_url=True, timeout=timeout), what)

    # ---- bulk ----

    def _use_bulk(self, spec: ObjectSpec, lower: dt.datetime | None, upper: dt.datetime) -> bool:
        threshold = self.config.bulk_threshold
        if threshold is None:
            return False
        soql = build_soql(spec, lower, upper, count=True)
        result = self._call(
            lambda sf: sf.query(soql, include_deleted=True, timeout=self.config.retry.timeout),
            f"count {spec.name}",
        )
        return int(result.get("totalSize", 0)) > threshold

    def _start_bulk(self, spec: ObjectSpec, lower: dt.datetime | None, upper: dt.datetime) -> BulkState:
        """Create a Bulk 2.0 queryAll job and wait for it, each poll one counted call."""
        soql = build_soql(spec, lower, upper, order=False)
        log.info("reading %s with Bulk API 2.0", spec.name)
        job = self._call(
            lambda sf: bulk_client(sf, spec).create_job(Operation.query_all, soql), f"bulk query {spec.name}"
        )
        job_id = str(job["id"])
        while True:
            info = self._call(lambda sf: bulk_client(sf, spec).get_job(job_id, True), f"bulk query {spec.name}")
            state = info.get("state")
            if state == "JobComplete":
                return BulkState(job_id, "", cursor_text(upper))
            if state in ("Failed", "Aborted"):
                message = redact(str(info.get("errorMessage") or state), self.config.credentials.secrets())
                raise SourceError(f"Salesforce bulk query {spec.name} failed: Job failure: {message}")
            self.policy.sleep(self.config.bulk_poll_seconds)

    def _bulk_pages(self, spec: ObjectSpec, job: BulkState) -> Iterator[Page]:
        """A finished job's result pages, streamed: each stored with the next locator, so a stopped sync
        resumes at the page after the last stored one; the object's cursor moves once the last page is in.

        Results are unordered, so the watermark waits for the end; like the REST path's, it is the newest
        SystemModstamp the server returned (kept in the state with the job, so a resumed read still knows
        it), never the local clock: a clock ahead of the org's would move the watermark past rows the org
        stamps later. Result pages stay available for days after the job completed; if the job is gone,
        the object is read again from its cursor.
        """
        upper = parse_time(job.upper)
        newest = parse_time(job.newest) if job.newest else None
        locator, first = job.locator, True
        while True:
            try:
                result = self._call(
                    lambda sf, loc=locator: bulk_client(sf, spec).get_query_results(
                        job.job_id, loc, self.config.bulk_page_size
                    ),
                    f"bulk query {spec.name}",
                )
            except SourceError as error:
                if not (first and job.locator):
                    raise
                log.warning("Salesforce bulk job %s cannot be resumed (%s); starting again", job.job_id, error)
                yield Page(self.name, bulk_object(spec), spec.kind, conform(spec.kind, []),
                           cursor=BulkState(job.job_id, "", job.upper, done=True).text())
                return
            first = False
            locator = result["locator"] or ""
            records = parse_csv(result["records"])
            stamps = [parse_time(r.get(spec.cursor_field)) for r in records if r.get(spec.cursor_field)]
            newest = max([newest, *stamps] if newest else stamps, default=None)
            state = BulkState(job.job_id, locator, job.upper, done=not locator,
                              newest=cursor_text(newest) if newest else "")
            pages = self._with_list(spec, records, self.mapper.pages(spec, records, None)) if records else []
            for page in pages:
                page.object_name = bulk_object(spec)
            pages = pages or [Page(self.name, bulk_object(spec), spec.kind, conform(spec.kind, []))]
            pages[-1].cursor = state.text()
            yield from pages
            if state.done:
                cursor = cursor_text(min(newest, upper)) if newest else None  # no rows: the cursor stays
                yield Page(self.name, spec.name, spec.kind, conform(spec.kind, []), cursor=cursor)
                return

    # ---- calls ----

    def _sf(self) -> Salesforce:
        if self._client is None:
            self._client = self.factory()
            hooks = self._client.session.hooks.setdefault("response", [])
            if self._track_usage not in hooks:
                hooks.append(self._track_usage)
        return self._client

    def integration_user(self) -> set[str]:
        """The logged-in user (``GET /services/oauth2/userinfo`` → ``user_id``), whose changes are the
        integration's (an expired session answers 403 ``Bad_OAuth_Token`` there and is renewed like any
        call's); empty (with a warning) when the org does not say, then only the configured
        ``integration_user_ids`` and the write-back values count."""

        def who(sf: Salesforce) -> Any:
            url = f"https://{sf.sf_instance}/services/oauth2/userinfo"
            response = sf.session.get(url, headers=sf.headers, timeout=self.config.retry.timeout)
            if response.status_code == 401 or "Bad_OAuth_Token" in response.text[:200]:
                # an expired session: renewed through the same re-login as every other call
                raise SalesforceExpiredSession(url, response.status_code, "userinfo", response.content)
            response.raise_for_status()
            return response.json()

        try:
            user = str(self._call(who, "read the logged-in user").get("user_id") or "")
        except (SourceError, requests.RequestException, ValueError) as error:
            log.warning("Salesforce: cannot tell the integration user (%s); set integration_user_ids", error)
            return set()
        return {user} if user else set()

    def _track_usage(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Every response's ``Sforce-Limit-Info: api-usage=U/M``, Bulk 2.0 calls included (simple-salesforce
        reads it only from its REST calls, so bulk job polls and result pages would go unseen)."""
        match = re.search(r"api-usage=(\d+)/(\d+)", response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self._usage = (int(match.group(1)), int(match.group(2)))

    def _guard_quota(self) -> None:
        if self._usage is None:
            usage = getattr(self._client, "api_usage", {}).get("api-usage") if self._client else None
            self._usage = (usage.used, usage.total) if usage is not None else None
        used, total = self._usage or (0, 0)
        if total and used >= self.config.quota_share * total:
            raise SourceError(
                f"Salesforce sync stopped: the org has used {used} of its {total} daily API "
                f"requests, at or above the configured share of {self.config.quota_share:.0%}; "
                "the pages read so far are kept and the next sync resumes from there"
            )

    def _call(self, call: Callable[[Salesforce], Any], what: str) -> Any:
        """One API call with quota guard, retries, re-login on an expired session and clean errors."""
        self._guard_quota()
        relogins = 0

        def attempt() -> Any:
            self.calls += 1
            return call(self._sf())

        def classify(error: BaseException) -> Retry | None:
            nonlocal relogins
            if isinstance(error, SalesforceExpiredSession) and relogins == 0:
                relogins += 1
                self._client = None
                return Retry("session expired; logging in again", after=0)
            return classify_error(error)

        try:
            return call_with_retry(attempt, classify, self.policy, what=f"Salesforce {what}")
        except SourceError:
            raise
        except SalesforceError as error:
            raise SourceError(self._message(error, what)) from None
        except SalesforceOperationError as error:
            message = redact(str(error), self.config.credentials.secrets())
            raise SourceError(f"Salesforce {what} failed: {message}") from None
        except requests.RequestException as error:
            raise SourceError(
                f"Salesforce {what} failed: {type(error).__name__} (gave up after retries)"
            ) from None

    def _message(self, error: SalesforceError, what: str) -> str:
        code, message = error_code(error)
        if isinstance(error, SalesforceExpiredSession):
            text = "Salesforce session expired or invalid and a new login did not help; check the credentials"
        elif code == "REQUEST_LIMIT_EXCEEDED":
            text = (
                f"Salesforce refused {what}: the org's API request limit is exceeded "
                f"(REQUEST_LIMIT_EXCEEDED: "
                f"{message}); the pages read so far are kept, sync again later"
            )
        else:
            status = getattr(error, "status", "?")
            text = f"Salesforce {what} failed: HTTP {status} {code or ''} {message or ''}".strip()
        return redact(text, self.config.credentials.secrets())


def _is_contact(record: dict) -> bool:
    """WhoId is a Contact (not a Lead): by ``Who.Type``, else by the 003 key prefix."""
    if record.get("Who.Type"):
        return record["Who.Type"] == "Contact"
    return str(record.get("WhoId") or "").startswith("003")


def error_code(error: SalesforceError) -> tuple[str | None, str | None]:
    """``(errorCode, message)`` of a Salesforce error body (a JSON list of errors); a message of several lines
    (a SOQL error quotes the query, a caret and a row/column) is its last line's first sentence."""
    content = getattr(error, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0].get("errorCode"), _one_line(content[0].get("message"))
    return None, None


def _one_line(message: str | None) -> str | None:
    lines = [line.strip() for line in str(message or "").splitlines() if line.strip()]
    if not lines:
        return message
    return lines[-1].split(" If you are attempting")[0] if len(lines) > 1 else lines[0]


def classify_error(error: BaseException) -> Retry | None:
    """Transient Salesforce faults: 5xx, 429, concurrent-request limits, timeouts, dropped connections."""
    if isinstance(error, (requests.Timeout, requests.ConnectionError)):
        return Retry(type(error).__name__)
    if isinstance(error, SalesforceRefusedRequest):
        code, message = error_code(error)
        if code == "REQUEST_LIMIT_EXCEEDED" and "concurrent" in str(message).lower():
            return Retry("concurrent request limit")
        return None
    status = getattr(error, "status", None)
    if isinstance(error, SalesforceError) and isinstance(status, int) and (status >= 500 or status == 429):
        return Retry(f"HTTP {status}")
    return None
