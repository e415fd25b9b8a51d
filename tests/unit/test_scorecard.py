"""Scorecard numbers on a hand-built CRM + warehouse dataset (every expected number worked out by hand)."""

from __future__ import annotations

import pandas as pd
import pytest

from abm_sla.domain import metrics
from abm_sla.domain import scorecard as sc
from abm_sla.errors import AbmSlaError
from abm_sla.services.config_files import load_model, load_policy

POLICY = load_policy()
DECISION_MAKERS = load_model().decision_maker_pattern
Q1 = sc.parse_period("2026-Q1")
W10 = sc.parse_period("2026-W10")  # Mon 2026-03-02 .. Mon 2026-03-09


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


NAT = pd.NaT


def frame(columns: str, rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns.split())


def sample_data() -> sc.SlaData:
    """Nine accounts, six MQAs (two in 2025-Q4), clocks, escalations, opportunities and activities."""
    users = frame("user_id name role manager_id time_zone country active", [
        ("U1", "Ann", "sales", "M1", "UTC", None, True), ("U2", "Bob", "sales", "M1", "UTC", None, True),
        ("U3", "Cat", "sales", "M1", "UTC", None, True), ("R1", "Rita", "revops", None, "UTC", None, True),
        ("M1", "Max", "manager", None, "UTC", None, True),
    ])
    created = t("2025-06-01")
    accounts = frame("account_id name tier owner_id created_at", [
        ("A1", "Acme", "Tier 1", "U1", created), ("A2", "Beta", "2", "U2", created),
        ("A3", "Cyan", None, "U1", created), ("A4", "Delta", "1", "U2", created),
        ("A5", "Echo", "Tier 3", "U3", created), ("A6", "Fox", "2", "U3", created),
        ("A7", "Golf", "1", "U3", created), ("A8", "Hotel", "2", "U3", created),
        ("A9", "India", "2", "U3", created),
    ])
    activities = frame("activity_id account_id type occurred_at contact_id owner_id url", [
        ("a1", "A1", "email_open", t("2026-03-01 10:00"), "c1", None, None),
        ("a2", "A1", "call", t("2026-03-02 11:00"), None, "U1", None),
        ("a3", "A4", "call", t("2026-01-05 10:00"), None, "U2", None),
        ("a4", "A4", "web_visit", t("2026-03-05 10:00"), "c4a", None, "https://acme.com/blog"),
        ("a5", "A4", "webinar", t("2026-03-06 07:00"), "c4b", None, None),
        ("a6", "A4", "call", t("2026-03-09 10:00"), None, "U2", None),
        ("a7", "A2", "call", t("2026-01-15 10:00"), None, "U2", None),
        ("a8", "A2", "web_visit", t("2026-01-20 10:00"), None, None, "https://acme.com/pricing"),
        ("a9", "A2", "call", t("2026-03-03 10:00"), None, "U2", None),
        ("a10", "A9", "call", t("2025-11-01 10:00"), None, "U3", None),
        ("a11", "A8", "call", t("2025-10-20 10:00"), None, "U3", None),
        ("a12", "A7", "email_open", t("2025-12-30 10:00"), "c7", None, None),
        ("a13", "A5", "form_submit", t("2026-03-01 10:00"), "c5", None, None),
        ("a14", "A5", "web_visit", t("2026-03-02 10:00"), "c5", None, "https://acme.com/demo?x=1"),
        ("a15", "A6", "email_open", t("2026-03-01 10:00"), "c6a", None, None),
        ("a16", "A6", "email_click", t("2026-03-02 10:00"), "c6b", None, None),
        ("a17", "A3", "email_open", t("2026-03-03 07:00"), "c3", None, None),
        ("a18", "A3", "call", t("2026-03-04 10:00"), None, "U1", None),
    ])
    status = frame("status_change_id account_id status changed_at", [
        ("s1", "A1", "accepted", t("2026-03-03 09:00")), ("s2", "A1", "Rejected", t("2026-03-21 09:00")),
        ("s3", "A2", "rejected", t("2026-03-03 12:00")), ("s4", "A3", "working", t("2026-03-06 12:00")),
        ("s5", "A4", "accepted", t("2026-03-09 12:00")),
    ])
    opportunities = frame("opportunity_id account_id amount created_at close_date is_closed is_won", [
        ("O1", "A1", 1000.0, t("2026-03-05"), t("2026-03-25"), True, True),
        ("O2", "A4", 500.0, t("2026-01-10"), t("2026-02-10"), True, False),
        ("O3", "A2", 2000.0, t("2026-02-01"), t("2026-03-03"), True, True),
        ("O9", "A9", 300.0, t("2026-01-05"), NAT, False, False),
    ])
    mqas = frame("account_id trigger_at tier owner_id routed_at ended_at", [
        ("A2", t("2025-11-03 08:00"), 2, "U2", t("2025-11-03 10:00"), NAT),
        ("A6", t("2025-11-10 08:00"), 2, "U3", t("2025-11-10 10:00"), NAT),
        ("A1", t("2026-03-02 08:00"), 1, "U1", t("2026-03-02 10:00"), NAT),
        ("A2", t("2026-03-02 08:00"), 2, "U2", t("2026-03-02 10:00"), t("2026-03-03 12:00")),
        ("A3", t("2026-03-03 08:00"), 3, "U1", t("2026-03-03 10:00"), NAT),
        ("A4", t("2026-03-06 08:00"), 1, "U2", t("2026-03-06 16:00"), NAT),
        ("A1", t("2026-03-20 08:00"), 1, "U1", t("2026-03-20 10:00"), t("2026-03-21 09:00")),
    ])
    clocks = frame("account_id trigger_at clock status due_at met_at owner_id tier", [
        ("A2", t("2025-11-03 08:00"), "first_touch", "missed", t("2025-11-03 14:00"), NAT, "U2", 2),
        ("A6", t("2025-11-10 08:00"), "first_touch", "met", t("2025-11-10 14:00"), t("2025-11-10 11:00"), "U3", 2),
        ("A1", t("2026-03-02 08:00"), "routing_time", "met", t("2026-03-03 08:00"), t("2026-03-02 10:00"), "U1", 1),
        ("A1", t("2026-03-02 08:00"), "first_touch", "met", t("2026-03-02 12:00"), t("2026-03-02 11:00"), "U1", 1),
        ("A1", t("2026-03-02 08:00"), "status_update", "met", t("2026-03-04 10:00"), t("2026-03-03 09:00"), "U1", 1),
        ("A1", t("2026-03-02 08:00"), "cadence", "pending", t("2026-03-16 10:00"), NAT, "U1", 1),
        ("A2", t("2026-03-02 08:00"), "routing_time", "met", t("2026-03-03 08:00"), t("2026-03-02 10:00"), "U2", 2),
        ("A2", t("2026-03-02 08:00"), "first_touch", "missed", t("2026-03-02 14:00"), t("2026-03-03 10:00"), "U2", 2),
        ("A2", t("2026-03-02 08:00"), "status_update", "met", t("2026-03-04 10:00"), t("2026-03-03 12:00"), "U2", 2),
        ("A3", t("2026-03-03 08:00"), "routing_time", "met", t("2026-03-04 08:00"), t("2026-03-03 10:00"), "U1", 3),
        ("A3", t("2026-03-03 08:00"), "first_touch", "met", t("2026-03-06 10:00"), t("2026-03-04 10:00"), "U1", 3),
        ("A3", t("2026-03-03 08:00"), "status_update", "missed", t("2026-03-05 10:00"), t("2026-03-06 12:00"), "U1", 3),
        ("A4", t("2026-03-06 08:00"), "first_touch", "met", t("2026-03-09 10:00"), t("2026-03-09 10:00"), "U2", 1),
        ("A1", t("2026-03-20 08:00"), "first_touch", "missed", t("2026-03-20 12:00"), NAT, "U1", 1),
    ])
    escalations = frame("account_id trigger_at level to_user_id opened_at owner_id clock steps_taken resolution", [
        ("A2", t("2026-03-02 08:00"), 1, "R1", t("2026-03-02 14:00"), "U2", "first_touch", "", "call"),
        ("A1", t("2026-03-20 08:00"), 1, "R1", t("2026-03-20 12:00"), "U1", "first_touch", "", "call"),
        ("A1", t("2026-03-20 08:00"), 2, "M1", t("2026-03-24 12:00"), "U1", "first_touch", "level 1", "call"),
    ])
    contacts = frame("contact_id account_id title", [
        ("c5", "A5", "Analyst"), ("c6a", "A6", "VP Marketing"), ("c6b", "A6", "Marketing  manager"),
    ])
    return sc.SlaData.of(users=users, accounts=accounts, activities=activities, status_changes=status,
                         opportunities=opportunities, mqas=mqas, sla_clocks=clocks, escalations=escalations,
                         contacts=contacts)


