"""The quarterly renegotiation's tables read their numbers from the metrics catalog (issue 22): the tier-move
decisions per rule and the disputes of the period. Each test checks the table against the catalog's values and
shifts the catalog (the ``shifted`` fixture of test_metrics_reports) to show the table reads them from there."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain import feedback as fb
from abm_sla.domain import metrics
from abm_sla.domain import scorecard as sc
from abm_sla.domain import tier_moves as tm
from abm_sla.domain.learning.pipeline_check import _figures, calibration, score_check_facts
from abm_sla.domain.learning.validation import evaluate
from abm_sla.domain.metrics import quarterly_tables as qt
from abm_sla.domain.scorecard import SlaData
from abm_sla.services.reporting.sections import _breaches_section
from abm_sla.services.reporting.tier_moves import move_decisions
from tests.unit.test_disputes import disputes, notes
from tests.unit.test_metrics import MARCH, POLICY, t, verdict_data
from tests.unit.test_metrics_reports import SHIFT, shifted  # noqa: F401 - the fixture


def ledger_data() -> SlaData:
    """Three recommendations in March (one accepted on the 10th, one declined, one pending) and one in February."""
    rows = pd.DataFrame({
        "account_id": ["A1", "A2", "A3", "A4"], "rule": ["promote_2_to_1", "promote_3_to_2", "promote_3_to_2",
                                                         "promote_3_to_2"],
        "recommended_at": [t("2026-03-02"), t("2026-03-04"), t("2026-03-20"), t("2026-02-10")],
        "from_tier": ["2", "3", "3", "3"], "proposed_tier": ["1", "2", "2", "2"], "reason": "x",
        "decision": [tm.ACCEPTED, tm.DECLINED, tm.PENDING, tm.ACCEPTED],
        "decided_at": [t("2026-03-10"), t("2026-03-18"), pd.NaT, t("2026-02-12")],
        "decision_note": None, "evaluated_at": t("2026-03-31")})
    return SlaData.of(tier_move_recommendations=tm.conform(rows))


def test_the_tier_move_decisions_are_the_catalogs(shifted):  # noqa: F811
    data = ledger_data()
    table = metrics.compute(data, *MARCH, MARCH[1], POLICY)
    shown = move_decisions(data, *MARCH, MARCH[1], POLICY, table).set_index("rule")
    assert shown.loc[metrics.ALL, ["recommended", "accepted", "declined", "pending"]].tolist() == [3, 1, 1, 1]
    assert shown.loc["promote_3_to_2", "recommended"] == metrics.value(table, "tier_moves_recommended",
                                                                       "rule=promote_3_to_2") == 2
    assert shown.loc["promote_2_to_1", "median_age_days"] == metrics.value(
        table, "tier_move_age_median_days", "rule=promote_2_to_1") == 8.0
    assert metrics.value(table, "tier_moves_recommended", "tier=3") == 2  # the account's tier when recommended
    shifted("tier_moves_pending")
    table = metrics.compute(data, *MARCH, MARCH[1], POLICY)
    shown = move_decisions(data, *MARCH, MARCH[1], POLICY, table).set_index("rule")
    assert shown.loc[metrics.ALL, "pending"] == 1 + SHIFT


def test_without_a_stored_ledger_the_decisions_are_the_catalogs_over_the_run_ledger():
    """No ledger stored (a warehouse older than it): the table is the catalog's family over what one run as of
    the period's end would record, here none."""
    empty = SlaData.of()
    shown = move_decisions(empty, *MARCH, MARCH[1], POLICY, metrics.compute(empty, *MARCH, MARCH[1], POLICY))
    assert shown["rule"].tolist() == [metrics.ALL] and shown["recommended"].tolist() == [0]


def dispute_data() -> SlaData:
    """One dispute opened 2 March, closed 10 March ([agreed]), reopened 20 March."""
    history = notes((1, "2026-03-02", "opened", "x"), (1, "2026-03-10", "closed", "[agreed] fine"),
                    (1, "2026-03-20", "reopened", "again"))
    frame = disputes({"dispute_id": 1, "opened_at": "2026-03-02", "steps_from": "2026-03-20", "times_reopened": 1})
    return SlaData.of(disputes=frame, dispute_notes=history)


