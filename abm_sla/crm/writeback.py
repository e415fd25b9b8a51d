"""Write newly routed MQAs back to the CRM: a task for the owner and the account's status (off by default).

For each routed MQA not yet written back (``mqas.writeback_done_at`` empty) with
a first-touch deadline, the writer creates a task for the owner, due at that
deadline, carrying the score's reasons, and sets the account's status field;
then ``writeback_done_at`` is set in the same transaction that holds the
write-back lock. The MQA's ``writeback_key`` is part of the task subject, and the
writer looks for a task with that subject before creating one, so a retry, a
re-run or a process that died between the CRM call and the record creates
nothing twice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import pandas as pd
import sqlalchemy as sa

from abm_sla.crm.config import AppConfig, WritebackConfig
from abm_sla.crm.hubspot.errors import AmbiguousWrite
from abm_sla.crm.hubspot.query import BATCH_READ_MAX
from abm_sla.crm.hubspot.source import HubSpotSource
from abm_sla.crm.salesforce.source import SalesforceSource
from abm_sla.crm.sync import build_source
from abm_sla.errors import SourceError
from abm_sla.warehouse import Warehouse, schema
from abm_sla.warehouse.view import CrmView

log = logging.getLogger(__name__)
LOCK = "crm-writeback"
HUBSPOT_TASK_TO_COMPANY = 192  # HUBSPOT_DEFINED association type id
COUNTS = ("pending", "created", "existing", "failed", "skipped")


@dataclass(frozen=True)
class WritebackItem:
    """One routed MQA to write back."""

    account_id: str
    trigger_at: dt.datetime
    owner_id: str | None
    due_at: dt.datetime
    total: int
    reasons: list[dict]
    key: str
    crm_account_id: str | None = None  # the account's id in the CRM written to (set by ``write_back``)
    note: str = ""  # a reassignment on breach says from whom and why
    kind: str = "mqa"  # "mqa" (routing) or "reassignment" (its audit row records the write-back)

    def subject(self, prefix: str) -> str:
        """The task subject; the key makes it unique and searchable."""
        return f"{prefix} [abm-sla {self.key}]"

    def description(self) -> str:
        lines = [f"Marketing qualified account: score {self.total} at {_iso(self.trigger_at)}."]
        lines += [f"- {r.get('rule')}: {r.get('points')} points ({r.get('count')} signals)" for r in self.reasons]
        lines.append(f"First touch due by {_iso(self.due_at)}.")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


class CrmWriter(Protocol):
    """What a CRM must do for the write-back."""

    name: str

    def ensure_task(self, item: WritebackItem, config: WritebackConfig) -> tuple[str, bool]:
        """The task's id and whether it was created now (False: it already existed)."""
        ...

    def set_status(self, account_id: str, config: WritebackConfig) -> None: ...


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _soql_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


class SalesforceWriter:
    """Tasks and the status field through a :class:`SalesforceSource`'s client (retries, re-login, quota)."""

    name = "salesforce"

    def __init__(self, source: SalesforceSource) -> None:
        self.source = source

    def _find(self, sf: Any, item: WritebackItem, subject: str) -> str | None:
        soql = (
            f"SELECT Id FROM Task WHERE WhatId = '{_soql_text(item.crm_account_id)}' "
            f"AND Subject = '{_soql_text(subject)}'"
        )
        records = sf.query(soql).get("records", [])
        return records[0]["Id"] if records else None

    def ensure_task(self, item: WritebackItem, config: WritebackConfig) -> tuple[str, bool]:
        subject = item.subject(config.subject_prefix)
        fields = {
            "Subject": subject,
            "WhatId": item.crm_account_id,
            "ActivityDate": item.due_at.astimezone(dt.UTC).date().isoformat(),
            "IsReminderSet": True,
            "ReminderDateTime": _iso(item.due_at),
            "Status": "Not Started",
            "Priority": config.priority,
            "Description": item.description(),
        }
        if item.owner_id:
            fields["OwnerId"] = item.owner_id

        def find_or_create(sf: Any) -> tuple[str, bool]:  # re-run whole on a retry: no duplicate after a 5xx
            found = self._find(sf, item, subject)
            return (found, False) if found else (sf.Task.create(fields)["id"], True)

        return self.source._call(find_or_create, f"write back task for {item.crm_account_id}")

    def set_status(self, account_id: str, config: WritebackConfig) -> None:
        self.source._call(
            lambda sf: sf.Account.update(account_id, {config.salesforce_status_field: config.status_value}),
            f"set status of {account_id}",
        )


