"""Breach alert messages (pure): one per escalation level, recipients gathered, sent ones and old ones left out."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain import alerts

NOW = pd.Timestamp("2026-03-10T15:00:00Z")
TRIGGER = pd.Timestamp("2026-03-05T10:00:00Z")


def escalation(account: str, level: int, to: str, opened: pd.Timestamp, clock: str = "first_touch") -> dict:
    return {"account_id": account, "trigger_at": TRIGGER, "clock": clock, "level": level, "to_user_id": to,
            "opened_at": opened, "owner_id": "U1", "steps_taken": "level 1: revops told" if level > 1 else None,
            "resolution": "make contact and log the call"}


ESCALATIONS = pd.DataFrame([
    escalation("A1", 1, "R1", NOW - pd.Timedelta(hours=3)),
    escalation("A1", 1, "R2", NOW - pd.Timedelta(hours=3)),  # the same level, a second recipient
    escalation("A1", 2, "M1", NOW - pd.Timedelta(hours=1)),
    escalation("A2", 1, "R1", NOW - pd.Timedelta(days=3)),  # too old to page anyone
    escalation("A3", 1, "R1", NOW + pd.Timedelta(hours=1)),  # opens after the wall clock (a future as of)
])
ACCOUNTS = pd.DataFrame({"account_id": ["A1", "A2"], "name": ["Acme", "Globex"], "tier": ["Tier 1", None]})
USERS = pd.DataFrame({"user_id": ["U1", "R1", "R2", "M1"], "name": ["Olive Owner", "Rev Ops", "Rae", "Max"]})


def no_log() -> pd.DataFrame:
    return pd.DataFrame(columns=alerts.ALERT_KEY)


def test_one_alert_per_level_with_recipients_owner_and_steps():
    due = alerts.due_alerts(ESCALATIONS, no_log(), NOW, pd.Timedelta(hours=24))
    sent = alerts.escalation_alerts(due, ACCOUNTS, USERS, "http://ui/run/1")
    assert [(alert.account_id, alert.level) for alert in sent] == [("A1", 1), ("A1", 2)]
    first, second = sent
    assert first.subject == "SLA escalation level 1: first touch missed on Acme (A1, Tier 1)"
    assert "To: Rev Ops (R1), Rae (R2)" in first.body
    assert "Owed by Olive Owner (U1): make contact and log the call." in first.body
    assert "Steps already taken" not in first.body and "Steps already taken: level 1: revops told" in second.body
    assert first.body.endswith("Run: http://ui/run/1")


def test_levels_already_logged_or_too_old_are_left_out():
    logged = pd.DataFrame([{"account_id": "A1", "trigger_at": TRIGGER, "clock": "first_touch", "level": 1,
                            "owner_id": "U1"}])
    due = alerts.due_alerts(ESCALATIONS, logged, NOW, pd.Timedelta(hours=24))
    assert due[["account_id", "level"]].drop_duplicates().values.tolist() == [["A1", 2]]
    assert alerts.due_alerts(ESCALATIONS, no_log(), NOW, pd.Timedelta(days=7))["account_id"].tolist() == [
        "A2", "A1", "A1", "A1"]


def test_the_digest_lists_yesterdays_levels_and_says_so_when_there_are_none():
    day = alerts.digest_day(NOW)
    digest = alerts.digest_alert(ESCALATIONS.assign(opened_at=day - pd.Timedelta(hours=2)), ACCOUNTS, USERS, day, None)
    assert digest.subject == "SLA escalations digest 2026-03-09: 4 opened"
    assert digest.key == ("", day, alerts.DIGEST_CLOCK, 0, "")
    assert "- Acme (A1, Tier 1), owner Olive Owner (U1)" in digest.body
    assert "- Globex (A2, Tier 3)" in digest.body  # no tier is Tier 3
    assert "- A3, owner Olive Owner (U1)" in digest.body  # an account the warehouse does not know: its id
    quiet = alerts.digest_alert(ESCALATIONS, ACCOUNTS, USERS, day - pd.Timedelta(days=30), None)
    assert quiet.subject.endswith(": 0 opened") and "No escalation opened." in quiet.body
