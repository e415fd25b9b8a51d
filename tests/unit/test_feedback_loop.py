"""Issue 14, first half: dispositions and reasons, the quality-feedback and recurring-status clocks,
true routing time, and the feedback-loop report tables. 2026-03-02 is a Monday; owner U1 works in UTC."""

from __future__ import annotations

import pandas as pd
import pytest

from abm_sla.domain import dispositions
from abm_sla.domain import feedback as fb
from abm_sla.domain import metrics as catalog
from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy import DEFAULT_PATH, SlaPolicy, Window
from abm_sla.domain.policy.clocks import RecurringClock
from abm_sla.domain.policy.dispositions import Dispositions
from abm_sla.domain.scorecard import SlaData
from abm_sla.domain.sla import evaluate_clocks
from abm_sla.services.config_files import load_policy

DEFAULT = load_policy()
SEVEN = load_policy(DEFAULT_PATH.parent / "presets" / "seven-commitments.yaml")
TEMPLATE = load_policy(DEFAULT_PATH.parent / "presets" / "abm-template.yaml")
USERS = pd.DataFrame([("U1", "sales", None, "UTC", "GB", True)],
                     columns=["user_id", "role", "manager_id", "time_zone", "country", "active"])


def with_clocks(policy: SlaPolicy, **changes) -> SlaPolicy:
    return policy.model_copy(update={"clocks": policy.clocks.model_copy(update=changes)})


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


def mqa(ended: str | None = None, **extra) -> pd.DataFrame:
    return pd.DataFrame([{"account_id": "A", "trigger_at": ts("2026-03-02T08:00Z"),
                          "routed_at": ts("2026-03-02T10:00Z"), "tier": 1, "owner_id": "U1",
                          "ended_at": ts(ended) if ended else pd.NaT, **extra}])


def changes(*rows: tuple) -> pd.DataFrame:
    frame = pd.DataFrame([(*row, None)[:4] for row in rows], columns=["account_id", "status", "changed_at", "reason"])
    return frame.assign(changed_at=pd.to_datetime(frame["changed_at"], utc=True, format="ISO8601"))


