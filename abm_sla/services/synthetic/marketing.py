"""The marketing program on top of a synthetic CRM: channel touches, account research, Tier 1
campaigns and the target account list."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import frames
from abm_sla.services.synthetic.common import DAY, SUBJECTS, _ids

#: Channel touches per account per month by tier (Poisson means) and the TAL share of each tier.
CHANNEL_TOUCHES_PER_MONTH = {"1": 2.0, "2": 0.8, "3": 0.15}
TAL_SHARE = {"1": 1.0, "2": 0.6, "3": 0.05}


def add_marketing_program(crm: dict[str, pd.DataFrame], start: pd.Timestamp, days: int, seed: int) -> dict:
    """The marketing side on top of a synthetic CRM (own random stream): ad clicks, content downloads and
    event attendance by tier, account research after Tier 1 pricing visits (most within 2 business hours,
    some late, some never), and a target account list agreed monthly (``target_accounts``)."""
    rng = np.random.default_rng(seed + 15)
    out = dict(crm)
    tal = _target_list(rng, crm["accounts"], start, days)
    channel = _channel_touches(rng, crm["accounts"], crm["contacts"], start, days)
    research = _research(rng, crm["activities"], crm["accounts"], crm["users"])
    campaigns = _campaigns(np.random.default_rng(seed + 26), crm["accounts"], crm["users"], start, days)
    parts = [part for part in (channel, research, campaigns) if len(part)]  # an empty part has no dtypes to give
    extra = pd.concat(parts or [channel], ignore_index=True)
    extra["activity_id"] = _ids("MKT", len(extra), 7)
    extra = extra.astype({"occurred_at": "datetime64[ns, UTC]"})
    extra["logged_at"] = pd.Series(pd.NaT, index=extra.index, dtype="datetime64[ns, UTC]")
    activities = pd.concat([crm["activities"], extra[frames.ACTIVITY_COLUMNS]], ignore_index=True)
    out["activities"] = activities.sort_values("occurred_at", kind="stable", ignore_index=True)
    out["target_accounts"] = _priorities(np.random.default_rng(seed + 27), tal, crm["accounts"])
    return out


#: Campaign starts on every Tier 1 account (days after the start) and what share of them marketing researches
#: within 30 days, late (31-50 days) or never.
CAMPAIGN_DAYS = (3, 45)
RESEARCH_SHARES = (0.75, 0.15)


def _campaigns(rng: np.random.Generator, accounts: pd.DataFrame, users: pd.DataFrame, start: pd.Timestamp,
               days: int) -> pd.DataFrame:
    """Tier 1 campaigns (``campaign_start`` on each Tier 1 account) and marketing's account research after each:
    75% within 1-25 days, 15% after 31-50 days, 10% never (docs/designs/tier1-commitments.md)."""
    tier1 = accounts.loc[accounts["tier"].astype(str).eq("1"), "account_id"].to_numpy()
    marketers = users.loc[users["role"].eq("marketing"), "user_id"].to_numpy()
    parts = []
    for number, day in enumerate(d for d in CAMPAIGN_DAYS if d < days):
        started = start + pd.Timedelta(days=day, hours=14)
        subject = SUBJECTS["campaign_start"][number % len(SUBJECTS["campaign_start"])]
        parts.append(pd.DataFrame({"account_id": tier1, "type": "campaign_start", "occurred_at": started,
                                   "contact_id": None, "owner_id": None, "url": None, "subject": subject}))
        draw = rng.random(len(tier1))
        delay = np.where(draw < RESEARCH_SHARES[0], rng.uniform(1, 25, len(tier1)), rng.uniform(31, 50, len(tier1)))
        keep = draw < sum(RESEARCH_SHARES)
        who = marketers[rng.integers(0, len(marketers), int(keep.sum()))] if len(marketers) else None
        parts.append(pd.DataFrame({"account_id": tier1[keep], "type": "account_research",
                                   "occurred_at": started + pd.to_timedelta(delay[keep], unit="D"),
                                   "contact_id": None, "owner_id": who, "url": None,
                                   "subject": SUBJECTS["account_research"][1]}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["account_id", "type", "occurred_at", "contact_id", "owner_id", "url", "subject"])


def _priorities(rng: np.random.Generator, tal: pd.DataFrame, accounts: pd.DataFrame) -> pd.DataFrame:
    """The list's ranking (``priority``, 1 first): Tier 1 accounts first, then Tier 2, then Tier 3, shuffled."""
    tier = tal["account_id"].map(accounts.set_index("account_id")["tier"]).fillna("3").astype(str)
    order = np.lexsort((rng.random(len(tal)), tier.to_numpy()))
    priority = np.empty(len(tal))
    priority[order] = np.arange(1, len(tal) + 1)
    return tal.assign(priority=priority)


