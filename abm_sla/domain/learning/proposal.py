"""The proposal (:func:`propose_model`): the fit on the rows whose outcome was known by ``train_until``, a
threshold that keeps the training MQA rate, the validation on the held-back as-ofs, the scoring model
diff and the model card's figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import yaml

from abm_sla.domain.learning.fit import (
    L2_PENALTY,
    _category_reach,
    fit_logistic,
    points_changes,
    points_from_coefficients,
)
from abm_sla.domain.learning.training import (
    DEFAULT_GRID_DAYS,
    DEFAULT_HORIZON_DAYS,
    OUTCOMES,
    Feature,
    as_of_grid,
    design,
    features,
    score_from_counts,
    training_rows,
)
from abm_sla.domain.learning.validation import MIN_HOLDOUT_OUTCOMES, MIN_TRAIN_OUTCOMES, _verdict, compare, what_if
from abm_sla.domain.model import CATEGORIES, ScoringModel, parse_model
from abm_sla.domain.proposals import set_yaml_values, unified_diff
from abm_sla.domain.scoring import utc_timestamp


@dataclass
class ModelProposal:
    """What ``abm-sla propose model`` writes: the diff, the card's figures and the verdict."""

    verdict: str
    proposed: bool  # True: the diff is worth agreeing (enough outcomes, and it beats the current model)
    diff: str = ""
    card: dict[str, Any] = field(default_factory=dict)