class HubSpotWriter:
    """Tasks associated to the company and the company's status property, through a :class:`HubSpotSource`.

    Exactly once under retries and timeouts: the task is looked for among the company's associated
    tasks (v4 associations and a batch read: consistent at once, unlike the search index, which lags
    a few seconds), matched by the MQA's key in the subject. A create is never retried blindly: after
    an ambiguous failure (timeout, dropped connection, 5xx) the writer looks again first, since the
    POST may have succeeded server-side; only a create HubSpot certainly refused (429) is re-sent.
    """

    name = "hubspot"

    def __init__(self, source: HubSpotSource) -> None:
        self.source = source

    def _find(self, item: WritebackItem, subject: str) -> str | None:
        """The company's associated task whose subject carries this MQA's key."""
        task_ids = self.source.associations("companies", "tasks", [item.crm_account_id]).get(
            str(item.crm_account_id), []
        )
        marker = f"[abm-sla {item.key}]"
        for start in range(0, len(task_ids), BATCH_READ_MAX):
            body = {"inputs": [{"id": i} for i in task_ids[start : start + BATCH_READ_MAX]],
                    "properties": ["hs_task_subject"]}
            result = self.source._call(
                lambda c, b=body: c.crm.objects.batch_api.read(
                    "tasks", b, archived=False, _request_timeout=self.source.timeout, _preload_content=False
                ),
                "read the company's tasks",
            )
            for task in result.get("results", []):
                if marker in str((task.get("properties") or {}).get("hs_task_subject") or ""):
                    return str(task["id"])
        return None

    def _body(self, item: WritebackItem, config: WritebackConfig) -> dict:
        properties = {
            "hs_task_subject": item.subject(config.subject_prefix),
            "hs_task_body": item.description(),
            "hs_timestamp": _iso(item.due_at),
            "hs_task_status": "NOT_STARTED",
            "hs_task_priority": config.priority.upper(),
            "hs_task_type": "TODO",
        }
        if item.owner_id:
            properties["hubspot_owner_id"] = item.owner_id
        return {
            "properties": properties,
            "associations": [
                {
                    "to": {"id": item.crm_account_id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": HUBSPOT_TASK_TO_COMPANY}],
                }
            ],
        }

    def ensure_task(self, item: WritebackItem, config: WritebackConfig) -> tuple[str, bool]:
        subject = item.subject(config.subject_prefix)
        body = self._body(item, config)
        policy, tried = self.source.policy, False
        for attempt in range(policy.max_attempts):
            found = self._find(item, subject)
            if found:
                return found, tried  # created by an earlier attempt whose answer was lost, or long ago
            tried = True
            try:
                created = self.source._call(
                    lambda c: c.crm.objects.tasks.basic_api.create(
                        body, _request_timeout=self.source.timeout, _preload_content=False
                    ),
                    f"write back task for {item.crm_account_id}",
                    idempotent=False,
                )
                return str(created["id"]), True
            except AmbiguousWrite as error:
                log.warning("write-back of %s: %s; looking for the task before trying again",
                            item.account_id, error)
                policy.sleep(policy.delay(attempt, None))
        raise SourceError(f"HubSpot write-back of a task for {item.crm_account_id} gave up after "
                          f"{policy.max_attempts} attempts")

    def set_status(self, account_id: str, config: WritebackConfig) -> None:
        body = {"properties": {config.hubspot_status_property: config.status_value}}
        self.source._call(
            lambda c: c.crm.companies.basic_api.update(
                account_id, body, _request_timeout=self.source.timeout, _preload_content=False
            ),
            f"set status of {account_id}",
        )


def make_writer(source: SalesforceSource | HubSpotSource) -> CrmWriter:
    """The writer for a built source (``abm_sla.crm.sync.build_source``)."""
    if isinstance(source, SalesforceSource):
        return SalesforceWriter(source)
    if isinstance(source, HubSpotSource):
        return HubSpotWriter(source)
    raise SourceError(f"write-back needs a Salesforce or HubSpot source, not {type(source).__name__}")


# -- the stage --------------------------------------------------------------------------------------------


def _pending_query(now: dt.datetime, max_age: dt.timedelta) -> sa.Select:
    m, c = schema.mqas, schema.sla_clocks
    return (
        sa.select(m.c.account_id, m.c.trigger_at, m.c.owner_id, m.c.total, m.c.reasons, m.c.writeback_key, c.c.due_at)
        .join(c, sa.and_(c.c.account_id == m.c.account_id, c.c.trigger_at == m.c.trigger_at,
                         c.c.clock == "first_touch"))
        .where(
            m.c.writeback_key.is_not(None),
            m.c.writeback_done_at.is_(None),
            m.c.ended_at.is_(None),
            m.c.routed_at.is_not(None),
            m.c.routed_at >= now - max_age,
            c.c.due_at.is_not(None),
        )
        .order_by(m.c.routed_at, m.c.account_id)
    )


def pending_writebacks(warehouse: Warehouse, now: dt.datetime, config: WritebackConfig) -> list[WritebackItem]:
    """Routed, open MQAs with a first-touch deadline, not yet written back, routed within ``max_age_hours``."""
    query = _pending_query(now, dt.timedelta(hours=config.max_age_hours))
    with warehouse.engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        WritebackItem(
            account_id=row.account_id,
            trigger_at=row.trigger_at,
            owner_id=row.owner_id,
            due_at=row.due_at,
            total=int(row.total),
            reasons=row.reasons if isinstance(row.reasons, list) else json.loads(row.reasons or "[]"),
            key=row.writeback_key,
        )
        for row in rows
    ]


