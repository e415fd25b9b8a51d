"""Scoring (SPEC sections 3 and 4): every rule and gate at its boundaries, and a naive cross-check."""

from __future__ import annotations

import re
from itertools import pairwise
from unittest import mock
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abm_sla.domain import scoring
from abm_sla.services.config_files import load_model
from tests.unit.builders import DAY, NS, T0, Crm, account, activity, ago, contact, intent, qualifying

MODEL = load_model()


def score(crm: Crm, as_of: pd.Timestamp = T0) -> pd.Series:
    """The score row of account ``a``."""
    scores = scoring.score_accounts(*crm.signals(), MODEL, as_of)
    return scores.set_index("account_id").loc["a"]


def rules(row: pd.Series) -> dict[str, tuple[int, int]]:
    return {reason["rule"]: (reason["count"], reason["points"]) for reason in row["reasons"]}


def quiet(**fields: object) -> Crm:
    """Account ``a`` with no firmographic points unless given."""
    base = {"employees": None, "industry": None, "country": None} | fields
    return Crm(accounts=[account(**base)])


# -- firmographic ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("employees", "points"),
    [(49, 0), (50, 10), (199, 10), (200, 20), (5000, 20), (5001, 10), (100_000, 10), (None, 0), ("n/a", 0)],
)
def test_employee_bands(employees: object, points: int) -> None:
    assert score(quiet(employees=employees))["firmographic"] == points


@pytest.mark.parametrize(
    ("industry", "country", "points"),
    [(" software ", " us ", 20), ("FINANCIAL SERVICES", "gb", 20), ("Soft ware", "USA", 0), (None, "nl", 10)],
)
def test_industry_and_country_ignore_case_and_spaces(industry: str | None, country: str, points: int) -> None:
    assert score(quiet(industry=industry, country=country))["firmographic"] == points


def test_firmographic_cap_and_reasons() -> None:
    row = score(Crm())
    assert row["firmographic"] == 40
    assert rules(row) == {"employees 200-5000": (1, 20), "icp_industry": (1, 10), "target_country": (1, 10)}


def test_account_without_signals_gets_a_firmographic_only_row() -> None:
    crm = Crm(
        accounts=[account("a"), account("b", employees=60)], activities=[activity("webinar", ago(1), "a")]
    )
    out = scoring.score_accounts(*crm.signals(), MODEL, T0)
    assert list(out.columns) == scoring.SCORE_COLUMNS
    scores = out.set_index("account_id")
    assert list(scores.index) == ["a", "b"]
    assert scores.loc["b", ["firmographic", "engagement", "intent", "total"]].tolist() == [30, 0, 0, 30]
    assert {r["category"] for r in scores.loc["b", "reasons"]} == {"firmographic"}
    assert scores["as_of"].eq(T0).all()


# -- the window -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "counted"),
    [(ago(30), False), (ago(30) + NS, True), (T0, True), (T0 + NS, False), (ago(45), False)],
)
def test_window_is_open_at_30_days_and_closed_at_as_of(at: pd.Timestamp, counted: bool) -> None:
    row = score(Crm(activities=[activity("email_open", at)]))
    assert row["engagement"] == (3 if counted else 0)


def test_signal_window_for_intent_too() -> None:
    crm = Crm(intent=[intent("crm", 90, ago(30)), intent("erp", 90, ago(30) + NS), intent("hr", 90, T0 + NS)])
    assert rules(score(crm))["intent_topic"] == (1, 10)


# -- engagement -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "n", "points"),
    [
        ("email_open", 2, 6),
        ("email_open", 3, 9),
        ("email_open", 4, 9),
        ("email_click", 3, 10),
        ("form_submit", 1, 12),
        ("form_submit", 3, 24),
        ("webinar", 3, 20),
        ("web_visit", 2, 16),
        ("web_visit", 5, 16),
        ("call", 3, 0),
        ("meeting", 1, 0),
    ],
)
def test_engagement_rule_points_and_maximum(type_: str, n: int, points: int) -> None:
    crm = quiet()
    crm.activities = [activity(type_, ago(hours=h + 1), contact_id="x") for h in range(n)]
    row = score(crm)
    assert row["engagement"] == points
    if points:
        assert rules(row)[type_] == (n, points)
    else:
        assert row["reasons"] == []


