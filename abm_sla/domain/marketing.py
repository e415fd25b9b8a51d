"""The marketing side of the SLA (issue 15), pure and vectorized: touch tempo, channel coverage, the
engaged-account stage, the ``marketing_response`` clock and the target account list (TAL).

Every function takes DataFrames (``abm_sla.domain.frames`` columns), the period ``[start, end)`` and/or an
``as_of`` and the policy, never reads the clock, and returns DataFrames. Not part of SPEC; all of it is
switched on by the policy's ``marketing`` and ``target_account_list`` sections (docs/policy/marketing.md).

Definitions:

- a *marketing touch* here is an activity of a type in ``marketing.channels`` (SPEC's marketing touches
  plus ``ad_click``, ``content_download``, ``event_attended`` by default); its channel is the one listing it;
- TAL membership at a moment ``t``: a ``target_accounts`` row with ``added_at <= t`` (missing: always)
  and ``removed_at`` missing or ``> t``. "A TAL exists" when there is any row at all;
- the accounts *measured* at ``t`` are the TAL members when a TAL exists, else every account created by ``t``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain.frames import to_utc as _utc
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.policy.marketing import EngagedAccount, Marketing, MarketingResponse
from abm_sla.domain.routing import parse_tier as tiers
from abm_sla.domain.scoring import url_path

UTC = "datetime64[ns, UTC]"
TEMPO_COLUMNS = ["account_id", "tier", "touches", "periods", "per", "touches_per_period", "min", "max", "status"]
COVERAGE_COLUMNS = ["account_id", "tier", "channels", "channel_count", "channels_min", "covered"]
ENGAGED_COLUMNS = ["account_id", "tier", "engaged_contacts", "engaged", "open_mqa"]
ABM, NON_ABM = "ABM (on the TAL)", "non-ABM"


def marketing_settings(policy: SlaPolicy) -> Marketing:
    """The policy's marketing section (absent: the defaults, with no tempo and no response clock)."""
    return policy.marketing if policy.marketing is not None else Marketing()


# -- target account list ----------------------------------------------------------------------------

def tal_exists(target_accounts: pd.DataFrame) -> bool:
    """Whether any target account list row is known (then only members are measured)."""
    return bool(target_accounts["account_id"].notna().any()) if len(target_accounts) else False


def on_list_at(target_accounts: pd.DataFrame, accounts: pd.Series, moments: pd.Series | pd.Timestamp) -> pd.Series:
    """Per row: was the account on the TAL at its moment (``added_at <= t < removed_at``)?"""
    moments = moments if isinstance(moments, pd.Series) else pd.Series(moments, index=accounts.index)
    left = pd.DataFrame({"row": np.arange(len(accounts)), "account_id": accounts.astype(str).to_numpy(),
                         "at": _utc(moments).to_numpy()})
    rows = pd.DataFrame({"account_id": target_accounts["account_id"].astype(str),
                         "added_at": _utc(target_accounts["added_at"]),
                         "removed_at": _utc(target_accounts["removed_at"])})
    joined = left.merge(rows, on="account_id", how="inner")
    member = ((joined["added_at"].isna() | (joined["added_at"] <= joined["at"]))
              & (joined["removed_at"].isna() | (joined["removed_at"] > joined["at"])))
    hits = np.zeros(len(accounts), dtype=bool)
    hits[joined.loc[member.to_numpy(), "row"].to_numpy()] = True
    return pd.Series(hits, index=accounts.index)


