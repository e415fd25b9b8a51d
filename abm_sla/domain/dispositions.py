"""Sales' verdicts on MQAs: raw CRM status values as dispositions, with their reasons (pure, vectorized).

The policy's ``dispositions`` section maps raw status values (compared with
:func:`abm_sla.domain.policy.status_key`) to dispositions (accepted, rejected, nurture, contacted,
interested, not_ready, meeting_held, no_show, unqualified, or any name the policy adds). A status
value the map does not know is *unknown*: it stays in the data (it still meets the status clocks
and can end an episode through ``end_statuses``), and :func:`unknown_statuses` lists it for the
reports and the run summary.
"""

from __future__ import annotations

import pandas as pd

from abm_sla.domain.frames import to_utc as _utc
from abm_sla.domain.policy import SlaPolicy

UNKNOWN = "unknown"
#: The two verdict classes (which dispositions belong to each: the policy's ``dispositions``).
ACCEPTED, REJECTED = "accepted", "rejected"
UNKNOWN_COLUMNS = ["status", "changes", "accounts", "first_at", "last_at"]
_UTC = "datetime64[ns, UTC]"


def status_keys(values: pd.Series) -> pd.Series:
    """:func:`abm_sla.domain.policy.status_key` over a column (each distinct value computed once)."""
    text = values.astype("string").str.lower().str.replace(r"[\s_-]+", " ", regex=True).str.strip()
    return text.astype("object").where(text.notna(), None)


def reasons(values: pd.Series | None, index: pd.Index) -> pd.Series:
    """Reasons trimmed; empty or missing = None."""
    if values is None:
        return pd.Series(None, index=index, dtype="object")
    text = values.astype("string").str.strip()
    return text.astype("object").where(text.notna() & (text != ""), None)


def classify(status_changes: pd.DataFrame, policy: SlaPolicy) -> pd.DataFrame:
    """``status_changes`` with ``disposition`` (``unknown`` when the map lacks the value; empty for a
    reason-only row without a status) and ``reason``."""
    keys = status_keys(status_changes["status"])
    disposition = keys.map(policy.dispositions.mapping).astype("object")
    disposition = disposition.where(disposition.notna() | keys.isna(), UNKNOWN)
    return status_changes.assign(
        disposition=disposition,
        reason=reasons(status_changes.get("reason"), status_changes.index),
    )


def unknown_statuses(status_changes: pd.DataFrame, policy: SlaPolicy) -> pd.DataFrame:
    """Status values the policy cannot map: how often, on how many accounts, first and last seen."""
    rows = status_changes.dropna(subset=["status"])
    counts = rows.assign(status=rows["status"].astype(str).str.strip()).groupby("status").agg(
        changes=("status", "size"), accounts=("account_id", "nunique"),
        first_at=("changed_at", "min"), last_at=("changed_at", "max"),
    ).reset_index()
    return unknown_from_counts(counts, policy)


def unknown_from_counts(counts: pd.DataFrame, policy: SlaPolicy) -> pd.DataFrame:
    """:func:`unknown_statuses` from per-value counts (``status, changes, accounts, first_at, last_at``);
    spellings of one value (case, spaces) are merged under the most frequent one."""
    counts = counts[counts["status"].notna()]
    keys = status_keys(counts["status"])
    # keys assigned before filtering: a Series assigned to an empty frame would lend it its whole index
    unknown = counts.assign(key=keys)[keys.notna() & ~keys.isin(policy.dispositions.mapping)]
    if unknown.empty:
        return pd.DataFrame({column: pd.Series(dtype="object") for column in UNKNOWN_COLUMNS})
    unknown = unknown.sort_values("changes", ascending=False, kind="stable")
    out = unknown.groupby("key").agg(status=("status", "first"), changes=("changes", "sum"),
                                     accounts=("accounts", "sum"), first_at=("first_at", "min"),
                                     last_at=("last_at", "max"))
    out = out.astype({"changes": "int64", "accounts": "int64"})
    return out.sort_values(["changes", "status"], ascending=[False, True]).reset_index(drop=True)[UNKNOWN_COLUMNS]


def summary_of_unknown(unknown: pd.DataFrame, limit: int = 10) -> list[str]:
    """``['Callback (3 changes, 2 accounts)', …]`` for a run summary."""
    rows = unknown.head(limit)
    return [f"{status} ({changes} changes, {accounts} accounts)"
            for status, changes, accounts in zip(rows["status"], rows["changes"], rows["accounts"], strict=True)]


def verdict_of(disposition: pd.Series, policy: SlaPolicy) -> pd.Series:
    """``accepted`` / ``rejected`` for dispositions in the policy's verdict classes, else None."""
    classes = policy.dispositions
    out = pd.Series(None, index=disposition.index, dtype="object")
    out[disposition.isin(classes.accepted)] = ACCEPTED
    out[disposition.isin(classes.rejected)] = REJECTED
    return out


