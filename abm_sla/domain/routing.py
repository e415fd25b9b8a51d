"""Routing of new MQAs (SPEC section 5): tier, owner and routed_at.

The owner is the account's owner when that user exists and is active; otherwise
a round-robin over active ``sales`` users (role compared ignoring case and
spaces) in user_id order, continuing after the last user assigned. The caller
persists that state, so turns stay fair across runs and restarts.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

DEFAULT_TIER = 3
ROUND_ROBIN_ROLE = "sales"
TIER_PATTERN = r"^\s*(?:tier\s*)?([123])(?:\.0*)?\s*$"
ROUTED_COLUMNS = ["account_id", "trigger_at", "tier", "owner_id", "routed_at", "tier_reason", "owner_reason"]


def parse_tier(values: pd.Series) -> pd.Series:
    """Tier 1-3 from ``1``, ``Tier 1``, `` tier 3 ``, ``TIER2``, ``2.0``; anything else is Tier 3."""
    digits = _tier_text(values).str.extract(TIER_PATTERN, flags=re.IGNORECASE, expand=False)
    return pd.to_numeric(digits, errors="coerce").fillna(DEFAULT_TIER).astype("int64").rename(values.name)


def active_users(users: pd.DataFrame) -> pd.DataFrame:
    """Users whose ``active`` flag is not false (missing counts as active)."""
    return users[is_active(users.get("active", pd.Series(True, index=users.index)))]


def is_active(flags: pd.Series) -> pd.Series:
    """``False``, ``"false"``, ``"0"``, ``0`` are inactive; missing or anything else is active."""
    text = flags.astype("string").str.strip().str.lower()
    return ~text.isin(["false", "0", "no", "f"]).fillna(False).astype(bool)


def users_with_role(users: pd.DataFrame, role: str) -> pd.Series:
    """Sorted ids of active users whose role equals ``role`` (ignoring case and spaces)."""
    active = active_users(users)
    roles = active["role"].astype("string").str.strip().str.lower()
    ids = active.loc[(roles == role.strip().lower()).fillna(False).astype(bool), "user_id"]
    return pd.Series(np.sort(ids.dropna().astype(str).unique()), dtype="object")


def route_mqas(
    mqas: pd.DataFrame,
    accounts: pd.DataFrame,
    users: pd.DataFrame,
    as_of: pd.Timestamp,
    last_assigned: str | None,
) -> tuple[pd.DataFrame, str | None]:
    """Tier, owner and routed_at for each MQA, plus the new round-robin state.

    Returns the MQAs in their input order with ``ROUTED_COLUMNS``. Round-robin
    turns are handed out in (trigger_at, account_id) order.
    """
    routed_at = _utc(as_of)
    account_cols = accounts.reindex(columns=["account_id", "tier", "owner_id"]).drop_duplicates("account_id")
    account_cols = account_cols.astype({"account_id": "object"})
    rows = mqas[["account_id", "trigger_at"]].reset_index(drop=True).astype({"account_id": "object"})
    rows = rows.merge(account_cols, on="account_id", how="left")
    tier = parse_tier(rows["tier"])
    active_ids = set(active_users(users)["user_id"].dropna().astype(str))
    known_ids = set(users["user_id"].dropna().astype(str))
    owner = rows["owner_id"].astype("string").str.strip().replace("", pd.NA)
    keeps_owner = owner.isin(active_ids).fillna(False).astype(bool)
    pool = users_with_role(users, ROUND_ROBIN_ROLE)
    assigned, state = _round_robin(rows, ~keeps_owner, pool, last_assigned)
    owner_id = owner.astype("object").where(keeps_owner, assigned).where(lambda s: s.notna(), None)
    out = pd.DataFrame({
        "account_id": rows["account_id"],
        "trigger_at": rows["trigger_at"],
        "tier": tier,
        "owner_id": owner_id,
        "routed_at": pd.Series(routed_at, index=rows.index, dtype="datetime64[ns, UTC]"),
        "tier_reason": _tier_reasons(rows["tier"], tier),
        "owner_reason": _owner_reasons(owner, keeps_owner, owner.isin(known_ids).fillna(False), owner_id),
    })
    return out[ROUTED_COLUMNS], state


def _round_robin(
    rows: pd.DataFrame, needs: pd.Series, pool: pd.Series, last_assigned: str | None
) -> tuple[pd.Series, str | None]:
    """Assign ``pool`` users in turn to the rows that need one; the turn after ``last_assigned`` first."""
    assigned = pd.Series(None, index=rows.index, dtype="object")
    if not needs.any() or pool.empty:
        return assigned, last_assigned
    order = rows.loc[needs, ["trigger_at", "account_id"]].sort_values(["trigger_at", "account_id"]).index
    users = pool.to_numpy()
    first = int(np.searchsorted(users, last_assigned, side="right")) if last_assigned is not None else 0
    turns = (first + np.arange(len(order))) % len(users)
    assigned.loc[order] = users[turns]
    return assigned, str(users[turns[-1]])


def _tier_reasons(raw: pd.Series, tier: pd.Series) -> pd.Series:
    text = _tier_text(raw).str.strip()
    recognized = text.str.match(TIER_PATTERN, case=False).fillna(False).astype(bool)
    reason = pd.Series("tier field is empty: default Tier 3", index=raw.index, dtype="object")
    reason[text.notna() & ~recognized] = "tier field '" + text + "' is not a tier: default Tier 3"
    reason[recognized] = "tier field '" + text + "': Tier " + tier.astype(str)
    return reason


def _owner_reasons(
    owner: pd.Series, keeps_owner: pd.Series, known: pd.Series, owner_id: pd.Series
) -> pd.Series:
    given = owner.fillna("").astype(str)
    why = pd.Series("account has no owner", index=owner.index, dtype="object")
    why[owner.notna() & ~known] = "account owner " + given + " is not a known user"
    why[owner.notna() & known] = "account owner " + given + " is inactive"
    picked = owner_id.fillna("").astype(str)
    reason = why + np.where(owner_id.notna(), "; round-robin over active sales users: " + picked,
                            "; no active sales user for round-robin: unassigned")
    return reason.where(~keeps_owner, "account owner " + given).astype("object")


def _tier_text(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().replace("", pd.NA)


def _utc(moment: pd.Timestamp | str) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def reassign_owners(
    cases: pd.DataFrame, users: pd.DataFrame, last_assigned: str | None
) -> tuple[pd.DataFrame, str | None]:
    """The next rep by the round-robin rules for each MQA reassigned on a breach, and the new state.

    ``cases`` has account_id, trigger_at, reassigned_at, from_owner_id. Turns go out in
    (reassigned_at, account_id) order, continuing after ``last_assigned`` (the same turn as routing);
    a turn that lands on the MQA's current owner passes to the next rep. With no other active
    ``sales`` user the MQA stays with its owner (``to_owner_id`` None, the reason says why).
    Returns ``to_owner_id, reason`` on the index of ``cases``.
    """
    pool = users_with_role(users, ROUND_ROBIN_ROLE).to_numpy()
    out = pd.DataFrame({"to_owner_id": pd.Series(None, index=cases.index, dtype="object"),
                        "reason": pd.Series("", index=cases.index, dtype="object")})
    state = last_assigned
    order = cases.sort_values(["reassigned_at", "account_id"], kind="stable").index
    for index in order:  # one turn after another: each depends on the last (few rows: breaches only)
        current = cases.at[index, "from_owner_id"]
        others = pool[pool != current] if current is not None else pool
        if not len(others):
            out.at[index, "reason"] = f"no other active sales user: stays with {current or 'no owner'}"
            continue
        first = int(np.searchsorted(pool, state, side="right")) if state is not None else 0
        turns = [pool[(first + step) % len(pool)] for step in range(len(pool))]
        chosen = next(user for user in turns if user != current)
        out.at[index, "to_owner_id"], state = chosen, str(chosen)
        out.at[index, "reason"] = f"round-robin over active sales users after {current or 'no owner'}: {chosen}"
    return out, state
