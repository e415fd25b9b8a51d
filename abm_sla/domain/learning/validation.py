"""Both models side by side on held-back rows: AUC, precision and recall at the threshold, lift in the
top decile, calibration by score band, the verdict, and a what-if of the MQAs that would change."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from abm_sla.domain import whatif
from abm_sla.domain.learning.training import score_from_counts
from abm_sla.domain.model import ScoringModel
from abm_sla.domain.scoring import score_accounts

#: Fewer accounts with the outcome than this in the training rows, or in the held-back rows: no proposal.
MIN_TRAIN_OUTCOMES = 30
MIN_HOLDOUT_OUTCOMES = 15
SCORE_BANDS = (0, 25, 50, 75, 101)  # calibration bands: [0, 25), [25, 50), [50, 75), [75, 100]
TOP_SHARE = 0.1  # the top decile
#: The proposal "beats" the current model when it hands off more accounts with the outcome on the held-back
#: as-ofs with at most this much more MQA volume.
VOLUME_SLACK = 0.1


def compare(rows: pd.DataFrame, current: ScoringModel, proposed: ScoringModel, outcome: str) -> dict[str, Any]:
    """Both models on the same rows: :func:`evaluate` of each."""
    outcomes = rows[outcome].to_numpy(dtype=bool)
    return {name: evaluate(score_from_counts(rows, model), outcomes, rows["account_id"].to_numpy())
            for name, model in (("current", current), ("proposed", proposed))}


def evaluate(scored: pd.DataFrame, outcomes: np.ndarray, accounts: np.ndarray) -> dict[str, Any]:
    """AUC of the total, precision and recall of ``qualified``, lift in the top decile, calibration by band,
    and the distinct accounts handed off with the outcome (``outcome_accounts_found``)."""
    total, qualified = scored["total"].to_numpy(), scored["qualified"].to_numpy(dtype=bool)
    hits = qualified & outcomes
    return {
        "rows": len(total), "outcome_rows": int(outcomes.sum()),
        "outcome_accounts": int(pd.unique(accounts[outcomes]).size),
        "mqa_rows": int(qualified.sum()), "mqa_accounts": int(pd.unique(accounts[qualified]).size),
        "outcome_accounts_found": int(pd.unique(accounts[hits]).size),
        "auc": _round(auc(total, outcomes)),
        "precision": _round(hits.sum() / qualified.sum() if qualified.any() else float("nan")),
        "recall": _round(hits.sum() / outcomes.sum() if outcomes.any() else float("nan")),
        "top_decile_lift": _round(top_lift(total, outcomes)),
        "calibration": calibration(total, outcomes),
    }


def auc(score: np.ndarray, outcomes: np.ndarray) -> float:
    """The area under the ROC curve (ties count half); NaN without both outcomes."""
    positives, negatives = int(outcomes.sum()), int((~outcomes).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[outcomes].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def top_lift(score: np.ndarray, outcomes: np.ndarray, share: float = TOP_SHARE) -> float:
    """The outcome rate in the top ``share`` of rows by score over the overall rate; rows tied at the
    cut count in proportion, so the figure does not depend on row order."""
    if len(score) == 0 or not outcomes.any():
        return float("nan")
    size = share * len(score)
    cut = np.sort(score)[::-1][max(math.ceil(size) - 1, 0)]
    above, tied = score > cut, score == cut
    taken = outcomes[above].sum() + (size - above.sum()) / tied.sum() * outcomes[tied].sum()
    return float(taken / size / outcomes.mean())


def calibration(score: np.ndarray, outcomes: np.ndarray, bands: tuple[int, ...] = SCORE_BANDS) -> list[dict]:
    """Per score band: rows, rows with the outcome and their rate."""
    out = []
    for low, high in pairwise(bands):
        inside = (score >= low) & (score < high)
        count = int(inside.sum())
        out.append({"band": f"{low}-{high - 1}", "rows": count, "outcome_rows": int(outcomes[inside].sum()),
                    "rate": _round(outcomes[inside].mean() if count else float("nan"))})
    return out


def _round(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 4)


def _verdict(comparison: dict[str, Any], outcome: str) -> tuple[bool, str]:
    """(the proposal beats the current model, the sentence that says so or not)."""
    now, new = comparison["current"], comparison["proposed"]
    noun = "won accounts" if outcome == "won" else "accounts with a new opportunity"
    volume = f"{new['mqa_rows']} MQA rows against {now['mqa_rows']} on the held-back as-ofs"
    found = f"{new['outcome_accounts_found']} {noun} handed off against {now['outcome_accounts_found']}"
    gain = new["outcome_accounts_found"] - now["outcome_accounts_found"]
    same_volume = new["mqa_rows"] <= now["mqa_rows"] * (1 + VOLUME_SLACK)
    if gain > 0 and same_volume:
        share = f"{gain / now['outcome_accounts_found']:.0%}" if now["outcome_accounts_found"] else "all the"
        return True, (f"the proposal finds {share} more {noun} at the same MQA volume ({found}; {volume}; "
                      f"AUC {new['auc']} against {now['auc']})")
    return False, (f"the proposal does not beat the current model on the held-back as-ofs ({found}; {volume}; "
                   f"AUC {new['auc']} against {now['auc']}): keep the current points")


def what_if(crm: Any, current: ScoringModel, proposed: ScoringModel, as_of: pd.Timestamp) -> dict[str, Any]:
    """The accounts whose hand-off the proposal would change as of ``as_of`` (:func:`domain.whatif.score_diff`)."""
    before, after = (score_accounts(crm.accounts, crm.contacts, crm.activities, crm.intent_signals, m, as_of)
                     for m in (current, proposed))
    diff = whatif.score_diff(before, after, current.version, f"{proposed.version} (proposed)")
    changed = diff[diff["change"].isin([whatif.NEWLY_PASSES, whatif.DROPS_BELOW])]
    keep = ["account_id", "change", "total_before", "total_after"]
    return {"as_of": as_of.isoformat(), "summary": whatif.summarize(diff),
            "changed_mqas": changed[keep].astype({"total_before": int, "total_after": int}).to_dict(orient="records")}


#: The figures of a comparison, as the model card and the quarterly report show them.
FIGURES = (("auc", "AUC"), ("precision", "Precision at the threshold"), ("recall", "Recall at the threshold"),
           ("top_decile_lift", "Lift in the top decile"), ("mqa_rows", "MQA rows"), ("mqa_accounts", "MQA accounts"),
           ("outcome_accounts_found", "Accounts with the outcome handed off"))
