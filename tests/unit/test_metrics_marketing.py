"""Issue 22, the marketing side, the quarterly attribution and the proposals: every number those tables show is a
metrics-catalog entry's (abm_sla.domain.metrics), so a table that computed its own number would disagree with the
report's metrics table (<report>.metrics.csv) here."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given

from abm_sla.domain import marketing, metrics, review
from abm_sla.domain import proposals as pr
from abm_sla.domain import scorecard as sc
from abm_sla.services import reporting
from abm_sla.services.config_files import load_policy
from tests.unit.test_metrics_properties import MONTHS, POLICY, Q1, SETTINGS, generated, seeds

MARCH = MONTHS[2]
DEFAULT = load_policy()


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def frame(columns: str, rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns.split())


def _segment(tier: object) -> str:
    return metrics.ALL if tier == sc.ALL else f"tier={int(tier)}"


def assert_rows_are_the_catalogs(table: pd.DataFrame, columns: dict[str, str], catalog: pd.DataFrame,
                                 by: str = "tier") -> None:
    """Each row of a per-tier table shows, in each column, the catalog's value of its metric and segment."""
    assert len(table) > 0
    for _, row in table.iterrows():
        for column, source in columns.items():
            metric, _, field = source.partition(":")
            found = metrics.row(catalog, metric, _segment(row[by]))
            expected = float("nan") if found is None else found[field or "value"]
            shown = row[column]
            assert (pd.isna(shown) and (pd.isna(expected) or expected == 0)) or float(shown) == float(expected), (
                column, row[by], shown, expected)


@pytest.fixture(scope="module")
def reports():
    data = generated(7)
    return data, reporting.build_monthly(data, "2026-03", POLICY), reporting.build_quarterly(data, "2026-Q1", POLICY)


def test_the_marketing_tables_show_the_catalogs_numbers(reports):
    """Tempo, channel coverage, the engaged stage, the channel table and the marketing_response clock, in the
    monthly and the quarterly report, are the numbers of the report's own metrics table."""
    _, monthly, quarterly = reports
    for report in (monthly, quarterly):
        tables = report.tables
        assert_rows_are_the_catalogs(tables["touch_tempo"].frame, marketing.TEMPO_METRICS, report.metrics)
        assert_rows_are_the_catalogs(tables["channel_coverage"].frame, marketing.COVERAGE_METRICS, report.metrics)
    quarter = quarterly.tables
    assert_rows_are_the_catalogs(quarter["engaged_stage"].frame, marketing.STAGE_METRICS, quarterly.metrics)
    assert_rows_are_the_catalogs(monthly.tables["marketing_activity"].frame, review.ACTIVITY_METRICS,
                                 monthly.metrics)
    assert_rows_are_the_catalogs(quarter["engagement"].frame, sc.ENGAGEMENT_METRICS, quarterly.metrics)
    response = quarter["marketing_response"].frame
    assert_rows_are_the_catalogs(response, metrics.clock_metric_ids(sc.MARKETING_RESPONSE), quarterly.metrics)
    # the tempo is on in the demo preset: something was judged
    assert metrics.value(quarterly.metrics, "tempo_accounts_judged") > 0


def test_the_benchmarks_are_the_catalogs(reports):
    _, _, quarterly = reports
    benchmarks = quarterly.tables["benchmarks"].frame.set_index("commitment")
    for key, (metric, tier, _) in sc.BENCHMARKS.items():
        if key in benchmarks.index:
            expected = metrics.value(quarterly.metrics, sc.CATALOG_IDS[metric],
                                     metrics.ALL if tier is None else f"tier={tier}")
            assert sc_same(benchmarks.loc[key, "value"], expected), key


def sc_same(left: float, right: float) -> bool:
    return (pd.isna(left) and pd.isna(right)) or float(left) == float(right)


def test_the_quarterly_attribution_is_the_catalogs_one_pipeline_credit_rule(reports):
    """The quarterly pipeline table, the monthly pipeline by source and the metrics table split the pipeline by
    the same rule: each part's count and amount are the catalog's source= segments."""
    _, _, quarterly = reports
    pipeline = quarterly.tables["pipeline"].frame
    whole = pipeline[pipeline["tier"].eq(sc.ALL)].set_index("attribution")
    table = quarterly.metrics
    for label, slug in zip(sc.credit_parts(POLICY), metrics.SOURCE_SEGMENTS, strict=True):
        assert whole.loc[label, "amount"] == metrics.value(table, "pipeline_created", f"source={slug}")
        assert whole.loc[label, "opportunities"] == metrics.value(table, "opportunities_created", f"source={slug}")
        assert whole.loc[label, "from_mqa"] == metrics.value(table, "opportunities_from_mqa", f"source={slug}")
    assert whole.loc["marketing-influenced", "amount"] == metrics.value(table, "pipeline_influenced")
    assert whole.loc[sc.ALL, "from_mqa_amount"] == metrics.value(table, "pipeline_from_mqa")
    per_tier = pipeline[pipeline["attribution"].eq(sc.ALL) & pipeline["tier"].ne(sc.ALL)]
    assert_rows_are_the_catalogs(per_tier, sc.ATTRIBUTION_METRICS, table)
    assert whole.loc[sc.credit_parts(POLICY)[0], "amount"] > 0


