"""Learn the scoring model's points from outcomes: training rows without leakage, a proposal in the
model's own terms, and its validation on a held-back period. Pure: no clock, no I/O, ``as_of`` passed in.

- :func:`training_rows`: per account and per as-of on a grid, the model's inputs as they stood then
  (per-rule counts in the window ending at the as-of, from :func:`abm_sla.domain.scoring.score_at`) and the
  outcome that followed (an opportunity created, and one created and won, in ``(as_of, as_of + horizon]``).
  Signals count only up to the as-of, accounts only once created, outcomes only after it.
- :func:`fit_points`: a non-negative, L2-regularised logistic regression on the rules' inputs (each
  rule's signals up to the count its ``max`` pays for; one 0/1 input per band), turned into integer points
  that keep the model's total points on offer, no rule paying more than its category's cap.
- :func:`propose_model`: the fit on the rows whose outcome was known by ``train_until``, a threshold that
  keeps the training MQA rate, and both models side by side on the held-back rows (as-of at or after
  ``train_until``): AUC, precision and recall at the threshold, lift in the top decile, calibration by
  score band, a plain verdict, the scoring model diff and a what-if of the MQAs that would change.

The model card of a proposal (its Markdown and JSON files) is :mod:`abm_sla.domain.model_card`.

Firmographic attributes are the stored ones (the warehouse keeps the latest version of an account).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import yaml

from abm_sla.domain import whatif
from abm_sla.domain.model import (
    CATEGORIES,
    ActivityRule,
    BandRule,
    IntentRule,
    ListRule,
    ScoringModel,
    UrlRule,
    parse_model,
)
from abm_sla.domain.proposals import set_yaml_values, unified_diff
from abm_sla.domain.scoring import id_strings, score_accounts, score_at, utc_timestamp

DEFAULT_HORIZON_DAYS = 90
DEFAULT_GRID_DAYS = 7
OUTCOMES = ("won", "opportunity")
#: Fewer accounts with the outcome than this in the training rows, or in the held-back rows: no proposal.
MIN_TRAIN_OUTCOMES = 30
MIN_HOLDOUT_OUTCOMES = 15
#: The L2 penalty on the mean log-loss (features are counts of a few units and 0/1 matches).
L2_PENALTY = 1e-3
#: A rule without ``max`` counts at most this many signals as inputs (its points stay uncapped).
UNCAPPED_UNITS = 3
SCORE_BANDS = (0, 25, 50, 75, 101)  # calibration bands: [0, 25), [25, 50), [50, 75), [75, 100]
TOP_SHARE = 0.1  # the top decile
#: The proposal "beats" the current model when it hands off more accounts with the outcome on the held-back
#: as-ofs with at most this much more MQA volume.
VOLUME_SLACK = 0.1
ROW_KEYS = ["account_id", "at"]


# -- training rows --------------------------------------------------------------------------------------

def as_of_grid(first: pd.Timestamp, data_end: pd.Timestamp, horizon_days: int = DEFAULT_HORIZON_DAYS,
               step_days: int = DEFAULT_GRID_DAYS) -> pd.DatetimeIndex:
    """As-ofs every ``step_days`` from ``first``, the last one ``horizon_days`` before ``data_end`` (so
    every row's outcome is known by ``data_end``); empty when the data is shorter than that."""
    first, last = utc_timestamp(first), utc_timestamp(data_end) - pd.Timedelta(days=horizon_days)
    if last < first:
        return pd.DatetimeIndex([], tz="UTC")
    return pd.date_range(first, last, freq=pd.Timedelta(days=step_days))


def training_rows(crm: Any, model: ScoringModel, as_ofs: pd.DatetimeIndex,
                  horizon_days: int = DEFAULT_HORIZON_DAYS) -> pd.DataFrame:
    """One row per (account known at the as-of, as-of): the rules' counts, the gates and the outcomes.

    ``crm`` has ``accounts, contacts, activities, intent_signals, opportunities`` frames (attributes,
    e.g. :class:`abm_sla.domain.scorecard.SlaData`). Columns: ``account_id, at``, the score columns of
    :func:`abm_sla.domain.scoring.score_at` with ``count:<rule>`` / ``band:<rule>``, and ``opportunity`` and
    ``won`` (bool) over ``(at, at + horizon]``.
    """
    candidates = _candidates(crm.accounts, as_ofs)
    if candidates.empty:
        return candidates.assign(opportunity=pd.Series(dtype=bool), won=pd.Series(dtype=bool))
    rows = score_at(candidates, crm.accounts, crm.contacts, crm.activities, crm.intent_signals, model,
                    with_reasons=False, with_counts=True)
    return pd.concat([rows, outcomes_after(rows, crm.opportunities, horizon_days)], axis=1)


def _candidates(accounts: pd.DataFrame, as_ofs: pd.DatetimeIndex) -> pd.DataFrame:
    """Every (account, as-of) with the account created by then (unknown creation: always)."""
    ids = pd.DataFrame({"account_id": id_strings(accounts["account_id"]).to_numpy()})
    created = accounts["created_at"] if "created_at" in accounts else pd.Series(pd.NaT, index=accounts.index)
    ids["created_at"] = pd.to_datetime(created, utc=True).to_numpy()
    ids = ids.dropna(subset=["account_id"]).drop_duplicates("account_id", keep="last")
    grid = ids.merge(pd.DataFrame({"at": pd.DatetimeIndex(as_ofs).tz_convert("UTC")}), how="cross")
    known = grid["created_at"].isna() | (grid["created_at"] <= grid["at"])
    return grid.loc[known, ROW_KEYS].reset_index(drop=True)


def outcomes_after(rows: pd.DataFrame, opportunities: pd.DataFrame,
                   horizon_days: int = DEFAULT_HORIZON_DAYS) -> pd.DataFrame:
    """Per row (``account_id, at``): ``opportunity`` (one created in ``(at, at + horizon]``) and ``won``
    (one created in that span and closed won by its end)."""
    horizon = pd.Timedelta(days=horizon_days)
    opps = pd.DataFrame({
        "account_id": id_strings(opportunities["account_id"]).to_numpy(),
        "created_at": pd.to_datetime(opportunities["created_at"], utc=True).to_numpy(),
        "close_date": pd.to_datetime(opportunities["close_date"], utc=True).to_numpy(),
        "is_won": opportunities["is_won"].astype("boolean").fillna(False).to_numpy(dtype=bool),
    }).dropna(subset=["account_id", "created_at"])
    keyed = rows[ROW_KEYS].reset_index(drop=True).rename_axis("row").reset_index()
    joined = keyed.merge(opps, on="account_id")
    end = joined["at"] + horizon
    created = (joined["created_at"] > joined["at"]) & (joined["created_at"] <= end)
    won = created & joined["is_won"] & (joined["close_date"] <= end)
    out = pd.DataFrame({"opportunity": False, "won": False}, index=range(len(rows)))
    out.loc[joined.loc[created, "row"].unique(), "opportunity"] = True
    out.loc[joined.loc[won, "row"].unique(), "won"] = True
    return out.set_axis(rows.index)


# -- the rules as inputs --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Feature:
    """One input of the fit: a rule's capped count (``units``) or one band of a band rule (0/1)."""

    rule: str
    category: str
    path: tuple[str | int, ...]  # the rule's position in the model file
    band: int | None = None  # the band's index for a band input
    units: int = 1  # the most signals that earn points (a 0/1 input: 1)
    capped: bool = False  # True: the rule has a ``max`` (kept at points x units)

    @property
    def label(self) -> str:
        return self.rule if self.band is None else f"{self.rule}[{self.band}]"


def features(model: ScoringModel) -> list[Feature]:
    """The model's rules as fit inputs, in model order."""
    out = []
    for category in CATEGORIES:
        for index, rule in enumerate(model.category(category).rules):
            path = ("categories", category, "rules", index)
            if isinstance(rule, BandRule):
                out += [Feature(rule.name, category, path, band) for band in range(len(rule.bands))]
            elif isinstance(rule, ListRule):
                out.append(Feature(rule.name, category, path))
            else:
                out.append(Feature(rule.name, category, path, units=_units(rule), capped=rule.max is not None))
    return out


def _units(rule: ActivityRule | UrlRule | IntentRule) -> int:
    """How many signals earn points under the rule's ``max`` (no max: :data:`UNCAPPED_UNITS`)."""
    if rule.max is None or rule.points == 0:
        return UNCAPPED_UNITS
    return max(math.ceil(rule.max / rule.points), 1)


def design(rows: pd.DataFrame, inputs: list[Feature]) -> np.ndarray:
    """The rows' inputs as a float matrix (one column per :class:`Feature`)."""
    columns = []
    for feature in inputs:
        if feature.band is not None:
            columns.append(rows[f"band:{feature.rule}"].to_numpy() == feature.band)
        else:
            columns.append(np.minimum(rows[f"count:{feature.rule}"].to_numpy(), feature.units))
    return np.column_stack(columns).astype(float) if columns else np.zeros((len(rows), 0))


def score_from_counts(rows: pd.DataFrame, model: ScoringModel) -> pd.DataFrame:
    """The categories, ``total`` and ``qualified`` of ``model`` from the rows' counts (the same rules,
    other points): what :func:`abm_sla.domain.scoring.score_at` gives, without reading any signal again.
    ``qualified`` reuses the rows' decision-maker and marketing-touch gates (points do not move them)."""
    out = pd.DataFrame(index=rows.index)
    for category in CATEGORIES:
        raw = np.zeros(len(rows), dtype=np.int64)
        for rule in model.category(category).rules:
            raw += _rule_points(rule, rows)
        out[category] = np.minimum(raw, model.category(category).cap)
    out["total"] = out[list(CATEGORIES)].sum(axis=1)
    gates = model.gates
    out["qualified"] = (rows["gate_decision_maker"].to_numpy(dtype=bool)
                        & rows["gate_marketing_touches"].to_numpy(dtype=bool)
                        & (out["total"] >= gates.min_total)
                        & np.logical_and.reduce([out[c] >= gates.min_category.get(c, 0) for c in CATEGORIES]))
    return out


def _rule_points(rule: Any, rows: pd.DataFrame) -> np.ndarray:
    if isinstance(rule, BandRule):
        index = rows[f"band:{rule.name}"].to_numpy()
        table = np.array([band.points for band in rule.bands] + [0], dtype=np.int64)
        return table[np.where(index < 0, len(rule.bands), index)]
    earned = rows[f"count:{rule.name}"].to_numpy(dtype=np.int64) * rule.points
    return earned if isinstance(rule, ListRule) or rule.max is None else np.minimum(earned, rule.max)


# -- the fit --------------------------------------------------------------------------------------------

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


# -- the proposal ---------------------------------------------------------------------------------------

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


# -- validation -----------------------------------------------------------------------------------------

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


#: The figures of a comparison, as the model card and the quarterly report show them.
FIGURES = (("auc", "AUC"), ("precision", "Precision at the threshold"), ("recall", "Recall at the threshold"),
           ("top_decile_lift", "Lift in the top decile"), ("mqa_rows", "MQA rows"), ("mqa_accounts", "MQA accounts"),
           ("outcome_accounts_found", "Accounts with the outcome handed off"))


# -- the quarterly report's question --------------------------------------------------------------------

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