def _reassigned_query(now: dt.datetime, max_age: dt.timedelta) -> sa.Select:
    r, m, c = schema.reassignments, schema.mqas, schema.sla_clocks
    return (
        sa.select(r.c.account_id, r.c.trigger_at, r.c.to_owner_id, r.c.from_owner_id, r.c.clock, r.c.reassigned_at,
                  r.c.writeback_key, m.c.total, m.c.reasons, c.c.due_at)
        .join(m, sa.and_(m.c.account_id == r.c.account_id, m.c.trigger_at == r.c.trigger_at))
        .join(c, sa.and_(c.c.account_id == r.c.account_id, c.c.trigger_at == r.c.trigger_at,
                         c.c.clock == "first_touch"))
        .where(r.c.status == "reassigned", r.c.writeback_key.is_not(None), r.c.writeback_done_at.is_(None),
               m.c.ended_at.is_(None), r.c.reassigned_at >= now - max_age, c.c.due_at.is_not(None))
        .order_by(r.c.reassigned_at, r.c.account_id)
    )


def pending_reassignments(warehouse: Warehouse, now: dt.datetime, config: WritebackConfig) -> list[WritebackItem]:
    """MQAs reassigned on a breach, not yet written back: a task for the new owner, due at the fresh
    first-touch deadline, saying from whom and why."""
    with warehouse.engine.connect() as connection:
        rows = connection.execute(_reassigned_query(now, dt.timedelta(hours=config.max_age_hours))).all()
    return [
        WritebackItem(
            account_id=row.account_id, trigger_at=row.trigger_at, owner_id=row.to_owner_id, due_at=row.due_at,
            total=int(row.total), key=row.writeback_key, kind="reassignment",
            reasons=row.reasons if isinstance(row.reasons, list) else json.loads(row.reasons or "[]"),
            note=f"Reassigned from {row.from_owner_id or 'no owner'} at {_iso(row.reassigned_at)}: "
                 f"{row.clock.replace('_', ' ')} missed.",
        )
        for row in rows
    ]


