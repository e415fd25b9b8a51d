"""The tier-move ledger: a recommendation is made once per account until sales decides it.

Pure: every function takes the ledger (``tier_move_recommendations`` rows), the CRM's accounts and an
``as_of``. The rules that *find* a move live in :func:`abm_sla.domain.scorecard.tier_moves`; this module keeps
what was recommended and reads sales' decision from the CRM's tier field:

- **accepted** when the account's tier moved in the recommended direction (to the proposed tier or
  beyond; for "off list", the tier field set to a value that is not a tier, e.g. ``off list``; an empty
  tier is Tier 3, as SPEC reads it) by the deadline;
- **declined** when the tier moved the other way, or when ``decide_within_days`` passed with no move in
  the recommended direction: decided at the deadline itself (a change stamped exactly at the deadline
  still counts as accepted; a run at or after the deadline that sees no such change declines);
- **pending** otherwise. ``age_days`` is days from ``recommended_at`` to the decision (pending: to ``as_of``).

The moment of a tier change is the account's ``updated_at`` when it lies between the recommendation and
``as_of`` (else the ``as_of`` of the run that first saw the change). While a recommendation is pending no
other is made for the account; after a decline the same rule is not recommended again for
``quiet_days_after_decline``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from abm_sla.domain import frames, scorecard
from abm_sla.domain.policy.targets import TierMoves

PENDING, ACCEPTED, DECLINED = "pending", "accepted", "declined"
OFF_LIST = "off list"
OFF_LIST_RANK = 4
DAY = pd.Timedelta(days=1)
COLUMNS = ["account_id", "recommended_at", "rule", "from_tier", "proposed_tier", "reason", "decision",
           "decided_at", "decision_note", "evaluated_at"]
TIMESTAMPS = ("recommended_at", "decided_at", "evaluated_at")
UTC = pd.DatetimeTZDtype("ns", "UTC")


def empty() -> pd.DataFrame:
    """An empty ledger with its columns and dtypes."""
    frame = pd.DataFrame({column: pd.Series(dtype="object") for column in COLUMNS})
    for column in TIMESTAMPS:
        frame[column] = pd.Series(dtype=UTC)
    return frame


def conform(ledger: pd.DataFrame | None) -> pd.DataFrame:
    """The ledger with every column, timestamps as UTC and ``account_id`` as text."""
    if ledger is None or ledger.empty:
        return empty()
    if _conformed(ledger):  # a frame this function returned (the ledger passes through several steps of a run)
        return ledger.reset_index(drop=True)
    out = ledger.reindex(columns=COLUMNS).astype({c: object for c in COLUMNS if c not in TIMESTAMPS})
    for column in TIMESTAMPS:
        out[column] = _as_utc(out[column])
    out["account_id"] = out["account_id"].astype(str)
    return out.reset_index(drop=True)


def _as_utc(values: pd.Series) -> pd.Series:
    """``values`` as UTC timestamps (a column that is one already is kept: parsing it again walks every value)."""
    return values if values.dtype == UTC else pd.to_datetime(values, utc=True).astype(UTC)


def _conformed(ledger: pd.DataFrame) -> bool:
    """Whether ``ledger`` is as :func:`conform` leaves it: its columns in order, UTC timestamps, the others Python
    objects, every ``account_id`` a text."""
    if list(ledger.columns) != COLUMNS:
        return False
    kinds = ledger.dtypes
    if any(kinds[c] != ("datetime64[ns, UTC]" if c in TIMESTAMPS else object) for c in COLUMNS):
        return False
    return pd.api.types.infer_dtype(ledger["account_id"], skipna=False) == "string"


def tier_rank(raw: pd.Series) -> pd.Series:
    """Tier 1-3 from the CRM's tier field (``2``, ``Tier 2``, `` tier 2 ``); empty is Tier 3 as in SPEC; any
    other value (``off list``, ``none``, ``not ABM``...) is off the list (4). Computed once per distinct value."""
    return frames.by_unique(raw, _tier_ranks)


def _tier_ranks(raw: pd.Series) -> pd.Series:
    text = raw.astype("string").str.strip()
    digits = text.str.extract(r"^(?:tier[\s_-]*)?([123])(?:\.0)?$", flags=re.IGNORECASE, expand=False)
    rank = pd.to_numeric(digits, errors="coerce")
    return rank.where(rank.notna(), np.where(text.fillna("").eq(""), 3, OFF_LIST_RANK)).astype(int)


def proposed_rank(proposed: pd.Series) -> pd.Series:
    """A recommendation's proposed tier as a rank (``off list``: 4), once per distinct value."""
    return frames.by_unique(proposed, _proposed_ranks)


