"""Breach alerts reach people: each new escalation level posted once through a notification block, a
failed post sent by the next run and nothing twice, old breaches paging nobody, and the daily digest."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import yaml

from abm_sla.domain.policy import DEFAULT_PATH
from abm_sla.warehouse import Warehouse, schema
from tests.flows.conftest import run_live

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]

AS_OF = pd.Timestamp("2026-01-20T12:00:00Z")
BLOCK = "custom-webhook/sla-alerts"


@pytest.fixture
def alert_block(chat):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    CustomWebhookNotificationBlock(name="alerts", url=chat.url,
                                   json_data={"text": "{{body}}", "title": "{{subject}}"}).save(
        BLOCK.split("/")[1], overwrite=True)
    return chat


def alerting_policy(tmp_path, **alerts) -> str:
    policy = yaml.safe_load(DEFAULT_PATH.read_text())
    policy["alerts"] = {"block": BLOCK, **alerts}
    path = tmp_path / "sla-alerts.yaml"
    path.write_text(yaml.safe_dump(policy))
    return str(path)


def wall_clock(monkeypatch, moment: pd.Timestamp) -> None:
    monkeypatch.setattr("tasks.alerts.utc_now", lambda: moment.to_pydatetime())


def run(env_db, crm_export, policy: str, as_of: pd.Timestamp = AS_OF) -> dict:
    return run_live(env_db, as_of=as_of.isoformat(), source="files", path=str(crm_export), policy_path=policy)


def history(env_db, crm_export, policy: str) -> dict:
    """A run a week before :data:`AS_OF` (its MQAs routed then), and the run as of it (their clocks missed)."""
    first = run(env_db, crm_export, policy, AS_OF - pd.Timedelta(days=7))
    return {"first": first, "last": run(env_db, crm_export, policy)}


def escalation_levels(db_url: str, since: pd.Timestamp) -> pd.DataFrame:
    rows = Warehouse(db_url).read_table(schema.escalations)
    rows = rows[rows["opened_at"] > since]
    return rows.drop_duplicates(["account_id", "trigger_at", "clock", "level", "owner_id"])


def sent(runs: dict) -> int:
    return sum(summary["alerts"]["sent"] for summary in runs.values())


def test_each_new_escalation_level_is_posted_once_with_who_owes_what(crm_export, env_db, tmp_path, alert_block,
                                                                      monkeypatch):
    wall_clock(monkeypatch, AS_OF + pd.Timedelta(minutes=5))
    policy = alerting_policy(tmp_path, max_age_hours=24 * 30)
    runs = history(env_db, crm_export, policy)
    levels = escalation_levels(env_db, AS_OF - pd.Timedelta(days=30))
    assert len(levels) > 0, "the sample CRM should have escalations by mid-January"
    assert sent(runs) == len(levels) == len(alert_block.received)
    assert runs["last"]["alerts"]["failed"] == 0
    titles = [post["title"] for post in alert_block.received]
    assert len(set(titles)) == len(titles)
    last = levels.sort_values(["opened_at", "account_id"]).iloc[-1]
    post = next(post for post in alert_block.received
                if f"({last.account_id}, Tier " in post["title"] and f"level {last.level}:" in post["title"])
    assert post["title"].startswith(f"SLA escalation level {last.level}: {last.clock.replace('_', ' ')} missed on ")
    assert "Owed by " in post["text"] and "To: " in post["text"]
    assert f"warehouse run {runs['last']['run_id']}" in post["text"]

    again = run(env_db, crm_export, policy)  # the same run again: nothing new to say
    assert again["alerts"]["sent"] == 0
    assert len(alert_block.received) == len(levels)


def test_a_failed_post_is_sent_by_the_next_run_and_none_twice(crm_export, env_db, tmp_path, alert_block,
                                                              monkeypatch):
    wall_clock(monkeypatch, AS_OF + pd.Timedelta(minutes=5))
    policy = alerting_policy(tmp_path, max_age_hours=24 * 30)
    run(env_db, crm_export, policy, AS_OF - pd.Timedelta(days=7))
    alert_block.refuse = 1
    refused = run(env_db, crm_export, policy)
    levels = len(escalation_levels(env_db, AS_OF - pd.Timedelta(days=30)))
    assert refused["alerts"]["failed"] == 1 and len(alert_block.received) == levels - 1
    again = run(env_db, crm_export, policy)
    assert again["alerts"] == {"block": BLOCK, "sent": 1, "failed": 0}
    titles = [post["title"] for post in alert_block.received]
    assert len(titles) == levels == len(set(titles))


def test_old_breaches_page_nobody(crm_export, env_db, tmp_path, alert_block, monkeypatch):
    """A run over last month's data (a backfill), or alerts turned on over old breaches: nothing is posted."""
    wall_clock(monkeypatch, AS_OF + pd.Timedelta(days=2))
    runs = history(env_db, crm_export, alerting_policy(tmp_path))  # default max_age_hours: 24
    assert len(escalation_levels(env_db, AS_OF - pd.Timedelta(days=30))) > 0
    assert sent(runs) == 0 and alert_block.received == []


def test_the_digest_is_posted_once_a_day_and_alerts_outlive_an_undo(crm_export, env_db, tmp_path, alert_block,
                                                                     monkeypatch):
    from abm_sla.warehouse import undo

    now = AS_OF + pd.Timedelta(minutes=5)
    wall_clock(monkeypatch, now)
    policy = alerting_policy(tmp_path, mode="digest")
    runs = history(env_db, crm_export, policy)
    assert sent(runs) == 1
    day = now.normalize()
    opened = escalation_levels(env_db, day - pd.Timedelta(days=1))
    opened = opened[opened["opened_at"] < day]
    [post] = alert_block.received
    assert post["title"] == f"SLA escalations digest {(day - pd.Timedelta(days=1)).date()}: {len(opened)} opened"
    assert post["text"].count("\n- ") == len(opened)
    # a message cannot be taken back: undoing the run and running it again posts nothing twice
    undo.undo_run(Warehouse(env_db), runs["last"]["run_id"], dt.datetime.now(dt.UTC))
    assert run(env_db, crm_export, policy)["alerts"]["sent"] == 0
    wall_clock(monkeypatch, now + pd.Timedelta(days=1))
    assert run(env_db, crm_export, policy)["alerts"]["sent"] == 1
    assert len(alert_block.received) == 2
