"""Proposals: the threshold backtest on a known case, windows and volumes, and diffs that apply cleanly."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from abm_sla.domain import metrics
from abm_sla.domain import proposals as pr
from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy import DEFAULT_PATH, parse_policy
from abm_sla.services.config_files import load_policy
from tests.unit.test_scorecard import Q1, frame, sample_data, t

POLICY = load_policy()
SLA_TEXT = DEFAULT_PATH.read_text(encoding="utf-8")
SCORING_TEXT = """# scoring model (test copy)
version: test-1
handoff:
  threshold: 50          # total points
  min_touches: 2
"""
REJECTED = (42, 44, 46, 52)
ACCEPTED = (47, 48, 49, 50, 51, 53, 54, 55, 56, 57, 58, 60, 62, 64, 66)
GATES_OK = {"gate_total": True, "gate_categories": True, "gate_decision_maker": True}


def backtest_data() -> sc.SlaData:
    """19 accounts scored once on 2026-01-10: 4 later rejected, 15 accepted; 2 open opportunities.

    Plus one account at 70 points failing the decision-maker gate (list-shaped gates): never fires.
    """
    totals = [*REJECTED, *ACCEPTED]
    ids = [f"B{total}" for total in totals]
    history = pd.DataFrame({
        "account_id": [*ids, "B70"], "as_of": t("2026-01-10 12:00"), "model_version": "test-1",
        "total": [*totals, 70], "qualified": False,
        "gates": [GATES_OK] * len(ids) + [[{"gate": "total", "passed": True},
                                           {"gate": "decision_maker", "passed": False}]],
        "reasons": [[]] * (len(ids) + 1),
    })
    status = pd.DataFrame({
        "status_change_id": ids, "account_id": ids, "changed_at": t("2026-01-12 12:00"),
        "status": ["rejected" if total in REJECTED else "accepted" for total in totals],
    })
    opportunities = frame("opportunity_id account_id amount created_at close_date is_closed is_won", [
        ("O60", "B60", 100.0, t("2026-01-20"), pd.NaT, False, False),
        ("O62", "B62", 100.0, t("2026-01-20"), pd.NaT, False, False),
    ])
    return sc.SlaData.of(score_history=history, status_changes=status, opportunities=opportunities)


@pytest.fixture(scope="module")
def backtest() -> pd.DataFrame:
    return pr.backtest_thresholds(backtest_data(), *Q1, Q1[1], POLICY).set_index("threshold")


def test_backtest_counts_known_case(backtest):
    assert backtest.index.tolist() == list(range(40, 71))
    assert backtest.loc[40, ["mqas", "rejected", "accepted"]].tolist() == [19, 4, 15]
    assert backtest.loc[47, ["mqas", "rejected", "rejection_pct"]].tolist() == [16, 1, 6.2]
    assert backtest.loc[50, "rejection_pct"] == 7.7
    assert backtest.loc[53, "rejection_pct"] == 0.0
    assert backtest.loc[60, ["mqas", "converted", "conversion_pct"]].tolist() == [4, 2, 50.0]
    assert backtest.loc[70, "mqas"] == 0  # B70 fails the decision-maker gate


def test_threshold_proposal_moves_into_the_band(backtest):
    frame_ = backtest.reset_index()
    assert pr.propose_threshold(frame_, POLICY, 50).proposed == 50  # 7.7% already in band
    too_loose = pr.propose_threshold(frame_, POLICY, 44)
    assert too_loose.proposed == 47 and "16.7%" in too_loose.reason
    too_strict = pr.propose_threshold(frame_, POLICY, 55)
    assert too_strict.proposed == 52


def test_threshold_needs_evidence(backtest):
    proposal = pr.propose_threshold(backtest.reset_index(), POLICY, 44, min_verdicts=50)
    assert proposal.proposed == 44 and "keep 44" in proposal.reason


def test_backtest_refires_after_an_end_status():
    history = pd.DataFrame({"account_id": ["C1", "C1", "C1"],
                            "as_of": [t("2026-02-01"), t("2026-02-02"), t("2026-02-10")],
                            "total": [60, 60, 60], "gates": [{}, {}, {}]})
    status = frame("status_change_id account_id status changed_at", [
        ("x1", "C1", "nurture", t("2026-02-05")), ("x2", "C1", "accepted", t("2026-02-11"))])
    data = sc.SlaData.of(score_history=history, status_changes=status)
    fired = pr.simulated_mqas(data, *Q1, [55], ("rejected", "nurture"))
    assert fired["trigger_at"].tolist() == [t("2026-02-01"), t("2026-02-10")]
    result = pr.backtest_thresholds(data, *Q1, Q1[1], POLICY, thresholds=[55])
    assert result[["mqas", "with_verdict", "accepted"]].values.tolist() == [[2, 1, 1]]


def response_table(responses: pd.DataFrame) -> pd.DataFrame:
    """The catalog's response family per tier over ``responses`` (what the window proposals read)."""
    return metrics.family_table("responses", metrics.response_facts(responses), ("tier",))


