"""Learn the scoring model's points from outcomes: training rows without leakage, a proposal in the
model's own terms, and its validation on a held-back period. Pure: no clock, no I/O, ``as_of`` passed in.

- :mod:`~abm_sla.domain.learning.training`: per account and per as-of on a grid, the model's inputs as they
  stood then (per-rule counts in the window ending at the as-of, from :func:`abm_sla.domain.scoring.score_at`)
  and the outcome that followed (an opportunity created, and one created and won, in ``(as_of, as_of + horizon]``).
  Signals count only up to the as-of, accounts only once created, outcomes only after it.
- :mod:`~abm_sla.domain.learning.fit`: a non-negative, L2-regularised logistic regression on the rules' inputs
  (each rule's signals up to the count its ``max`` pays for; one 0/1 input per band), turned into integer points
  that keep the model's total points on offer, no rule paying more than its category's cap.
- :func:`propose_model` (:mod:`~abm_sla.domain.learning.proposal`): the fit on the rows whose outcome was known
  by ``train_until``, a threshold that keeps the training MQA rate, and both models side by side on the held-back
  rows (as-of at or after ``train_until``; :mod:`~abm_sla.domain.learning.validation`): AUC, precision and recall
  at the threshold, lift in the top decile, calibration by score band, a plain verdict, the scoring model diff
  and a what-if of the MQAs that would change.
- :func:`pipeline_check`: the quarterly report's "Does the score predict pipeline?".

The model card of a proposal (its Markdown and JSON files) is :mod:`abm_sla.domain.model_card`.

Firmographic attributes are the stored ones (the warehouse keeps the latest version of an account).
"""

from abm_sla.domain.learning.pipeline_check import PIPELINE_SECTION_TITLE, pipeline_check
from abm_sla.domain.learning.proposal import ModelProposal, outcome_text, propose_model
from abm_sla.domain.learning.training import DEFAULT_HORIZON_DAYS, OUTCOMES
from abm_sla.domain.learning.validation import FIGURES

__all__ = ["DEFAULT_HORIZON_DAYS", "FIGURES", "OUTCOMES", "PIPELINE_SECTION_TITLE", "ModelProposal", "outcome_text",
           "pipeline_check", "propose_model"]
