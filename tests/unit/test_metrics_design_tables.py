"""The SLA design's report tables read their numbers from the metrics catalog (issue 22, part 22d): what routing
time was measured to, escalations by clock and level, the target account list's agreement, the top accounts'
revisit, the CRM-logging table's late column, campaigns per tier, and leads and content per tier. Each test checks
the catalog's numbers on a few hand-made rows, then shifts the catalog (the ``shifted`` fixture of
test_metrics_reports) or hands the table builder a catalog table of its own, to show the table reads it there."""

from __future__ import annotations

import pandas as pd
import pytest

from abm_sla.domain import breaches, metrics, review
from abm_sla.domain import commitments as cm
from abm_sla.domain import feedback as fb
from abm_sla.domain.policy.reports import Leads
from abm_sla.domain.policy.teams import CampaignPlan, ContentSupport
from abm_sla.domain.scorecard import SlaData
from abm_sla.domain.sla import OWNER_ASSIGNED
from abm_sla.services import reporting
from abm_sla.services.reporting import monthly, sections
from tests.unit.builders import account, frame
from tests.unit.test_crm_updates import NS, WEEK, H, data_of, logged, policy_with
from tests.unit.test_metrics import MARCH, POLICY
from tests.unit.test_metrics_reports import SHIFT, shifted  # noqa: F401 - the fixture

T = pd.Timestamp("2026-03-02T10:00Z")


def table_of(rows: list[tuple[str, str, float]], **columns: list) -> pd.DataFrame:
    """A catalog table of its own: (metric, segment, value) rows, other columns as given (else empty)."""
    out = pd.DataFrame(rows, columns=["metric", "segment", "value"])
    for column in ("numerator", "denominator"):
        out[column] = columns.get(column, [float("nan")] * len(rows))
    return out.assign(target="", verdict=columns.get("verdict", [""] * len(rows)))


# -- 1. what routing time was measured to ------------------------------------------------------------------

def routing_data() -> SlaData:
    """Four routing clocks due in March: met at the write-back (A), at the CRM's own owner change (B), at neither
    (C: the pipeline's run), and not met yet (D); one due in April (E) is not the period's."""
    ids = list("ABCDE")
    met = [T + H, T + H, T + H, pd.NaT, T + H]
    mqas = pd.DataFrame({"account_id": ids, "trigger_at": [T] * 4 + [T + pd.Timedelta(days=40)], "routed_at": T,
                         "writeback_done_at": [T + H, pd.NaT, pd.NaT, pd.NaT, pd.NaT], "tier": 1.0,
                         "owner_id": "U1"})
    clocks = mqas[["account_id", "trigger_at"]].assign(
        clock="routing_time", status=["met", "met", "met", "pending", "met"], due_at=mqas["trigger_at"] + 2 * H,
        met_at=met, tier=[1.0, 1.0, 2.0, 2.0, 1.0], owner_id="U1")
    acts = frame("activities", [{"activity_id": "o1", "account_id": "B", "type": OWNER_ASSIGNED,
                                 "occurred_at": T + H}])
    return SlaData.of(mqas=mqas, sla_clocks=clocks, activities=acts)


def test_routing_basis_counts_each_clock_once_by_what_it_was_measured_to(shifted):  # noqa: F811
    data = routing_data()
    table = metrics.family_table("routing_basis", metrics.routing_basis_facts(data, *MARCH))
    assert [metrics.value(table, metric) for metric in metrics.ROUTING_BASES.values()] == [1, 1, 1, 1]
    assert metrics.value(table, "routing_clocks_pipeline_run", "tier=2") == 1
    basis = fb.routing_basis(table, POLICY)
    assert basis["measured_to"].tolist() == list(fb.ROUTING_BASES) and basis["clocks"].tolist() == [1, 1, 1, 1]
    assert "for 2 of 3 MQAs" in fb.routing_sentence(basis)
    shifted("routing_clocks_crm_writeback")
    table = metrics.family_table("routing_basis", metrics.routing_basis_facts(data, *MARCH))
    assert fb.routing_basis(table, POLICY)["clocks"].tolist() == [1 + SHIFT, 1, 1, 1]


# -- 2. escalations by clock and level -----------------------------------------------------------------------