def test_windows_from_p80():
    tier1 = [0.5, 1, 1, 1.5, 2, 2.5, 3, 4, 5, 6]
    responses = pd.DataFrame({
        "tier": [1] * 10 + [2] * 3 + [3] * 5,
        "response_bh": [*tier1, 1, 2, 3, 10, 20, 22, 24, 24],
        "routed_at": t("2026-03-02 10:00"), "met_at": t("2026-03-02 11:00"),
    })
    windows = pr.propose_windows(response_table(responses), POLICY).set_index("tier")
    # p80 4.2 rounds up to 5, but one quarter at most doubles the current 2
    assert windows.loc[1, ["p80", "proposed"]].tolist() == [4.2, 4.0] and "capped at 2x" in windows.loc[1, "reason"]
    assert pd.isna(windows.loc[2, "proposed"]) and "not enough evidence" in windows.loc[2, "reason"]
    assert pd.isna(windows.loc[3, "proposed"]) and "current 24" in windows.loc[3, "reason"]


def test_slower_answers_than_the_window_are_capped_and_unanswered_ones_counted():
    responses = pd.DataFrame({
        "tier": [1] * 7, "response_bh": [1, 2, 3, 3, 3, 3, None], "status": ["met"] * 2 + ["missed"] * 5,
        "routed_at": t("2026-03-02 10:00"),
        "met_at": [t("2026-03-02 11:00")] * 6 + [pd.NaT],
    })
    windows = pr.propose_windows(response_table(responses), POLICY).set_index("tier")
    assert windows.loc[1, ["responses", "unanswered", "p80", "proposed"]].tolist() == [6, 1, 3.0, 3.0]


def test_windows_keep_the_tier_order():
    """Tier 3 answered faster than Tier 2 (p80 3 vs 30, capped at 8): Tier 3 is raised to Tier 2's 8, not cut to 3."""
    responses = pd.DataFrame({
        "tier": [1] * 5 + [2] * 5 + [3] * 5,
        "response_bh": [1, 1, 1, 2, 2, 10, 20, 30, 30, 30, 1, 2, 3, 3, 3],
        "routed_at": t("2026-03-02 10:00"), "met_at": t("2026-03-02 11:00"),
    })
    windows = pr.propose_windows(response_table(responses), POLICY).set_index("tier")
    assert pd.isna(windows.loc[1, "proposed"])  # p80 2 = the current window
    assert windows.loc[[2, 3], "proposed"].tolist() == [8.0, 8.0]
    assert "raised to Tier 2's 8" in windows.loc[3, "reason"]


def test_volumes_from_run_rate():
    volumes = pr.propose_volumes(pr.proposal_metrics(sample_data(), *Q1, Q1[1], POLICY), POLICY).set_index("tier")
    assert volumes["mqas"].tolist() == [3, 1, 1]
    assert volumes["run_rate"].tolist() == [1.0, 0.33, 0.33] and volumes["months"].tolist() == [3.0] * 3
    assert volumes["proposed"].tolist() == [1, 1, 1]
    assert volumes.loc[1, ["from", "to", "current"]].tolist() == ["2026-01", "2026-03", 10]


