"""The SLA's feedback loop in numbers (issue 14): dispositions, disqualification patterns, conversion by
hand-off source, the optional clocks' compliance and what routing time measures. Pure, over
:class:`abm_sla.domain.scorecard.SlaData`, for a period ``[start, end)`` and an ``as_of``.

Definitions (the report footnotes repeat them):

- an MQA belongs to the period of its ``trigger_at``; its *disposition* is that of its verdict (the latest
  accepted- or rejected-class disposition of its episode, as in the scorecard), else the latest status change
  of its episode (trigger_at to its end or ``as_of``) mapped by the policy (``none``: no change yet);
- a *rejection* is an MQA whose disposition is a feedback disposition (rejected, unqualified); its
  reason is the latest reason given from trigger_at until the account's next MQA, also after the status
  that ended the episode, as the quality_feedback clock counts it (``(no reason)`` when none);
- the *hand-off source* is the scoring rule of the signal at trigger_at (the signal that pushed the
  account over the threshold) when the MQA's stored reasons hold that rule, else the stored reason with
  the most points outside firmographic fit;
- an optional clock belongs to the period its due_at falls in, like SPEC's clocks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import dispositions
from abm_sla.domain import metrics as catalog
from abm_sla.domain import scorecard as sc
from abm_sla.domain.frames import MARKETING_TOUCHES
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.sla import OPTIONAL_CLOCKS

NO_REASON = "(no reason)"
ROUTING_BASES = tuple(catalog.ROUTING_BASES)


def mqas_in(data: sc.SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
            policy: SlaPolicy) -> pd.DataFrame:
    """The period's MQAs with their episode disposition, reason, tier and owner."""
    mqas = data.mqas[sc.within(data.mqas["trigger_at"], start, end) & (data.mqas["trigger_at"] <= as_of)]
    mqas = mqas.reset_index(drop=True)
    found = dispositions.episode_dispositions(mqas, data.status_changes[data.status_changes["changed_at"] <= as_of],
                                              policy, as_of)
    return mqas.assign(tier=sc.normalize_tier(mqas["tier"]), **found)


def disposition_mix(outcomes: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, by: str = "tier") -> pd.DataFrame:
    """Per tier (or owner) with MQAs in ``[start, end)``, and overall: MQAs and how many carry each disposition
    (the dispositions some MQA carries). ``outcomes``: :func:`abm_sla.domain.scorecard.mqa_outcomes`. The numbers are
    the metrics catalog's ``mqas`` and ``mqas_disposition_<name>`` (:mod:`abm_sla.domain.metrics`)."""
    from abm_sla.domain import metrics

    rows = outcomes[sc.within(outcomes["trigger_at"], start, end)]
    columns = {"mqas": "mqas", **{name: metrics.disposition_metric_id(name) for name in metrics.MIX_DISPOSITIONS}}
    out = sc.catalog_breakdown("mqas", metrics.mqa_fact_columns(rows), by, columns)
    out[list(columns)] = out[list(columns)].fillna(0).astype(int)
    shown = [name for name in metrics.MIX_DISPOSITIONS if out[name].iloc[-1] > 0]
    return out[[by, "mqas", *shown]]


