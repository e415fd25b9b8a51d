"""Which breach alerts went out, per notification block: claimed before sending, marked sent after.

A claim is an insert of the alert's key (:data:`abm_sla.domain.alerts.ALERT_KEY` and the channel) with status
``sending``; a second claim of the same key fails on the primary key, so two runs (or a retried task)
never send one alert twice. A send that fails gives its claim back; a process killed between the send
and the mark leaves ``sending``, which is never sent again (at most once: a duplicate page at 3 a.m.
is worse than the one lost message the run's log names).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from abm_sla.domain.alerts import ALERT_KEY, Alert
from abm_sla.warehouse import schema
from abm_sla.warehouse.store import Warehouse

SENDING, SENT = "sending", "sent"


def logged(store: Warehouse, channel: str) -> pd.DataFrame:
    """The alert keys claimed or sent on ``channel`` (with their status)."""
    table = schema.alert_log
    return store.select_frame([*(table.c[name] for name in ALERT_KEY), table.c.status], [table.c.channel == channel])


def claim(store: Warehouse, alert: Alert, channel: str, run_id: str, at: dt.datetime) -> bool:
    """Claim ``alert`` on ``channel`` before sending it; False when it was claimed already."""
    row = {**_key(alert, channel), "status": SENDING, "claimed_at": at, "sent_at": None, "run_id": run_id or None}
    try:
        with store.engine.begin() as connection:
            connection.execute(schema.alert_log.insert().values(row))
    except sa.exc.IntegrityError:
        return False
    return True


def mark_sent(store: Warehouse, alert: Alert, channel: str, at: dt.datetime) -> None:
    with store.engine.begin() as connection:
        connection.execute(_where(schema.alert_log.update(), alert, channel).values(status=SENT, sent_at=at))


def release(store: Warehouse, alert: Alert, channel: str) -> None:
    """Give a claim back after a failed send, so the next run tries again."""
    with store.engine.begin() as connection:
        connection.execute(_where(schema.alert_log.delete(), alert, channel))


def _key(alert: Alert, channel: str) -> dict:
    return {"account_id": alert.account_id, "trigger_at": alert.trigger_at.to_pydatetime(), "clock": alert.clock,
            "level": alert.level, "owner_id": alert.owner_id, "channel": channel}


def _where(statement, alert: Alert, channel: str):
    table = schema.alert_log
    return statement.where(*(table.c[name] == value for name, value in _key(alert, channel).items()))
