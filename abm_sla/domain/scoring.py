"""Point-in-time account scoring (SPEC sections 3 and 4), pure and set-based.

``score_at`` scores many (account, at) points at once, each with its own window
``(at - window, at]``. Windowed counts use one sorted key per signal stream:
``key = account code * R + rank(time)`` (ranks over every time involved, so the
key is exact to the nanosecond), and a count in ``(lo, hi]`` is
``searchsorted(key(hi)) - searchsorted(key(lo))``. The only Python loop runs
over the model's rules. No clock is read: ``at`` / ``as_of`` come from the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd

from abm_sla.domain.frames import to_utc
from abm_sla.domain.model import (
    CATEGORIES,
    ActivityRule,
    BandRule,
    IntentRule,
    ListRule,
    ScoringModel,
    UrlRule,
)
from abm_sla.errors import ConfigError

GATE_COLUMNS = ["gate_total", "gate_categories", "gate_decision_maker", "gate_marketing_touches"]
SCORE_COLUMNS = ["account_id", "as_of", *CATEGORIES, "total", *GATE_COLUMNS, "qualified", "reasons"]
CAP_RULE = "category_cap"
_URL_PREFIX = r"^\s*(?:[a-z][a-z0-9+.\-]*:)?//[^/?#]*"


def score_accounts(
    accounts: pd.DataFrame,
    contacts: pd.DataFrame,
    activities: pd.DataFrame,
    intent_signals: pd.DataFrame,
    model: ScoringModel,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """One row per account: its score, gates and reasons as of ``as_of`` (SCORE_COLUMNS)."""
    ids = pd.Series(id_strings(accounts["account_id"]).dropna().unique(), dtype=object)
    candidates = pd.DataFrame({"account_id": ids, "at": utc_timestamp(as_of)})
    scores = score_at(candidates, accounts, contacts, activities, intent_signals, model)
    return scores.rename(columns={"at": "as_of"})[SCORE_COLUMNS]


def score_at(
    candidates: pd.DataFrame,
    accounts: pd.DataFrame,
    contacts: pd.DataFrame,
    activities: pd.DataFrame,
    intent_signals: pd.DataFrame,
    model: ScoringModel,
    with_reasons: bool = True,
    with_counts: bool = False,
) -> pd.DataFrame:
    """Score each ``candidates`` row (``account_id``, ``at``) with the window ending at its ``at``.

    Returns the candidates in their order with ``account_id, at``, the three categories, ``total``,
    the gate columns, ``qualified`` and (``with_reasons``) ``reasons``. ``with_counts`` adds, per rule,
    ``count:<rule>`` (the signals or 0/1 match it counted) and, per band rule, ``band:<rule>`` (the
    index of the matched band, -1 for none): the inputs :mod:`abm_sla.domain.learning` learns points from.
    """
    points = _Points(candidates, accounts, model)
    acts = points.keyed(_activities(activities, points))
    for category, rule in model.rules():
        names = band = None
        if isinstance(rule, BandRule | ListRule):
            count, earned, names, band = _account_rule(rule, points.account_rows)
        elif isinstance(rule, IntentRule):
            count = _intent_topics(rule, intent_signals, points)
            earned = _capped(count, rule.points, rule.max)
        else:
            count = points.window_counts(acts[_activity_mask(rule, acts)])
            earned = _capped(count, rule.points, rule.max)
        points.rules.append(_Rule(category, rule.name, count, earned, names, band))
    touches = acts[acts["type"].isin(model.gates.marketing_touch_types)]
    out = points.result(model, touches, _decision_makers(contacts, model), with_reasons)
    if with_counts:
        out = pd.concat([out, points.counts()], axis=1)
    return out


@dataclass
class _Rule:
    category: str
    name: str
    count: np.ndarray
    points: np.ndarray
    band_names: np.ndarray | None = None
    band_index: np.ndarray | None = None


class _Points:
    """The candidates, their account codes and the per-rule counts and points collected so far."""

    def __init__(self, candidates: pd.DataFrame, accounts: pd.DataFrame, model: ScoringModel) -> None:
        self.frame = pd.DataFrame({"account_id": id_strings(candidates["account_id"]).to_numpy()})
        self.frame["at"] = _utc(candidates["at"])
        self.index = pd.Index(self.frame["account_id"].dropna().unique())
        self.code = self.index.get_indexer(self.frame["account_id"])
        self.hi = self.frame["at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        self.lo = self.hi - model.window.value
        rows = accounts.assign(account_id=id_strings(accounts["account_id"]))
        rows = rows.drop_duplicates("account_id", keep="last")
        self.account_rows = rows.set_index("account_id").reindex(self.frame["account_id"])
        self.rules: list[_Rule] = []

    def keyed(self, acts: pd.DataFrame) -> pd.DataFrame:
        """Activities sorted by one int64 key (account code, time rank), computed once for every rule.

        Any subset of the sorted keys is still sorted, so each rule's count is two searchsorted
        calls, with no sort per rule.
        """
        # time rank: an activity at t gets 1 + its place among the distinct activity times, a bound x the number
        # of those at or before x; so t <= x exactly when rank(t) <= rank(x) (no sort of the bounds needed)
        times = np.unique(acts["t"].to_numpy())
        width = np.int64(len(times) + 1)
        base = self.code.astype(np.int64) * width
        self._q_lo = base + np.searchsorted(times, self.lo, side="right")
        self._q_hi = base + np.searchsorted(times, self.hi, side="right")
        keys = acts["code"].to_numpy(dtype=np.int64) * width + np.searchsorted(times, acts["t"].to_numpy()) + 1
        return acts.assign(key=keys).sort_values("key", kind="stable").reset_index(drop=True)

    def window_counts(self, signals: pd.DataFrame) -> np.ndarray:
        """Per candidate, how many ``signals`` (keyed activities) of its account fall in its window."""
        keys = signals["key"].to_numpy()
        upper = np.searchsorted(keys, self._q_hi, side="right")
        lower = np.searchsorted(keys, self._q_lo, side="right")
        return np.where(self.code >= 0, upper - lower, 0).astype(np.int64)

    def counts(self) -> pd.DataFrame:
        """``count:<rule>`` per rule and ``band:<rule>`` per band rule, one row per candidate."""
        columns = {f"count:{rule.name}": rule.count for rule in self.rules}
        columns |= {f"band:{rule.name}": rule.band_index for rule in self.rules if rule.band_index is not None}
        return pd.DataFrame(columns, index=self.frame.index)

    def result(
        self, model: ScoringModel, touches: pd.DataFrame, decision_makers: pd.Index | None, with_reasons: bool
    ) -> pd.DataFrame:
        out = self.frame.copy()
        raw = {c: sum((r.points for r in self.rules if r.category == c), np.zeros(len(out), dtype=np.int64))
               for c in CATEGORIES}
        for category in CATEGORIES:
            out[category] = np.minimum(raw[category], model.category(category).cap).astype(np.int64)
        out["total"] = out[list(CATEGORIES)].sum(axis=1).astype(np.int64)
        gates = model.gates
        out["gate_total"] = out["total"] >= gates.min_total
        out["gate_categories"] = np.logical_and.reduce(
            [out[c].to_numpy() >= gates.min_category.get(c, 0) for c in CATEGORIES]
        )
        if decision_makers is None:
            out["gate_decision_maker"] = True
        else:
            engaged = touches[touches["contact_id"].isin(decision_makers)]
            out["gate_decision_maker"] = self.window_counts(engaged) > 0
        out["gate_marketing_touches"] = self.window_counts(touches) >= gates.min_marketing_touches
        out["qualified"] = out[GATE_COLUMNS].all(axis=1)
        if with_reasons:
            out["reasons"] = self._reasons(raw, out)
        return out

    def _reasons(self, raw: dict[str, np.ndarray], out: pd.DataFrame) -> list[list[dict]]:
        """Per candidate, the matched rules (count > 0) and any category cap, in model order. Built once per
        distinct profile (every rule's count, band and points, each category's raw and capped points, all the
        reasons depend on): the candidates of one profile share its list."""
        capped = {category: out[category].to_numpy() for category in CATEGORIES}
        columns = [rule.count for rule in self.rules] + [rule.points for rule in self.rules]
        columns += [rule.band_index for rule in self.rules if rule.band_index is not None]
        codes, first = distinct_rows([*columns, *raw.values(), *capped.values()], len(out))
        distinct = self._reasons_of(first, raw, capped)
        return [distinct[code] for code in codes.tolist()]

    def _reasons_of(self, rows: np.ndarray, raw: dict[str, np.ndarray],
                    capped: dict[str, np.ndarray]) -> list[list[dict]]:
        """The reasons of the candidates at positions ``rows``, in that order."""
        parts = []
        for order, rule in enumerate(self.rules):
            count, points = rule.count[rows], rule.points[rows]
            hits = np.flatnonzero(count > 0)
            names = rule.band_names[rows][hits] if rule.band_names is not None else rule.name
            parts.append(pd.DataFrame({"row": hits, "order": order, "category": rule.category, "rule": names,
                                       "count": count[hits], "points": points[hits]}))
        for order, category in enumerate(CATEGORIES, start=len(self.rules)):
            before, after = raw[category][rows], capped[category][rows]
            hits = np.flatnonzero(before > after)
            parts.append(pd.DataFrame({"row": hits, "order": order, "category": category, "rule": CAP_RULE,
                                       "count": before[hits], "points": after[hits] - before[hits]}))
        long = pd.concat(parts, ignore_index=True).sort_values(["row", "order"], kind="stable")
        records = [{"category": category, "rule": rule, "count": count, "points": points}
                   for category, rule, count, points in zip(
                       long["category"].tolist(), long["rule"].tolist(), long["count"].astype(int).tolist(),
                       long["points"].astype(int).tolist(), strict=True)]  # 1.6x faster than DataFrame.to_dict
        bounds = np.searchsorted(long["row"].to_numpy(), np.arange(len(rows) + 1))
        return [records[a:b] for a, b in pairwise(bounds)]


def distinct_rows(columns: list[np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``size`` integer ``columns`` grouped when equal: per row its group's code, and per group (in
    order of first appearance) the position of its first row. Grouped by a 64-bit hash of each row, then checked
    value by value: a hash collision falls back to one group per row."""
    if not columns or size == 0:
        return np.zeros(size, dtype=np.int64), np.arange(min(size, 1))
    table = pd.DataFrame({number: np.asarray(column, dtype=np.int64) for number, column in enumerate(columns)})
    codes, _ = pd.factorize(pd.util.hash_pandas_object(table, index=False).to_numpy())
    first = np.unique(codes, return_index=True)[1]
    values = table.to_numpy()
    if not (values == values[first[codes]]).all():
        return np.arange(size), np.arange(size)
    return codes.astype(np.int64), first


