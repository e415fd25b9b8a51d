"""Sales' side: the clocks due in a period, their compliance per tier or owner and per week, first-touch
response times, missed clocks and open escalations."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import calendar
from abm_sla.domain.policy import SlaPolicy, Window
from abm_sla.domain.scorecard.data import (
    ALL,
    CLOCKS,
    MARKETING_RESPONSE,
    TIERS,
    SlaData,
    _targets,
    account_dimensions,
    catalog_breakdown,
    normalize_tier,
    owner_names,
    within,
)
from abm_sla.domain.scorecard.periods import weeks


def clocks_due(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The clocks due in the period, with normalized tier."""
    clocks = data.sla_clocks[within(data.sla_clocks["due_at"], start, end)].copy()
    clocks["tier"] = normalize_tier(clocks["tier"])
    clocks["status"] = clocks["status"].astype(str).str.lower()
    return clocks


def clock_compliance(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy,
                     by: tuple[str, ...] = ("tier",)) -> pd.DataFrame:
    """Per ``by`` (tier or owner_id) and clock: met, missed, pending, met % (of decided clocks); first-touch target
    per tier. The numbers are the metrics catalog's clock family (:func:`abm_sla.domain.metrics.family_table`)."""
    if len(by) != 1:
        raise ValueError(f"clock_compliance takes one column (tier or owner_id), got {by!r}")
    return _with_clock_targets(_catalog_clocks(data, start, end, policy, by[0]), policy)


def _catalog_clocks(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy,
                    by: str) -> pd.DataFrame:
    """Per ``by`` value (every tier; or each owner with a clock due) then ``all``, per clock of the policy: the
    catalog's met / missed / pending counts and met rate."""
    from abm_sla.domain import metrics

    facts = metrics.clock_facts(data, start, end)
    segment = "tier" if by == "tier" else "owner"
    table = metrics.family_table("clocks", facts, (segment,))
    values = table.pivot(index="segment", columns="metric", values="value")
    groups = list(TIERS) if by == "tier" else sorted(facts[by].dropna().unique(), key=str)
    if by != "tier" and facts[by].isna().any():
        groups.append(None)
    labels = [f"{segment}={'(none)' if group is None else group}" for group in groups] + [ALL]
    parts = []
    for clock in clock_names(policy):
        parts.append(pd.DataFrame({by: [*groups, ALL], "clock": clock,
                                   **{column: values[metric].reindex(labels).to_numpy()
                                      for column, metric in metrics.clock_metric_ids(clock).items()}}))
    out = pd.concat(parts, ignore_index=True)
    order = {group: rank for rank, group in enumerate([*groups, ALL])}
    out = out.iloc[np.argsort(out[by].map(order).to_numpy(), kind="stable")].reset_index(drop=True)
    out[["met", "missed", "pending"]] = out[["met", "missed", "pending"]].fillna(0).astype(int)
    return out


def _with_clock_targets(out: pd.DataFrame, policy: SlaPolicy) -> pd.DataFrame:
    """The first-touch target per tier beside the met rate, and whether it is on target."""
    targets = _targets(policy).first_touch_met_pct or {}
    tier = out["tier"] if "tier" in out.columns else pd.Series(ALL, index=out.index)
    out["target_pct"] = np.where(out["clock"].eq("first_touch"), tier.map(targets), np.nan).astype("float64")
    out["on_target"] = np.where(out["target_pct"].notna() & out["met_pct"].notna(),
                                out["met_pct"] >= out["target_pct"], None)
    return out


def clock_names(policy: SlaPolicy) -> tuple[str, ...]:
    """SPEC's four clocks, and ``marketing_response`` when the policy sets it."""
    response = policy.marketing is not None and policy.marketing.response is not None
    return (*CLOCKS, MARKETING_RESPONSE) if response else CLOCKS