@pytest.fixture(scope="module")
def data() -> sc.SlaData:
    return sample_data()


def row(frame_: pd.DataFrame, **where) -> pd.Series:
    mask = pd.Series(True, index=frame_.index)
    for key, value in where.items():
        mask &= frame_[key] == value
    assert mask.sum() == 1, f"expected one row for {where}, got {mask.sum()}"
    return frame_[mask].iloc[0]


# --- periods -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "start", "end"), [
    ("2026-W14", "2026-03-30", "2026-04-06"),
    ("2026w01", "2025-12-29", "2026-01-05"),
    ("2026-03", "2026-03-01", "2026-04-01"),
    ("2026-Q1", "2026-01-01", "2026-04-01"),
    ("2026-q4", "2026-10-01", "2027-01-01"),
    ("2026", "2026-01-01", "2027-01-01"),
])
def test_parse_period(text, start, end):
    assert sc.parse_period(text) == (t(start), t(end))


@pytest.mark.parametrize("text", ["2026-W54", "2026-13", "2026-Q5", "last week", ""])
def test_parse_period_rejects(text):
    with pytest.raises(AbmSlaError, match="period"):
        sc.parse_period(text)


# --- marketing -------------------------------------------------------------------------------------------

def test_verdicts_are_bounded_by_the_next_mqa(data):
    outcomes = sc.mqa_outcomes(data, Q1[1], POLICY).set_index(["account_id", "trigger_at"])
    assert outcomes.loc[("A1", t("2026-03-02 08:00")), "verdict"] == "accepted"
    assert outcomes.loc[("A1", t("2026-03-20 08:00")), "verdict"] == "rejected"  # case-insensitive status
    assert pd.isna(outcomes.loc[("A2", t("2025-11-03 08:00")), "verdict"])  # its rejection belongs to the next MQA
    assert outcomes.loc[("A1", t("2026-03-02 08:00")), "opportunity_id"] == "O1"
    assert outcomes.loc[("A1", t("2026-03-02 08:00")), "won"]
    assert not outcomes.loc[("A4", t("2026-03-06 08:00")), "converted"]  # O2 was created before the trigger


