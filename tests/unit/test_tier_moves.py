"""Tier-move rules and the ledger: boundary cases of each rule (pure, on small frames)."""

from __future__ import annotations

import pandas as pd
import pytest

from abm_sla.domain import scorecard as sc
from abm_sla.domain import tier_moves as tm
from abm_sla.domain.metrics import quarterly_tables as qt
from abm_sla.services.config_files import load_model, load_policy

POLICY = load_policy()
RULES = POLICY.targets.tier_moves
DM = load_model().decision_maker_pattern
NOW = pd.Timestamp("2026-03-31 12:00", tz="UTC")


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def data(activities: list[tuple], contacts: list[tuple] = (), tier: str = "3") -> sc.SlaData:
    accounts = pd.DataFrame({"account_id": ["A"], "name": ["Acme"], "tier": [tier], "owner_id": ["U1"],
                             "created_at": [t("2025-01-01")]})
    acts = pd.DataFrame(activities, columns=["activity_id", "type", "occurred_at", "contact_id", "url"])
    acts = acts.assign(account_id="A")
    people = pd.DataFrame(list(contacts), columns=["contact_id", "title"]).assign(account_id="A")
    return sc.SlaData.of(accounts=accounts, activities=acts, contacts=people)


def test_a_buying_signal_twice_the_same_day_counts_once():
    same_day = data([("1", "form_submit", t("2026-03-30 09:00"), None, None),
                     ("2", "form_submit", t("2026-03-30 17:00"), None, None)])
    assert sc.tier_moves(same_day, NOW, POLICY, DM).empty
    pages = data([("1", "web_visit", t("2026-03-30 09:00"), None, "https://x.com/pricing"),
                  ("2", "web_visit", t("2026-03-30 09:05"), None, "https://x.com/pricing?a=1"),
                  ("3", "web_visit", t("2026-03-30 09:10"), None, "https://x.com/demo")])
    moves = sc.tier_moves(pages, NOW, POLICY, DM)  # two kinds (pricing, demo) the same day: 2 signals
    assert moves["reason"].tolist() == ["2 buying signals in 30 days (>= 2)"]
    days = data([("1", "form_submit", t("2026-03-29 23:59"), None, None),
                 ("2", "form_submit", t("2026-03-30 00:00"), None, None)])  # two UTC days
    assert sc.tier_moves(days, NOW, POLICY, DM)["rule"].tolist() == ["promote_3_to_2"]


@pytest.mark.parametrize(("titles", "promoted"), [
    (["Analyst", "analyst "], False),             # two contacts, one role
    (["Analyst", "Engineer"], False),             # two roles, no decision-maker
    (["VP Sales", "vp  sales"], False),           # one role (a decision-maker)
    (["VP Sales", "Engineer"], True),             # two roles, one a decision-maker
    ([None, None], False),                        # no titles at all: no roles
    ([None, "VP Sales", ""], False),              # one role among contacts without titles
])
def test_two_engaged_stakeholders_means_distinct_roles_with_a_decision_maker(titles, promoted):
    contacts = [(f"c{i}", title) for i, title in enumerate(titles)]
    touches = [(f"{i}", "email_open", t("2026-03-20"), f"c{i}", None) for i in range(len(titles))]
    moves = sc.tier_moves(data(touches, contacts, tier="2"), NOW, POLICY, DM)
    assert (moves["rule"].tolist() == ["promote_2_to_1"]) is promoted


def test_roles_only_when_the_policy_does_not_require_a_decision_maker():
    rules = RULES.model_copy(update={"promote_2_to_1": {"stakeholders_engaged": 2, "require_decision_maker": False}})
    policy = POLICY.model_copy(update={"targets": POLICY.targets.model_copy(update={"tier_moves": rules})})
    touches = [("1", "email_open", t("2026-03-20"), "c1", None), ("2", "email_open", t("2026-03-20"), "c2", None)]
    moves = sc.tier_moves(data(touches, [("c1", "Analyst"), ("c2", "Engineer")], tier="2"), NOW, policy, DM)
    assert moves["reason"].tolist() == ["2 roles engaged (>= 2)"]


def candidate(rule: str = "promote_3_to_2", tier: int = 3, proposed: str = "2") -> pd.DataFrame:
    return pd.DataFrame({"account_id": ["A"], "tier": [tier], "proposed_tier": [proposed], "rule": [rule],
                         "reason": ["why"]})


def accounts(tier: str, updated_at: pd.Timestamp | None = None) -> pd.DataFrame:
    return pd.DataFrame({"account_id": ["A"], "tier": [tier], "updated_at": [updated_at]})


def test_a_move_is_recommended_once_until_decided():
    first = tm.advance(tm.empty(), candidate(), accounts("3"), t("2026-03-01"), RULES)
    again = tm.advance(first, candidate(), accounts("3"), t("2026-03-02"), RULES)
    assert len(again) == 1 and again["decision"].tolist() == [tm.PENDING]
    assert tm.known_at(again, t("2026-03-11"))["age_days"].tolist() == [10.0]


