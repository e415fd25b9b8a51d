"""The catalog's entries for the quarterly renegotiation's own tables (issue 22): the tier-move decisions (per
rule), the disputes of the period and the owners of MQAs (the disqualification patterns). Concatenated into
:data:`abm_sla.domain.metrics.catalog.CATALOG`; the first two's facts are
:mod:`abm_sla.domain.metrics.quarterly_facts`."""

from __future__ import annotations

from abm_sla.domain.disputes import OUTCOMES as DISPUTE_OUTCOMES
from abm_sla.domain.metrics.base import DISTINCT, Metric

#: The decisions a tier-move recommendation can have as of ``as_of`` (:mod:`abm_sla.domain.tier_moves`).
MOVE_DECISIONS = ("accepted", "declined", "pending")
_MOVES_PERIOD = "tier_move_recommendations.recommended_at (decisions as known at as_of)"
_MOVE_SEGMENTS = ("rule", "tier")
_NOTES_PERIOD = "dispute_notes.at (opened, reopened, closed events)"


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
)
