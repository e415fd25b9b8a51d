"""SLA clocks and the escalation ladder (SPEC section 6), point-in-time as of ``as_of``.

Only activities and status changes at or before ``as_of`` count. A clock is
``met`` when met_at <= due_at, ``missed`` when met_at > due_at or when nothing
met it and ``as_of`` is strictly past due_at, else ``pending`` (so at
``as_of == due_at`` an unmet clock is still pending). met_at is reported whenever
it exists by ``as_of``, also for a missed clock. Business-hour windows use the
owner's time zone and country (no owner: UTC, no holidays).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from abm_sla.domain import dispositions, marketing, regions
from abm_sla.domain.calendar import add_business_hours, end_of_business_day
from abm_sla.domain.frames import SALES_TOUCHES
from abm_sla.domain.policy import OWNER_MANAGER, EscalationLevel, SlaPolicy, Window
from abm_sla.domain.routing import active_users, parse_tier, users_with_role

CLOCKS = ("routing_time", "first_touch", "status_update", "cadence")
#: ``sql_contact`` (issue 26, ABM template): an accepted MQA (a SQL) contacted within the window of its acceptance.
SQL_CONTACT = "sql_contact"
#: ``crm_hygiene`` (issue 26): the MQA's first sales touch logged in the CRM within the window of when it happened.
CRM_HYGIENE = "crm_hygiene"
#: ``non_sql_contact`` (issue 26, ABM template): an MQA sales has not accepted (a non-SQL lead) contacted
#: within the window of its receipt (routed_at, or the reassignment).
NON_SQL_CONTACT = "non_sql_contact"
#: Clocks the policy switches on beside SPEC's four (issue 14): a rejection's reason, the weekly status;
#: issue 26: a SQL's contact, the first touch's logging, a non-SQL lead's contact.
OPTIONAL_CLOCKS = ("quality_feedback", "status_recurring", SQL_CONTACT, CRM_HYGIENE, NON_SQL_CONTACT)
#: Clocks that start when sales ends the episode (a rejection's reason): the episode's end never stops them.
AFTER_EPISODE_CLOCKS = ("quality_feedback",)
#: ``period``: 0 for a one-off clock, k for the k-th period of ``status_recurring`` (part of the key).
CLOCK_COLUMNS = ["account_id", "trigger_at", "clock", "status", "due_at", "met_at", "owner_id", "tier", "period"]
#: The activity type a CRM's own owner assignment is recorded as (its ``owner_id`` = the new owner).
OWNER_ASSIGNED = "owner_assigned"
#: The marketing clock beside SPEC's four (issue 15), evaluated only when the policy sets ``marketing.response``.
MARKETING_RESPONSE = "marketing_response"
#: The order of a MQA's clock rows: SPEC's four, then the optional ones.
CLOCK_ORDER = CLOCKS + OPTIONAL_CLOCKS + (MARKETING_RESPONSE,)
ESCALATION_COLUMNS = [
    "account_id", "trigger_at", "level", "opened_at", "to_user_id", "owner_id", "clock", "steps_taken",
    "resolution",
]
UTC = "datetime64[ns, UTC]"
NAT = np.iinfo(np.int64).min


# --- clocks ----------------------------------------------------------------------------------------

def evaluate_clocks(
    mqas: pd.DataFrame,
    activities: pd.DataFrame,
    status_changes: pd.DataFrame,
    users: pd.DataFrame,
    policy: SlaPolicy,
    as_of: pd.Timestamp,
    opportunities: pd.DataFrame | None = None,
    accounts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per MQA and clock with ``CLOCK_COLUMNS`` (SPEC's four, then the policy's optional ones).

    ``mqas`` needs account_id, trigger_at, routed_at, tier, owner_id; an optional
    boolean ``pricing_visit`` feeds first-touch overrides, optional ``ended_at`` and
    ``writeback_done_at`` the optional clocks and the true routing time. An MQA routed after
    ``as_of`` (or not routed) has its routed_at clocks pending with no due_at.
    ``opportunities`` (``account_id, created_at``) stop ``status_recurring``.
    With ``marketing.response`` in the policy, MQAs owed marketing research also get a
    ``marketing_response`` row (``activities`` must then hold the pricing visits and research activities).
    With the policy's ``regions``, an MQA of a region (:func:`abm_sla.domain.regions.region_of`: the country of its
    account in ``accounts``, else its owner's) runs on that region's windows of SPEC's four clocks.
    """
    as_of = _utc(as_of)
    episodes = _episodes(mqas, users, as_of)
    if episodes.empty:
        return _empty(CLOCK_COLUMNS)
    touches = EventIndex(sales_touches(activities, as_of))
    changes = EventIndex(_events(status_changes, "changed_at", as_of))
    clocks = policy.clocks
    routed = episodes["clock_start"]
    zones, countries = episodes["zone"], episodes["country"]
    area = regions.region_of(episodes["account_id"], episodes["owner_id"], accounts, users, policy)
    rows = {
        "routing_time": (_due(episodes, episodes["trigger_at"], clocks.routing_time, policy, area, "routing_time"),
                         routing_end(episodes, activities, policy, as_of)),
        "first_touch": (
            apply_windows(routed, *regions.windows(area, "first_touch", *first_touch_windows(episodes, policy),
                                                   policy, episodes["tier"]), zones, countries, policy)
            if policy.regions else apply_windows(routed, *first_touch_windows(episodes, policy), zones, countries,
                                                 policy),
            touches.nth_at_or_after(episodes["account_id"], episodes["first_touch_from"], 1),
        ),
        "status_update": (
            _due(episodes, routed, clocks.status_update, policy, area, "status_update"),
            changes.nth_at_or_after(episodes["account_id"], routed, 1),
        ),
        "cadence": (
            _due(episodes, routed, clocks.cadence.window, policy, area, "cadence"),
            _nth_touch(touches, episodes["account_id"], routed, regions.cadence_touches(area, policy)),
        ),
    }
    frames = [_clock_rows(episodes, name, due, met, as_of) for name, (due, met) in rows.items()]
    by_mqa = np.arange(len(frames) * len(episodes)).reshape(len(frames), -1).T.ravel()
    out = pd.concat(frames, ignore_index=True).iloc[by_mqa].reset_index(drop=True)
    optional = [feedback_clocks(episodes, status_changes, policy, as_of),
                recurring_clocks(episodes, changes, opportunities, policy, as_of),
                _marketing_response_rows(episodes, activities, policy, as_of),
                sql_contact_clocks(episodes, status_changes, touches, policy, as_of),
                non_sql_contact_clocks(episodes, status_changes, touches, policy, as_of),
                crm_hygiene_clocks(episodes, activities, policy, as_of)]
    optional = [frame for frame in optional if len(frame)]
    if not optional:
        return out
    out = pd.concat([out, *optional], ignore_index=True)
    order = pd.MultiIndex.from_frame(episodes[["account_id", "trigger_at"]].astype({"account_id": "object"}))
    mqa_rank = order.get_indexer(pd.MultiIndex.from_frame(out[["account_id", "trigger_at"]]))
    clock_rank = out["clock"].map({name: rank for rank, name in enumerate(CLOCK_ORDER)})
    out = out.iloc[np.lexsort((out["period"].to_numpy(), clock_rank.to_numpy(), mqa_rank))]
    return out.reset_index(drop=True)


