"""Clocks owed between the teams outside an MQA (issue 26, ABM template), point-in-time as of ``as_of``.

- ``materials_request``: marketing answers a sales request for materials within ``requests.materials``;
- ``account_info_request``: sales answers a marketing request for account information within
  ``requests.account_info`` (both from the optional ``requests.csv``: started at ``requested_at``, met at
  ``answered_at``);
- ``hot_account``: sales flags an account hot (an activity of type ``hot_flag``) and marketing coordinates
  within ``hot_accounts.window``: met by the first activity of a ``hot_accounts.coordinated_by`` type on the
  account at or after the flag.

Each clock is one row per request or flag (:data:`COLUMNS`), with SPEC's statuses (:func:`sla.clock_status`:
met when met_at <= due_at, missed after, pending until then; at ``as_of == due_at`` still pending). The due
time is computed in the calendar of whoever owes the answer: the request's ``owner_id``, else the account's
owner (a hot flag: the account's owner); no owner, or an owner not in ``users``: UTC and no holidays. Only
requests and flags at or before ``as_of`` count, only answers at or before ``as_of`` meet them. No clock is
evaluated when its policy key is absent (the default). Pure: no clock read, no I/O.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import frames
from abm_sla.domain.policy import SlaPolicy, Window
from abm_sla.domain.routing import parse_tier
from abm_sla.domain.sla import UTC, EventIndex, apply_windows, clock_status

MATERIALS_REQUEST = "materials_request"
ACCOUNT_INFO_REQUEST = "account_info_request"
HOT_ACCOUNT = "hot_account"
#: The clocks of this module, in report order.
TEAM_CLOCKS = (MATERIALS_REQUEST, ACCOUNT_INFO_REQUEST, HOT_ACCOUNT)
#: ``requests.kind`` -> its clock.
REQUEST_CLOCK = {"materials": MATERIALS_REQUEST, "account_info": ACCOUNT_INFO_REQUEST}
#: Which side owes each clock's answer.
OWED_BY = {MATERIALS_REQUEST: "marketing", ACCOUNT_INFO_REQUEST: "sales", HOT_ACCOUNT: "marketing"}
#: One row per request or hot flag. ``item_id``: the request_id or the flag's activity_id; ``asked_by``: the
#: requester or the flagging rep.
COLUMNS = ["clock", "item_id", "account_id", "asked_by", "started_at", "due_at", "met_at", "status", "owner_id",
           "tier"]


def enabled(policy: SlaPolicy) -> tuple[str, ...]:
    """The team clocks the policy switches on (none by default)."""
    on = []
    if policy.requests is not None:
        on += [REQUEST_CLOCK[kind] for kind in frames.REQUEST_KINDS if getattr(policy.requests, kind) is not None]
    if policy.hot_accounts is not None:
        on.append(HOT_ACCOUNT)
    return tuple(on)


def evaluate(requests: pd.DataFrame, activities: pd.DataFrame, accounts: pd.DataFrame, users: pd.DataFrame,
             policy: SlaPolicy, as_of: pd.Timestamp) -> pd.DataFrame:
    """Every team clock the policy switches on, as of ``as_of`` (:data:`COLUMNS`)."""
    as_of = pd.Timestamp(as_of).tz_convert("UTC")
    parts = [request_clocks(requests, accounts, users, policy, as_of),
             hot_account_clocks(activities, accounts, users, policy, as_of)]
    parts = [part for part in parts if len(part)]
    if not parts:
        return empty()
    return pd.concat(parts, ignore_index=True)[COLUMNS]


def request_clocks(requests: pd.DataFrame, accounts: pd.DataFrame, users: pd.DataFrame, policy: SlaPolicy,
                   as_of: pd.Timestamp) -> pd.DataFrame:
    """``materials_request`` / ``account_info_request``: one row per request made by ``as_of`` of a kind whose
    window the policy sets; started at requested_at, met at answered_at (an answer stamped before the request
    counts as met: it was ready when asked)."""
    if policy.requests is None or requests is None or not len(requests):
        return empty()
    asked = requests[frames.to_utc(requests["requested_at"]) <= as_of]
    kinds = asked["kind"].astype("string").str.strip().str.lower()
    parts = []
    for kind, clock in REQUEST_CLOCK.items():
        window = getattr(policy.requests, kind)
        mine = asked[(kinds == kind).fillna(False).to_numpy()]
        if window is None or mine.empty:
            continue
        items = pd.DataFrame({"clock": clock, "item_id": mine["request_id"].astype("object"),
                              "account_id": mine["account_id"].astype("object"),
                              "asked_by": mine["requested_by"].astype("object"),
                              "started_at": frames.to_utc(mine["requested_at"]),
                              "met_at": frames.to_utc(mine["answered_at"])}).reset_index(drop=True)
        owners = mine["owner_id"].astype("object").reset_index(drop=True)
        parts.append(_rows(items, owners, window, accounts, users, policy, as_of))
    return pd.concat(parts, ignore_index=True) if parts else empty()


def hot_account_clocks(activities: pd.DataFrame, accounts: pd.DataFrame, users: pd.DataFrame, policy: SlaPolicy,
                       as_of: pd.Timestamp) -> pd.DataFrame:
    """``hot_account``: one row per ``hot_flag`` activity by ``as_of``; met by the first activity of a
    ``coordinated_by`` type on the account at or after the flag (by ``as_of``)."""
    spec = policy.hot_accounts
    if spec is None or activities is None or not len(activities):
        return empty()
    types = activities["type"].astype("string").str.strip().str.lower()
    occurred = frames.to_utc(activities["occurred_at"])
    known = occurred.notna() & activities["account_id"].notna() & (occurred <= as_of)
    flags = activities[(types == frames.HOT_FLAG).fillna(False) & known]
    if flags.empty:
        return empty()
    work = activities[types.isin(spec.coordinated_by).fillna(False) & known]
    coordinated = EventIndex(pd.DataFrame({"account_id": work["account_id"].astype("object"),
                                           "at": occurred[work.index]}))
    items = pd.DataFrame({"clock": HOT_ACCOUNT, "item_id": flags["activity_id"].astype("object"),
                          "account_id": flags["account_id"].astype("object"),
                          "asked_by": flags["owner_id"].astype("object"),
                          "started_at": occurred[flags.index]}).reset_index(drop=True)
    items["met_at"] = coordinated.nth_at_or_after(items["account_id"], items["started_at"], 1)
    owners = pd.Series(None, index=items.index, dtype="object")
    return _rows(items, owners, spec.window, accounts, users, policy, as_of)


def _rows(items: pd.DataFrame, owners: pd.Series, window: Window, accounts: pd.DataFrame, users: pd.DataFrame,
          policy: SlaPolicy, as_of: pd.Timestamp) -> pd.DataFrame:
    """``items`` (clock, item_id, account_id, asked_by, started_at, met_at) with owner (``owners``, else the
    account's owner), tier, due_at in the owner's calendar and status."""
    book = accounts.reindex(columns=["account_id", "owner_id", "tier"]).dropna(subset=["account_id"])
    book = book.astype({"account_id": "object"}).drop_duplicates("account_id", keep="last").set_index("account_id")
    owners = owners.where(owners.notna() & owners.astype("string").str.strip().ne(""),
                          items["account_id"].map(book["owner_id"]))
    owners = owners.astype("object").where(owners.notna(), None)
    people = users.reindex(columns=["user_id", "time_zone", "country"]).dropna(subset=["user_id"])
    people = people.astype({"user_id": "object"}).drop_duplicates("user_id").set_index("user_id")
    zones, countries = owners.map(people["time_zone"]).astype("object"), owners.map(people["country"]).astype("object")
    due = apply_windows(items["started_at"], np.full(len(items), window.kind, dtype="object"),
                        np.full(len(items), window.amount), zones, countries, policy)
    met = items["met_at"].where(items["met_at"] <= as_of).astype(UTC)
    met = met.where(met.isna() | (met >= items["started_at"]), items["started_at"])
    out = items.assign(due_at=due.astype(UTC), met_at=met, owner_id=owners,
                       tier=parse_tier(items["account_id"].map(book["tier"])))
    out["status"] = clock_status(out["due_at"], out["met_at"], as_of)
    return out[COLUMNS]


def empty() -> pd.DataFrame:
    frame = pd.DataFrame({column: pd.Series(dtype="object") for column in COLUMNS})
    for column in ("started_at", "due_at", "met_at"):
        frame[column] = pd.Series(dtype=UTC)
    frame["tier"] = pd.Series(dtype="int64")
    return frame


def due_in(clocks: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The rows whose due time falls in ``[start, end)`` (the period a clock counts in, as in ``sla_clocks``)."""
    return clocks[(clocks["due_at"] >= start) & (clocks["due_at"] < end)]


def to_chase(clocks: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The rows a weekly list chases: asked before ``end`` and either due in ``[start, end)`` (late or open), or due
    earlier and still unanswered (no met_at)."""
    asked = clocks[clocks["started_at"] < end]
    return asked[(asked["due_at"] >= start) & (asked["due_at"] < end) | (asked["due_at"] < start)
                 & asked["met_at"].isna()]


def late_or_open(clocks: pd.DataFrame, names: pd.Series | None = None) -> pd.DataFrame:
    """The rows to act on: missed (answered late or not at all) or still pending, oldest due first, with the side
    that owes the answer and the account's name (``names``: account_id -> name)."""
    rows = clocks[clocks["status"].isin(["missed", "pending"])].sort_values(["due_at", "clock"], kind="stable")
    rows = rows.assign(owed_by=rows["clock"].map(OWED_BY))
    if names is not None:
        rows = rows.assign(account=rows["account_id"].map(names).fillna(rows["account_id"]))
    else:
        rows = rows.assign(account=rows["account_id"])
    return rows[["clock", "account", "owed_by", "owner_id", "asked_by", "started_at", "due_at", "met_at", "status",
                 "item_id"]].reset_index(drop=True)
