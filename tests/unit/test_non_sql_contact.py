"""The ``non_sql_contact`` clock (issue 26, ABM template): non-SQL leads contacted within 2 business days."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain.policy import DEFAULT_PATH, Window
from abm_sla.domain.sla import evaluate_clocks
from abm_sla.services.config_files import load_policy

DEFAULT = load_policy()
DEMO = load_policy(DEFAULT_PATH.parent / "presets" / "demo.yaml")
TEMPLATE = load_policy(DEFAULT_PATH.parent / "presets" / "abm-template.yaml")
NON_SQL = DEFAULT.model_copy(update={"clocks": DEFAULT.clocks.model_copy(
    update={"non_sql_contact": Window(business_hours=16)})})
USERS = pd.DataFrame([("U1", "sales", None, "UTC", "GB", True), ("NY", "sales", None, "America/New_York", "US", True)],
                     columns=["user_id", "role", "manager_id", "time_zone", "country", "active"])
ROUTED = "2026-03-03T10:00Z"  # a Tuesday, in business hours: two business days on = Thursday 10:00


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


def mqa(routed: str | None = ROUTED, owner: str = "U1", ended: str | None = None,
        reassigned: str | None = None) -> pd.DataFrame:
    return pd.DataFrame([{"account_id": "A", "trigger_at": ts("2026-03-03T08:00Z"),
                          "routed_at": ts(routed) if routed else pd.NaT, "tier": 2, "owner_id": owner,
                          "ended_at": ts(ended) if ended else pd.NaT,
                          "reassigned_at": ts(reassigned) if reassigned else pd.NaT}])


def changes(*rows: tuple) -> pd.DataFrame:
    frame = pd.DataFrame([(*row, None) for row in rows], columns=["account_id", "status", "changed_at", "reason"])
    return frame.assign(changed_at=pd.to_datetime(frame["changed_at"], utc=True, format="ISO8601"))


def calls(*moments: str) -> pd.DataFrame:
    frame = pd.DataFrame([("A", "call", at) for at in moments], columns=["account_id", "type", "occurred_at"])
    return frame.assign(occurred_at=pd.to_datetime(frame["occurred_at"], utc=True), owner_id="U1")


def rows(activities: pd.DataFrame, status: pd.DataFrame | None = None, as_of: str = "2026-04-30T00:00Z",
         policy=NON_SQL, frame: pd.DataFrame | None = None) -> list[tuple]:
    status = changes() if status is None else status
    result = evaluate_clocks(mqa() if frame is None else frame, activities, status, USERS, policy, ts(as_of))
    part = result[result["clock"] == "non_sql_contact"]
    return [(r.status, r.due_at, None if pd.isna(r.met_at) else r.met_at) for r in part.itertuples()]


def test_off_by_default_on_in_the_demo_and_the_abm_template() -> None:
    assert DEFAULT.clocks.non_sql_contact is None
    assert rows(calls("2026-03-03T11:00Z"), policy=DEFAULT) == []
    for preset in (DEMO, TEMPLATE):
        assert (preset.clocks.non_sql_contact.kind, preset.clocks.non_sql_contact.amount) == ("business_hours", 16)


def test_a_contact_exactly_two_business_days_on_is_met_a_second_later_missed() -> None:
    due = ts("2026-03-05T10:00Z")
    assert rows(calls("2026-03-05T10:00Z")) == [("met", due, due)]
    assert rows(calls("2026-03-05T10:00:01Z")) == [("missed", due, ts("2026-03-05T10:00:01Z"))]


def test_pending_until_due_then_missed() -> None:
    assert rows(calls(), as_of="2026-03-05T10:00Z")[0][0] == "pending"
    assert rows(calls(), as_of="2026-03-05T10:00:01Z")[0][0] == "missed"


def test_the_window_skips_the_weekend_and_runs_in_the_owners_zone() -> None:
    friday = mqa(routed="2026-03-06T16:00Z")  # Friday 16:00 in London: 1 h Friday, 8 h Monday, 7 h Tuesday
    assert rows(calls(), frame=friday)[0][1] == ts("2026-03-10T16:00Z")
    # 10:00 UTC is 05:00 in New York (before opening): two business days from Tuesday 09:00 local (14:00 UTC)
    assert rows(calls(), frame=mqa(owner="NY"))[0][1] == ts("2026-03-04T22:00Z")


def test_an_accepted_mqa_is_a_sql_not_a_non_sql_lead() -> None:
    accepted = changes(("A", "accepted", "2026-03-03T12:00Z"))
    assert rows(calls(), accepted) == []
    # accepted after as_of: still a non-SQL lead then
    assert rows(calls(), accepted, as_of="2026-03-03T11:00Z")[0][0] == "pending"
    # a rejection does not make it a SQL: the lead is still owed its contact
    assert rows(calls(), changes(("A", "rejected", "2026-03-03T12:00Z")))[0][0] == "missed"


def test_missing_inputs_no_routing_no_row_and_a_reassignment_restarts_the_clock() -> None:
    assert rows(calls("2026-03-04T10:00Z"), frame=mqa(routed=None)) == []
    moved = mqa(reassigned="2026-03-09T10:00Z")  # Monday: due Wednesday 10:00; an earlier touch does not count
    assert rows(calls("2026-03-04T10:00Z"), frame=moved) == [("missed", ts("2026-03-11T10:00Z"), None)]
