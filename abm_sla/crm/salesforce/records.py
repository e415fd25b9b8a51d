"""Salesforce records → frames: flat REST/Bulk records of one object become a page of conformed rows,
deletes and quarantined records (amounts in the corporate currency of a multi-currency org)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from abm_sla.crm.base import Page, Quarantined
from abm_sla.crm.files.validation import normalize_domain
from abm_sla.crm.mapping import SalesforceConfig, TierMapper, conform, stable_id, to_bool, to_float
from abm_sla.crm.salesforce.query import ObjectSpec

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


def _is_contact(record: dict) -> bool:
    """WhoId is a Contact (not a Lead): by ``Who.Type``, else by the 003 key prefix."""
    if record.get("Who.Type"):
        return record["Who.Type"] == "Contact"
    return str(record.get("WhoId") or "").startswith("003")
