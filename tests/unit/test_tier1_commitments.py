"""Tier 1 commitments, the top of the target account list and the Tier 3 watch list (issue 26; implementation
guide, ABM template): each off by default, at its boundaries, through the metrics catalog and the reports."""

from __future__ import annotations

import pandas as pd
import pytest

from abm_sla.domain import commitments as cm
from abm_sla.domain import metrics
from abm_sla.domain import scorecard as sc
from abm_sla.domain import tier_moves as tm
from abm_sla.domain.policy import DEFAULT_PATH, parse_policy
from abm_sla.services import reporting
from abm_sla.services.config_files import load_policy
from tests.unit.builders import frame

Q1 = sc.parse_period("2026-Q1")


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def policy_with(**sections) -> object:
    import yaml

    data = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    for key, value in sections.items():
        if key == "tier_moves":
            data.setdefault("targets", {})["tier_moves"] = value
        else:
            data[key] = value
    return parse_policy(data)


TIER1 = policy_with(tier1_commitments={})


def acts(*rows: tuple) -> pd.DataFrame:
    """(id, account, type, at, contact, owner) rows."""
    return frame("activities", [{"activity_id": r[0], "account_id": r[1], "type": r[2], "occurred_at": t(r[3]),
                                 "contact_id": r[4], "owner_id": r[5], "subject": r[6] if len(r) > 6 else None}
                                for r in rows])


def accounts(*rows: tuple) -> pd.DataFrame:
    """(id, tier, owner) rows."""
    return frame("accounts", [{"account_id": r[0], "name": r[0], "tier": r[1], "owner_id": r[2],
                               "created_at": t("2025-01-01")} for r in rows])


USERS = frame("users", [{"user_id": "U1", "name": "Ann", "role": "sales", "time_zone": "UTC", "country": None,
                         "active": True}])


def test_off_by_default_no_clock_no_section_and_zero_rows():
    policy = load_policy(DEFAULT_PATH)
    assert policy.tier1_commitments is None
    assert policy.target_account_list is None or policy.target_account_list.top_accounts is None
    data = sc.SlaData.of(accounts=accounts(("A", "1", "U1")),
                         activities=acts(("x", "A", "email_open", "2026-02-02T10:00", "C1", None)))
    assert cm.follow_up_clocks(data, Q1[0], Q1[1], policy).empty
    assert cm.conversation_coverage(data, *Q1, Q1[1], policy).empty
    assert cm.top_accounts(data, Q1[1], policy).empty
    report = reporting.build_quarterly(data, "2026-Q1", policy)
    assert not any(section.title == "Tier 1 commitments and top accounts" for section in report.sections)


def test_qualified_conversation_needs_an_engaged_contact_within_the_days_before():
    """C1 engaged 90 days before the call exactly (outside: lookback is (t-90d, t]) -> not qualified; C2 engaged
    the day before -> qualified; a Tier 2 account is not measured."""
    data = sc.SlaData.of(
        accounts=accounts(("A", "1", "U1"), ("B", "1", "U1"), ("C", "2", "U1")),
        activities=acts(("m1", "A", "email_open", "2025-12-02T10:00", "C1", None),
                        ("c1", "A", "call", "2026-03-02T10:00", "C1", "U1"),
                        ("m2", "B", "webinar", "2026-03-01T10:00", "C2", None),
                        ("c2", "B", "meeting", "2026-03-02T10:00", "C2", "U1"),
                        ("m3", "C", "webinar", "2026-03-01T10:00", "C3", None),
                        ("c3", "C", "meeting", "2026-03-02T10:00", "C3", "U1")))
    out = cm.conversation_coverage(data, *Q1, Q1[1], TIER1).set_index("account_id")
    assert list(out.index) == ["A", "B"]
    assert out.loc["A", "conversed"] == False  # noqa: E712 (numpy bool)
    assert out.loc["B", "conversed"] == True  # noqa: E712
    table = metrics.compute(data, *Q1, Q1[1], TIER1)
    assert metrics.value(table, "tier1_conversation_rate") == 50.0
    assert metrics.value(table, "tier1_accounts") == 2
    assert not metrics.BY_ID["tier1_accounts"].additive


