"""Escalation of any clock (multi-role steps, recurring and unknown clock names) and reassignment turns."""

from __future__ import annotations

import pandas as pd
import pytest

from abm_sla.domain.policy import DEFAULT_PATH, parse_policy
from abm_sla.domain.routing import reassign_owners
from abm_sla.domain.sla import evaluate_clocks, evaluate_escalations, ladder_times, reassignments_due
from abm_sla.errors import ConfigError
from abm_sla.services.config_files import load_policy
from abm_sla.services.stages import reassignment_candidates
from tests.unit.test_sla import USERS, activities, changes, mqa, mqas, ts

DEFAULT = load_policy()
ONE_PAGE = load_policy(DEFAULT_PATH.parent / "presets" / "one-page-escalation.yaml")
LATE = "2026-04-30T00:00Z"
MORE_USERS = pd.concat([USERS, pd.DataFrame([("CMO1", "CMO", None, None, None, True),
                                             ("HS1", "head of sales", None, None, None, True)],
                                            columns=USERS.columns)], ignore_index=True)


def with_ladders(*ladders: dict) -> object:
    data = DEFAULT.model_dump()
    data["escalations"] = list(ladders)
    return parse_policy(data)


def test_default_policy_escalates_first_touch_only() -> None:
    assert [ladder.clock for ladder in DEFAULT.ladders] == ["first_touch"]
    assert DEFAULT.escalations == [] and DEFAULT.escalation.levels[0].to == "revops"


def test_status_update_ladder_with_a_two_role_step() -> None:
    policy = with_ladders({"clock": "status_update", "levels": [
        {"level": 1, "after": {"hours": 0}, "to": "revops"},
        {"level": 2, "after": {"hours": 24}, "to": ["CMO", "head of sales"]}]})
    frame = mqas(mqa())
    acts = activities(("A", "call", "2026-03-02T11:00Z"))  # first touch met: only status_update escalates
    clocks = evaluate_clocks(frame, acts, changes(), MORE_USERS, policy, ts(LATE))
    rows = evaluate_escalations(clocks, frame, acts, MORE_USERS, policy, ts(LATE))
    assert set(rows["clock"]) == {"status_update"}
    # status_update due routed_at + 48 h = 03-04T10:00; level 2 a day later, to both roles
    assert [(r.level, r.opened_at.isoformat(), r.to_user_id) for r in rows.itertuples()] == [
        (1, "2026-03-04T10:00:00+00:00", "R1"), (1, "2026-03-04T10:00:00+00:00", "R2"),
        (2, "2026-03-05T10:00:00+00:00", "CMO1"), (2, "2026-03-05T10:00:00+00:00", "HS1")]
    assert rows["steps_taken"].iloc[-1] == "level 1 to revops (R1, R2) at 2026-03-04T10:00Z"
    assert rows["resolution"].iloc[0].startswith("Status update on A (Tier 1) owed by U1")


def test_a_late_status_change_stops_that_ladder_only() -> None:
    policy = with_ladders({"clock": "status_update", "levels": [
        {"level": 1, "after": {"hours": 0}, "to": "revops"}, {"level": 2, "after": {"hours": 24}, "to": "cro"}]})
    frame = mqas(mqa())
    status = changes(("A", "working", "2026-03-05T09:59Z"))  # late, before level 2 (03-05T10:00)
    clocks = evaluate_clocks(frame, activities(), status, USERS, policy, ts(LATE))
    rows = evaluate_escalations(clocks, frame, activities(), USERS, policy, ts(LATE))
    assert sorted(set(rows.loc[rows["clock"] == "status_update", "level"])) == [1]
    assert sorted(set(rows.loc[rows["clock"] == "first_touch", "level"])) == [1, 2, 3]


def synthetic_clock(*rows: tuple[str, str | None]) -> pd.DataFrame:
    """Clock rows of a clock this module does not compute (as another module would add them)."""
    return pd.DataFrame([{"account_id": "A", "trigger_at": ts("2026-03-02T08:00Z"), "clock": "quality_feedback",
                          "status": "missed", "due_at": ts(due), "met_at": ts(met) if met else pd.NaT,
                          "owner_id": "U1", "tier": 1} for due, met in rows])


