"""Requests between the teams and hot flags on top of a synthetic CRM (issue 26's team clocks)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import frames
from abm_sla.services.synthetic.common import SUBJECTS, _ids

#: Issue 26's team clocks in the demo: requests per account per month by tier, the share answered and how late
#: (hours: most within a business day, some a few days later, some never), hot flags per Tier 1/2 account.
REQUESTS_PER_MONTH = {"1": 0.5, "2": 0.15, "3": 0.02}
ANSWER_DELAYS = ((0.70, 0.5, 20.0), (0.22, 20.0, 96.0), (0.08, None, None))
HOT_FLAGS_PER_MONTH = {"1": 0.3, "2": 0.1, "3": 0.0}


def add_team_requests(crm: dict[str, pd.DataFrame], start: pd.Timestamp, days: int, seed: int) -> dict:
    """Requests between the teams (``requests``: sales asks marketing for materials, marketing asks sales for
    account information; answered after :data:`ANSWER_DELAYS`) and hot flags by the account's owner
    (``hot_flag`` activities) followed by marketing's account research (same delays), from their own random
    stream; times fall in business hours of weekdays (UTC)."""
    rng = np.random.default_rng([seed, 26])
    accounts, users = crm["accounts"], crm["users"]
    tier = accounts["tier"].fillna("3").astype(str)
    marketers = users.loc[users["role"].eq("marketing"), "user_id"].to_numpy()
    if not len(marketers):
        marketers = users["user_id"].to_numpy()

    def moments(n: int) -> pd.Series:
        day = rng.integers(0, days, n)
        at = pd.Series(start.normalize() + pd.to_timedelta(day, unit="D")
                       + pd.to_timedelta(rng.uniform(9, 17, n), unit="h"))
        weekend = at.dt.dayofweek.to_numpy() >= 5
        return (at + pd.to_timedelta(np.where(weekend, 7 - at.dt.dayofweek.to_numpy(), 0), unit="D")).reset_index(
            drop=True)

    def answers(asked: pd.Series) -> pd.Series:
        shares = np.array([part[0] for part in ANSWER_DELAYS])
        band = rng.choice(len(shares), len(asked), p=shares / shares.sum())
        lows = np.array([part[1] or 0.0 for part in ANSWER_DELAYS])[band]
        highs = np.array([part[2] or 0.0 for part in ANSWER_DELAYS])[band]
        delay = pd.to_timedelta(rng.uniform(lows, highs), unit="h")
        return (asked + delay).where(band < len(shares) - 1)

    counts = rng.poisson(tier.map(REQUESTS_PER_MONTH).to_numpy() * days / 30)
    account = np.repeat(accounts["account_id"].to_numpy(), counts)
    owner = np.repeat(accounts["owner_id"].to_numpy(), counts)
    materials = rng.random(len(account)) < 0.5
    marketer = marketers[rng.integers(0, len(marketers), len(account))]
    asked = moments(len(account))
    requests = pd.DataFrame({
        "request_id": _ids("REQ", len(account), 5), "account_id": account,
        "kind": np.where(materials, "materials", "account_info").astype(object),
        "requested_by": np.where(materials, owner, marketer).astype(object), "requested_at": asked,
        "answered_at": answers(asked), "owner_id": np.where(materials, marketer, owner).astype(object),
    }).sort_values("requested_at", kind="stable", ignore_index=True)
    counts = rng.poisson(tier.map(HOT_FLAGS_PER_MONTH).to_numpy() * days / 30)
    account = np.repeat(accounts["account_id"].to_numpy(), counts)
    flagged = moments(len(account))
    flags = pd.DataFrame({"account_id": account, "type": frames.HOT_FLAG, "occurred_at": flagged,
                          "owner_id": np.repeat(accounts["owner_id"].to_numpy(), counts),
                          "subject": SUBJECTS[frames.HOT_FLAG][0]})
    answered = answers(flagged)
    research = pd.DataFrame({"account_id": account[answered.notna().to_numpy()], "type": "account_research",
                             "occurred_at": answered.dropna().to_numpy(),
                             "owner_id": marketers[rng.integers(0, len(marketers), int(answered.notna().sum()))],
                             "subject": SUBJECTS["account_research"][1]})
    extra = pd.concat([flags, research], ignore_index=True).astype({"occurred_at": "datetime64[ns, UTC]"})
    extra["activity_id"] = _ids("HOT", len(extra), 5)
    extra = extra.reindex(columns=frames.ACTIVITY_COLUMNS)
    extra["logged_at"] = pd.Series(pd.NaT, index=extra.index, dtype="datetime64[ns, UTC]")
    out = dict(crm)
    out["activities"] = pd.concat([crm["activities"], extra], ignore_index=True).sort_values(
        "occurred_at", kind="stable", ignore_index=True)
    out["requests"] = requests[frames.REQUEST_COLUMNS]
    return out
