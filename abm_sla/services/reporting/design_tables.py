"""The SLA design's tables read from the metrics catalog table: team clocks, money, the list's agreement,
CRM logging, campaigns per tier, regional compliance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import marketing as mk
from abm_sla.domain import metrics as catalog
from abm_sla.domain import regions
from abm_sla.domain import scorecard as sc
from abm_sla.domain import team_clocks as tc
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard import SlaData


def team_clock_compliance(table: pd.DataFrame, policy: SlaPolicy) -> pd.DataFrame:
    """Per team clock the policy switches on: who owes it, met / missed / pending and met % of those due in the
    period, overall (``all``) and per owner, read from the metrics catalog's team_clocks family."""
    rows = []
    for clock in tc.enabled(policy):
        ids = catalog.clock_metric_ids(clock)
        mine = table[table["metric"].isin(list(ids.values()))]
        segments = [catalog.ALL, *sorted(s for s in mine["segment"].unique() if str(s).startswith("owner="))]
        for segment in segments:
            values = {column: catalog.value(table, metric, segment) for column, metric in ids.items()}
            counts = {status: int(np.nan_to_num(values[status])) for status in catalog.CLOCK_STATUSES}
            if segment != catalog.ALL and not any(counts.values()):
                continue
            rows.append({"clock": clock, "owed_by": tc.OWED_BY[clock],
                         "owner_id": segment.removeprefix("owner=") if segment != catalog.ALL else catalog.ALL,
                         **counts, "met_pct": values["met_pct"]})
    columns = ["clock", "owed_by", "owner_id", *catalog.CLOCK_STATUSES, "met_pct"]
    return pd.DataFrame(rows, columns=columns)


MONEY_COLUMNS = ["measure", "value", "target", "verdict"]


def money_table(table: pd.DataFrame, policy: SlaPolicy) -> pd.DataFrame:
    """Won revenue per part of the pipeline-credit rule and in all, opportunities won, spend and CAC against
    ``targets.cac_max``: rows of the metrics catalog table ``table``."""
    parts = zip(sc.credit_parts(policy), catalog.SOURCE_SEGMENTS, strict=True)
    wanted = [(f"Won revenue: {label}", "won_revenue", f"source={slug}") for label, slug in parts]
    wanted += [("Won revenue: all", "won_revenue", catalog.ALL),
               ("Opportunities won", "opportunities_won", catalog.ALL),
               ("Marketing spend", "marketing_spend", catalog.ALL),
               ("CAC (spend / opportunities won)", "cac", catalog.ALL)]
    rows = []
    for measure, metric, segment in wanted:
        found = catalog.row(table, metric, segment)
        rows.append((measure, None if found is None else found["value"], "" if found is None else found["target"],
                     "" if found is None else found["verdict"]))
    return pd.DataFrame(rows, columns=MONEY_COLUMNS)


TAL_AGREEMENT_COLUMNS = ["on_list", "added_recently", "removed_recently", "last_agreed_at", "agreed_by",
                         "agreement_age_days", "agreement_overdue"]


def tal_agreement_table(table: pd.DataFrame, data: SlaData, moment: pd.Timestamp) -> pd.DataFrame:
    """One row: accounts on the list, rows added and removed in the last ``agreement_days``, the last agreement
    (when, by whom), its age in days and whether it is overdue (older than ``agreement_days``, or never): the
    numbers and the verdict from the metrics catalog table ``table``, the agreement's date and name from the list."""
    agreed_at, agreed_by = mk.last_agreement(data.target_accounts, moment)
    age = catalog.row(table, "list_agreement_age_days")
    listed = mk.tal_exists(data.target_accounts)
    return pd.DataFrame([{
        "on_list": int(catalog.read(table, "accounts_on_list", default=0.0)) if listed else 0,
        "added_recently": int(catalog.read(table, "list_rows_added", default=0.0)),
        "removed_recently": int(catalog.read(table, "list_rows_removed", default=0.0)),
        "last_agreed_at": agreed_at, "agreed_by": agreed_by,
        "agreement_age_days": catalog.read(table, "list_agreement_age_days"),
        "agreement_overdue": (age is None or age["verdict"] != catalog.MET) if listed else None,
    }], columns=TAL_AGREEMENT_COLUMNS)