def window_counts(
    sig_code: np.ndarray, sig_t: np.ndarray, q_code: np.ndarray, q_lo: np.ndarray, q_hi: np.ndarray
) -> np.ndarray:
    """Per query i, the signals with code ``q_code[i]`` and ``q_lo[i] < t <= q_hi[i]`` (times int64 ns)."""
    if len(sig_code) == 0 or len(q_code) == 0:
        return np.zeros(len(q_code), dtype=np.int64)
    times = np.unique(np.concatenate([sig_t, q_lo, q_hi]))
    width = np.int64(len(times))
    keys = np.sort(sig_code.astype(np.int64) * width + np.searchsorted(times, sig_t))
    q_base = q_code.astype(np.int64) * width
    upper = np.searchsorted(keys, q_base + np.searchsorted(times, q_hi), side="right")
    lower = np.searchsorted(keys, q_base + np.searchsorted(times, q_lo), side="right")
    return np.where(q_code >= 0, upper - lower, 0).astype(np.int64)


def _capped(count: np.ndarray, points: int, maximum: int | None) -> np.ndarray:
    earned = count.astype(np.int64) * points
    return earned if maximum is None else np.minimum(earned, maximum)


def _account_rule(
    rule: BandRule | ListRule, rows: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(count 0/1, points, matched band names or None, matched band index (-1: none) or None) of a rule
    on an account column, per candidate."""
    if rule.column not in rows.columns:
        raise ConfigError(f"scoring model rule {rule.name}: the accounts have no column {rule.column!r}")
    values = rows[rule.column]
    if isinstance(rule, ListRule):
        hit = normalized(values).isin(rule.values).to_numpy(dtype=bool)
        return hit.astype(np.int64), np.where(hit, rule.points, 0).astype(np.int64), None, None
    number = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    conditions = [
        (number >= (-np.inf if b.min is None else b.min)) & (number <= (np.inf if b.max is None else b.max))
        for b in rule.bands
    ]
    earned = np.select(conditions, [b.points for b in rule.bands], default=0).astype(np.int64)
    names = np.select(conditions, [b.name or rule.name for b in rule.bands], default=rule.name)
    index = np.select(conditions, list(range(len(rule.bands))), default=-1).astype(np.int64)
    return np.logical_or.reduce(conditions).astype(np.int64), earned, names, index


def _activity_mask(rule: ActivityRule | UrlRule, acts: pd.DataFrame) -> pd.Series:
    if isinstance(rule, ActivityRule):
        return acts["type"].isin(rule.types)
    return acts["type"].eq(rule.activity_type) & acts["path"].str.contains(rule.path_contains, regex=False)


def _intent_topics(rule: IntentRule, intent_signals: pd.DataFrame, points: _Points) -> np.ndarray:
    """Per candidate, the distinct topics scoring >= ``min_score`` in its window."""
    t, present = _ns(intent_signals["observed_at"])
    frame = pd.DataFrame({
        "code": points.index.get_indexer(id_strings(intent_signals["account_id"])),
        "topic": normalized(intent_signals["topic"]).to_numpy(),
        "t": t,
        "score": pd.to_numeric(intent_signals["score"], errors="coerce").to_numpy(),
    })
    frame = frame[present & (frame["code"] >= 0) & (frame["score"] >= rule.min_score)
                  & frame["topic"].fillna("").ne("")]
    n = len(points.code)
    if frame.empty:
        return np.zeros(n, dtype=np.int64)
    frame = frame.assign(pair=frame.groupby(["code", "topic"], sort=False).ngroup())
    pairs = frame[["code", "pair"]].drop_duplicates()
    queries = pd.DataFrame({"q": np.arange(n), "code": points.code}).merge(pairs, on="code")
    q = queries["q"].to_numpy()
    counts = window_counts(frame["pair"].to_numpy(), frame["t"].to_numpy(), queries["pair"].to_numpy(),
                           points.lo[q], points.hi[q])
    return np.bincount(q, weights=counts > 0, minlength=n).astype(np.int64)


def _activities(activities: pd.DataFrame, points: _Points) -> pd.DataFrame:
    """Activities of the candidates' accounts inside their windows: code, t (int64 ns), type, contact, URL path.

    Rows outside every window are dropped before any text is normalized, so the cost follows the
    windows scored, not the size of the activity table.
    """
    t, present = _ns(activities["occurred_at"])
    code = points.index.get_indexer(id_strings(activities["account_id"]))
    keep = present & (code >= 0)
    if len(points.lo):
        keep &= (t > points.lo.min()) & (t <= points.hi.max())
    kept = activities[keep]
    kinds = normalized(kept["type"])
    frame = pd.DataFrame({
        "code": code[keep],
        "t": t[keep],
        "type": kinds.to_numpy(),
        "contact_id": id_strings(kept["contact_id"]).to_numpy() if "contact_id" in kept else None,
        "path": "",
    })
    if "url" in kept:
        with_url = (kept["url"].notna() & kept["url"].astype("string").ne("")).to_numpy(dtype=bool)
        frame.loc[with_url, "path"] = url_path(kept["url"][with_url]).to_numpy()
    return frame


def _decision_makers(contacts: pd.DataFrame, model: ScoringModel) -> pd.Index | None:
    """Ids of contacts whose title names a decision maker (None: the gate is off)."""
    pattern = model.decision_maker_pattern
    if pattern is None:
        return None
    titles = contacts["title"].astype("string").fillna("")
    matched = titles.str.contains(pattern).to_numpy(dtype=bool)
    return pd.Index(id_strings(contacts["contact_id"])[matched].dropna())


def url_path(urls: pd.Series) -> pd.Series:
    """The lower-cased path of each URL: scheme and host, query and fragment dropped (computed once per
    distinct URL)."""
    codes, uniques = pd.factorize(urls.astype("string").fillna(""))
    text = pd.Series(uniques, dtype="string").str.lower()
    paths = text.str.replace(_URL_PREFIX, "", regex=True).str.replace(r"[?#].*$", "", regex=True)
    return pd.Series(paths.to_numpy()[codes], index=urls.index, dtype="string")


def normalized(values: pd.Series) -> pd.Series:
    """Text without surrounding spaces, lower-cased (missing stays missing); done once per distinct value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    cleaned = pd.Series(uniques, dtype="object").astype("string").str.strip().str.lower()
    taken = cleaned.take(np.where(codes < 0, 0, codes)) if len(cleaned) else pd.Series(pd.NA, index=range(len(codes)))
    out = pd.Series(taken.to_numpy(), index=values.index, dtype="string")
    return out.mask(codes < 0)


def id_strings(values: pd.Series) -> pd.Series:
    """Ids as Python strings (missing → None)."""
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values.where(values.notna(), None)
    text = values.astype("string")
    return text.astype(object).where(text.notna(), None)


def _utc(values: pd.Series) -> pd.Series:
    return to_utc(pd.Series(values).reset_index(drop=True))


def _ns(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """UTC timestamps as int64 nanoseconds and a mask of the present ones."""
    parsed = _utc(values)
    return parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64), parsed.notna().to_numpy()


def utc_timestamp(value: pd.Timestamp | str) -> pd.Timestamp:
    """A timestamp in UTC; a naive one is taken as UTC."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
