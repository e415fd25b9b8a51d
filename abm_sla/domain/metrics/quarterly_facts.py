"""Facts of the quarterly renegotiation's tables (:mod:`abm_sla.domain.metrics.catalog_quarterly`): the tier-move
ledger's recommendations and the disputes' events (pure)."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain import tier_moves as tm
from abm_sla.domain.disputes import OUTCOMES as DISPUTE_OUTCOMES
from abm_sla.domain.metrics.catalog_quarterly import MOVE_DECISIONS
from abm_sla.domain.scorecard import SlaData, normalize_tier, within


def tier_move_facts(ledger: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                    as_of: pd.Timestamp) -> pd.DataFrame:
    """The ledger's recommendations made in ``[start, end)`` as known at ``as_of`` (:func:`tier_moves.known_at`):
    ``rule``, ``tier`` (from_tier), one flag per decision and ``age_days``."""
    rows = tm.known_at(ledger, as_of)
    rows = rows[within(rows["recommended_at"], start, end)].reset_index(drop=True)
    return pd.DataFrame({"rule": rows["rule"].astype(str), "tier": normalize_tier(rows["from_tier"]),
                         "age_days": rows["age_days"].astype("float64"),
                         **{decision: rows["decision"].eq(decision).to_numpy(dtype=bool)
                            for decision in MOVE_DECISIONS}})


def dispute_event_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """One row per opened, reopened or closed note of ``[start, end)``: a flag per kind, each closing's
    ``days_to_close`` (from the dispute's first opening) and ``outcome_<name>`` (the closing note's ``[tag]``)."""
    notes = data.dispute_notes
    events = notes[within(notes["at"], start, end) & notes["kind"].isin(["opened", "reopened", "closed"])]
    events = events.reset_index(drop=True)
    closed = events["kind"].eq("closed")
    opened_at = events["dispute_id"].map(data.disputes.drop_duplicates("dispute_id").set_index("dispute_id")[
        "opened_at"])
    days = ((events["at"] - pd.to_datetime(opened_at, utc=True)).dt.total_seconds() / 86400).where(closed)
    outcome = events["text"].astype("string").str.extract(r"^\[([a-z_]+)\]", expand=False).where(closed)
    return pd.DataFrame({**{kind: events["kind"].eq(kind).to_numpy(dtype=bool)
                            for kind in ("opened", "reopened", "closed")},
                         "days_to_close": days.astype("float64").to_numpy(),
                         **{f"outcome_{name}": outcome.eq(name).fillna(False).to_numpy(dtype=bool)
                            for name in DISPUTE_OUTCOMES}})


def disputes_open_facts(data: SlaData, end: pd.Timestamp) -> pd.DataFrame:
    """One row per dispute whose last opened, reopened or closed event before ``end`` is not a closing."""
    notes = data.dispute_notes
    history = notes[(notes["at"] < end) & notes["kind"].isin(["opened", "closed", "reopened"])]
    last = history.sort_values(["at", "id"]).groupby("dispute_id")["kind"].last()
    return pd.DataFrame({"dispute_id": last.index[last.ne("closed").to_numpy()].astype(str)})


def quarterly_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp
                    ) -> dict[str, pd.DataFrame]:
    """The families of :mod:`catalog_quarterly`: the stored tier-move ledger's recommendations, the disputes."""
    return {"tier_moves": tier_move_facts(data.tier_move_recommendations, start, end, as_of),
            "dispute_events": dispute_event_facts(data, start, end),
            "disputes_open": disputes_open_facts(data, end)}
