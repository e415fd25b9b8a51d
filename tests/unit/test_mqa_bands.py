"""MQA volume bands (issue 26): the implementation guide's Tier 2 "2-3 MQAs per month" judged as a band per
month, and the basic SLA's "5-10 qualified accounts per week" judged week by week inside longer reports."""

from __future__ import annotations

import pandas as pd
import pytest

from abm_sla.domain import metrics
from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy.targets import WeeklyMqas
from abm_sla.errors import ConfigError
from abm_sla.services import reporting
from abm_sla.services.config_files import load_policy

MARCH = (pd.Timestamp("2026-03-01", tz="UTC"), pd.Timestamp("2026-04-01", tz="UTC"))
Q1 = (pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-04-01", tz="UTC"))
DEFAULT = load_policy()


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def data_with(triggers: list[tuple[str, int]]) -> sc.SlaData:
    """One account per tier and one MQA per (trigger time, tier)."""
    accounts = pd.DataFrame({"account_id": ["A1", "A2", "A3"], "name": ["a", "b", "c"], "tier": [1, 2, 3],
                             "owner_id": "U1", "created_at": t("2025-01-01")})
    mqas = pd.DataFrame([{"account_id": f"A{tier}", "trigger_at": t(at), "tier": tier, "owner_id": "U1",
                          "routed_at": t(at), "ended_at": pd.NaT, "total": 60.0} for at, tier in triggers],
                        columns=["account_id", "trigger_at", "tier", "owner_id", "routed_at", "ended_at", "total"])
    return sc.SlaData.of(accounts=accounts, mqas=mqas)


def policy_with(**targets) -> object:
    return DEFAULT.model_copy(update={"targets": DEFAULT.targets.model_copy(update=targets)})


def test_a_tier_with_a_max_is_judged_in_the_band_per_month_and_without_one_as_before() -> None:
    march = [(f"2026-03-{day:02d} 10:00", 2) for day in (2, 3, 4, 5)]  # 4 Tier 2 MQAs in March
    data = data_with([("2026-01-05 10:00", 2), ("2026-01-06 10:00", 2), *march])
    banded = policy_with(monthly_mqa_commitments={1: 1, 2: 2, 3: 1}, monthly_mqa_max={2: 3})
    volume = metrics.mqa_volume(data, *Q1, Q1[1], banded).set_index(["tier", "month"])
    assert volume.loc[(2, "2026-01"), ["mqas", "commitment", "max", "met"]].tolist() == [2, 2, 3, True]
    assert volume.loc[(2, "2026-02"), "met"] == False  # noqa: E712 - below the minimum
    assert volume.loc[(2, "2026-03"), "met"] == False  # noqa: E712 - above the max: 4 > 3
    assert pd.isna(volume.loc[(1, "2026-03"), "max"])
    table = metrics.compute(data, *MARCH, MARCH[1], banded)
    row = metrics.row(table, "mqas", "tier=2")
    assert (row["target"], row["verdict"]) == ("2-3", "missed")
    card = sc.commitments(data, *MARCH, MARCH[1], banded, table).set_index(["commitment", "tier"])
    assert card.loc[("mqa_volume", 2), ["target", "missed"]].tolist() == ["2-3", True]
    minimum = policy_with(monthly_mqa_commitments={1: 1, 2: 2, 3: 1})  # no max: the contract's minimum only
    assert "max" not in metrics.mqa_volume(data, *Q1, Q1[1], minimum).columns
    row = metrics.row(metrics.compute(data, *MARCH, MARCH[1], minimum), "mqas", "tier=2")
    assert (row["target"], row["verdict"]) == (">= 2", "met")


def test_a_max_needs_a_minimum_not_above_it(tmp_path) -> None:
    base = "config/sla.yaml"
    for bad, message in (("{3: 40}", "below its commitment"), ("{1: 10}", None)):
        path = tmp_path / "p.yaml"
        text = open(base, encoding="utf-8").read().replace(  # noqa: SIM115
            "  monthly_mqa_commitments: {1: 10, 2: 25, 3: 50}",
            f"  monthly_mqa_commitments: {{1: 10, 2: 25, 3: 50}}\n  monthly_mqa_max: {bad}")
        path.write_text(text)
        if message is None:
            assert load_policy(path).targets.monthly_mqa_max == {1: 10}
        else:
            with pytest.raises(ConfigError, match=message):
                load_policy(path)


def test_the_weekly_rule_is_judged_week_by_week_inside_a_month() -> None:
    # March 2026: weeks starting Mon 2, 9, 16, 23, 30 (the last one ends in April)
    triggers = [(f"2026-03-0{d} 09:00", 1) for d in (2, 3, 4, 5, 6)]            # W10: 5 -> in band
    triggers += [(f"2026-03-{d} 09:00", 2) for d in (9, 10, 11, 12)]            # W11: 4 -> below
    triggers += [(f"2026-03-{d} 0{h}:00", 3) for d in (16, 17) for h in range(6)]  # W12: 12 -> above
    triggers += [("2026-02-28 09:00", 1)]                                       # February: not March's
    data = data_with(triggers)
    policy = policy_with(weekly_mqas=WeeklyMqas(min=5, max=10))
    weeks = sc.weekly_mqas(data, *MARCH, t("2026-03-30"), policy)
    assert weeks["week"].tolist() == ["2026-W10", "2026-W11", "2026-W12", "2026-W13", "2026-W14"]
    assert weeks["mqas"].tolist() == [5, 4, 12, 0, 0]
    assert weeks["in_band"].tolist() == [True, False, False, False, None]  # W14 has not ended by as_of
    table = metrics.compute(data, *MARCH, t("2026-03-30"), policy)
    row = metrics.row(table, "mqa_weeks_in_band_rate")
    assert (row["numerator"], row["denominator"], row["value"]) == (1, 4, 25)
    tier2 = sc.weekly_mqas(data, *MARCH, MARCH[1], policy_with(weekly_mqas=WeeklyMqas(min=4, tier=2)))
    assert tier2["in_band"].tolist() == [False, True, False, False, None]
    report = reporting.build_monthly(data, "2026-03", policy, as_of=t("2026-03-30"))
    titles = [table.title for section in report.sections for table in section.tables if table.name == "mqa_weeks"]
    assert titles == ["MQAs per week against the weekly band 5-10: 1 of 4 weeks in band"]


def test_without_the_weekly_rule_nothing_changes() -> None:
    data = data_with([("2026-03-02 09:00", 1)])
    assert sc.weekly_mqas(data, *MARCH, MARCH[1], DEFAULT).empty
    assert pd.isna(metrics.value(metrics.compute(data, *MARCH, MARCH[1], DEFAULT), "mqa_weeks_in_band_rate"))
    report = reporting.build_monthly(data, "2026-03", DEFAULT)
    assert "mqa_weeks" not in [table.name for section in report.sections for table in section.tables]