@pytest.mark.parametrize("rule", ["touch_order", "mqa"])
def test_every_report_uses_the_one_pipeline_credit_rule(rule: str):
    """Switching policy pipeline_credit.rule moves the monthly table, the quarterly table and the catalog
    together (before, the monthly and the quarterly 'marketing-sourced' had two meanings)."""
    data = generated(7)
    policy = POLICY.model_copy(update={"pipeline_credit": POLICY.pipeline_credit.model_copy(update={"rule": rule})})
    sourced = sc.credit_parts(policy)[0]
    quarterly = sc.pipeline_attribution(data, *MARCH, policy).set_index(["attribution", "tier"])
    monthly = review.pipeline_by_source(data, *MARCH, policy).set_index("source")
    table = metrics.compute(data, *MARCH, MARCH[1], policy)
    expected = metrics.value(table, "pipeline_created", "source=marketing")
    assert quarterly.loc[(sourced, sc.ALL), "amount"] == monthly.loc[sourced, "amount"] == expected


def test_abm_against_non_abm_is_the_catalogs_list_segments():
    """An opportunity is ABM when its account was on the list when it was created, also once it closes: a2 left
    the list before its deal closed and still counts ABM; a3 joined after its deal was created and does not."""
    accounts = frame("account_id name tier owner_id created_at", [
        (f"a{i}", f"n{i}", 1, "U1", t("2025-01-01")) for i in range(1, 4)])
    tal = frame("account_id added_at removed_at agreed_at", [
        ("a1", t("2026-01-01"), pd.NaT, pd.NaT), ("a2", t("2026-01-01"), t("2026-03-01"), pd.NaT),
        ("a3", t("2026-02-15"), pd.NaT, pd.NaT)])
    opps = frame("opportunity_id account_id created_at close_date is_closed is_won amount", [
        ("o1", "a1", t("2026-02-01"), t("2026-03-05"), True, True, 10.0),
        ("o2", "a2", t("2026-02-01"), t("2026-03-06"), True, False, 10.0),
        ("o3", "a3", t("2026-02-01"), t("2026-03-07"), True, True, 10.0)])
    data = sc.SlaData.of(accounts=accounts, target_accounts=tal, opportunities=opps)
    out = marketing.abm_comparison(opps, tal, *MARCH, MARCH[1]).set_index("group")
    assert out.loc[marketing.ABM, ["closed", "won", "win_rate_pct"]].tolist() == [2, 1, 50.0]
    assert out.loc[marketing.NON_ABM, ["closed", "won", "win_rate_pct"]].tolist() == [1, 1, 100.0]
    table = metrics.compute(data, *MARCH, MARCH[1], DEFAULT)
    assert metrics.value(table, "win_rate", "list=on") == 50.0
    assert metrics.value(table, "opportunities_closed", "list=off") == 1


def rejection_data(statuses: list[str]) -> sc.SlaData:
    """One account per status, each scored 60 on 2 March (every threshold 40-60 fires it)."""
    ids = [f"A{i}" for i in range(len(statuses))]
    history = frame("account_id as_of total gates", [(a, t("2026-03-02"), 60.0, {}) for a in ids])
    status = frame("status_change_id account_id status changed_at reason", [
        (f"s{i}", a, s, t("2026-03-04"), None) for i, (a, s) in enumerate(zip(ids, statuses, strict=True))])
    return sc.SlaData.of(score_history=history, status_changes=status)


def test_the_proposed_threshold_reads_rejection_by_the_dispositions_map():
    """Issue 22: 'rejection at 50 is 6.1%, in band' counted only the raw status 'rejected'. Here 1 rejected + 1
    Unqualified of 10 verdicts is 20%, out of the 5-10% band; the raw count (10%) would have been 'in band'."""
    data = rejection_data(["rejected", "Unqualified", *["accepted"] * 8])
    backtest = pr.backtest_thresholds(data, *MARCH, MARCH[1], DEFAULT, thresholds=[50])
    assert backtest.set_index("threshold").loc[50, ["with_verdict", "rejected", "rejection_pct"]].tolist() == [
        10, 2, 20.0]
    proposal = pr.propose_threshold(backtest, DEFAULT, 50)
    assert proposal.proposed == 50 and "no threshold" in proposal.reason
    in_band = rejection_data(["Unqualified", *["accepted"] * 9])
    proposal = pr.propose_threshold(pr.backtest_thresholds(in_band, *MARCH, MARCH[1], DEFAULT, thresholds=[50]),
                                    DEFAULT, 50)
    assert proposal.reason == "rejection at 50 is 10%, in the 5-10% band"


