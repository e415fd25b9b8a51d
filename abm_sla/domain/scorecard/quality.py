"""Marketing's side: MQA outcomes (verdict, opportunity, win), MQA quality against the rejection band,
the weekly MQA rule, the accounts on the list and their engagement."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import dispositions, marketing
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard.data import (
    SlaData,
    _flag,
    _targets,
    account_dimensions,
    catalog_breakdown,
    normalize_tier,
    within,
)


def mqa_outcomes(data: SlaData, as_of: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """Every MQA fired by ``as_of`` with its disposition and verdict (the policy's verdict classes, see
    :func:`abm_sla.domain.dispositions.episode_dispositions`), its first opportunity and that opportunity's fate."""
    mqas = data.mqas[data.mqas["trigger_at"] <= as_of].copy()
    mqas["tier"] = normalize_tier(mqas["tier"])
    mqas = mqas.sort_values(["account_id", "trigger_at"])
    mqas["next_trigger_at"] = mqas.groupby("account_id")["trigger_at"].shift(-1)
    mqas = mqas.sort_values("trigger_at").reset_index(drop=True)
    status = data.status_changes[data.status_changes["changed_at"] <= as_of]
    mqas = mqas.join(dispositions.episode_dispositions(mqas, status, policy, as_of))
    opps = data.opportunities[data.opportunities["created_at"] <= as_of]
    opps = pd.DataFrame({
        "account_id": opps["account_id"].astype(str), "opportunity_id": opps["opportunity_id"],
        "opportunity_at": opps["created_at"], "amount": pd.to_numeric(opps["amount"], errors="coerce"),
        "closed": _flag(opps["is_closed"]) & (opps["close_date"] <= as_of),
        "won": _flag(opps["is_won"]) & _flag(opps["is_closed"]) & (opps["close_date"] <= as_of),
    })
    mqas = _first_after(mqas, opps, "opportunity_at")
    mqas["accepted"] = mqas["verdict"].eq(dispositions.ACCEPTED)
    mqas["rejected"] = mqas["verdict"].eq(dispositions.REJECTED)
    mqas["converted"] = mqas["opportunity_at"].notna()
    mqas["won"] = mqas["converted"] & mqas["won"].eq(True)
    mqas["lost"] = mqas["converted"] & mqas["closed"].eq(True) & ~mqas["won"]
    return mqas


def _first_after(mqas: pd.DataFrame, events: pd.DataFrame, at: str) -> pd.DataFrame:
    """Join each MQA's first event at or after ``trigger_at`` and before the account's next MQA."""
    events = events.dropna(subset=[at]).sort_values(at)
    left = mqas.assign(account_id=mqas["account_id"].astype(str))
    joined = pd.merge_asof(left, events, left_on="trigger_at", right_on=at, by="account_id",
                           direction="forward", allow_exact_matches=True)
    stale = joined[at].notna() & joined["next_trigger_at"].notna() & (joined[at] >= joined["next_trigger_at"])
    event_columns = [column for column in events.columns if column != "account_id"]
    joined.loc[stale, event_columns] = None
    joined[at] = pd.to_datetime(joined[at], utc=True)
    return joined


def rejection_position(rate: float, policy: SlaPolicy) -> str:
    """Where a rejection rate sits against the policy's band."""
    band = _targets(policy).rejection_rate
    if band is None or pd.isna(rate):
        return ""
    if band.max_pct is not None and rate > band.max_pct:
        return "above band: hand-off too loose"
    if band.min_pct is not None and rate < band.min_pct:
        return "below band: hand-off maybe too strict"
    return "in band"


#: marketing_quality's columns and the catalog metric each is read from (abm_sla.domain.metrics).
QUALITY_METRICS = {"mqas": "mqas", "accepted": "mqas_accepted", "acceptance_pct": "acceptance_rate",
                   "rejected": "mqas_rejected", "rejection_pct": "rejection_rate", "converted": "mqas_converted",
                   "mqa_to_opportunity_pct": "mqa_to_opportunity_rate", "no_verdict": "mqas_without_verdict"}


def marketing_quality(outcomes: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy,
                      by: str = "tier") -> pd.DataFrame:
    """Per ``by`` (tier or owner_id) with MQAs, and ``all``: MQAs, acceptance, rejection vs band, MQA → opportunity
    conversion. The numbers are the metrics catalog's (:func:`abm_sla.domain.metrics.family_table` over these MQAs)."""
    from abm_sla.domain import metrics

    rows = outcomes[within(outcomes["trigger_at"], start, end)]
    out = catalog_breakdown("mqas", metrics.mqa_fact_columns(rows), by, QUALITY_METRICS)
    counts = ["mqas", "accepted", "rejected", "no_verdict", "converted"]
    out[counts] = out[counts].fillna(0).astype(int)
    out["rejection_band"] = [
        rejection_position(rate, policy) + _verdict_caveat(verdicts, mqas)
        for rate, verdicts, mqas in zip(out["rejection_pct"], out["accepted"] + out["rejected"], out["mqas"],
                                        strict=True)
    ]
    return out[[by, "mqas", "accepted", "acceptance_pct", "rejected", "rejection_pct", "rejection_band",
                "no_verdict", "converted", "mqa_to_opportunity_pct"]]