def test_the_ledger_s_timestamps_are_utc_whether_given_as_text_or_as_utc_timestamps():
    ledger = tm.advance(tm.empty(), candidate(), accounts("3"), t("2026-03-01"), RULES)
    assert [str(ledger[column].dtype) for column in tm.TIMESTAMPS] == ["datetime64[ns, UTC]"] * 3
    as_text = ledger.astype({column: str for column in tm.TIMESTAMPS}).astype({"decision_note": str})
    pd.testing.assert_frame_equal(tm.conform(as_text).drop(columns="decision_note"),
                                  ledger.drop(columns="decision_note"))
    decided = tm.decide(ledger, accounts("Tier 2", "2026-03-05T00:00:00Z"), t("2026-03-08"), RULES)
    assert decided["decided_at"].tolist() == [t("2026-03-05")]  # updated_at given as text


def test_accepted_when_the_tier_changes_as_recommended_dated_by_updated_at():
    ledger = tm.advance(tm.empty(), candidate(), accounts("3"), t("2026-03-01"), RULES)
    decided = tm.decide(ledger, accounts("Tier 2", t("2026-03-05")), t("2026-03-08"), RULES)
    assert decided[["decision", "decided_at"]].values.tolist() == [[tm.ACCEPTED, t("2026-03-05")]]
    assert tm.known_at(decided, t("2026-03-04"))["decision"].tolist() == [tm.PENDING]  # not known yet then
    assert tm.known_at(decided, t("2026-03-08"))["age_days"].tolist() == [4.0]


def test_decided_exactly_at_the_deadline():
    ledger = tm.advance(tm.empty(), candidate(), accounts("3"), t("2026-03-01"), RULES)
    deadline = t("2026-03-01") + pd.Timedelta(days=RULES.decide_within_days)
    just_before = tm.decide(ledger, accounts("3"), deadline - pd.Timedelta(1), RULES)
    assert just_before["decision"].tolist() == [tm.PENDING]
    at_deadline = tm.decide(ledger, accounts("3"), deadline, RULES)
    assert at_deadline[["decision", "decided_at"]].values.tolist() == [[tm.DECLINED, deadline]]
    changed_at_deadline = tm.decide(ledger, accounts("2", deadline), deadline + pd.Timedelta(days=1), RULES)
    assert changed_at_deadline["decision"].tolist() == [tm.ACCEPTED]
    changed_late = tm.decide(ledger, accounts("2", deadline + pd.Timedelta(1)), deadline + pd.Timedelta(days=1), RULES)
    assert changed_late[["decision", "decided_at"]].values.tolist() == [[tm.DECLINED, deadline]]


def test_declined_when_the_tier_moves_the_other_way_then_quiet():
    ledger = tm.advance(tm.empty(), candidate("demote_1_to_2", 1, "2"), accounts("1"), t("2026-03-01"), RULES)
    other_way = tm.decide(ledger, accounts("3", t("2026-03-03")), t("2026-03-04"), RULES)  # 1 → 3 is "down" too
    assert other_way["decision"].tolist() == [tm.ACCEPTED]
    promote = tm.advance(tm.empty(), candidate(), accounts("3"), t("2026-03-01"), RULES)
    declined = tm.decide(promote, accounts("not ABM", t("2026-03-03")), t("2026-03-04"), RULES)
    assert declined[["decision", "decision_note"]].values.tolist() == [[tm.DECLINED, "tier moved the other way"]]
    quiet = tm.record(declined, candidate(), t("2026-03-10"), RULES)
    assert len(quiet) == 1  # the same rule is not recommended again during the quiet days
    later = t("2026-03-03") + pd.Timedelta(days=RULES.quiet_days_after_decline)
    assert len(tm.record(declined, candidate(), later, RULES)) == 2


def test_off_list_is_accepted_when_the_tier_is_set_to_a_non_tier_value():
    ledger = tm.advance(tm.empty(), candidate("remove_from_list", 3, "off list"), accounts(""), t("2026-03-01"),
                        RULES)
    still_empty = tm.decide(ledger, accounts(None, t("2026-03-02")), t("2026-03-03"), RULES)
    assert still_empty["decision"].tolist() == [tm.PENDING]  # an empty tier is Tier 3 (SPEC), not a move
    assert tm.decide(ledger, accounts("Off list", t("2026-03-02")), t("2026-03-03"), RULES)["decision"].tolist() == [
        tm.ACCEPTED]
    assert tm.tier_rank(pd.Series(["2", " Tier 1 ", "tier_3", "", None, "none"])).tolist() == [2, 1, 3, 3, 3, 4]
    summary = qt.tier_move_decisions(qt.tier_move_table(ledger, t("2026-03-01"), t("2026-04-01"), t("2026-03-02")))
    assert summary.set_index("rule").loc["all", ["recommended", "pending"]].tolist() == [1, 1]


