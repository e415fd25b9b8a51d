"""Evidence-based proposals for the quarterly renegotiation, emitted as unified diffs of the config files.

- :func:`backtest_thresholds` replays the hand-off over the period's score history for thresholds
  40-70 and measures, per threshold, the MQAs that would have fired, their verdicts and opportunities;
  :func:`propose_threshold` picks the threshold nearest the current one whose rejection is in the band.
  Each threshold's row is computed by the catalog's functions on the re-scored MQAs: the MQA family
  (:data:`BACKTEST_METRICS`) by :func:`metrics.family_table` over the MQAs that threshold would have fired, so
  its rates are the scorecard's by definition (not ``threshold=`` segments of the period's table: the MQAs are
  simulated, not the warehouse's); the threshold itself is a row key, not a measurement.
- :func:`propose_windows` sets each tier's first-touch window to the observed p80 response (the catalog's
  ``first_touch_response_p80_hours``, or ``..._calendar_hours`` for an hour or day window), rounded up, at most
  doubling it in one quarter, and never owing a lower tier a faster answer than a higher one.
- :func:`propose_volumes` sets monthly MQA commitments to the period's run-rate (the catalog's ``mqa_run_rate``).
- :func:`set_yaml_values` edits scalars in place (comments and layout kept) and :func:`unified_diff`
  turns the edit into a patch that ``patch -p1`` applies.

Backtest limits (the report repeats them): simulated episodes start fresh at the period start; a
simulated MQA's verdict and opportunity are the CRM's observed ones after its trigger, so an account
that was never handed off rarely has a verdict. Rates are defined as in the scorecard: acceptance
and conversion over the MQAs, rejection over the MQAs *with a verdict* (the policy's verdict classes).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import yaml

from abm_sla.domain import handoff, metrics, scorecard
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard import SlaData, within

THRESHOLDS = tuple(range(40, 71))
#: A quarter's proposal at most doubles a first-touch window, however slow the observed responses.
MAX_LOOSENING = 2.0
DEFAULT_THRESHOLD = 50  # SPEC section 4, used when the scoring model cannot be read
#: Where the hand-off total threshold may live in ``config/scoring.yaml`` (first found wins).
THRESHOLD_KEYS = ("handoff_threshold", "threshold", "total_min", "min_total", "total")
THRESHOLD_PARENTS = ("handoff", "gates", "hand_off", "mqa")
BACKTEST_COLUMNS = ["threshold", "mqas", "with_verdict", "accepted", "rejected", "acceptance_pct",
                    "rejection_pct", "converted", "conversion_pct"]
#: The backtest's columns and the catalog metric (:mod:`abm_sla.domain.metrics`, the mqas family) each is read from,
#: over the MQAs a threshold would have fired: the same definitions as the scorecard's.
BACKTEST_METRICS = {"mqas": "mqas", "with_verdict": "mqas_with_verdict", "accepted": "mqas_accepted",
                    "rejected": "mqas_rejected", "acceptance_pct": "acceptance_rate", "rejection_pct": "rejection_rate",
                    "converted": "mqas_converted", "conversion_pct": "mqa_to_opportunity_rate"}


# -- threshold backtest -----------------------------------------------------------------------------

def other_gates_pass(gates: pd.Series) -> pd.Series:
    """Per score row: every stored gate except the total gate passed (no gates stored: True).

    Gates are a JSON dict ``{name: bool}`` or a list of ``{"gate"|"name": ..., "passed"|"value": bool}``;
    a gate whose name contains ``total`` is the threshold gate the backtest replaces.
    """
    def passed(value: Any) -> bool:
        if isinstance(value, list):
            value = {str(g.get("gate", g.get("name"))): g.get("passed", g.get("value")) for g in value
                     if isinstance(g, dict)}
        if not isinstance(value, dict):
            return True
        return all(bool(ok) for name, ok in value.items() if "total" not in str(name).lower())

    return gates.map(passed).astype(bool)


def backtest_thresholds(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                        policy: SlaPolicy, thresholds: Iterable[int] = THRESHOLDS) -> pd.DataFrame:
    """Per threshold: MQAs that would have fired over the period's score history and their outcomes.

    Each account fires at its first scored ``as_of`` passing the threshold and every other gate; it
    fires again only after an end status (the policy's episode end statuses) following that MQA. Verdicts
    are the scorecard's (:func:`scorecard.mqa_outcomes`: the policy's verdict classes).
    """
    end_statuses = policy.episode_end_statuses()
    fired = simulated_mqas(data, start, end, thresholds, end_statuses)
    empty = metrics.mqa_fact_columns(scorecard.mqa_outcomes(SlaData.of(), as_of, policy))
    groups = dict(iter(fired.groupby("threshold")))
    rows = []
    found: dict[tuple, dict[str, float]] = {}  # neighbouring thresholds often fire the very same MQAs
    for threshold in sorted(set(thresholds)):
        group = groups.get(threshold)
        mqas = None if group is None else group.drop(columns="threshold").reset_index(drop=True)
        key = () if mqas is None else (tuple(mqas.columns), tuple(map(str, mqas.dtypes)),
                                       tuple(mqas.itertuples(index=False, name=None)))
        if key not in found:
            if mqas is None:
                facts = empty
            else:
                mqas = mqas.assign(ended_at=handoff.episode_ends(mqas, data.status_changes, as_of, end_statuses))
                simulated = SlaData.of(mqas=mqas, status_changes=data.status_changes,
                                       opportunities=data.opportunities)
                facts = metrics.mqa_fact_columns(scorecard.mqa_outcomes(simulated, as_of, policy))
            table = metrics.family_table("mqas", facts, ())
            found[key] = {column: metrics.value(table, metric) for column, metric in BACKTEST_METRICS.items()}
        rows.append({"threshold": threshold, **found[key]})
    out = pd.DataFrame(rows, columns=["threshold", *BACKTEST_METRICS])
    counts = ["mqas", "with_verdict", "accepted", "rejected", "converted"]
    out[counts] = out[counts].fillna(0).astype(int)
    return out[BACKTEST_COLUMNS]


def simulated_mqas(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, thresholds: Iterable[int],
                   end_statuses: Sequence[str]) -> pd.DataFrame:
    """The simulated MQAs per threshold: threshold, account_id, trigger_at (the score's ``as_of``), total (tier 3,
    no owner)."""
    history = data.score_history[within(data.score_history["as_of"], start, end)]
    rows = pd.DataFrame({"account_id": history["account_id"].astype(str), "as_of": history["as_of"],
                         "total": pd.to_numeric(history["total"], errors="coerce"),
                         "gates_ok": other_gates_pass(history["gates"])})
    rows = rows.drop_duplicates(["account_id", "as_of"]).sort_values("as_of")
    rows["episode"] = _ends_before(rows, data.status_changes, end_statuses)
    grid = rows.merge(pd.DataFrame({"threshold": sorted(set(thresholds))}), how="cross")
    grid = grid[grid["gates_ok"] & (grid["total"] >= grid["threshold"])]
    fired = grid.sort_values("as_of").drop_duplicates(["threshold", "account_id", "episode"])
    return pd.DataFrame({
        "threshold": fired["threshold"], "account_id": fired["account_id"], "trigger_at": fired["as_of"],
        "total": fired["total"], "tier": 3, "owner_id": None,  # a simulated MQA is routed to nobody
    }).reset_index(drop=True)


def _ends_before(rows: pd.DataFrame, status_changes: pd.DataFrame, end_statuses: Sequence[str]) -> pd.Series:
    """How many end-status changes the account had at or before each row's ``as_of`` (its episode number)."""
    ends = status_changes[status_changes["status"].astype(str).str.strip().str.lower().isin(
        [s.lower() for s in end_statuses])]
    ends = pd.DataFrame({"account_id": ends["account_id"].astype(str), "changed_at": ends["changed_at"]})
    ends = ends.dropna().sort_values("changed_at")
    ends["ends"] = ends.groupby("account_id").cumcount() + 1
    joined = pd.merge_asof(rows[["account_id", "as_of"]].reset_index(), ends, left_on="as_of",
                           right_on="changed_at", by="account_id", direction="backward")
    return joined.set_index("index")["ends"].reindex(rows.index).fillna(0).astype(int)