def _table(item: WritebackItem) -> sa.Table:
    return schema.reassignments if item.kind == "reassignment" else schema.mqas


def _still_pending(connection: sa.Connection, item: WritebackItem) -> bool:
    m = _table(item)
    done = connection.execute(
        sa.select(m.c.writeback_done_at).where(m.c.account_id == item.account_id, m.c.trigger_at == item.trigger_at)
    ).scalar_one_or_none()
    return done is None


def record_done(connection: sa.Connection, item: WritebackItem, now: dt.datetime) -> None:
    """Mark the MQA (or its reassignment) written back (inside the caller's transaction)."""
    m = _table(item)
    connection.execute(
        m.update()
        .where(m.c.account_id == item.account_id, m.c.trigger_at == item.trigger_at, m.c.writeback_done_at.is_(None))
        .values(writeback_done_at=now)
    )


def write_back(
    warehouse: Warehouse,
    writer: CrmWriter,
    config: WritebackConfig,
    now: dt.datetime,
    *,
    on_done: Callable[[sa.Connection, WritebackItem, dt.datetime], None] = record_done,
) -> dict[str, int]:
    """Write every pending MQA (and reassignment on breach) back; returns counts ``pending, created, existing,
    failed``.

    Account and owner ids are translated to the written CRM's own (several CRMs are
    unified by domain, :class:`~abm_sla.warehouse.view.CrmView`); an MQA whose
    company that CRM does not hold is ``skipped`` (left pending, it ages out).
    Each MQA is handled in its own transaction under the write-back lock: re-check
    it is still pending, find or create the task, set the status, record success.
    A CRM refusal (:class:`SourceError`) leaves that MQA pending for the next run.
    Disabled (the default): nothing is read or written.
    """
    counts = dict.fromkeys(COUNTS, 0)
    if not config.enabled:
        return counts
    pending = pending_writebacks(warehouse, now, config) + pending_reassignments(warehouse, now, config)
    items = in_crm_ids(pending, CrmView(warehouse), writer.name)
    counts["pending"], counts["skipped"] = len(pending), len(pending) - len(items)
    for item in items:
        try:
            with warehouse.engine.begin() as connection:
                warehouse.lock_stage(connection, LOCK)
                if not _still_pending(connection, item):
                    continue
                _, created = writer.ensure_task(item, config)
                writer.set_status(item.crm_account_id, config)
                on_done(connection, item, now)
        except SourceError as error:
            counts["failed"] += 1
            log.warning("write-back of %s to %s failed: %s", item.account_id, writer.name, error)
            continue
        counts["created" if created else "existing"] += 1
    return counts


def write_back_configured(
    warehouse: Warehouse, app_config: AppConfig, now: dt.datetime, **build_options: Any
) -> dict[str, int]:
    """:func:`write_back` to the CRM ``abm-sla.yaml`` names (``writeback.target``, else the owner's record)."""
    if not app_config.writeback.enabled:
        return dict.fromkeys(COUNTS, 0)
    source = build_source(app_config.writeback_target(), app_config, **build_options)
    return write_back(warehouse, make_writer(source), app_config.writeback, now)


def in_crm_ids(items: list[WritebackItem], view: CrmView, crm: str) -> list[WritebackItem]:
    """``items`` whose company ``crm`` holds, with that CRM's account id and owner id (None if not a user there)."""
    accounts, users = view.source_ids(crm)
    return [
        replace(item, crm_account_id=accounts[item.account_id], owner_id=users.get(item.owner_id))
        for item in items
        if item.account_id in accounts.index
    ]


def mqas_written_back(warehouse: Warehouse) -> pd.DataFrame:
    """``account_id, trigger_at, writeback_key, writeback_done_at`` of every MQA (for reports and tests)."""
    m = schema.mqas
    columns = [m.c.account_id, m.c.trigger_at, m.c.writeback_key, m.c.writeback_done_at]
    with warehouse.engine.connect() as connection:
        rows = connection.execute(sa.select(*columns)).all()
    return pd.DataFrame(rows, columns=[column.name for column in columns])