def _feedback_given_later(left: pd.DataFrame, classified: pd.DataFrame, policy: SlaPolicy,
                          as_of: pd.Timestamp) -> pd.Series:
    """Per row of ``left`` (``account_id, reason_stop``): the first reason given at or after ``reason_stop`` on a
    feedback-disposition or reason-only row by ``as_of`` — the one the ``quality_feedback`` clock counts as
    this MQA's feedback when sales gave it only after the account's next MQA fired."""
    given = classified[classified["reason"].notna() & (classified["disposition"].isin(policy.dispositions.feedback)
                                                       | classified["status"].isna())]
    given = pd.DataFrame({"account_id": given["account_id"].astype(str), "at": _utc(given["changed_at"]),
                          "late_reason": given["reason"]}).dropna(subset=["at"])
    given = given[given["at"] <= as_of].sort_values("at")
    if left.empty or given.empty:
        return pd.Series(None, index=left.index, dtype="object")
    found = pd.merge_asof(left[["account_id", "reason_stop"]].reset_index().sort_values("reason_stop"), given,
                          left_on="reason_stop", right_on="at", by="account_id", direction="forward")
    return found.set_index("index")["late_reason"].reindex(left.index).astype("object")


def episode_dispositions(
    mqas: pd.DataFrame, status_changes: pd.DataFrame, policy: SlaPolicy, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Per MQA (index of ``mqas``): its disposition, reason and when, and its verdict.

    The episode runs from trigger_at to its end (``ended_at``) or ``as_of``, and never reaches the account's
    next MQA. The *disposition* is that of the verdict when the MQA has one, else the latest of the episode
    (``none`` without a status change in it), so the disposition mix and the verdict counts agree. The
    *verdict* is the class
    (``accepted`` / ``rejected``, :attr:`policy.dispositions` ``accepted`` and ``rejected``) of the latest
    disposition in the episode that belongs to one, ``verdict_at`` its moment. The *reason* is the latest
    reason given from trigger_at until the next MQA (or ``as_of``): a reason sales gives after the status that
    ended the episode still belongs to it (the ``quality_feedback`` clock counts it too); a rejected MQA with
    no reason by then takes the first reason given afterwards, as that clock does.
    Columns: ``disposition, reason, disposition_at, verdict, verdict_at``.
    """
    classified = classify(status_changes, policy)
    events = pd.DataFrame({
        "account_id": classified["account_id"].astype(str), "disposition_at": _utc(classified["changed_at"]),
        # a reason-only row (empty status) keeps the disposition before it
        "disposition": classified["disposition"].where(classified["status"].notna()),
        "event_reason": classified["reason"],
    }).dropna(subset=["disposition_at"])
    events = events[events["disposition_at"] <= as_of]
    start = _utc(mqas["trigger_at"])
    ends = _utc(mqas["ended_at"]) if "ended_at" in mqas else pd.Series(pd.NaT, index=mqas.index, dtype=_UTC)
    accounts = mqas["account_id"].astype(str)
    order = pd.DataFrame({"account_id": accounts, "start": start}).sort_values(["account_id", "start"])
    following = order.groupby("account_id")["start"].shift(-1).reindex(mqas.index)
    reason_stop = following.where(following.notna(), as_of + pd.Timedelta(1)).astype(_UTC)
    stop = ends.where(ends.notna(), as_of).astype(_UTC)
    stop = stop.where(stop < reason_stop, reason_stop - pd.Timedelta(1))
    left = pd.DataFrame({"row": range(len(mqas)), "account_id": accounts.to_numpy(), "start": start.to_numpy(),
                         "stop": stop.to_numpy(), "reason_stop": reason_stop.to_numpy()})
    pairs = left.merge(events, on="account_id")
    pairs = pairs[(pairs["disposition_at"] >= pairs["start"]) & (pairs["disposition_at"] < pairs["reason_stop"])]
    pairs = pairs.sort_values(["row", "disposition_at"], kind="stable")
    reasons_given = pairs.dropna(subset=["event_reason"]).drop_duplicates("row", keep="last").set_index("row")
    pairs = pairs[pairs["disposition_at"] <= pairs["stop"]]
    pairs["disposition"] = pairs.groupby("row")["disposition"].ffill()
    last = pairs.drop_duplicates("row", keep="last").set_index("row")
    verdicts = pairs.assign(verdict=verdict_of(pairs["disposition"], policy)).dropna(subset=["verdict"])
    verdicts = verdicts.drop_duplicates("row", keep="last").set_index("row")
    out = pd.DataFrame(index=mqas.index)
    rows = pd.Series(range(len(mqas)), index=mqas.index)
    # an MQA with a verdict shows the disposition that gave it (accepted means one thing in every table)
    out["disposition"] = rows.map(verdicts["disposition"]).fillna(rows.map(last["disposition"]))
    out["disposition"] = out["disposition"].fillna("none").astype("object")
    out["reason"] = rows.map(reasons_given["event_reason"]).astype("object")
    late = out["reason"].isna() & out["disposition"].isin(policy.dispositions.feedback)
    out.loc[late, "reason"] = _feedback_given_later(left[late.to_numpy()], classified, policy, as_of).to_numpy()
    out["disposition_at"] = rows.map(verdicts["disposition_at"]).fillna(rows.map(last["disposition_at"])).astype(_UTC)
    out["verdict"] = rows.map(verdicts["verdict"]).astype("object")
    out["verdict_at"] = rows.map(verdicts["disposition_at"]).astype(_UTC)
    return out
