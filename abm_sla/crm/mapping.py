"""Configuration of the CRM sources: which env vars hold credentials, which fields hold what.

Only the *names* of environment variables live here, never their values, so a
config can be printed, logged or committed. Field mappings say which custom
fields hold tier, ABM status and intent, and how CRM activity and campaign
types become the touch types of ``abm_sla.domain.frames``.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from abm_sla.domain import frames
from abm_sla.errors import ConfigError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Credentials(_Model):
    """Names of environment variables; :meth:`resolve` reads the set ones (values never stored here)."""

    env: dict[str, str] = Field(default_factory=dict)

    def resolve(self) -> dict[str, str]:
        """The set variables as ``{argument: value}``; unset or empty ones are left out."""
        return {key: os.environ[name] for key, name in self.env.items() if os.environ.get(name)}

    def secrets(self) -> list[str]:
        """Every resolved value, for redaction of messages."""
        return [value for value in self.resolve().values() if len(value) >= 4]

    def set_empty(self) -> set[str]:
        """Arguments whose variable is set but empty (a Salesforce security token may rightly be empty)."""
        return {key for key, name in self.env.items() if os.environ.get(name) == ""}


class RetryConfig(_Model):
    """Retries of one call: exponential backoff with jitter, Retry-After honoured."""

    max_attempts: int = Field(6, ge=1)
    base_delay: float = Field(0.5, ge=0)
    max_delay: float = Field(60.0, ge=0)
    timeout: float = Field(60.0, gt=0, description="seconds per HTTP call (connect and read)")


class CampaignTouch(_Model):
    """A CampaignMember with this campaign type and member status is a marketing touch of ``touch``.

    ``None`` matches any value; the first matching rule wins (comparison ignores case).
    """

    campaign_type: str | None = None
    status: str | None = None
    touch: str

    @field_validator("touch")
    @classmethod
    def _marketing(cls, value: str) -> str:
        if value not in frames.MARKETING_SIDE:
            raise ValueError(f"{value!r} is not a marketing activity type {frames.MARKETING_SIDE}")
        return value


DEFAULT_CAMPAIGN_TOUCHES = (
    CampaignTouch(campaign_type="Webinar", status="Attended", touch="webinar"),
    CampaignTouch(campaign_type="Email", status="Clicked", touch="email_click"),
    CampaignTouch(campaign_type="Email", status="Opened", touch="email_open"),
    CampaignTouch(status="Form Submitted", touch="form_submit"),
    CampaignTouch(status="Visited", touch="web_visit"),
)


#: What a CRM task or engagement of sales may map to: a sales touch, or sales flagging the account hot
#: (issue 26, e.g. Salesforce ``task_types: {"Hot Account": hot_flag}``).
SALES_ACTIVITY_TYPES = (*frames.SALES_TOUCHES, frames.HOT_FLAG)


def _check_sales(mapping: dict[str, str]) -> dict[str, str]:
    bad = {key: value for key, value in mapping.items() if value not in SALES_ACTIVITY_TYPES}
    if bad:
        raise ValueError(f"not sales touch types {SALES_ACTIVITY_TYPES}: {bad}")
    return mapping


class TokenStoreConfig(_Model):
    """Where a rotated refresh token is kept: ``{kind: file, path: …}`` or ``{kind: prefect-secret, block: …}``."""

    kind: Literal["file", "prefect-secret"]
    path: str | None = Field(None, description="kind file: the token file (written atomically, mode 0600)")
    block: str | None = Field(None, description="kind prefect-secret: the Prefect Secret block's name")

    @model_validator(mode="after")
    def _where(self) -> TokenStoreConfig:
        if self.kind == "file" and not self.path:
            raise ValueError("token_store kind file needs a path")
        if self.kind == "prefect-secret" and not self.block:
            raise ValueError("token_store kind prefect-secret needs a block")
        return self


class SalesforceConfig(_Model):
    """The Salesforce source (simple-salesforce)."""

    name: str = "salesforce"
    credentials: Credentials = Credentials(
        env={
            "instance_url": "SF_INSTANCE_URL",
            "session_id": "SF_ACCESS_TOKEN",
            "username": "SF_USERNAME",
            "password": "SF_PASSWORD",
            "security_token": "SF_SECURITY_TOKEN",
            "consumer_key": "SF_CONSUMER_KEY",
            "consumer_secret": "SF_CONSUMER_SECRET",
            "refresh_token": "SF_REFRESH_TOKEN",
            "privatekey_file": "SF_PRIVATE_KEY_FILE",
            "privatekey": "SF_PRIVATE_KEY",
            "domain": "SF_DOMAIN",
        }
    )
    token_store: TokenStoreConfig | None = Field(
        None, description="where a rotated refresh token is kept between runs (refresh token rotation)"
    )
    jwt_audience: Literal["login", "test"] | None = Field(
        None, description="JWT bearer `aud`: https://login.salesforce.com or https://test.salesforce.com "
                          "(default: test for sandbox My Domains, else login); never the My Domain"
    )
    version: str = "59.0"
    objects: tuple[str, ...] = (
        "User",
        "Account",
        "Contact",
        "Opportunity",
        "Task",
        "Event",
        "CampaignMember",
        "AccountHistory",
        "AccountOwnerHistory",
    )
    tier_field: str | None = "Tier__c"
    status_field: str | None = "ABM_Status__c"
    reason_field: str | None = Field(
        None, description="Account field holding sales' reason (history-tracked, text ≤255 or picklist)"
    )
    tal_field: str | None = Field(
        None, description="Account checkbox of the target account list (history-tracked), e.g. "
                          "ABM_Target_Account__c; its AccountHistory gives target_accounts periods")
    intent_score_field: str | None = None
    intent_topic_field: str | None = None
    intent_topic: str = "crm_intent"
    intent_provider: str = "salesforce"
    country_field: str = "BillingCountry"
    user_role_field: str | None = "UserRole.Name"
    user_country_field: str | None = "Country"
    role_map: dict[str, str] = Field(default_factory=dict, description="role name (any case) → policy role")
    status_map: dict[str, str] = Field(default_factory=dict, description="CRM status → normalized status")
    tier_map: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_TIER_MAP),
        description="CRM tier value → tier 1, 2 or 3 (added to SPEC's 1, 2, 3, Tier 1..Tier 3); others: no tier")
    integration_user_ids: tuple[str, ...] = Field(
        (), description="users whose status changes are never sales' answer (the logged-in user is added)"
    )
    writeback_status_values: tuple[str, ...] = Field(
        ("MQA",), description="status values the write-back sets; never sales' answer (from writeback)"
    )
    task_types: dict[str, str] = Field(
        default_factory=lambda: {
            "Call": "call",
            "Email": "email_sent",
            "Meeting": "meeting",
            "LinkedIn": "linkedin_message",
        },
        description="Task Type or TaskSubtype → sales touch; other tasks are not touches",
    )
    event_types: dict[str, str] = Field(default_factory=dict, description="Event Type → sales touch")
    event_default_touch: str | None = "meeting"
    campaign_touches: tuple[CampaignTouch, ...] = DEFAULT_CAMPAIGN_TOUCHES
    overlap_seconds: int = Field(300, ge=0, description="re-read this much before the stored watermark")
    page_size: int = Field(2000, ge=200, le=2000, description="Sforce-Query-Options batchSize")
    bulk_threshold: int | None = Field(
        50_000, ge=0, description="use Bulk API 2.0 above this many changed rows (None: never)"
    )
    bulk_page_size: int = Field(50_000, ge=1)
    bulk_poll_seconds: float = Field(5, ge=0)
    quota_share: float = Field(0.8, gt=0, le=1, description="stop at this share of the daily API quota")
    reconcile_every_days: float | None = Field(
        7, gt=0, description="full id scan that soft-deletes what the CRM no longer has (None: never)"
    )
    reconcile_max_share: float = Field(
        0.5, gt=0, le=1, description="an id scan that would delete more of an object's rows deletes nothing"
    )
    retry: RetryConfig = RetryConfig()

    @field_validator("task_types", "event_types")
    @classmethod
    def _sales(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_sales(value)

    @field_validator("tier_map", mode="before")
    @classmethod
    def _tiers(cls, value: object) -> object:
        return check_tier_map(value) if isinstance(value, dict) else value

    @field_validator("event_default_touch")
    @classmethod
    def _default_touch(cls, value: str | None) -> str | None:
        if value is not None:
            _check_sales({"default": value})
        return value


HUBSPOT_OBJECTS = (
    "owners",
    "companies",
    "contacts",
    "deals",
    "emails",
    "meetings",
    "calls",
    "notes",
    "tasks",
    "events",
    "email_events",
)
# Marketing e-mail opens and clicks are not event-analytics event types: HubSpot serves them through the
# email events API (GET /email/public/v1/events, recipient = e-mail address), see ``email_events``.
NOT_EVENT_ANALYTICS = {"e_opened_email": "OPEN", "e_clicked_email": "CLICK"}


class HubSpotConfig(_Model):
    """The HubSpot source (hubspot-api-client v12)."""

    name: str = "hubspot"
    credentials: Credentials = Credentials(
        env={
            "access_token": "HUBSPOT_ACCESS_TOKEN",
            "refresh_token": "HUBSPOT_REFRESH_TOKEN",
            "client_id": "HUBSPOT_CLIENT_ID",
            "client_secret": "HUBSPOT_CLIENT_SECRET",
        }
    )
    host: str | None = Field(None, description="API base URL (default https://api.hubapi.com; a proxy, a test server)")
    oauth_token_path: str = Field(
        "/oauth/v3/token", pattern=r"^/oauth/[\w-]+/token$",
        description="OAuth token endpoint (v3; /oauth/v1/token is sunset on 2027-02-16; the date-versioned "
                    "/oauth/2026-03/token answers the same)")
    objects: tuple[str, ...] = HUBSPOT_OBJECTS
    tier_property: str | None = "hs_ideal_customer_profile"
    status_property: str | None = "abm_status"
    reason_property: str | None = Field(None, description="company property holding sales' reason")
    tal_property: str | None = Field(
        None, description="company checkbox of the target account list (HubSpot's own: hs_is_target_account); "
                          "its history gives target_accounts periods")
    intent_score_property: str | None = None
    intent_topic_property: str | None = None
    intent_topic: str = "crm_intent"
    intent_provider: str = "hubspot"
    country_property: str = "country"
    owner_history: bool = Field(
        True, description="read hubspot_owner_id's history: each owner change is an owner_assigned activity")
    status_map: dict[str, str] = Field(default_factory=dict)
    tier_map: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_TIER_MAP),
        description="CRM tier value → tier 1, 2 or 3 (added to SPEC's 1, 2, 3, Tier 1..Tier 3); others: no tier")
    integration_user_ids: tuple[str, ...] = Field(
        (), description="HubSpot user ids whose status changes are never sales' answer"
    )
    integration_app_ids: tuple[str, ...] = Field(
        (), description="app ids (history sourceId) whose status changes are never sales' answer"
    )
    writeback_status_values: tuple[str, ...] = Field(
        ("MQA",), description="status values the write-back sets; never sales' answer (from writeback)"
    )
    team_roles: dict[str, str] = Field(default_factory=dict, description="owner team name → policy role")
    default_role: str = "sales"
    default_time_zone: str = "UTC"
    default_country: str | None = None
    sales_touches: dict[str, str] = Field(
        default_factory=lambda: {
            "calls": "call",
            "meetings": "meeting",
            "emails:EMAIL": "email_sent",
            "emails:FORWARDED_EMAIL": "email_sent",
            "tasks:CALL": "call",
            "tasks:EMAIL": "email_sent",
            "tasks:LINKED_IN": "linkedin_message",
            "tasks:LINKED_IN_MESSAGE": "linkedin_message",
        },
        description="'object' or 'object:subtype' (email direction, task type) → sales touch",
    )
    webinar_event_type: str | None = None
    marketing_events: dict[str, str] = Field(
        default_factory=lambda: {
            "e_visited_page": "web_visit",
            "e_submitted_form": "form_submit",
        },
        description="event analytics eventType → marketing touch (plus webinar_event_type → webinar)",
    )
    email_events: dict[str, str] = Field(
        default_factory=lambda: {"OPEN": "email_open", "CLICK": "email_click"},
        description="email events API type (OPEN, CLICK, …; case-sensitive) → marketing touch",
    )
    exclude_filtered_email_events: bool = Field(
        True, description="leave out opens/clicks HubSpot filtered as bots (excludeFilteredEvents)"
    )
    overlap_seconds: int = Field(300, ge=0)
    page_size: int = Field(100, ge=1, le=200)
    search_result_cap: int = Field(
        10_000, ge=1, description="results one HubSpot search can page through (keyset paging stays under it)")
    requests_per_10s: int = Field(100, ge=1)
    search_per_second: int = Field(4, ge=1)
    rate_budget: Literal["process", "prefect"] = Field(
        "process", description="process: the limits hold per process; prefect: one budget for every process "
                               "(Prefect global concurrency limits, set by the flows)")
    reconcile_every_days: float | None = Field(
        7, gt=0, description="full id scan that soft-deletes what the CRM no longer has (None: never)"
    )
    reconcile_max_share: float = Field(
        0.5, gt=0, le=1, description="an id scan that would delete more of an object's rows deletes nothing"
    )
    retry: RetryConfig = RetryConfig()

    @field_validator("sales_touches")
    @classmethod
    def _sales(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_sales(value)

    @field_validator("tier_map", mode="before")
    @classmethod
    def _tiers(cls, value: object) -> object:
        return check_tier_map(value) if isinstance(value, dict) else value

    @field_validator("marketing_events", "email_events")
    @classmethod
    def _marketing(cls, value: dict[str, str]) -> dict[str, str]:
        bad = {key: kind for key, kind in value.items() if kind not in frames.MARKETING_SIDE}
        if bad:
            raise ValueError(f"not marketing activity types {frames.MARKETING_SIDE}: {bad}")
        return value

    @field_validator("marketing_events")
    @classmethod
    def _event_analytics_types(cls, value: dict[str, str]) -> dict[str, str]:
        wrong = sorted(set(value) & set(NOT_EVENT_ANALYTICS))
        if wrong:
            moved = ", ".join(f"{name} → email_events {NOT_EVENT_ANALYTICS[name]}" for name in wrong)
            raise ValueError(f"{wrong} are not event analytics types; marketing e-mail comes from {moved}")
        return value

    @model_validator(mode="after")
    def _objects_known(self) -> HubSpotConfig:
        unknown = sorted(set(self.objects) - set(HUBSPOT_OBJECTS))
        if unknown:
            raise ValueError(f"unknown HubSpot objects {unknown}; known: {HUBSPOT_OBJECTS}")
        return self

    def event_touches(self) -> dict[str, str]:
        """eventType → marketing touch, the webinar event type included."""
        touches = dict(self.marketing_events)
        if self.webinar_event_type:
            touches[self.webinar_event_type] = "webinar"
        return touches


SourceKind = Literal["salesforce", "hubspot"]


def load_config(kind: SourceKind, data: dict | None) -> SalesforceConfig | HubSpotConfig:
    """A validated source config; a bad one is a one-line :class:`ConfigError` naming the field."""
    model = SalesforceConfig if kind == "salesforce" else HubSpotConfig
    try:
        return model.model_validate(data or {})
    except ValueError as error:
        errors = getattr(error, "errors", lambda: [])()
        if errors:
            first = errors[0]
            where = ".".join(str(part) for part in first.get("loc", ()))
            raise ConfigError(f"{kind} config: {where}: {first.get('msg')}") from None
        raise ConfigError(f"{kind} config: {error}") from None


# -- value helpers shared by the sources ----------------------------------------------------------

def to_float(value: object) -> float | None:
    """A CRM number (JSON number or text, empty = missing) as a float."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def to_bool(value: object) -> bool | None:
    """``true``/``false`` in any case (also JSON booleans, 1/0); None when missing."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return {"true": True, "1": True, "false": False, "0": False}.get(text)


#: SPEC's tier values (``1``, ``2``, ``3``, ``Tier 1``..``Tier 3``); keys are compared by :func:`tier_key`,
#: so ``TIER 1``, ``tier_1`` (HubSpot's ideal customer profile tier) and ``2.0`` (a number field) match too.
DEFAULT_TIER_MAP: dict[str, str] = {
    **{str(n): f"Tier {n}" for n in (1, 2, 3)},
    **{f"Tier {n}": f"Tier {n}" for n in (1, 2, 3)},
}


def tier_key(value: object) -> str | None:
    """A tier value as a tier map looks it up: trimmed, lower case, runs of spaces, ``_`` and ``-`` as one
    space, a whole number's ``.0`` dropped; None when empty."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = re.sub(r"[\s_-]+", " ", str(value).strip().lower())
    text = re.sub(r"^(\d+)\.0*$", r"\1", text)
    return text or None


