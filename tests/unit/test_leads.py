"""Lead-level measures, the weekly intent list and the monthly review's patterns, lists and decisions, at their
boundaries."""

from __future__ import annotations

import pandas as pd
import pytest

from abm_sla.domain import feedback as fb
from abm_sla.domain import leads, review
from abm_sla.domain import metrics as catalog
from abm_sla.domain.policy import IntentList
from abm_sla.domain.policy.reports import Leads
from abm_sla.domain.scorecard import SlaData
from abm_sla.services.config_files import load_policy
from tests.unit.builders import account, activity, contact, frame, intent

MARCH = (pd.Timestamp("2026-03-01", tz="UTC"), pd.Timestamp("2026-04-01", tz="UTC"))
Q1 = (pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-04-01", tz="UTC"))
WEEK = (pd.Timestamp("2026-03-23", tz="UTC"), pd.Timestamp("2026-03-30", tz="UTC"))
NS = pd.Timedelta(1, unit="ns")
DEMO = "config/presets/demo.yaml"


def policy_with(**leads_settings):
    base = load_policy()
    settings = Leads(**leads_settings) if leads_settings else None
    return base.model_copy(update={"leads": settings})


def data_of(contacts, touches, accounts=None, **more) -> SlaData:
    return SlaData.of(accounts=frame("accounts", accounts or [account("a", country="US"), account("b", country="IN")]),
                      contacts=frame("contacts", contacts), activities=frame("activities", touches), **more)


def test_persona_patterns_match_whole_words_in_any_case() -> None:
    titles = pd.Series(["VP Sales", "Vpn Administrator", "vice president, engineering", None, "Chief Revenue Officer"])
    found = leads.persona_matches(titles, ("VP", "Vice President", r"Chief \w+ Officer"))
    assert found.tolist() == [True, False, True, False, True]
    assert not leads.persona_matches(titles, ()).any()


def test_invalid_emails() -> None:
    emails = pd.Series(["ana.lee@acme.com", "ana@acme", "", None, "ana lee@acme.com", "a@b.co", "a@@b.com"])
    assert leads.invalid_emails(emails).tolist() == [False, True, True, True, True, False, True]


def test_a_lead_is_a_contact_with_a_marketing_touch_inside_the_period() -> None:
    contacts = [{**contact("c1", "a", "VP Sales"), "email": "c1@a.com"},
                {**contact("c2", "a", "Engineer"), "email": "bad"},
                {**contact("c3", "a", "CFO"), "email": "c3@a.com"},
                {**contact("c4", "b", "Analyst"), "email": "c4@b.com"},
                {**contact("c5", "a", "CEO"), "email": "c5@a.com"}]
    start, end = MARCH
    touches = [activity("email_open", start, "a", "c1"), activity("web_visit", end - NS, "a", "c2"),
               activity("email_open", end, "a", "c3"),  # the end is outside
               activity("form_submit", start + pd.Timedelta(days=3), "b", "c4"),
               activity("call", start + pd.Timedelta(days=3), "a", "c5"),  # a sales touch is no lead
               activity("web_visit", start + pd.Timedelta(days=3), "a", None)]  # anonymous: no lead
    policy = policy_with(personas=("VP", "CFO"), geographies=("North America",), regions={"North America": ("us",)})
    facts = leads.lead_facts(data_of(contacts, touches), start, end, policy)
    assert facts["contact_id"].tolist() == ["c1", "c2", "c4"]
    assert facts["in_persona"].tolist() == [True, False, False]
    assert facts["in_geography"].tolist() == [True, True, False]
    assert facts["invalid_email"].tolist() == [False, True, False]
    table = catalog.compute(data_of(contacts, touches), start, end, end, policy)
    assert catalog.value(table, "engaged_leads") == 3
    assert catalog.value(table, "lead_persona_share") == pytest.approx(33.3)
    assert catalog.value(table, "lead_geography_share") == pytest.approx(66.7)
    assert catalog.value(table, "invalid_email_share") == pytest.approx(33.3)


def test_shares_are_empty_without_their_lists_and_no_policy_means_no_target() -> None:
    contacts = [{**contact("c1", "a", "VP Sales"), "email": "c1@a.com"}]
    touches = [activity("email_open", MARCH[0], "a", "c1")]
    table = catalog.compute(data_of(contacts, touches), *MARCH, MARCH[1], policy_with())
    assert pd.isna(catalog.value(table, "lead_persona_share"))
    assert pd.isna(catalog.value(table, "lead_geography_share"))
    assert catalog.row(table, "engaged_leads")["target"] == ""


def test_accounts_off_the_target_list_give_no_leads() -> None:
    contacts = [{**contact("c1", "a"), "email": "c1@a.com"}, {**contact("c4", "b"), "email": "c4@b.com"}]
    touches = [activity("email_open", MARCH[0], "a", "c1"), activity("email_open", MARCH[0], "b", "c4")]
    listed = frame("target_accounts", [{"target_account_id": "t1", "account_id": "a",
                                        "added_at": pd.Timestamp("2025-12-01", tz="UTC")}])
    facts = leads.lead_facts(data_of(contacts, touches, target_accounts=listed), *MARCH, policy_with())
    assert facts["contact_id"].tolist() == ["c1"]


def leads_data(n_leads: int, invalid: int) -> SlaData:
    contacts = [{**contact(f"c{i}", "a", "Engineer"), "email": "x" if i < invalid else f"c{i}@a.com"}
                for i in range(n_leads)]
    touches = [activity("email_open", MARCH[0], "a", f"c{i}") for i in range(n_leads)]
    return data_of(contacts, touches)


@pytest.mark.parametrize(("invalid", "verdict"), [(4, "met"), (5, "missed")])
def test_invalid_email_target_is_strictly_below(invalid: int, verdict: str) -> None:
    policy = policy_with(invalid_email_max_pct=5)
    table = catalog.compute(leads_data(100, invalid), *MARCH, MARCH[1], policy)
    assert catalog.row(table, "invalid_email_share")["verdict"] == verdict


def test_engaged_leads_target_is_per_quarter_and_pro_rated_to_a_month() -> None:
    policy = policy_with(engaged_leads_per_quarter_min=6)
    month = catalog.compute(leads_data(2, 0), *MARCH, MARCH[1], policy)
    assert (catalog.row(month, "engaged_leads")["target"], catalog.row(month, "engaged_leads")["verdict"]) == (
        ">= 2", "met")
    quarter = catalog.compute(leads_data(5, 0), *Q1, Q1[1], policy)
    assert (catalog.row(quarter, "engaged_leads")["target"], catalog.row(quarter, "engaged_leads")["verdict"]) == (
        ">= 6", "missed")


def intent_data(rows) -> SlaData:
    return SlaData.of(accounts=frame("accounts", [account("a"), account("b")]),
                      intent_signals=frame("intent_signals", rows))


def test_the_intent_list_needs_three_signals_inside_the_week() -> None:
    start, end = WEEK
    rows = [intent("crm", 40, start, "a"), intent("abm", 80, start + pd.Timedelta(days=2), "a"),
            intent("crm", 75, end - NS, "a"),
            intent("crm", 90, start, "b"), intent("abm", 90, start, "b"), intent("sla", 90, end, "b")]
    found = leads.intent_list(intent_data(rows), start, end, IntentList())
    assert found["account_id"].tolist() == ["a"]
    assert found.iloc[0]["signals"] == 3
    assert found.iloc[0]["topics"] == "abm, crm"
    assert leads.intent_list(intent_data(rows), start, end, IntentList(min_score=40))["account_id"].tolist() == ["a"]
    assert leads.intent_list(intent_data(rows), start, end, IntentList(min_score=41)).empty
    assert leads.intent_list(intent_data(rows), start, end, IntentList(distinct_topics=True)).empty
    table = catalog.compute(intent_data(rows), start, end, end, load_policy())
    assert catalog.value(table, "intent_list_accounts") == 1


def test_disqualification_patterns_and_conversion_by_source() -> None:
    start, end = MARCH
    t1, t2, t3 = (start + pd.Timedelta(days=d) for d in (1, 2, 3))
    accounts = [account("a", tier=1, owner_id="u1"), account("b", tier=2, owner_id="u2"),
                account("c", tier=1, owner_id="u1")]
    mqas = pd.DataFrame({"account_id": ["a", "b", "c"], "trigger_at": [t1, t2, t3], "tier": [1.0, 2.0, 1.0],
                         "owner_id": ["u1", "u2", "u1"], "routed_at": [t1, t2, t3], "ended_at": pd.NaT})
    changes = frame("status_changes", [
        {"status_change_id": "s1", "account_id": "a", "status": "rejected", "changed_at": t1 + pd.Timedelta(hours=1),
         "reason": "no budget"},
        {"status_change_id": "s2", "account_id": "b", "status": "rejected", "changed_at": t2 + pd.Timedelta(hours=1),
         "reason": "No budget "},
        {"status_change_id": "s3", "account_id": "c", "status": "accepted", "changed_at": t3 + pd.Timedelta(hours=1)}])
    data = SlaData.of(accounts=frame("accounts", accounts), mqas=mqas, status_changes=changes,
                      activities=frame("activities", [activity("form_submit", t1, "a", "x"),
                                                      activity("web_visit", t2 - NS, "b", "y")]),
                      intent_signals=frame("intent_signals", [intent("crm", 90, t3, "c")]))
    policy = load_policy()
    # one table in the monthly review and the quarterly feedback loop: reasons trimmed, case ignored (a tie of
    # spellings shows the first in sort order)
    patterns = fb.rejection_reasons(catalog.mqa_facts(data, start, end, end, policy))
    assert patterns.to_dict("records") == [{"reason": "No budget", "mqas": 2, "share_pct": 100.0, "owners": 2,
                                            "tier_1": 1, "tier_2": 1, "tier_3": 0}]
    owners = review.disqualification_by_owner(data, start, end, end, policy)
    assert owners[["owner_id", "reason", "rejected"]].values.tolist() == [["u1", "No budget", 1],
                                                                         ["u2", "No budget", 1]]
    sources = review.conversion_by_source(data, start, end, end, policy).set_index("source")
    assert sources.loc["form_submit", "mqas"] == 1 and sources.loc["form_submit", "acceptance_pct"] == 0
    assert sources.loc["intent", "accepted"] == 1 and sources.loc["intent", "acceptance_pct"] == 100
    assert sources.loc["other", "mqas"] == 1  # the visit was 1 ns before trigger_at: not the firing signal
    assert sources.loc["all", "mqas"] == 3


def test_stalled_after_the_quiet_days_exactly() -> None:
    end = MARCH[1]
    opps = frame("opportunities", [
        {"opportunity_id": "o1", "account_id": "a", "amount": 100, "created_at": end - pd.Timedelta(days=60),
         "is_closed": False, "is_won": False},
        {"opportunity_id": "o2", "account_id": "b", "amount": 50, "created_at": end - pd.Timedelta(days=60),
         "is_closed": False, "is_won": False}])
    acts = frame("activities", [activity("call", end - pd.Timedelta(days=30), "a", None),
                                activity("call", end - pd.Timedelta(days=30) + NS, "b", None)])
    data = SlaData.of(accounts=frame("accounts", [account("a"), account("b")]), opportunities=opps, activities=acts)
    stalled = review.stalled_accounts(data, end, 30)
    assert stalled["account_id"].tolist() == ["a"]
    assert stalled.iloc[0]["days_quiet"] == 30.0


def test_the_review_shows_last_months_decisions_and_its_own() -> None:
    at = pd.Timestamp("2026-03-01", tz="UTC")
    rows = pd.DataFrame({"decision_id": [1, 2, 3], "month": ["2026-01", "2026-02", "2026-03"],
                         "text": ["old", "follow up", "new"], "owner": "x", "due": None, "status": "open",
                         "outcome": None, "recorded_at": at, "updated_at": at})
    shown = review.review_decisions(rows, MARCH[0])
    assert shown["text"].tolist() == ["follow up", "new"]
    assert review.review_decisions(rows.iloc[0:0], MARCH[0]).empty


def test_without_the_policy_keys_the_reports_are_as_before() -> None:
    from abm_sla.services.reporting import build_monthly, build_weekly

    contacts = [{**contact("c1", "a", "VP Sales"), "email": "c1@a.com"}]
    data = data_of(contacts, [activity("email_open", MARCH[0], "a", "c1")],
                   intent_signals=frame("intent_signals", [intent(t, 90, WEEK[0], "a") for t in ("x", "y", "z")]))
    default = load_policy()
    titles = {section.title for section in build_monthly(data, "2026-03", default).sections}
    assert not titles & {"Leads", "Disqualification patterns", "Conversion by hand-off source", "Decisions",
                         "Closed deals and stalled accounts", "Engagement trend and top performers"}
    assert "Intent list" not in {section.title for section in build_weekly(data, "2026-W13", default).sections}
    on = default.model_copy(update={"leads": Leads(personas=("VP",)), "intent_list": IntentList(),
                                    "monthly_review": load_policy(DEMO).monthly_review})
    monthly = build_monthly(data, "2026-03", on)
    assert {"Leads", "Disqualification patterns", "Decisions"} <= {section.title for section in monthly.sections}
    assert monthly.tables["lead_measures"].frame.set_index("metric").loc["lead_persona_share", "value"] == 100.0
    weekly = build_weekly(data, "2026-W13", on)
    assert weekly.tables["intent_list"].frame["account_id"].tolist() == ["a"]