def routing_end(
    episodes: pd.DataFrame, activities: pd.DataFrame, policy: SlaPolicy, as_of: pd.Timestamp
) -> pd.Series:
    """When routing ended: the owner's assignment in the CRM, else routed_at (SPEC's letter).

    Assignment = the write-back's success (``writeback_done_at``) or the CRM's own ``owner_assigned``
    change at or after trigger_at, whichever came first by ``as_of``; policy
    ``clocks.routing_time_end: routed`` keeps routed_at always.
    """
    routed = episodes["routed_at"]
    if policy.clocks.routing_time_end == "routed":
        return routed
    assigned = assignment_at(episodes, activities, as_of)
    return assigned.where(assigned.notna(), routed)


def assignment_at(episodes: pd.DataFrame, activities: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """Per MQA: the first evidence by ``as_of`` that the CRM holds its owner (write-back or owner change)."""
    owner_changes = activities[_one_of(activities["type"], (OWNER_ASSIGNED,))] if len(activities) else activities
    changed = EventIndex(_events(owner_changes, "occurred_at", as_of)).nth_at_or_after(
        episodes["account_id"], episodes["trigger_at"], 1)
    written = _column_utc(episodes, "writeback_done_at")
    written = written.where(written <= as_of)
    both = pd.concat([changed, written], axis=1)
    return both.min(axis=1).astype(UTC)


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
    activity logged before it happened, e.g. a booked meeting, is met). No touch by ``as_of``, or a touch
    without ``logged_at`` (the column is optional), has no row. Off without ``clocks.crm_hygiene``.
    """
    window = policy.clocks.crm_hygiene
    if window is None or "logged_at" not in activities or not len(activities):
        return _empty(CLOCK_COLUMNS)
    touches = activities[_one_of(activities["type"], SALES_TOUCHES)]
    events = _events(touches, "occurred_at", as_of).assign(logged_at=_column_utc(touches, "logged_at"))
    starts = episodes[["account_id", "first_touch_from"]].astype({"account_id": "object"})
    starts = starts[starts["first_touch_from"].notna()].reset_index().sort_values("first_touch_from")
    first = pd.merge_asof(starts, events.sort_values("at", kind="stable"), left_on="first_touch_from",
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


def _marketing_response_rows(
    episodes: pd.DataFrame, activities: pd.DataFrame, policy: SlaPolicy, as_of: pd.Timestamp
) -> pd.DataFrame:
    """The ``marketing_response`` clock (policy ``marketing.response``; none when it is off): due ``window``
    after the account's first pricing visit before its trigger, met by the first research activity since."""
    response = policy.marketing.response if policy.marketing is not None else None
    if response is None:
        return _clock_rows(episodes.iloc[0:0], MARKETING_RESPONSE, pd.Series(dtype=UTC), pd.Series(dtype=UTC), as_of)
    starts = marketing.response_starts(episodes, activities, response, as_of)
    owed = episodes[starts.notna()]
    kinds = np.full(len(owed), response.window.kind, dtype="object")
    amounts = np.full(len(owed), response.window.amount)
    due = apply_windows(starts[owed.index], kinds, amounts, owed["zone"], owed["country"], policy)
    research = _events(activities[_one_of(activities["type"], tuple(response.met_by))], "occurred_at", as_of)
    met = EventIndex(research).nth_at_or_after(owed["account_id"], starts[owed.index], 1)
    return _clock_rows(owed, MARKETING_RESPONSE, due, met, as_of)