def test_engagement_cap_is_noted_in_reasons() -> None:
    crm = quiet()
    crm.activities = [
        activity(t, ago(hours=h + 1)) for h, t in enumerate(["form_submit"] * 2 + ["webinar"] * 2)
    ]
    row = score(crm)
    assert row["engagement"] == 30
    assert rules(row)["category_cap"] == (44, -14)
    assert sum(r["points"] for r in row["reasons"]) == row["total"]


# -- intent -----------------------------------------------------------------------------------------


def test_pricing_visit_counts_in_engagement_and_intent() -> None:
    crm = quiet()
    crm.activities = [activity("web_visit", ago(1), url="https://acme.example/pricing?plan=pro")]
    row = score(crm)
    assert (row["engagement"], row["intent"]) == (8, 15)
    assert rules(row) == {"web_visit": (1, 8), "pricing_page_visit": (1, 15)}


@pytest.mark.parametrize(
    ("urls", "intent_points"),
    [
        (["https://acme.example/pricing", "https://acme.example/pricing/team"], 15),
        (["https://acme.example/Pricing"], 15),
        (["/demo"], 15),
        (["https://acme.example/pricing", "https://acme.example/demo"], 30),
        (["https://pricing.acme.example/"], 0),
        (["https://acme.example/blog?next=/pricing"], 0),
        (["https://acme.example/blog#/demo"], 0),
        ([None], 0),
    ],
)
def test_url_rules_match_the_path_once(urls: list[str | None], intent_points: int) -> None:
    crm = quiet()
    crm.activities = [activity("web_visit", ago(hours=i + 1), url=url) for i, url in enumerate(urls)]
    assert score(crm)["intent"] == intent_points


def test_pricing_url_on_a_non_visit_is_not_intent() -> None:
    crm = quiet()
    crm.activities = [activity("email_click", ago(1), url="https://acme.example/pricing")]
    assert score(crm)["intent"] == 0


@pytest.mark.parametrize(
    ("rows", "points"),
    [
        ([("CRM", 90), (" crm ", 80)], 10),
        ([("CRM", 90), ("ERP", 70)], 20),
        ([("CRM", 90), ("ERP", 70), ("HR", 99)], 20),
        ([("CRM", 69.9), ("ERP", 69)], 0),
        ([("CRM", 69), ("crm", 70)], 10),
        ([("CRM", None)], 0),
    ],
)
def test_intent_topics_count_distinct_topics_at_or_above_70(rows: list[tuple], points: int) -> None:
    crm = quiet()
    crm.intent = [intent(topic, s, ago(hours=i + 1)) for i, (topic, s) in enumerate(rows)]
    assert score(crm)["intent"] == points


def test_intent_cap() -> None:
    crm = quiet()
    crm.activities = [
        activity("web_visit", ago(1), url="/pricing"),
        activity("web_visit", ago(2), url="/demo"),
    ]
    crm.intent = [intent("crm", 90, ago(1))]
    row = score(crm)
    assert row["intent"] == 30
    assert rules(row)["category_cap"] == (40, -10)


# -- gates ------------------------------------------------------------------------------------------


def test_total_gate_49_vs_50() -> None:
    base = quiet(employees=300)  # firmographic 20
    base.intent = [intent("crm", 90, ago(1))]  # intent 10
    at_49 = Crm(
        base.accounts,
        activities=[activity("webinar", ago(2))]
        + [activity("email_open", ago(hours=h + 1)) for h in range(3)],
        intent=base.intent,
    )
    at_50 = Crm(
        base.accounts,
        activities=[activity("webinar", ago(2)), activity("webinar", ago(3))],
        intent=base.intent,
    )
    assert (score(at_49)["total"], score(at_49)["gate_total"]) == (49, False)
    assert (score(at_50)["total"], score(at_50)["gate_total"]) == (50, True)