def test_outcomes_are_point_in_time(data):
    outcomes = sc.mqa_outcomes(data, t("2026-03-04"), POLICY).set_index(["account_id", "trigger_at"])
    assert ("A1", t("2026-03-20 08:00")) not in outcomes.index
    assert not outcomes.loc[("A1", t("2026-03-02 08:00")), "converted"]  # O1 created 03-05


def test_marketing_quality_per_tier_and_band(data):
    quality = sc.marketing_quality(sc.mqa_outcomes(data, Q1[1], POLICY), *Q1, POLICY)
    tier1 = row(quality, tier=1)
    assert (tier1["mqas"], tier1["accepted"], tier1["rejected"]) == (3, 2, 1)
    assert tier1["acceptance_pct"] == 66.7 and tier1["rejection_pct"] == 33.3
    assert tier1["mqa_to_opportunity_pct"] == 33.3
    assert row(quality, tier=3)["rejection_band"] == "no verdict yet"  # its one MQA has none: no judgement
    total = row(quality, tier="all")
    assert (total["mqas"], total["accepted"], total["rejected"], total["no_verdict"]) == (5, 2, 2, 1)
    assert total["rejection_pct"] == 50.0  # of the 4 verdicts
    assert total["rejection_band"] == "above band: hand-off too loose"


def test_marketing_quality_per_owner(data):
    quality = sc.marketing_quality(sc.mqa_outcomes(data, Q1[1], POLICY), *Q1, POLICY, by="owner_id")
    assert row(quality, owner_id="U2")["rejection_pct"] == 50.0
    assert row(quality, owner_id="U1")["mqas"] == 3


def test_mqa_volume_prorates_commitments_to_the_week(data):
    volume = metrics.mqa_volume(data, *W10, W10[1], POLICY)
    tier1 = row(volume, tier=1, month="2026-03")
    assert tier1["mqas"] == 2
    assert tier1["commitment"] == round(10 * 7 / 31, 1)
    assert tier1["met"] is False or tier1["met"] == False  # noqa: E712 - numpy bool
    quarter = metrics.mqa_volume(data, *Q1, Q1[1], POLICY)
    assert len(quarter) == 9 and row(quarter, tier=2, month="2026-01")["mqas"] == 0


def test_engagement_and_multi_stakeholder(data):
    engaged = sc.engagement(data, *Q1)
    assert row(engaged, tier=1)[["accounts", "engaged", "multi_stakeholder"]].tolist() == [3, 2, 1]
    assert row(engaged, tier=2)[["engagement_pct", "multi_stakeholder_pct"]].tolist() == [50.0, 25.0]
    assert row(engaged, tier="all")[["accounts", "engaged", "engagement_pct"]].tolist() == [9, 6, 66.7]


# --- sales -------------------------------------------------------------------------------------------------

