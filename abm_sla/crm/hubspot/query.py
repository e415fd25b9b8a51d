"""The HubSpot objects read (kinds, properties, batch and search caps) and the times of search filters and
cursors."""

from __future__ import annotations

import datetime as dt
from typing import Any

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
HISTORY_BATCH_MAX = 50
SEARCH_LIMIT_MAX = 200  # search ``limit`` maximum (CRM search guide)
ASSOCIATION_INPUTS_MAX = 1000  # v4 association batch read inputs (changelog 2025-02-10)


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