@pytest.mark.parametrize(
    ("employees", "url", "extra", "categories", "passes"),
    [
        (300, "/pricing", ["email_click", "email_open"], (20, 16, 15), True),
        (60, "/pricing", ["email_click", "email_open"], (10, 16, 15), False),
        (300, "/blog", ["email_click", "email_open"], (20, 16, 10), False),
        (300, "/pricing", ["email_click"], (20, 13, 15), False),
    ],
)
def test_category_minimums(
    employees: int, url: str, extra: list[str], categories: tuple, passes: bool
) -> None:
    crm = quiet(employees=employees)
    crm.activities = [activity("web_visit", ago(1), url=url)] + [
        activity(t, ago(hours=h + 1)) for h, t in enumerate(extra)
    ]
    crm.intent = [intent("crm", 90, ago(1))] if url == "/blog" else []
    row = score(crm)
    assert (row["firmographic"], row["engagement"], row["intent"]) == categories
    assert row["gate_categories"] == passes


def test_engagement_minimum_14_vs_15() -> None:
    crm = Crm(intent=[intent("a", 90, ago(1)), intent("b", 90, ago(1))])
    crm.activities = [
        activity("web_visit", ago(1)),
        activity("email_open", ago(2)),
        activity("email_open", ago(3)),
    ]
    assert (score(crm)["engagement"], score(crm)["gate_categories"]) == (14, False)
    crm.activities = [activity("webinar", ago(1)), activity("email_click", ago(2))]
    assert (score(crm)["engagement"], score(crm)["gate_categories"]) == (15, True)


@pytest.mark.parametrize(
    ("title", "decision_maker"),
    [
        ("VP Sales", True),
        ("SVP, Ops", True),
        ("EVP", True),
        ("Vpn Admin", False),
        ("Head of Marketing", True),
        ("head  of IT", True),
        ("Headcount Planner", False),
        ("CISO", True),
        ("ciso office", True),
        ("Chief Revenue Officer", True),
        ("Vice President, Finance", True),
        ("President", True),
        ("Co-Founder", True),
        ("CEOs Assistant", False),
        ("Account Executive", False),
        (None, False),
        ("Director of IT", False),
    ],
)
def test_decision_maker_titles_match_whole_words(title: str | None, decision_maker: bool) -> None:
    crm = Crm(
        contacts=[contact("c1", title=title)], activities=[activity("email_open", ago(1), contact_id="c1")]
    )
    assert score(crm)["gate_decision_maker"] == decision_maker


def test_decision_maker_needs_a_marketing_touch_in_the_window() -> None:
    crm = Crm(contacts=[contact("c1", title="CEO")])
    crm.activities = [
        activity("meeting", ago(1), contact_id="c1"),
        activity("email_open", ago(30), contact_id="c1"),
        activity("email_open", T0 + NS, contact_id="c1"),
    ]
    assert not score(crm)["gate_decision_maker"]
    crm.activities.append(activity("webinar", ago(30) + NS, contact_id="c1"))
    assert score(crm)["gate_decision_maker"]


def test_anonymous_visit_counts_for_engagement_and_touches_not_decision_maker() -> None:
    crm = Crm(contacts=[contact("c1", title="CEO")])
    crm.activities = [activity("web_visit", ago(1)), activity("email_open", ago(2), contact_id="nobody")]
    row = score(crm)
    assert row["engagement"] == 11
    assert row["gate_marketing_touches"]
    assert not row["gate_decision_maker"]


@pytest.mark.parametrize(
    ("types", "passes"),
    [
        (["email_open"], False),
        (["email_open", "call"], False),
        (["email_open", "webinar"], True),
        (["form_submit", "form_submit"], True),
        (["email_sent", "meeting", "linkedin_message"], False),
    ],
)
def test_marketing_touches_gate(types: list[str], passes: bool) -> None:
    crm = Crm(activities=[activity(t, ago(hours=h + 1)) for h, t in enumerate(types)])
    assert score(crm)["gate_marketing_touches"] == passes


def test_qualified_needs_every_gate() -> None:
    crm = Crm(contacts=[contact("dm")], activities=qualifying(ago(1)))
    row = score(crm)
    assert (row["total"], row["qualified"]) == (75, True)
    crm.contacts = [contact("dm", title="Analyst")]
    assert not score(crm)["qualified"]


# -- score_at -----------------------------------------------------------------------------------------


