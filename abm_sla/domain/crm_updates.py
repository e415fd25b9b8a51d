"""How promptly the CRM is kept up to date (ABM template, issue 26). Pure, vectorized, no clock.

- **Logged in time** (policy ``crm_updates``): every activity of ``sales_types`` (meetings and calls) and of
  ``marketing_types`` (engaged-lead touches) that happened in ``[start, end)`` and has a ``logged_at`` is judged:
  in time when ``logged_at - occurred_at <= hours``. An activity without ``logged_at`` (the column is optional)
  is not judged. Its owner is the activity's ``owner_id`` (who logged it), else its account's owner.
- **Accounts updated**: every account on the list at the period's end (:func:`scorecard.listed_accounts`) is
  updated when an activity was logged (``logged_at``, else ``occurred_at``) or a status changed on it in
  ``[start, end)``; the others are *stale*, listed with their last update before ``end``.
"""

from __future__ import annotations

import pandas as pd

from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.policy.reports import CrmUpdates
from abm_sla.domain.scorecard import SlaData

SALES, MARKETING = "sales", "marketing"
LOGGING_COLUMNS = ["activity_id", "account_id", "type", "side", "tier", "owner_id", "occurred_at", "logged_at",
                   "delay_hours", "sales", "marketing", "sales_in_time", "marketing_in_time", "in_time"]
UPDATE_COLUMNS = ["account_id", "account_name", "tier", "owner_id", "updated", "last_update_at"]
UTC = "datetime64[ns, UTC]"


def settings(policy: SlaPolicy) -> CrmUpdates:
    """The policy's ``crm_updates``, or its defaults when absent (the catalog measures either way)."""
    return policy.crm_updates if policy.crm_updates is not None else CrmUpdates()


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, errors="coerce")


def logging_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """One row per judged activity of ``[start, end)`` (:data:`LOGGING_COLUMNS`): its side (``sales`` or
    ``marketing``), delay in hours from occurred_at to logged_at, and whether it was logged in time."""
    rule = settings(policy)
    acts = data.activities
    if "logged_at" not in acts.columns or not len(acts):
        return pd.DataFrame({column: pd.Series(dtype="object") for column in LOGGING_COLUMNS})
    side = pd.Series(None, index=acts.index, dtype="object")
    side[acts["type"].isin(rule.marketing_types)] = MARKETING
    side[acts["type"].isin(rule.sales_types)] = SALES  # a type in both lists counts as sales
    logged = _utc(acts["logged_at"])
    keep = side.notna() & sc.within(acts["occurred_at"], start, end) & logged.notna()
    rows = acts[keep]
    dims = sc.account_dimensions(data).set_index("account_id")
    ids = rows["account_id"].astype(str)
    delay = (logged[keep] - rows["occurred_at"]).dt.total_seconds() / 3600
    in_time = delay <= rule.hours
    owner = rows["owner_id"].where(rows["owner_id"].notna(), ids.map(dims["owner_id"]))
    out = pd.DataFrame({
        "activity_id": rows["activity_id"], "account_id": ids, "type": rows["type"], "side": side[keep],
        "tier": ids.map(dims["tier"]).fillna(3).astype(int), "owner_id": owner,
        "occurred_at": rows["occurred_at"], "logged_at": logged[keep], "delay_hours": delay.round(2),
        "sales": side[keep].eq(SALES), "marketing": side[keep].eq(MARKETING)})
    out = out.assign(sales_in_time=out["sales"] & in_time, marketing_in_time=out["marketing"] & in_time,
                     in_time=in_time)
    return out[LOGGING_COLUMNS].reset_index(drop=True)


def account_update_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Per account on the list at ``end`` (:data:`UPDATE_COLUMNS`): ``updated`` when an activity was logged or a
    status changed on it in ``[start, end)``; ``last_update_at`` = the latest such moment before ``end``."""
    accounts = sc.listed_accounts(data, end)
    acts = data.activities
    moment = _utc(acts["logged_at"]) if "logged_at" in acts.columns else pd.Series(pd.NaT, index=acts.index)
    moment = moment.where(moment.notna(), acts["occurred_at"]).astype(UTC)
    changes = data.status_changes
    updates = pd.concat([
        pd.DataFrame({"account_id": acts["account_id"].astype(str), "at": moment}),
        pd.DataFrame({"account_id": changes["account_id"].astype(str), "at": _utc(changes["changed_at"])}),
    ], ignore_index=True)
    updates = updates[updates["at"] < end]
    last = updates.groupby("account_id")["at"].max()
    last_at = accounts["account_id"].map(last)
    return accounts.assign(updated=last_at.notna() & (last_at >= start),
                           last_update_at=last_at.astype(UTC))[UPDATE_COLUMNS].reset_index(drop=True)


def stale_accounts(facts: pd.DataFrame) -> pd.DataFrame:
    """The listed accounts not updated in the period, the longest-stale first (never updated on top)."""
    stale = facts[~facts["updated"]].drop(columns="updated")
    return stale.sort_values("last_update_at", na_position="first", kind="stable").reset_index(drop=True)