def test_set_yaml_values_reaches_into_lists_by_position():
    text = "rules:\n  # the first\n  - {name: a, points: 3, max: 9}\n  - name: b\n    points: 5\n"
    edited = pr.set_yaml_values(text, {("rules", 0, "max"): 12, ("rules", 1, "points"): 7})

    assert edited == "rules:\n  # the first\n  - {name: a, points: 3, max: 12}\n  - name: b\n    points: 7\n"
    with pytest.raises(KeyError):
        pr.set_yaml_values(text, {("rules", 2, "points"): 1})


def test_set_yaml_values_keeps_comments():
    edited = pr.set_yaml_values(SLA_TEXT, {("clocks", "first_touch", "windows", "2", "business_hours"): 6,
                                           ("targets", "monthly_mqa_commitments", "3"): 40})
    assert "2: {business_hours: 6}" in edited and "{1: 10, 2: 25, 3: 40}   # placeholders" in edited
    assert edited.count("\n") == SLA_TEXT.count("\n")
    policy = parse_policy(yaml.safe_load(edited))
    assert policy.clocks.first_touch.windows[2].business_hours == 6
    with pytest.raises(KeyError):
        pr.set_yaml_values(SLA_TEXT, {("targets", "nope"): 1})


def test_read_threshold():
    assert pr.find_threshold_path(SCORING_TEXT) == ("handoff", "threshold")
    assert pr.read_threshold(SCORING_TEXT) == 50
    assert pr.read_threshold("weights: {a: 1}\n") is None


def apply_patch(tmp_path: Path, files: dict[str, str], diff: str) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "change.diff").write_text(diff, encoding="utf-8")
    result = subprocess.run(["patch", "-p1", "--forward", "--batch", "-i", "change.diff"], cwd=tmp_path,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("patch") is None, reason="the patch tool is not installed")
def test_proposal_diffs_apply_and_validate(tmp_path):
    data = sc.SlaData.of(**{**{f: getattr(sample_data(), f) for f in sc.SlaData.__dataclass_fields__},
                            "score_history": backtest_data().score_history,
                            "status_changes": pd.concat([sample_data().status_changes,
                                                         backtest_data().status_changes])})
    scoring = SCORING_TEXT.replace("threshold: 50", "threshold: 44")
    found = pr.build_proposals(data, *Q1, Q1[1], POLICY, SLA_TEXT, scoring)
    assert found.threshold.proposed == 47
    assert set(found.diffs) == {"config/sla.yaml", "config/scoring.yaml"}
    apply_patch(tmp_path, {"config/sla.yaml": SLA_TEXT, "config/scoring.yaml": scoring},
                found.diffs["config/sla.yaml"] + found.diffs["config/scoring.yaml"])
    patched = load_policy(tmp_path / "config" / "sla.yaml")
    assert patched.targets.monthly_mqa_commitments == {1: 1, 2: 1, 3: 1}
    assert pr.read_threshold((tmp_path / "config" / "scoring.yaml").read_text()) == 47
    assert "# total points" in (tmp_path / "config" / "scoring.yaml").read_text()


def test_missing_scoring_model_is_noted():
    found = pr.build_proposals(sample_data(), *Q1, Q1[1], POLICY, SLA_TEXT, None)
    assert any("assumed 50" in note for note in found.notes)
    assert "config/scoring.yaml" not in found.diffs


def test_diff_of_file_without_final_newline_applies(tmp_path):
    old = "a: 1\nb: 2"
    diff = pr.unified_diff(old, pr.set_yaml_values(old, {("b",): 3}), "x.yaml")
    apply_patch(tmp_path, {"x.yaml": old}, diff)
    assert (tmp_path / "x.yaml").read_text() == "a: 1\nb: 3"


def test_category_minimums_that_bind_below_the_threshold_are_noted():
    binding = "gates:\n  min_total: 50\n  min_category: {firmographic: 20, engagement: 15, intent: 15}\n"
    loose = "gates:\n  min_total: 50\n  min_category: {firmographic: 10, engagement: 10, intent: 10}\n"
    assert "(firmographic 20 + engagement 15 + intent 15 = 50)" in pr._binding_category_minimums(binding, 50)[0]
    assert pr._binding_category_minimums(loose, 50) == []
    assert pr._binding_category_minimums("not: [valid", 50) == []


# -- the catalog numbers the window and volume proposals read (issue 22) ----------------------------------------