def check_tier_map(given: dict[str, object]) -> dict[str, str]:
    """The tier map with SPEC's values beneath the configured ones; every target must be tier 1, 2 or 3."""
    merged: dict[str, str] = dict(DEFAULT_TIER_MAP)
    for key, value in given.items():
        match = re.match(r"(?i)^\s*(?:tier\s*)?([123])(?:\.0*)?\s*$", str(value))
        if not match:
            raise ValueError(f"tier_map: {key!r} maps to {value!r}, not a tier (1, 2, 3 or 'Tier 1'..'Tier 3')")
        merged[str(key)] = f"Tier {match.group(1)}"
    return merged


class TierMapper:
    """Raw CRM tier values → ``Tier 1``..``Tier 3`` through a tier map; a value the map lacks becomes no tier
    (Tier 3 when routed, as SPEC says of an account without one) and is counted for one warning a run."""

    def __init__(self, tier_map: dict[str, object] | None = None) -> None:
        self.lookup = {tier_key(key): value for key, value in check_tier_map(tier_map or {}).items()}
        self.unmapped: dict[str, int] = {}

    def map(self, values: pd.Series) -> pd.Series:
        """Each value's tier (None when empty or unmapped); unmapped values are counted."""
        keys = values.map(tier_key)
        tiers = keys.map(self.lookup)
        refused = values[keys.notna() & tiers.isna()].astype(str).str.strip()
        for value, count in refused.value_counts(sort=False).items():
            self.unmapped[value] = self.unmapped.get(value, 0) + int(count)
        return tiers.astype("object").where(tiers.notna(), None)

    def warning(self, what: str, config_key: str) -> str | None:
        """One line naming the unmapped values and how many accounts had each, or None."""
        if not self.unmapped:
            return None
        listed = ", ".join(f"{value!r} ({count})" for value, count in
                           sorted(self.unmapped.items(), key=lambda item: (-item[1], item[0])))
        return (f"{what}: tier values not in the tier map were left empty (such accounts route as Tier 3): "
                f"{listed}; map them in {config_key} in abm-sla.yaml")