def compliance_trend(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """Met % per ISO week and clock (all tiers) for the weeks overlapping ``[start, end)``."""
    parts = []
    for label, week_start, week_end in weeks(start, end):
        week = clock_compliance(data, week_start, week_end, policy, by=("tier",))
        parts.append(week[week["tier"] == ALL].assign(week=label))
    if not parts:
        return pd.DataFrame(columns=["week", "clock", "met", "missed", "pending", "met_pct"])
    return pd.concat(parts, ignore_index=True)[["week", "clock", "met", "missed", "pending", "met_pct"]]


def response_times(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """First-touch clocks due in the period with business hours from routing to the first touch."""
    clocks = clocks_due(data, start, end)
    clocks = clocks[clocks["clock"] == "first_touch"]
    routed = data.mqas[["account_id", "trigger_at", "routed_at"]]
    rows = clocks.merge(routed, on=["account_id", "trigger_at"], how="left").reset_index(drop=True)
    users = data.users.drop_duplicates("user_id").set_index("user_id")
    zones = rows["owner_id"].map(users["time_zone"]) if len(users) else pd.Series(None, index=rows.index)
    countries = rows["owner_id"].map(users["country"]) if len(users) else pd.Series(None, index=rows.index)
    answered = rows["met_at"].notna() & rows["routed_at"].notna()
    hours = pd.Series(np.nan, index=rows.index)
    if answered.any():
        hours[answered] = calendar.business_hours_between(
            rows.loc[answered, "routed_at"], rows.loc[answered, "met_at"], zones[answered], countries[answered],
            policy.business_hours).clip(lower=0)
    rows["response_bh"] = hours.round(2)
    return rows[["account_id", "trigger_at", "tier", "owner_id", "routed_at", "due_at", "met_at", "status",
                 "response_bh"]]


def tier_window(policy: SlaPolicy, tier: int) -> Window:
    return policy.clocks.first_touch.windows[tier]


def window_text(window: Window) -> str:
    if window.kind == "same_business_day":
        return "same business day"
    return f"{window.amount:g} {window.kind.replace('_', ' ')}"


#: response_summary's columns and the catalog metric each is read from (abm_sla.domain.metrics).
RESPONSE_METRICS = {"answered": "first_touches_answered", "before_routing": "first_touches_before_routing",
                    "unanswered": "first_touches_unanswered", "median_bh": "first_touch_response_median_hours",
                    "p90_bh": "first_touch_response_p90_hours"}


def response_summary(responses: pd.DataFrame, policy: SlaPolicy, by: str = "tier") -> pd.DataFrame:
    """Per ``by``: answered (of which before routing, counted as 0 hours), unanswered, median and p90
    business-hour response: the metrics catalog's response family over ``responses``."""
    from abm_sla.domain import metrics

    out = catalog_breakdown("responses", metrics.response_facts(responses), by, RESPONSE_METRICS)
    counts = ["answered", "before_routing", "unanswered"]
    out[counts] = out[counts].fillna(0).astype(int)
    if by == "tier":
        out["window"] = out["tier"].map(lambda t: window_text(tier_window(policy, t)) if t in TIERS else "")
    return out


# -- weekly dashboard -------------------------------------------------------------------------------

def clock_misses(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Clocks due in the period and missed, by owner and account."""
    clocks = clocks_due(data, start, end)
    missed = clocks[clocks["status"] == "missed"]
    accounts = account_dimensions(data).set_index("account_id")["account_name"]
    out = missed.assign(owner_name=missed["owner_id"].map(owner_names(data)),
                        account_name=missed["account_id"].astype(str).map(accounts))
    columns = ["owner_id", "owner_name", "account_id", "account_name", "tier", "clock", "trigger_at", "due_at",
               "met_at"]
    return out[columns].sort_values(["owner_id", "account_id", "due_at"]).reset_index(drop=True)


def open_escalations(data: SlaData, as_of: pd.Timestamp) -> pd.DataFrame:
    """Escalations opened by ``as_of`` whose episode is open and whose clock is still unmet, one row per MQA
    and clock."""
    escalations = data.escalations[data.escalations["opened_at"] <= as_of]
    mqas = data.mqas[["account_id", "trigger_at", "ended_at", "tier"]]
    rows = escalations.merge(mqas, on=["account_id", "trigger_at"], how="left")
    rows = rows[rows["ended_at"].isna() | (rows["ended_at"] > as_of)]
    clocks = data.sla_clocks[["account_id", "trigger_at", "clock", "met_at"]]
    rows = rows.merge(clocks, on=["account_id", "trigger_at", "clock"], how="left")
    rows = rows[rows["met_at"].isna() | (rows["met_at"] > as_of)]
    names = owner_names(data)
    rows = rows.assign(recipient=rows["to_user_id"].map(names).fillna(rows["to_user_id"]))
    # in the order opened: the owner, steps and ask shown are those of the latest ticket (after a reassignment,
    # the new owner's, whose ask says it is owed by them)
    rows = rows.sort_values(["account_id", "trigger_at", "clock", "opened_at", "level", "to_user_id"])
    out = rows.groupby(["account_id", "trigger_at", "clock"], as_index=False).agg(
        tier=("tier", "first"), owner_id=("owner_id", "last"),
        level=("level", "max"), first_opened_at=("opened_at", "min"), last_opened_at=("opened_at", "max"),
        recipients=("recipient", lambda s: ", ".join(dict.fromkeys(s.astype(str)))),
        steps_taken=("steps_taken", "last"), resolution=("resolution", "last"))
    out = out[["account_id", "trigger_at", "tier", "owner_id", "clock", *out.columns[5:]]]
    out["tier"] = normalize_tier(out["tier"])
    out["level"] = out["level"].astype(int)
    out.insert(3, "owner_name", out["owner_id"].map(names))
    accounts = account_dimensions(data).set_index("account_id")["account_name"]
    out.insert(1, "account_name", out["account_id"].astype(str).map(accounts))
    return out.sort_values(["level", "first_opened_at"], ascending=[False, True]).reset_index(drop=True)
