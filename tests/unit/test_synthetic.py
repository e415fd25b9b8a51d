"""The synthetic CRM: seeded, shaped like frames.py, realistic enough for the SLA, and a loadable export."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from abm_sla.crm.files.folder import ExportFolder
from abm_sla.domain import frames
from abm_sla.services.synthetic import generate_crm, write_export_folder

SPEC_FILES = {
    "accounts.csv": ["id", "name", "domain", "industry", "employees", "annual_revenue", "country", "owner_id",
                     "tier", "created_at", "updated_at"],
    "contacts.csv": ["id", "account_id", "title", "email", "created_at", "updated_at"],
    "activities.csv": ["id", "account_id", "type", "occurred_at", "contact_id", "owner_id", "url", "subject"],
    "intent.csv": ["account_id", "domain", "topic", "score", "observed_at", "source"],
    "opportunities.csv": ["id", "account_id", "stage", "amount", "created_at", "close_date", "is_closed",
                          "is_won"],
    "users.csv": ["id", "name", "email", "role", "manager_id", "time_zone", "country", "active"],
    "status_changes.csv": ["account_id", "status", "changed_at", "changed_by"],
}
ID_COLUMNS = {"accounts": "account_id", "contacts": "contact_id", "activities": "activity_id",
              "intent_signals": "intent_id", "opportunities": "opportunity_id", "users": "user_id",
              "status_changes": "status_change_id", "target_accounts": "target_account_id", "requests": "request_id"}


@pytest.fixture(scope="module")
def crm() -> dict[str, pd.DataFrame]:
    return generate_crm()


@pytest.fixture(scope="module")
def export(crm, tmp_path_factory) -> Path:
    return write_export_folder(crm, tmp_path_factory.mktemp("export") / "crm")


def test_same_seed_gives_identical_frames():
    first, second = generate_crm(n_accounts=300, seed=11), generate_crm(n_accounts=300, seed=11)
    for kind in frames.COLUMNS:
        pd.testing.assert_frame_equal(first[kind], second[kind])


def test_a_different_seed_gives_different_data():
    first, second = generate_crm(n_accounts=300, seed=1), generate_crm(n_accounts=300, seed=2)
    assert not first["accounts"]["name"].equals(second["accounts"]["name"])
    assert not first["activities"]["occurred_at"].equals(second["activities"]["occurred_at"])


def test_frames_have_the_normalized_columns_and_dtypes(crm):
    assert set(crm) == set(frames.COLUMNS)
    for kind, frame in crm.items():
        assert list(frame.columns) == frames.COLUMNS[kind], kind
        for column in frames.TIMESTAMP_COLUMNS[kind]:
            assert str(frame[column].dtype) == "datetime64[ns, UTC]", (kind, column)
        ids = frame[ID_COLUMNS[kind]]
        assert ids.map(type).eq(str).all() and ids.is_unique, kind
    for kind in ("contacts", "activities", "intent_signals", "opportunities", "status_changes"):
        assert crm[kind]["account_id"].isin(crm["accounts"]["account_id"]).all(), kind


def test_activities_are_valid_and_consistent(crm):
    activities, users = crm["activities"], crm["users"].set_index("user_id")
    assert activities["type"].isin(frames.ACTIVITY_TYPES).all()
    assert activities["occurred_at"].is_monotonic_increasing
    start = pd.Timestamp("2026-01-01", tz="UTC")
    assert activities["occurred_at"].between(start, start + pd.Timedelta(days=90), inclusive="left").all()
    contacts = crm["contacts"].set_index("contact_id")["account_id"]
    with_contact = activities[activities["contact_id"].notna()]
    assert (with_contact["contact_id"].map(contacts) == with_contact["account_id"]).all()
    sales = activities[activities["type"].isin(frames.SALES_TOUCHES)]
    marketing = activities[activities["type"].isin(frames.MARKETING_TOUCHES)]
    assert marketing["owner_id"].isna().all()
    performers = users.loc[sales["owner_id"]]
    assert performers["role"].eq("sales").all() and performers["active"].all()
    visits = marketing[marketing["type"] == "web_visit"]
    assert visits["url"].notna().all() and marketing.loc[marketing["type"] != "web_visit", "url"].isna().all()
    assert 0.2 < visits["contact_id"].isna().mean() < 0.7  # anonymous visits matched to the account
    assert marketing.loc[marketing["type"] != "web_visit", "contact_id"].notna().all()


def test_sales_touches_happen_in_the_performers_business_hours(crm):
    sales = crm["activities"][crm["activities"]["type"].isin(frames.SALES_TOUCHES)]
    zones = sales["owner_id"].map(crm["users"].set_index("user_id")["time_zone"])
    for zone, rows in sales.groupby(zones):
        local = rows["occurred_at"].dt.tz_convert(zone)
        hours = local.dt.hour + local.dt.minute / 60
        assert hours.between(9, 17).all() and (local.dt.weekday < 5).all(), zone


def test_the_data_has_the_shapes_the_sla_needs(crm):
    accounts, users, contacts = crm["accounts"], crm["users"], crm["contacts"]
    tiers = accounts["tier"].value_counts(normalize=True, dropna=False)
    assert 0.06 < tiers["1"] < 0.14 and 0.2 < tiers["2"] < 0.3 and tiers.get(None, 0) > 0.1
    assert set(users["role"]) == {"sales", "manager", "revops", "cro", "marketing", "cmo", "head of sales"}
    assert (users["role"] == "cro").sum() == 1 and 1 <= (users["role"] == "revops").sum() <= 2
    inactive = users[~users["active"]]
    assert list(inactive["role"]) == ["sales"] and accounts["owner_id"].isin(inactive["user_id"]).any()
    assert users["time_zone"].nunique() >= 5
    assert {"US", "CA", "GB", "DE", "FR", "NL", "AU", "BR", "IN", "JP"} <= set(accounts["country"].dropna())
    titles = set(contacts["title"].dropna())
    assert {"VP Sales", "Chief Technology Officer", "Head of IT", "CFO", "Founder"} <= titles
    assert "Vpn Administrator" in titles  # not a VP: the decision-maker rule matches whole words
    counts = contacts.groupby("account_id").size()
    assert counts.min() >= 1 and counts.max() <= 8 and len(counts) == len(accounts)
    urls = crm["activities"]["url"].dropna()
    assert urls.str.contains("/pricing").any() and urls.str.contains("/demo").any()
    intent = crm["intent_signals"]
    assert intent["score"].between(0, 100).all() and (intent["score"] >= 70).mean() > 0.05
    assert set(intent["provider"]) == {"bombora", "g2"}
    status = crm["status_changes"]["status"].value_counts()
    finals = status[["accepted", "rejected", "nurture"]]
    assert 0.03 < finals["rejected"] / finals.sum() < 0.12 and status["working"] > 0
    opportunities = crm["opportunities"]
    assert opportunities["is_won"].any() and (opportunities["is_closed"] & ~opportunities["is_won"]).any()
    open_deals = ~opportunities["is_closed"]
    assert open_deals.any() and not (opportunities["is_won"] & open_deals).any()


def test_intent_rows_reference_accounts_or_their_domains(crm, export):
    intent = pd.read_csv(export / "intent.csv", dtype=str, keep_default_na=False)
    by_domain = intent["account_id"] == ""
    assert 0.15 < by_domain.mean() < 0.25 and (intent.loc[by_domain, "domain"] != "").all()
    known = crm["accounts"]["domain"].str.lower()
    spelled = intent.loc[by_domain, "domain"].str.lower()
    domains = spelled.str.replace(r"^(https?://)?(www\.)?", "", regex=True)
    assert domains.str.rstrip("/").isin(known).all()
    assert intent.loc[~by_domain, "account_id"].isin(crm["accounts"]["account_id"]).all()


def test_the_export_folder_has_the_spec_files_and_columns(export):
    assert sorted(path.name for path in export.iterdir()) == sorted(SPEC_FILES)
    for file, columns in SPEC_FILES.items():
        assert list(pd.read_csv(export / file, nrows=0).columns) == columns, file
    accounts = pd.read_csv(export / "accounts.csv", dtype=str, keep_default_na=False)
    tiers = set(accounts["tier"])
    assert {"1", "Tier 2", " tier 3 ", ""} <= tiers
    stamps = pd.read_csv(export / "activities.csv", dtype=str)["occurred_at"]
    assert stamps.str.endswith("+00:00").mean() > 0.85 and stamps.str.match(r"^\d{4}-\d\d-\d\dT").all()
    assert set(pd.read_csv(export / "users.csv", dtype=str)["active"]) == {"true", "false"}


def test_the_export_loads_cleanly_and_round_trips(crm, export):
    pages = {page.kind: page for page in ExportFolder(export).pages()}
    for kind, page in pages.items():
        assert page.quarantined == [], (kind, page.quarantined[:3])
        assert len(page.rows) == len(crm[kind]), kind
    loaded = pages["activities"].rows.set_index("activity_id")["occurred_at"]
    expected = crm["activities"].set_index("activity_id")["occurred_at"]
    pd.testing.assert_series_equal(loaded.sort_index(), expected.sort_index(), check_names=False)
    intent = pages["intent_signals"].rows
    assert intent["account_id"].value_counts().sort_index().equals(
        crm["intent_signals"]["account_id"].value_counts().sort_index()
    )


def test_dirty_export_adds_rows_of_each_bad_kind(crm, tmp_path):
    folder = write_export_folder(crm, tmp_path / "dirty", dirty=True)
    reasons = {q.reason for page in ExportFolder(folder).pages() for q in page.quarantined}
    for expected in ("unparsable timestamp", "unparsable number", "unknown activity type", "unknown account",
                     "unknown domain", "duplicate id"):
        assert any(reason.startswith(expected) for reason in reasons), expected
    clean = pd.read_csv(tmp_path / "dirty" / "activities.csv", dtype=str)
    assert len(clean) == len(crm["activities"]) + 4


def test_scale_gives_about_the_asked_number_of_signals():
    crm = generate_crm(n_accounts=20_000, signals_per_account=20, seed=3)
    signals = len(crm["activities"]) + len(crm["intent_signals"])
    assert len(crm["accounts"]) == 20_000
    assert 0.9 * 400_000 < signals < 1.1 * 400_000
    assert 2.5 < len(crm["contacts"]) / 20_000 < 4.5


def test_the_feedback_loop_adds_dispositions_reasons_and_owner_changes_and_nothing_else() -> None:
    plain = generate_crm(n_accounts=600, days=90, seed=3)
    crm = generate_crm(n_accounts=600, days=90, seed=3, feedback=True)
    for kind in ("accounts", "contacts", "intent_signals", "opportunities", "users"):
        pd.testing.assert_frame_equal(plain[kind], crm[kind])
    status = crm["status_changes"]
    assert {"Unqualified", "Meeting Held", "Contacted", "Callback Requested", "rejected", "accepted"} <= set(
        status["status"])
    verdicts = status[status["status"].isin(["rejected", "Unqualified"])]
    assert verdicts["reason"].notna().any() and verdicts["reason"].isna().any()
    assert plain["status_changes"]["reason"].isna().all()
    owners = crm["activities"][crm["activities"]["type"] == "owner_assigned"]
    assert len(owners) and owners["owner_id"].notna().all() and owners["contact_id"].isna().all()


def test_sales_acts_on_pending_tier_moves_in_the_crm():
    from abm_sla.domain import tier_moves as tm
    from abm_sla.services.synthetic import sales_tier_decisions

    accounts = pd.DataFrame({"account_id": [f"A{i}" for i in range(40)], "tier": "2",
                             "updated_at": pd.Timestamp("2026-01-01", tz="UTC")})
    at = pd.Timestamp("2026-03-01", tz="UTC")
    ledger = tm.conform(pd.DataFrame({
        "account_id": accounts["account_id"], "recommended_at": pd.Timestamp("2026-02-27", tz="UTC"),
        "rule": "promote_2_to_1", "from_tier": "2", "proposed_tier": "1", "reason": "r", "decision": "pending",
        "evaluated_at": at}))
    after = sales_tier_decisions(accounts, ledger, at, seed=1)
    moved = after["tier"].ne("2")
    assert 0 < moved.sum() < len(after) and set(after.loc[moved, "tier"]) <= {"1", "3"}
    stamps = after.loc[moved, "updated_at"]
    assert (stamps <= at).all() and (stamps > ledger["recommended_at"][0]).all()
    decided = tm.decide(ledger, after, at, tm_rules())
    assert set(decided["decision"]) == {"accepted", "declined", "pending"}


def tm_rules():
    from abm_sla.services.config_files import load_policy

    return load_policy().targets.tier_moves
