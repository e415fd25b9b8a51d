"""The tier-move ledger as the reports show it: pending and decided recommendations, names and ages."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from abm_sla.domain import scorecard as sc
from abm_sla.domain import tier_moves as tm
from abm_sla.domain.metrics import quarterly_tables as qt
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard import SlaData
from abm_sla.services.config_files import load_model
from abm_sla.services.reporting.common import DEFAULT_SCORING_PATH, _iso

MOVES_LEDGER_TEXT = (
    "A move is recommended once and stays pending until sales decides it in the CRM: accepted when the "
    "account's tier moves as recommended within targets.tier_moves.decide_within_days, declined when it moves "
    "the other way or the days pass (decided at the deadline). Age is days from the recommendation to the "
    "decision, or to the report's as-of while pending.")
MOVE_COLUMNS = ["account_id", "account_name", "owner_id", "owner_name", "tier", "proposed_tier", "rule", "reason",
                "recommended_at", "decision", "decided_at", "age_days"]


@lru_cache(maxsize=4)
def _decision_makers(scoring_path: str | None = None) -> re.Pattern[str] | None:
    """The scoring model's decision-maker titles (gate 3), for the stakeholder rule of Tier 2 → 1."""
    path = Path(scoring_path) if scoring_path else DEFAULT_SCORING_PATH
    return load_model(path).decision_maker_pattern if path.is_file() else None


def _ledger(data: SlaData, as_of: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """The stored tier-move ledger; a warehouse that has none yet (runs older than the ledger) shows what one
    run as of ``as_of`` would record."""
    rules = policy.targets.tier_moves if policy.targets else None
    if rules is None:
        return tm.empty()
    if len(data.tier_move_recommendations):
        return data.tier_move_recommendations
    return tm.advance(tm.empty(), sc.tier_moves(data, as_of, policy, _decision_makers()), data.accounts, as_of,
                      rules)


def move_decisions(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp, policy: SlaPolicy,
                   table: pd.DataFrame) -> pd.DataFrame:
    """The recommendations of ``[start, end)`` and sales' decisions per rule: the catalog's ``tier_moves`` family,
    read from the report's table ``table`` when the ledger is stored (the catalog's facts), else over the ledger
    one run as of ``as_of`` would record (:func:`_ledger`)."""
    rules = policy.targets.tier_moves if policy.targets else None
    if rules is not None and len(data.tier_move_recommendations):
        return qt.tier_move_decisions(table)
    return qt.tier_move_decisions(qt.tier_move_table(_ledger(data, as_of, policy), start, end, as_of))


def tier_move_table(data: SlaData, start: pd.Timestamp, as_of: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """Recommendations pending at ``as_of`` and those decided since ``start``, with names and age."""
    rows = tm.known_at(_ledger(data, as_of, policy), as_of)
    rows = rows[rows["decision"].eq(tm.PENDING) | (rows["decided_at"] >= start)]
    accounts = sc.account_dimensions(data).set_index("account_id")
    rows = rows.assign(account_name=rows["account_id"].map(accounts["account_name"]),
                       owner_id=rows["account_id"].map(accounts["owner_id"]),
                       tier=pd.to_numeric(rows["from_tier"], errors="coerce"))
    rows["owner_name"] = rows["owner_id"].map(sc.owner_names(data))
    return rows[MOVE_COLUMNS].sort_values(["decision", "rule", "account_id"],
                                          key=lambda c: c.map({tm.PENDING: 0}).fillna(1) if c.name == "decision"
                                          else c).reset_index(drop=True)


def _moves_source(as_of: pd.Timestamp) -> str:
    return (f"tier_move_recommendations as known at {_iso(as_of)} (recorded by each run from accounts, contacts, "
            "activities, intent_signals and opportunities; decisions from accounts.tier and updated_at); "
            "rules from policy targets.tier_moves")


def _moves_text(policy: SlaPolicy) -> str:
    rules = policy.targets.tier_moves if policy.targets else None
    if rules is None:
        return "The policy has no targets.tier_moves: no moves recommended."
    parts = [f"{name}: {value}" for name, value in rules.model_dump().items() if value]
    return "Rules (policy targets.tier_moves): " + "; ".join(parts) + "."
