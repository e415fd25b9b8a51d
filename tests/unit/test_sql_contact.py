"""The ``sql_contact`` clock (issue 26, ABM template): an accepted MQA contacted within 4 business hours."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain.policy import DEFAULT_PATH, Window
from abm_sla.domain.sla import evaluate_clocks
from abm_sla.services.config_files import load_policy

DEFAULT = load_policy()
DEMO = load_policy(DEFAULT_PATH.parent / "presets" / "demo.yaml")
SQL = DEFAULT.model_copy(update={"clocks": DEFAULT.clocks.model_copy(
    update={"sql_contact": Window(business_hours=4)})})
USERS = pd.DataFrame([("U1", "sales", None, "UTC", "GB", True)],
                     columns=["user_id", "role", "manager_id", "time_zone", "country", "active"])
ACCEPTED = ("A", "accepted", "2026-03-03T10:00Z")  # a Tuesday, in business hours: due 14:00


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


def mqa(ended: str | None = None) -> pd.DataFrame:
    return pd.DataFrame([{"account_id": "A", "trigger_at": ts("2026-03-02T08:00Z"),
                          "routed_at": ts("2026-03-02T10:00Z"), "tier": 1, "owner_id": "U1",
                          "ended_at": ts(ended) if ended else pd.NaT}])


def changes(*rows: tuple) -> pd.DataFrame:
    frame = pd.DataFrame([(*row, None) for row in rows], columns=["account_id", "status", "changed_at", "reason"])
    return frame.assign(changed_at=pd.to_datetime(frame["changed_at"], utc=True, format="ISO8601"))


def calls(*moments: str) -> pd.DataFrame:
    frame = pd.DataFrame([("A", "call", at) for at in moments], columns=["account_id", "type", "occurred_at"])
    return frame.assign(occurred_at=pd.to_datetime(frame["occurred_at"], utc=True), owner_id="U1")


def sql_rows(status: pd.DataFrame, activities: pd.DataFrame, as_of: str = "2026-04-30T00:00Z", policy=SQL,
             frame=None) -> list[tuple]:
    result = evaluate_clocks(mqa() if frame is None else frame, activities, status, USERS, policy, ts(as_of))
    part = result[result["clock"] == "sql_contact"]
    return [(r.status, r.due_at, None if pd.isna(r.met_at) else r.met_at) for r in part.itertuples()]


def test_off_by_default_and_on_in_the_demo() -> None:
    assert DEFAULT.clocks.sql_contact is None
    assert sql_rows(changes(ACCEPTED), calls("2026-03-03T11:00Z"), policy=DEFAULT) == []
    assert (DEMO.clocks.sql_contact.kind, DEMO.clocks.sql_contact.amount) == ("business_hours", 4)


def test_a_contact_exactly_at_due_is_met_a_second_later_missed() -> None:
    due = ts("2026-03-03T14:00Z")
    assert sql_rows(changes(ACCEPTED), calls("2026-03-03T14:00Z")) == [("met", due, due)]
    assert sql_rows(changes(ACCEPTED), calls("2026-03-03T14:00:01Z"))[0][0] == "missed"


def test_a_touch_before_acceptance_does_not_count() -> None:
    assert sql_rows(changes(ACCEPTED), calls("2026-03-03T09:59Z"), as_of="2026-03-03T14:00:01Z") == [
        ("missed", ts("2026-03-03T14:00Z"), None)]


def test_pending_until_due_and_business_hours_carry_over_the_night() -> None:
    assert sql_rows(changes(ACCEPTED), calls(), as_of="2026-03-03T14:00Z")[0][0] == "pending"
    late = changes(("A", "accepted", "2026-03-03T16:00Z"))
    assert sql_rows(late, calls())[0][1] > ts("2026-03-04T00:00Z")  # three hours on into Wednesday


def test_no_acceptance_or_acceptance_after_the_episode_no_clock() -> None:
    assert sql_rows(changes(("A", "rejected", "2026-03-03T10:00Z")), calls("2026-03-03T11:00Z")) == []
    assert sql_rows(changes(ACCEPTED), calls(), frame=mqa(ended="2026-03-03T09:00Z")) == []
    assert sql_rows(changes(), calls()) == []