REGIONAL_COLUMNS = ["region", "clock", "met", "missed", "pending", "met_pct", "target", "verdict"]


def regional_compliance(table: pd.DataFrame, policy: SlaPolicy) -> pd.DataFrame:
    """Per region of the policy (then ``(none)``: the accounts of no region, on the master policy) and clock:
    the clocks due in the period met, missed and pending, and the met % against the region's target: the rows
    of the metrics catalog table ``table`` with a ``region=`` segment."""
    wanted = [*sc.clock_names(policy)]
    wanted += [clock for region in policy.regions.values() for clock in region.targets if clock not in wanted]
    rows = []
    for name in [*policy.regions, regions.NO_REGION]:
        segment = f"region={name}"
        for clock in wanted:
            ids = catalog.clock_metric_ids(clock) if f"{clock}_met_rate" in catalog.BY_ID else {}
            found = catalog.row(table, ids["met_pct"], segment) if ids else None
            counts = {status: catalog.value(table, ids[status], segment) if ids else np.nan
                      for status in ("met", "missed", "pending")}
            rows.append({"region": name, "clock": clock, **{k: 0 if pd.isna(v) else int(v) for k, v in counts.items()},
                         "met_pct": np.nan if found is None else found["value"],
                         "target": "" if found is None else found["target"],
                         "verdict": "" if found is None else found["verdict"]})
    return pd.DataFrame(rows, columns=REGIONAL_COLUMNS)


def campaign_tier_table(table: pd.DataFrame, policy: SlaPolicy) -> pd.DataFrame:
    """Per tier the campaign plan requires: the campaigns started on it and whether it has none, read from the
    metrics catalog table ``table`` (``campaigns_per_tier``, ``tiers_without_campaign`` per ``tier=``)."""
    tiers = sorted(set(policy.campaign_plan.tiers))
    campaigns = [int(catalog.read(table, "campaigns_per_tier", f"tier={tier}", default=0.0)) for tier in tiers]
    without = [catalog.read(table, "tiers_without_campaign", f"tier={tier}", default=0.0) > 0 for tier in tiers]
    return pd.DataFrame({"tier": tiers, "campaigns": campaigns, "without": without})


#: The CRM-updates table's rows: side → the catalog metric of its share logged in time (its numerator: in time,
#: its denominator: judged) and of its count logged late.
CRM_LOGGING_METRICS = {"sales": "sales_activities_logged_rate", "marketing": "marketing_activities_logged_rate"}
CRM_LATE_METRICS = {"sales": "sales_activities_logged_late", "marketing": "marketing_activities_logged_late"}


def crm_logging_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per side (sales meetings and calls, marketing touches), overall and per owner: activities judged, logged in
    time, late and the share in time, read from the metrics catalog's crm_logging family."""
    rows = []
    for side, metric in CRM_LOGGING_METRICS.items():
        mine = table[table["metric"] == metric]
        segments = [catalog.ALL, *sorted(s for s in mine["segment"].unique() if str(s).startswith("owner="))]
        for segment in segments:
            found = catalog.row(table, metric, segment)
            judged = int(np.nan_to_num(found["denominator"])) if found is not None else 0
            if segment != catalog.ALL and not judged:
                continue
            in_time = int(np.nan_to_num(found["numerator"])) if found is not None else 0
            late = int(catalog.read(table, CRM_LATE_METRICS[side], segment, default=0.0))
            rows.append({"side": side, "owner_id": segment.removeprefix("owner="), "activities": judged,
                         "in_time": in_time, "late": late,
                         "in_time_pct": found["value"] if found is not None else np.nan})
    return pd.DataFrame(rows, columns=["side", "owner_id", "activities", "in_time", "late", "in_time_pct"])
