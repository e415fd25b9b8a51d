"""The Salesforce objects read (fields, cursor field, kind), SOQL text and times, and a Bulk 2.0 read's state."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from simple_salesforce import Salesforce

from abm_sla.crm.mapping import SalesforceConfig

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