def measured_accounts(accounts: pd.DataFrame, target_accounts: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    """``account_id, tier`` of the accounts measured at ``at``: TAL members when a TAL exists, else all
    accounts created by then (tier normalized: missing is Tier 3)."""
    rows = accounts[accounts["created_at"].isna() | (_utc(accounts["created_at"]) <= at)]
    out = pd.DataFrame({"account_id": rows["account_id"].astype(str).to_numpy(),
                        "tier": tiers(rows["tier"]).to_numpy()}).drop_duplicates("account_id")
    if tal_exists(target_accounts):
        out = out[on_list_at(target_accounts, out["account_id"], at).to_numpy()]
    return out.reset_index(drop=True)


def tal_agreement(target_accounts: pd.DataFrame, accounts: pd.DataFrame, as_of: pd.Timestamp,
                  policy: SlaPolicy) -> pd.DataFrame:
    """One row: accounts on the list as of ``as_of``, added and removed in the last ``agreement_days``, the
    last recorded agreement (``agreed_at``, ``agreed_by``), its age in days and whether it is overdue."""
    limit = policy.target_account_list.agreement_days if policy.target_account_list else 31.0
    rows = target_accounts[target_accounts["account_id"].notna()]
    members = measured_accounts(accounts, rows, as_of) if tal_exists(rows) else []
    agreed = rows[_utc(rows["agreed_at"]) <= as_of]
    last = agreed.loc[_utc(agreed["agreed_at"]).idxmax()] if agreed["agreed_at"].notna().any() else None
    since = as_of - pd.Timedelta(days=limit)
    age = (as_of - last["agreed_at"]) / pd.Timedelta(days=1) if last is not None else np.nan
    return pd.DataFrame([{
        "on_list": len(members),
        "added_recently": int(_utc(rows["added_at"]).between(since, as_of, inclusive="right").sum()),
        "removed_recently": int(_utc(rows["removed_at"]).between(since, as_of, inclusive="right").sum()),
        "last_agreed_at": None if last is None else last["agreed_at"],
        "agreed_by": None if last is None else last["agreed_by"],
        "agreement_age_days": round(float(age), 1) if pd.notna(age) else np.nan,
        "agreement_overdue": bool(pd.isna(age) or age > limit) if tal_exists(rows) else None,
    }])


#: abm_comparison's columns and the catalog metric each is read from (the closed family, ``list=`` segments).
ABM_METRICS = {"closed": "opportunities_closed", "won": "opportunities_won", "win_rate_pct": "win_rate",
               "median_cycle_days": "sales_cycle_median_days"}


def abm_comparison(opportunities: pd.DataFrame, target_accounts: pd.DataFrame, start: pd.Timestamp,
                   end: pd.Timestamp, as_of: pd.Timestamp) -> pd.DataFrame:
    """ABM (account on the TAL when the opportunity was created) against non-ABM opportunities closed in
    ``[start, end)`` by ``as_of``: closed, won, win rate % and median sales cycle (days, of the won): the metrics
    catalog's closed family in its ``list=on`` and ``list=off`` segments."""
    from abm_sla.domain import metrics
    from abm_sla.domain.scorecard import SlaData

    data = SlaData.of(opportunities=opportunities, target_accounts=target_accounts)
    table = metrics.family_table("closed", metrics.closed_facts(data, start, end, as_of), ("list",))
    values = table.pivot(index="segment", columns="metric", values="value").reindex(["list=on", "list=off"])
    out = pd.DataFrame({"group": [ABM, NON_ABM]})
    for column, metric in ABM_METRICS.items():
        out[column] = values[metric].to_numpy() if metric in values else np.nan
    out[["closed", "won"]] = out[["closed", "won"]].fillna(0).astype(int)
    return out


# -- touches, tempo, coverage ----------------------------------------------------------------------

def marketing_touches(activities: pd.DataFrame, marketing: Marketing, start: pd.Timestamp,
                      end: pd.Timestamp) -> pd.DataFrame:
    """Marketing touches in ``[start, end)``: ``account_id, contact_id, occurred_at, type, channel``."""
    types = activities["type"].astype("string").str.strip().str.lower()
    at = _utc(activities["occurred_at"])
    channel_of = {kind: channel for channel, kinds in marketing.channels.items() for kind in kinds}
    keep = types.isin(list(channel_of)).fillna(False).to_numpy(dtype=bool) & (at >= start).to_numpy() & (
        at < end).to_numpy()
    return pd.DataFrame({
        "account_id": activities["account_id"].astype(str)[keep].to_numpy(),
        "contact_id": activities["contact_id"][keep].to_numpy(),
        "occurred_at": at[keep].to_numpy(),
        "type": types[keep].to_numpy(),
        "channel": types[keep].map(channel_of).to_numpy(),
    }).astype({"occurred_at": UTC})


def touch_tempo(accounts: pd.DataFrame, activities: pd.DataFrame, target_accounts: pd.DataFrame,
                start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """Per account measured at the period's last moment known (:func:`last_moment`): marketing touches in
    ``[start, end)`` up to ``as_of`` against its tier's tempo (``TEMPO_COLUMNS``).

    ``periods`` is the period's length in the tempo's unit (calendar months, quarters = 3 months; a part
    month counts by days); ``touches_per_period = touches / periods``; ``status`` is ``below`` (< min),
    ``above`` (> max), ``on tempo`` (min and max included) or ``no tempo`` (the tier has none).
    """
    marketing = marketing_settings(policy)
    moment = last_moment(end, as_of)
    measured = measured_accounts(accounts, target_accounts, moment)
    touches = marketing_touches(activities, marketing, start, moment + pd.Timedelta(1))
    counts = touches.groupby("account_id").size()
    out = measured.assign(touches=measured["account_id"].map(counts).fillna(0).astype(int))
    months = months_between(start, end)
    tempo = marketing.tempo
    out["per"] = out["tier"].map({t: w.per for t, w in tempo.items()})
    out["periods"] = np.where(out["per"].eq("quarter"), months / 3, months).round(4)
    out["touches_per_period"] = (out["touches"] / out["periods"]).round(2)
    out["min"] = out["tier"].map({t: w.min for t, w in tempo.items()}).astype("float64")
    out["max"] = out["tier"].map({t: w.max for t, w in tempo.items()}).astype("float64")
    rate = out["touches_per_period"]
    out["status"] = np.select([out["min"].isna(), rate < out["min"], out["max"].notna() & (rate > out["max"])],
                              ["no tempo", "below", "above"], "on tempo")
    return out[TEMPO_COLUMNS]


def tempo_summary(tempo: pd.DataFrame) -> pd.DataFrame:
    """Per tier and all: accounts measured, on tempo, below, above and the on-tempo % (of those with a tempo):
    the metrics catalog's tempo family over ``tempo`` (:func:`abm_sla.domain.metrics.tier_table`)."""
    from abm_sla.domain import metrics

    return metrics.tier_table("tempo", metrics.tempo_fact_columns(tempo), TEMPO_METRICS)


#: tempo_summary's, engaged_stage's and coverage_summary's columns and the catalog metric each is read from.
TEMPO_METRICS = {"accounts": "tempo_accounts", "judged": "tempo_accounts_judged", "on_tempo": "tempo_on",
                 "below": "tempo_below", "above": "tempo_above", "on_tempo_pct": "tempo_on_rate"}
STAGE_METRICS = {"accounts": "stage_accounts", "engaged": "engaged_accounts", "engaged_before_mqa":
                 "engaged_before_mqa", "engaged_pct": "engaged_account_rate"}
COVERAGE_METRICS = {"engaged": "coverage_engaged", "covered": "coverage_covered", "covered_pct":
                    "channel_coverage_rate"}


def engaged_accounts(accounts: pd.DataFrame, activities: pd.DataFrame, target_accounts: pd.DataFrame,
                     mqas: pd.DataFrame, at: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """The engaged-account stage at ``at`` per account measured (``ENGAGED_COLUMNS``).

    Engaged: at least ``contacts_min`` distinct (known) contacts with a marketing touch in
    ``(at - within_days, at]``, on the TAL at ``at`` when a TAL exists and ``listed_only``.
    ``open_mqa``: an MQA of the account triggered by ``at`` and not ended by then (already past the stage).
    """
    rule: EngagedAccount = marketing_settings(policy).engaged_account
    lookback = pd.Timedelta(days=rule.within_days)
    listed = target_accounts if rule.listed_only else target_accounts.iloc[0:0]
    measured = measured_accounts(accounts, listed, at)
    touches = marketing_touches(activities, marketing_settings(policy), at - lookback + pd.Timedelta(1),
                                at + pd.Timedelta(1))
    contacts = touches.dropna(subset=["contact_id"]).groupby("account_id")["contact_id"].nunique()
    out = measured.assign(engaged_contacts=measured["account_id"].map(contacts).fillna(0).astype(int))
    out["engaged"] = out["engaged_contacts"] >= rule.contacts_min
    out["open_mqa"] = out["account_id"].isin(_open_mqa_accounts(mqas, at))
    return out[ENGAGED_COLUMNS]


def engaged_stage(engaged: pd.DataFrame) -> pd.DataFrame:
    """Per tier and all: accounts measured, engaged (count and %), of which still before the MQA: the metrics
    catalog's stage family over ``engaged``."""
    from abm_sla.domain import metrics

    return metrics.tier_table("stage", metrics.stage_fact_columns(engaged), STAGE_METRICS)


def channel_coverage(accounts: pd.DataFrame, activities: pd.DataFrame, target_accounts: pd.DataFrame,
                     mqas: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                     policy: SlaPolicy) -> pd.DataFrame:
    """Per account engaged at :func:`last_moment`: the channels its marketing touches in the period reached
    and whether they are at least ``coverage.channels_min`` (``COVERAGE_COLUMNS``)."""
    marketing = marketing_settings(policy)
    moment = last_moment(end, as_of)
    engaged = engaged_accounts(accounts, activities, target_accounts, mqas, moment, policy)
    engaged = engaged[engaged["engaged"]]
    touches = marketing_touches(activities, marketing, start, moment + pd.Timedelta(1))
    reached = touches.groupby("account_id")["channel"].agg(lambda c: ", ".join(sorted(set(c))))
    count = touches.groupby("account_id")["channel"].nunique()
    out = engaged[["account_id", "tier"]].assign(
        channels=engaged["account_id"].map(reached).fillna(""),
        channel_count=engaged["account_id"].map(count).fillna(0).astype(int),
        channels_min=marketing.coverage.channels_min)
    out["covered"] = out["channel_count"] >= out["channels_min"]
    return out[COVERAGE_COLUMNS].reset_index(drop=True)


def coverage_summary(coverage: pd.DataFrame) -> pd.DataFrame:
    """Per tier and all: engaged accounts, covered on enough channels (count and %): the metrics catalog's
    coverage family over ``coverage``."""
    from abm_sla.domain import metrics

    return metrics.tier_table("coverage", coverage, COVERAGE_METRICS)


# -- the marketing_response clock -------------------------------------------------------------------

def response_starts(episodes: pd.DataFrame, activities: pd.DataFrame, response: MarketingResponse,
                    as_of: pd.Timestamp) -> pd.Series:
    """Per MQA (index of ``episodes``): the first visit of the account to a ``response.page`` URL in
    ``(trigger_at - lookback_days, trigger_at]`` (NaT: none, or the MQA's tier has no such clock)."""
    types = activities["type"].astype("string").str.strip().str.lower()
    at = _utc(activities["occurred_at"])
    visits = (types.eq("web_visit").fillna(False) & at.le(as_of)).to_numpy(dtype=bool)
    urls = activities["url"] if "url" in activities else pd.Series(None, index=activities.index, dtype=object)
    paths = url_path(urls[visits])
    hit = paths.str.contains(response.page.lower(), regex=False).fillna(False).to_numpy(dtype=bool)
    found = pd.DataFrame({"account_id": activities.loc[visits, "account_id"].astype(str).to_numpy()[hit],
                          "visit_at": at[visits].to_numpy()[hit]}).astype({"visit_at": UTC})
    wanted = episodes["tier"].isin(response.tiers).to_numpy(dtype=bool)
    keys = pd.DataFrame({"row": np.arange(len(episodes)), "account_id": episodes["account_id"].astype(str).to_numpy(),
                         "trigger_at": _utc(episodes["trigger_at"]).to_numpy()}).astype({"trigger_at": UTC})[wanted]
    joined = keys.merge(found, on="account_id")
    lookback = pd.Timedelta(days=response.lookback_days)
    inside = (joined["visit_at"] <= joined["trigger_at"]) & (joined["visit_at"] > joined["trigger_at"] - lookback)
    joined = joined[inside]
    first = joined.groupby("row")["visit_at"].min()
    out = pd.Series(pd.NaT, index=episodes.index, dtype=UTC)
    out.iloc[first.index.to_numpy()] = first.to_numpy()
    return out


def research_types(policy: SlaPolicy) -> tuple[str, ...]:
    """The activity types that meet the marketing_response clock (none when it is off)."""
    response = marketing_settings(policy).response
    return tuple(response.met_by) if response is not None else ()


# -- helpers ----------------------------------------------------------------------------------------

def last_moment(end: pd.Timestamp, as_of: pd.Timestamp) -> pd.Timestamp:
    """The last moment of ``[start, end)`` known as of ``as_of``: ``min(end - 1ns, as_of)``."""
    return min(end - pd.Timedelta(1), as_of)


def months_between(start: pd.Timestamp, end: pd.Timestamp) -> float:
    """Calendar months in ``[start, end)``: whole months count 1, a part month by its share of days."""
    total, cursor = 0.0, start
    while cursor < end:
        month_start = cursor.normalize().replace(day=1)
        month_end = month_start + pd.offsets.MonthBegin(1)
        stop = min(month_end, end)
        total += (stop - cursor) / (month_end - month_start)
        cursor = stop
    return round(total, 6)


def _open_mqa_accounts(mqas: pd.DataFrame, at: pd.Timestamp) -> set[str]:
    if mqas.empty:
        return set()
    trigger = _utc(mqas["trigger_at"])
    ended = _utc(mqas["ended_at"]) if "ended_at" in mqas else pd.Series(pd.NaT, index=mqas.index, dtype=UTC)
    live = (trigger <= at) & (ended.isna() | (ended > at))
    return set(mqas.loc[live, "account_id"].astype(str))


def flag(values: pd.Series) -> pd.Series:
    """A boolean column that may hold None/NaN/strings as plain bools (missing is False)."""
    if values.dtype == bool:
        return values
    text = values.astype("string").str.strip().str.lower()
    return text.isin(["true", "1", "1.0", "yes"]).fillna(False).astype(bool)
