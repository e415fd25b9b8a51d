"""The quarterly renegotiation's tables read back from a catalog table (:mod:`catalog_quarterly`): the tier-move
decisions per rule and the disputes of the period (pure)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain.disputes import OUTCOMES as DISPUTE_OUTCOMES
from abm_sla.domain.metrics.aggregate import family_table
from abm_sla.domain.metrics.base import ALL
from abm_sla.domain.metrics.catalog_quarterly import MOVE_DECISIONS, dispute_outcome_metric_id
from abm_sla.domain.metrics.quarterly_facts import dispute_event_facts, disputes_open_facts, tier_move_facts
from abm_sla.domain.metrics.reading import read
from abm_sla.domain.scorecard import SlaData


def tier_move_decisions(table: pd.DataFrame) -> pd.DataFrame:
    """Per rule (the table's ``rule=`` segments) and ``all``: recommended, accepted, declined, pending and the
    median age in days, read from a catalog table (the report's, or :func:`tier_move_table` of a ledger)."""
    rules = sorted(table.loc[(table["metric"] == "tier_moves_recommended")
                             & table["segment"].str.startswith("rule="), "segment"].str.removeprefix("rule="))
    segments = [*(f"rule={rule}" for rule in rules), ALL]
    columns = {"recommended": "tier_moves_recommended", **{d: f"tier_moves_{d}" for d in MOVE_DECISIONS}}
    out = pd.DataFrame({"rule": [*rules, ALL],
                        **{column: [int(read(table, metric, s, default=0.0)) for s in segments]
                           for column, metric in columns.items()},
                        "median_age_days": [read(table, "tier_move_age_median_days", s) for s in segments]})
    return out


def tier_move_table(ledger: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                    as_of: pd.Timestamp) -> pd.DataFrame:
    """The tier_moves family of the catalog over a ledger (a report's fallback when no ledger is stored)."""
    return family_table("tier_moves", tier_move_facts(ledger, start, end, as_of), ("rule",))


def dispute_counts(table: pd.DataFrame) -> pd.DataFrame:
    """One row: the period's disputes opened, reopened, closed, open at its end, the median days to close and the
    closings per outcome, read from the catalog table."""
    row = {kind: int(read(table, f"disputes_{kind}", default=0.0)) for kind in ("opened", "reopened", "closed")}
    row["open_at_end"] = int(read(table, "disputes_open_at_end", default=0.0))
    median = read(table, "dispute_close_median_days")
    row["median_days_to_close"] = None if np.isnan(median) else median
    row.update({f"outcome_{name}": int(read(table, dispute_outcome_metric_id(name), default=0.0))
                for name in DISPUTE_OUTCOMES})
    return pd.DataFrame([row])


def dispute_table(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The catalog's dispute families over ``[start, end)`` alone (what :func:`dispute_counts` reads), for a caller
    without a report's metrics table."""
    return pd.concat([family_table("dispute_events", dispute_event_facts(data, start, end)),
                      family_table("disputes_open", disputes_open_facts(data, end))], ignore_index=True)