def test_sales_follow_up_due_five_business_days_after_the_first_unanswered_touch():
    """Touches Mon 2 Mar 10:00 and Tue 10:00 share one clock (same next sales touch), due Mon 9 Mar 10:00 (40
    business hours); a sales touch exactly at due_at meets it; a later touch (after the answer) opens another clock,
    missed when nothing follows by its due."""
    data = sc.SlaData.of(
        accounts=accounts(("A", "1", "U1")), users=USERS,
        activities=acts(("m1", "A", "email_open", "2026-03-02T10:00", "C1", None),
                        ("m2", "A", "email_click", "2026-03-03T10:00", "C1", None),
                        ("s1", "A", "call", "2026-03-09T10:00", "C1", "U1"),
                        ("m3", "A", "web_visit", "2026-03-10T10:00", None, None)))
    clocks = cm.follow_up_clocks(data, Q1[0], t("2026-03-31"), TIER1)
    assert list(clocks["started_at"]) == [t("2026-03-02T10:00"), t("2026-03-10T10:00")]
    assert list(clocks["due_at"]) == [t("2026-03-09T10:00"), t("2026-03-17T10:00")]
    assert list(clocks["status"]) == ["met", "missed"]
    table = metrics.compute(data, *sc.parse_period("2026-03"), t("2026-03-31"), TIER1)
    assert metrics.value(table, "sales_follow_up_met_rate") == 50.0
    # one nanosecond late is a miss
    late = sc.SlaData.of(accounts=data.accounts, users=USERS, activities=acts(
        ("m1", "A", "email_open", "2026-03-02T10:00", "C1", None),
        ("s1", "A", "call", "2026-03-09T10:00:00.000000001", "C1", "U1")))
    assert list(cm.follow_up_clocks(late, Q1[0], t("2026-03-31"), TIER1)["status"]) == ["missed"]


def test_campaign_research_within_30_days_of_the_start_and_research_before_the_start_does_not_count():
    data = sc.SlaData.of(
        accounts=accounts(("A", "1", "U1"), ("B", "1", "U1"), ("C", "1", "U1")), users=USERS,
        activities=acts(("r0", "C", "account_research", "2026-01-01T09:00", None, "M1"),
                        ("k1", "A", "campaign_start", "2026-01-05T09:00", None, None, "Q1 dinner"),
                        ("k2", "B", "campaign_start", "2026-01-05T09:00", None, None, "Q1 dinner"),
                        ("k3", "C", "campaign_start", "2026-01-05T09:00", None, None, "Q1 dinner"),
                        ("r1", "A", "account_research", "2026-02-04T09:00", None, "M1"),
                        ("r2", "B", "account_research", "2026-02-04T09:00:01", None, "M1")))
    clocks = cm.research_clocks(data, t("2026-03-31"), TIER1).set_index("account_id")
    assert clocks.loc["A", "status"] == "met"          # exactly 30 days
    assert clocks.loc["B", "status"] == "missed"       # one second late
    assert clocks.loc["C", "status"] == "missed"       # research before the start only
    table = metrics.compute(data, *Q1, t("2026-03-31"), TIER1)
    assert metrics.value(table, "campaign_research_met_rate") == pytest.approx(33.3)


TOP = policy_with(target_account_list={"size": {"min": 2, "max": 3},
                                       "top_accounts": {"size": 2, "reach_days": 31, "revisit_days": 60}})


def tal(*rows: tuple) -> pd.DataFrame:
    """(account, priority, agreed_at) rows on the list since 2025."""
    return frame("target_accounts", [{"target_account_id": r[0], "account_id": r[0], "added_at": t("2025-06-01"),
                                      "removed_at": None, "agreed_at": t(r[2]), "agreed_by": "U9",
                                      "priority": r[1]} for r in rows])


def test_top_accounts_by_priority_reached_personally_within_a_month():
    """Priority 1 and 2 are the top 2 (B without priority is last); A reached 31 days minus 1 s before -> reached;
    C reached by a touch without an owner (not personal) -> not reached."""
    at = t("2026-03-31T12:00")
    data = sc.SlaData.of(
        accounts=accounts(("A", "1", "U1"), ("B", "1", "U1"), ("C", "2", "U1")),
        target_accounts=tal(("A", 2.0, "2026-01-30T12:00"), ("B", None, "2026-03-01"), ("C", 1.0, "2026-01-30T12:00")),
        activities=acts(("s1", "A", "call", "2026-02-28T12:00:01", "C1", "U1"),
                        ("s2", "C", "email_sent", "2026-03-30T12:00", "C3", None)))
    top = cm.top_accounts(data, at, TOP)
    assert list(top["account_id"]) == ["C", "A"]
    assert list(top["reached"]) == [False, True]
    table = metrics.compute(data, *sc.parse_period("2026-03"), at, TOP)
    revisit = reporting.top_revisit_table(table, data, top, at, TOP).iloc[0]
    assert revisit["revisit_age_days"] == 60.0 and not revisit["overdue"]   # exactly 60 days: on time
    later = at + pd.Timedelta(seconds=1)
    late = metrics.compute(data, *sc.parse_period("2026-03"), later, TOP)
    assert metrics.row(late, "top_accounts_revisit_age_days")["verdict"] == "missed"
    assert reporting.top_revisit_table(late, data, cm.top_accounts(data, later, TOP), later, TOP).iloc[0]["overdue"]
    assert metrics.value(table, "top_accounts_reached_rate") == 50.0


def test_top_accounts_by_score_without_priority():
    at = t("2026-03-31T12:00")
    history = pd.DataFrame({"account_id": ["A", "B", "B"], "as_of": [t("2026-03-30"), t("2026-03-01"),
                                                                     t("2026-04-01")],
                            "model_version": ["m"] * 3, "total": [40.0, 60.0, 10.0]})
    data = sc.SlaData.of(accounts=accounts(("A", "1", "U1"), ("B", "1", "U1"), ("C", "1", "U1")),
                         target_accounts=tal(("A", None, "2026-03-01"), ("B", None, "2026-03-01"),
                                             ("C", None, "2026-03-01")), score_history=history)
    assert list(cm.top_accounts(data, at, TOP)["account_id"]) == ["B", "A"]   # B's later score is not known yet


