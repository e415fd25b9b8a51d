"""The last report tables of issue 22 (part 22c) read their numbers from the metrics catalog: the comparisons'
change column, the MQA volume table, conversion by hand-off source (the feedback loop's and the monthly review's)
and the optional clocks per owner. Each test checks the table against the catalog and shifts the catalog (the
``shifted`` fixture of test_metrics_reports) to show the table reads it from there."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain import feedback as fb
from abm_sla.domain import metrics, review
from abm_sla.domain import scorecard as sc
from abm_sla.domain.scorecard import SlaData
from tests.unit.test_feedback_loop import SEVEN, USERS, changes, mqa, run, ts
from tests.unit.test_metrics import MARCH, POLICY, verdict_data
from tests.unit.test_metrics_reports import SHIFT, shifted  # noqa: F401 - the fixture

APRIL = sc.parse_period("2026-04")


def april_data() -> SlaData:
    """verdict_data's four March MQAs and one more in April (A1 again, after its episode)."""
    data = verdict_data()
    more = data.mqas.iloc[[1]].assign(trigger_at=ts("2026-04-02T00:00Z"), routed_at=ts("2026-04-02T00:00Z"),
                                      ended_at=pd.NaT)
    return SlaData.of(accounts=data.accounts, mqas=pd.concat([data.mqas, more], ignore_index=True),
                      status_changes=data.status_changes)


# -- 1. the comparisons' change column --------------------------------------------------------------------

def test_the_change_column_is_the_catalogs_change_of_the_two_tables(monkeypatch):
    data = april_data()
    trend = review.compare(review.monthly_metrics, data, *APRIL, APRIL[1], POLICY).set_index("metric")
    assert trend.loc["MQAs", ["value", "previous_value", "change"]].tolist() == [1, 4, -3]
    now = metrics.compute(data, *APRIL, APRIL[1], POLICY)
    before = metrics.compute(data, *MARCH, MARCH[1], POLICY)
    assert metrics.change(now, before, "mqas") == -3
    assert metrics.change(now, before, "mqas", "tier=1", "target", POLICY) == 0  # the same commitment
    calls = []

    def marked(now_, before_, metric, segment=metrics.ALL, *args):
        calls.append((metric, segment))
        return 42.0

    monkeypatch.setattr(metrics, "change", marked)
    trend = review.compare(review.monthly_metrics, data, *APRIL, APRIL[1], POLICY)
    assert (trend["change"] == 42.0).all() and ("mqas", metrics.ALL) in calls
    span = (ts("2026-03-03T00:00Z"), ts("2026-04-03T00:00Z"))  # the period before holds March's MQAs
    weekly = review.compare(review.weekly_metrics, data, *span, span[1], POLICY)
    assert (weekly["change"] == 42.0).all() and ("accounts_quiet", "tier=1") in calls


def test_a_previous_period_with_nothing_measured_has_no_change():
    data = verdict_data()
    trend = review.compare(review.monthly_metrics, data, *MARCH, MARCH[1], POLICY).set_index("metric")
    assert trend.loc["MQAs", "value"] == 4
    assert trend["previous_value"].isna().all() and trend["change"].isna().all()


# -- 2. the MQA volume table --------------------------------------------------------------------------------

def test_the_mqa_volume_table_is_the_catalogs_mqas_and_target(shifted, monkeypatch):  # noqa: F811
    data = april_data()
    quarter = sc.parse_period("2026-Q1")
    volume = metrics.mqa_volume(data, *quarter, quarter[1], POLICY).set_index(["tier", "month"])
    assert len(volume) == 9 and volume.loc[(1, "2026-03"), "mqas"] == 4 and volume.loc[(1, "2026-01"), "mqas"] == 0
    march = metrics.compute(data, *MARCH, MARCH[1], POLICY)
    assert volume.loc[(1, "2026-03"), "commitment"] == metrics.read(march, "mqas", "tier=1", "target", POLICY)
    shifted("mqas")
    volume = metrics.mqa_volume(data, *quarter, quarter[1], POLICY).set_index(["tier", "month"])
    assert volume.loc[(1, "2026-03"), "mqas"] == 4 + SHIFT
    real = metrics.targets._targets

    def halved(policy, start, end):
        return {key: (text, judge, bound / 2) for key, (text, judge, bound) in real(policy, start, end).items()}

    monkeypatch.setattr("abm_sla.domain.metrics.targets._targets", halved)
    volume = metrics.mqa_volume(data, *MARCH, MARCH[1], POLICY).set_index(["tier", "month"])
    assert volume.loc[(1, "2026-03"), "commitment"] == POLICY.targets.monthly_mqa_commitments[1] / 2


# -- 3. conversion by hand-off source -----------------------------------------------------------------------

def feedback_data() -> SlaData:
    mqas = pd.concat([mqa(), mqa().assign(account_id="B"), mqa().assign(account_id="C", tier=2)], ignore_index=True)
    mqas["reasons"] = [[{"category": "intent", "rule": "pricing_page_visit", "points": 15}]] * 2 + [[]]
    status = changes(("A", "rejected", "2026-03-03T10:00Z", "No budget"), ("B", "accepted", "2026-03-03T10:00Z"),
                     ("C", "meeting held", "2026-03-03T10:00Z"))
    return SlaData.of(mqas=mqas, status_changes=status, sla_clocks=run(status, frame=mqas), users=USERS)


def test_conversion_by_source_reads_the_mqa_family(shifted):  # noqa: F811
    data = feedback_data()
    start, end = ts("2026-03-01T00:00Z"), ts("2026-04-01T00:00Z")
    table = fb.conversion_by_source(data, start, end, end, SEVEN).set_index("handoff_source")
    assert table.loc["pricing_page_visit", ["mqas", "accepted", "acceptance_pct", "won"]].tolist() == [2, 1, 50.0, 0]
    assert table.loc["unknown", "mqas"] == 1
    shifted("mqas_won", "mqas_accepted")
    table = fb.conversion_by_source(data, start, end, end, SEVEN).set_index("handoff_source")
    assert table.loc["pricing_page_visit", ["accepted", "won"]].tolist() == [1 + SHIFT, SHIFT]
    review_table = review.conversion_by_source(data, start, end, end, SEVEN).set_index("source")
    assert review_table.loc[metrics.ALL, "accepted"] == 1 + SHIFT


# -- 4. the optional clocks per owner -----------------------------------------------------------------------

def test_the_feedback_compliance_table_is_the_catalogs_clock_family(shifted):  # noqa: F811
    data = feedback_data()
    start, end = ts("2026-03-01T00:00Z"), ts("2026-04-01T00:00Z")
    compliance = fb.optional_compliance(data, start, end).set_index(["clock", "owner_id"])
    table = metrics.family_table("clocks", metrics.clock_facts(data, start, end), ("owner",))
    for column, metric in metrics.clock_metric_ids("quality_feedback").items():
        assert compliance.loc[("quality_feedback", "U1"), column] == metrics.value(table, metric, "owner=U1")
        assert compliance.loc[("quality_feedback", "all"), column] == metrics.value(table, metric)
    assert compliance.loc[("quality_feedback", "all"), "met"] == 1
    shifted("quality_feedback_clocks_met")
    compliance = fb.optional_compliance(data, start, end).set_index(["clock", "owner_id"])
    assert compliance.loc[("quality_feedback", "U1"), "met"] == 1 + SHIFT