def list_periods(account_id: str, changes: list[tuple[object, object]], initially: bool = False) -> list[dict]:
    """``target_accounts`` rows of one account from the history of a CRM "target account" checkbox.

    ``changes`` are (timestamp, value): a change to true opens a period (``added_at``), a change to false or
    empty closes it (``removed_at``). ``initially``: whether the box was ticked before the first change on
    record (then the first period has no ``added_at``: on the list since before the records). Each row is
    keyed ``account|added_at`` like ``target_accounts.csv``'s, so a later sync that sees the period end
    updates the same row; ``agreed_at``/``agreed_by`` stay empty (the CRM records no agreement)."""
    stamps = frames.to_utc(pd.Series([at for at, _ in changes], dtype="object"), errors="coerce")
    ordered = sorted(((at, to_bool(value) is True) for at, (_, value) in zip(stamps, changes, strict=True)
                      if not pd.isna(at)), key=lambda change: change[0])
    rows: list[dict] = []
    opened, is_open = None, initially
    for at, ticked in ordered:
        if ticked and not is_open:
            opened, is_open = at, True
        elif not ticked and is_open:
            rows.append(_period(account_id, opened, at))
            opened, is_open = None, False
    if is_open:
        rows.append(_period(account_id, opened, None))
    return rows


def _period(account_id: str, added: pd.Timestamp | None, removed: pd.Timestamp | None) -> dict:
    key = added.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if added is not None else ""
    return {"target_account_id": f"{account_id}|{key}", "account_id": account_id, "added_at": added,
            "removed_at": removed, "agreed_at": None, "agreed_by": None}


