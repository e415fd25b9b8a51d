"""Report tables of escalations (by clock, level and role), reassignments on breach and disputes."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain import disputes as disputes_module
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.routing import active_users
from abm_sla.domain.scorecard import SlaData, account_dimensions, owner_names

KEYS = ["account_id", "trigger_at"]


#: The escalations-by-clock table's columns: each clock and level, and the catalog metric of each count.
ESCALATION_COLUMNS = {"mqas": "escalated_mqas", "people": "escalation_recipients"}


def escalations_by_clock(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, table: pd.DataFrame) -> pd.DataFrame:
    """Per clock and level, the levels opened in ``[start, end)``: MQAs escalated and people escalated to (the
    metrics catalog's ``clock=...,level=...`` segments of ``table``, the period's catalog table) and the
    recipients' roles."""
    columns = ["clock", "level", *ESCALATION_COLUMNS, "roles"]
    mine = table[table["metric"].isin(list(ESCALATION_COLUMNS.values())) & table["segment"].str.contains(",level=")]
    if mine.empty:
        return pd.DataFrame(columns=columns)
    out = mine.pivot(index="segment", columns="metric", values="value").reset_index()
    keys = out["segment"].str.extract(r"^clock=(?P<clock>.*),level=(?P<level>-?\d+)$")
    out = out.assign(clock=keys["clock"], level=keys["level"].astype(int),
                     **{column: out[metric].astype(int) for column, metric in ESCALATION_COLUMNS.items()})
    rows = data.escalations[(data.escalations["opened_at"] >= start) & (data.escalations["opened_at"] < end)]
    users = active_users(data.users).drop_duplicates("user_id").set_index("user_id")["role"]
    role = rows["to_user_id"].map(users).astype("string").str.strip().str.lower().fillna("?")
    roles = (role.groupby([rows["clock"].astype(str), rows["level"].astype(int)])
             .agg(lambda names: ", ".join(sorted(set(names)))))
    out["roles"] = [roles.get((clock, level), "") for clock, level in zip(out["clock"], out["level"], strict=True)]
    return out[columns].sort_values(["clock", "level"]).reset_index(drop=True)


def reassignments(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The reassignments on breach whose moment falls in ``[start, end)``, newest first."""
    rows = data.reassignments[(data.reassignments["reassigned_at"] >= start)
                              & (data.reassignments["reassigned_at"] < end)]
    names = owner_names(data)
    accounts = account_dimensions(data).set_index("account_id")["account_name"]
    out = rows.assign(account_name=rows["account_id"].astype(str).map(accounts),
                      from_owner=rows["from_owner_id"].map(names).fillna(rows["from_owner_id"]),
                      to_owner=rows["to_owner_id"].map(names).fillna(rows["to_owner_id"]),
                      written_back=rows["writeback_done_at"].notna())
    columns = ["account_id", "account_name", "trigger_at", "clock", "level", "reassigned_at", "from_owner",
               "to_owner", "status", "reason", "written_back"]
    return out.sort_values("reassigned_at", ascending=False)[columns].reset_index(drop=True)


#: The reassignments-per-clock table's columns and the catalog metric of each count.
REASSIGNMENT_COLUMNS = {"reassigned": "reassignments_made", "kept": "reassignments_kept",
                        "written_back": "reassignments_written_back"}


def reassignment_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Per clock with a reassignment on breach in the period: reassigned, kept (no other rep) and written back,
    the metrics catalog's ``clock=`` segments of ``table`` (the period's catalog table)."""
    columns = ["clock", *REASSIGNMENT_COLUMNS]
    mine = table[table["metric"].isin(list(REASSIGNMENT_COLUMNS.values())) & table["segment"].str.startswith("clock=")]
    counts = mine.pivot(index="segment", columns="metric", values="value").reindex(
        columns=list(REASSIGNMENT_COLUMNS.values())).fillna(0)
    out = pd.DataFrame({"clock": counts.index.str.removeprefix("clock=")})
    for column, metric in REASSIGNMENT_COLUMNS.items():
        out[column] = counts[metric].astype(int).to_numpy()
    return out[columns].sort_values("clock").reset_index(drop=True)


def open_disputes(data: SlaData, policy: SlaPolicy, as_of: pd.Timestamp) -> pd.DataFrame:
    """Disputes open as of ``as_of`` with their current step and its due date."""
    accounts = account_dimensions(data).set_index("account_id")["account_name"]
    return disputes_module.open_disputes(data.disputes, data.dispute_notes, policy.disputes.steps, as_of, accounts)


def closed_disputes(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    rows = disputes_module.closed_disputes(data.disputes, start, end)
    accounts = account_dimensions(data).set_index("account_id")["account_name"]
    rows.insert(2, "account_name", rows["account_id"].astype(str).map(accounts))
    return rows
