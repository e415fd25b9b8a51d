"""What-if: compare two scorings of the same accounts as of the same moment, pure and set-based.

``score_diff`` lines up a baseline scoring and a candidate scoring (``scoring.SCORE_COLUMNS``
frames) per account; ``with_would_fire`` adds the MQAs the candidate model would fire;
``summarize`` counts what a rev-ops user asks first; ``history_rows`` turns scores into
``score_history`` rows keyed by the model version that produced them.

A policy change works the same way: ``policy_clocks`` evaluates the stored MQAs' clocks under a
policy as of a moment, ``clock_diff`` lines up a baseline and a candidate policy per clock and
``summarize_clocks`` counts met / missed / pending per clock under each.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import handoff, sla
from abm_sla.domain.model import CATEGORIES
from abm_sla.domain.policy import SlaPolicy

NEWLY_PASSES = "newly passes the hand-off"
DROPS_BELOW = "drops below the hand-off"
SCORE_CHANGED = "score changed"
UNCHANGED = "unchanged"
DIFF_COLUMNS = [
    "account_id", "change", "total_before", "total_after", "total_delta",
    *(f"{name}_{side}" for name in CATEGORIES for side in ("before", "after")),
    "qualified_before", "qualified_after", "would_fire_at", "model_before", "model_after",
]
_KEEP = ["account_id", *CATEGORIES, "total", "qualified"]


def score_diff(before: pd.DataFrame, after: pd.DataFrame, model_before: str, model_after: str) -> pd.DataFrame:
    """One row per account scored by either side: both scores, the delta and the hand-off change."""
    merged = before[_KEEP].merge(after[_KEEP], on="account_id", how="outer", suffixes=("_before", "_after"))
    for column in ("total", *CATEGORIES):
        for side in ("before", "after"):
            merged[f"{column}_{side}"] = merged[f"{column}_{side}"].fillna(0).astype(int)
    for side in ("before", "after"):
        merged[f"qualified_{side}"] = merged[f"qualified_{side}"].astype("boolean").fillna(False).astype(bool)
    merged["total_delta"] = merged["total_after"] - merged["total_before"]
    merged["change"] = _change(merged)
    merged["would_fire_at"] = pd.Series(pd.NaT, index=merged.index, dtype="datetime64[ns, UTC]")
    merged = merged.assign(model_before=model_before, model_after=model_after)
    order = {NEWLY_PASSES: 0, DROPS_BELOW: 1, SCORE_CHANGED: 2, UNCHANGED: 3}
    merged = merged.assign(_order=merged["change"].map(order), _abs=-merged["total_delta"].abs())
    merged = merged.sort_values(["_order", "_abs", "account_id"], kind="stable")
    return merged[DIFF_COLUMNS].reset_index(drop=True)


def _change(merged: pd.DataFrame) -> pd.Series:
    before, after = merged["qualified_before"], merged["qualified_after"]
    change = pd.Series(UNCHANGED, index=merged.index, dtype=object)
    change[merged["total_delta"] != 0] = SCORE_CHANGED
    changed_parts = pd.concat(
        [merged[f"{name}_after"] != merged[f"{name}_before"] for name in CATEGORIES], axis=1
    ).any(axis=1)
    change[changed_parts] = SCORE_CHANGED
    change[after & ~before] = NEWLY_PASSES
    change[before & ~after] = DROPS_BELOW
    return change


def with_would_fire(diff: pd.DataFrame, fired: pd.DataFrame) -> pd.DataFrame:
    """``diff`` with the earliest trigger_at of the MQAs the candidate model would fire, per account."""
    if fired.empty:
        return diff
    first = fired.groupby("account_id")["trigger_at"].min()
    out = diff.copy()
    out["would_fire_at"] = out["account_id"].map(first).astype("datetime64[ns, UTC]")
    return out


def summarize(diff: pd.DataFrame) -> dict[str, int | float]:
    """Counts per change, MQAs that would fire and the mean score delta."""
    counts = diff["change"].value_counts()
    return {
        "accounts": len(diff),
        "newly_pass": int(counts.get(NEWLY_PASSES, 0)),
        "drop_below": int(counts.get(DROPS_BELOW, 0)),
        "score_changed": int(counts.get(SCORE_CHANGED, 0)),
        "unchanged": int(counts.get(UNCHANGED, 0)),
        "mqas_would_fire": int(diff["would_fire_at"].notna().sum()),
        "mean_delta": round(float(diff["total_delta"].mean()), 2) if len(diff) else 0.0,
    }


def history_rows(scores: pd.DataFrame, as_of: pd.Timestamp, model_version: str, run_id: str) -> pd.DataFrame:
    """``score_history`` rows of ``scores``: which model version produced which score, with reasons."""
    gates = [column for column in scores.columns if column.startswith("gate_")]
    return pd.DataFrame(
        {
            "account_id": scores["account_id"],
            "as_of": as_of,
            "model_version": model_version,
            **{name: scores[name].astype(int) for name in (*CATEGORIES, "total")},
            "qualified": scores["qualified"].astype(bool),
            "gates": _gate_records(scores[gates]),
            "reasons": scores["reasons"],
            "run_id": run_id,
        }
    )


def _gate_records(gates: pd.DataFrame) -> list[dict[str, bool]]:
    """Per row, its gates as a dict (``gate_total: True, ...``); the rows with the same gates share one."""
    values = gates.to_numpy(dtype=bool)
    codes = values.astype(np.int64) @ (1 << np.arange(values.shape[1], dtype=np.int64))
    first = np.unique(codes, return_index=True)[1]
    shared = {int(codes[row]): dict(zip(gates.columns, values[row].tolist(), strict=True)) for row in first}
    return [shared[code] for code in codes.tolist()]


# --- a policy change: the clocks of the stored MQAs under two policies ------------------------------

CLOCK_DIFF_COLUMNS = [
    "account_id", "trigger_at", "clock", "period", "owner_id", "tier", "change",
    "status_before", "status_after", "due_at_before", "due_at_after", "met_at_before", "met_at_after",
    "policy_before", "policy_after",
]
_CLOCK_KEYS = ["account_id", "trigger_at", "clock", "period"]


def policy_clocks(
    mqas: pd.DataFrame, activities: pd.DataFrame, status_changes: pd.DataFrame, users: pd.DataFrame,
    opportunities: pd.DataFrame, policy: SlaPolicy, as_of: pd.Timestamp, accounts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The stored MQAs' clocks as ``policy`` would evaluate them as of ``as_of`` (its episode ends too;
    ``accounts`` place the MQAs in the policy's regions)."""
    fired = mqas[mqas["trigger_at"] <= as_of].reset_index(drop=True)
    fired = fired.assign(ended_at=handoff.episode_ends(fired, status_changes, as_of, policy.episode_end_statuses()))
    return sla.evaluate_clocks(fired, activities, status_changes, users, policy, as_of, opportunities, accounts)


