"""The ``crm_hygiene`` clock (issue 26): the MQA's first sales touch logged in the CRM within 24 hours."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain.policy import DEFAULT_PATH, Window
from abm_sla.domain.sla import evaluate_clocks
from abm_sla.services.config_files import load_policy

DEFAULT = load_policy()
DEMO = load_policy(DEFAULT_PATH.parent / "presets" / "demo.yaml")
HYGIENE = DEFAULT.model_copy(update={"clocks": DEFAULT.clocks.model_copy(update={"crm_hygiene": Window(hours=24)})})
USERS = pd.DataFrame([("U1", "sales", None, "UTC", "GB", True)],
                     columns=["user_id", "role", "manager_id", "time_zone", "country", "active"])
CALL = "2026-03-02T11:00Z"  # after trigger_at: due 2026-03-03T11:00Z
DUE = pd.Timestamp("2026-03-03T11:00Z")


def mqa() -> pd.DataFrame:
    return pd.DataFrame([{"account_id": "A", "trigger_at": pd.Timestamp("2026-03-02T08:00Z"),
                          "routed_at": pd.Timestamp("2026-03-02T10:00Z"), "tier": 1, "owner_id": "U1",
                          "ended_at": pd.NaT}])


def acts(*rows: tuple[str, str, str | None]) -> pd.DataFrame:
    frame = pd.DataFrame([("A", kind, at, logged) for kind, at, logged in rows],
                         columns=["account_id", "type", "occurred_at", "logged_at"])
    return frame.assign(occurred_at=pd.to_datetime(frame["occurred_at"], utc=True),
                        logged_at=pd.to_datetime(frame["logged_at"], utc=True), owner_id="U1")


def hygiene(activities: pd.DataFrame, as_of: str = "2026-04-30T00:00Z", policy=HYGIENE) -> list[tuple]:
    result = evaluate_clocks(mqa(), activities, pd.DataFrame(columns=["account_id", "status", "changed_at"]),
                             USERS, policy, pd.Timestamp(as_of))
    part = result[result["clock"] == "crm_hygiene"]
    return [(r.status, r.due_at, None if pd.isna(r.met_at) else r.met_at) for r in part.itertuples()]


def test_off_by_default_and_on_in_the_demo() -> None:
    assert DEFAULT.clocks.crm_hygiene is None
    assert hygiene(acts(("call", CALL, CALL)), policy=DEFAULT) == []
    assert (DEMO.clocks.crm_hygiene.kind, DEMO.clocks.crm_hygiene.amount) == ("hours", 24)


def test_logged_exactly_at_due_is_met_a_second_later_missed() -> None:
    assert hygiene(acts(("call", CALL, "2026-03-03T11:00Z"))) == [("met", DUE, DUE)]
    late = hygiene(acts(("meeting", CALL, "2026-03-03T11:00:01Z")))
    assert late == [("missed", DUE, pd.Timestamp("2026-03-03T11:00:01Z"))]


def test_not_yet_logged_is_pending_until_due_then_missed() -> None:
    logged_later = acts(("call", CALL, "2026-03-05T09:00Z"))
    assert hygiene(logged_later, as_of="2026-03-03T11:00Z") == [("pending", DUE, None)]
    assert hygiene(logged_later, as_of="2026-03-03T11:00:01Z") == [("missed", DUE, None)]


def test_the_first_sales_touch_counts_not_marketing_or_earlier_ones() -> None:
    rows = acts(("email_open", "2026-03-02T09:00Z", "2026-03-09T09:00Z"),
                ("call", "2026-03-01T09:00Z", "2026-03-09T09:00Z"),  # before trigger_at
                ("call", CALL, "2026-03-02T12:00Z"), ("email_sent", "2026-03-02T12:00Z", "2026-03-09T09:00Z"))
    assert hygiene(rows) == [("met", DUE, pd.Timestamp("2026-03-02T12:00Z"))]


def test_absent_input_no_clock() -> None:
    assert hygiene(acts(("call", CALL, None))) == []  # the touch carries no logged_at
    assert hygiene(acts(("call", CALL, CALL)).drop(columns="logged_at")) == []  # no logged_at column
    assert hygiene(acts()) == []  # no touch yet


def test_of_touches_at_the_same_moment_the_first_logged_counts_in_any_order() -> None:
    rows = acts(("call", CALL, "2026-03-04T09:00Z"), ("meeting", CALL, None), ("email_sent", CALL, "2026-03-02T12:00Z"))
    met = [("met", DUE, pd.Timestamp("2026-03-02T12:00Z"))]
    assert hygiene(rows) == met
    assert hygiene(rows.iloc[::-1].reset_index(drop=True)) == met  # the activities' order does not matter
    assert hygiene(rows.iloc[[1, 0]]) == [("missed", DUE, pd.Timestamp("2026-03-04T09:00Z"))]  # logged beats unlogged