def _proposed_ranks(proposed: pd.Series) -> pd.Series:
    text = proposed.astype("string").str.strip().str.lower()
    return pd.to_numeric(text.where(text != OFF_LIST), errors="coerce").fillna(OFF_LIST_RANK).astype(int)


def decide(ledger: pd.DataFrame, accounts: pd.DataFrame, as_of: pd.Timestamp, rules: TierMoves) -> pd.DataFrame:
    """Decide the pending recommendations made by ``as_of`` from the accounts' tier as it is now."""
    out = conform(ledger)
    open_ = out["decision"].eq(PENDING) & (out["recommended_at"] <= as_of)
    if not open_.any():
        return out
    current = accounts.assign(account_id=accounts["account_id"].astype(str)).drop_duplicates("account_id")
    current = current.set_index("account_id")
    rows = out[open_]
    now = tier_rank(rows["account_id"].map(current["tier"]))
    known = rows["account_id"].isin(current.index)
    before = pd.to_numeric(rows["from_tier"], errors="coerce").fillna(OFF_LIST_RANK).astype(int)
    wanted = np.sign(proposed_rank(rows["proposed_tier"]) - before)
    moved = np.sign(now - before)
    updated = _as_utc(rows["account_id"].map(current["updated_at"]))
    changed_at = updated.where((updated >= rows["recommended_at"]) & (updated <= as_of), as_of)
    deadline = rows["recommended_at"] + pd.Timedelta(days=float(rules.decide_within_days))
    accepted = known & (moved == wanted) & (wanted != 0) & (changed_at <= deadline)
    other_way = known & (moved == -wanted) & (moved != 0) & (changed_at <= deadline)
    expired = ~accepted & ~other_way & (as_of >= deadline)
    out.loc[rows.index[accepted], ["decision", "decision_note"]] = [ACCEPTED, "tier changed as recommended"]
    out.loc[rows.index[other_way], ["decision", "decision_note"]] = [DECLINED, "tier moved the other way"]
    note = f"no tier change within {rules.decide_within_days:g} days"
    out.loc[rows.index[expired], ["decision", "decision_note"]] = [DECLINED, note]
    out.loc[rows.index[accepted | other_way], "decided_at"] = changed_at[accepted | other_way]
    out.loc[rows.index[expired], "decided_at"] = deadline[expired]
    out.loc[rows.index, "evaluated_at"] = as_of
    return out


def record(ledger: pd.DataFrame, candidates: pd.DataFrame, as_of: pd.Timestamp, rules: TierMoves) -> pd.DataFrame:
    """Add today's candidates (``scorecard.tier_moves`` rows) that are new: no pending recommendation on the
    account and no decline of the same rule within ``quiet_days_after_decline`` before ``as_of``."""
    out = conform(ledger)
    if candidates.empty:
        return out
    known = out[out["recommended_at"] <= as_of]
    pending = set(known.loc[known["decision"].eq(PENDING), "account_id"])
    quiet = pd.Timedelta(days=float(rules.quiet_days_after_decline))
    recent = known[known["decision"].eq(DECLINED) & (known["decided_at"] > as_of - quiet)]
    declined = set(zip(recent["account_id"], recent["rule"], strict=True))
    fresh = candidates.assign(account_id=candidates["account_id"].astype(str))
    keep = ~fresh["account_id"].isin(pending) & ~pd.Series(
        [(a, r) in declined for a, r in zip(fresh["account_id"], fresh["rule"], strict=True)],
        index=fresh.index, dtype=bool)
    fresh = fresh[keep]
    new = pd.DataFrame({
        "account_id": fresh["account_id"], "recommended_at": as_of, "rule": fresh["rule"],
        "from_tier": fresh["tier"].astype(int).astype(str), "proposed_tier": fresh["proposed_tier"].astype(str),
        "reason": fresh["reason"], "decision": PENDING, "decided_at": pd.Series(pd.NaT, index=fresh.index, dtype=UTC),
        "decision_note": None, "evaluated_at": as_of,
    })
    return conform(pd.concat([out, new], ignore_index=True)) if len(new) else out