def clock_diff(before: pd.DataFrame, after: pd.DataFrame, policy_before: str, policy_after: str) -> pd.DataFrame:
    """One row per clock either policy has: both statuses, due and met times, and the change
    (``new clock``, ``clock dropped``, ``status changed``, ``due moved``, ``unchanged``); changes first."""
    keep = [*_CLOCK_KEYS, "status", "due_at", "met_at", "owner_id", "tier"]
    merged = before[keep].merge(after[keep], on=_CLOCK_KEYS, how="outer", suffixes=("_before", "_after"))
    merged["owner_id"] = merged["owner_id_after"].where(merged["owner_id_after"].notna(), merged["owner_id_before"])
    merged["tier"] = merged["tier_after"].where(merged["tier_after"].notna(), merged["tier_before"])
    change = pd.Series(UNCHANGED, index=merged.index, dtype=object)
    change[merged["due_at_before"].ne(merged["due_at_after"])] = "due moved"
    change[merged["status_before"].ne(merged["status_after"])] = "status changed"
    change[merged["status_before"].isna()] = "new clock"
    change[merged["status_after"].isna()] = "clock dropped"
    merged["change"] = change
    merged = merged.assign(policy_before=policy_before, policy_after=policy_after,
                           _order=(change == UNCHANGED).astype(int))
    merged = merged.sort_values(["_order", "trigger_at", "account_id", "clock", "period"], kind="stable")
    return merged[CLOCK_DIFF_COLUMNS].reset_index(drop=True)


def summarize_clocks(diff: pd.DataFrame) -> pd.DataFrame:
    """Per clock: met / missed / pending under each policy, and how many clocks change."""
    sides = []
    for side in ("before", "after"):
        counts = pd.crosstab(diff["clock"], diff[f"status_{side}"]).reindex(
            columns=["met", "missed", "pending"], fill_value=0)
        sides.append(counts.add_suffix(f"_{side}"))
    out = pd.concat(sides, axis=1).fillna(0).astype(int)
    out["changed"] = diff[diff["change"] != UNCHANGED].groupby("clock").size().reindex(out.index, fill_value=0)
    return out.reset_index()