def test_any_clock_name_escalates_by_policy() -> None:
    policy = with_ladders({"clock": "quality_feedback", "levels": [
        {"level": 1, "after": {"business_hours": 0}, "to": "owner_manager"},
        {"level": 2, "after": {"business_hours": 8}, "to": "cro", "ask": "give the reason"}]})
    clocks = synthetic_clock(("2026-03-03T10:00Z", None))
    rows = evaluate_escalations(clocks, mqas(mqa()), activities(), USERS, policy, ts(LATE))
    assert [(r.clock, r.level, r.to_user_id) for r in rows.itertuples()] == [
        ("quality_feedback", 1, "M1"), ("quality_feedback", 2, "C1")]
    assert rows["resolution"].iloc[1].endswith("give the reason")
    times = ladder_times(clocks, mqas(mqa()), USERS, policy)
    assert times["at"].tolist() == [ts("2026-03-03T10:00Z"), ts("2026-03-04T10:00Z")]
    met_late = synthetic_clock(("2026-03-03T10:00Z", "2026-03-03T12:00Z"))
    rows = evaluate_escalations(met_late, mqas(mqa()), activities(), USERS, policy, ts(LATE))
    assert rows["level"].tolist() == [1]  # met before level 2 opened: the ladder stops


def test_the_feedback_ladder_runs_after_the_rejection_that_ended_the_episode() -> None:
    """quality_feedback starts at the verdict that ends the episode: the end must not stop its ladder,
    while a first-touch ladder of the same ended MQA stops at the end as SPEC says."""
    policy = with_ladders({"clock": "quality_feedback", "levels": [
        {"level": 1, "after": {"business_hours": 0}, "to": "owner_manager"}]})
    ended = mqas(mqa()).assign(ended_at=ts("2026-03-02T12:00Z"))  # rejected, no reason; due two days later
    rows = evaluate_escalations(synthetic_clock(("2026-03-04T12:00Z", None)), ended, activities(), USERS, policy,
                                ts(LATE))
    assert [(r.clock, r.level, r.opened_at) for r in rows.itertuples()] == [
        ("quality_feedback", 1, ts("2026-03-04T12:00Z"))]
    first_touch = synthetic_clock(("2026-03-04T12:00Z", None)).assign(clock="first_touch")
    assert evaluate_escalations(first_touch, ended, activities(), USERS, DEFAULT, ts(LATE)).empty


def test_a_recurring_clock_escalates_once_from_its_earliest_unmet_row() -> None:
    policy = with_ladders({"clock": "quality_feedback", "levels": [
        {"level": 1, "after": {"hours": 0}, "to": "cro"}]})
    clocks = synthetic_clock(("2026-03-09T10:00Z", "2026-03-10T10:00Z"), ("2026-03-16T10:00Z", None),
                             ("2026-03-23T10:00Z", None))
    rows = evaluate_escalations(clocks, mqas(mqa()), activities(), USERS, policy, ts(LATE))
    assert rows["opened_at"].tolist() == [ts("2026-03-16T10:00Z")]


@pytest.mark.parametrize(("extra", "message"), [
    ({"escalations": [{"clock": "first_touch", "levels": [{"level": 1, "after": {"hours": 0}, "to": "cro"}]}]},
     "first_touch ladder is given twice"),
    ({"escalations": [{"clock": "cadence", "levels": [
        {"level": 1, "after": {"hours": 0}, "to": "cro", "reassign": True},
        {"level": 2, "after": {"hours": 1}, "to": "cro", "reassign": True}]}]}, "at most one level may reassign"),
    ({"escalations": [{"clock": "cadence", "levels": [{"level": 1, "after": {"hours": 0}, "to": []}]}]},
     "at least one role"),
    ({"escalations": [{"clock": "Bad Name", "levels": []}]}, "escalations.0.clock"),
])
def test_bad_ladders_are_one_line_errors(extra: dict, message: str) -> None:
    data = {**DEFAULT.model_dump(), **extra}
    with pytest.raises(ConfigError, match=message):
        parse_policy(data)


