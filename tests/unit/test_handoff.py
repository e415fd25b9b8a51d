"""The MQA hand-off replay (SPEC section 4): triggers, episodes, idempotence, run cadence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abm_sla.domain import handoff
from abm_sla.services.config_files import load_model
from tests.unit.builders import (
    DAY,
    NS,
    T0,
    Crm,
    account,
    activity,
    ago,
    contact,
    frame,
    intent,
    qualifying,
    status,
)

MODEL = load_model()
NO_MQAS = pd.DataFrame(
    {"account_id": pd.Series(dtype=object), "trigger_at": pd.Series(dtype="datetime64[ns, UTC]")}
)


def replay(crm: Crm, as_of: pd.Timestamp = T0, prior: pd.DataFrame = NO_MQAS) -> pd.DataFrame:
    return handoff.replay_handoffs(*crm.signals(), crm.changes(), prior, MODEL, as_of)


def triggers(fired: pd.DataFrame) -> list[tuple[str, pd.Timestamp]]:
    return list(zip(fired["account_id"], fired["trigger_at"], strict=True))


def mqas(*rows: tuple[str, pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": [r[0] for r in rows],
            "trigger_at": pd.Series([r[1] for r in rows], dtype="datetime64[ns, UTC]"),
        }
    )


def dm_crm(**fields: object) -> Crm:
    return Crm(contacts=[contact("dm", title="VP Marketing")], **fields)


def test_trigger_is_the_earliest_passing_signal_scored_at_that_moment() -> None:
    crm = dm_crm(activities=[*qualifying(ago(5)), activity("email_open", ago(3), contact_id="dm")])
    fired = replay(crm)
    assert list(fired.columns) == handoff.MQA_COLUMNS
    assert triggers(fired) == [("a", ago(5))]
    row = fired.iloc[0]
    assert (row["firmographic"], row["engagement"], row["intent"], row["total"]) == (40, 20, 15, 75)
    assert {r["rule"] for r in row["reasons"]} >= {"form_submit", "web_visit", "pricing_page_visit"}
    assert pd.isna(row["ended_at"])


def test_an_intent_signal_can_be_the_trigger() -> None:
    crm = dm_crm(
        activities=[activity("form_submit", ago(6), contact_id="dm"), activity("web_visit", ago(5))],
        intent=[intent("crm", 50, ago(4)), intent("crm", 90, ago(2)), intent("erp", 95, ago(1))],
    )
    # one topic at ago(2) makes intent 10 (< 15); the second topic makes it 20
    assert triggers(replay(crm)) == [("a", ago(1))]


def test_signals_after_as_of_and_unknown_accounts_do_not_fire() -> None:
    crm = dm_crm(activities=qualifying(T0 + NS) + qualifying(ago(1), account_id="ghost"))
    assert replay(crm).empty
    assert triggers(replay(crm, as_of=T0 + NS)) == [("a", T0 + NS)]


def test_a_trigger_needs_every_signal_in_its_own_window() -> None:
    # the form submit is 30 days old exactly when the pricing visit happens: no engagement minimum then
    crm = dm_crm(
        activities=[
            activity("form_submit", ago(31), contact_id="dm"),
            activity("web_visit", ago(1), url="/pricing"),
        ]
    )
    assert replay(crm).empty
    crm.activities.append(activity("email_click", ago(hours=1), contact_id="dm"))
    crm.activities.append(activity("email_open", ago(hours=2), contact_id="dm"))
    assert triggers(replay(crm)) == [("a", ago(hours=1))]


def test_a_rejection_ends_the_episode_and_a_later_signal_fires_again() -> None:
    crm = dm_crm(
        activities=[
            *qualifying(ago(20)),
            activity("email_open", ago(10), contact_id="dm"),  # exactly at the end: no
            activity("email_open", ago(9), contact_id="dm"),
        ],
        status_changes=[status("working", ago(15)), status(" Rejected ", ago(10))],
    )
    fired = replay(crm)
    assert triggers(fired) == [("a", ago(20)), ("a", ago(9))]
    assert fired["ended_at"].iloc[0] == ago(10) and pd.isna(fired["ended_at"].iloc[1])


def test_one_run_opens_and_closes_several_episodes() -> None:
    crm = dm_crm(
        activities=[*qualifying(ago(20)), activity("webinar", ago(12)), activity("webinar", ago(4))],
        status_changes=[status("nurture", ago(15)), status("NURTURE", ago(12))],
    )
    fired = replay(crm)
    assert triggers(fired) == [("a", ago(20)), ("a", ago(12)), ("a", ago(4))]
    assert fired["ended_at"].tolist()[:2] == [ago(15), ago(12)]  # a change at trigger_at ends it at once


def test_non_end_statuses_keep_the_episode_open() -> None:
    crm = dm_crm(
        activities=[*qualifying(ago(20)), activity("webinar", ago(4))],
        status_changes=[status("working", ago(15)), status("accepted", ago(10))],
    )
    assert triggers(replay(crm)) == [("a", ago(20))]


@pytest.mark.parametrize(
    ("changes", "fires"),
    [
        ([], False),
        ([status("rejected", ago(50))], False),  # before the prior trigger: not its end
        ([status("rejected", T0 + NS)], False),  # after as of: not known yet
        ([status("rejected", ago(35))], True),
    ],
)
def test_an_open_prior_episode_blocks(changes: list[dict], fires: bool) -> None:
    crm = dm_crm(activities=qualifying(ago(3)), status_changes=changes)
    fired = replay(crm, prior=mqas(("a", ago(40))))
    assert triggers(fired) == ([("a", ago(3))] if fires else [])


def test_after_a_prior_episode_ends_only_later_signals_fire() -> None:
    crm = dm_crm(
        activities=[*qualifying(ago(20)), activity("email_open", ago(8), contact_id="dm")],
        status_changes=[status("rejected", ago(10))],
    )
    assert triggers(replay(crm, prior=mqas(("a", ago(20))))) == [("a", ago(8))]


def test_rerunning_the_same_as_of_fires_nothing() -> None:
    crm = dm_crm(
        activities=[*qualifying(ago(20)), activity("webinar", ago(4))],
        status_changes=[status("rejected", ago(15))],
    )
    first = replay(crm)
    assert len(first) == 2
    assert replay(crm, prior=first[["account_id", "trigger_at"]]).empty
    # even if only the older episode was stored, the stored one is never returned again
    again = replay(crm, prior=first[["account_id", "trigger_at"]].iloc[:1])
    assert triggers(again) == [("a", ago(4))]


def test_episode_ends_for_any_mqas() -> None:
    changes = frame(
        "status_changes",
        [
            status("working", ago(9)),
            status(" Nurture ", ago(8)),
            status("rejected", ago(3)),
            status("rejected", T0 + NS),
            status("disqualified", ago(6), account_id="b"),
        ],
    )
    stored = mqas(("a", ago(10)), ("a", ago(8)), ("a", ago(2)), ("b", ago(7)), ("c", ago(1))).iloc[::-1]
    ends = handoff.episode_ends(stored, changes, T0, ("rejected", "nurture"))
    assert ends.index.equals(stored.index)
    assert ends.loc[[0, 1]].tolist() == [ago(8), ago(8)]
    assert ends.loc[[2, 3, 4]].isna().all()
    custom = handoff.episode_ends(stored, changes, T0, ["Disqualified"])
    assert custom.loc[3] == ago(6) and custom.drop(index=3).isna().all()


# -- the run cadence does not matter -------------------------------------------------------------------


def synthetic_crm(seed: int, start: pd.Timestamp, days: int, n_accounts: int = 6) -> Crm:
    """Random touches, intent and status changes for a few accounts over ``days`` days from ``start``."""
    rng = np.random.default_rng(seed)
    ids = [f"acc{i}" for i in range(n_accounts)]
    crm = Crm(
        accounts=[account(i, employees=rng.choice([60, 300, 8000])) for i in ids],
        contacts=[contact(f"{i}-dm", i, "Head of Ops") for i in ids]
        + [contact(f"{i}-x", i, "Analyst") for i in ids],
    )
    types = ["email_open", "email_click", "form_submit", "web_visit", "webinar", "call"]
    urls = ["/pricing", "/demo", "/blog", None]
    for i in ids:
        for day in range(days):
            moment = start + day * DAY + pd.Timedelta(minutes=int(rng.integers(0, 24 * 60)))
            if rng.random() < 0.35:
                who = rng.choice([f"{i}-dm", f"{i}-x", None])
                crm.activities.append(activity(str(rng.choice(types)), moment, i, who, rng.choice(urls)))
            if rng.random() < 0.08:
                crm.intent.append(
                    intent(str(rng.choice(["crm", "erp"])), int(rng.integers(50, 100)), moment, i)
                )
            if rng.random() < 0.06:
                crm.status_changes.append(
                    status(str(rng.choice(["rejected", "nurture", "working"])), moment, i)
                )
    return crm


def run_schedule(crm: Crm, schedule: list[pd.Timestamp]) -> pd.DataFrame:
    stored = NO_MQAS
    for n, as_of in enumerate(schedule):
        fired = replay(crm, as_of, stored)
        stored = pd.concat([stored, fired[["account_id", "trigger_at"]]], ignore_index=True)
        if n % 7 == 6:
            assert replay(crm, as_of, stored).empty  # re-running a run fires nothing twice
    return stored.sort_values(["account_id", "trigger_at"], ignore_index=True)


def test_daily_and_weekly_runs_fire_the_same_mqas() -> None:
    first, last = ago(60), T0
    crm = synthetic_crm(1, first - 60 * DAY, 120, n_accounts=8)
    daily = run_schedule(crm, [first + k * DAY for k in range(61)])
    weekly = run_schedule(crm, [*(first + k * 7 * DAY for k in range(9)), last])
    pd.testing.assert_frame_equal(daily, weekly)
    assert len(daily) >= 4
    assert daily["account_id"].value_counts().max() >= 2  # some account re-fired after an episode ended


@pytest.mark.parametrize(
    ("changes", "fired"),
    [
        ([], []),  # open as of this run: it would overlap the later stored MQA
        ([status("rejected", ago(2))], [("a", ago(20))]),  # known to end before the later trigger
        ([status("rejected", T0 + 5 * DAY)], []),  # its end is not known yet as of this run
    ],
)
def test_a_run_behind_a_later_stored_mqa_opens_no_overlapping_episode(changes, fired) -> None:
    """A backfill as of T0 after a live run fired the account at T0 + 10 days."""
    crm = dm_crm(activities=qualifying(ago(20)), status_changes=changes)
    assert triggers(replay(crm, prior=mqas(("a", T0 + 10 * DAY)))) == fired
    assert triggers(replay(crm)) == [("a", ago(20))]  # with nothing stored it fires