def escalation_data() -> SlaData:
    """A: first touch escalated to level 1 (R1) and 2 (M1); B: level 1 to two people (R1, R2); C: a status-update
    level opened in April (not the period's)."""
    rows = [("A", "first_touch", 1, "R1", T), ("A", "first_touch", 2, "M1", T + H), ("B", "first_touch", 1, "R1", T),
            ("B", "first_touch", 1, "R2", T), ("C", "status_update", 1, "R1", T + pd.Timedelta(days=40))]
    escalations = pd.DataFrame(rows, columns=["account_id", "clock", "level", "to_user_id", "opened_at"]).assign(
        trigger_at=T - H, owner_id="U1", steps_taken=None, resolution=None)
    users = frame("users", [{"user_id": user, "name": user, "role": role, "active": True}
                            for user, role in (("R1", "revops"), ("R2", "revops"), ("M1", "CMO"))])
    return SlaData.of(escalations=escalations, users=users)


def test_escalations_by_clock_and_level_are_the_catalogs_distinct_mqas_and_people(shifted):  # noqa: F811
    data = escalation_data()
    table = metrics.compute(data, *MARCH, MARCH[1], POLICY)
    assert metrics.value(table, "escalated_mqas") == 2 and metrics.value(table, "escalation_recipients") == 3
    assert metrics.value(table, "escalated_mqas", "level=1") == 2
    assert metrics.value(table, "escalation_recipients", "clock=first_touch,level=2") == 1
    assert not metrics.row(table, "escalated_mqas")["additive"]  # an MQA escalated twice is one of the quarter
    shown = breaches.escalations_by_clock(data, *MARCH, table)
    assert shown.values.tolist() == [["first_touch", 1, 2, 2, "revops"], ["first_touch", 2, 1, 1, "cmo"]]
    shifted("escalated_mqas")
    table = metrics.family_table("escalation_levels", metrics.escalation_level_facts(data, *MARCH))
    assert breaches.escalations_by_clock(data, *MARCH, table)["mqas"].tolist() == [2 + SHIFT, 1 + SHIFT]


# -- 3. the target account list's agreement and the top accounts' revisit ------------------------------------

def listed_data(agreed_at: str) -> SlaData:
    """a0 on the list (added 10 March, agreed ``agreed_at`` by Dana), a1 removed on 20 March, a2 never listed."""
    accounts = frame("accounts", [account(i) for i in ("a0", "a1", "a2")])
    rows = [{"target_account_id": "t0", "account_id": "a0", "added_at": "2026-03-10T00:00Z", "agreed_at": agreed_at,
             "agreed_by": "Dana"},
            {"target_account_id": "t1", "account_id": "a1", "added_at": "2026-01-01T00:00Z",
             "removed_at": "2026-03-20T00:00Z", "agreed_at": "2026-01-01T00:00Z", "agreed_by": "Sam"}]
    return SlaData.of(accounts=accounts, target_accounts=frame("target_accounts", rows))


@pytest.mark.parametrize(("agreed_at", "age", "overdue"), [
    ("2026-03-05T00:00Z", 27.0, False), ("2026-02-01T00:00Z", 59.0, True),
    ("2026-03-01T00:00Z", 31.0, False),           # 31 days to the period's last moment: on time
    ("2026-02-28T23:59:59Z", 31.1, True)])        # a second more: shown 31.1 (rounded up), over
def test_the_list_agreement_is_the_catalogs(agreed_at, age, overdue):
    data = listed_data(agreed_at)
    table = metrics.compute(data, *MARCH, MARCH[1], POLICY)
    assert [metrics.value(table, metric) for metric in ("list_rows_added", "list_rows_removed")] == [1, 1]
    assert metrics.value(table, "list_agreement_age_days") == age
    assert metrics.row(table, "list_agreement_age_days")["verdict"] == ("missed" if overdue else "met")
    moment = MARCH[1] - NS
    shown = reporting.tal_agreement_table(table, data, moment).iloc[0]
    assert (shown["on_list"], shown["added_recently"], shown["removed_recently"]) == (1, 1, 1)
    assert (shown["agreement_age_days"], shown["agreement_overdue"], shown["agreed_by"]) == (age, overdue, "Dana")
    own = table_of([("accounts_on_list", "all", 7), ("list_rows_added", "all", 5), ("list_rows_removed", "all", 4),
                    ("list_agreement_age_days", "all", 3.5)], verdict=["", "", "", "met"])
    shown = reporting.tal_agreement_table(own, data, moment).iloc[0]
    assert shown[["on_list", "added_recently", "removed_recently", "agreement_age_days"]].tolist() == [7, 5, 4, 3.5]
    assert not shown["agreement_overdue"]


def test_a_list_never_agreed_is_overdue_with_no_age():
    listed = listed_data(None)
    data = SlaData.of(accounts=listed.accounts, target_accounts=listed.target_accounts.assign(agreed_at=pd.NaT))
    table = metrics.compute(data, *MARCH, MARCH[1], POLICY)
    assert pd.isna(metrics.value(table, "list_agreement_age_days"))
    assert reporting.tal_agreement_table(table, data, MARCH[1] - NS).iloc[0]["agreement_overdue"]