def test_inactivity_is_never_longer_than_the_activity_records():
    """An old account with no activity is not "inactive 120 days" when the records start 10 days ago."""
    accounts = pd.DataFrame({"account_id": ["A", "B"], "name": ["a", "b"], "tier": ["3", "3"], "owner_id": "U1",
                             "created_at": [t("2024-01-01"), t("2024-01-01")]})
    acts = pd.DataFrame({"activity_id": ["1"], "account_id": ["B"], "type": ["call"], "occurred_at": [t("2026-03-21")],
                         "contact_id": None, "url": None})
    young = sc.SlaData.of(accounts=accounts, activities=acts)
    assert sc.tier_moves(young, NOW, POLICY, DM).empty
    old = sc.SlaData.of(accounts=accounts, activities=acts.assign(occurred_at=t("2025-11-01")))
    assert sc.tier_moves(old, NOW, POLICY, DM)["account_id"].tolist() == ["A", "B"]


def test_an_entering_activity_counts_for_tier_3_buying_signals_and_tier_2_touches_only():
    accounts = pd.DataFrame({"account_id": ["T1", "T2", "T3", "OFF"], "tier": ["1", "Tier 2", "3", "off list"]})
    entering = pd.DataFrame({
        "account_id": ["T1", "T1", "T2", "T2", "T3", "T3", "OFF", "NEW"],
        "type": ["form_submit", "email_open", "call", "email_open", "email_open", "web_visit", "webinar", "call"],
        "url": [None, None, None, None, None, "https://x.example/Pricing?a=1", None, None]})
    assert tm.entering_may_count(entering, accounts) == {"T2", "T3", "OFF", "NEW"}
    assert tm.entering_may_count(entering.iloc[[0, 1, 2]], accounts) == set()  # Tier 1's; Tier 2's call


def test_an_account_may_have_been_inactive_without_activity_or_near_the_shortest_limit():
    rules = POLICY.targets.tier_moves  # 60 and 120 days
    as_of = pd.Timestamp("2026-03-31T12:00:00Z")
    last = pd.DataFrame({"account_id": ["A", "B", "C"],
                         "last_at": [as_of - pd.Timedelta(days=59), as_of - pd.Timedelta(days=60, hours=-1),
                                     as_of - pd.Timedelta(days=61)]})
    margin = pd.Timedelta(hours=2)
    assert tm.inactive_at({"A", "B", "C", "D"}, last, as_of, rules, margin) == {"B", "C", "D"}
    assert tm.inactive_at({"A", "B"}, last, as_of, rules.model_copy(update={
        "demote_1_to_2": None, "remove_from_list": None}), margin) == set()


def test_conform_passes_a_conformed_ledger_through_as_a_copy_and_still_conforms_any_other():
    raw = pd.DataFrame({"account_id": [7, "A2"], "recommended_at": ["2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"],
                        "rule": ["r", "r"], "from_tier": ["3", "3"], "proposed_tier": ["2", "2"],
                        "reason": ["x", "y"], "decision": [tm.PENDING, tm.PENDING], "decided_at": [None, None],
                        "decision_note": [None, None], "evaluated_at": ["2026-03-02T00:00:00Z"] * 2},
                       index=[5, 9])
    ledger = tm.conform(raw)
    assert ledger["account_id"].tolist() == ["7", "A2"] and ledger.index.tolist() == [0, 1]
    assert str(ledger["decided_at"].dtype) == "datetime64[ns, UTC]"
    again = tm.conform(ledger.set_axis([3, 4]))
    pd.testing.assert_frame_equal(again, ledger)
    again.loc[0, "decision"] = tm.ACCEPTED
    assert ledger.loc[0, "decision"] == tm.PENDING  # a copy: decide() writes into what conform returns
    assert tm.conform(ledger.assign(account_id=[7, 8]))["account_id"].tolist() == ["7", "8"]


def test_ranks_repeated_over_many_rows_are_those_of_each_value_alone() -> None:
    values = ["2", " Tier 1 ", "tier_3", "", None, float("nan"), "none", "Off list", "3.0"]
    raw = pd.Series(values * 50, index=pd.RangeIndex(1000, 1000 + 50 * len(values)))
    alone = [int(tm.tier_rank(pd.Series([value])).iloc[0]) for value in values]
    ranks = tm.tier_rank(raw)
    assert ranks.index.equals(raw.index) and ranks.tolist() == alone * 50 and ranks.dtype == "int64"
    proposed = pd.Series(["1", "off list", " 2 ", None] * 30, index=pd.RangeIndex(7, 127))
    assert tm.proposed_rank(proposed).tolist() == [1, 4, 2, 4] * 30
    assert tm.proposed_rank(proposed).index.equals(proposed.index)
