"""What every SLA clock shares: the clock names and columns, a clock's status, sales touches and the event
index, where an MQA's clocks start, the MQA episodes, owner calendars, windows and due times, UTC helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import regions
from abm_sla.domain.calendar import add_business_hours, end_of_business_day
from abm_sla.domain.frames import SALES_TOUCHES
from abm_sla.domain.policy import SlaPolicy, Window
from abm_sla.domain.routing import parse_tier

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


def clock_status(due_at: pd.Series, met_at: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """``met`` / ``missed`` / ``pending`` (the boundary ``as_of == due_at`` is pending)."""
    met = met_at.notna() & (met_at <= due_at)
    missed = (met_at.notna() & (met_at > due_at)) | (met_at.isna() & due_at.notna() & (due_at < as_of))
    status = np.select([met, missed], ["met", "missed"], "pending")
    return pd.Series(status, index=due_at.index, dtype="object")


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


def clock_start(mqas: pd.DataFrame) -> pd.Series:
    """Where the owner's clocks start: routed_at, or reassigned_at once the MQA was reassigned on a breach."""
    routed = _to_utc(mqas["routed_at"])
    if "reassigned_at" not in mqas:
        return routed
    reassigned = _to_utc(mqas["reassigned_at"])
    return reassigned.where(reassigned.notna(), routed).astype(UTC)


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
