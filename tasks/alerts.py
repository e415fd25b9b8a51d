"""Breach alerts: each new escalation level, and the daily digest, through a Prefect notification block.

One task after the SLA stage (never per escalation). What to send is :mod:`abm_sla.domain.alerts`; what was
sent is the warehouse's ``alert_log`` (:mod:`abm_sla.warehouse.alert_log`), claimed before each send,
so a retried task or a second run sends nothing twice. A message that fails is logged in one line and
sent by the next run; the SLA run itself never fails for an alert.
"""

from __future__ import annotations

import pandas as pd

from abm_sla.domain import alerts
from abm_sla.services.config_files import load_policy
from abm_sla.warehouse import alert_log, schema
from tasks.common import (
    in_prefect,
    prefect_api_configured,
    retry_transient,
    run_logger,
    task,
    utc_now,
    warehouse,
)
from tasks.observe import notify_block


@task(name="send-alerts", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_transient)
def send_alerts(db_url: str, policy_path: str | None, run_id: str = "") -> dict:
    """Send the escalation levels not alerted yet (and the day's digest) to the policy's ``alerts.block``."""
    settings = load_policy(policy_path).alerts
    if not settings.block:
        return {}
    if not (in_prefect() or prefect_api_configured()):
        run_logger().warning("alerts not sent: %s is a Prefect block and no Prefect API is configured",
                             settings.block)
        return {"block": settings.block, "sent": 0, "failed": 0}
    store, now = warehouse(db_url), pd.Timestamp(utc_now())
    pending = _pending(store, settings, now, _link(run_id))
    sent, failed = 0, []
    for alert in pending:
        if not alert_log.claim(store, alert, settings.block, run_id, now.to_pydatetime()):
            continue  # another run (or an earlier try of this one) has it
        try:
            notify_block(settings.block, alert.body, subject=alert.subject)
        except Exception as error:  # a failed send is retried by the next run, never the whole stage
            alert_log.release(store, alert, settings.block)
            failed.append(f"{alert.subject}: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
            continue
        alert_log.mark_sent(store, alert, settings.block, utc_now())
        sent += 1
    logger = run_logger()
    for line in failed:
        logger.error("alert not sent to %s (the next run tries again): %s", settings.block, line)
    if sent:
        logger.info("%d alert(s) sent to %s", sent, settings.block)
    return {"block": settings.block, "sent": sent, "failed": len(failed)}


def _pending(store, settings, now: pd.Timestamp, link: str) -> list[alerts.Alert]:
    """The escalation levels (and the digest) not yet logged on the block, oldest first."""
    table = schema.escalations
    since = now - max(pd.Timedelta(hours=settings.max_age_hours), 2 * alerts.DAY)
    escalations = store.read_table(table, table.c.opened_at > since.to_pydatetime())
    logged = alert_log.logged(store, settings.block)
    accounts = store.read_kind("accounts", accounts=sorted(set(escalations["account_id"])),
                               columns=["account_id", "name", "tier"])
    users = store.read_kind("users", columns=["user_id", "name"])
    pending = []
    if settings.each:
        due = alerts.due_alerts(escalations, logged, now, pd.Timedelta(hours=settings.max_age_hours))
        pending += alerts.escalation_alerts(due, accounts, users, link)
    day = alerts.digest_day(now)
    digest_logged = (logged["clock"] == alerts.DIGEST_CLOCK) & (logged["trigger_at"] == day)
    if settings.digest and not digest_logged.any():
        pending.append(alerts.digest_alert(escalations, accounts, users, day, link))
    return pending


def _link(run_id: str) -> str:
    """The Prefect UI page of this flow run (when a UI URL is configured) and the warehouse run id."""
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_UI_URL

    url = flow_run.ui_url if in_prefect() and PREFECT_UI_URL.value() else None
    warehouse_run = f"warehouse run {run_id}" if run_id else ""
    return " — ".join(part for part in (url, warehouse_run) if part)
