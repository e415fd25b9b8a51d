"""The last report tables of issue 22 (part 22e) read their numbers from the metrics catalog: the MQAs without a
verdict, the weekly four numbers' missed and pending, the weekly MQA rule's MQAs per week, the pipeline's share per
source, the engagement trend per month, the reassignments per clock and the list's size. Each test checks the table
against the catalog's table of the same metric, segment and period, then shifts the catalog (the ``shifted``
fixture of test_metrics_reports) or hands the table builder a catalog table of its own, to show the table reads it
there. Last, the coverage script counts row keys and policy values apart, never as the catalog's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from abm_sla.domain import breaches, metrics, review
from abm_sla.domain import commitments as cm
from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy.reports import PipelineCredit
from abm_sla.domain.policy.targets import WeeklyMqas
from abm_sla.services.reporting import weekly
from tests.unit.test_metrics import MARCH, POLICY, frame, t, verdict_data
from tests.unit.test_metrics_design_tables import table_of
from tests.unit.test_metrics_reports import SHIFT, shifted  # noqa: F401 - the fixture
from tests.unit.test_mqa_bands import data_with, policy_with
from tests.unit.test_tier1_commitments import TOP, accounts, acts, tal

WEEK = sc.parse_period("2026-W10")


# -- 1. MQAs without a verdict (the marketing quality tables) -------------------------------------------------

def test_mqas_without_a_verdict_are_the_catalogs(shifted):  # noqa: F811
    data = verdict_data()
    more = data.mqas.iloc[[0]].assign(account_id="A5", ended_at=pd.NaT)  # no status change: no verdict
    data = sc.SlaData.of(accounts=data.accounts, mqas=pd.concat([data.mqas, more], ignore_index=True),
                         status_changes=data.status_changes)
    outcomes = sc.mqa_outcomes(data, MARCH[1], POLICY)
    quality = sc.marketing_quality(outcomes, *MARCH, POLICY).set_index("tier")
    table = metrics.compute(data, *MARCH, MARCH[1], POLICY)
    assert quality.loc[1, "no_verdict"] == metrics.value(table, "mqas_without_verdict", "tier=1") == 1
    assert quality.loc[sc.ALL, "no_verdict"] == quality.loc[sc.ALL, "mqas"] - metrics.value(table, "mqas_with_verdict")
    shifted("mqas_without_verdict")
    by_owner = sc.marketing_quality(outcomes, *MARCH, POLICY, by="owner_id").set_index("owner_id")
    assert by_owner.loc["U1", "no_verdict"] == 1 + SHIFT


# -- 2. the weekly four numbers' missed and pending ----------------------------------------------------------

def clock_data() -> sc.SlaData:
    """Clocks due in 2026-W10: two of the four SLA clocks missed (tiers 1, 2), one pending (tier 1); a
    marketing_response clock missed and an optional clock pending, which are not the four's."""
    rows = [("A", "routing_time", "missed", 1.0), ("B", "first_touch", "pending", 1.0), ("C", "cadence", "missed", 2.0),
            ("D", "marketing_response", "missed", 1.0), ("E", "quality_feedback", "pending", 2.0),
            ("F", "first_touch", "met", 2.0)]
    due = t("2026-03-03 10:00")
    clocks = pd.DataFrame([{"account_id": account, "trigger_at": t("2026-03-02"), "clock": clock, "status": status,
                            "due_at": due, "met_at": due if status == "met" else pd.NaT, "tier": tier,
                            "owner_id": "U1"} for account, clock, status, tier in rows])
    return sc.SlaData.of(sla_clocks=clocks)


def test_the_four_numbers_missed_and_pending_are_the_catalogs_four_clocks(shifted):  # noqa: F811
    data = clock_data()
    table = metrics.family_table("clocks", metrics.clock_facts(data, *WEEK), ("tier",))
    rows = weekly._four_numbers(sc.clock_compliance(data, *WEEK, POLICY), table).set_index("tier")
    assert rows.loc[1, ["missed", "pending"]].tolist() == [1, 1]
    assert rows.loc[2, ["missed", "pending"]].tolist() == [1, 0]
    assert rows.loc[sc.ALL, ["missed", "pending"]].tolist() == [metrics.value(table, "sla_clocks_missed"),
                                                                metrics.value(table, "sla_clocks_pending")] == [2, 1]
    assert metrics.value(table, "clocks_missed") == 3  # every clock: marketing_response's too
    mine = table_of([("sla_clocks_missed", "tier=3", 7.0), ("sla_clocks_pending", metrics.ALL, 5.0)])
    rows = weekly._four_numbers(sc.clock_compliance(data, *WEEK, POLICY), mine).set_index("tier")
    assert rows.loc[3, "missed"] == 7 and rows.loc[sc.ALL, "pending"] == 5 and rows.loc[1, "missed"] == 0
    shifted("sla_clocks_pending")
    table = metrics.compute(data, *WEEK, WEEK[1], POLICY)
    rows = weekly._four_numbers(sc.clock_compliance(data, *WEEK, POLICY), table).set_index("tier")
    assert rows.loc[1, "pending"] == 1 + SHIFT