def test_clock_compliance_for_the_week(data):
    compliance = sc.clock_compliance(data, *W10, POLICY)
    assert len(compliance) == 16  # 3 tiers + all, 4 clocks each
    first = row(compliance, tier=2, clock="first_touch")
    assert (first["met"], first["missed"], first["met_pct"], first["target_pct"]) == (0, 1, 0.0, 90.0)
    assert first["on_target"] == False  # noqa: E712
    assert row(compliance, tier="all", clock="first_touch")["met_pct"] == 66.7
    assert row(compliance, tier=3, clock="status_update")["missed"] == 1
    assert pd.isna(row(compliance, tier=1, clock="cadence")["met_pct"])  # cadence is due in W12


def test_response_times_in_business_hours(data):
    responses = sc.response_times(data, *Q1, POLICY).set_index(["account_id", "trigger_at"])["response_bh"]
    assert responses[("A4", t("2026-03-06 08:00"))] == 2.0  # Fri 16:00 → Mon 10:00 over the weekend
    assert responses[("A2", t("2026-03-02 08:00"))] == 8.0
    assert pd.isna(responses[("A1", t("2026-03-20 08:00"))])
    summary = sc.response_summary(sc.response_times(data, *Q1, POLICY), POLICY)
    tier1 = row(summary, tier=1)
    assert (tier1["answered"], tier1["unanswered"], tier1["median_bh"], tier1["p90_bh"]) == (2, 1, 1.5, 1.9)
    assert tier1["window"] == "2 business hours"
    assert tier1["before_routing"] == 0
    early = sc.response_times(data, *Q1, POLICY).assign(routed_at=t("2026-12-31"))  # every touch came first
    assert row(sc.response_summary(early, POLICY), tier=1)["before_routing"] == 2


def test_progression_of_accepted(data):
    progression = sc.progression(sc.mqa_outcomes(data, Q1[1], POLICY), *Q1)
    assert row(progression, tier=1)[["accepted", "opportunity", "won", "to_won_pct"]].tolist() == [2, 1, 1, 50.0]


# --- joint ---------------------------------------------------------------------------------------------------

def test_pipeline_attribution(data):
    pipeline = sc.pipeline_attribution(data, *Q1, POLICY)
    total = pipeline[pipeline["tier"] == "all"].set_index("attribution")
    assert total.loc["marketing-sourced", ["opportunities", "amount"]].tolist() == [1, 1000.0]
    assert total.loc["marketing-influenced", ["opportunities", "amount", "from_mqa"]].tolist() == [2, 3000.0, 2]
    assert total.loc["sales-sourced", ["opportunities", "amount", "from_mqa"]].tolist() == [2, 800.0, 0]
    assert total.loc["sales-first, marketing-influenced", ["opportunities", "amount"]].tolist() == [1, 2000.0]
    partition = ["marketing-sourced", "sales-first, marketing-influenced", "sales-sourced"]
    assert total.loc[partition, "opportunities"].sum() == total.loc["all", "opportunities"] == 4


def test_win_rates_and_cycle(data):
    rates = sc.win_rates(data, *Q1, Q1[1], POLICY)
    tier1 = row(rates, tier=1)
    assert (tier1["closed"], tier1["won"], tier1["win_rate_pct"], tier1["win_rate_target_pct"]) == (2, 1, 50.0, 25.0)
    total = row(rates, tier="all")
    assert (total["win_rate_pct"], total["win_rate_target_pct"], total["median_cycle_days"]) == (66.7, 30.0, 25.0)
    assert total["cycle_on_target"] in (True,) and not pd.isna(total["cycle_on_target"])  # 25 < 120 days
    assert tier1["sample"] == "small: fewer than 10 closed"  # 2 deals: an anecdote, and the table says so


# --- commitments -------------------------------------------------------------------------------------------

def test_chronic_misses_and_diagnosis(data):
    chronic = sc.chronic_misses(data, Q1[1], Q1[1], POLICY)
    tier2 = row(chronic, commitment="first_touch_met_pct", tier=2)
    assert tier2["chronic"] and tier2["action"] == "renegotiate"
    assert tier2["previous_value"] == 50.0 and tier2["value"] == 0.0
    assert tier2["diagnosis"].startswith("system problem")
    tier1 = row(chronic, commitment="first_touch_met_pct", tier=1)
    assert tier1["missed"] and not tier1["chronic"]  # no tier 1 clocks in 2025-Q4
    assert tier1["diagnosis"] == "coaching matter: 1 of 2 owners (U1)"
    rejection = row(chronic, commitment="rejection_pct")
    assert rejection["value"] == 50.0 and rejection["missed"]
    # 2025-Q4's MQA has no verdict: its rejection rate is unknown, so no "two quarters in a row"
    assert pd.isna(rejection["previous_value"]) and not rejection["chronic"]
    assert not row(chronic, commitment="tier1_win_rate_pct")["missed"]
    assert row(chronic, commitment="mqa_volume", tier=1)["chronic"]