def rejected_by_reason(facts: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The period's rejected MQAs (the verdict class ``dispositions.rejected``, as the rejection rate counts them)
    grouped by the reason sales gave: spaces trimmed and case ignored, an empty or missing reason its own group
    (:data:`NO_REASON`); each group labelled with its most frequent spelling. ``facts``: the catalog's MQA facts
    of the period (:func:`abm_sla.domain.metrics.mqa_facts`). Every report's reasons come from here."""
    rejected = facts[facts["rejected"].astype(bool)]
    reason = rejected["reason"].astype("string").str.strip().replace("", pd.NA).fillna(NO_REASON).astype(str)
    return [(reason.loc[group.index].mode().iloc[0], group)
            for _, group in rejected.groupby(reason.str.lower().to_numpy())]


def rejection_reasons(facts: pd.DataFrame) -> pd.DataFrame:
    """Disqualification patterns: the period's rejected MQAs per reason (:func:`rejected_by_reason`), most
    frequent first; each reason's MQAs, owners and MQAs per tier are the catalog's ``mqas`` and ``mqa_owners``
    over that reason's MQAs (the MQA family, ``tier=`` segments); its share is of the reasons' MQAs (so the
    reasons' MQAs add up to the catalog's ``mqas_rejected``)."""
    from abm_sla.domain import metrics

    columns = ["reason", "mqas", "share_pct", "owners", "tier_1", "tier_2", "tier_3"]
    rows = []
    for reason, group in rejected_by_reason(facts):
        table = metrics.family_table("mqas", group, ("tier",))
        counts = {column: int(metrics.read(table, metric, segment, default=0.0)) for column, (metric, segment) in
                  {"mqas": ("mqas", metrics.ALL), "owners": ("mqa_owners", metrics.ALL),
                   **{f"tier_{tier}": ("mqas", f"tier={tier}") for tier in sc.TIERS}}.items()}
        rows.append({"reason": reason, **counts})
    if not rows:
        return pd.DataFrame({column: pd.Series(dtype="object") for column in columns})
    out = pd.DataFrame(rows)
    out["share_pct"] = (100 * out["mqas"] / out["mqas"].sum()).round(1)
    return out.sort_values(["mqas", "reason"], ascending=[False, True]).reset_index(drop=True)[columns]


def handoff_sources(mqas: pd.DataFrame, activities: pd.DataFrame, intent: pd.DataFrame) -> pd.Series:
    """Per MQA: the scoring rule that pushed the account over the threshold (see the module doc)."""
    keys = ["account_id", "trigger_at"]
    acts = activities[activities["type"].isin(MARKETING_TOUCHES)]
    url = acts["url"].astype("string").str.lower().fillna("")
    signal = pd.DataFrame({"account_id": acts["account_id"].astype(str), "trigger_at": acts["occurred_at"],
                           "rule": np.select([url.str.contains("/pricing"), url.str.contains("/demo")],
                                             ["pricing", "demo"], acts["type"].astype(str))})
    topics = pd.DataFrame({"account_id": intent["account_id"].astype(str), "trigger_at": intent["observed_at"],
                           "rule": "intent"})
    signals = pd.concat([signal, topics], ignore_index=True).drop_duplicates(keys)
    trigger = mqas[keys].astype({"account_id": str}).merge(signals, on=keys, how="left")["rule"]
    return pd.Series([_source(reasons, hint) for reasons, hint in
                      zip(mqas.get("reasons", pd.Series([[]] * len(mqas))), trigger, strict=True)],
                     index=mqas.index, dtype="object")


def _source(reasons: object, hint: object) -> str:
    """The reason matching the trigger signal (``hint``), else the top-points non-firmographic reason."""
    rules = [r for r in reasons if isinstance(r, dict) and r.get("category") != "firmographic"
             and r.get("rule") != "cap"] if isinstance(reasons, list) else []
    if not rules:
        return "unknown"
    if isinstance(hint, str):
        for rule in rules:
            name = str(rule.get("rule"))
            if name == hint or (hint in ("pricing", "demo", "intent") and hint in name.lower()):
                return name
    return str(max(rules, key=lambda r: r.get("points", 0)).get("rule"))


#: optional_compliance's label of the clocks without an owner.
NO_OWNER = "(no owner)"
#: conversion_by_source's columns and the catalog metric each is read from (the MQA family).
SOURCE_METRICS = {"mqas": "mqas", "accepted": "mqas_accepted", "acceptance_pct": "acceptance_rate",
                  "converted": "mqas_converted", "conversion_pct": "mqa_to_opportunity_rate", "won": "mqas_won"}


def conversion_by_source(data: sc.SlaData, start: pd.Timestamp, end: pd.Timestamp,
                         as_of: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """Per hand-off source: MQAs, accepted, converted to an opportunity, won, and the rates: the metrics catalog's
    MQA family over each source's MQAs of the period (:data:`SOURCE_METRICS`), most MQAs first."""
    facts = catalog.mqa_facts(data, start, end, as_of, policy)
    columns = ["handoff_source", *SOURCE_METRICS]
    if facts.empty:
        return pd.DataFrame({column: pd.Series(dtype="object") for column in columns})
    stored = data.mqas.reindex(columns=["account_id", "trigger_at", "reasons"]).astype({"account_id": str})
    keyed = facts[["account_id", "trigger_at"]].astype({"account_id": str})
    keyed = keyed.merge(stored.drop_duplicates(["account_id", "trigger_at"]), on=["account_id", "trigger_at"],
                        how="left")
    sources = handoff_sources(keyed, data.activities, data.intent_signals).to_numpy()
    rows = []
    for source in sorted(set(sources)):
        table = catalog.family_table("mqas", facts[sources == source], ())
        rows.append({"handoff_source": source, **{column: catalog.read(table, metric)
                                                  for column, metric in SOURCE_METRICS.items()}})
    out = pd.DataFrame(rows, columns=columns).astype({"mqas": int, "accepted": int, "converted": int, "won": int})
    return out.sort_values(["mqas", "handoff_source"], ascending=[False, True], kind="stable").reset_index(drop=True)


def optional_compliance(data: sc.SlaData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """quality_feedback and status_recurring due in the period, per owner and overall: met, missed, pending and
    met %: the metrics catalog's clock family in its ``owner=`` segments and ``all``."""
    columns = ["clock", "owner_id", "met", "missed", "pending", "met_pct"]
    facts = catalog.clock_facts(data, start, end)
    table = catalog.family_table("clocks", facts, ("owner",))
    owners = facts["owner_id"].astype("string").fillna("(none)").astype(str)
    rows = []
    for clock in sorted(OPTIONAL_CLOCKS):
        due = facts[[f"{clock}_{status}" for status in catalog.CLOCK_STATUSES]].any(axis=1)
        for owner in [*sorted(owners[due].unique()), sc.ALL] if due.any() else []:
            segment = sc.ALL if owner == sc.ALL else f"owner={owner}"
            ids = catalog.clock_metric_ids(clock)
            rows.append({"clock": clock, "owner_id": NO_OWNER if owner == "(none)" else owner,
                         **{column: catalog.read(table, metric, segment, default=0.0 if column != "met_pct" else
                                                 float("nan")) for column, metric in ids.items()}})
    if not rows:
        return pd.DataFrame({column: pd.Series(dtype="object") for column in columns})
    return pd.DataFrame(rows, columns=columns).astype({"met": int, "missed": int, "pending": int})


def routing_basis(table: pd.DataFrame, policy: SlaPolicy) -> pd.DataFrame:
    """What the routing_time clocks due in the period were measured to (the CRM's assignment or the run), per
    basis: the metrics catalog's routing-basis counts (``table``: the period's :func:`catalog.compute` table)."""
    counts = [int(catalog.read(table, metric, default=0.0)) for metric in catalog.ROUTING_BASES.values()]
    out = pd.DataFrame({"measured_to": list(ROUTING_BASES), "clocks": counts})
    if policy.clocks.routing_time_end == "routed":
        out.loc[out["measured_to"] == ROUTING_BASES[2], "measured_to"] += " — policy routing_time_end: routed"
    return out


def routing_sentence(basis: pd.DataFrame) -> str:
    """One plain sentence: what the routing-time numbers measure."""
    counts = dict(zip(basis["measured_to"].str.split(" — ").str[0], basis["clocks"], strict=True))
    crm = counts.get(ROUTING_BASES[0], 0) + counts.get(ROUTING_BASES[1], 0)
    run = counts.get(ROUTING_BASES[2], 0)
    if crm + run == 0:
        return "Routing time: no routing-time clock came due in this period."
    if run == 0:
        return f"Routing time is measured to the owner's assignment in the CRM for all {crm} MQAs."
    return (f"Routing time is measured to the owner's assignment in the CRM (write-back or the CRM's own owner "
            f"change) for {crm} of {crm + run} MQAs; for the other {run} neither was seen, so it measures when "
            "the pipeline routed them (routed_at), not when the CRM held the owner.")