def test_the_backtest_rows_are_the_catalogs_mqa_metrics():
    """Each threshold's row is the catalog's mqas family over the MQAs that threshold would have fired."""
    data = rejection_data(["rejected", "disqualified", "accepted", "working"])
    backtest = pr.backtest_thresholds(data, *MARCH, MARCH[1], DEFAULT, thresholds=[50, 61]).set_index("threshold")
    fired = pr.simulated_mqas(data, *MARCH, [50], DEFAULT.episode_end_statuses()).drop(columns="threshold")
    outcomes = sc.mqa_outcomes(sc.SlaData.of(mqas=fired, status_changes=data.status_changes), MARCH[1], DEFAULT)
    table = metrics.family_table("mqas", metrics.mqa_fact_columns(outcomes), ())
    for column, metric in pr.BACKTEST_METRICS.items():
        assert sc_same(backtest.loc[50, column], metrics.value(table, metric)), column
    assert backtest.loc[50, ["mqas", "with_verdict", "rejected"]].tolist() == [4, 3, 2]
    assert backtest.loc[61, "mqas"] == 0 and pd.isna(backtest.loc[61, "rejection_pct"])


def test_the_window_and_volume_proposals_show_the_reports_catalog_numbers(reports):
    """The quarterly proposals argue from the report's own metrics table: the windows' p80, responses and
    unanswered, the volumes' MQAs, months and run-rate are its rows per tier (before, the p80 and the run-rate
    were computed beside the catalog, and 'unanswered' meant missed-and-untouched, not the response table's)."""
    quarterly = reports[2]
    catalog = quarterly.metrics
    windows = quarterly.tables["window_proposals"].frame
    assert_rows_are_the_catalogs(windows, {"p80": "first_touch_response_p80_hours",
                                           "responses": "first_touch_response_p80_hours:denominator",
                                           "unanswered": "first_touches_unanswered"}, catalog)
    assert windows["responses"].sum() > 0
    responses = quarterly.tables["response_by_tier"].frame.set_index("tier")
    assert windows.set_index("tier")["unanswered"].tolist() == responses.loc[list(sc.TIERS), "unanswered"].tolist()
    volumes = quarterly.tables["volume_proposals"].frame
    assert_rows_are_the_catalogs(volumes, {"mqas": "mqas", "run_rate": "mqa_run_rate",
                                           "months": "mqa_run_rate:denominator"}, catalog)
    assert volumes["months"].tolist() == [3.0] * 3 and volumes["mqas"].sum() > 0


@SETTINGS
@given(seed=seeds)
def test_the_months_attribution_adds_up_to_the_quarters(seed: int):
    """Additive: the quarterly pipeline table's every part, per tier, is the sum of its months'."""
    data = generated(seed)
    keys = ["attribution", "tier"]
    quarter = sc.pipeline_attribution(data, *Q1, POLICY).set_index(keys)
    months = pd.concat([sc.pipeline_attribution(data, *month, POLICY) for month in MONTHS])
    summed = months.groupby(keys)[["opportunities", "amount", "from_mqa", "from_mqa_amount"]].sum()
    joined = quarter.join(summed, rsuffix="_months")
    for column in ("opportunities", "amount", "from_mqa", "from_mqa_amount"):
        assert ((joined[column] - joined[f"{column}_months"].fillna(0)).abs() < 1e-6).all(), column
    assert quarter.loc[(sc.ALL, sc.ALL), "opportunities"] > 0


@SETTINGS
@given(seed=seeds)
def test_the_new_marketing_metrics_are_numerator_over_denominator(seed: int):
    """The tempo, stage and coverage rates are their counts' ratio; their counts are not marked additive."""
    table = metrics.compute(generated(seed), *Q1, Q1[1], POLICY)
    for rate, on, of in (("tempo_on_rate", "tempo_on", "tempo_accounts_judged"),
                         ("engaged_account_rate", "engaged_accounts", "stage_accounts"),
                         ("channel_coverage_rate", "coverage_covered", "coverage_engaged")):
        row = metrics.row(table, rate)
        assert (row["numerator"], row["denominator"]) == (metrics.value(table, on), metrics.value(table, of))
        assert not metrics.row(table, on)["additive"]
    assert metrics.row(table, "pipeline_influenced")["additive"]