def test_the_top_accounts_revisit_is_the_catalogs():
    from tests.unit.test_tier1_commitments import TOP, t, tal
    from tests.unit.test_tier1_commitments import accounts as tier_accounts

    at = t("2026-03-31T12:00")
    data = SlaData.of(accounts=tier_accounts(("A", "1", "U1"), ("B", "1", "U1")),
                      target_accounts=tal(("A", 1.0, "2026-01-30T12:00"), ("B", 2.0, "2026-02-10T12:00")))
    top = cm.top_accounts(data, at, TOP)
    table = metrics.compute(data, *MARCH, at, TOP)
    assert metrics.value(table, "top_accounts_revisit_age_days") == 49.0  # B's rows, agreed 10 February
    shown = reporting.top_revisit_table(table, data, top, at, TOP).iloc[0]
    assert (shown["top_accounts"], shown["revisit_age_days"], shown["overdue"]) == (2, 49.0, False)
    assert shown["revisit_days"] == TOP.target_account_list.top_accounts.revisit_days
    assert shown["last_revisited_at"] == t("2026-02-10T12:00")
    own = table_of([("top_accounts", "all", 9), ("top_accounts_revisit_age_days", "all", 61.5)],
                   verdict=["", "missed"])
    own = own.assign(period_start=MARCH[0], period_end=MARCH[1])
    shown = reporting.top_revisit_table(own, data, top, at, TOP).iloc[0]
    assert (shown["top_accounts"], shown["revisit_age_days"], shown["overdue"]) == (9, 61.5, True)


# -- 4. the CRM-logging table's late column -------------------------------------------------------------------

def test_activities_logged_late_are_the_catalogs(shifted):  # noqa: F811
    start, end = WEEK
    day = start + pd.Timedelta(days=1)
    acts = [logged("meeting", day, 24 * H), logged("call", day, 24 * H + NS), logged("call", day, 30 * H),
            logged("email_open", day, 30 * H, "b")]
    data, policy = data_of(acts), policy_with()
    table = metrics.compute(data, start, end, end, policy)
    assert metrics.value(table, "sales_activities_logged_late") == 2
    assert metrics.value(table, "marketing_activities_logged_late", "owner=U2") == 1
    shown = reporting.crm_logging_table(table).set_index(["side", "owner_id"])
    assert shown.loc[("sales", "all"), ["activities", "in_time", "late"]].tolist() == [3, 1, 2]
    shifted("sales_activities_logged_late")
    shown = reporting.crm_logging_table(metrics.compute(data, start, end, end, policy)).set_index(["side", "owner_id"])
    assert shown.loc[("sales", "all"), "late"] == 2 + SHIFT


# -- 5. campaigns per tier, leads and content per tier: read from the period's table ------------------------

def test_campaigns_per_tier_are_read_from_the_catalog():
    policy = POLICY.model_copy(update={"campaign_plan": CampaignPlan(tiers=[1, 2])})
    own = table_of([("campaigns_per_tier", "tier=1", 4), ("tiers_without_campaign", "tier=1", 0),
                    ("campaigns_per_tier", "tier=2", 0), ("tiers_without_campaign", "tier=2", 1)])
    shown = reporting.campaign_tier_table(own, policy)
    assert shown.values.tolist() == [[1, 4, False], [2, 0, True]]


def test_leads_and_content_per_tier_are_read_from_the_periods_table():
    policy = POLICY.model_copy(update={"leads": Leads(), "content_support": ContentSupport()})
    data = SlaData.of()
    measures = [metric for _, metric in review.lead_measure_names(policy)]
    rows = [(metric, segment, value) for metric in measures
            for segment, value in (("all", 10.0), ("tier=1", 11.0), ("tier=2", 12.0))]
    rows += [("content_coverage_rate", "all", 50.0), ("content_coverage_rate", "tier=1", 25.0),
             ("content_coverage_rate", "owner=U1", 99.0)]
    own = table_of(rows, numerator=[1.0] * len(rows), denominator=[2.0] * len(rows), verdict=[""] * len(rows))
    own = own.assign(target="", unit="")
    leads_section = sections._leads_section(data, *MARCH, policy, own)[0]
    by_tier = {table.name: table.frame for table in leads_section.tables}["leads_by_tier"].set_index("segment")
    assert by_tier.loc["tier=2", measures[0]] == 12.0 and "all" not in by_tier.index
    content = monthly._content_section(data, *MARCH, MARCH[1], policy, own)[0].tables[0].frame
    assert content[["segment", "covered_pct"]].values.tolist() == [["all", 50.0], ["tier=1", 25.0]]
