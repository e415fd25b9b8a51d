"""Training rows without leakage: per account and per as-of on a grid, the model's inputs as they stood
then (per-rule counts, from :func:`abm_sla.domain.scoring.score_at`) and the outcome that followed;
the rules as inputs (:class:`Feature`) and the model's score recomputed from the counts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from abm_sla.domain.model import CATEGORIES, ActivityRule, BandRule, IntentRule, ListRule, ScoringModel, UrlRule
from abm_sla.domain.scoring import id_strings, score_at, utc_timestamp

DEFAULT_HORIZON_DAYS = 90
DEFAULT_GRID_DAYS = 7
OUTCOMES = ("won", "opportunity")
#: A rule without ``max`` counts at most this many signals as inputs (its points stay uncapped).
UNCAPPED_UNITS = 3
ROW_KEYS = ["account_id", "at"]


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