# --- weekly dashboard --------------------------------------------------------------------------------------

def test_misses_by_owner_and_account(data):
    misses = sc.clock_misses(data, *W10)
    assert misses[["owner_name", "account_name", "clock"]].values.tolist() == [
        ["Ann", "Cyan", "status_update"], ["Bob", "Beta", "first_touch"]]


def test_open_escalations(data):
    during = sc.open_escalations(data, t("2026-03-25"))
    assert during.empty  # A1's second episode ended 03-21
    on_friday = sc.open_escalations(data, t("2026-03-20 18:00"))
    assert on_friday[["account_id", "level", "recipients"]].values.tolist() == [["A1", 1, "Rita"]]
    first_day = sc.open_escalations(data, t("2026-03-02 20:00"))
    assert first_day["account_name"].tolist() == ["Beta"]


def test_tier_moves(data):
    moves = sc.tier_moves(data, W10[1], POLICY, DECISION_MAKERS).set_index("account_id")
    assert moves["proposed_tier"].to_dict() == {"A8": "off list", "A7": "2", "A5": "2", "A6": "1"}
    assert moves.loc["A5", "reason"] == "2 buying signals in 30 days (>= 2)"
    assert moves.loc["A6", "reason"] == "2 roles engaged (>= 2), 1 decision-maker(s)"
    assert moves.loc["A7", "rule"] == "demote_1_to_2"
    assert moves.loc["A7", "reason"].startswith("Tier 1: no activity for ")  # its last email open
    assert moves.loc["A8", "reason"].startswith("no activity for ")  # its last call
    never = sc.SlaData.of(**{**vars(data), "activities": data.activities[data.activities["account_id"] != "A8"]})
    assert sc.tier_moves(never, W10[1], POLICY).set_index("account_id").loc["A8", "reason"].startswith(
        "no activity since the activity records begin, 128 days")  # created 2025-06-01, records from 2025-11-01
    young = sc.SlaData.of(**{**vars(never), "accounts": never.accounts.assign(
        created_at=never.accounts["created_at"].where(never.accounts["account_id"] != "A8", t("2025-11-05")))})
    assert sc.tier_moves(young, W10[1], POLICY).set_index("account_id").loc["A8", "reason"].startswith(
        "no activity on record since the account was created, 124 days")
    assert "A9" not in moves.index  # inactive but with open pipeline


def test_tier_moves_follow_the_policy():
    policy = POLICY.model_copy(update={"targets": POLICY.targets.model_copy(update={"tier_moves": None})})
    assert sc.tier_moves(sample_data(), W10[1], policy).empty


def test_compliance_trend(data):
    trend = sc.compliance_trend(data, *W10, POLICY)
    assert trend["week"].unique().tolist() == ["2026-W10"]
    assert row(trend, clock="routing_time")["met_pct"] == 100.0


def test_a_report_as_of_a_moment_knows_no_later_touch_and_says_when_clocks_were_evaluated():
    clocks = frame("account_id trigger_at clock status due_at met_at owner_id tier as_of", [
        ("A1", t("2026-03-02"), "first_touch", "missed", t("2026-03-03"), t("2026-03-10"), "U1", 1, t("2026-03-12")),
        ("A2", t("2026-03-02"), "first_touch", "met", t("2026-03-03"), t("2026-03-02 12:00"), "U1", 1,
         t("2026-03-12")),
    ])
    data = sc.SlaData.of(sla_clocks=clocks)
    known = data.known_by(t("2026-03-05")).sla_clocks.set_index("account_id")["met_at"]
    assert pd.isna(known["A1"]) and known["A2"] == t("2026-03-02 12:00")
    assert data.clocks_evaluated_at() == t("2026-03-12")
    assert sc.SlaData.of().clocks_evaluated_at() is None


def test_a_quarter_without_data_before_it_flags_nothing_chronic(data):
    first = sc.SlaData.of(**{**vars(data), "mqas": data.mqas[data.mqas["trigger_at"] >= Q1[0]]})
    chronic = sc.chronic_misses(first, Q1[1], Q1[1], POLICY)
    assert set(chronic["previous_quarter"]) == {"2025-Q4 (no data)"}
    assert chronic["previous_value"].isna().all() and not chronic["chronic"].any()
    assert chronic["missed"].any()  # this quarter's misses are still shown