# -- 3. the weekly MQA rule: the catalog's MQAs of each week -------------------------------------------------

def test_each_weeks_mqas_are_the_catalogs_mqas_of_that_week(shifted):  # noqa: F811
    triggers = [("2026-03-03 09:00", 2), ("2026-03-04 09:00", 2), ("2026-03-04 10:00", 1),  # W10: 2 Tier 2
                ("2026-03-31 09:00", 2), ("2026-04-01 09:00", 2)]  # W14: one by as_of, one after it
    data = data_with(triggers)
    policy = policy_with(weekly_mqas=WeeklyMqas(min=1, max=3, tier=2))
    as_of = t("2026-03-31 12:00")
    weeks = sc.weekly_mqas(data, *MARCH, as_of, policy)
    assert weeks["mqas"].tolist() == [2, 0, 0, 0, 1]
    for row in weeks.itertuples():
        week = metrics.compute(data, row.week_start, row.week_start + pd.Timedelta(days=7), as_of, policy)
        assert row.mqas == metrics.value(week, "mqas", "tier=2")
    assert weeks["in_band"].tolist()[:4] == [True, False, False, False]
    shifted("mqas")
    assert sc.weekly_mqas(data, *MARCH, as_of, policy)["mqas"].tolist() == [2 + SHIFT, SHIFT, SHIFT, SHIFT, 1 + SHIFT]


# -- 4. the pipeline's share per source ----------------------------------------------------------------------

def test_the_pipeline_share_per_source_is_the_catalogs(shifted):  # noqa: F811
    opps = pd.DataFrame({"opportunity_id": ["O1", "O2", "O3"], "account_id": ["A1", "A2", "A3"],
                         "amount": [100.0, 50.0, 25.0], "created_at": [t("2026-03-10")] * 3,
                         "close_date": pd.NaT, "is_closed": False, "is_won": False})
    mqas = pd.DataFrame({"account_id": ["A1"], "trigger_at": [t("2026-03-01")], "tier": 1.0, "owner_id": "U1",
                         "routed_at": [t("2026-03-01")], "ended_at": pd.NaT, "total": 60.0})
    acts_ = frame("activity_id account_id type occurred_at contact_id url", [
        ("a1", "A2", "email_open", t("2026-02-01"), None, None)])
    data = sc.SlaData.of(opportunities=opps, mqas=mqas, activities=acts_)
    by_mqa = POLICY.model_copy(update={"pipeline_credit": PipelineCredit(rule="mqa")})
    out = review.pipeline_by_source(data, *MARCH, by_mqa)
    table = metrics.family_table("created", metrics.created_facts(data, *MARCH, by_mqa), ("source",))
    segments = [f"source={slug}" for slug in metrics.SOURCE_SEGMENTS] + [metrics.ALL]
    assert out["share_pct"].tolist() == [metrics.value(table, "pipeline_created_share", s) for s in segments]
    assert out["share_pct"].tolist() == [57.1, 28.6, 14.3, 100.0]
    assert review.pipeline_by_source(data, *sc.parse_period("2026-05"), by_mqa)["share_pct"].isna().all()
    shifted("pipeline_created_share")
    assert review.pipeline_by_source(data, *MARCH, by_mqa)["share_pct"].iloc[-1] == 100.0 + SHIFT


# -- 5. the engagement trend: each month's catalog ------------------------------------------------------------

def test_the_engagement_trend_is_each_months_catalog(shifted):  # noqa: F811
    data = sc.SlaData.of(accounts=accounts(("A", "1", "U1"), ("B", "1", "U1"), ("C", "2", "U1")),
                         activities=acts(("a1", "A", "email_open", "2026-02-10", "C1", None),
                                         ("a2", "A", "email_open", "2026-03-10", "C1", None),
                                         ("a3", "A", "webinar", "2026-03-11", "C2", None),
                                         ("a4", "C", "email_open", "2026-03-12", "C3", None)))
    trend = review.engagement_trend(data, MARCH[1], 2, POLICY).set_index("month")
    assert list(trend.index) == ["2026-02", "2026-03"]
    for month in trend.index:
        table = metrics.compute(data, *sc.parse_period(month), MARCH[1], POLICY)
        for column in trend.columns:
            metric, segment = review.TREND_METRICS[column]
            shown, measured = trend.loc[month, column], metrics.value(table, metric, segment)
            assert shown == measured or (pd.isna(shown) and pd.isna(measured)), (month, column)
    assert trend.loc["2026-03", ["engagement_pct_tier_1", "engagement_pct", "engaged_contacts"]].tolist() == [
        50.0, 66.7, 3.0]
    shifted("engagement_rate")
    assert review.engagement_trend(data, MARCH[1], 2, POLICY).loc[1, "engagement_pct"] == 66.7 + SHIFT