def _verdict_caveat(verdicts: int, mqas: int) -> str:
    """A warning when the rejection rate rests on few verdicts (sales left most MQAs without one)."""
    if mqas == 0 or verdicts * 2 >= mqas:
        return ""
    return "no verdict yet" if verdicts == 0 else f" ({verdicts} of {mqas} MQAs have a verdict)"


#: The weekly MQA rule's rows (one per ISO week starting in the period): ``judged`` once the week has ended by
#: ``as_of``; ``in_band`` is empty until then.
WEEKLY_MQA_COLUMNS = ["week", "week_start", "mqas", "min", "max", "judged", "in_band"]


def weekly_mqas(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                policy: SlaPolicy, outcomes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Policy ``targets.weekly_mqas`` judged week by week: for each ISO week (Monday 00:00 UTC) starting in
    ``[start, end)``, the MQAs fired in the whole week by ``as_of`` (of the rule's tier, when given: the metrics
    catalog's ``mqas`` of the week, in its ``tier=`` segment) and whether the count is in ``[min, max]``. A week
    not ended by ``as_of`` is not judged. Empty without the rule. ``outcomes``: :func:`mqa_outcomes` as of
    ``as_of`` when already computed."""
    from abm_sla.domain import metrics

    rule = _targets(policy).weekly_mqas
    if rule is None:
        return pd.DataFrame(columns=WEEKLY_MQA_COLUMNS)
    first = start.normalize() - pd.Timedelta(days=start.weekday())
    if first < start:
        first += pd.Timedelta(days=7)
    mondays = pd.date_range(first, end, freq="7D", inclusive="left")
    facts = metrics.mqa_fact_columns(mqa_outcomes(data, as_of, policy) if outcomes is None else outcomes)
    segment = metrics.ALL if rule.tier is None else f"tier={rule.tier}"
    weeks = metrics.per_period("mqas", facts, "trigger_at", [(monday, monday + pd.Timedelta(days=7))
                                                              for monday in mondays], ("tier",), ("mqas",))
    counts = np.array([int(metrics.read(week, "mqas", segment, default=0.0)) for week in weeks], dtype=int)
    judged = (mondays + pd.Timedelta(days=7)) <= as_of
    low = -np.inf if rule.min is None else rule.min
    high = np.inf if rule.max is None else rule.max
    in_band = (counts >= low) & (counts <= high)
    return pd.DataFrame({"week": mondays.strftime("%G-W%V"), "week_start": mondays, "mqas": counts,
                         "min": rule.min, "max": rule.max, "judged": judged,
                         "in_band": pd.Series(in_band, dtype="object").where(judged, None)})


def listed_accounts(data: SlaData, end: pd.Timestamp) -> pd.DataFrame:
    """The accounts measured at the period's end: created before ``end`` and, when a target account list is
    recorded, on it at the period's last moment (``account_id, tier, owner_id``)."""
    accounts = account_dimensions(data)
    accounts = accounts[accounts["created_at"].isna() | (accounts["created_at"] < end)]
    if marketing.tal_exists(data.target_accounts):
        last = end - pd.Timedelta(1)
        accounts = accounts[marketing.on_list_at(data.target_accounts, accounts["account_id"], last).to_numpy()]
    return accounts.reset_index(drop=True)


#: engagement's columns and the catalog metric (``metric:numerator`` for its numerator) each is read from.
ENGAGEMENT_METRICS = {"accounts": "accounts_on_list", "engaged": "engagement_rate:numerator",
                      "engagement_pct": "engagement_rate", "multi_stakeholder": "multi_stakeholder_rate:numerator",
                      "multi_stakeholder_pct": "multi_stakeholder_rate",
                      "engaged_contacts_per_account": "engaged_contacts_per_account"}


def engagement(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, by: str = "tier") -> pd.DataFrame:
    """Per ``by``: accounts on the list, share with >= 1 marketing touch and with >= 2 engaged contacts,
    and the mean engaged contacts per engaged account. With a target account list, only the accounts on
    it at the period's last moment count (the designs' "% of TAL with 1+ engagement")."""
    from abm_sla.domain import metrics

    accounts = metrics.account_facts(data, start, end)
    out = catalog_breakdown("accounts", accounts, by, ENGAGEMENT_METRICS)
    out[["accounts", "engaged", "multi_stakeholder"]] = out[["accounts", "engaged", "multi_stakeholder"]].fillna(
        0).astype(int)
    return out[[by, "accounts", "engaged", "engagement_pct", "multi_stakeholder", "multi_stakeholder_pct",
                "engaged_contacts_per_account"]]