@dataclass(frozen=True)
class ThresholdProposal:
    current: int
    proposed: int
    reason: str


def propose_threshold(backtest: pd.DataFrame, policy: SlaPolicy, current: int,
                      min_verdicts: int = 5) -> ThresholdProposal:
    """The threshold nearest ``current`` whose rejection rate is in the policy's band (ties: more MQAs).

    Thresholds with fewer than ``min_verdicts`` verdicts are not evidence. Without a band, or when no
    threshold reaches it, the current one stays and the reason says why.
    """
    band = policy.targets.rejection_rate if policy.targets else None
    if band is None:
        return ThresholdProposal(current, current, "no rejection band in the policy (targets.rejection_rate)")
    low = band.min_pct if band.min_pct is not None else 0.0
    high = band.max_pct if band.max_pct is not None else 100.0
    evidence = backtest[backtest["with_verdict"] >= min_verdicts]
    at_current = evidence[evidence["threshold"] == current]
    if not at_current.empty and low <= at_current["rejection_pct"].iloc[0] <= high:
        rate = at_current["rejection_pct"].iloc[0]
        return ThresholdProposal(current, current,
                                 f"rejection at {current} is {rate:g}%, in the {low:g}-{high:g}% band")
    fits = evidence[evidence["rejection_pct"].between(low, high)]
    if fits.empty:
        return ThresholdProposal(current, current, f"no threshold with >= {min_verdicts} verdicts brings rejection "
                                                   f"into the {low:g}-{high:g}% band; keep {current}")
    fits = fits.assign(distance=(fits["threshold"] - current).abs()).sort_values(["distance", "mqas"],
                                                                                ascending=[True, False])
    best = fits.iloc[0]
    now = "no evidence" if at_current.empty else f"{at_current['rejection_pct'].iloc[0]:g}%"
    return ThresholdProposal(current, int(best["threshold"]),
                             f"rejection at {current}: {now}; at {int(best['threshold'])}: {best['rejection_pct']:g}% "
                             f"of {int(best['with_verdict'])} verdicts ({int(best['mqas'])} MQAs), in the "
                             f"{low:g}-{high:g}% band")


