"""The clocks the policy switches on beside SPEC's four: a rejection's reason (quality feedback), a SQL's and a
non-SQL lead's contact, the first touch's logging (CRM hygiene) and the recurring status; an episode's first
change and acceptance."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain import dispositions
from abm_sla.domain.frames import SALES_TOUCHES
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.sla.common import (
    CLOCK_COLUMNS,
    CRM_HYGIENE,
    NON_SQL_CONTACT,
    SQL_CONTACT,
    UTC,
    EventIndex,
    _clock_rows,
    _column_utc,
    _due,
    _empty,
    _events,
    _one_of,
)


def feedback_clocks(
    episodes: pd.DataFrame, status_changes: pd.DataFrame, policy: SlaPolicy, as_of: pd.Timestamp
) -> pd.DataFrame:
    """``quality_feedback``: every MQA rejected or disqualified carries a reason within the window.

    The clock starts at the first change to a feedback disposition (``dispositions.feedback``) at or
    after trigger_at and not after the episode's end; it is met by the first such change at or after
    that moment with a non-empty reason. MQAs never rejected have no row. Off without the policy key.
    """
    window = policy.clocks.quality_feedback
    if window is None:
        return _empty(CLOCK_COLUMNS)
    classified = dispositions.classify(status_changes, policy)
    verdicts = classified[classified["disposition"].isin(policy.dispositions.feedback)]
    started = first_change_in_episode(episodes, verdicts, as_of)
    cases = episodes[started.notna()]
    if cases.empty:
        return _empty(CLOCK_COLUMNS)
    start = started[cases.index]
    # a reason given with the verdict, on a later verdict row, or on its own (a row with an empty status)
    reasoned = classified[classified["reason"].notna()
                          & (classified.index.isin(verdicts.index) | classified["status"].isna())]
    reasoned = EventIndex(_events(reasoned, "changed_at", as_of))
    return _clock_rows(cases, "quality_feedback", _due(cases, start, window, policy),
                       reasoned.nth_at_or_after(cases["account_id"], start, 1), as_of)


def sql_contact_clocks(
    episodes: pd.DataFrame, status_changes: pd.DataFrame, touches: EventIndex, policy: SlaPolicy,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """``sql_contact``: an MQA sales accepted (a SQL) is contacted within the window of its acceptance.

    The clock starts at the first status change to a disposition of the policy's accepted class
    (``dispositions.accepted``) at or after trigger_at and not after the episode's end; it is met by
    the first sales touch at or after that moment. MQAs never accepted have no row. Off without
    the policy key ``clocks.sql_contact``.
    """
    window = policy.clocks.sql_contact
    if window is None:
        return _empty(CLOCK_COLUMNS)
    started = accepted_at(episodes, status_changes, policy, as_of)
    cases = episodes[started.notna()]
    if cases.empty:
        return _empty(CLOCK_COLUMNS)
    start = started[cases.index]
    return _clock_rows(cases, SQL_CONTACT, _due(cases, start, window, policy),
                       touches.nth_at_or_after(cases["account_id"], start, 1), as_of)


def non_sql_contact_clocks(
    episodes: pd.DataFrame, status_changes: pd.DataFrame, touches: EventIndex, policy: SlaPolicy,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """``non_sql_contact``: an MQA sales has not accepted by ``as_of`` (a non-SQL lead) is contacted within the
    window of its receipt.

    The clock starts when the owner received the MQA (routed_at, or the reassignment: the first-touch
    clock's start) and is met by the first sales touch the first-touch clock counts (at or after
    trigger_at; after a reassignment, at or after it). An MQA accepted in its episode by ``as_of`` is a SQL
    (the ``sql_contact`` clock) and has no row; so has an MQA not routed yet. Off without
    ``clocks.non_sql_contact``.
    """
    window = policy.clocks.non_sql_contact
    if window is None:
        return _empty(CLOCK_COLUMNS)
    accepted = accepted_at(episodes, status_changes, policy, as_of)
    cases = episodes[episodes["clock_start"].notna() & accepted.isna()]
    if cases.empty:
        return _empty(CLOCK_COLUMNS)
    return _clock_rows(cases, NON_SQL_CONTACT, _due(cases, cases["clock_start"], window, policy),
                       touches.nth_at_or_after(cases["account_id"], cases["first_touch_from"], 1), as_of)


def accepted_at(
    episodes: pd.DataFrame, status_changes: pd.DataFrame, policy: SlaPolicy, as_of: pd.Timestamp
) -> pd.Series:
    """Per MQA: when sales accepted it (made it a SQL): its first change to the accepted class
    (``dispositions.accepted``) in the episode by ``as_of``, else NaT."""
    classified = dispositions.classify(status_changes, policy)
    return first_change_in_episode(
        episodes, classified[classified["disposition"].isin(policy.dispositions.accepted)], as_of)


def first_change_in_episode(episodes: pd.DataFrame, changes: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """Per MQA: the first of ``changes`` (status changes of one disposition class) at or after trigger_at, by
    ``as_of`` and not after the episode's end (``ended_at``); NaT when there is none."""
    started = EventIndex(_events(changes, "changed_at", as_of)).nth_at_or_after(
        episodes["account_id"], episodes["trigger_at"], 1)
    ended = _column_utc(episodes, "ended_at")
    return started.where(ended.isna() | (started <= ended))


