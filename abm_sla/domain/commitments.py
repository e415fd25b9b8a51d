"""Tier 1 commitments, the top of the target account list and the Tier 3 watch list (issue 26), pure.

Every function takes :class:`abm_sla.domain.scorecard.SlaData`, a moment or period and the policy, never reads the
clock and returns DataFrames; each part is off (empty frames) unless the policy defines it
(``tier1_commitments``, ``target_account_list.top_accounts`` / ``size``, ``targets.tier_moves.brief_sales``).
Definitions (docs/designs/tier1-commitments.md):

- *qualified conversation*: an activity of a ``conversation.types`` type (meeting, call) on the account with a
  known contact who (``engaged_only``) had a marketing touch in the ``engaged_within_days`` up to it;
- *sales follow-up*: a marketing touch on an account of the tiers owes a sales touch within the window; touches
  before that sales touch share the first one's clock (one clock per unanswered run of touches);
- *campaign research*: an activity of a ``started_by`` type (``campaign_start``, one per account and campaign
  subject) owes an activity of a ``met_by`` type (``account_research``) at or after it within ``within_days``;
- *top accounts*: the list's first ``size`` accounts at the moment by ``priority`` (1 first; those without one
  after) when any member has one, else by latest score (highest first); ties by account id.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import frames
from abm_sla.domain import marketing as mk
from abm_sla.domain import scorecard as sc
from abm_sla.domain import tier_moves as tm
from abm_sla.domain.frames import to_utc as _utc
from abm_sla.domain.policy import SlaPolicy, Window
from abm_sla.domain.scorecard import SlaData
from abm_sla.domain.sla import _owner_calendar, apply_windows, clock_status

UTC = "datetime64[ns, UTC]"
DAY = pd.Timedelta(days=1)
CONVERSATION_COLUMNS = ["account_id", "account_name", "tier", "owner_id", "conversations", "last_conversation_at",
                        "conversed"]
CLOCK_COLUMNS = ["account_id", "account_name", "tier", "owner_id", "commitment", "started_at", "due_at", "met_at",
                 "status", "subject"]
TOP_COLUMNS = ["rank", "account_id", "account_name", "tier", "owner_id", "priority", "score",
               "last_personal_touch_at", "days_since_reached", "reached"]
BRIEFING_COLUMNS = ["account_id", "account_name", "owner_id", "from_tier", "proposed_tier", "reason",
                    "recommended_at", "brief", "decision"]
FOLLOW_UP, RESEARCH = "sales_follow_up", "campaign_research"
WATCH_RULES = ("promote_3_to_1", "promote_3_to_2")


# -- Tier 1: qualified conversations ----------------------------------------------------------------

def tier_accounts(data: SlaData, at: pd.Timestamp, tiers: list[int]) -> pd.DataFrame:
    """``account_id, account_name, tier, owner_id`` of the accounts of ``tiers`` created by ``at``."""
    accounts = sc.account_dimensions(data)
    created = _utc(accounts["created_at"])
    rows = accounts[(created.isna() | (created <= at)) & accounts["tier"].isin(tiers)]
    return rows[["account_id", "account_name", "tier", "owner_id"]].reset_index(drop=True)


def qualified_conversations(data: SlaData, start: pd.Timestamp, until: pd.Timestamp,
                            policy: SlaPolicy) -> pd.DataFrame:
    """The qualified conversations in ``[start, until]``: ``account_id, contact_id, occurred_at``."""
    rule = policy.tier1_commitments.conversation if policy.tier1_commitments else None
    acts = data.activities
    empty = pd.DataFrame({"account_id": pd.Series(dtype=object), "contact_id": pd.Series(dtype=object),
                          "occurred_at": pd.Series(dtype=UTC)})
    if rule is None or acts.empty:
        return empty
    at = _utc(acts["occurred_at"])
    kind = acts["type"].astype("string").str.strip().str.lower()
    pick = kind.isin(rule.types).fillna(False) & at.between(start, until) & acts["contact_id"].notna()
    talks = pd.DataFrame({"row": np.arange(int(pick.sum())), "account_id": acts.loc[pick, "account_id"].astype(str),
                          "contact_id": acts.loc[pick, "contact_id"].astype(str), "occurred_at": at[pick]})
    if not rule.engaged_only or talks.empty:
        return talks[empty.columns].reset_index(drop=True)
    lookback = pd.Timedelta(days=rule.engaged_within_days)
    touches = mk.marketing_touches(acts, mk.marketing_settings(policy), start - lookback, until + pd.Timedelta(1))
    touches = touches.dropna(subset=["contact_id"]).astype({"contact_id": str})[["contact_id", "occurred_at"]]
    joined = talks.merge(touches.rename(columns={"occurred_at": "touch_at"}), on="contact_id")
    engaged = joined[(joined["touch_at"] <= joined["occurred_at"]) & (joined["touch_at"] > joined["occurred_at"]
                                                                      - lookback)]
    return talks[talks["row"].isin(engaged["row"])][empty.columns].reset_index(drop=True)


def conversation_coverage(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                          policy: SlaPolicy) -> pd.DataFrame:
    """Per account of the commitment's tiers at the period's last moment known: its qualified conversations
    in the period up to ``as_of`` and whether it had one (``CONVERSATION_COLUMNS``)."""
    commitments = policy.tier1_commitments
    if commitments is None or commitments.conversation is None:
        return _empty(CONVERSATION_COLUMNS)
    moment = mk.last_moment(end, as_of)
    accounts = tier_accounts(data, moment, commitments.tiers)
    talks = qualified_conversations(data, start, moment, policy)
    grouped = talks.groupby("account_id")["occurred_at"]
    out = accounts.assign(conversations=accounts["account_id"].map(grouped.size()).fillna(0).astype(int),
                          last_conversation_at=accounts["account_id"].map(grouped.max()).astype(UTC))
    out["conversed"] = out["conversations"] > 0
    return out[CONVERSATION_COLUMNS]


# -- Tier 1: the sales follow-up and campaign research clocks ---------------------------------------

def follow_up_clocks(data: SlaData, since: pd.Timestamp, as_of: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """One clock per unanswered run of marketing touches on an account of the tiers, starting in
    ``[since, as_of]``: due the window after its first touch (owner's business calendar), met at the first
    sales touch at or after it (``CLOCK_COLUMNS``)."""
    commitments = policy.tier1_commitments
    if commitments is None or commitments.sales_follow_up is None:
        return _empty(CLOCK_COLUMNS)
    accounts = tier_accounts(data, as_of, commitments.tiers)
    touches = mk.marketing_touches(data.activities, mk.marketing_settings(policy), since, as_of + pd.Timedelta(1))
    touches = touches[touches["account_id"].isin(accounts["account_id"])]
    sales = _typed(data.activities, frames.SALES_TOUCHES, as_of)
    starts = touches[["account_id", "occurred_at"]].rename(columns={"occurred_at": "started_at"})
    starts = starts.assign(met_at=_next_at(starts, sales))
    # one clock per run of touches answered by the same sales touch (the unanswered run: one, NaT alike)
    starts = starts.sort_values("started_at").drop_duplicates(["account_id", "met_at"], keep="first")
    window = commitments.sales_follow_up.window
    return _clock_frame(data, accounts, starts, FOLLOW_UP, window, as_of, policy, subject=None)


def research_clocks(data: SlaData, as_of: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """One clock per campaign start (account and subject, first start) on an account of the tiers: due
    ``within_days`` after it, met at the first research activity at or after it (``CLOCK_COLUMNS``)."""
    commitments = policy.tier1_commitments
    if commitments is None or commitments.research is None:
        return _empty(CLOCK_COLUMNS)
    rule = commitments.research
    accounts = tier_accounts(data, as_of, commitments.tiers)
    acts = data.activities
    kind = acts["type"].astype("string").str.strip().str.lower()
    at = _utc(acts["occurred_at"])
    pick = kind.isin(rule.started_by).fillna(False) & (at <= as_of) & acts["account_id"].astype(str).isin(
        accounts["account_id"])
    starts = pd.DataFrame({"account_id": acts.loc[pick, "account_id"].astype(str), "started_at": at[pick],
                           "subject": acts.loc[pick, "subject"].astype("string").fillna("").astype(object)})
    starts = starts.sort_values("started_at").drop_duplicates(["account_id", "subject"], keep="first")
    starts = starts.assign(met_at=_next_at(starts, _typed(acts, tuple(rule.met_by), as_of)))
    return _clock_frame(data, accounts, starts, RESEARCH, Window(days=rule.within_days), as_of, policy,
                        subject=starts["subject"])


def clocks_due(clocks: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The clocks whose due_at is in ``[start, end)``."""
    return clocks[sc.within(clocks["due_at"], start, end)].reset_index(drop=True)


def _clock_frame(data: SlaData, accounts: pd.DataFrame, starts: pd.DataFrame, commitment: str, window: Window,
                 as_of: pd.Timestamp, policy: SlaPolicy, subject: pd.Series | None) -> pd.DataFrame:
    if starts.empty:
        return _empty(CLOCK_COLUMNS)
    dims = accounts.set_index("account_id")
    out = starts.reset_index(drop=True).assign(commitment=commitment)
    out["account_name"] = out["account_id"].map(dims["account_name"])
    out["tier"] = out["account_id"].map(dims["tier"]).astype(int)
    out["owner_id"] = out["account_id"].map(dims["owner_id"]).astype(object)
    calendar = _owner_calendar(out["owner_id"], data.users)
    out["due_at"] = apply_windows(out["started_at"].astype(UTC), np.full(len(out), window.kind, dtype=object),
                                  np.full(len(out), window.amount), calendar["zone"], calendar["country"], policy)
    out["met_at"] = out["met_at"].astype(UTC).where(out["met_at"] <= as_of)
    out["status"] = clock_status(out["due_at"], out["met_at"], as_of)
    out["subject"] = None if subject is None else subject.to_numpy()
    return out[CLOCK_COLUMNS].sort_values(["due_at", "account_id"]).reset_index(drop=True)


def _typed(activities: pd.DataFrame, types: tuple[str, ...], as_of: pd.Timestamp) -> pd.DataFrame:
    """``account_id, at`` of the activities of ``types`` at or before ``as_of``, sorted by time."""
    kind = activities["type"].astype("string").str.strip().str.lower()
    at = _utc(activities["occurred_at"])
    pick = kind.isin(types).fillna(False) & (at <= as_of)
    return pd.DataFrame({"account_id": activities.loc[pick, "account_id"].astype(str),
                         "at": at[pick]}).dropna().sort_values("at").reset_index(drop=True)


def _next_at(starts: pd.DataFrame, events: pd.DataFrame) -> pd.Series:
    """Per start row: the first event of its account at or after ``started_at`` (NaT: none)."""
    left = starts.reset_index(drop=True).assign(row=np.arange(len(starts))).sort_values("started_at")
    if left.empty:
        return pd.Series(pd.NaT, index=starts.index, dtype=UTC)
    right = events.rename(columns={"at": "next_at"}).assign(key=events["at"])
    merged = pd.merge_asof(left.astype({"started_at": UTC}), right.astype({"key": UTC}), left_on="started_at",
                           right_on="key", by="account_id", direction="forward")
    next_at = merged["next_at"].astype(UTC).set_axis(merged["row"].to_numpy())
    return next_at.reindex(range(len(starts))).set_axis(starts.index)


# -- the top of the target account list --------------------------------------------------------------

def top_accounts(data: SlaData, at: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """The top accounts of the list at ``at`` and whether sales reached each personally in the ``reach_days``
    up to it (``TOP_COLUMNS``; empty when ``top_accounts`` is off)."""
    rule = policy.target_account_list.top_accounts if policy.target_account_list else None
    if rule is None:
        return _empty(TOP_COLUMNS)
    members = mk.measured_accounts(data.accounts, data.target_accounts, at)[["account_id"]]
    dims = sc.account_dimensions(data).set_index("account_id")
    listed = data.target_accounts[mk.on_list_at(data.target_accounts, data.target_accounts["account_id"], at)]
    priority = pd.to_numeric(listed.get("priority"), errors="coerce") if "priority" in listed else pd.Series(
        dtype="float64")
    priority = priority.groupby(listed["account_id"].astype(str)).min() if len(listed) else priority
    history = data.score_history[_utc(data.score_history["as_of"]) <= at] if len(data.score_history) else \
        data.score_history
    score = (history.sort_values("as_of").groupby(history["account_id"].astype(str))["total"].last()
             if len(history) else pd.Series(dtype="float64"))
    out = members.assign(priority=members["account_id"].map(priority).astype("float64"),
                         score=members["account_id"].map(score).astype("float64"))
    by_priority = out["priority"].notna().any()
    keys = ["priority", "account_id"] if by_priority else ["score", "account_id"]
    out = out.sort_values(keys, ascending=[by_priority, True], na_position="last").head(rule.size)
    out = out.reset_index(drop=True).assign(rank=lambda f: np.arange(1, len(f) + 1))
    out["account_name"] = out["account_id"].map(dims["account_name"])
    out["tier"] = out["account_id"].map(dims["tier"])
    out["owner_id"] = out["account_id"].map(dims["owner_id"])
    acts = data.activities
    kind = acts["type"].astype("string").str.strip().str.lower()
    when = _utc(acts["occurred_at"])
    personal = kind.isin(rule.reach_types).fillna(False) & acts["owner_id"].notna() & (when <= at)
    last = when[personal].groupby(acts.loc[personal, "account_id"].astype(str)).max()
    out["last_personal_touch_at"] = out["account_id"].map(last).astype(UTC)
    out["days_since_reached"] = ((at - out["last_personal_touch_at"]) / DAY).round(1)
    out["reached"] = out["last_personal_touch_at"] > at - pd.Timedelta(days=rule.reach_days)
    return out[TOP_COLUMNS]


def last_revisited(data: SlaData, top: pd.DataFrame, at: pd.Timestamp) -> pd.Timestamp:
    """When the list rows of the top accounts (``top``, :func:`top_accounts`) were last agreed at or before ``at``
    (NaT: never)."""
    rows = data.target_accounts[data.target_accounts["account_id"].astype(str).isin(top["account_id"])]
    agreed = _utc(rows["agreed_at"])
    agreed = agreed[agreed <= at]
    return agreed.max() if len(agreed) else pd.NaT


def list_size_check(data: SlaData, at: pd.Timestamp, policy: SlaPolicy, on_list: float | None = None) -> pd.DataFrame:
    """One row: accounts on the list at ``at`` against the agreed size (``target_account_list.size``), with
    ``status`` within / below / above / no list and a warning text when outside. ``on_list``: the accounts on the
    list when already measured (the reports: the metrics catalog's ``accounts_on_list`` of the period)."""
    size = policy.target_account_list.size if policy.target_account_list else None
    if size is None:
        return pd.DataFrame(columns=["on_list", "min", "max", "status", "warning"])
    listed = mk.tal_exists(data.target_accounts)
    measured = len(mk.measured_accounts(data.accounts, data.target_accounts, at)) if on_list is None else on_list
    count = int(measured) if listed else 0
    status = ("no list" if not listed else "below" if count < size.min else "above" if count > size.max
              else "within")
    warning = "" if status == "within" else (
        "No target account list is recorded (target_accounts.csv)." if status == "no list" else
        f"The list holds {count} accounts, {status} the agreed {size.min}-{size.max}: agree its size again.")
    return pd.DataFrame([{"on_list": count, "min": size.min, "max": size.max, "status": status,
                          "warning": warning}])


# -- the Tier 3 watch list --------------------------------------------------------------------------

def briefings(data: SlaData, ledger: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
              as_of: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """The briefing tasks to sales: the watch-list promotions (Tier 3 → 1 or 2) recommended in ``[start, end)``
    as known at ``as_of``, one per recommendation (``BRIEFING_COLUMNS``; empty unless ``brief_sales``)."""
    rules = policy.targets.tier_moves if policy.targets else None
    if rules is None or not rules.brief_sales:
        return _empty(BRIEFING_COLUMNS)
    rows = tm.known_at(ledger, as_of)
    rows = rows[rows["rule"].isin(WATCH_RULES) & sc.within(rows["recommended_at"], start, end)]
    dims = sc.account_dimensions(data).set_index("account_id")
    out = rows.assign(account_name=rows["account_id"].map(dims["account_name"]),
                      owner_id=rows["account_id"].map(dims["owner_id"]))
    out["brief"] = ("Tier 3 watch list: promote to Tier " + out["proposed_tier"].astype(str) + " (" + out["reason"]
                    .astype(str) + "); brief the owner on the signals and respond once promoted")
    return out[BRIEFING_COLUMNS].reset_index(drop=True)


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=UTC if column.endswith("_at") else object) for column in columns})