@pytest.mark.parametrize(("members", "status"), [(1, "below"), (2, "within"), (3, "within"), (4, "above")])
def test_list_size_checked_against_the_agreed_size_with_a_warning_row(members, status):
    ids = [f"A{i}" for i in range(members)]
    data = sc.SlaData.of(accounts=accounts(*[(i, "1", "U1") for i in ids]),
                         target_accounts=tal(*[(i, None, "2026-03-01") for i in ids]))
    row = cm.list_size_check(data, t("2026-03-31"), TOP).iloc[0]
    assert row["status"] == status and bool(row["warning"]) == (status != "within")
    report = reporting.build_quarterly(data, "2026-Q1", TOP)
    assert any(str(members) in note and "agreed 2-3" in note for note in report.notes) == (status != "within")


def test_watch_list_promotes_3_to_1_on_a_strong_signal_and_briefs_sales():
    """4 buying signals (distinct kinds per day) on a Tier 3 account: Tier 3 -> 1 (before the 3 -> 2 rule); 3
    signals: Tier 3 -> 2; each recommendation is a briefing row only when brief_sales is on."""
    rules = {"promote_3_to_2": {"buying_signals": 2, "within_days": 30}, "promote_3_to_1": {"buying_signals": 4}}
    as_of = t("2026-03-31T12:00")
    signals = [("form_submit", "2026-03-10"), ("webinar", "2026-03-10"), ("form_submit", "2026-03-11"),
               ("webinar", "2026-03-11")]
    rows = [(f"a{i}", "A", kind, day + "T10:00", "C1", None) for i, (kind, day) in enumerate(signals)]
    rows += [(f"b{i}", "B", kind, day + "T10:00", "C2", None) for i, (kind, day) in enumerate(signals[:3])]
    data = sc.SlaData.of(accounts=accounts(("A", "3", "U1"), ("B", "3", "U1")), users=USERS, activities=acts(*rows))
    off = policy_with(tier_moves=rules)
    moves = sc.tier_moves(data, as_of, off).set_index("account_id")
    assert moves.loc["A", "rule"] == "promote_3_to_1" and moves.loc["A", "proposed_tier"] == "1"
    assert moves.loc["B", "rule"] == "promote_3_to_2"
    ledger = tm.advance(tm.empty(), sc.tier_moves(data, as_of, off), data.accounts, as_of, off.targets.tier_moves)
    assert cm.briefings(data, ledger, *Q1, as_of, off).empty
    on = policy_with(tier_moves={**rules, "brief_sales": True})
    brief = cm.briefings(data, ledger, *Q1, as_of, on)
    assert list(brief["account_id"]) == ["A", "B"] and list(brief["proposed_tier"]) == ["1", "2"]
    assert brief["brief"].str.contains("respond once promoted").all()
    with_ledger = sc.SlaData.of(**{**{k: getattr(data, k) for k in ("accounts", "users", "activities")},
                                   "tier_move_recommendations": ledger})
    assert metrics.value(metrics.compute(with_ledger, *Q1, as_of, on), "watch_list_promotions") == 2
    weekly = reporting.build_weekly(with_ledger, "2026-W12", on, as_of=as_of)
    assert len(weekly.tables["briefings"].frame) == 0   # recommended on 31 March, not in week 12
    weekly = reporting.build_weekly(with_ledger, "2026-W14", on, as_of=as_of)
    assert len(weekly.tables["briefings"].frame) == 2


def test_quarterly_and_weekly_reports_show_the_tier1_section_read_from_the_catalog():
    policy = load_policy(DEFAULT_PATH.parent / "presets" / "demo.yaml")
    data = sc.SlaData.of(
        accounts=accounts(("A", "1", "U1")), users=USERS,
        activities=acts(("m1", "A", "email_open", "2026-03-02T10:00", "C1", None),
                        ("c1", "A", "call", "2026-03-03T10:00", "C1", "U1")))
    report = reporting.build_quarterly(data, "2026-Q1", policy)
    summary = report.tables["tier1_commitments"].frame.set_index("commitment")
    assert summary.loc["Tier 1 accounts with a qualified conversation", "value"] == 100.0
    assert summary.loc["Sales contact within the window of a marketing touch", "value"] == 100.0
    weekly = reporting.build_weekly(data, "2026-W10", policy, as_of=t("2026-03-09"))
    periods = weekly.tables["tier1_commitments"].frame
    assert set(periods["period"]) == {"this week", "quarter to date"}
    # the quarterly conversation commitment: quarter to date only, never a week's figure
    assert set(periods.loc[periods["commitment"].str.contains("qualified"), "period"]) == {"quarter to date"}
    monthly = reporting.build_monthly(data, "2026-03", policy)
    assert "tier1_commitments" in monthly.tables and "top_accounts_unreached" in monthly.tables
