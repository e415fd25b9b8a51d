"""HubSpot records → frames: search results of one object become pages of conformed rows (companies with their
owner, status, target account list and intent history; engagements as sales touches)."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from abm_sla.crm.base import Page, Quarantined
from abm_sla.crm.files.validation import normalize_domain
from abm_sla.crm.hubspot.query import HISTORY_BATCH_MAX, OWNER_PROPERTY, SUBJECT_PROPERTY, SUBTYPE_PROPERTY
from abm_sla.crm.mapping import conform, list_periods, owner_assignments, stable_id, to_bool, to_float


class RecordMapping:
    """The mapping half of :class:`~abm_sla.crm.hubspot.source.HubSpotSource` (its config, calls, associations
    and owners)."""

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
                    "logged_at": r.get("createdAt"),  # hs_createdate: entered in the CRM (crm_hygiene)
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
