"""The quarterly report's question, "Does the score predict pipeline?": the current model scored
weekly against what followed."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from abm_sla.domain import metrics
from abm_sla.domain.learning.training import (
    DEFAULT_GRID_DAYS,
    DEFAULT_HORIZON_DAYS,
    OUTCOMES,
    score_from_counts,
    training_rows,
)
from abm_sla.domain.learning.validation import FIGURES, MIN_HOLDOUT_OUTCOMES, SCORE_BANDS
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
    in the top decile and calibration by score band (too few outcomes: it says so). Every figure is the catalog's
    ``score_check`` family (``score_*``) computed by :func:`metrics.family_table` over the re-scored rows: the
    catalog defines them once, but they are not in the period's metrics table (they need the scoring model)."""
    horizon = pd.Timedelta(days=horizon_days)
    first, last = utc_timestamp(start) - horizon, utc_timestamp(end) - horizon
    grid = pd.date_range(first, last, freq=pd.Timedelta(days=step_days), inclusive="left")
    rows = training_rows(crm, model, grid, horizon_days)
    scored = score_from_counts(rows, model) if len(rows) else pd.DataFrame({"total": [], "qualified": []})
    table = metrics.family_table("score_check", score_check_facts(rows, scored))
    figures = {outcome: _figures(table, outcome) for outcome in OUTCOMES}
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
    shown = pd.DataFrame({"figure": [label for _, label in FIGURES] + ["Rows", "Accounts with the outcome"],
                          **{outcome: [f[key] for key, _ in FIGURES] + [f["rows"], f["outcome_accounts"]]
                             for outcome, f in figures.items()}})
    return PipelineCheck(text, [("score_predicts_pipeline", "The current score against what followed", shown, source),
                                ("score_calibration", "Won within the horizon by score band", calibration(table),
                                 source)])


def score_check_facts(rows: pd.DataFrame, scored: pd.DataFrame) -> pd.DataFrame:
    """The ``score_check`` family's facts: one row per account and as-of with its ``total``, ``band``
    (:data:`SCORE_BANDS`), ``qualified``, each outcome and the account columns the distinct counts take."""
    total = pd.to_numeric(scored["total"], errors="coerce").to_numpy(dtype="float64")
    qualified = scored["qualified"].to_numpy(dtype=bool)
    accounts = rows["account_id"].astype(str).to_numpy() if len(rows) else np.array([], dtype=object)
    labels = [f"{low}-{high - 1}" for low, high in pairwise(SCORE_BANDS)]
    out = pd.DataFrame({"total": total, "qualified": qualified,
                        "band": pd.cut(total, list(SCORE_BANDS), right=False, labels=labels).astype(object),
                        "mqa_account": np.where(qualified, accounts, None)})
    for outcome in OUTCOMES:
        hit = rows[outcome].to_numpy(dtype=bool) if len(rows) else np.zeros(0, dtype=bool)
        out[outcome] = hit
        out[f"{outcome}_hit"] = hit & qualified
        out[f"{outcome}_account"] = np.where(hit, accounts, None)
        out[f"{outcome}_found_account"] = np.where(hit & qualified, accounts, None)
    return out


def _figures(table: pd.DataFrame, outcome: str) -> dict[str, Any]:
    """One outcome's figures (:data:`FIGURES`, rows, accounts with the outcome), read from the catalog table."""
    def number(metric: str) -> float | None:
        value = metrics.read(table, metric)
        return None if np.isnan(value) else value

    counts = {"mqa_rows": "score_mqa_rows", "mqa_accounts": "score_mqa_accounts", "rows": "score_rows",
              "outcome_accounts_found": f"score_found_accounts_{outcome}",
              "outcome_accounts": f"score_outcome_accounts_{outcome}"}
    return {"auc": number(f"score_auc_{outcome}"), "precision": number(f"score_precision_{outcome}"),
            "recall": number(f"score_recall_{outcome}"), "top_decile_lift": number(f"score_top_decile_lift_{outcome}"),
            **{key: int(metrics.read(table, metric, default=0.0)) for key, metric in counts.items()}}


def calibration(table: pd.DataFrame) -> pd.DataFrame:
    """Per score band (:data:`SCORE_BANDS`): rows, rows won and their rate, read from the catalog table."""
    bands = [f"{low}-{high - 1}" for low, high in pairwise(SCORE_BANDS)]
    return pd.DataFrame({"band": bands,
                         "rows": [int(metrics.read(table, "score_rows", f"band={b}", default=0.0)) for b in bands],
                         "won_rows": [int(metrics.read(table, "score_won_rows", f"band={b}", default=0.0))
                                      for b in bands],
                         "won_rate": [metrics.read(table, "score_won_rate", f"band={b}") for b in bands]})