def clock_status(due_at: pd.Series, met_at: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """``met`` / ``missed`` / ``pending`` (the boundary ``as_of == due_at`` is pending)."""
    met = met_at.notna() & (met_at <= due_at)
    missed = (met_at.notna() & (met_at > due_at)) | (met_at.isna() & due_at.notna() & (due_at < as_of))
    status = np.select([met, missed], ["met", "missed"], "pending")
    return pd.Series(status, index=due_at.index, dtype="object")


def first_touch_windows(episodes: pd.DataFrame, policy: SlaPolicy) -> tuple[np.ndarray, np.ndarray]:
    """Per-MQA window kind and amount: the tier window, replaced by the first matching override."""
    first_touch = policy.clocks.first_touch
    tier = episodes["tier"]
    kinds = tier.map({t: w.kind for t, w in first_touch.windows.items()}).to_numpy(dtype="object")
    amounts = tier.map({t: w.amount for t, w in first_touch.windows.items()}).to_numpy(dtype="float64")
    for override in reversed(first_touch.overrides):
        match = np.ones(len(episodes), dtype=bool)
        if override.tier is not None:
            match &= (tier == override.tier).to_numpy()
        if override.signal is not None:
            match &= _truthy(episodes.get(override.signal, pd.Series(False, index=episodes.index))).to_numpy()
        kinds[match] = override.window.kind
        amounts[match] = override.window.amount
    return kinds, amounts


def apply_windows(
    starts: pd.Series,
    kinds: np.ndarray,
    amounts: np.ndarray,
    zones: pd.Series,
    countries: pd.Series,
    policy: SlaPolicy,
) -> pd.Series:
    """``starts`` moved by a per-row window (business hours, hours, days or same business day)."""
    out = pd.Series(pd.NaT, index=starts.index, dtype=UTC)
    for kind in pd.unique(kinds):
        rows = (kinds == kind) & starts.notna().to_numpy()
        if not rows.any():
            continue
        start, amount = starts[rows], pd.Series(amounts[rows], index=starts.index[rows])
        if kind == "hours":
            out[rows] = start + pd.to_timedelta(amount, unit="h")
        elif kind == "days":
            out[rows] = start + pd.to_timedelta(amount * 24, unit="h")
        elif kind == "business_hours":
            out[rows] = add_business_hours(start, amount, zones[rows], countries[rows], policy.business_hours)
        else:
            out[rows] = end_of_business_day(start, zones[rows], countries[rows], policy.business_hours)
    return out


def sales_touches(activities: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Sales touches (any performer) at or before ``as_of`` as ``account_id, at``."""
    return _events(activities[_one_of(activities["type"], SALES_TOUCHES)], "occurred_at", as_of)


class EventIndex:
    """Events (``account_id, at``) sorted by (account, time) for vectorized n-th-event lookups.

    Each event gets the key ``account_code * width + dense_time_rank``; a query
    (account, start) maps to the key of "first event of that account at or after
    start", so one ``np.searchsorted`` finds it and the n-th is ``n - 1`` places on.
    """

    def __init__(self, events: pd.DataFrame) -> None:
        codes, uniques = pd.factorize(events["account_id"].astype("object"))
        times = _ns(events["at"])
        self.accounts = pd.Index(uniques)
        self.times_seen = np.unique(times)
        self.width = len(self.times_seen) + 1
        keys = codes.astype("int64") * self.width + np.searchsorted(self.times_seen, times)
        order = np.argsort(keys, kind="stable")
        self.keys, self.codes, self.times = keys[order], codes[order], times[order]

    def nth_at_or_after(self, accounts: pd.Series, starts: pd.Series, n: int) -> pd.Series:
        """Time of the ``n``-th event (1-based) of the account at or after each start; NaT if fewer."""
        if not len(self.keys):
            return pd.Series(pd.NaT, index=starts.index, dtype=UTC)
        code = self.accounts.get_indexer(accounts.astype("object"))
        start = _ns(starts)
        query = code.astype("int64") * self.width + np.searchsorted(self.times_seen, start, side="left")
        found = np.searchsorted(self.keys, query, side="left") + (n - 1)
        safe = np.clip(found, 0, len(self.keys) - 1)
        ok = (code >= 0) & (start != NAT) & (found < len(self.keys)) & (self.codes[safe] == code)
        result = np.where(ok, self.times[safe], NAT)
        return _from_ns(result, starts.index)


def nth_at_or_after(accounts: pd.Series, starts: pd.Series, events: pd.DataFrame, n: int) -> pd.Series:
    """Time of the ``n``-th event (1-based) of the same account at or after each start; NaT if fewer."""
    return EventIndex(events).nth_at_or_after(accounts, starts, n)


# --- escalations -----------------------------------------------------------------------------------

def evaluate_escalations(
    clocks: pd.DataFrame,
    mqas: pd.DataFrame,
    activities: pd.DataFrame,
    users: pd.DataFrame,
    policy: SlaPolicy,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """One row per opened level and recipient, with ``ESCALATION_COLUMNS``, for every ladder of the policy.

    A ladder belongs to a clock by name (any name in ``clocks``, SPEC's four or another). A level
    of a missed clock opens at its offset past the clock's due_at (or the MQA's routed_at, never
    before due_at), once ``as_of`` has reached it, unless the clock was met (late) or the episode
    ended before that moment (SPEC: "before then"; for first_touch the meeting event is the first
    sales touch). A clock with several rows per MQA (a recurring clock) escalates once per MQA,
    from its earliest missed row still unmet (else its earliest missed row). A level without a
    recipient produces no row. ``activities`` is kept for callers; the clocks carry met_at.
    """
    as_of = _utc(as_of)
    frames = [_ladder_rows(clocks, mqas, users, policy, ladder.clock, ladder.levels, as_of)
              for ladder in policy.ladders]
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return _empty(ESCALATION_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    out = out.sort_values(["account_id", "trigger_at"], kind="stable").reset_index(drop=True)
    return out.astype({"level": "int64", "opened_at": UTC})


def reassignments_due(
    clocks: pd.DataFrame, mqas: pd.DataFrame, users: pd.DataFrame, policy: SlaPolicy, as_of: pd.Timestamp
) -> pd.DataFrame:
    """``account_id, trigger_at, clock, level, opened_at, owner_id`` of every reassigning level opened by
    ``as_of`` (whether or not the level has a recipient), by the same rules as the ladder."""
    as_of = _utc(as_of)
    parts = []
    for ladder in policy.ladders:
        specs = [spec for spec in ladder.levels if spec.reassign]
        missed = _missed_once(clocks, ladder.clock) if specs else clocks.iloc[:0]
        if missed.empty:
            continue
        cases = _cases(missed, mqas, users)
        opened = _opened_at(cases, specs[0], policy, as_of)
        parts.append(cases.loc[opened.notna(), ["account_id", "trigger_at", "owner_id"]].assign(
            clock=ladder.clock, level=specs[0].level, opened_at=opened[opened.notna()]))
    columns = ["account_id", "trigger_at", "clock", "level", "opened_at", "owner_id"]
    if not parts:
        return _empty(columns)
    return pd.concat(parts, ignore_index=True)[columns].astype({"level": "int64", "opened_at": UTC})


def _ladder_rows(
    clocks: pd.DataFrame, mqas: pd.DataFrame, users: pd.DataFrame, policy: SlaPolicy, clock: str,
    specs: list[EscalationLevel], as_of: pd.Timestamp,
) -> pd.DataFrame:
    missed = _missed_once(clocks, clock)
    if missed.empty:
        return _empty(ESCALATION_COLUMNS)
    cases = _cases(missed, mqas, users)
    levels = [Level(spec, _opened_at(cases, spec, policy, as_of), *_recipients(cases, spec, users))
              for spec in specs]
    prefix = _resolution_prefix(cases, clock)
    frames, order = [], []
    for number, level in enumerate(levels):
        index = cases.index[level.opened.notna()]
        if index.empty:
            continue
        head = pd.DataFrame({
            "account_id": cases.loc[index, "account_id"],
            "trigger_at": cases.loc[index, "trigger_at"],
            "level": level.spec.level,
            "opened_at": level.opened[index],
            "owner_id": cases.loc[index, "owner_id"],
            "clock": clock,
            "steps_taken": _steps_taken(index, level, levels[:number]),
            "resolution": prefix[index] + level.spec.ask,
        }, index=index)
        rows = head.merge(level.recipients, left_index=True, right_on="case")
        frames.append(rows)
        order.append(rows["case"].to_numpy() * len(levels) + number)
    if not frames:
        return _empty(ESCALATION_COLUMNS)
    out = pd.concat(frames, ignore_index=True)[ESCALATION_COLUMNS]
    return out.iloc[np.argsort(np.concatenate(order), kind="stable")].reset_index(drop=True)


def _missed_once(clocks: pd.DataFrame, clock: str) -> pd.DataFrame:
    """The missed rows of ``clock``, one per MQA: the earliest still unmet, else the earliest."""
    missed = clocks[(clocks["clock"] == clock) & (clocks["status"] == "missed")]
    if missed.empty:
        return missed
    order = missed.assign(_met=missed["met_at"].notna()).sort_values(["_met", "due_at"], kind="stable")
    return order.drop_duplicates(["account_id", "trigger_at"]).drop(columns="_met")


@dataclass(frozen=True)
class Level:
    """One ladder level evaluated for every case."""

    spec: EscalationLevel
    opened: pd.Series  # opened_at per case, NaT when not opened (yet)
    recipients: pd.DataFrame  # rows ``case, to_user_id``
    who: pd.Series  # recipients per case as text, "no recipient" when none

    @property
    def label(self) -> str:
        return " and ".join("the owner's manager" if role == OWNER_MANAGER else role for role in self.spec.roles)


def _cases(missed: pd.DataFrame, mqas: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    """Missed clocks with their met_at, their MQA's routed_at (the clock start), ended_at, name and owner
    calendar. A clock that runs after the episode's end (``quality_feedback``: a rejection ends the
    episode and starts the clock) has no ended_at here: only meeting it stops its ladder."""
    keys = ["account_id", "trigger_at"]
    extra = _mqa_starts(mqas, [*keys, "routed_at", "ended_at", "name"])
    cases = missed[[*keys, "due_at", "met_at", "owner_id", "tier"]].astype({"account_id": "object"}).copy()
    cases["trigger_at"] = _to_utc(cases["trigger_at"])
    cases = cases.merge(extra.drop_duplicates(keys), on=keys, how="left")
    cases = cases.sort_values(keys, kind="stable").reset_index(drop=True)
    for column in ("due_at", "met_at", "routed_at", "ended_at"):
        cases[column] = _to_utc(cases[column])
    if "clock" in missed and missed["clock"].isin(AFTER_EPISODE_CLOCKS).all():  # one clock's ladder at a time
        cases["ended_at"] = pd.Series(pd.NaT, index=cases.index, dtype=UTC)
    cases["name"] = cases["name"].astype("object").where(cases["name"].notna(), cases["account_id"])
    return cases.join(_owner_calendar(cases["owner_id"], users))


def _mqa_starts(mqas: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``columns`` of the MQAs with routed_at replaced by the reassignment moment when reassigned."""
    extra = mqas.reindex(columns=[*columns, "reassigned_at"]).astype({"account_id": "object"})
    extra["trigger_at"] = _to_utc(extra["trigger_at"])
    extra["routed_at"] = clock_start(extra)
    return extra.drop(columns="reassigned_at")


def clock_start(mqas: pd.DataFrame) -> pd.Series:
    """Where the owner's clocks start: routed_at, or reassigned_at once the MQA was reassigned on a breach."""
    routed = _to_utc(mqas["routed_at"])
    if "reassigned_at" not in mqas:
        return routed
    reassigned = _to_utc(mqas["reassigned_at"])
    return reassigned.where(reassigned.notna(), routed).astype(UTC)


def _opened_at(
    cases: pd.DataFrame, level: EscalationLevel, policy: SlaPolicy, as_of: pd.Timestamp
) -> pd.Series:
    """When the level opens, or NaT when it has not (yet) opened as of ``as_of``."""
    at = _level_at(cases, level, policy)
    stopped = (cases["met_at"] < at) | (cases["ended_at"] < at)
    return at.where(at.notna() & (at <= as_of) & ~stopped)


def _level_at(cases: pd.DataFrame, level: EscalationLevel, policy: SlaPolicy) -> pd.Series:
    """When the level opens if nothing stops the ladder: its offset past its base, never before due_at."""
    base = cases["routed_at"] if level.base == "routed_at" else cases["due_at"]
    kinds = np.full(len(cases), level.after.kind, dtype="object")
    amounts = np.full(len(cases), level.after.amount)
    at = apply_windows(base, kinds, amounts, cases["zone"], cases["country"], policy)
    return at.where(at.isna() | (at >= cases["due_at"]), cases["due_at"])


def ladder_times(clocks: pd.DataFrame, mqas: pd.DataFrame, users: pd.DataFrame, policy: SlaPolicy) -> pd.DataFrame:
    """For every missed ladder clock (of every ladder), when each level would open if nothing stopped it:
    ``account_id, trigger_at, level, at`` (the moments when time alone can open a level)."""
    keys = ["account_id", "trigger_at"]
    parts = []
    for ladder in policy.ladders:
        missed = clocks[(clocks["clock"] == ladder.clock) & (clocks["status"] == "missed")]
        if missed.empty:
            continue
        cases = missed[[*keys, "due_at", "owner_id"]].astype({"account_id": "object"}).reset_index(drop=True)
        cases["trigger_at"], cases["due_at"] = _to_utc(cases["trigger_at"]), _to_utc(cases["due_at"])
        cases = cases.merge(_mqa_starts(mqas, [*keys, "routed_at"]).drop_duplicates(keys), on=keys, how="left")
        cases = cases.join(_owner_calendar(cases["owner_id"], users))
        parts += [cases[keys].assign(level=spec.level, at=_level_at(cases, spec, policy)) for spec in ladder.levels]
    if not parts:
        return pd.DataFrame({"account_id": pd.Series(dtype=object), "trigger_at": pd.Series(dtype=UTC),
                             "level": pd.Series(dtype="int64"), "at": pd.Series(dtype=UTC)})
    return pd.concat(parts, ignore_index=True)


def _recipients(
    cases: pd.DataFrame, level: EscalationLevel, users: pd.DataFrame
) -> tuple[pd.DataFrame, pd.Series]:
    """The level's recipients (every role it names) as rows ``case, to_user_id`` and as text per case."""
    parts = [_role_recipients(cases, role, users) for role in level.roles]
    rows = pd.concat([rows for rows, _ in parts], ignore_index=True).drop_duplicates()
    rows = rows.sort_values("case", kind="stable").reset_index(drop=True)
    texts = [who.where(who != "no recipient") for _, who in parts]
    who = texts[0]
    for more in texts[1:]:
        who = who.where(more.isna(), who.where(who.isna(), who + ", ").fillna("") + more)
    return rows, who.fillna("no recipient").astype("object")


def _role_recipients(cases: pd.DataFrame, role: str, users: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """One role's recipients: the active users with that role, or the owner's active manager."""
    if role != OWNER_MANAGER:
        ids = users_with_role(users, role).to_numpy()
        rows = pd.DataFrame({"case": np.repeat(cases.index.to_numpy(), len(ids)),
                             "to_user_id": np.tile(ids, len(cases))})
        return rows, pd.Series(", ".join(ids) or "no recipient", index=cases.index, dtype="object")
    people = users.reindex(columns=["user_id", "manager_id"]).dropna(subset=["user_id"])
    people = people.astype({"user_id": "object"}).drop_duplicates("user_id").set_index("user_id")
    manager = cases["owner_id"].map(people["manager_id"]).astype("string").str.strip()
    active_ids = set(active_users(users)["user_id"].dropna().astype(str))
    present = manager.isin(active_ids).fillna(False).astype(bool)
    rows = pd.DataFrame({"case": cases.index[present], "to_user_id": manager[present].astype("object")})
    return rows, manager.astype("object").where(present, "no recipient")


def _steps_taken(index: pd.Index, level: Level, earlier: list[Level]) -> pd.Series:
    """Text of the levels opened before this one, e.g. ``level 1 to revops (R1) at 2026-03-02T11:00Z``."""
    steps = pd.Series("", index=index, dtype="object")
    for previous in earlier:
        at = previous.opened[index]
        taken = at.notna() & (at <= level.opened[index])
        who = previous.who[index]
        text = f"level {previous.spec.level} to {previous.label} (" + who + ") at " + _stamp(at)
        steps = steps.where(~taken, steps + np.where(steps == "", "", "; ") + text)
    return steps.where(steps != "", "none")


def _resolution_prefix(cases: pd.DataFrame, clock: str) -> pd.Series:
    """``First touch on ACME (Tier 1) owed by U1 since 2026-03-02T11:00Z; `` (the level adds its ask)."""
    owner = cases["owner_id"].astype("object").where(cases["owner_id"].notna(), "no owner")
    return (clock.replace("_", " ").capitalize() + " on " + cases["name"].astype(str)
            + " (Tier " + cases["tier"].astype(str) + ") owed by " + owner.astype(str)
            + " since " + _stamp(cases["due_at"]) + "; ")


# --- shared helpers --------------------------------------------------------------------------------

def _episodes(mqas: pd.DataFrame, users: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """MQAs normalized: UTC times, int tier, owner calendar; routed_at after ``as_of`` is not known yet."""
    episodes = mqas.reset_index(drop=True).copy()
    episodes["account_id"] = episodes["account_id"].astype("object")
    for column in ("trigger_at", "routed_at"):
        episodes[column] = _to_utc(episodes[column])
    episodes["routed_at"] = episodes["routed_at"].where(episodes["routed_at"] <= as_of)
    # a reassigned MQA: the new owner's clocks start at the reassignment (routing_time keeps routed_at)
    start = clock_start(episodes)
    episodes["clock_start"] = start.where(start <= as_of)
    reassigned = episodes["clock_start"].ne(episodes["routed_at"]) & episodes["clock_start"].notna()
    episodes["first_touch_from"] = episodes["trigger_at"].where(~reassigned, episodes["clock_start"])
    episodes["tier"] = parse_tier(episodes["tier"])
    episodes["owner_id"] = episodes["owner_id"].astype("object").where(episodes["owner_id"].notna(), None)
    return episodes.join(_owner_calendar(episodes["owner_id"], users))


def _owner_calendar(owner_ids: pd.Series, users: pd.DataFrame) -> pd.DataFrame:
    """The owner's time zone and country per row (missing owner or values: None, i.e. UTC/no holidays)."""
    people = users.reindex(columns=["user_id", "time_zone", "country"]).dropna(subset=["user_id"])
    people = people.astype({"user_id": "object"}).drop_duplicates("user_id").set_index("user_id")
    calendar = {"zone": owner_ids.map(people["time_zone"]), "country": owner_ids.map(people["country"])}
    return pd.DataFrame(calendar, index=owner_ids.index).astype("object")


def _due(episodes: pd.DataFrame, starts: pd.Series, window: Window, policy: SlaPolicy,
         area: pd.Series | None = None, clock: str = "") -> pd.Series:
    """``starts`` moved by ``window``; with ``area`` (each row's region), by the region's window of ``clock``."""
    kinds = np.full(len(episodes), window.kind, dtype="object")
    amounts = np.full(len(episodes), window.amount)
    if area is not None and policy.regions:
        kinds, amounts = regions.windows(area, clock, kinds, amounts, policy)
    return apply_windows(starts, kinds, amounts, episodes["zone"], episodes["country"], policy)


def _nth_touch(touches: EventIndex, accounts: pd.Series, starts: pd.Series, counts: pd.Series) -> pd.Series:
    """The ``counts``-th touch (per row) at or after each start: one lookup per distinct count."""
    out = pd.Series(pd.NaT, index=starts.index, dtype=UTC)
    for count in pd.unique(counts):
        rows = counts.eq(count)
        out[rows] = touches.nth_at_or_after(accounts[rows], starts[rows], int(count))
    return out


def _clock_rows(
    episodes: pd.DataFrame, clock: str, due_at: pd.Series, met_at: pd.Series, as_of: pd.Timestamp
) -> pd.DataFrame:
    met_at = met_at.where(met_at <= as_of).astype(UTC)
    return pd.DataFrame({
        "account_id": episodes["account_id"],
        "trigger_at": episodes["trigger_at"],
        "clock": clock,
        "status": clock_status(due_at, met_at, as_of),
        "due_at": due_at.astype(UTC),
        "met_at": met_at,
        "owner_id": episodes["owner_id"],
        "tier": episodes["tier"].astype("int64"),
        "period": 0,
    })[CLOCK_COLUMNS]


def _events(frame: pd.DataFrame, column: str, as_of: pd.Timestamp) -> pd.DataFrame:
    """``account_id, at`` of the rows at or before ``as_of``."""
    events = pd.DataFrame({"account_id": frame["account_id"].astype("object"), "at": _to_utc(frame[column])})
    return events[events["at"].notna() & events["account_id"].notna() & (events["at"] <= as_of)]


def _one_of(values: pd.Series, allowed: tuple[str, ...]) -> pd.Series:
    """Is each value one of ``allowed`` ignoring case and spaces (each distinct value checked once)?"""
    codes, uniques = pd.factorize(values)
    hits = np.array([str(value).strip().lower() in allowed for value in uniques] + [False], dtype=bool)
    return pd.Series(hits[codes], index=values.index)


def _truthy(values: pd.Series) -> pd.Series:
    return _one_of(values, ("true", "1", "1.0", "yes", "t"))


def _stamp(moments: pd.Series) -> pd.Series:
    """``2026-03-02T11:00Z`` (UTC, minutes); empty for NaT."""
    minutes = _ns(moments).view("datetime64[ns]").astype("datetime64[m]")
    text = np.char.add(np.datetime_as_string(minutes, unit="m"), "Z").astype("object")
    return pd.Series(np.where(moments.isna().to_numpy(), "", text), index=moments.index, dtype="object")


def _from_ns(nanoseconds: np.ndarray, index: pd.Index) -> pd.Series:
    return pd.Series(pd.DatetimeIndex(nanoseconds.view("datetime64[ns]")).tz_localize("UTC"), index=index)


def _ns(moments: pd.Series) -> np.ndarray:
    """UTC nanoseconds (NaT as the int64 minimum)."""
    return pd.DatetimeIndex(_to_utc(moments)).asi8.copy()


def _column_utc(frame: pd.DataFrame, column: str) -> pd.Series:
    """``frame[column]`` in UTC; all NaT when the column is absent."""
    if column not in frame:
        return pd.Series(pd.NaT, index=frame.index, dtype=UTC)
    return _to_utc(frame[column])


def _to_utc(values: pd.Series) -> pd.Series:
    if not pd.api.types.is_datetime64_any_dtype(values):
        values = pd.to_datetime(values, utc=True, format="ISO8601")
    elif getattr(values.dt, "tz", None) is None:
        values = values.dt.tz_localize("UTC")
    return values.dt.tz_convert("UTC").astype(UTC)


def _utc(moment: pd.Timestamp | str) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _empty(columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({column: pd.Series(dtype="object") for column in columns})
    for column in ("trigger_at", "due_at", "met_at", "opened_at"):
        if column in frame:
            frame[column] = pd.Series(dtype=UTC)
    for column in ("tier", "level", "period"):
        if column in frame:
            frame[column] = pd.Series(dtype="int64")
    return frame

