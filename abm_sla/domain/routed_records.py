"""Whether each routed MQA's record is complete (one-page SLA, seven commitments; issue 26). Pure, no clock.

The designs commit marketing to route a complete record: the account's profile, the source attribution and the
recent engagement summarized. An MQA routed in ``[start, end)`` is **complete** when every account field of
policy ``routed_record.account_fields`` is filled on its account (not empty, not blank text) and, with
``routed_record.reasons``, the MQA carries the score's reasons (the engagement summary and the signals that fired
it, as the CRM write-back task shows them). Its ``missing`` column names what is not filled.
"""

from __future__ import annotations

import pandas as pd

from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.policy.reports import RoutedRecord
from abm_sla.domain.scorecard import SlaData

REASONS = "reasons"
RECORD_COLUMNS = ["account_id", "account_name", "trigger_at", "routed_at", "tier", "owner_id", "missing", "complete"]


def settings(policy: SlaPolicy) -> RoutedRecord:
    """The policy's ``routed_record``, or its defaults when absent (the catalog measures either way)."""
    return policy.routed_record if policy.routed_record is not None else RoutedRecord()


def _filled(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip()
    return values.notna() & text.ne("").fillna(False).astype(bool)


def record_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """One row per MQA routed in ``[start, end)`` (:data:`RECORD_COLUMNS`) with the fields its record lacks."""
    rule = settings(policy)
    mqas = data.mqas[sc.within(data.mqas["routed_at"], start, end)].reset_index(drop=True)
    accounts = data.accounts.assign(account_id=data.accounts["account_id"].astype(str))
    accounts = accounts.drop_duplicates("account_id", keep="last").set_index("account_id")
    ids = mqas["account_id"].astype(str)
    lacking = pd.DataFrame(index=mqas.index)
    for field in rule.account_fields:
        lacking[field] = ~_filled(ids.map(accounts[field]) if field in accounts else pd.Series(None, index=ids.index))
    if rule.reasons:
        lacking[REASONS] = ~_filled(mqas[REASONS]) if REASONS in mqas else True
    missing = lacking.apply(lambda row: ", ".join(row.index[row.to_numpy(dtype=bool)]), axis=1) \
        if len(lacking.columns) and len(mqas) else pd.Series("", index=mqas.index, dtype="object")
    dims = sc.account_dimensions(data).set_index("account_id")
    return pd.DataFrame({
        "account_id": ids, "account_name": ids.map(dims["account_name"]), "trigger_at": mqas["trigger_at"],
        "routed_at": mqas["routed_at"], "tier": sc.normalize_tier(mqas["tier"]), "owner_id": mqas["owner_id"],
        "missing": missing.astype("object"), "complete": missing.eq("")}, columns=RECORD_COLUMNS)


def incomplete(facts: pd.DataFrame) -> pd.DataFrame:
    """The incomplete routed records, the earliest routed first."""
    return facts[~facts["complete"]].drop(columns="complete").sort_values("routed_at", kind="stable") \
        .reset_index(drop=True)