def acts(*rows: tuple[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame([("A", kind, at) for kind, at in rows], columns=["account_id", "type", "occurred_at"])
    return frame.assign(occurred_at=pd.to_datetime(frame["occurred_at"], utc=True), owner_id="U1")


def run(status: pd.DataFrame, policy=SEVEN, as_of: str = "2026-04-30T00:00Z", frame=None, activities=None,
        opportunities=None) -> pd.DataFrame:
    return evaluate_clocks(mqa() if frame is None else frame, acts() if activities is None else activities,
                           status, USERS, policy, ts(as_of), opportunities)


def rows(result: pd.DataFrame, clock: str) -> list[tuple]:
    part = result[result["clock"] == clock]
    return [(r.period, r.status, r.due_at, None if pd.isna(r.met_at) else r.met_at) for r in part.itertuples()]


# --- policy ---------------------------------------------------------------------------------------

def test_default_policy_keeps_spec_episode_ends_and_the_four_clocks() -> None:
    assert DEFAULT.episode_end_statuses() == ("rejected", "nurture")
    assert DEFAULT.clocks.quality_feedback is None and DEFAULT.clocks.status_recurring is None
    result = run(changes(("A", "Unqualified", "2026-03-03T10:00Z")), policy=DEFAULT)
    assert list(result["clock"]) == ["routing_time", "first_touch", "status_update", "cadence"]
    assert set(result["period"]) == {0}


def test_presets_switch_the_feedback_loop_on() -> None:
    assert (SEVEN.clocks.quality_feedback.kind, SEVEN.clocks.quality_feedback.amount) == ("hours", 48)
    assert (TEMPLATE.clocks.quality_feedback.kind, TEMPLATE.clocks.quality_feedback.amount) == ("business_hours", 40)
    basic = load_policy(DEFAULT_PATH.parent / "presets" / "basic.yaml")
    assert basic.clocks.status_recurring.every.amount == 7 and basic.clocks.status_update.amount == 168
    assert {"unqualified", "disqualified"} <= set(SEVEN.episode_end_statuses())


def test_dispositions_map_raw_values_and_keep_unknown_ones() -> None:
    policy = DEFAULT.model_copy(update={"dispositions": Dispositions(map={"Closed - Lost": "rejected"})})
    raw = changes(("A", " Meeting_Held", "2026-03-03T10:00Z"), ("A", "No-Show", "2026-03-04T10:00Z"),
                  ("A", "Working", "2026-03-05T10:00Z"), ("A", "closed lost", "2026-03-06T10:00Z"),
                  ("A", "Callback", "2026-03-07T10:00Z"), ("B", "callback ", "2026-03-08T10:00Z"))
    assert list(dispositions.classify(raw, policy)["disposition"]) == [
        "meeting_held", "no_show", "contacted", "rejected", "unknown", "unknown"]
    unknown = dispositions.unknown_statuses(raw, policy)
    assert unknown[["status", "changes", "accounts"]].values.tolist() == [["Callback", 2, 2]]
    with pytest.raises(ValueError, match="positive"):
        RecurringClock(every=Window(days=0))


def test_an_unknown_status_still_counts_as_a_status_change() -> None:
    result = run(changes(("A", "Callback requested", "2026-03-03T10:00Z")))
    assert rows(result, "status_update")[0][1] == "met"
    assert rows(result, "status_recurring")[0][1] == "met"


# --- quality_feedback -----------------------------------------------------------------------------

def test_a_reason_exactly_at_the_deadline_is_met_a_second_later_missed() -> None:
    rejected = ("A", "rejected", "2026-03-03T10:00Z")
    on_time = run(changes(rejected, ("A", "rejected", "2026-03-05T10:00Z", "No budget")))
    assert rows(on_time, "quality_feedback") == [(0, "met", ts("2026-03-05T10:00Z"), ts("2026-03-05T10:00Z"))]
    late = run(changes(rejected, ("A", "rejected", "2026-03-05T10:00:01Z", "No budget")))
    assert rows(late, "quality_feedback")[0][1] == "missed"
    with_verdict = run(changes(("A", "Unqualified", "2026-03-03T10:00Z", "Student")))
    assert rows(with_verdict, "quality_feedback")[0][1:] == ("met", ts("2026-03-05T10:00Z"), ts("2026-03-03T10:00Z"))


def test_a_missing_reason_is_pending_until_the_deadline_then_missed_for_the_owner() -> None:
    status = changes(("A", "rejected", "2026-03-03T10:00Z"), ("A", "nurture", "2026-03-03T11:00Z", "ignored"))
    assert rows(run(status, as_of="2026-03-05T10:00Z"), "quality_feedback")[0][1] == "pending"
    result = run(status, as_of="2026-03-05T10:00:01Z")
    assert rows(result, "quality_feedback") == [(0, "missed", ts("2026-03-05T10:00Z"), None)]
    assert result.loc[result["clock"] == "quality_feedback", "owner_id"].tolist() == ["U1"]
    reason_only = changes(("A", "rejected", "2026-03-03T10:00Z"), ("A", None, "2026-03-04T09:00Z", "Too small"))
    assert rows(run(reason_only), "quality_feedback")[0][1] == "met"


def test_the_template_window_is_five_business_days() -> None:
    result = run(changes(("A", "rejected", "2026-03-06T16:00Z")), policy=TEMPLATE)  # a Friday, 16:00
    assert rows(result, "quality_feedback")[0][2] == ts("2026-03-13T16:00Z")


def test_no_rejection_no_feedback_clock() -> None:
    assert rows(run(changes(("A", "accepted", "2026-03-03T10:00Z"))), "quality_feedback") == []


# --- status_recurring -----------------------------------------------------------------------------

def test_a_week_with_two_status_changes_is_one_met_period() -> None:
    status = changes(("A", "working", "2026-03-03T10:00Z"), ("A", "Interested", "2026-03-05T10:00Z"),
                     ("A", "working", "2026-03-16T11:00Z"))
    result = run(status, as_of="2026-03-20T00:00Z")
    assert rows(result, "status_recurring") == [
        (1, "met", ts("2026-03-09T10:00Z"), ts("2026-03-03T10:00Z")),
        (2, "missed", ts("2026-03-16T10:00Z"), None),
        (3, "met", ts("2026-03-23T10:00Z"), ts("2026-03-16T11:00Z")),
    ]
    at_boundary = run(changes(("A", "working", "2026-03-09T10:00Z")), as_of="2026-03-20T00:00Z")
    assert [r[1] for r in rows(at_boundary, "status_recurring")] == ["met", "missed", "pending"]


def test_recurring_status_stops_at_the_episode_end_or_an_opportunity() -> None:
    ended = run(changes(("A", "rejected", "2026-03-17T10:00Z", "x")), frame=mqa(ended="2026-03-17T10:00Z"))
    assert [r[:2] for r in rows(ended, "status_recurring")] == [(1, "missed"), (2, "missed"), (3, "met")]
    opportunity = pd.DataFrame({"account_id": ["A"], "created_at": [ts("2026-03-10T09:00Z")]})
    stopped = run(changes(), opportunities=opportunity)
    assert [r[:2] for r in rows(stopped, "status_recurring")] == [(1, "missed"), (2, "missed")]


def test_recurring_period_is_configurable() -> None:
    policy = with_clocks(SEVEN, status_recurring=RecurringClock(every=Window(business_hours=40)))
    result = run(changes(), policy=policy, as_of="2026-03-10T00:00Z")
    assert [r[2] for r in rows(result, "status_recurring")] == [ts("2026-03-09T10:00Z"), ts("2026-03-16T10:00Z")]


# --- routing time ---------------------------------------------------------------------------------

def test_routing_time_ends_at_the_crm_assignment() -> None:
    by_crm = run(changes(), activities=acts(("owner_assigned", "2026-03-03T09:00Z")))
    assert rows(by_crm, "routing_time") == [(0, "missed", ts("2026-03-03T08:00Z"), ts("2026-03-03T09:00Z"))]
    written = run(changes(), frame=mqa(writeback_done_at=ts("2026-03-02T12:00Z")))
    assert rows(written, "routing_time")[0][3] == ts("2026-03-02T12:00Z")
    assert rows(run(changes()), "routing_time")[0][3] == ts("2026-03-02T10:00Z")  # no evidence: routed_at
    spec = run(changes(), policy=with_clocks(SEVEN, routing_time_end="routed"),
               activities=acts(("owner_assigned", "2026-03-03T09:00Z")))
    assert rows(spec, "routing_time")[0][3] == ts("2026-03-02T10:00Z")


# --- report tables --------------------------------------------------------------------------------

def test_report_tables_rank_reasons_mix_dispositions_and_say_what_routing_measures() -> None:
    mqas = pd.concat([mqa(), mqa().assign(account_id="B"), mqa().assign(account_id="C", tier=2)], ignore_index=True)
    mqas["reasons"] = [[{"category": "intent", "rule": "pricing_page_visit", "points": 15}]] * 3
    status = changes(("A", "rejected", "2026-03-03T10:00Z", "No budget"), ("B", "Unqualified", "2026-03-03T10:00Z"),
                     ("B", None, "2026-03-04T10:00Z", "no budget "), ("C", "meeting held", "2026-03-03T10:00Z"))
    clocks = run(status, frame=mqas)
    data = SlaData.of(mqas=mqas, status_changes=status, sla_clocks=clocks, users=USERS)
    start, end, as_of = ts("2026-03-01T00:00Z"), ts("2026-04-01T00:00Z"), ts("2026-04-01T00:00Z")
    period = fb.mqas_in(data, start, end, as_of, SEVEN)
    assert dict(zip(period["account_id"], period["disposition"], strict=True)) == {
        "A": "rejected", "B": "unqualified", "C": "meeting_held"}
    reasons = fb.rejection_reasons(catalog.mqa_facts(data, start, end, as_of, SEVEN))
    assert reasons[["reason", "mqas", "share_pct"]].values.tolist() == [["No budget", 2, 100.0]]
    mix = fb.disposition_mix(sc.mqa_outcomes(data, as_of, SEVEN), start, end).set_index("tier")
    assert mix.loc["all", "mqas"] == 3 and mix.loc[1, "rejected"] == 1 and mix.loc[2, "meeting_held"] == 1
    basis = fb.routing_basis(catalog.family_table("routing_basis", catalog.routing_basis_facts(data, start, end)),
                             SEVEN)
    assert "pipeline routed them (routed_at)" in fb.routing_sentence(basis)
    compliance = fb.optional_compliance(data, start, end)
    assert compliance[compliance["owner_id"] == "all"].set_index("clock").loc["quality_feedback", "met"] == 2


def test_rejection_reasons_count_the_rejected_verdict_class_like_the_rejection_rate() -> None:
    """A policy whose rejected class is narrower than the dispositions that need a reason: "Unqualified" needs a
    reason but is not a rejection, so its reason is not a rejection reason; the reasons add up to the catalog's
    rejected MQAs (the rejection rate's numerator)."""
    policy = SEVEN.model_copy(update={"dispositions": SEVEN.dispositions.model_copy(update={"rejected": ["rejected"]})})
    mqas = pd.concat([mqa(), mqa().assign(account_id="B")], ignore_index=True)
    status = changes(("A", "rejected", "2026-03-03T10:00Z", "No budget"),
                     ("B", "Unqualified", "2026-03-03T10:00Z", "Wrong persona"))
    data = SlaData.of(mqas=mqas, status_changes=status, sla_clocks=run(status, policy, frame=mqas), users=USERS)
    start, end = ts("2026-03-01T00:00Z"), ts("2026-04-01T00:00Z")
    facts = catalog.mqa_facts(data, start, end, end, policy)
    reasons = fb.rejection_reasons(facts)
    assert reasons[["reason", "mqas", "share_pct"]].values.tolist() == [["No budget", 1, 100.0]]
    assert reasons["mqas"].sum() == catalog.read(catalog.family_table("mqas", facts), "mqas_rejected", catalog.ALL)


def test_statuses_all_mapped_report_no_unknown_value() -> None:
    """Every stored value mapped: nothing to report (not a row per stored value with no name and no count)."""
    counts = pd.DataFrame({"status": ["accepted", "Working", "rejected", "nurture"], "changes": [5, 4, 3, 2],
                           "accounts": [2, 2, 1, 1], "first_at": pd.Timestamp("2026-03-01", tz="UTC"),
                           "last_at": pd.Timestamp("2026-03-02", tz="UTC")})
    assert dispositions.unknown_from_counts(counts, load_policy()).empty
    with_unknown = pd.concat([counts, counts.head(1).assign(status="Callback")], ignore_index=True)
    assert dispositions.summary_of_unknown(dispositions.unknown_from_counts(with_unknown, load_policy())) == [
        "Callback (5 changes, 2 accounts)"]
