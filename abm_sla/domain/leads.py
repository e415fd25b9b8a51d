"""Lead-level measures and the weekly intent list (ABM template, basic SLA). Pure, vectorized, no clock.

- A **lead** of a period is a contact of an account on the list at the period's end
  (:func:`scorecard.listed_accounts`: the target account list when one is recorded) with at least one marketing
  touch (SPEC's types) in ``[start, end)``; an anonymous touch (no contact) is no lead.
- **In a target persona**: its title matches one of policy ``leads.personas`` (regular expressions,
  case-insensitive, at word boundaries); no title matches none.
- **In a target geography**: its account's country is one of ``leads.geographies`` (ISO alpha-2, or names of
  ``leads.regions``); no country is outside.
- **Invalid email**: empty, or not of the form ``local@domain.tld`` (one ``@``, no spaces, a dot in the domain
  and a 2+ letter top-level domain).

The **intent list** of a week: the accounts with ``intent_list.min_signals``+ intent rows observed in the week
with score >= ``min_score`` (each topic once when ``distinct_topics``).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from abm_sla.domain import frames
from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy import IntentList, SlaPolicy
from abm_sla.domain.policy.reports import Leads
from abm_sla.domain.scorecard import SlaData

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
LEAD_FACT_COLUMNS = ["contact_id", "account_id", "tier", "owner_id", "title", "email", "country", "in_persona",
                     "persona_judged", "in_geography", "geography_judged", "invalid_email"]
INTENT_LIST_COLUMNS = ["account_id", "account_name", "tier", "owner_id", "signals", "topics", "max_score",
                       "first_observed_at", "last_observed_at"]


def persona_matches(titles: pd.Series, patterns: tuple[str, ...]) -> pd.Series:
    """Whether each title matches one of the persona ``patterns`` (case-insensitive, at word boundaries)."""
    if not patterns:
        return pd.Series(False, index=titles.index)
    joined = "|".join(f"(?:{pattern})" for pattern in patterns)
    found = titles.astype("string").str.contains(rf"\b(?:{joined})\b", case=False, regex=True)
    return found.fillna(False).astype(bool)


def invalid_emails(emails: pd.Series) -> pd.Series:
    """Whether each email is empty or not syntactically an address (:data:`EMAIL`)."""
    text = emails.astype("string").str.strip()
    return ~text.str.match(EMAIL.pattern).fillna(False).astype(bool)


def lead_facts(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """One row per lead of ``[start, end)`` (:data:`LEAD_FACT_COLUMNS`) with its tier and owner (its account's),
    persona, geography and email checks; ``*_judged`` is False when the policy gives no list to judge by."""
    settings = policy.leads if policy.leads is not None else Leads()
    accounts = sc.listed_accounts(data, end)
    acts = data.activities
    touches = acts[acts["type"].isin(frames.MARKETING_TOUCHES) & sc.within(acts["occurred_at"], start, end)
                   & acts["contact_id"].notna()]
    engaged = pd.DataFrame({"contact_id": touches["contact_id"].astype(str),
                            "touch_account": touches["account_id"].astype(str)}).drop_duplicates("contact_id")
    contacts = data.contacts.reindex(columns=list(dict.fromkeys([*frames.CONTACT_COLUMNS, *data.contacts.columns])))
    contacts = contacts.assign(contact_id=contacts["contact_id"].astype(str),
                               account_id=contacts["account_id"].astype(str))
    leads = engaged.merge(contacts[["contact_id", "account_id", "title", "email"]].drop_duplicates("contact_id"),
                          on="contact_id", how="left")
    leads["account_id"] = leads["account_id"].fillna(leads["touch_account"])
    leads = leads.merge(accounts[["account_id", "tier", "owner_id"]], on="account_id", how="inner")
    country = data.accounts.reindex(columns=[*data.accounts.columns.drop("country", errors="ignore"), "country"]
                                    ).assign(account_id=data.accounts["account_id"].astype(str)).drop_duplicates(
        "account_id").set_index("account_id")["country"]
    leads["country"] = leads["account_id"].map(country).astype("string").str.strip().str.upper()
    countries = settings.countries
    leads["in_persona"] = persona_matches(leads["title"], settings.personas).to_numpy()
    leads["persona_judged"] = bool(settings.personas)
    leads["in_geography"] = leads["country"].isin(countries).fillna(False).astype(bool).to_numpy()
    leads["geography_judged"] = bool(countries)
    leads["invalid_email"] = invalid_emails(leads["email"]).to_numpy()
    return leads[LEAD_FACT_COLUMNS].sort_values("contact_id").reset_index(drop=True)


def intent_list(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, settings: IntentList) -> pd.DataFrame:
    """The accounts with ``settings.min_signals``+ intent signals observed in ``[start, end)``
    (:data:`INTENT_LIST_COLUMNS`), most signals first. Rows naming no known account are not listed."""
    intent = data.intent_signals
    score = pd.to_numeric(intent["score"], errors="coerce")
    rows = intent[sc.within(intent["observed_at"], start, end) & (score >= settings.min_score)]
    rows = rows.assign(account_id=rows["account_id"].astype(str),
                       topic=rows["topic"].astype("string").str.strip().str.lower(),
                       score=pd.to_numeric(rows["score"], errors="coerce"))
    if settings.distinct_topics:
        rows = rows.sort_values("observed_at").drop_duplicates(["account_id", "topic"])
    grouped = rows.groupby("account_id")
    out = pd.DataFrame({
        "signals": grouped.size(),
        "topics": grouped["topic"].agg(lambda topics: ", ".join(sorted(set(topics.dropna())))),
        "max_score": grouped["score"].max(),
        "first_observed_at": grouped["observed_at"].min(),
        "last_observed_at": grouped["observed_at"].max(),
    }).reset_index() if len(rows) else pd.DataFrame(columns=["account_id", "signals", "topics", "max_score",
                                                             "first_observed_at", "last_observed_at"])
    out = out[out["signals"] >= settings.min_signals]
    dims = sc.account_dimensions(data)[["account_id", "account_name", "tier", "owner_id"]]
    out = out.merge(dims, on="account_id", how="inner")
    out["signals"] = out["signals"].astype(np.int64)
    return out.sort_values(["signals", "max_score", "account_id"], ascending=[False, False, True])[
        INTENT_LIST_COLUMNS].reset_index(drop=True)
