"""Unifying accounts of two CRMs by normalized domain (pure)."""

from __future__ import annotations

import pandas as pd
import pytest

from abm_sla.crm.unify import rekey, unify_accounts, unify_frames
from abm_sla.domain import frames


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def accounts(rows: list[dict]) -> pd.DataFrame:
    base = dict.fromkeys(frames.ACCOUNT_COLUMNS)
    frame = pd.DataFrame([{**base, **row} for row in rows], columns=frames.ACCOUNT_COLUMNS)
    for column in ("created_at", "updated_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


SF = accounts(
    [
        {"account_id": "001A", "name": "Acme", "domain": "https://www.Acme.com/about", "owner_id": "005X",
         "tier": "Tier 1", "employees": 500.0, "created_at": ts("2025-01-01"), "updated_at": ts("2026-01-01")},
        {"account_id": "001B", "name": "Beta", "domain": "beta.io", "owner_id": "005Y", "tier": None,
         "created_at": ts("2025-02-01"), "updated_at": ts("2026-01-02")},
        {"account_id": "001C", "name": "No Domain Co", "domain": None, "owner_id": "005Y",
         "created_at": ts("2025-03-01")},
    ]
)
HS = accounts(
    [
        {"account_id": "9001", "name": "ACME Inc", "domain": "acme.com.", "owner_id": "77", "tier": "Tier 3",
         "industry": "Software", "employees": 450.0, "created_at": ts("2024-06-01"), "updated_at": ts("2026-02-01")},
        {"account_id": "9002", "name": "Gamma", "domain": "WWW.GAMMA.dev", "owner_id": "78", "tier": "Tier 2",
         "created_at": ts("2025-05-01")},
        {"account_id": "9003", "name": "Beta (dup)", "domain": "http://beta.io", "owner_id": "79", "tier": "Tier 2",
         "created_at": ts("2025-06-01")},
        {"account_id": "9004", "name": "Also no domain", "domain": "", "owner_id": "78"},
    ]
)


def by_name(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("name")


def test_one_account_per_company_by_normalized_domain_and_unmatched_ones_kept():
    unified = unify_accounts({"salesforce": SF, "hubspot": HS})
    out = unified.accounts.set_index("account_id")
    assert sorted(out.index) == ["001A", "001B", "001C", "9002", "9004"]
    assert out.loc["001A", "domain"] == "https://www.Acme.com/about"  # the first source's value
    assert out.loc["001A", "sources"] == ["hubspot", "salesforce"]
    assert out.loc["001A", "industry"] == "Software"  # missing in Salesforce: filled from HubSpot
    assert out.loc["001A", "created_at"] == ts("2024-06-01") and out.loc["001A", "updated_at"] == ts("2026-02-01")
    mapping = {(r.source, r.source_account_id): r.account_id for r in unified.mapping.itertuples()}
    assert mapping == {
        ("salesforce", "001A"): "001A", ("salesforce", "001B"): "001B", ("salesforce", "001C"): "001C",
        ("hubspot", "9001"): "001A", ("hubspot", "9002"): "9002", ("hubspot", "9003"): "001B",
        ("hubspot", "9004"): "9004",
    }


@pytest.mark.parametrize(
    ("owner_from", "tier_from", "acme_owner", "acme_tier", "beta_tier"),
    [
        ("salesforce", "salesforce", "005X", "Tier 1", "Tier 2"),  # Beta has no Salesforce tier: HubSpot's
        ("hubspot", "hubspot", "77", "Tier 3", "Tier 2"),
        ("hubspot", "salesforce", "77", "Tier 1", "Tier 2"),
    ],
)
def test_owner_and_tier_come_from_the_configured_system_of_record(owner_from, tier_from, acme_owner, acme_tier,
                                                                  beta_tier):
    unified = unify_accounts({"salesforce": SF, "hubspot": HS}, owner_from=owner_from, tier_from=tier_from)
    out = unified.accounts.set_index("account_id")
    assert (out.loc["001A", "owner_id"], out.loc["001A", "tier"]) == (acme_owner, acme_tier)
    assert out.loc["001A", "owner_source"] == owner_from
    assert out.loc["001B", "tier"] == beta_tier
    assert out.loc["001A", "name"] == "Acme"  # other attributes follow the priority, not the owner's system


def test_priority_decides_the_id_and_a_clashing_id_gets_its_source_prefix():
    clash = accounts([{"account_id": "001B", "name": "Other", "domain": "other.org"}])
    unified = unify_accounts({"salesforce": SF, "hubspot": clash}, priority=["hubspot", "salesforce"])
    ids = set(unified.accounts["account_id"])
    assert {"001B", "salesforce:001B"} <= ids
    hs_first = unify_accounts({"salesforce": SF, "hubspot": HS}, priority=["hubspot", "salesforce"])
    assert "9001" in set(hs_first.accounts["account_id"]) and "001A" not in set(hs_first.accounts["account_id"])


def test_rekey_moves_child_rows_to_the_unified_account_and_keeps_unknown_ids():
    unified = unify_accounts({"salesforce": SF, "hubspot": HS})
    contacts = pd.DataFrame({"contact_id": ["c1", "c2", "c3"], "account_id": ["9001", "9003", "9999"]})
    assert list(rekey(contacts, "hubspot", unified.mapping)["account_id"]) == ["001A", "001B", "9999"]
    assert list(rekey(contacts, "salesforce", unified.mapping)["account_id"]) == ["9001", "9003", "9999"]


def test_unify_frames_rekeys_every_kind_and_matches_users_by_email():
    users = {
        "salesforce": pd.DataFrame({"user_id": ["005X", "005Y"], "name": ["Ann", "Bo"],
                                    "email": ["Ann@x.io", "bo@x.io"], "active": [True, True]}),
        "hubspot": pd.DataFrame({"user_id": ["77", "78", "79"], "name": ["Ann", "Cy", "Di"],
                                 "email": ["ann@x.io ", "cy@x.io", None], "active": [True, True, False]}),
    }
    activities = {
        "salesforce": pd.DataFrame({"activity_id": ["a1"], "account_id": ["001A"], "type": ["call"],
                                    "occurred_at": [ts("2026-01-05")], "contact_id": ["s1"], "owner_id": ["005X"]}),
        "hubspot": pd.DataFrame({"activity_id": ["a1", "h2"], "account_id": ["9001", "9002"],
                                 "type": ["email_open", "meeting"], "occurred_at": [ts("2026-01-06")] * 2,
                                 "contact_id": ["s1", None], "owner_id": [None, "77"]}),
    }
    contacts = {
        "salesforce": pd.DataFrame({"contact_id": ["s1"], "account_id": ["001A"], "title": ["CEO"]}),
        "hubspot": pd.DataFrame({"contact_id": ["s1"], "account_id": ["9001"], "title": ["CTO"]}),
    }
    by_source = {
        source: {"accounts": acc, "users": users[source], "activities": activities[source],
                 "contacts": contacts[source]}
        for source, acc in (("salesforce", SF), ("hubspot", HS))
    }
    out, mapping = unify_frames(by_source, owner_from="hubspot")

    assert sorted(out["users"]["user_id"]) == ["005X", "005Y", "78", "79"]  # Ann is one person
    acme = out["accounts"].set_index("account_id").loc["001A"]
    assert acme["owner_id"] == "005X"  # HubSpot's owner 77 is Ann, whose unified id is Salesforce's
    assert out["accounts"].set_index("account_id").loc["9002", "owner_id"] == "78"
    acts = out["activities"].set_index("activity_id")
    assert sorted(acts.index) == ["a1", "h2", "hubspot:a1"]
    assert acts.loc["hubspot:a1", "account_id"] == "001A" and acts.loc["hubspot:a1", "contact_id"] == "hubspot:s1"
    assert acts.loc["h2", "owner_id"] == "005X"
    assert sorted(out["contacts"]["contact_id"]) == ["hubspot:s1", "s1"]
    assert set(out["contacts"]["account_id"]) == {"001A"}
    assert len(mapping) == len(SF) + len(HS)
    assert list(out["activities"].columns) == frames.ACTIVITY_COLUMNS


def test_empty_input_gives_empty_frames():
    unified = unify_accounts({"salesforce": frames.empty("accounts")})
    assert unified.accounts.empty and unified.mapping.empty
