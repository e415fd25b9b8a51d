"""Consistency as a property, on generated CRMs (abm_sla.services.synthetic): the months of a quarter add up to the
quarter, value = numerator / denominator, the same metric agrees wherever it appears, and the rejection rate
can be rebuilt from the per-MQA verdicts the mqas export carries."""

from __future__ import annotations

from functools import lru_cache

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abm_sla.domain import dispositions, handoff, metrics, review, sla
from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy import DEFAULT_PATH
from abm_sla.services import reporting, synthetic
from abm_sla.services.config_files import load_policy

POLICY = load_policy(DEFAULT_PATH.parent / "presets" / "demo.yaml")
START = pd.Timestamp("2026-01-01", tz="UTC")
Q1 = sc.parse_period("2026-Q1")
MONTHS = [sc.parse_period(f"2026-0{month}") for month in (1, 2, 3)]
SETTINGS = settings(max_examples=2, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@lru_cache(maxsize=4)
def generated(seed: int) -> sc.SlaData:
    """A 60-account CRM over Q1 with one MQA on every account sales gave a status (2 hours before its first),
    its episode ends and clocks evaluated by the pure SLA functions as of the quarter's end."""
    crm = synthetic.generate_crm(n_accounts=60, start=START, days=90, seed=seed, feedback=True,
                                 marketing_program=True)
    status = crm["status_changes"]
    accounts = crm["accounts"].set_index("account_id")
    first = status.groupby(status["account_id"].astype(str))["changed_at"].min()
    trigger = first - pd.Timedelta(hours=2)
    mqas = pd.DataFrame({"account_id": first.index, "trigger_at": trigger.to_numpy(),
                         "tier": sc.normalize_tier(first.index.map(accounts["tier"]).to_series()).to_numpy(),
                         "owner_id": first.index.map(accounts["owner_id"]),
                         "routed_at": (trigger + pd.Timedelta(hours=1)).to_numpy(), "total": 60.0})
    mqas = mqas[mqas["trigger_at"] >= START].reset_index(drop=True)
    mqas["ended_at"] = handoff.episode_ends(mqas, status, Q1[1], POLICY.episode_end_statuses())
    clocks = sla.evaluate_clocks(mqas, crm["activities"], status, crm["users"], POLICY, Q1[1], crm["opportunities"])
    return sc.SlaData.of(**crm, mqas=mqas, sla_clocks=clocks)


seeds = st.integers(min_value=1, max_value=10_000)


@SETTINGS
@given(seed=seeds)
def test_months_add_up_to_the_quarter(seed: int):
    data = generated(seed)
    quarter = metrics.compute(data, *Q1, Q1[1], POLICY)
    months = pd.concat([metrics.compute(data, *month, Q1[1], POLICY) for month in MONTHS])
    additive = quarter[quarter["additive"]]
    assert len(additive) > 0 and additive.loc[additive["metric"] == "mqas", "value"].iloc[0] > 0
    summed = months[months["additive"]].groupby(["metric", "segment"])["value"].sum()
    joined = additive.set_index(["metric", "segment"])["value"].to_frame("quarter").join(summed.rename("months"))
    joined["months"] = joined["months"].fillna(0.0)
    assert ((joined["quarter"] - joined["months"]).abs() < 1e-6).all(), joined[joined["quarter"] != joined["months"]]


@SETTINGS
@given(seed=seeds)
def test_value_is_numerator_over_denominator(seed: int):
    table = metrics.compute(generated(seed), *Q1, Q1[1], POLICY)
    ratios = table[table["unit"] == "pct"]
    measured = ratios["denominator"] > 0
    assert measured.any()
    expected = (100 * ratios["numerator"] / ratios["denominator"]).round(1)
    assert (ratios.loc[measured, "value"] == expected[measured]).all()
    assert ratios.loc[~measured, "value"].isna().all()
    kinds = table["metric"].map({metric.id: metric.kind for metric in metrics.CATALOG})
    per = kinds.eq("per")
    monthly = kinds.eq(metrics.PER_MONTH)  # the MQA run-rate: MQAs per month of the quarter elapsed (3)
    counts = table[table["unit"].isin(["count", "money"]) & ~per & ~kinds.eq("mean") & ~monthly]
    assert ((counts["value"] - counts["numerator"].round(2)).abs() < 1e-9).all()
    run_rates = table[monthly]
    assert len(run_rates) > 0 and (run_rates["denominator"] == 3.0).all()
    assert ((run_rates["value"] - (run_rates["numerator"] / 3.0).round(2)).abs() < 1e-9).all()
    rates = table[per]  # CAC: spend / won deals, no value without a won deal
    won = rates["denominator"] > 0
    assert ((rates.loc[won, "value"] - (rates["numerator"] / rates["denominator"]).round(2)[won]).abs() < 0.01).all()
    assert rates.loc[~won, "value"].isna().all()
    means = table[kinds.eq("mean")]  # touches and engaged contacts per account: 0 is a value, no account is none
    measured = means["denominator"] > 0
    assert measured.any()
    assert ((means.loc[measured, "value"] - (means["numerator"] / means["denominator"]).round(2)[measured]).abs()
            < 1e-9).all()
    assert means.loc[~measured, "value"].isna().all()


@SETTINGS
@given(seed=seeds)
def test_the_same_metric_agrees_in_every_report(seed: int):
    """The weekly, monthly and quarterly reports' metrics tables, the headline scorecard and the monthly
    comparison show one number per metric, segment and period (all as of the quarter's end)."""
    data = generated(seed)
    as_of = Q1[1]
    week = "2026-W13"
    tables = {
        "weekly": metrics.compute(data, *sc.parse_period(week), as_of, POLICY, report="weekly"),
        "monthly": metrics.compute(data, *MONTHS[2], as_of, POLICY, report="monthly"),
        "quarterly": metrics.compute(data, *Q1, as_of, POLICY, report="quarterly"),
        "export": metrics.compute(data, *MONTHS[2], as_of, POLICY),
    }
    by_key = pd.concat(tables.values())
    spread = by_key.groupby(["period_start", "period_end", "metric", "segment"])["value"].nunique(dropna=False)
    assert (spread == 1).all()
    march = tables["monthly"]
    headline = sc.headline(data, *MONTHS[2], as_of, POLICY)
    headline = {(name, None if pd.isna(tier) else int(tier)): value
                for name, tier, value in zip(headline["commitment"], headline["tier"], headline["value"], strict=True)}
    assert _same(headline[("rejection_pct", None)], metrics.value(march, "rejection_rate"))
    for tier in sc.TIERS:
        assert _same(headline[("mqa_volume", tier)], metrics.value(march, "mqas", f"tier={tier}"))
    trend = {name: value for name, _, value in review.monthly_metrics(data, *MONTHS[2], as_of, POLICY)}
    assert _same(trend["Disqualified (rejected)"], metrics.value(march, "disqualification_rate"))
    assert _same(trend["MQA → SQL (accepted)"], metrics.value(march, "acceptance_rate"))


def test_a_reports_metrics_table_is_the_exports():
    """What a report writes to <report>.metrics.csv is what `export metrics` writes for its period."""
    data = generated(7)
    monthly = reporting.build_monthly(data, "2026-03", POLICY)
    export = metrics.compute(data, *MONTHS[2], MONTHS[2][1], POLICY)
    pd.testing.assert_frame_equal(monthly.metrics.drop(columns="report"), export.drop(columns="report"))
    assert set(monthly.metrics["report"]) == {"monthly"}


def _same(left: float, right: float) -> bool:
    return (pd.isna(left) and pd.isna(right)) or left == right


@SETTINGS
@given(seed=seeds)
def test_the_rejection_rate_is_the_exports_rejected_verdicts_over_its_verdicts(seed: int):
    data = generated(seed)
    table = metrics.compute(data, *Q1, Q1[1], POLICY)
    verdicts = dispositions.episode_dispositions(data.mqas, data.status_changes, POLICY, Q1[1])["verdict"]
    in_quarter = sc.within(data.mqas["trigger_at"], *Q1)
    given_ = verdicts[in_quarter].dropna()
    assert len(given_) > 0
    rejected = int((given_ == dispositions.REJECTED).sum())
    row = metrics.row(table, "rejection_rate")
    assert (row["numerator"], row["denominator"]) == (rejected, len(given_))
    assert row["value"] == round(100 * rejected / len(given_), 1)