# -- windows and volumes ----------------------------------------------------------------------------

#: The catalog metric each window unit's proposal reads its observed p80 from, and the factor to the unit
#: (a day window: the calendar hours' p80 / 24).
WINDOW_METRICS = {"business_hours": ("first_touch_response_p80_hours", 1.0),
                  "hours": ("first_touch_response_p80_calendar_hours", 1.0),
                  "days": ("first_touch_response_p80_calendar_hours", 1 / 24)}
WINDOW_QUANTILE = "p80"


def propose_windows(table: pd.DataFrame, policy: SlaPolicy, min_responses: int = 5) -> pd.DataFrame:
    """Per tier: the observed p80 of first-touch response, rounded up, in the window's own unit, read from the
    catalog table ``table`` (:func:`metrics.compute` or :func:`proposal_metrics`, ``tier=`` segments).

    Business-hour windows use ``first_touch_response_p80_hours``; hour and day windows the calendar hours from
    routing to the touch (``first_touch_response_p80_calendar_hours``); a same-business-day window is not
    re-proposed. Unanswered MQAs are left out (their response is unknown), so the observed p80 is a floor;
    ``unanswered`` is the catalog's ``first_touches_unanswered``, as the response tables show it.
    """
    rows = []
    for tier in scorecard.TIERS:
        window = scorecard.tier_window(policy, tier)
        segment = f"tier={tier}"
        metric, factor = WINDOW_METRICS.get(window.kind, WINDOW_METRICS["business_hours"])
        count = int(metrics.read(table, metric, segment, "denominator", default=0.0))
        value = metrics.read(table, metric, segment) * factor
        proposed, reason = _window_choice(window.kind, window.amount, value, count, min_responses)
        rows.append({"tier": tier, "unit": window.kind, "current": window.amount, "responses": count,
                     "unanswered": int(metrics.read(table, "first_touches_unanswered", segment, default=0.0)),
                     WINDOW_QUANTILE: round(value, 2) if not math.isnan(value) else None,
                     "proposed": proposed, "reason": reason})
    return _keep_tier_order(pd.DataFrame(rows))


def _keep_tier_order(windows: pd.DataFrame) -> pd.DataFrame:
    """Raise a tier's window to the one above it (same unit) so no lower tier is owed a faster answer."""
    out = windows.copy()
    above: dict[str, tuple[int, float]] = {}
    for index, row in out.iterrows():  # three tiers
        effective = row["proposed"] if pd.notna(row["proposed"]) else row["current"]
        higher = above.get(row["unit"])
        if higher is not None and effective < higher[1]:
            tier, window = higher
            effective = window
            out.at[index, "proposed"] = None if window == row["current"] else window
            out.at[index, "reason"] = (f"{row['reason']}; raised to Tier {tier}'s {window:g} so no lower tier is "
                                       "owed a faster answer than a higher one")
        above[row["unit"]] = (int(row["tier"]), float(effective))
    return out


