"""Coordination between the teams beyond the clocks (issue 26), pure and vectorized; ``as_of`` passed in.

- **Outreach collisions** (ABM template, "coordinate 1:1 outreach with marketing campaigns: no duplicate or
  conflicting messages"): a sales touch in the period and a marketing touch (policy ``coordination.marketing_types``)
  to the same contact within ``coordination.window_hours`` of each other, before or after. When either touch has no
  contact, the same account is enough. One fact row per sales touch of the period, ``collided`` when it has one.
- **Content coverage** (seven commitments, "marketing provides templates, talking points and content for sales'
  touches"): an MQA triggered in the period is covered when its account received a marketing touch of a
  ``content_support.types`` type in the ``lookback_days`` before sales' first touch of the episode (before the
  episode's end or ``as_of`` while sales has not touched it).
- **Campaign calendar** (ABM template, "campaigns planned jointly each quarter and assigned to tiers"): the
  campaigns started in the period (``campaign_start`` activities, ``subject`` = the campaign) per tier of the
  accounts they started on; a tier of ``campaign_plan.tiers`` without a campaign is flagged.
- **Review attendance** (implementation guide, "sales attends the quarterly account review"): who attended the
  quarter's review per side; a side of ``review_attendance.required`` with nobody is absent.

Only activities that occurred at or before ``as_of`` count. No clock read, no I/O.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import frames
from abm_sla.domain.policy.teams import CampaignPlan, ContentSupport, Coordination, ReviewAttendance
from abm_sla.domain.routing import parse_tier

COLLISION_COLUMNS = ["account_id", "contact_id", "sales_activity_id", "sales_type", "sales_at", "sales_owner_id",
                     "marketing_activity_id", "marketing_type", "marketing_at", "gap_hours"]
CAMPAIGN_COLUMNS = ["campaign", "tier", "accounts_started", "first_start", "last_start"]
ATTENDANCE_COLUMNS = ["side", "attended", "attendees"]
SIDES = ("sales", "marketing")
CAMPAIGN_START = "campaign_start"


def _acts(activities: pd.DataFrame, types, as_of: pd.Timestamp) -> pd.DataFrame:
    acts = activities[activities["type"].isin(list(types)) & (activities["occurred_at"] <= as_of)]
    return acts.assign(account_id=acts["account_id"].astype(str))


def collisions(activities: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
               settings: Coordination) -> pd.DataFrame:
    """Every (sales touch in ``[start, end)``, marketing touch) pair within the window (:data:`COLLISION_COLUMNS`),
    nearest first per sales touch."""
    window = pd.Timedelta(hours=settings.window_hours)
    sales = _acts(activities, frames.SALES_TOUCHES, as_of)
    sales = sales[(sales["occurred_at"] >= start) & (sales["occurred_at"] < end)]
    market = _acts(activities, settings.marketing_types, as_of)
    market = market[(market["occurred_at"] >= start - window) & (market["occurred_at"] < end + window)]
    if sales.empty or market.empty:
        return pd.DataFrame({column: pd.Series(dtype="object") for column in COLLISION_COLUMNS})
    pairs = sales[["activity_id", "account_id", "contact_id", "type", "occurred_at", "owner_id"]].merge(
        market[["activity_id", "account_id", "contact_id", "type", "occurred_at"]], on="account_id",
        suffixes=("_s", "_m"))
    gap = (pairs["occurred_at_m"] - pairs["occurred_at_s"]).abs()
    same = pairs["contact_id_s"].isna() | pairs["contact_id_m"].isna() | (
        pairs["contact_id_s"].astype(str) == pairs["contact_id_m"].astype(str))
    pairs = pairs[same.to_numpy() & (gap <= window).to_numpy()].assign(gap_hours=(gap / pd.Timedelta(hours=1)).round(1))
    out = pd.DataFrame({
        "account_id": pairs["account_id"], "contact_id": pairs["contact_id_s"].where(pairs["contact_id_s"].notna(),
                                                                             pairs["contact_id_m"]),
        "sales_activity_id": pairs["activity_id_s"], "sales_type": pairs["type_s"], "sales_at": pairs["occurred_at_s"],
        "sales_owner_id": pairs["owner_id"], "marketing_activity_id": pairs["activity_id_m"],
        "marketing_type": pairs["type_m"], "marketing_at": pairs["occurred_at_m"], "gap_hours": pairs["gap_hours"]})
    return out.sort_values(["sales_at", "sales_activity_id", "gap_hours"]).reset_index(drop=True)


def collision_facts(activities: pd.DataFrame, accounts: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                    as_of: pd.Timestamp, settings: Coordination | None) -> pd.DataFrame:
    """One row per sales touch in ``[start, end)``: ``account_id, tier, owner_id, collided`` (none without the
    policy)."""
    columns = {"account_id": "object", "tier": "int64", "owner_id": "object", "collided": "bool"}
    if settings is None:
        return pd.DataFrame({column: pd.Series(dtype=kind) for column, kind in columns.items()})
    sales = _acts(activities, frames.SALES_TOUCHES, as_of)
    sales = sales[(sales["occurred_at"] >= start) & (sales["occurred_at"] < end)]
    hit = set(collisions(activities, start, end, as_of, settings)["sales_activity_id"])
    dims = _dimensions(accounts)
    ids = sales["account_id"].reset_index(drop=True)
    return pd.DataFrame({"account_id": ids, "tier": ids.map(dims["tier"]).fillna(3).astype(int),
                         "owner_id": ids.map(dims["owner_id"]),
                         "collided": sales["activity_id"].isin(hit).to_numpy()})


def _dimensions(accounts: pd.DataFrame) -> pd.DataFrame:
    """Per account id: tier (missing = 3) and owner_id."""
    frame = accounts.assign(account_id=accounts["account_id"].astype(str)).drop_duplicates("account_id")
    return pd.DataFrame({"tier": parse_tier(frame["tier"]).to_numpy(),
                         "owner_id": frame["owner_id"].to_numpy()}, index=frame["account_id"].to_numpy())


def content_coverage(mqas: pd.DataFrame, activities: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                     as_of: pd.Timestamp, settings: ContentSupport | None) -> pd.DataFrame:
    """One row per MQA triggered in ``[start, end)`` by ``as_of``: ``account_id, trigger_at, tier, owner_id,
    first_sales_touch_at, content_at`` (the last content touch in the lookback before the first sales touch) and
    ``covered`` (none without the policy)."""
    columns = ["account_id", "trigger_at", "tier", "owner_id", "first_sales_touch_at", "content_at", "covered"]
    if settings is None or mqas is None or mqas.empty:
        return pd.DataFrame({column: pd.Series(dtype="bool" if column == "covered" else "object")
                             for column in columns})
    episodes = mqas[(mqas["trigger_at"] >= start) & (mqas["trigger_at"] < end) & (mqas["trigger_at"] <= as_of)]
    episodes = episodes.assign(account_id=episodes["account_id"].astype(str)).reset_index(drop=True)
    episodes["_episode"] = np.arange(len(episodes))
    ended = episodes["ended_at"].where(episodes["ended_at"].notna() & (episodes["ended_at"] <= as_of), as_of)
    sales = _acts(activities, frames.SALES_TOUCHES, as_of)[["account_id", "occurred_at"]]
    touched = episodes[["_episode", "account_id", "trigger_at"]].assign(_ended=ended).merge(sales, on="account_id")
    touched = touched[(touched["occurred_at"] >= touched["trigger_at"]) & (touched["occurred_at"] <= touched["_ended"])]
    first = touched.groupby("_episode")["occurred_at"].min()
    episodes["first_sales_touch_at"] = episodes["_episode"].map(first)
    episodes["_until"] = episodes["first_sales_touch_at"].fillna(ended)
    content = _acts(activities, settings.types, as_of)[["account_id", "occurred_at"]]
    seen = episodes[["_episode", "account_id", "_until"]].merge(content, on="account_id")
    lookback = pd.Timedelta(days=settings.lookback_days)
    seen = seen[(seen["occurred_at"] <= seen["_until"]) & (seen["occurred_at"] > seen["_until"] - lookback)]
    episodes["content_at"] = episodes["_episode"].map(seen.groupby("_episode")["occurred_at"].max())
    episodes["covered"] = episodes["content_at"].notna()
    episodes["tier"] = pd.to_numeric(episodes["tier"], errors="coerce").fillna(3).astype(int)
    return episodes[columns]


def campaign_calendar(activities: pd.DataFrame, accounts: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                      as_of: pd.Timestamp) -> pd.DataFrame:
    """The campaigns started in ``[start, end)`` per tier (:data:`CAMPAIGN_COLUMNS`): one row per campaign (the
    ``campaign_start`` subject, trimmed; empty = "(unnamed)") and tier of the accounts it started on."""
    starts = _acts(activities, (CAMPAIGN_START,), as_of)
    starts = starts[(starts["occurred_at"] >= start) & (starts["occurred_at"] < end)]
    if starts.empty:
        return pd.DataFrame({column: pd.Series(dtype="object") for column in CAMPAIGN_COLUMNS})
    name = starts["subject"].astype("string").str.strip().replace("", pd.NA).fillna("(unnamed)").astype(str)
    tiers = starts["account_id"].map(_dimensions(accounts)["tier"]).fillna(3).astype(int)
    grouped = starts.assign(campaign=name, tier=tiers).groupby(["campaign", "tier"])
    out = grouped.agg(accounts_started=("account_id", "nunique"), first_start=("occurred_at", "min"),
                      last_start=("occurred_at", "max")).reset_index()
    return out.sort_values(["tier", "first_start", "campaign"]).reset_index(drop=True)[CAMPAIGN_COLUMNS]


def campaign_tiers(calendar: pd.DataFrame, settings: CampaignPlan | None) -> pd.DataFrame:
    """One row per tier the plan requires: ``tier, campaigns`` (distinct campaigns started on it) and ``without``
    (none: flagged); empty without the policy."""
    if settings is None:
        return pd.DataFrame({"tier": pd.Series(dtype="int64"), "campaigns": pd.Series(dtype="int64"),
                             "without": pd.Series(dtype="bool")})
    counts = calendar.groupby("tier")["campaign"].nunique() if len(calendar) else pd.Series(dtype="int64")
    tiers = sorted(set(settings.tiers))
    campaigns = [int(counts.get(tier, 0)) for tier in tiers]
    return pd.DataFrame({"tier": tiers, "campaigns": campaigns, "without": [count == 0 for count in campaigns]})


PLAN_COLUMNS = ["campaign", "planned_tiers", "personas", "started_tiers", "accounts_started", "status"]
AS_PLANNED, NOT_STARTED, OFF_PLAN, UNPLANNED = "as planned", "not started", "off-plan tier", "not in the plan"


def plan_check(calendar: pd.DataFrame, settings: CampaignPlan | None) -> pd.DataFrame:
    """Each planned campaign (``campaign_plan.campaigns``) against its starts in the period, then each started
    campaign the plan does not name (:data:`PLAN_COLUMNS`): ``as planned``, ``not started``, ``off-plan tier``
    (started on a tier it is not assigned to) or ``not in the plan``. Empty without a plan."""
    if settings is None or not settings.campaigns:
        return pd.DataFrame({column: pd.Series(dtype="object") for column in PLAN_COLUMNS})
    started = {name: sorted(set(rows["tier"])) for name, rows in calendar.groupby("campaign")} if len(calendar) else {}
    reached = calendar.groupby("campaign")["accounts_started"].sum() if len(calendar) else pd.Series(dtype="int64")
    rows = []
    for name, plan in settings.campaigns.items():
        tiers = started.get(name, [])
        status = NOT_STARTED if not tiers else OFF_PLAN if set(tiers) - set(plan.tiers) else AS_PLANNED
        rows.append([name, ", ".join(map(str, sorted(set(plan.tiers)))), ", ".join(plan.personas),
                     ", ".join(map(str, tiers)), int(reached.get(name, 0)), status])
    for name, tiers in started.items():
        if name not in settings.campaigns:
            rows.append([name, "", "", ", ".join(map(str, tiers)), int(reached.get(name, 0)), UNPLANNED])
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def attendance(attendees: pd.DataFrame, quarter: str, settings: ReviewAttendance | None) -> pd.DataFrame:
    """Per side (sales, marketing): ``attended`` and the ``attendees`` (names, comma-separated) of the review of
    ``quarter`` (``2026-Q1``); a side not required and absent is left out. Empty without the policy."""
    if settings is None:
        return pd.DataFrame({column: pd.Series(dtype="object") for column in ATTENDANCE_COLUMNS})
    rows = attendees[attendees["period"] == quarter] if len(attendees) else attendees
    names = {side: sorted(set(rows.loc[rows["side"] == side, "name"])) if len(rows) else [] for side in SIDES}
    shown = [side for side in SIDES if side in settings.required or names[side]]
    return pd.DataFrame({"side": shown, "attended": [bool(names[side]) for side in shown],
                         "attendees": [", ".join(names[side]) for side in shown]})


def absent_sides(table: pd.DataFrame, settings: ReviewAttendance | None) -> list[str]:
    """The required sides nobody attended for (an :func:`attendance` table)."""
    if settings is None:
        return []
    attended = set(table.loc[table["attended"].astype(bool), "side"])
    return [side for side in SIDES if side in settings.required and side not in attended]
