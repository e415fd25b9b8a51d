"""SLA clocks, the escalation ladder and the presets (SPEC section 6).

2026-03-02 is a Monday. The owner U1 works in UTC with GB holidays unless a test says otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abm_sla.domain.policy import DEFAULT_PATH, SlaPolicy
from abm_sla.domain.sla import (
    CLOCK_COLUMNS,
    ESCALATION_COLUMNS,
    evaluate_clocks,
    evaluate_escalations,
    nth_at_or_after,
)
from abm_sla.services.config_files import load_policy

DEFAULT = load_policy()
SIGNAL = load_policy(DEFAULT_PATH.parent / "presets" / "signal-based.yaml")
BASIC = load_policy(DEFAULT_PATH.parent / "presets" / "basic.yaml")
LATE = "2026-04-30T00:00Z"
SECOND = pd.Timedelta(seconds=1)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


USERS = pd.DataFrame(
    [
        ("U1", "sales", "M1", "UTC", "GB", True),
        ("U2", "sales", "M0", "America/New_York", "US", True),
        ("U3", "sales", None, "UTC", "GB", True),
        ("M1", "manager", None, "UTC", "GB", True),
        ("M0", "manager", None, "UTC", "GB", False),
        ("R1", "revops", None, None, None, True),
        ("R2", " RevOps", None, None, None, None),
        ("R0", "revops", None, None, None, False),
        ("C1", "CRO", None, None, None, True),
        ("V1", "vp_sales", None, None, None, True),
    ],
    columns=["user_id", "role", "manager_id", "time_zone", "country", "active"],
)


def mqa(account: str = "A", trigger: str = "2026-03-02T08:00Z", routed: str = "2026-03-02T10:00Z",
        tier: object = 1, owner: str | None = "U1", ended: str | None = None,
        pricing_visit: bool = False) -> dict:
    return {"account_id": account, "trigger_at": ts(trigger), "routed_at": ts(routed), "tier": tier,
            "owner_id": owner, "ended_at": ts(ended) if ended else pd.NaT, "pricing_visit": pricing_visit}


def mqas(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows) or [mqa()])


def activities(*rows: tuple[str, str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["account_id", "type", "occurred_at"])
    occurred = pd.to_datetime(frame["occurred_at"], utc=True, format="ISO8601")
    return frame.assign(occurred_at=occurred, owner_id="someone")


def changes(*rows: tuple[str, str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["account_id", "status", "changed_at"])
    return frame.assign(changed_at=pd.to_datetime(frame["changed_at"], utc=True, format="ISO8601"))


def clocks(
    frame: pd.DataFrame | None = None,
    acts: pd.DataFrame | None = None,
    status: pd.DataFrame | None = None,
    as_of: str = LATE,
    policy: SlaPolicy = DEFAULT,
) -> pd.DataFrame:
    return evaluate_clocks(mqas() if frame is None else frame, activities() if acts is None else acts,
                           changes() if status is None else status, USERS, policy, ts(as_of))


def one(result: pd.DataFrame, clock: str, account: str = "A") -> dict:
    rows = result[(result["clock"] == clock) & (result["account_id"] == account)]
    assert len(rows) == 1
    return rows.iloc[0].to_dict()


def check(row: dict, status: str, due: str | None, met: str | None) -> None:
    assert row["status"] == status
    assert (pd.isna(row["due_at"]) if due is None else row["due_at"] == ts(due))
    assert (pd.isna(row["met_at"]) if met is None else row["met_at"] == ts(met))


# --- clocks ----------------------------------------------------------------------------------------

def test_output_shape() -> None:
    result = clocks(mqas(mqa("A"), mqa("B", tier="Tier 3", owner=None)))
    assert list(result.columns) == CLOCK_COLUMNS
    assert len(result) == 8
    assert set(result["clock"]) == {"routing_time", "first_touch", "status_update", "cadence"}
    for column in ("trigger_at", "due_at", "met_at"):
        assert str(result[column].dtype) == "datetime64[ns, UTC]"
    assert result["tier"].dtype == "int64"
    assert one(result, "cadence", "B")["tier"] == 3 and one(result, "cadence", "B")["owner_id"] is None


def test_no_mqas() -> None:
    result = evaluate_clocks(mqas().iloc[:0], activities(), changes(), USERS, DEFAULT, ts(LATE))
    assert result.empty and list(result.columns) == CLOCK_COLUMNS


@pytest.mark.parametrize(("routed", "status"), [
    ("2026-03-02T10:00Z", "met"),
    ("2026-03-03T08:00Z", "met"),       # exactly at due_at
    ("2026-03-03T08:00:01Z", "missed"),
])
def test_routing_time(routed: str, status: str) -> None:
    check(one(clocks(mqas(mqa(routed=routed))), "routing_time"), status, "2026-03-03T08:00Z", routed)


def test_routing_time_not_routed_by_as_of() -> None:
    frame = mqas(mqa(routed="2026-03-05T10:00Z"))
    check(one(clocks(frame, as_of="2026-03-03T08:00Z"), "routing_time"), "pending", "2026-03-03T08:00Z", None)
    check(one(clocks(frame, as_of="2026-03-04T00:00Z"), "routing_time"), "missed", "2026-03-03T08:00Z", None)
    # the routed_at clocks have not started yet
    check(one(clocks(frame, as_of="2026-03-04T00:00Z"), "first_touch"), "pending", None, None)


@pytest.mark.parametrize(("tier", "due"), [
    (1, "2026-03-02T12:00Z"), ("Tier 2", "2026-03-02T14:00Z"),
    (3, "2026-03-05T10:00Z"), (None, "2026-03-05T10:00Z"),
])
def test_first_touch_tier_windows(tier: object, due: str) -> None:
    check(one(clocks(mqas(mqa(tier=tier)), as_of="2026-03-02T11:00Z"), "first_touch"), "pending", due, None)


def test_first_touch_in_owner_local_business_hours() -> None:
    # routed Monday 16:00 EST: 1 hour Monday, then Tuesday 09:00-10:00 EST (15:00Z)
    frame = mqas(mqa(routed="2026-03-02T21:00Z", owner="U2"))
    check(one(clocks(frame, as_of="2026-03-02T21:30Z"), "first_touch"), "pending", "2026-03-03T15:00Z", None)


@pytest.mark.parametrize(("touch_type", "at", "status", "met"), [
    ("call", "2026-03-02T12:00Z", "met", "2026-03-02T12:00Z"),               # exactly at due_at
    ("email_sent", "2026-03-02T09:00Z", "met", "2026-03-02T09:00Z"),         # after trigger, before routing
    ("meeting", "2026-03-02T08:00Z", "met", "2026-03-02T08:00Z"),            # at trigger_at
    ("linkedin_message", "2026-03-02T12:00:01Z", "missed", "2026-03-02T12:00:01Z"),  # late, still reported
    ("call", "2026-03-02T07:59Z", "missed", None),                           # before the trigger
    ("email_open", "2026-03-02T11:00Z", "missed", None),                     # marketing touch
])
def test_first_touch_met_and_missed(touch_type: str, at: str, status: str, met: str | None) -> None:
    acts = activities(("A", touch_type, at), ("B", "call", "2026-03-02T10:30Z"))
    row = one(clocks(acts=acts), "first_touch")
    check(row, status, "2026-03-02T12:00Z", met)


def test_first_touch_boundary_and_point_in_time() -> None:
    due = ts("2026-03-02T12:00Z")
    assert one(clocks(as_of="2026-03-02T12:00Z"), "first_touch")["status"] == "pending"  # as_of == due_at
    assert one(clocks(as_of=str(due + SECOND)), "first_touch")["status"] == "missed"
    later_touch = activities(("A", "call", "2026-03-02T11:00Z"))
    check(one(clocks(acts=later_touch, as_of="2026-03-02T10:30Z"), "first_touch"),
          "pending", "2026-03-02T12:00Z", None)  # a touch after as_of does not count yet
    check(one(clocks(acts=later_touch, as_of="2026-03-02T11:00Z"), "first_touch"),
          "met", "2026-03-02T12:00Z", "2026-03-02T11:00Z")


@pytest.mark.parametrize(("changed", "status", "met"), [
    ("2026-03-02T09:00Z", "missed", None),                      # before routed_at
    ("2026-03-02T10:00Z", "met", "2026-03-02T10:00Z"),          # at routed_at
    ("2026-03-04T10:00Z", "met", "2026-03-04T10:00Z"),          # exactly at due_at
    ("2026-03-04T10:00:01Z", "missed", "2026-03-04T10:00:01Z"),
])
def test_status_update(changed: str, status: str, met: str | None) -> None:
    status_frame = changes(("A", "working", changed), ("B", "working", "2026-03-02T11:00Z"))
    check(one(clocks(status=status_frame), "status_update"), status, "2026-03-04T10:00Z", met)


def test_status_update_pending_until_due() -> None:
    check(one(clocks(as_of="2026-03-04T10:00Z"), "status_update"), "pending", "2026-03-04T10:00Z", None)


def cadence_touches(count: int, first: str = "2026-03-03T10:00Z", step_hours: int = 24) -> list[tuple]:
    return [("A", "call", str(ts(first) + pd.Timedelta(hours=step_hours * i))) for i in range(count)]


def test_cadence_met_at_sixth_touch_since_routing() -> None:
    before = [("A", "call", "2026-03-02T09:00Z")]  # after trigger but before routed_at: not counted
    row = one(clocks(acts=activities(*before, *cadence_touches(6))), "cadence")
    check(row, "met", "2026-03-16T10:00Z", "2026-03-08T10:00Z")


def test_cadence_ties_count_one_by_one() -> None:
    row = one(clocks(acts=activities(*cadence_touches(6, step_hours=0))), "cadence")
    check(row, "met", "2026-03-16T10:00Z", "2026-03-03T10:00Z")


def test_cadence_sixth_touch_exactly_at_due_is_met() -> None:
    touches = [*cadence_touches(5), ("A", "meeting", "2026-03-16T10:00Z")]
    check(one(clocks(acts=activities(*touches)), "cadence"), "met", "2026-03-16T10:00Z", "2026-03-16T10:00Z")


def test_cadence_pending_then_missed() -> None:
    five = activities(*cadence_touches(5))
    due = "2026-03-16T10:00Z"
    check(one(clocks(acts=five, as_of=due), "cadence"), "pending", due, None)
    check(one(clocks(acts=five, as_of="2026-03-16T10:00:01Z"), "cadence"), "missed", due, None)
    late = activities(*cadence_touches(6, step_hours=72))  # 6th touch on 03-18
    check(one(clocks(acts=late), "cadence"), "missed", "2026-03-16T10:00Z", "2026-03-18T10:00Z")


def test_clocks_are_measured_after_the_episode_ended() -> None:
    ended = clocks(mqas(mqa(ended="2026-03-02T11:00Z")), acts=activities(*cadence_touches(6)))
    open_episode = clocks(mqas(mqa()), acts=activities(*cadence_touches(6)))
    pd.testing.assert_frame_equal(ended, open_episode)


# --- escalations -----------------------------------------------------------------------------------

def escalations(frame: pd.DataFrame | None = None, acts: pd.DataFrame | None = None, as_of: str = LATE,
                policy: SlaPolicy = DEFAULT, users: pd.DataFrame = USERS) -> pd.DataFrame:
    frame = mqas() if frame is None else frame
    acts = activities() if acts is None else acts
    clock_rows = evaluate_clocks(frame, acts, changes(), users, policy, ts(as_of))
    return evaluate_escalations(clock_rows, frame, acts, users, policy, ts(as_of))


def ladder(result: pd.DataFrame) -> list[tuple]:
    return [(row.level, row.opened_at.strftime("%m-%dT%H:%M"), row.to_user_id) for row in result.itertuples()]


# Tier 1 routed Monday 10:00 UTC: due 12:00; +24 business hours = Thursday 12:00; +48 = Tuesday 03-10 12:00
FULL_LADDER = [(1, "03-02T12:00", "R1"), (1, "03-02T12:00", "R2"), (2, "03-05T12:00", "M1"),
               (3, "03-10T12:00", "C1")]


def test_full_ladder_recipients_and_record() -> None:
    result = escalations()
    assert list(result.columns) == ESCALATION_COLUMNS
    assert ladder(result) == FULL_LADDER  # R0 is inactive; roles match ignoring case and spaces
    assert set(result["owner_id"]) == {"U1"} and set(result["clock"]) == {"first_touch"}
    steps = result.drop_duplicates("level").set_index("level")["steps_taken"]
    assert steps[1] == "none"
    assert steps[2] == "level 1 to revops (R1, R2) at 2026-03-02T12:00Z"
    assert steps[3] == steps[2] + "; level 2 to the owner's manager (M1) at 2026-03-05T12:00Z"
    assert result["resolution"][0] == (
        "First touch on A (Tier 1) owed by U1 since 2026-03-02T12:00Z; "
        "make contact and log the call, or reject/nurture the account"
    )
    assert str(result["opened_at"].dtype) == "datetime64[ns, UTC]"


def test_account_name_used_when_known() -> None:
    frame = mqas(mqa()).assign(name="ACME")
    assert escalations(frame)["resolution"][0].startswith("First touch on ACME (Tier 1) owed by U1 since")


@pytest.mark.parametrize(("as_of", "levels"), [
    ("2026-03-02T12:00Z", []),                       # at due_at the clock is still pending
    ("2026-03-02T12:00:01Z", [1]),
    ("2026-03-05T11:59Z", [1]),
    ("2026-03-05T12:00Z", [1, 2]),                   # a level opens once as_of reaches it
    ("2026-03-10T12:00Z", [1, 2, 3]),
])
def test_levels_open_as_time_passes(as_of: str, levels: list[int]) -> None:
    assert sorted(set(escalations(as_of=as_of)["level"])) == levels


@pytest.mark.parametrize(("touch", "levels"), [
    ("2026-03-03T09:00Z", [1]),                   # after level 1, before level 2
    ("2026-03-05T11:59:59Z", [1]),                # just before level 2 opens
    ("2026-03-05T12:00Z", [1, 2]),                # exactly when level 2 opens: not "before then" (SPEC 6)
    ("2026-03-02T11:00Z", []),                    # in time: clock met, no ladder
])
def test_sales_touch_stops_the_ladder(touch: str, levels: list[int]) -> None:
    result = escalations(acts=activities(("A", "email_sent", touch), ("A", "web_visit", "2026-03-02T11:00Z")))
    assert sorted(set(result["level"])) == levels


@pytest.mark.parametrize(("ended", "levels"), [
    ("2026-03-02T11:00Z", []),                    # rejected before due: clock missed, no ladder
    ("2026-03-04T09:00Z", [1]),
    ("2026-03-05T11:59:59Z", [1]),                # ended just before level 2 opens
    ("2026-03-05T12:00Z", [1, 2]),                # ended exactly when level 2 opens: not "before then"
])
def test_episode_end_stops_the_ladder(ended: str, levels: list[int]) -> None:
    result = escalations(mqas(mqa(ended=ended)))
    assert sorted(set(result["level"])) == levels
    assert one(clocks(mqas(mqa(ended=ended))), "first_touch")["status"] == "missed"


def test_level_without_recipient_produces_no_row() -> None:
    # U3 has no manager; U2's manager M0 is inactive
    frame = mqas(mqa("A", owner="U3"), mqa("B", owner="U2"))
    result = escalations(frame)
    assert set(result["level"]) == {1, 3}
    steps = result[(result["account_id"] == "A") & (result["level"] == 3)]["steps_taken"].iloc[0]
    assert "level 2 to the owner's manager (no recipient)" in steps
    no_revops = USERS[USERS["role"].str.strip().str.lower() != "revops"]
    assert set(escalations(users=no_revops)["level"]) == {2, 3}


def test_unowned_mqa_escalates_in_utc() -> None:
    result = escalations(mqas(mqa(owner=None)))
    assert set(result["level"]) == {1, 3}
    assert "owed by no owner" in result["resolution"][0]


def test_pending_or_met_first_touch_never_escalates() -> None:
    assert escalations(as_of="2026-03-02T11:00Z").empty
    met = activities(("A", "call", "2026-03-02T11:00Z"))
    assert escalations(acts=met).empty
    assert list(escalations(acts=met).columns) == ESCALATION_COLUMNS


# --- presets ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("routed", "due"), [
    ("2026-03-02T10:00Z", "2026-03-02T17:00Z"),   # inside hours: close of the same business day
    ("2026-03-02T07:00Z", "2026-03-02T17:00Z"),   # before opening: that day's close
    ("2026-03-02T18:00Z", "2026-03-03T17:00Z"),   # after hours: next business day's close
    ("2026-03-06T18:00Z", "2026-03-09T17:00Z"),   # Friday evening: Monday's close
])
def test_signal_based_same_business_day_for_tier1_pricing(routed: str, due: str) -> None:
    result = clocks(mqas(mqa(trigger=routed, routed=routed, pricing_visit=True)), policy=SIGNAL)
    assert one(result, "first_touch")["due_at"] == ts(due)


def test_signal_based_same_day_uses_the_owner_calendar() -> None:
    users = pd.concat([USERS, pd.DataFrame([
        {"user_id": "U4", "role": "sales", "time_zone": "Europe/London", "country": "GB", "active": True},
        {"user_id": "U5", "role": "sales", "time_zone": "Europe/Berlin", "country": "DE", "active": True},
    ])], ignore_index=True)
    routed = "2026-04-02T18:00Z"  # Thursday evening before Easter
    frame = mqas(mqa("A", trigger=routed, routed=routed, owner="U4", pricing_visit=True),
                 mqa("B", trigger=routed, routed=routed, owner="U5", pricing_visit=True))
    result = evaluate_clocks(frame, activities(), changes(), users, SIGNAL, ts(LATE))
    assert one(result, "first_touch", "A")["due_at"] == ts("2026-04-06T16:00Z")  # Easter Monday works in GB
    assert one(result, "first_touch", "B")["due_at"] == ts("2026-04-07T15:00Z")  # not in DE


def test_signal_based_other_mqas_get_24_calendar_hours() -> None:
    frame = mqas(mqa("A", tier=1), mqa("B", tier=2, pricing_visit=True), mqa("C", tier=3),
                 mqa("D", tier=1, routed="2026-03-06T18:00Z"))
    result = clocks(frame, policy=SIGNAL)
    assert [one(result, "first_touch", a)["due_at"] for a in "ABCD"] == [
        ts("2026-03-03T10:00Z"), ts("2026-03-03T10:00Z"), ts("2026-03-03T10:00Z"), ts("2026-03-07T18:00Z")]


def test_default_ignores_the_pricing_signal() -> None:
    result = clocks(mqas(mqa(pricing_visit=True)))
    assert one(result, "first_touch")["due_at"] == ts("2026-03-02T12:00Z")


def test_signal_based_escalates_to_vp_sales_48_hours_after_hand_off() -> None:
    result = escalations(mqas(mqa(pricing_visit=True)), policy=SIGNAL)
    assert ladder(result) == [(1, "03-02T17:00", "R1"), (1, "03-02T17:00", "R2"), (2, "03-04T10:00", "V1"),
                              (3, "03-10T17:00", "C1")]
    assert "M1" not in set(result["to_user_id"])
    assert result[result["level"] == 2]["resolution"].iloc[0].endswith(
        "have the owner re-engage today or reassign the account")
    # a response within the 48 hours stops it
    touched = escalations(mqas(mqa(pricing_visit=True)), acts=activities(("A", "call", "2026-03-03T09:00Z")),
                          policy=SIGNAL)
    assert set(touched["level"]) == {1}


def test_basic_two_business_days_and_weekly_status() -> None:
    result = clocks(mqas(mqa("A", tier=1), mqa("C", tier=3)), policy=BASIC)
    assert one(result, "first_touch", "A")["due_at"] == ts("2026-03-04T10:00Z")
    assert one(result, "first_touch", "C")["due_at"] == ts("2026-03-04T10:00Z")
    assert one(result, "status_update")["due_at"] == ts("2026-03-09T10:00Z")
    default = clocks(mqas(mqa("A", tier=1), mqa("C", tier=3)))
    assert one(default, "status_update")["due_at"] == ts("2026-03-04T10:00Z")
    assert one(default, "first_touch", "C")["due_at"] == ts("2026-03-05T10:00Z")


def test_basic_ladder_starts_at_its_own_due_time() -> None:
    assert ladder(escalations(policy=BASIC))[0] == (1, "03-04T10:00", "R1")


# --- the n-th event lookup against a brute-force count -----------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nth_at_or_after_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    base = ts("2026-03-01T00:00Z")
    events = pd.DataFrame({
        "account_id": rng.choice(["A", "B", "C", "D"], 60),
        "at": base + pd.to_timedelta(rng.integers(0, 40, 60), unit="h"),  # many ties
    })
    accounts = pd.Series(rng.choice(["A", "B", "C", "Z"], 40))
    starts = pd.Series(base + pd.to_timedelta(rng.integers(-5, 45, 40), unit="h")).where(rng.random(40) > 0.1)
    for n in (1, 2, 6):
        got = nth_at_or_after(accounts, starts, events, n)
        for i in range(len(starts)):
            mine = (events["account_id"] == accounts[i]) & (events["at"] >= starts[i])
            times = sorted(events.loc[mine, "at"])
            expected = times[n - 1] if pd.notna(starts[i]) and len(times) >= n else pd.NaT
            assert (pd.isna(got[i]) and pd.isna(expected)) or got[i] == expected