def hourly_responses() -> pd.DataFrame:
    """Tier 1: five answers 1-40 calendar hours after routing (business hours given apart), one before routing,
    one missed without a touch and one pending without a touch."""
    routed = t("2026-03-02 10:00")
    hours = [1, 2, 10, 30, 40]
    return pd.DataFrame({
        "tier": 1, "routed_at": routed,
        "met_at": [routed + pd.Timedelta(hours=h) for h in hours] + [routed - pd.Timedelta(hours=1), pd.NaT, pd.NaT],
        "response_bh": [0.5, 1, 2, 3, 4, 0.0, None, None],
        "status": ["met"] * 3 + ["missed"] * 2 + ["met", "missed", "pending"],
    })


def test_the_catalogs_p80_response_in_business_and_calendar_hours():
    table = response_table(hourly_responses())
    business = metrics.row(table, "first_touch_response_p80_hours", "tier=1")
    calendar = metrics.row(table, "first_touch_response_p80_calendar_hours", "tier=1")
    assert business["value"] == round(float(pd.Series([0.5, 1, 2, 3, 4, 0.0]).quantile(0.8)), 2) == 3.0
    assert calendar["value"] == float(pd.Series([1, 2, 10, 30, 40, 0.0]).quantile(0.8)) == 30.0  # before routing: 0
    assert business["denominator"] == calendar["denominator"] == 6
    assert not metrics.BY_ID["first_touch_response_p80_hours"].additive
    assert metrics.BY_ID["first_touch_response_p80_hours"].segments == \
        metrics.BY_ID["first_touch_response_p90_hours"].segments


def test_hour_and_day_windows_read_the_calendar_p80():
    hourly = parse_policy(yaml.safe_load(SLA_TEXT.replace("1: {business_hours: 2}", "1: {hours: 24}")))
    windows = pr.propose_windows(response_table(hourly_responses()), hourly).set_index("tier")
    assert windows.loc[1, ["unit", "responses", "p80", "proposed"]].tolist() == ["hours", 6, 30.0, 30.0]
    daily = parse_policy(yaml.safe_load(SLA_TEXT.replace("1: {business_hours: 2}", "1: {days: 1}")))
    windows = pr.propose_windows(response_table(hourly_responses()), daily).set_index("tier")
    assert windows.loc[1, ["unit", "p80", "proposed"]].tolist() == ["days", 1.25, 2.0]  # 30 h / 24, rounded up


def test_the_windows_unanswered_are_the_response_tables():
    """Issue 22, two meanings under one label: the proposals' 'Unanswered' counted only missed clocks without a
    touch (1 here) while the response table beside it in the same report counts every clock without an answer
    (2: the pending one too). Both are now the catalog's first_touches_unanswered."""
    responses = hourly_responses()
    windows = pr.propose_windows(response_table(responses), POLICY).set_index("tier")
    summary = sc.response_summary(responses, POLICY).set_index("tier")
    assert windows.loc[1, "unanswered"] == summary.loc[1, "unanswered"] == 2


def test_the_run_rate_is_mqas_per_month_elapsed_by_as_of():
    """Mid-quarter (as of 15 March: 2 + 14/31 months elapsed) the run-rate divides by the months elapsed, not by 3."""
    data = sample_data()
    as_of = t("2026-03-15")
    table = pr.proposal_metrics(data.known_by(as_of), *Q1, as_of, POLICY)
    assert metrics.elapsed_months(*Q1, t("2026-02-15")) == 1.5
    row = metrics.row(table, "mqa_run_rate")
    assert row["denominator"] == pytest.approx(2 + 14 / 31) and row["numerator"] == metrics.value(table, "mqas") == 4
    assert row["value"] == round(4 / (2 + 14 / 31), 2) == 1.63
    assert metrics.elapsed_months(*Q1, t("2025-12-01")) == 0.0 and metrics.elapsed_months(*Q1, t("2027-01-01")) == 3.0
    assert not metrics.BY_ID["mqa_run_rate"].additive
    volumes = pr.propose_volumes(table, POLICY).set_index("tier")
    assert volumes["months"].tolist() == [row["denominator"]] * 3
    assert volumes["run_rate"].tolist() == [metrics.value(table, "mqa_run_rate", f"tier={tier}") for tier in sc.TIERS]