def test_score_at_uses_each_candidates_own_window() -> None:
    crm = Crm(activities=[activity("webinar", ago(10))])
    candidates = pd.DataFrame(
        {"account_id": ["a", "a", "a", "zz"], "at": [ago(10) - NS, ago(10), ago(10) + 30 * DAY, T0]}
    )
    out = scoring.score_at(candidates, *crm.signals(), MODEL)
    assert out["engagement"].tolist() == [0, 10, 0, 0]
    assert out["firmographic"].tolist() == [40, 40, 40, 0]
    assert out["account_id"].tolist() == ["a", "a", "a", "zz"]


def test_window_counts_exact_to_the_nanosecond() -> None:
    t = np.array([10, 20, 20, 35], dtype=np.int64)
    codes = np.array([0, 0, 1, 0])
    q_code = np.array([0, 0, 1, 1, -1])
    out = scoring.window_counts(
        codes, t, q_code, np.array([9, 10, 19, 20, 0]), np.array([20, 35, 20, 40, 99])
    )
    assert out.tolist() == [2, 2, 1, 0, 0]


# -- a naive per-account implementation, for a property test -----------------------------------------

TITLES = [
    "VP Sales",
    "SVP, Ops",
    "Vpn Admin",
    "Head of IT",
    "Headcount lead",
    "CISO",
    "Engineer",
    None,
    "vice president",
    "Co-Founder",
    "Director of IT",
]
DM_WORDS = {
    "VP",
    "SVP",
    "EVP",
    "CHIEF",
    "PRESIDENT",
    "FOUNDER",
    "CEO",
    "CFO",
    "CTO",
    "CMO",
    "CRO",
    "COO",
    "CIO",
    "CISO",
}
DM_PHRASES = [("VICE", "PRESIDENT"), ("HEAD", "OF")]
URLS = [
    "https://acme.com/pricing",
    "https://acme.com/Demo?x=1",
    "https://pricing.acme.com/",
    "https://acme.com/blog?next=/pricing",
    "/pricing/enterprise",
    None,
    "",
]
TYPES = ["email_open", "email_click", "form_submit", "web_visit", "webinar", "call", "meeting"]
ENGAGEMENT = {
    "email_open": (3, 9),
    "email_click": (5, 10),
    "form_submit": (12, 24),
    "webinar": (10, 20),
    "web_visit": (8, 16),
}
MARKETING = set(ENGAGEMENT)


def naive_is_decision_maker(title: str | None) -> bool:
    words = re.findall(r"\w+", (title or "").upper())
    pairs = set(pairwise(words))
    return bool(DM_WORDS & set(words)) or any(p in pairs for p in DM_PHRASES)


def naive_score(
    acct: dict, contacts: list[dict], acts: list[dict], intents: list[dict], at: pd.Timestamp
) -> dict:
    """Straight from SPEC sections 3 and 4, one account at a time."""
    start = at - pd.Timedelta(days=30)
    emp = acct["employees"]
    firmo = 20 if emp is not None and 200 <= emp <= 5000 else 10 if emp is not None and emp >= 50 else 0
    firmo += (
        10
        if (acct["industry"] or "").strip().lower()
        in {"software", "internet", "financial services", "healthcare"}
        else 0
    )
    firmo += (
        10 if (acct["country"] or "").strip().lower() in {"us", "ca", "gb", "de", "fr", "nl", "au"} else 0
    )
    mine = [a for a in acts if a["account_id"] == acct["account_id"] and start < a["occurred_at"] <= at]
    engagement = sum(min(p * sum(a["type"] == t for a in mine), cap) for t, (p, cap) in ENGAGEMENT.items())
    paths = [(urlsplit(a["url"] or "").path.lower()) for a in mine if a["type"] == "web_visit"]
    intent_points = 15 * any("/pricing" in p for p in paths) + 15 * any("/demo" in p for p in paths)
    topics = {
        i["topic"].strip().lower()
        for i in intents
        if i["account_id"] == acct["account_id"] and start < i["observed_at"] <= at and i["score"] >= 70
    }
    intent_points += min(10 * len(topics), 20)
    firmo, engagement, intent_points = min(firmo, 40), min(engagement, 30), min(intent_points, 30)
    total = firmo + engagement + intent_points
    titles = {c["contact_id"]: c["title"] for c in contacts}
    touches = [a for a in mine if a["type"] in MARKETING]
    dm = any(
        a["contact_id"] is not None and naive_is_decision_maker(titles.get(a["contact_id"])) for a in touches
    )
    gates = {
        "gate_total": total >= 50,
        "gate_categories": firmo >= 20 and engagement >= 15 and intent_points >= 15,
        "gate_decision_maker": dm,
        "gate_marketing_touches": len(touches) >= 2,
    }
    return {
        "firmographic": firmo,
        "engagement": engagement,
        "intent": intent_points,
        "total": total,
        **gates,
        "qualified": all(gates.values()),
    }


