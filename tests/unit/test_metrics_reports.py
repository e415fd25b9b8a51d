"""The report tables of issue 22 (part 22a) read their numbers from the metrics catalog: the disposition mix, the
progression of accepted MQAs, the weekly Tier 1 status rows, the MQA commitment rows of the comparisons, the
headline's tier × owner split and the demo's printed summary. Each test checks the table against the catalog's
table (:func:`abm_sla.domain.metrics.compute`) and shifts the catalog's value to show the report reads it from there."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from abm_sla.domain import feedback as fb
from abm_sla.domain import metrics, review
from abm_sla.domain import scorecard as sc
from abm_sla.services import demo
from tests.unit.test_metrics import MARCH, POLICY, frame, t, verdict_data

SHIFT = 1000.0


@pytest.fixture
def shifted(monkeypatch):
    """Add ``SHIFT`` to the catalog values of the given metric ids (every segment): a report that reads the
    catalog shows the shifted number, one that computes its own does not."""
    def shift(*ids: str) -> None:
        real = metrics.aggregate._aggregate

        def fake(metric, *args):
            numerator, denominator, value = real(metric, *args)
            return (numerator, denominator, value + SHIFT if metric.id in ids else value)

        monkeypatch.setattr("abm_sla.domain.metrics.aggregate._aggregate", fake)
    return shift


def march_table(data: sc.SlaData) -> pd.DataFrame:
    return metrics.compute(data, *MARCH, MARCH[1], POLICY)


# -- 1. the disposition mix ------------------------------------------------------------------------------

def test_the_disposition_mix_is_the_catalogs(shifted):
    data = verdict_data()
    outcomes = sc.mqa_outcomes(data, MARCH[1], POLICY)
    mix = fb.disposition_mix(outcomes, *MARCH).set_index("tier")
    table = march_table(data)
    assert mix.loc[sc.ALL, ["mqas", "accepted", "rejected", "unqualified"]].tolist() == [4, 1, 1, 2]
    for name in mix.columns.drop("mqas"):
        assert mix.loc[sc.ALL, name] == metrics.value(table, metrics.disposition_metric_id(name))
        assert mix.loc[1, name] == metrics.value(table, metrics.disposition_metric_id(name), "tier=1")
    by_owner = fb.disposition_mix(outcomes, *MARCH, by="owner_id").set_index("owner_id")
    assert by_owner.loc["U1", "unqualified"] == metrics.value(table, "mqas_disposition_unqualified", "owner=U1") == 2
    shifted("mqas_disposition_unqualified")
    assert fb.disposition_mix(outcomes, *MARCH).set_index("tier").loc[sc.ALL, "unqualified"] == 2 + SHIFT


def test_a_disposition_only_the_policy_adds_counts_as_other():
    data = verdict_data()
    policy = POLICY.model_copy(update={"dispositions": POLICY.dispositions.model_copy(
        update={"map": {**POLICY.dispositions.map, "demo booked": "demo_booked"}})})
    status = data.status_changes.assign(status=data.status_changes["status"].replace({"accepted": "demo booked"}))
    data = sc.SlaData.of(accounts=data.accounts, mqas=data.mqas, status_changes=status)
    table = metrics.compute(data, *MARCH, MARCH[1], policy)
    mix = fb.disposition_mix(sc.mqa_outcomes(data, MARCH[1], policy), *MARCH).set_index("tier").loc[sc.ALL]
    assert mix["other"] == metrics.value(table, "mqas_disposition_other") == 1
    flags = [metrics.value(table, metrics.disposition_metric_id(name)) for name in metrics.MIX_DISPOSITIONS]
    assert sum(flags) == metrics.value(table, "mqas") == mix["mqas"] == 4  # every MQA in exactly one column
    assert mix.drop("mqas").sum() == 4


# -- 2. the progression of accepted MQAs ------------------------------------------------------------------

def progression_data() -> sc.SlaData:
    """Three accepted MQAs in March: one won, one lost, one with an open opportunity; and one rejected."""
    data = verdict_data()
    status = pd.concat([data.status_changes, frame("status_change_id account_id status changed_at reason", [
        ("s7", "A2", "accepted", t("2026-03-03"), None), ("s8", "A3", "accepted", t("2026-03-03"), None)])])
    status = status[~status["status_change_id"].isin(["s2", "s3", "s4"])]
    opps = frame("opportunity_id account_id amount created_at close_date is_closed is_won", [
        ("O1", "A1", 100.0, t("2026-03-05"), t("2026-03-20"), True, True),
        ("O2", "A2", 100.0, t("2026-03-05"), t("2026-03-21"), True, False),
        ("O3", "A3", 100.0, t("2026-03-05"), pd.NaT, False, False)])
    return sc.SlaData.of(accounts=data.accounts, mqas=data.mqas, status_changes=status.reset_index(drop=True),
                         opportunities=opps)


def test_the_progression_is_the_catalogs(shifted):
    data = progression_data()
    outcomes = sc.mqa_outcomes(data, MARCH[1], POLICY)
    progress = sc.progression(outcomes, *MARCH).set_index("tier").loc[sc.ALL]
    assert progress[["accepted", "opportunity", "won", "lost", "open"]].tolist() == [3, 3, 1, 1, 1]
    assert progress["to_won_pct"] == 33.3
    table = march_table(data)
    for column, metric in sc.PROGRESSION_METRICS.items():
        assert progress[column] == metrics.value(table, metric), column
    shifted("mqas_accepted_won", "sql_to_won_rate")
    progress = sc.progression(outcomes, *MARCH).set_index("tier").loc[sc.ALL]
    assert (progress["won"], progress["to_won_pct"]) == (1 + SHIFT, 33.3 + SHIFT)


# -- 3. the Tier 1 status rows -----------------------------------------------------------------------------

def tier1_data() -> sc.SlaData:
    """Four Tier 1 accounts and a Tier 2 one: A1 worked by sales in the week with an open opportunity, A2 with
    an open MQA episode, A3 quiet (last touch 40 days before the week's end), A4 never touched."""
    accounts = frame("account_id name tier owner_id created_at", [
        *[(f"A{i}", f"n{i}", 1, "U1", t("2025-01-01")) for i in range(1, 5)], ("B1", "b", 2, "U1", t("2025-01-01"))])
    acts = frame("activity_id account_id type occurred_at contact_id owner_id url", [
        ("a1", "A1", "call", t("2026-03-03"), "c1", "U1", None),
        ("a2", "A2", "email_open", t("2026-03-03"), "c2", None, None),
        ("a3", "A3", "email_open", t("2026-01-28"), "c3", None, None),
        ("a4", "B1", "call", t("2026-03-03"), "c4", "U1", None)])
    opps = frame("opportunity_id account_id amount created_at close_date is_closed is_won", [
        ("O1", "A1", 10.0, t("2026-02-01"), pd.NaT, False, False)])
    mqas = frame("account_id trigger_at tier owner_id routed_at ended_at total", [
        ("A2", t("2026-03-02"), 1, "U1", t("2026-03-02"), pd.NaT, 60.0)])
    return sc.SlaData.of(accounts=accounts, activities=acts, opportunities=opps, mqas=mqas)


def test_the_tier1_status_rows_are_the_catalogs(shifted):
    data = tier1_data()
    week = sc.parse_period("2026-W10")  # 2026-03-02 to 03-09
    status = review.tier1_status(data, *week)
    assert status == {"on the list": 4, "engaged by marketing": 1, "worked by sales": 1,
                      "with an open opportunity": 1, "with an open MQA": 1, "quiet for 30+ days": 2}
    table = metrics.compute(data, *week, week[1], POLICY)
    rows = {name: value for name, _, value in review.weekly_metrics(data, *week, week[1], POLICY)}
    for name, source in review.TIER1_STATUS.items():
        metric, _, field = source.partition(":")
        assert rows[f"Tier 1 accounts: {name}"] == metrics.row(table, metric, "tier=1")[field or "value"] \
            == status[name]
    shifted("accounts_quiet")
    rows = {name: value for name, _, value in review.weekly_metrics(data, *week, week[1], POLICY)}
    assert rows["Tier 1 accounts: quiet for 30+ days"] == 2 + SHIFT


# -- 5. the commitment rows of the comparisons -------------------------------------------------------------

def test_the_monthly_commitment_rows_are_the_catalogs_targets(monkeypatch):
    data = verdict_data()
    table = march_table(data)
    rows = {name: value for name, _, value in review.monthly_metrics(data, *MARCH, MARCH[1], POLICY)}
    for tier, commitment in POLICY.targets.monthly_mqa_commitments.items():
        target = metrics.row(table, "mqas", f"tier={tier}")["target"]
        assert target == f">= {commitment:g}"
        assert rows[f"MQA commitment, Tier {tier}"] == float(target.removeprefix(">= ")) == commitment
    real = metrics.targets._targets

    def halved(policy, start, end):
        return {key: (text, judge, bound / 2) for key, (text, judge, bound) in real(policy, start, end).items()}

    monkeypatch.setattr("abm_sla.domain.metrics.targets._targets", halved)
    rows = {name: value for name, _, value in review.monthly_metrics(data, *MARCH, MARCH[1], POLICY)}
    assert rows["MQA commitment, Tier 1"] == POLICY.targets.monthly_mqa_commitments[1] / 2
    volume = sc.headline(data, *MARCH, MARCH[1], POLICY)
    assert volume.set_index(["commitment", "tier"]).loc[("mqa_volume", 1), "target"] == \
        f">= {POLICY.targets.monthly_mqa_commitments[1] / 2:g}"


# -- 4. the headline's tier × owner split -----------------------------------------------------------------

def split_data() -> sc.SlaData:
    """Tier 1 first-touch clocks due in March: U1 met 1 of 2 (50%, below the 95% target), U2 met 2 of 2; Tier 1
    opportunities closed: U1 won 0 of 1, U2 won 1 of 1."""
    accounts = frame("account_id name tier owner_id created_at", [
        ("A1", "a", 1, "U1", t("2025-01-01")), ("A2", "b", 1, "U2", t("2025-01-01"))])
    clocks = frame("account_id trigger_at clock status due_at met_at owner_id tier", [
        ("A1", t("2026-03-02"), "first_touch", "met", t("2026-03-03"), t("2026-03-02 12:00"), "U1", 1),
        ("A1", t("2026-03-10"), "first_touch", "missed", t("2026-03-11"), pd.NaT, "U1", 1),
        ("A2", t("2026-03-02"), "first_touch", "met", t("2026-03-03"), t("2026-03-02 12:00"), "U2", 1),
        ("A2", t("2026-03-10"), "first_touch", "met", t("2026-03-11"), t("2026-03-10 12:00"), "U2", 1)])
    opps = frame("opportunity_id account_id amount created_at close_date is_closed is_won", [
        ("O1", "A1", 10.0, t("2026-01-05"), t("2026-03-20"), True, False),
        ("O2", "A2", 10.0, t("2026-01-05"), t("2026-03-20"), True, True)])
    return sc.SlaData.of(accounts=accounts, sla_clocks=clocks, opportunities=opps)


def test_the_headlines_owner_split_is_the_catalogs_tier_owner_segment(shifted):
    data = split_data()
    table = march_table(data)
    assert metrics.value(table, "first_touch_met_rate", "tier=1,owner=U1") == 50.0
    assert metrics.value(table, "win_rate", "tier=1,owner=U2") == 100.0
    head = sc.headline(data, *MARCH, MARCH[1], POLICY).set_index(["commitment", "tier"])
    assert head.loc[("first_touch_met_pct", 1), ["owners", "owners_missed", "owners_missed_ids"]].tolist() == \
        [2, 1, "U1"]
    assert head.loc[("tier1_win_rate_pct", 1), ["owners", "owners_missed", "owners_missed_ids"]].tolist() == \
        [2, 1, "U1"]
    shifted("first_touch_met_rate", "win_rate")  # every owner now above target
    head = sc.headline(data, *MARCH, MARCH[1], POLICY).set_index(["commitment", "tier"])
    assert head.loc[("first_touch_met_pct", 1), "owners_missed"] == 0
    assert head.loc[("tier1_win_rate_pct", 1), "owners_missed"] == 0


# -- 6. the demo's printed summary ----------------------------------------------------------------------

def test_the_demos_tier_summary_is_the_quarterly_catalog(shifted):
    data = split_data()
    table = demo.quarter_metrics(data)
    summary = demo.tier_summary(data, table)
    for column, metric in demo.TIER_SUMMARY.items():
        expected = pd.Series([metrics.value(table, metric, f"tier={tier}") for tier in sc.TIERS], index=sc.TIERS)
        pd.testing.assert_series_equal(summary[column].astype(float), expected, check_names=False,
                                       check_index_type=False)
    assert summary.loc[1, ["mqas_fired", "first_touch_met_pct", "clocks_missed"]].tolist() == [0, 75.0, 1]
    shifted("clocks_missed")
    assert demo.tier_summary(data).loc[1, "clocks_missed"] == 1 + SHIFT


# -- 7. metrics.csv writes counts as integers --------------------------------------------------------------

def test_metrics_csv_writes_counts_as_integers():
    data = progression_data()
    table = march_table(data)
    text = metrics.csv_frame(table).to_csv(index=False)
    assert text.splitlines()[0] == ",".join(metrics.COLUMNS)
    written = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False).set_index(["metric", "segment"])
    assert written.loc[("mqas", "all"), ["numerator", "denominator", "value"]].tolist() == ["4", "", "4.0"]
    assert written.loc[("acceptance_rate", "all"), ["numerator", "denominator"]].tolist() == ["3", "4"]
    assert written.loc[("pipeline_created", "all"), "numerator"] == "300.0"  # money keeps its decimals
    assert written.loc[("first_touch_response_median_hours", "all"), "numerator"] == ""
