"""Issue 26: outreach collisions, content before sales' first touch, the campaign calendar per tier and the
quarterly review's attendance (abm_sla.domain.coordination), at their boundaries, and through the catalog."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from abm_sla.domain import coordination as co
from abm_sla.domain import frames
from abm_sla.domain import metrics as catalog
from abm_sla.domain.policy import parse_policy
from abm_sla.domain.policy.teams import CampaignPlan, ContentSupport, Coordination, ReviewAttendance
from abm_sla.domain.scorecard import SlaData
from abm_sla.errors import ConfigError
from abm_sla.services.config_files import load_policy

START, END = pd.Timestamp("2026-03-02", tz="UTC"), pd.Timestamp("2026-03-09", tz="UTC")
AS_OF = pd.Timestamp("2026-04-01", tz="UTC")


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def activities(*rows: tuple) -> pd.DataFrame:
    """(activity_id, account_id, type, occurred_at, contact_id[, subject])."""
    frame = pd.DataFrame([(*row, None)[:6] for row in rows],
                         columns=["activity_id", "account_id", "type", "occurred_at", "contact_id", "subject"])
    return frame.assign(occurred_at=pd.to_datetime(frame["occurred_at"], utc=True, format="mixed"), owner_id="U1")


ACCOUNTS = pd.DataFrame({"account_id": ["A", "B", "C"], "tier": ["Tier 1", "2", None], "owner_id": ["U1", "U2", None]})


def test_a_collision_is_the_same_contact_within_the_window_either_side() -> None:
    acts = activities(
        ("s1", "A", "call", "2026-03-03 10:00", "c1"),
        ("m1", "A", "email_open", "2026-03-04 10:00", "c1"),      # exactly 24 h after s1: collides
        ("s2", "A", "meeting", "2026-03-05 10:00", "c2"),
        ("m2", "A", "email_click", "2026-03-05 09:00", "c1"),     # another contact: no collision
        ("m6", "A", "web_visit", "2026-03-03 11:00", "c1"),       # the contact's own visit: not a message
        ("s3", "B", "email_sent", "2026-03-06 10:00", None),
        ("m3", "B", "ad_click", "2026-03-05 09:59", "x"),          # 24 h 01 min before, account-level: no
        ("s4", "B", "call", "2026-03-08 12:00", None),
        ("m4", "B", "email_click", "2026-03-08 01:00", "x"),      # no contact on the sales side: the account
        ("s5", "C", "call", "2026-03-09 00:00", None),             # the period's end: not in the week
        ("m5", "C", "email_open", "2026-03-09 01:00", None),
    )
    found = co.collisions(acts, START, END, AS_OF, Coordination())
    assert found[["sales_activity_id", "marketing_activity_id", "gap_hours"]].values.tolist() == [
        ["s1", "m1", 24.0], ["s4", "m4", 11.0]]
    narrow = co.collisions(acts, START, END, AS_OF, Coordination(window_hours=23.99))
    assert narrow["sales_activity_id"].tolist() == ["s4"]
    # a marketing touch after as_of is not known yet
    assert co.collisions(acts, START, END, at("2026-03-04 09:00"), Coordination()).empty
    facts = co.collision_facts(acts, ACCOUNTS, START, END, AS_OF, Coordination())
    assert facts[["account_id", "tier", "collided"]].values.tolist() == [
        ["A", 1, True], ["A", 1, False], ["B", 2, False], ["B", 2, True]]
    assert co.collision_facts(acts, ACCOUNTS, START, END, AS_OF, None).empty


def test_content_coverage_looks_back_from_sales_first_touch() -> None:
    mqas = pd.DataFrame({"account_id": ["A", "B", "C", "A"], "tier": [1.0, 2.0, 3.0, 1.0],
                         "owner_id": ["U1", "U2", None, "U1"],
                         "trigger_at": [at("2026-03-02"), at("2026-03-03"), at("2026-03-04"), at("2026-04-02")],
                         "ended_at": pd.to_datetime([pd.NaT] * 4, utc=True)})
    acts = activities(
        ("d1", "A", "content_download", "2026-02-20", "c1"),
        ("s1", "A", "call", "2026-03-02 12:00", "c1"),
        ("d2", "B", "content_download", "2026-03-05", "c1"),   # after sales' first touch: not covering
        ("s2", "B", "call", "2026-03-04", "c1"),
        ("d3", "C", "content_download", "2025-12-04", "c1"),   # exactly 90 days before as_of: outside
    )
    rows = co.content_coverage(mqas, acts, START - pd.Timedelta(days=1), END, at("2026-03-04"), ContentSupport())
    assert rows[["account_id", "covered"]].values.tolist() == [["A", True], ["B", False], ["C", False]]
    assert rows["first_sales_touch_at"].tolist()[:2] == [at("2026-03-02 12:00"), at("2026-03-04")]
    wider = co.content_coverage(mqas, acts, START - pd.Timedelta(days=1), END, at("2026-03-04"),
                                ContentSupport(lookback_days=91))
    assert wider["covered"].tolist() == [True, False, True]
    assert co.content_coverage(mqas, acts, START, END, AS_OF, None).empty


def test_campaign_calendar_per_tier_flags_tiers_without_one() -> None:
    acts = activities(
        ("k1", "A", "campaign_start", "2026-01-05", None, "Q1 Tier 1 dinner"),
        ("k2", "B", "campaign_start", "2026-02-05", None, " Q1 Tier 1 dinner "),
        ("k3", "A", "campaign_start", "2026-04-01", None, "Q2 ads"),    # next quarter
        ("k4", "A", "campaign_start", "2026-03-05", None, ""),
    )
    quarter = (at("2026-01-01"), at("2026-04-01"))
    calendar = co.campaign_calendar(acts, ACCOUNTS, *quarter, AS_OF)
    assert calendar[["campaign", "tier", "accounts_started"]].values.tolist() == [
        ["Q1 Tier 1 dinner", 1, 1], ["(unnamed)", 1, 1], ["Q1 Tier 1 dinner", 2, 1]]
    tiers = co.campaign_tiers(calendar, CampaignPlan())
    assert tiers.values.tolist() == [[1, 2, False], [2, 1, False], [3, 0, True]]
    assert co.campaign_tiers(calendar, CampaignPlan(tiers=[1])).values.tolist() == [[1, 2, False]]
    assert co.campaign_tiers(calendar, None).empty
    plan = CampaignPlan(campaigns={" Q1 Tier 1 dinner ": {"tiers": [1], "personas": ["CFO"]},
                                   "Q1 Tier 3 nurture": {"tiers": [3]}})
    checked = co.plan_check(calendar, plan)
    assert checked[co.PLAN_COLUMNS].values.tolist() == [
        ["Q1 Tier 1 dinner", "1", "CFO", "1, 2", 2, co.OFF_PLAN], ["Q1 Tier 3 nurture", "3", "", "", 0, co.NOT_STARTED],
        ["(unnamed)", "", "", "1", 1, co.UNPLANNED]]
    assert co.plan_check(calendar, CampaignPlan()).empty


def test_attendance_per_side_and_the_absent_side() -> None:
    rows = pd.DataFrame({"period": ["2026-Q1", "2026-Q1", "2025-Q4"], "side": ["marketing", "marketing", "sales"],
                         "name": ["Sam", "Jenna", "Dana"]})
    shown = co.attendance(rows, "2026-Q1", ReviewAttendance())
    assert shown.values.tolist() == [["sales", False, ""], ["marketing", True, "Jenna, Sam"]]
    assert co.absent_sides(shown, ReviewAttendance()) == ["sales"]
    only_marketing = co.attendance(rows, "2026-Q1", ReviewAttendance(required=["marketing"]))
    assert co.absent_sides(only_marketing, ReviewAttendance(required=["marketing"])) == []
    assert co.attendance(rows, "2026-Q1", None).empty


def test_the_catalog_counts_them_and_the_policy_keys_are_off_by_default() -> None:
    default = load_policy()
    assert (default.coordination, default.content_support, default.campaign_plan,
            default.review_attendance) == (None, None, None, None)
    demo = load_policy("config/presets/demo.yaml")
    assert None not in (demo.coordination, demo.content_support, demo.campaign_plan, demo.review_attendance)
    with pytest.raises(ConfigError, match=r"coordination\.marketing_types"):
        parse_policy({**yaml.safe_load(Path("config/presets/demo.yaml").read_text(encoding="utf-8")),
                      "coordination": {"marketing_types": ["call"]}})
    acts = activities(("s1", "A", "call", "2026-03-03 10:00", "c1"),
                      ("m1", "A", "email_open", "2026-03-03 12:00", "c1"),
                      ("s2", "B", "call", "2026-03-03 10:00", "c9"),
                      ("k1", "A", "campaign_start", "2026-03-03", None, "Q1"))
    attendance = pd.DataFrame({"period": ["2026-Q1"], "side": ["marketing"], "name": ["Sam"],
                               "recorded_at": [AS_OF]})
    full = {kind: frame.reindex(columns=frames.COLUMNS[kind])
            for kind, frame in (("accounts", ACCOUNTS.assign(created_at=at("2025-01-01"))), ("activities", acts))}
    data = SlaData.of(**full,
                      review_attendance=attendance)
    week = catalog.compute(data, START, END, AS_OF, demo)
    assert catalog.value(week, "outreach_collisions") == 1
    assert catalog.value(week, "outreach_collision_rate") == 50.0
    assert catalog.value(week, "outreach_collision_rate", "tier=1") == 100.0
    quarter = catalog.compute(data, at("2026-01-01"), at("2026-04-01"), AS_OF, demo)
    assert catalog.value(quarter, "campaigns_per_tier", "tier=1") == 1
    assert catalog.value(quarter, "tiers_without_campaign") == 2
    assert catalog.value(quarter, "review_sides_absent") == 1
    assert catalog.value(quarter, "planned_campaigns_not_started") == 3  # the demo's plan: none is "Q1"
    assert catalog.value(quarter, "campaigns_off_plan") == 1
    off = catalog.compute(data, at("2026-01-01"), at("2026-04-01"), AS_OF, default)
    assert catalog.value(off, "outreach_collisions") == 0 and catalog.value(off, "tiers_without_campaign") == 0
    assert catalog.value(off, "review_sides_absent") == 0
