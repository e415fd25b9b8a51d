"""Evaluating the clocks as of ``as_of``: SPEC's four (routing, first touch, status update, cadence), the
first-touch windows per tier and hand-off signal, marketing's response, and the optional clocks the policy
switches on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import marketing, regions
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.sla.common import (
    CLOCK_COLUMNS,
    CLOCK_ORDER,
    MARKETING_RESPONSE,
    OWNER_ASSIGNED,
    UTC,
    EventIndex,
    _clock_rows,
    _column_utc,
    _due,
    _empty,
    _episodes,
    _events,
    _nth_touch,
    _one_of,
    _truthy,
    _utc,
    apply_windows,
    sales_touches,
)
from abm_sla.domain.sla.optional_clocks import (
    crm_hygiene_clocks,
    feedback_clocks,
    non_sql_contact_clocks,
    recurring_clocks,
    sql_contact_clocks,
)


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
