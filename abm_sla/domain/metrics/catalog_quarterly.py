"""The catalog's entries for the quarterly renegotiation's own tables (issue 22): the tier-move decisions (per
rule), the disputes of the period and the owners of MQAs (the disqualification patterns). Concatenated into
:data:`abm_sla.domain.metrics.catalog.CATALOG`; the first two's facts are
:mod:`abm_sla.domain.metrics.quarterly_facts`."""

from __future__ import annotations

from abm_sla.domain.disputes import OUTCOMES as DISPUTE_OUTCOMES
from abm_sla.domain.metrics.base import DISTINCT, FRACTION, Metric

#: The decisions a tier-move recommendation can have as of ``as_of`` (:mod:`abm_sla.domain.tier_moves`).
MOVE_DECISIONS = ("accepted", "declined", "pending")
_MOVES_PERIOD = "tier_move_recommendations.recommended_at (decisions as known at as_of)"
_MOVE_SEGMENTS = ("rule", "tier")
_NOTES_PERIOD = "dispute_notes.at (opened, reopened, closed events)"


#: The pipeline check's outcomes (:data:`abm_sla.domain.learning.training.OUTCOMES`): an opportunity won, or
#: created, within the horizon after the as-of.
SCORE_OUTCOMES = ("won", "opportunity")
_SCORED = ("the as-ofs every 7 days whose 90-day outcome window closed in the period (evaluated by the quarterly "
           "pipeline check with the scoring model, not in the period's metrics table)")
_OUTCOME_TEXT = {"won": "won an opportunity", "opportunity": "had an opportunity created"}


def _score_check_metrics() -> tuple[Metric, ...]:
    """The quarterly "Does the score predict pipeline?" figures: the current model re-scored weekly against what
    followed (family ``score_check``: one row per account and as-of)."""
    per_outcome = []
    for outcome in SCORE_OUTCOMES:
        what = f"the account {_OUTCOME_TEXT[outcome]} within the horizon"
        per_outcome += [
            Metric(f"score_auc_{outcome}", f"Score AUC ({outcome})", f"Area under the ROC curve of the total score for "
                   f"{what} (ties count half; 0.5 is chance).", FRACTION, "score_check", "AUC", "rows scored", (),
                   _SCORED, "", "auc", "total", outcome),
            Metric(f"score_precision_{outcome}", f"Hand-off precision ({outcome})", "Share of the rows the hand-off "
                   f"qualified where {what}.", FRACTION, "score_check", f"qualified rows where {what}",
                   "qualified rows", (), _SCORED, "", "mean", f"{outcome}_hit", "qualified"),
            Metric(f"score_recall_{outcome}", f"Hand-off recall ({outcome})", f"Share of the rows where {what} that "
                   "the hand-off qualified.", FRACTION, "score_check", f"qualified rows where {what}",
                   f"rows where {what}", (), _SCORED, "", "mean", f"{outcome}_hit", outcome),
            Metric(f"score_top_decile_lift_{outcome}", f"Top-decile lift ({outcome})", f"How often {what} in the top "
                   "tenth of rows by score over the overall rate (rows tied at the cut count in proportion).",
                   FRACTION, "score_check", "lift", "rows scored", (), _SCORED, "", "lift", "total", outcome),
            Metric(f"score_outcome_accounts_{outcome}", f"Accounts with the outcome ({outcome})", "Distinct "
                   f"accounts of the rows where {what}.", "count", "score_check", "accounts", "", (), _SCORED, "",
                   DISTINCT, f"{outcome}_account"),
            Metric(f"score_found_accounts_{outcome}", f"Accounts with the outcome handed off ({outcome})", "Distinct "
                   f"accounts of the rows the hand-off qualified where {what}.", "count", "score_check", "accounts",
                   "", (), _SCORED, "", DISTINCT, f"{outcome}_found_account"),
        ]
    return (
        Metric("score_rows", "Rows scored", "Account and as-of rows the current model scored (segment band: the "
               "total score's band, 0-24, 25-49, 50-74, 75-100).", "count", "score_check", "rows", "", ("band",),
               _SCORED, "", "count"),
        Metric("score_mqa_rows", "Rows handed off", "Rows the hand-off qualified (total and every gate).", "count",
               "score_check", "qualified rows", "", (), _SCORED, "", "count", "qualified"),
        Metric("score_mqa_accounts", "Accounts handed off", "Distinct accounts of the rows the hand-off qualified.",
               "count", "score_check", "accounts", "", (), _SCORED, "", DISTINCT, "mqa_account"),
        Metric("score_won_rows", "Rows won within the horizon", "Rows whose account won an opportunity within the "
               "horizon (per score band: the calibration).", "count", "score_check", "rows won", "", ("band",),
               _SCORED, "", "count", "won"),
        Metric("score_won_rate", "Won within the horizon", "Share of the rows whose account won an opportunity "
               "within the horizon (per score band: the calibration).", FRACTION, "score_check", "rows won",
               "rows scored", ("band",), _SCORED, "", "mean", "won"),
        *per_outcome,
    )