def crm_hygiene_clocks(
    episodes: pd.DataFrame, activities: pd.DataFrame, policy: SlaPolicy, as_of: pd.Timestamp
) -> pd.DataFrame:
    """``crm_hygiene``: the MQA's first sales touch is logged in the CRM within the window of when it happened.

    The touch is the one the first_touch clock counts (the first sales touch at or after trigger_at, or
    after a reassignment); the clock starts at its ``occurred_at`` and is met at its ``logged_at`` (an
    activity logged before it happened, e.g. a booked meeting, is met); of touches at the same moment, the one
    logged first (whatever order the activities come in). No touch by ``as_of``, or a touch without
    ``logged_at`` (the column is optional), has no row. Off without ``clocks.crm_hygiene``.
    """
    window = policy.clocks.crm_hygiene
    if window is None or "logged_at" not in activities or not len(activities):
        return _empty(CLOCK_COLUMNS)
    touches = activities[_one_of(activities["type"], SALES_TOUCHES)]
    events = _events(touches, "occurred_at", as_of).assign(logged_at=_column_utc(touches, "logged_at"))
    starts = episodes[["account_id", "first_touch_from"]].astype({"account_id": "object"})
    starts = starts[starts["first_touch_from"].notna()].reset_index().sort_values("first_touch_from")
    events = events.sort_values(["at", "logged_at"], kind="stable")  # of touches at one moment, the first logged
    first = pd.merge_asof(starts, events, left_on="first_touch_from",
                          right_on="at", by="account_id", direction="forward").set_index("index")
    first = first[first["at"].notna() & first["logged_at"].notna()]
    cases = episodes.loc[episodes.index.isin(first.index)]
    if cases.empty:
        return _empty(CLOCK_COLUMNS)
    first = first.reindex(cases.index)
    return _clock_rows(cases, CRM_HYGIENE, _due(cases, first["at"].astype(UTC), window, policy),
                       first["logged_at"].astype(UTC), as_of)


def recurring_clocks(
    episodes: pd.DataFrame,
    changes: EventIndex,
    opportunities: pd.DataFrame | None,
    policy: SlaPolicy,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """``status_recurring``: while the MQA is open, one clock per period from routed_at (``period`` = k).

    Period k runs from the end of period k-1 (exclusive; period 1 from routed_at inclusive) to its
    due_at (inclusive) and is met by the first status change in it. The clock stops at the episode's
    end or the first opportunity at or after trigger_at (the *stop*): the periods that began before
    the stop count, the one the stop falls in too (an episode's end is a status change, so it is met);
    an open MQA has its current period pending. Off without the policy key.
    """
    spec = policy.clocks.status_recurring
    if spec is None:
        return _empty(CLOCK_COLUMNS)
    live = episodes[episodes["routed_at"].notna()]
    stop = _recurring_stop(live, opportunities, as_of)
    frames: list[pd.DataFrame] = []
    start, period = live["routed_at"], 1
    while len(live):
        due = _due(live, start, spec.every, policy)
        first = changes.nth_at_or_after(live["account_id"], start + pd.Timedelta(1 if period > 1 else 0, "ns"), 1)
        met = first.where(first <= due)
        frames.append(_clock_rows(live, "status_recurring", due, met, as_of).assign(period=period))
        going = (due < stop).to_numpy()
        live, start, stop, period = live[going], due[going], stop[going], period + 1
    return pd.concat(frames, ignore_index=True) if frames else _empty(CLOCK_COLUMNS)


def _recurring_stop(
    episodes: pd.DataFrame, opportunities: pd.DataFrame | None, as_of: pd.Timestamp
) -> pd.Series:
    """Per MQA: the end of its episode, its first opportunity at or after trigger_at, else ``as_of``."""
    stop = pd.Series(as_of, index=episodes.index, dtype=UTC)
    ended = _column_utc(episodes, "ended_at")
    stop = stop.where(ended.isna() | (ended > stop), ended)
    if opportunities is not None and len(opportunities):
        opened = EventIndex(_events(opportunities, "created_at", as_of)).nth_at_or_after(
            episodes["account_id"], episodes["trigger_at"], 1)
        stop = stop.where(opened.isna() | (opened > stop), opened)
    return stop