def _window_choice(kind: str, current: float, value: float, count: int, minimum: int) -> tuple[float | None, str]:
    label = WINDOW_QUANTILE
    if kind == "same_business_day":
        return None, "same-business-day window: not re-proposed"
    if count < minimum:
        return None, f"{count} answered MQAs (< {minimum}): not enough evidence"
    proposed = float(max(math.ceil(value), 1))
    observed = f"{label} of {count} responses is {value:.2f} {kind.replace('_', ' ')}"
    if proposed > current * MAX_LOOSENING:
        return current * MAX_LOOSENING, (f"{observed}; capped at {MAX_LOOSENING:g}x the current {current:g}: the "
                                         "rest of the gap is for sales to close, not a window to give away")
    if proposed == current:
        return None, f"{label} {value:.2f} rounds up to the current {current:g}"
    return proposed, observed


def propose_volumes(table: pd.DataFrame, policy: SlaPolicy) -> pd.DataFrame:
    """Per tier: the period's MQAs and their monthly run-rate, read from the catalog table ``table`` (``mqas`` and
    ``mqa_run_rate``: MQAs per calendar month of the period elapsed by as_of), and the commitment it proposes:
    the run-rate rounded half up (>= 1), where it differs from the current one."""
    segments = [f"tier={tier}" for tier in scorecard.TIERS]
    start = pd.Timestamp(table["period_start"].iloc[0])
    end = pd.Timestamp(table["period_end"].iloc[0])
    commitments = (policy.targets.monthly_mqa_commitments if policy.targets else None) or {}
    out = pd.DataFrame({
        "tier": scorecard.TIERS, "from": start.strftime("%Y-%m"), "to": (end - pd.Timedelta(1)).strftime("%Y-%m"),
        "months": [metrics.read(table, "mqa_run_rate", s, "denominator") for s in segments],
        "mqas": [int(metrics.read(table, "mqas", s, default=0.0)) for s in segments],
        "run_rate": [metrics.read(table, "mqa_run_rate", s) for s in segments],
        "current": [commitments.get(t) for t in scorecard.TIERS]})
    proposed = np.maximum(np.floor(out["run_rate"] + 0.5), 1)
    same = proposed.eq(out["current"]) | out["current"].isna() | out["run_rate"].isna()
    out["proposed"] = proposed.where(~same).astype("Int64")
    return out


def proposal_metrics(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                     policy: SlaPolicy) -> pd.DataFrame:
    """The catalog rows the window and volume proposals read (the responses and mqas families per tier), as
    :func:`metrics.compute` has them, for a caller without the report's metrics table."""
    responses = metrics.response_facts(scorecard.response_times(data, start, end, policy))
    mqas = metrics.mqa_facts(data, start, end, as_of, policy)
    months = metrics.elapsed_months(start, end, as_of)
    rows = pd.concat([metrics.family_table("responses", responses, ("tier",), months),
                      metrics.family_table("mqas", mqas, ("tier",), months)], ignore_index=True)
    return rows.assign(period_start=start, period_end=end)


# -- YAML edits and diffs ---------------------------------------------------------------------------

def _node_at(root: yaml.Node, path: Sequence[str | int]) -> yaml.Node | None:
    """The node at ``path``: mapping keys, and ``int`` positions in lists."""
    node = root
    for key in path:
        if isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            node = node.value[key] if 0 <= key < len(node.value) else None
            continue
        if not isinstance(node, yaml.MappingNode):
            return None
        node = next((value for k, value in node.value if str(k.value) == str(key)), None)
        if node is None:
            return None
    return node


def set_yaml_values(text: str, changes: dict[tuple[str | int, ...], Any]) -> str:
    """``text`` with the scalar at each key path replaced, comments and layout untouched (an ``int`` in a
    path is a position in a list).

    Raises ``KeyError`` for a path that is not a scalar in the document.
    """
    root = yaml.compose(text)
    spans = []
    for path, value in changes.items():
        node = _node_at(root, path) if root is not None else None
        if not isinstance(node, yaml.ScalarNode):
            raise KeyError(".".join(map(str, path)))
        spans.append((node.start_mark.index, node.end_mark.index, _yaml_scalar(value)))
    for begin, finish, replacement in sorted(spans, reverse=True):
        text = text[:begin] + replacement + text[finish:]
    return text


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def find_threshold_path(text: str) -> tuple[str, ...] | None:
    """The key path of the hand-off total threshold in a scoring model YAML, if one is recognizable."""
    root = yaml.compose(text)
    if root is None:
        return None
    candidates = [(key,) for key in THRESHOLD_KEYS[:2]]
    candidates += [(parent, key) for parent in THRESHOLD_PARENTS for key in THRESHOLD_KEYS]
    for path in candidates:
        node = _node_at(root, path)
        if isinstance(node, yaml.ScalarNode) and _number(node.value) is not None:
            return path
    return None


