"""The quarterly report's question, "Does the score predict pipeline?": the current model scored
weekly against what followed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from abm_sla.domain.learning.training import (
    DEFAULT_GRID_DAYS,
    DEFAULT_HORIZON_DAYS,
    OUTCOMES,
    score_from_counts,
    training_rows,
)
from abm_sla.domain.learning.validation import FIGURES, MIN_HOLDOUT_OUTCOMES, evaluate
from abm_sla.domain.model import ScoringModel
from abm_sla.domain.scoring import utc_timestamp

PIPELINE_SECTION_TITLE = "Does the score predict pipeline?"


@dataclass
class PipelineCheck:
    """The section's content: lines of text and tables (name, title, frame, source)."""

    text: list[str]
    tables: list[tuple[str, str, pd.DataFrame, str]]


def pipeline_check(crm: Any, model: ScoringModel, start: pd.Timestamp, end: pd.Timestamp,
                   horizon_days: int = DEFAULT_HORIZON_DAYS, step_days: int = DEFAULT_GRID_DAYS) -> PipelineCheck:
    """The current model scored weekly on the as-ofs whose outcome window closed in ``[start, end)``, against
    what followed: for a won opportunity and for a new one, AUC, precision and recall of the hand-off, lift
    in the top decile and calibration by score band (too few outcomes: it says so)."""
    horizon = pd.Timedelta(days=horizon_days)
    first, last = utc_timestamp(start) - horizon, utc_timestamp(end) - horizon
    grid = pd.date_range(first, last, freq=pd.Timedelta(days=step_days), inclusive="left")
    rows = training_rows(crm, model, grid, horizon_days)
    scored = score_from_counts(rows, model) if len(rows) else pd.DataFrame({"total": [], "qualified": []})
    accounts = rows["account_id"].to_numpy() if len(rows) else np.array([], dtype=object)
    figures = {outcome: evaluate(scored, rows[outcome].to_numpy(dtype=bool) if len(rows) else np.zeros(0, bool),
                                 accounts) for outcome in OUTCOMES}
    span = f"as-ofs every {step_days} days in [{first:%Y-%m-%d}, {last:%Y-%m-%d})"
    source = (f"scores recomputed with model {model.version} at the {span}; opportunities created (and won) in the "
              f"{horizon_days} days after each")
    won = figures["won"]
    if won["outcome_accounts"] < MIN_HOLDOUT_OUTCOMES:
        text = [f"Not enough outcomes to tell: {won['outcome_accounts']} accounts won an opportunity within "
                f"{horizon_days} days of the {span} (minimum {MIN_HOLDOUT_OUTCOMES})."]
    else:
        text = [f"Scored at the {span}, the accounts that went on to win within {horizon_days} days ranked with "
                f"AUC {won['auc']} (0.5 is chance); the top tenth by score won {won['top_decile_lift']:.1f}x as often "
                f"as the average; the hand-off caught {won['outcome_accounts_found']} of {won['outcome_accounts']} "
                "winning accounts."]
    text.append("To propose points learned from outcomes, with a held-back check: "
                "`abm-sla propose model --train-until DATE --out DIR`.")
    table = pd.DataFrame({"figure": [label for _, label in FIGURES] + ["Rows", "Accounts with the outcome"],
                          **{outcome: [f[key] for key, _ in FIGURES] + [f["rows"], f["outcome_accounts"]]
                             for outcome, f in figures.items()}})
    bands = pd.DataFrame(figures["won"]["calibration"]).rename(columns={"outcome_rows": "won_rows", "rate": "won_rate"})
    return PipelineCheck(text, [("score_predicts_pipeline", "The current score against what followed", table, source),
                                ("score_calibration", "Won within the horizon by score band", bands, source)])
