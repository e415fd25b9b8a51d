"""The metrics catalog: one definition per number, verdicts from the dispositions map, and the issue-22 fixes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from abm_sla.domain import feedback as fb
from abm_sla.domain import metrics, review
from abm_sla.domain import proposals as pr
from abm_sla.domain import scorecard as sc
from abm_sla.services.config_files import load_policy

POLICY = load_policy()
MARCH = sc.parse_period("2026-03")


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def frame(columns: str, rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns.split())


def verdict_data() -> sc.SlaData:
    """Four MQAs in March: accepted, rejected, 'Unqualified' (with its reason given after the status that ended
    the episode), and 'disqualified' (the CRM's spelling) with no reason."""
    accounts = frame("account_id name tier owner_id created_at", [
        (f"A{i}", f"n{i}", 1, "U1", t("2025-01-01")) for i in range(1, 5)])
    mqas = frame("account_id trigger_at tier owner_id routed_at ended_at total", [
        ("A1", t("2026-03-02"), 1, "U1", t("2026-03-02"), pd.NaT, 60.0),
        ("A2", t("2026-03-02"), 1, "U1", t("2026-03-02"), t("2026-03-04"), 60.0),
        ("A3", t("2026-03-02"), 1, "U1", t("2026-03-02"), t("2026-03-05"), 60.0),
        ("A4", t("2026-03-02"), 1, "U1", t("2026-03-02"), t("2026-03-06"), 60.0),
    ])
    status = frame("status_change_id account_id status changed_at reason", [
        ("s1", "A1", "accepted", t("2026-03-03"), None),
        ("s2", "A2", "rejected", t("2026-03-04"), "no budget"),
        ("s3", "A3", "Unqualified", t("2026-03-05"), None),
        ("s4", "A3", None, t("2026-03-06"), "wrong industry"),  # the reason, after the status that ended it
        ("s5", "A4", "disqualified", t("2026-03-06"), None),
    ])
    return sc.SlaData.of(accounts=accounts, mqas=mqas, status_changes=status)


def test_rejection_rate_counts_every_rejected_disposition():
    """Unqualified and disqualified are rejections (the policy's rejected class): 3 of 4 verdicts. Before, the
    scorecard counted only the raw value 'rejected' (1 of 2) and the monthly 'Disqualified' missed them."""
    data = verdict_data()
    quality = sc.marketing_quality(sc.mqa_outcomes(data, MARCH[1], POLICY), *MARCH, POLICY).set_index("tier")
    assert quality.loc[sc.ALL, ["accepted", "rejected", "rejection_pct"]].tolist() == [1, 3, 75.0]
    monthly = dict((name, value) for name, _, value in review.monthly_metrics(data, *MARCH, MARCH[1], POLICY))
    assert monthly["Disqualified (rejected)"] == 75.0
    table = metrics.compute(data, *MARCH, MARCH[1], POLICY)
    assert metrics.value(table, "rejection_rate") == 75.0


def test_the_backtest_counts_rejections_as_the_scorecard_does():
    history = frame("account_id as_of total gates", [
        (f"A{i}", t("2026-03-02"), 60.0, {}) for i in range(1, 5)])
    data = verdict_data()
    data = sc.SlaData.of(score_history=history, status_changes=data.status_changes)
    backtest = pr.backtest_thresholds(data, *MARCH, MARCH[1], POLICY, thresholds=[50]).set_index("threshold")
    assert backtest.loc[50, ["with_verdict", "accepted", "rejected", "rejection_pct"]].tolist() == [4, 1, 3, 75.0]


def test_the_rejected_class_is_configurable():
    policy = POLICY.model_copy(update={"dispositions": POLICY.dispositions.model_copy(
        update={"rejected": ["rejected"]})})
    table = metrics.compute(verdict_data(), *MARCH, MARCH[1], policy)
    assert metrics.row(table, "rejection_rate")[["numerator", "denominator", "value"]].tolist() == [1, 2, 50.0]


def test_a_reason_given_after_the_episode_ended_stays_in_the_reasons_table():
    """A3's reason came a day after the Unqualified status that ended its episode: the quality_feedback
    clock counts it, and now the reasons table does too (before: '(no reason)')."""
    data = verdict_data()
    reasons = fb.rejection_reasons(metrics.mqa_facts(data, *MARCH, MARCH[1], POLICY))
    reasons = reasons.set_index("reason")["mqas"].to_dict()
    assert reasons == {"no budget": 1, "wrong industry": 1, fb.NO_REASON: 1}


def test_value_is_numerator_over_denominator_and_counts_add_up():
    table = metrics.compute(verdict_data(), *MARCH, MARCH[1], POLICY)
    ratios = table[(table["unit"] == "pct") & (table["denominator"] > 0)]
    assert len(ratios) > 0
    assert (ratios["value"] == (100 * ratios["numerator"] / ratios["denominator"]).round(1)).all()
    counts = table[table["metric"] == "mqas"].set_index("segment")["value"]
    assert counts["all"] == counts[["tier=1", "tier=2", "tier=3"]].sum() == 4
    assert list(table.columns) == metrics.COLUMNS


def listed_data() -> sc.SlaData:
    """Three Tier 1 accounts, two on the target account list; a marketing touch on each."""
    accounts = frame("account_id name tier owner_id created_at", [
        (f"A{i}", f"n{i}", 1, "U1", t("2025-01-01")) for i in range(1, 4)])
    tal = frame("account_id added_at removed_at agreed_at", [
        ("A1", t("2025-06-01"), pd.NaT, pd.NaT), ("A2", t("2025-06-01"), pd.NaT, pd.NaT)])
    acts = frame("activity_id account_id type occurred_at contact_id owner_id url", [
        (f"a{i}", f"A{i}", "email_open", t("2026-03-03"), f"c{i}", None, None) for i in range(1, 4)])
    return sc.SlaData.of(accounts=accounts, target_accounts=tal, activities=acts)


def test_on_the_list_counts_only_listed_accounts():
    """Weekly 'Tier 1 on the list' and the monthly channel table count the list's accounts (2), not every
    Tier 1 account (3)."""
    data = listed_data()
    week = sc.parse_period("2026-W10")
    assert review.tier1_status(data, *week)["on the list"] == 2
    channels = review.marketing_activity(data, *MARCH).set_index("tier")
    assert channels.loc[1, ["accounts", "accounts_touched", "touches"]].tolist() == [2, 2, 2]
    table = metrics.compute(data, *MARCH, MARCH[1], POLICY)
    assert metrics.value(table, "accounts_on_list", "tier=1") == 2


def test_open_escalation_shows_the_owner_the_latest_ticket_is_owed_by():
    """After a reassignment the new owner's ticket is the latest: its owner, steps and ask go together."""
    escalations = frame("account_id trigger_at level to_user_id opened_at owner_id clock steps_taken resolution", [
        ("A1", t("2026-03-02"), 1, "R1", t("2026-03-02 12:00"), "U1", "first_touch", "none", "owed by U1"),
        ("A1", t("2026-03-02"), 1, "R2", t("2026-03-04 12:00"), "U2", "first_touch", "none", "owed by U2"),
    ])
    mqas = frame("account_id trigger_at tier owner_id routed_at ended_at", [
        ("A1", t("2026-03-02"), 1, "U2", t("2026-03-02"), pd.NaT)])
    clocks = frame("account_id trigger_at clock status due_at met_at owner_id tier", [
        ("A1", t("2026-03-02"), "first_touch", "missed", t("2026-03-04 14:00"), pd.NaT, "U2", 1)])
    data = sc.SlaData.of(escalations=escalations, mqas=mqas, sla_clocks=clocks)
    row_ = sc.open_escalations(data, t("2026-03-05")).iloc[0]
    assert (row_["owner_id"], row_["resolution"]) == ("U2", "owed by U2")


def test_the_metrics_reference_is_current():
    """docs/metrics.md is generated from the catalog (`abm-sla docs metrics --out docs/metrics.md`)."""
    checked_in = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert checked_in == metrics.reference_markdown(), "run: abm-sla docs metrics --out docs/metrics.md"
    assert all(f"`{metric.id}`" in checked_in for metric in metrics.CATALOG)


def test_the_proposal_diff_targets_the_policy_file_the_run_used(tmp_path, monkeypatch):
    """Before, the diff always named config/sla.yaml, whatever policy file the report was built with."""
    from abm_sla.domain.policy import DEFAULT_PATH
    from abm_sla.services import reporting
    from tests.unit.test_scorecard import sample_data

    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "ours.yaml").write_text(DEFAULT_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    report = reporting.build_report(sample_data(), "quarterly", "2026-Q1", policy_path=Path("policies/ours.yaml"))
    assert "policies/ours.yaml" in report.diffs
    assert "--- a/policies/ours.yaml" in report.diffs["policies/ours.yaml"]


def test_a_reason_given_after_the_next_mqa_counts_for_the_rejection_that_lacked_one():
    """As the quality_feedback clock: the first reason given after an MQA's rejection is its feedback, also when
    the account's next MQA fired in between (the demo's disqualifications: 15 of 20 gave a reason)."""
    mqas = frame("account_id trigger_at tier owner_id routed_at ended_at total", [
        ("A1", t("2026-03-02"), 1, "U1", t("2026-03-02"), t("2026-03-04"), 60.0),
        ("A1", t("2026-03-05"), 1, "U1", t("2026-03-05"), t("2026-03-09"), 60.0)])
    status = frame("status_change_id account_id status changed_at reason", [
        ("s1", "A1", "Unqualified", t("2026-03-04"), None),
        ("s2", "A1", "Unqualified", t("2026-03-09"), "no budget")])
    data = sc.SlaData.of(mqas=mqas, status_changes=status)
    found = fb.mqas_in(data, *MARCH, MARCH[1], POLICY)
    assert found["reason"].tolist() == ["no budget", "no budget"]


def test_accepted_means_one_thing_in_the_disposition_mix_and_the_scorecard():
    """An MQA accepted and then worked ('working' = contacted) is accepted in both tables; before, the disposition
    mix showed it as contacted while the scorecard counted it accepted (the demo's 17 vs 29)."""
    data = verdict_data()
    status = pd.concat([data.status_changes, frame("status_change_id account_id status changed_at reason", [
        ("s6", "A1", "working", t("2026-03-10"), None)])], ignore_index=True)
    data = sc.SlaData.of(accounts=data.accounts, mqas=data.mqas, status_changes=status)
    mix = fb.disposition_mix(sc.mqa_outcomes(data, MARCH[1], POLICY), *MARCH).set_index("tier").loc[sc.ALL]
    quality = sc.marketing_quality(sc.mqa_outcomes(data, MARCH[1], POLICY), *MARCH, POLICY).set_index("tier")
    assert mix["accepted"] == quality.loc[sc.ALL, "accepted"] == 1
    assert mix[POLICY.dispositions.rejected].sum() == quality.loc[sc.ALL, "rejected"] == 3


def test_family_sums_are_pandas_groupby_sums_for_whole_and_fractional_numbers():
    """The catalog's per-segment sums (bincount for whole numbers, pandas for the rest) are exactly
    ``groupby(keys).sum()`` reindexed to the labels, missing values and missing keys included."""
    import numpy as np

    from abm_sla.domain.metrics.aggregate import _summed

    rng = np.random.default_rng(7)
    for rows in (0, 1, 50, 2000):
        numeric = pd.DataFrame({"flag": rng.integers(0, 2, rows).astype("float64"),
                                "count": np.where(rng.random(rows) < 0.1, np.nan, rng.integers(0, 9, rows)),
                                "hours": rng.random(rows) * 1e3, "tiny": rng.random(rows) * 1e-9 + 0.1},
                               index=rng.integers(0, 5, rows))
        keys = pd.Series(rng.choice(["tier=1", "tier=2", "owner=U1", None], rows), index=numeric.index, dtype=object)
        labels = ["tier=1", "tier=2", "tier=3", "owner=U1"]
        expected = numeric.assign(_rows=1.0).groupby(keys).sum().reindex(labels, fill_value=0.0)
        sums = _summed(numeric, keys, labels)
        assert sorted(sums) == sorted(expected.columns)
        for column in expected.columns:
            assert sums[column].dtype == np.float64
            assert sums[column].tobytes() == expected[column].to_numpy(dtype="float64").tobytes(), column
