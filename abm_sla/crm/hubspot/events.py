"""HubSpot marketing touches: event analytics (page views, form submissions, webinars) and marketing e-mail
events matched to contacts by address."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

from abm_sla.crm.base import CursorStore, Page, Quarantined
from abm_sla.crm.hubspot.errors import EntitlementError
from abm_sla.crm.hubspot.query import BATCH_READ_MAX, EMAIL_EVENTS_MAX, cursor_text, epoch_ms, parse_time
from abm_sla.crm.mapping import conform

log = logging.getLogger(__name__)


class MarketingEvents:
    """The marketing-event half of :class:`~abm_sla.crm.hubspot.source.HubSpotSource` (its config, calls and
    record mapping)."""

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