def _target_list(rng: np.random.Generator, accounts: pd.DataFrame, start: pd.Timestamp, days: int) -> pd.DataFrame:
    """Every Tier 1, most Tier 2 and a few Tier 3 accounts on the list from 10 days before ``start``;
    a few join or leave at a later monthly agreement (agreed_at = the agreement that added or removed them)."""
    tier = accounts["tier"].fillna("3").astype(str)
    listed = rng.random(len(accounts)) < tier.map(TAL_SHARE).to_numpy()
    agreements = [start - pd.Timedelta(days=10), *(start + pd.Timedelta(days=d) for d in range(30, days, 30))]
    when = rng.integers(0, len(agreements), len(accounts))
    late = rng.random(len(accounts)) < 0.1
    added = np.where(late, when, 0)
    leaves = listed & ~late & (rng.random(len(accounts)) < 0.04) & (len(agreements) > 1)
    removed = np.where(leaves, np.maximum(when, 1), -1)
    stamps = np.array([moment.tz_convert(None).to_datetime64() for moment in agreements], dtype="datetime64[ns]")
    rows = pd.DataFrame({
        "account_id": accounts["account_id"].to_numpy()[listed],
        "added_at": pd.to_datetime(stamps[added[listed]]).tz_localize("UTC"),
        "removed_at": pd.to_datetime(np.where(removed[listed] >= 0, stamps[np.maximum(removed[listed], 0)],
                                              np.datetime64("NaT"))).tz_localize("UTC"),
        "agreed_by": "U001",
    })
    rows["agreed_at"] = rows["removed_at"].fillna(rows["added_at"])
    rows["priority"] = np.nan
    rows["target_account_id"] = rows["account_id"] + "|" + rows["added_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return rows[frames.TARGET_ACCOUNT_COLUMNS].reset_index(drop=True)


def _channel_touches(rng: np.random.Generator, accounts: pd.DataFrame, contacts: pd.DataFrame,
                     start: pd.Timestamp, days: int) -> pd.DataFrame:
    """Ad clicks, content downloads and event attendance, Poisson by tier, by one of the account's contacts."""
    tier = accounts["tier"].fillna("3").astype(str)
    counts = rng.poisson(tier.map(CHANNEL_TOUCHES_PER_MONTH).to_numpy() * days / 30)
    account = np.repeat(accounts["account_id"].to_numpy(), counts)
    people = contacts.groupby("account_id")["contact_id"].agg(list)
    pick = rng.random(len(account))
    contact = [(lambda c, r: c[int(r * len(c))] if isinstance(c, list) and c else None)(people.get(a), r)
               for a, r in zip(account, pick, strict=True)]
    kinds = np.array(frames.CHANNEL_TOUCHES, dtype=object)[rng.choice(3, len(account), p=[0.5, 0.35, 0.15])]
    at = start + pd.to_timedelta(rng.integers(0, days * DAY, len(account)), unit="s")
    subjects = [SUBJECTS[kind][i % len(SUBJECTS[kind])] for i, kind in enumerate(kinds)]
    return pd.DataFrame({"account_id": account, "type": kinds, "occurred_at": at, "contact_id": contact,
                         "owner_id": None, "url": None, "subject": subjects})


def _research(rng: np.random.Generator, activities: pd.DataFrame, accounts: pd.DataFrame,
              users: pd.DataFrame) -> pd.DataFrame:
    """Account research by marketing after a Tier 1 account's first pricing visit of a day: 70% within
    about an hour, 15% a day later, 15% never."""
    tier1 = set(accounts.loc[accounts["tier"].astype(str).eq("1"), "account_id"])
    visits = activities[activities["type"].eq("web_visit") & activities["url"].astype(str).str.contains("/pricing")
                        & activities["account_id"].isin(tier1)]
    visits = visits.assign(day=visits["occurred_at"].dt.floor("D")).drop_duplicates(["account_id", "day"])
    draw = rng.random(len(visits))
    delay = np.where(draw < 0.7, rng.uniform(0.2, 1.5, len(visits)), 26.0)
    keep = draw < 0.85
    marketers = users.loc[users["role"].eq("marketing"), "user_id"].to_numpy()
    return pd.DataFrame({
        "account_id": visits["account_id"].to_numpy()[keep], "type": "account_research",
        "occurred_at": (visits["occurred_at"] + pd.to_timedelta(delay, unit="h")).to_numpy()[keep],
        "contact_id": None, "owner_id": marketers[rng.integers(0, len(marketers), int(keep.sum()))],
        "url": None, "subject": SUBJECTS["account_research"][0],
    })