def test_the_dispute_counts_are_the_catalogs(shifted):  # noqa: F811
    data = dispute_data()
    table = metrics.compute(data, *MARCH, MARCH[1], POLICY)

    def shown(table: pd.DataFrame) -> pd.Series:
        section = _breaches_section(data, POLICY, *MARCH, MARCH[1], weekly=False, table=table)
        return {t.name: t for t in section.tables}["dispute_counts"].frame.iloc[0]

    counts = shown(table)
    assert (counts["opened"], counts["reopened"], counts["closed"], counts["open_at_end"]) == (1, 1, 1, 1)
    assert counts["median_days_to_close"] == metrics.value(table, "dispute_close_median_days") == 8.0
    assert counts["outcome_agreed"] == metrics.value(table, "disputes_closed_agreed") == 1
    assert counts["open_at_end"] == metrics.value(table, "disputes_open_at_end")
    assert not metrics.BY_ID["disputes_open_at_end"].additive and metrics.BY_ID["disputes_opened"].additive
    shifted("disputes_opened", "disputes_open_at_end")
    counts = shown(metrics.compute(data, *MARCH, MARCH[1], POLICY))
    assert (counts["opened"], counts["open_at_end"]) == (1 + SHIFT, 1 + SHIFT)
    assert qt.dispute_counts(qt.dispute_table(data, *MARCH))["opened"].iloc[0] == 1 + SHIFT


def test_a_commitment_without_an_owner_split_shows_no_owner_counts():
    """The MQA volume and the benchmarks have no per-owner split: their owners columns are empty, not "0 owners
    measured" (numbers the catalog never measured); the chronic-miss diagnosis still calls them team-level."""
    data = verdict_data()
    rows = sc.commitments(data, *MARCH, MARCH[1], POLICY).set_index(["commitment", "tier"])
    assert rows.loc[("mqa_volume", 1), ["owners", "owners_missed"]].isna().all()
    assert rows.loc[("first_touch_met_pct", 1), ["owners", "owners_missed"]].notna().all()  # split by the catalog
    chronic = sc.chronic_misses(data, MARCH[1], MARCH[1], POLICY).set_index(["commitment", "tier"])
    volume = chronic.loc[("mqa_volume", 1)]
    assert volume["missed"] is True and volume["diagnosis"] == "team-level number (no owner breakdown)"


def test_the_disqualification_patterns_are_the_catalogs_mqa_family_per_reason(shifted):  # noqa: F811
    data = verdict_data()
    facts = metrics.mqa_facts(data, *MARCH, MARCH[1], POLICY)
    shown = fb.rejection_reasons(facts).set_index("reason")
    assert shown.loc["no budget", ["mqas", "owners"]].tolist() == [1, 1]
    assert shown[["tier_1", "tier_2", "tier_3"]].sum(axis=1).tolist() == shown["mqas"].tolist()
    table = metrics.compute(data, *MARCH, MARCH[1], POLICY)
    assert metrics.value(table, "mqa_owners") == facts["owner_id"].nunique()
    shifted("mqa_owners")
    assert fb.rejection_reasons(facts).set_index("reason").loc["no budget", "owners"] == 1 + SHIFT


def scored_rows() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Eight account/as-of rows: totals 10-80, the two top ones qualified; accounts A-D twice."""
    rows = pd.DataFrame({"account_id": list("ABCDABCD"), "won": [False, False, True, False, False, True, True, False],
                         "opportunity": [False, True, True, False, True, True, True, False]})
    scored = pd.DataFrame({"total": [10.0, 20, 30, 40, 50, 60, 70, 80],
                           "qualified": [False] * 6 + [True, True]})
    return rows, scored


def test_the_pipeline_check_figures_are_the_catalogs_score_check_family(shifted):  # noqa: F811
    """The figures equal the model card's (validation.evaluate) and are read from the catalog's score_check rows."""
    rows, scored = scored_rows()
    table = metrics.family_table("score_check", score_check_facts(rows, scored))
    for outcome in ("won", "opportunity"):
        expected = evaluate(scored, rows[outcome].to_numpy(dtype=bool), rows["account_id"].to_numpy())
        shown = _figures(table, outcome)
        for key in ("auc", "precision", "recall", "top_decile_lift", "mqa_rows", "mqa_accounts",
                    "outcome_accounts_found", "rows", "outcome_accounts"):
            assert shown[key] == expected[key], (outcome, key)
        if outcome == "won":
            bands = calibration(table)
            assert bands[["rows", "won_rows"]].values.tolist() == [
                [row["rows"], row["outcome_rows"]] for row in expected["calibration"]]
            assert bands["won_rate"].fillna(-1).tolist() == [
                -1 if row["rate"] is None else row["rate"] for row in expected["calibration"]]
    assert metrics.value(table, "score_auc_won") == 0.6667  # won at 30, 60, 70 above 2, 4, 4 of 5 others: 10/15
    shifted("score_auc_won", "score_rows")
    table = metrics.family_table("score_check", score_check_facts(rows, scored))
    assert _figures(table, "won")["auc"] == 0.6667 + SHIFT
    assert calibration(table).set_index("band").loc["0-24", "rows"] == 2 + SHIFT  # totals 10 and 20
    assert "score_check" not in metrics.compute(SlaData.of(), *MARCH, MARCH[1], POLICY)["metric"].map(
        lambda metric: metrics.BY_ID[metric].family).unique()