def read_threshold(text: str, path: Sequence[str] | None = None) -> int | None:
    """The current hand-off threshold from a scoring model YAML (``path`` or a recognized key)."""
    path = tuple(path) if path else find_threshold_path(text)
    node = _node_at(yaml.compose(text), path) if path else None
    value = _number(node.value) if isinstance(node, yaml.ScalarNode) else None
    return int(value) if value is not None else None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def unified_diff(old: str, new: str, path: str) -> str:
    """A ``patch -p1`` compatible diff of ``path`` (empty when nothing changed)."""
    if old == new:
        return ""
    lines = difflib.unified_diff(_lines(old), _lines(new), fromfile=f"a/{path}", tofile=f"b/{path}")
    return "".join(lines)


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


# -- all proposals ----------------------------------------------------------------------------------

@dataclass
class Proposals:
    """What the quarterly report proposes, with its evidence and the diffs that apply it."""

    backtest: pd.DataFrame
    threshold: ThresholdProposal
    windows: pd.DataFrame
    volumes: pd.DataFrame
    diffs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def build_proposals(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                    policy: SlaPolicy, sla_text: str, scoring_text: str | None = None,
                    sla_path: str = "config/sla.yaml", scoring_path: str = "config/scoring.yaml",
                    threshold_path: Sequence[str] | None = None, table: pd.DataFrame | None = None) -> Proposals:
    """Backtest, windows and volumes for the period, and the diffs of the two config files; the windows and
    volumes read the catalog table ``table`` (the report's own; default :func:`proposal_metrics`)."""
    notes: list[str] = []
    current = read_threshold(scoring_text, threshold_path) if scoring_text else None
    if current is None:
        notes.append(f"hand-off threshold not found in {scoring_path}; assumed {DEFAULT_THRESHOLD} (SPEC section 4)")
        current = DEFAULT_THRESHOLD
    backtest = backtest_thresholds(data, start, end, as_of, policy)
    threshold = propose_threshold(backtest, policy, current)
    notes.extend(_binding_category_minimums(scoring_text, current))
    table = table if table is not None else proposal_metrics(data, start, end, as_of, policy)
    windows = propose_windows(table, policy)
    volumes = propose_volumes(table, policy)
    diffs = {}
    sla_changes = {("clocks", "first_touch", "windows", str(row.tier), row.unit): row.proposed
                   for row in windows.itertuples() if pd.notna(row.proposed)}
    sla_changes |= {("targets", "monthly_mqa_commitments", str(row.tier)): int(row.proposed)
                    for row in volumes.itertuples() if pd.notna(row.proposed)}
    diffs[sla_path] = _diff_or_note(sla_text, sla_changes, sla_path, notes)
    if threshold.proposed != threshold.current:
        path = tuple(threshold_path) if threshold_path else None
        path = path or (find_threshold_path(scoring_text) if scoring_text else None)
        if path is None:
            notes.append(f"threshold {threshold.proposed} proposed, but {scoring_path} has no recognizable "
                         "threshold key: no diff")
        else:
            diffs[scoring_path] = _diff_or_note(scoring_text or "", {path: threshold.proposed}, scoring_path, notes)
    return Proposals(backtest, threshold, windows, volumes, {k: v for k, v in diffs.items() if v}, notes)


def _binding_category_minimums(scoring_text: str | None, current: int) -> list[str]:
    """A note when the category minimums alone add up to the threshold or more: then below that sum the
    total gate binds nothing, and the backtest is flat there by construction."""
    try:
        minimums = (yaml.safe_load(scoring_text or "") or {}).get("gates", {}).get("min_category") or {}
        floor = int(sum(float(points) for points in minimums.values()))
    except (yaml.YAMLError, AttributeError, TypeError, ValueError):
        return []
    if floor < min(THRESHOLDS):
        return []
    parts = " + ".join(f"{name} {points:g}" for name, points in minimums.items())
    return [f"The category minimums ({parts} = {floor}) already require {floor} points: a total threshold at or "
            f"below {floor} fires the same MQAs (current {current}); to loosen the hand-off, lower a category "
            "minimum in the scoring model."]


def _diff_or_note(text: str, changes: dict[tuple[str, ...], Any], path: str, notes: list[str]) -> str:
    try:
        return unified_diff(text, set_yaml_values(text, changes), path)
    except KeyError as missing:
        notes.append(f"{path}: no scalar at {missing}; no diff")
        return ""