def advance(ledger: pd.DataFrame, candidates: pd.DataFrame, accounts: pd.DataFrame, as_of: pd.Timestamp,
            rules: TierMoves) -> pd.DataFrame:
    """One run's update: decide what sales did, then record the new recommendations."""
    return record(decide(ledger, accounts, as_of, rules), candidates, as_of, rules)


def inactivity_limits(rules: TierMoves) -> list[pd.Timedelta]:
    """The inactivity limits of the rules the policy defines (off the list, back to Tier 2)."""
    limits = [(rules.remove_from_list, 120), (rules.demote_1_to_2, 60)]
    return [pd.Timedelta(days=float(rule.get("inactive_days", default))) for rule, default in limits if rule]


def entering_may_count(entering: pd.DataFrame, accounts: pd.DataFrame) -> set[str]:
    """Of the accounts with ``entering`` activities (``account_id, type, url``: entering the window since the
    last run), those for which one can count toward a promotion: a buying signal on a Tier 3 account (the
    Tier 3 promotions), a marketing touch on a Tier 2 account (engaged stakeholders); accounts not in
    ``accounts`` too. For any other account such an activity only moves its last activity later: see
    :func:`inactive_at`."""
    ids = entering["account_id"].astype(str)
    mine = accounts[accounts["account_id"].astype(str).isin(set(ids))]
    tiers = pd.Series(scorecard.normalize_tier(mine["tier"]).to_numpy(), index=mine["account_id"].astype(str))
    tier = ids.map(tiers[~tiers.index.duplicated()])
    buying, _ = scorecard.buying_signal_pages(entering)
    touch = entering["type"].isin(frames.MARKETING_TOUCHES)
    return set(ids[(tier.isna() | (tier.eq(3) & buying) | (tier.eq(2) & touch)).to_numpy()])


def inactive_at(ids: set[str], last: pd.DataFrame, as_of: pd.Timestamp, rules: TierMoves,
                margin: pd.Timedelta) -> set[str]:
    """Of ``ids``, those an inactivity rule may have flagged at ``as_of``: no activity on record by then
    (``last``: ``account_id, last_at`` as of ``as_of``), or the last one at least the shortest limit before it
    (``margin`` earlier: the rules round days). A new activity ends their inactivity, which can unmask a
    promotion; for the others it changes nothing the rules compare (they were active and still are)."""
    limits = inactivity_limits(rules)
    if not limits or not ids:
        return set()
    latest = last.assign(account_id=last["account_id"].astype(str)).set_index("account_id")["last_at"]
    order = pd.Series(sorted(ids), dtype=object)
    at = order.map(latest[~latest.index.duplicated()])
    return set(order[~(at.notna() & (at > as_of - min(limits) + margin))])


def ledger_changes(before: pd.DataFrame, decided: pd.DataFrame, since: pd.Timestamp, as_of: pd.Timestamp,
                   rules: TierMoves) -> set[str]:
    """Accounts whose standing in the ledger may let a recommendation through at ``as_of`` that a run at
    ``since`` held back: a recommendation decided by :func:`decide` now (``before`` → ``decided``, the same
    rows), or a decline whose quiet period ends in ``(since, as_of]``."""
    now = conform(decided)
    moved = now["decision"].ne(conform(before)["decision"].reindex(now.index))
    quiet = pd.Timedelta(days=float(rules.quiet_days_after_decline))
    declined = now["decision"].eq(DECLINED)
    ending = declined & (now["decided_at"] > since - quiet) & (now["decided_at"] <= as_of - quiet)
    return set(now.loc[moved | ending, "account_id"].astype(str))


def known_at(ledger: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The ledger as it stood at ``as_of``: later recommendations dropped, later decisions pending again;
    with ``age_days`` (recommended_at to the decision, or to ``as_of`` while pending)."""
    out = conform(ledger)
    out = out[out["recommended_at"] <= as_of].copy()
    later = out["decided_at"].isna() | (out["decided_at"] > as_of)
    out.loc[later, ["decision", "decision_note"]] = [PENDING, None]
    out.loc[later, "decided_at"] = pd.NaT
    until = out["decided_at"].fillna(as_of)
    out["age_days"] = ((until - out["recommended_at"]) / DAY).round(1)
    return out.sort_values(["recommended_at", "account_id"]).reset_index(drop=True)