def owner_assignments(account_id: str, changes: list[tuple[object, object]]) -> list[dict]:
    """``owner_assigned`` activity rows of one account from the history of its owner field.

    ``changes`` are (timestamp, new owner id); a change to no owner assigns nobody and is left out. Each
    row is keyed by account, time and owner, so re-reading the history updates rows, never doubles them.
    These rows end the routing-time clock when the CRM, not the write-back, assigned the owner."""
    return [
        {
            "activity_id": "owner:" + stable_id(account_id, at, str(owner).strip()),
            "account_id": account_id,
            "type": frames.OWNER_EVENTS[0],
            "occurred_at": at,
            "owner_id": str(owner).strip(),
            "subject": "Owner assigned",
        }
        for at, owner in changes
        if at is not None and owner is not None and str(owner).strip()
    ]


def stable_id(*parts: object) -> str:
    """A short stable id for rows the CRM gives none (intent signals, marketing events)."""
    text = "|".join("" if part is None else str(part) for part in parts)
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def conform(kind: str, rows: list[dict], raws: list[dict] | None = None) -> pd.DataFrame:
    """Rows (dicts keyed by frames columns) as a normalized frame with a ``raw`` column."""
    columns = frames.COLUMNS[kind]
    if not rows:
        table = frames.empty(kind)
        table["raw"] = pd.Series(dtype="object")
        return table
    table = pd.DataFrame([{column: row.get(column) for column in columns} for row in rows], dtype="object")
    for column in frames.TIMESTAMP_COLUMNS[kind]:
        table[column] = frames.to_utc(table[column].astype("object"), errors="coerce")
    for column in ("employees", "annual_revenue", "score", "amount", "priority"):
        if column in table:
            table[column] = pd.to_numeric(table[column], errors="coerce").astype(float)
    table["raw"] = raws if raws is not None else [None] * len(table)
    return table