# -- 6. reassignments per clock --------------------------------------------------------------------------------

def test_reassignments_per_clock_are_the_catalogs():
    rows = [("A", "first_touch", "reassigned", "2026-03-03", "2026-03-03 01:00"),
            ("B", "first_touch", "kept", "2026-03-04", None), ("C", "cadence", "reassigned", "2026-03-05", None),
            ("D", "cadence", "pending", "2026-03-06", None), ("E", "cadence", "reassigned", "2026-04-02", None)]
    reassignments = pd.DataFrame([{"account_id": account, "trigger_at": t("2026-03-01"), "clock": clock, "level": 1,
                                   "reassigned_at": t(at), "from_owner_id": "U1", "to_owner_id": "U2",
                                   "status": status, "reason": "", "writeback_done_at": t(back) if back else pd.NaT}
                                  for account, clock, status, at, back in rows])
    data = sc.SlaData.of(reassignments=reassignments)
    table = metrics.compute(data, *MARCH, MARCH[1], POLICY)
    counts = breaches.reassignment_counts(table).set_index("clock")
    assert counts.to_dict("index") == {"cadence": {"reassigned": 1, "kept": 0, "written_back": 0},
                                       "first_touch": {"reassigned": 1, "kept": 1, "written_back": 1}}
    for column, metric in breaches.REASSIGNMENT_COLUMNS.items():
        assert counts.loc["cadence", column] == metrics.value(table, metric, "clock=cadence")
    listed = breaches.reassignments(data, *MARCH)  # the item list beside it: the same rows
    assert len(listed) == 4 and (listed["status"] == "reassigned").sum() == counts["reassigned"].sum()
    mine = table_of([("reassignments_kept", "clock=status_update", 3.0), ("escalated_mqas", "clock=cadence", 9.0)])
    assert breaches.reassignment_counts(mine).to_dict("records") == [
        {"clock": "status_update", "reassigned": 0, "kept": 3, "written_back": 0}]


# -- 7. the list's size ------------------------------------------------------------------------------------------

def test_the_list_size_shows_the_catalogs_accounts_on_the_list():
    ids = ["A0", "A1", "A2"]
    data = sc.SlaData.of(accounts=accounts(*[(i, "1", "U1") for i in ids]),
                         target_accounts=tal(*[(i, None, "2026-03-01") for i in ids]))
    table = metrics.compute(data, *MARCH, MARCH[1], TOP)
    at = MARCH[1] - pd.Timedelta(1)
    on_list = metrics.read(table, "accounts_on_list")
    assert cm.list_size_check(data, at, TOP, on_list).iloc[0]["on_list"] == cm.list_size_check(
        data, at, TOP).iloc[0]["on_list"] == on_list == 3
    above = cm.list_size_check(data, at, TOP, 4.0).iloc[0]
    assert above["on_list"] == 4 and above["status"] == "above" and "agreed 2-3" in above["warning"]


# -- 8. the coverage script: row keys and policy values apart --------------------------------------------------

def _coverage():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "catalog_coverage.py"
    spec = importlib.util.spec_from_file_location("catalog_coverage", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_row_keys_and_policy_values_are_counted_apart_never_as_the_catalogs():
    coverage = _coverage()
    volume = pd.DataFrame({"tier": [1, 2], "month": ["2026-03"] * 2, "mqas": [4, 5], "commitment": [10.0, 20.0],
                           "max": [None, 35.0], "met": [False, False], "other": [1.0, 2.0]})
    assert coverage.count_table("mqa_volume", volume) == (4, 2, 3, 0)  # other: outside; tier and max: apart
    weeks = pd.DataFrame({"week": ["2026-W10"], "mqas": [2], "min": [5.0], "max": [10.0]})
    assert coverage.count_table("mqa_weeks", weeks) == (1, 0, 2, 0)
    assert not set(coverage.KEYS) & set(coverage.ITEMS) and not set(coverage.POLICY) & set(coverage.ITEMS)
    for name, columns in [*coverage.KEYS.items(), *coverage.POLICY.items()]:
        assert not set(columns) & set(coverage.CATALOG_COLUMNS.get(name, [])), name
