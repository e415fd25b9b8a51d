"""The SLA as a signed document (issue 26; not part of SPEC): which version of the policy file who signed,
and whether the policy in use still carries the signatures (pure: the signatures are passed in)."""

from __future__ import annotations

import hashlib

import pandas as pd

COLUMNS = ["signed_at", "signed_by", "role", "policy_sha256", "policy_file"]
RESIGN = "Re-sign needed"


def policy_hash(content: bytes) -> str:
    """The SHA-256 of the policy file's bytes: its version as signed."""
    return hashlib.sha256(content).hexdigest()


def _who(rows: pd.DataFrame) -> str:
    return "; ".join(f"{row.signed_by} ({row.role}) on {row.signed_at:%Y-%m-%d}"
                     for row in rows.sort_values("signed_at").itertuples())


def status_line(signoffs: pd.DataFrame, current_sha: str, roles: tuple[str, ...] = ()) -> str:
    """One line for every report: who signed the policy in use (version = the first 12 hex digits of its
    hash), or "Re-sign needed" when it changed after the last signatures or a required role has not signed."""
    if signoffs.empty:
        return ("SLA not signed: record each head's signature with "
                "`abm-sla signoff --policy FILE --by NAME --role ROLE`.")
    current = signoffs[signoffs["policy_sha256"].eq(current_sha)]
    if current.empty:
        latest = signoffs.loc[signoffs["signed_at"].idxmax(), "policy_sha256"]
        last = signoffs[signoffs["policy_sha256"].eq(latest)]
        return (f"{RESIGN}: the policy changed after the last signatures (version {latest[:12]}: {_who(last)}); "
                f"the version in use, {current_sha[:12]}, is not signed.")
    missing = [role for role in roles if role not in set(current["role"])]
    signed = f"SLA signed, policy version {current_sha[:12]}: {_who(current)}."
    return f"{RESIGN}: not yet signed by {', '.join(missing)}. {signed}" if missing else signed


def scoring_refresh_line(model_file: str, changed_at: pd.Timestamp, as_of: pd.Timestamp,
                         max_age_days: int) -> str | None:
    """The monthly review's prompt when the scoring model was last changed more than ``max_age_days`` before
    ``as_of`` (None when it is fresh or the prompt is off)."""
    if max_age_days <= 0 or as_of - changed_at <= pd.Timedelta(days=max_age_days):
        return None
    days = (as_of - changed_at).days
    return (f"Scoring refresh due: the scoring model ({model_file}) was last changed on {changed_at:%Y-%m-%d}, "
            f"{days} days before this review (policy scoring_refresh.max_age_days: {max_age_days}); review its "
            "points against the latest outcomes (`abm-sla propose model`) before the next quarterly renegotiation.")