def test_one_page_preset_ladders() -> None:
    assert {ladder.clock for ladder in ONE_PAGE.ladders} >= {"first_touch", "status_update", "cadence"}
    step = ONE_PAGE.escalation.levels[1]
    assert step.roles == ("cmo", "head of sales")
    assert [level.level for ladder in ONE_PAGE.ladders for level in ladder.levels if level.reassign]


def cases(*rows: tuple[str, str, str | None]) -> pd.DataFrame:
    return pd.DataFrame([{"account_id": a, "trigger_at": ts("2026-03-02T08:00Z"), "reassigned_at": ts(at),
                          "from_owner_id": owner} for a, at, owner in rows])


def test_reassignment_turns_skip_the_current_owner_and_continue_the_state() -> None:
    chosen, state = reassign_owners(cases(("B", "2026-03-03T10:00Z", "U1"), ("A", "2026-03-02T10:00Z", "U3")),
                                    USERS, "U2")
    # A first (earlier): the turn after U2 is U3, its own owner, so U1; then B: U2 (after U1)
    assert chosen["to_owner_id"].tolist() == ["U2", "U1"] and state == "U2"
    assert chosen["reason"][1] == "round-robin over active sales users after U3: U1"


def test_reassignment_without_another_rep_keeps_the_owner() -> None:
    alone = USERS[USERS["user_id"] != "U2"].assign(active=lambda f: f["user_id"] != "U3")
    chosen, state = reassign_owners(cases(("A", "2026-03-02T10:00Z", "U1")), alone, "U1")
    assert chosen["to_owner_id"].isna().all() and state == "U1"
    assert chosen["reason"][0] == "no other active sales user: stays with U1"


def test_fresh_clocks_start_at_the_reassignment() -> None:
    frame = mqas(mqa()).assign(reassigned_at=ts("2026-03-05T12:00Z"), owner_id="U3")
    acts = activities(("A", "call", "2026-03-05T11:00Z"), ("A", "call", "2026-03-05T13:00Z"))
    clocks = evaluate_clocks(frame, acts, changes(), USERS, DEFAULT, ts(LATE)).set_index("clock")
    assert clocks.loc["routing_time", "met_at"] == ts("2026-03-02T10:00Z")  # routing is not re-measured
    assert clocks.loc["first_touch", "due_at"] == ts("2026-03-05T14:00Z")  # 2 business hours from 12:00
    assert clocks.loc["first_touch", "met_at"] == ts("2026-03-05T13:00Z")  # the touch before does not count
    assert clocks.loc["status_update", "due_at"] == ts("2026-03-07T12:00Z")


def test_candidates_take_the_earliest_reassigning_level_once() -> None:
    frame = mqas(mqa(), mqa("B"))
    acts = activities(("B", "call", "2026-03-02T11:00Z"))  # B touched in time: nothing reassigns it
    clocks = evaluate_clocks(frame, acts, changes(), USERS, ONE_PAGE, ts(LATE))
    due = reassignments_due(clocks, frame, USERS, ONE_PAGE, ts(LATE))  # no cmo user: the level still reassigns
    assert due[["account_id", "clock", "level"]].values.tolist() == [["A", "first_touch", 2]]
    found = reassignment_candidates(due, frame, "run1")
    assert found["reassigned_at"].tolist() == [ts("2026-03-05T12:00Z")] and set(found["status"]) == {"pending"}
    assert reassignment_candidates(due, frame.assign(reassigned_at=ts("2026-03-09T00:00Z")), "run1").empty
    early = reassignments_due(clocks, frame, USERS, ONE_PAGE, ts("2026-03-05T11:59Z"))
    assert early.empty  # not yet opened
