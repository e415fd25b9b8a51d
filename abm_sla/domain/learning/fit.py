"""The fit: a non-negative, L2-regularised logistic regression on the rules' inputs, turned into integer
points that keep the model's total points on offer, no rule paying more than its category's cap."""

from __future__ import annotations

import math

import numpy as np

from abm_sla.domain.learning.training import UNCAPPED_UNITS, Feature
from abm_sla.domain.model import BandRule, ListRule, ScoringModel

#: The L2 penalty on the mean log-loss (features are counts of a few units and 0/1 matches).
L2_PENALTY = 1e-3


def fit_logistic(x: np.ndarray, y: np.ndarray, penalty: float = L2_PENALTY,
                 iterations: int = 3000) -> tuple[float, np.ndarray]:
    """(intercept, coefficients >= 0) minimising the mean log-loss plus ``penalty / 2 * |coef|^2``.

    Projected accelerated gradient (FISTA) on the distinct input rows, weighted by their counts: a
    point can only add to a score, so a rule whose signals predict nothing gets 0, never less.
    """
    table, counts = np.unique(np.column_stack([x, y]), axis=0, return_counts=True)
    inputs = np.column_stack([np.ones(len(table)), table[:, :-1]])
    target, weight = table[:, -1], counts / counts.sum()
    ridge = np.r_[0.0, np.full(x.shape[1], penalty)]
    step = 1 / (0.25 * np.linalg.eigvalsh(inputs.T @ (inputs * weight[:, None])).max() + penalty)
    beta = np.zeros(inputs.shape[1])
    beta[0] = math.log(max(y.mean(), 1e-6) / max(1 - y.mean(), 1e-6))
    moving, momentum = beta.copy(), 1.0
    for _ in range(iterations):
        chance = 1 / (1 + np.exp(-np.clip(inputs @ moving, -35, 35)))
        gradient = inputs.T @ (weight * (chance - target)) + ridge * moving
        ahead = moving - step * gradient
        ahead[1:] = np.maximum(ahead[1:], 0)
        following = (1 + math.sqrt(1 + 4 * momentum**2)) / 2
        moving = ahead + (momentum - 1) / following * (ahead - beta)
        if np.abs(ahead - beta).max() < 1e-9:
            beta = ahead
            break
        beta, momentum = ahead, following
    return float(beta[0]), beta[1:]


def points_from_coefficients(coefficients: np.ndarray, inputs: list[Feature],
                             model: ScoringModel) -> dict[str, int]:
    """Integer points per input: coefficients (log-odds) times one scale for the whole model, so one point
    is worth the same in every category. The scale is the largest at which no rule pays more than its
    category's cap: the most predictive rule (at its ``max``) can fill its category alone, the others get
    points in proportion. A 0 coefficient is 0 points."""
    learned = _learned_rule_max(coefficients, inputs)
    scales = [model.category(_category_of(inputs, rule)).cap / value for rule, value in learned.items() if value > 0]
    scale = min(scales) if scales else 0.0
    return {feature.label: round(float(coefficient * scale)) for coefficient, feature in zip(coefficients, inputs,
                                                                                            strict=True)}


def _category_of(inputs: list[Feature], rule: str) -> str:
    return next(feature.category for feature in inputs if feature.rule == rule)


def _learned_rule_max(coefficients: np.ndarray, inputs: list[Feature]) -> dict[str, float]:
    best: dict[str, float] = {}
    for coefficient, feature in zip(coefficients, inputs, strict=True):
        value = coefficient * feature.units
        best[feature.rule] = max(best.get(feature.rule, 0.0), value) if feature.band is not None \
            else best.get(feature.rule, 0.0) + value
    return best


def _rule_max(model: ScoringModel, name: str) -> int:
    rule = next(rule for _, rule in model.rules() if rule.name == name)
    if isinstance(rule, BandRule):
        return max(band.points for band in rule.bands)
    if isinstance(rule, ListRule):
        return rule.points
    return rule.max if rule.max is not None else rule.points * UNCAPPED_UNITS


def _category_reach(model: ScoringModel, category: str) -> int:
    """The most points a category can give: its cap or the sum of its rules' most, whichever is lower."""
    rules = model.category(category).rules
    return min(model.category(category).cap, sum(_rule_max(model, rule.name) for rule in rules))


def points_changes(points: dict[str, int], inputs: list[Feature]) -> dict[tuple[str | int, ...], int]:
    """The model file edits that set ``points`` (per input label): per-signal ``points`` and ``max``
    (the same units), list ``points``, band ``points``."""
    changes: dict[tuple[str | int, ...], int] = {}
    for feature in inputs:
        value = points[feature.label]
        if feature.band is not None:
            changes[(*feature.path, "bands", feature.band, "points")] = value
        else:
            changes[(*feature.path, "points")] = value
            if feature.capped:
                changes[(*feature.path, "max")] = value * feature.units
    return changes