def propose_model(crm: Any, model_text: str, train_until: pd.Timestamp, data_end: pd.Timestamp,
                  horizon_days: int = DEFAULT_HORIZON_DAYS, step_days: int = DEFAULT_GRID_DAYS,
                  outcome: str = "won", volume_factor: float = 1.0, first: pd.Timestamp | None = None,
                  model_path: str = "config/scoring.yaml") -> ModelProposal:
    """Fit the points on the rows whose outcome was known by ``train_until``, validate on the as-ofs from
    ``train_until`` whose outcome is known by ``data_end``, and compare both models there.

    ``volume_factor`` scales the MQA rate the proposed threshold aims at (1: the current rate).
    ``first`` is the first as-of (default: the first signal plus the model's window).
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    model = parse_model(yaml.safe_load(model_text))
    train_until, data_end = utc_timestamp(train_until), utc_timestamp(data_end)
    first = utc_timestamp(first) if first is not None else _first_as_of(crm, model)
    horizon = pd.Timedelta(days=horizon_days)
    grid = as_of_grid(first, data_end, horizon_days, step_days)
    rows = training_rows(crm, model, grid, horizon_days)
    train = rows[rows["at"] + horizon <= train_until]
    holdout = rows[rows["at"] >= train_until]
    card = _card_header(model, train_until, data_end, horizon_days, step_days, outcome, train, holdout, rows)
    shortfall = _shortfall(train, holdout, outcome)
    if shortfall:
        card["verdict"] = f"not enough outcomes to propose anything: {shortfall}"
        return ModelProposal(card["verdict"], False, "", card)
    inputs = features(model)
    intercept, coefficients = fit_logistic(design(train, inputs), train[outcome].to_numpy(dtype=float))
    points = points_from_coefficients(coefficients, inputs, model)
    if not any(points.values()):
        card["verdict"] = f"no rule predicts {outcome_text(outcome)} in the training rows: nothing to propose"
        return ModelProposal(card["verdict"], False, "", card)
    draft = set_yaml_values(model_text, points_changes(points, inputs))
    draft_model = parse_model(yaml.safe_load(draft))
    changes = points_changes(points, inputs) | _minimum_changes(model, draft_model)
    changes |= _volume_gates(train, model, draft_model, changes, volume_factor)
    proposed_text = set_yaml_values(model_text, changes)
    proposed = parse_model(yaml.safe_load(proposed_text))
    comparison = compare(holdout, model, proposed, outcome)
    better, verdict = _verdict(comparison, outcome)
    card |= {
        "rules": _rule_table(model, proposed, inputs, coefficients),
        "intercept": round(intercept, 4),
        "threshold": {"current": model.gates.min_total, "proposed": proposed.gates.min_total,
                      "training_mqa_rate_current": _rate(score_from_counts(train, model)["qualified"]),
                      "training_mqa_rate_proposed": _rate(score_from_counts(train, proposed)["qualified"]),
                      "volume_factor": volume_factor},
        "category_minimums": {c: {"current": model.gates.min_category.get(c, 0),
                                  "proposed": proposed.gates.min_category.get(c, 0)} for c in CATEGORIES},
        "holdout_comparison": comparison,
        "what_if": what_if(crm, model, proposed, data_end),
        "verdict": verdict,
    }
    diff = unified_diff(model_text, proposed_text, model_path)
    return ModelProposal(verdict, better, diff, card)


def _first_as_of(crm: Any, model: ScoringModel) -> pd.Timestamp:
    times = pd.to_datetime(crm.activities["occurred_at"], utc=True).dropna()
    start = times.min() if len(times) else pd.Timestamp("1970-01-01", tz="UTC")
    return (start + model.window).ceil("D")


def _shortfall(train: pd.DataFrame, holdout: pd.DataFrame, outcome: str) -> str:
    """Why there is not enough evidence ('' when there is)."""
    found = {"training": _outcome_accounts(train, outcome), "held-back": _outcome_accounts(holdout, outcome)}
    minimum = {"training": MIN_TRAIN_OUTCOMES, "held-back": MIN_HOLDOUT_OUTCOMES}
    short = [f"{found[part]} accounts with {outcome_text(outcome)} in the {part} rows (minimum {minimum[part]})"
             for part in found if found[part] < minimum[part]]
    return "; ".join(short)


def _outcome_accounts(rows: pd.DataFrame, outcome: str) -> int:
    return int(rows.loc[rows[outcome].astype(bool), "account_id"].nunique()) if len(rows) else 0


def outcome_text(outcome: str) -> str:
    return "a won opportunity" if outcome == "won" else "a new opportunity"


def _minimum_changes(model: ScoringModel, draft: ScoringModel) -> dict[tuple[str | int, ...], int]:
    """Category minimums keep their share of what the category can reach (so none becomes unreachable)."""
    changes = {}
    for category, minimum in model.gates.min_category.items():
        before, after = _category_reach(model, category), _category_reach(draft, category)
        if before > 0:
            changes[("gates", "min_category", category)] = round(minimum * after / before)
    return changes


#: The shares of the category minimums the volume search may keep (1: as scaled; 0: none).
MINIMUM_SHARES = (1.0, 0.75, 0.5, 0.25, 0.0)
#: Hand-off settings whose training MQA rate is within this relative distance of the nearest count as
#: near: among them, the search keeps the most of the category minimums, then the nearest threshold.
VOLUME_TOLERANCE = 0.05


def _volume_gates(train: pd.DataFrame, model: ScoringModel, draft: ScoringModel,
                  changes: dict[tuple[str | int, ...], int], volume_factor: float) -> dict[tuple[str, ...], int]:
    """The total threshold and category minimums whose training MQA rate is nearest the current rate times
    ``volume_factor``: the minimums keep their share of each category's reach, scaled down together only
    when the volume needs it, and the threshold moves as little as it can."""
    aim = _rate(score_from_counts(train, model)["qualified"]) * volume_factor
    scaled = {c: changes.get(("gates", "min_category", c), draft.gates.min_category.get(c, 0)) for c in CATEGORIES}
    scored = score_from_counts(train, draft)
    totals = scored["total"].to_numpy()
    others = train["gate_decision_maker"].to_numpy(dtype=bool) & train["gate_marketing_touches"].to_numpy(dtype=bool)
    thresholds = np.arange(0, sum(draft.category(c).cap for c in CATEGORIES) + 2)
    options = []
    for share in MINIMUM_SHARES:
        minimums = {c: round(scaled[c] * share) for c in CATEGORIES}
        passing = others & np.logical_and.reduce([scored[c].to_numpy() >= minimums[c] for c in CATEGORIES])
        for threshold in thresholds:
            rate = float((passing & (totals >= threshold)).mean()) if len(totals) else 0.0
            error = abs(rate - aim) / aim if aim > 0 else rate
            options.append((error, -share, abs(int(threshold) - model.gates.min_total), int(threshold), minimums))
    best = min(option[0] for option in options)
    chosen = min(option for option in options if option[0] <= best + VOLUME_TOLERANCE)
    out = {("gates", "min_total"): chosen[3]}
    out |= {("gates", "min_category", c): chosen[4][c] for c in CATEGORIES if c in model.gates.min_category}
    return out


def _rate(flags: pd.Series) -> float:
    return round(float(flags.mean()), 4) if len(flags) else 0.0


def _rule_table(model: ScoringModel, proposed: ScoringModel, inputs: list[Feature],
                coefficients: np.ndarray) -> list[dict[str, Any]]:
    out = []
    for feature, coefficient in zip(inputs, coefficients, strict=True):
        before, after = (_feature_points(m, feature) for m in (model, proposed))
        out.append({"rule": feature.label, "category": feature.category, "units": feature.units,
                    "coefficient": round(float(coefficient), 4), "current_points": before,
                    "proposed_points": after, "change": after - before})
    return out


def _feature_points(model: ScoringModel, feature: Feature) -> int:
    rule = model.category(feature.category).rules[int(feature.path[-1])]
    return rule.bands[feature.band].points if feature.band is not None else rule.points


def _card_header(model: ScoringModel, train_until: pd.Timestamp, data_end: pd.Timestamp, horizon_days: int,
                 step_days: int, outcome: str, train: pd.DataFrame, holdout: pd.DataFrame,
                 rows: pd.DataFrame) -> dict[str, Any]:
    def part(frame: pd.DataFrame) -> dict[str, Any]:
        return {"rows": len(frame), "accounts": int(frame["account_id"].nunique()) if len(frame) else 0,
                "as_ofs": int(frame["at"].nunique()) if len(frame) else 0,
                "first_as_of": frame["at"].min().isoformat() if len(frame) else None,
                "last_as_of": frame["at"].max().isoformat() if len(frame) else None,
                "opportunity_accounts": _outcome_accounts(frame, "opportunity"),
                "won_accounts": _outcome_accounts(frame, "won")}

    return {
        "model_version": model.version, "outcome": outcome, "horizon_days": horizon_days,
        "grid_days": step_days, "train_until": train_until.isoformat(), "data_end": data_end.isoformat(),
        "minimums": {"training_outcome_accounts": MIN_TRAIN_OUTCOMES, "holdout_outcome_accounts": MIN_HOLDOUT_OUTCOMES},
        "method": "non-negative L2-regularised logistic regression (penalty "
                  f"{L2_PENALTY:g}) on each rule's signals up to its max (one 0/1 input per band); coefficients "
                  "times one scale (the largest at which no rule pays more than its category's cap), rounded; "
                  "threshold and category minimums set to keep the training MQA rate",
        "training": part(train), "holdout": part(holdout), "all_rows": len(rows),
    }