def days(k: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=k)


account_rows = st.builds(
    lambda i, emp, ind, cty: account(f"a{i}", emp, ind, cty),
    st.integers(0, 2),
    st.sampled_from([None, 30, 50, 199, 200, 5000, 5001]),
    st.sampled_from([None, "Software", " internet ", "Retail"]),
    st.sampled_from([None, "US", " de ", "BR"]),
)
activity_rows = st.builds(
    lambda t, k, acct, c, url: activity(t, days(k), f"a{acct}", c, url),
    st.sampled_from(TYPES),
    st.integers(-36, 2),
    st.integers(0, 2),
    st.sampled_from([None, "c0", "c1", "c2"]),
    st.sampled_from(URLS),
)
intent_rows = st.builds(
    lambda topic, s, k, acct: intent(topic, s, days(k), f"a{acct}"),
    st.sampled_from(["CRM", " crm", "ERP", "erp ", "HR"]),
    st.sampled_from([50, 69, 70, 95]),
    st.integers(-36, 2),
    st.integers(0, 2),
)


@settings(max_examples=150, deadline=None)
@given(
    accounts=st.lists(account_rows, min_size=1, max_size=3, unique_by=lambda a: a["account_id"]),
    titles=st.lists(st.sampled_from(TITLES), min_size=3, max_size=3),
    acts=st.lists(activity_rows, max_size=30),
    intents=st.lists(intent_rows, max_size=8),
    queries=st.lists(st.tuples(st.integers(0, 3), st.integers(-6, 3)), min_size=1, max_size=8),
)
def test_score_at_matches_a_naive_implementation(accounts, titles, acts, intents, queries) -> None:
    contacts = [contact(f"c{i}", "a0", title) for i, title in enumerate(titles)]
    crm = Crm(accounts=accounts, contacts=contacts, activities=acts, intent=intents)
    candidates = pd.DataFrame(
        {"account_id": [f"a{i}" for i, _ in queries], "at": [days(k) for _, k in queries]}
    )
    out = scoring.score_at(candidates, *crm.signals(), MODEL)
    by_id = {a["account_id"]: a for a in accounts}
    for row, (i, k) in zip(out.to_dict("records"), queries, strict=True):
        acct = by_id.get(f"a{i}", account(f"a{i}", None, None, None))
        expected = naive_score(acct, contacts, acts, intents, days(k))
        assert {key: row[key] for key in expected} == expected
        assert sum(r["points"] for r in row["reasons"]) == row["total"]
    with mock.patch.object(scoring, "distinct_rows", _one_by_one):
        alone = scoring.score_at(candidates, *crm.signals(), MODEL)
    assert out["reasons"].tolist() == alone["reasons"].tolist()


def _one_by_one(columns: list[np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate its own profile: its reasons built for it alone."""
    return np.arange(size), np.arange(size)


def _everything_collides(table: pd.DataFrame, index: bool) -> pd.Series:
    return pd.Series(np.zeros(len(table), dtype=np.uint64))


def test_distinct_rows_groups_equal_rows_and_survives_a_hash_collision() -> None:
    columns = [np.array([1, 2, 1, 3, 2]), np.array([0, 5, 0, 0, 5])]
    codes, first = scoring.distinct_rows(columns, 5)
    assert codes.tolist() == [0, 1, 0, 2, 1] and first.tolist() == [0, 1, 3]
    with mock.patch.object(pd.util, "hash_pandas_object", _everything_collides):
        codes, first = scoring.distinct_rows(columns, 5)
    assert codes.tolist() == [0, 1, 2, 3, 4] and first.tolist() == [0, 1, 2, 3, 4]
    assert [len(part) for part in scoring.distinct_rows([np.array([], dtype=np.int64)], 0)] == [0, 0]