def dispute_outcome_metric_id(outcome: str) -> str:
    """The catalog id of the closings with ``outcome`` (:data:`abm_sla.domain.disputes.OUTCOMES`)."""
    return f"disputes_closed_{outcome}"


QUARTERLY_METRICS: tuple[Metric, ...] = (
    # -- the feedback loop's disqualification patterns: owners among a reason's MQAs --
    Metric("mqa_owners", "Owners of MQAs", "Distinct owners (owner_id) of the period's MQAs; over a rejection "
           "reason's MQAs, the owners who gave it (the disqualification patterns).", "count", "mqas", "owners", "",
           ("tier", "list"), "mqas.trigger_at", "", DISTINCT, "owner_id"),
    # -- tier-move decisions (the monthly and quarterly tier_move_decisions tables) --
    Metric("tier_moves_recommended", "Tier moves recommended", "Tier-move recommendations of the ledger made in "
           "the period (segment rule: the tier-move rule; tier: the account's tier when recommended).", "count",
           "tier_moves", "recommendations", "", _MOVE_SEGMENTS, _MOVES_PERIOD, "", "count"),
    *(Metric(f"tier_moves_{decision}", f"Tier moves {decision}", f"Tier-move recommendations made in the period "
             f"whose decision as known at as_of is {decision} (the account's tier moved as recommended within "
             "targets.tier_moves.decide_within_days: accepted; moved the other way or the days passed: declined; "
             "else pending).", "count", "tier_moves", f"recommendations {decision}", "", _MOVE_SEGMENTS,
             _MOVES_PERIOD, "", "count", decision)
      for decision in MOVE_DECISIONS),
    Metric("tier_move_age_median_days", "Tier moves: median age", "Median days from a recommendation made in the "
           "period to its decision, or to as_of while pending.", "days", "tier_moves", "median days",
           "recommendations", _MOVE_SEGMENTS, _MOVES_PERIOD, "", "median", "age_days"),
    # -- disputes (the dispute_counts table) --
    *(Metric(f"disputes_{kind}", f"Disputes {kind}", f"Dispute events ({kind}) in the period: the notes history, "
             "so a dispute closed and reopened counts once per event.", "count", "dispute_events",
             f"disputes {kind}", "", (), _NOTES_PERIOD, "", "count", kind)
      for kind in ("opened", "reopened", "closed")),
    Metric("dispute_close_median_days", "Disputes: median days to close", "Median days from a dispute's first "
           "opening to its closing, over the closings in the period.", "days", "dispute_events", "median days",
           "closings", (), _NOTES_PERIOD, "", "median", "days_to_close"),
    *(Metric(dispute_outcome_metric_id(outcome), f"Disputes closed: {outcome.replace('_', ' ')}", "Closings in "
             f"the period whose outcome (the closing note's [tag]) is {outcome}.", "count", "dispute_events",
             f"closings {outcome}", "", (), _NOTES_PERIOD, "", "count", f"outcome_{outcome}")
      for outcome in DISPUTE_OUTCOMES),
    Metric("disputes_open_at_end", "Disputes open at the period's end", "Disputes whose last opened, reopened or "
           "closed event before the period's end is not a closing.", "count", "disputes_open", "disputes open", "",
           (), "dispute_notes.at (the last event before the period's end)", "", "count"),
    # -- the pipeline check (score_predicts_pipeline, score_calibration): not in the period's metrics table --
    *_score_check_metrics(),
)
