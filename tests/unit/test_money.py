"""Money (issue 26): won revenue by the pipeline-credit source, marketing spend pro-rated to a period, CAC against
targets.cac_max (< $50K), spend from the policy or its spend file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from abm_sla.domain import metrics
from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy import DEFAULT_PATH
from abm_sla.errors import ConfigError
from abm_sla.services import reporting
from abm_sla.services.config_files import load_policy

MARCH = sc.parse_period("2026-03")


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def policy_file(tmp_path: Path, money: dict, cac_max: float | None = 50000) -> Path:
    data = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    data["money"] = money
    if cac_max is not None:
        data.setdefault("targets", {})["cac_max"] = cac_max
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def won_data() -> sc.SlaData:
    """O1 marketing-sourced (a web visit before it), O2 sales-sourced; both won in March; O3 won in April."""
    accounts = pd.DataFrame({"account_id": ["A1", "A2"], "name": ["Acme", "Beta"], "tier": ["1", "2"],
                             "owner_id": ["U1", "U1"], "created_at": [t("2025-01-01")] * 2})
    acts = pd.DataFrame({"activity_id": ["X1"], "account_id": ["A1"], "type": ["web_visit"],
                         "occurred_at": [t("2026-02-01")], "contact_id": ["C1"]})
    opps = pd.DataFrame({"opportunity_id": ["O1", "O2", "O3"], "account_id": ["A1", "A2", "A2"],
                         "amount": [30000.0, 20000.0, 999.0],
                         "created_at": [t("2026-02-10"), t("2026-02-10"), t("2026-02-10")],
                         "close_date": [t("2026-03-05"), t("2026-03-31T23:00"), t("2026-04-01")],
                         "is_closed": [True, True, True], "is_won": [True, True, True]})
    return sc.SlaData.of(accounts=accounts, activities=acts, opportunities=opps)


def test_won_revenue_by_source_spend_pro_rated_and_a_cac_of_exactly_the_target_misses(tmp_path):
    """Spend: 60,000 in March, and 62,000 over March-April of which March holds 31/61 days; CAC = spend / 2 wins;
    a CAC of exactly the target misses "< 50K"."""
    policy = load_policy(policy_file(tmp_path, {"spend": [
        {"period_start": "2026-03-01", "period_end": "2026-04-01", "channel": "ads", "amount": 60000},
        {"period_start": "2026-03-01", "period_end": "2026-05-01", "channel": "events", "amount": 61000}]}))
    table = metrics.compute(won_data(), *MARCH, MARCH[1], policy)
    assert metrics.value(table, "won_revenue", "source=marketing") == 30000
    assert metrics.value(table, "won_revenue", "source=sales") == 20000
    assert metrics.value(table, "won_revenue") == 50000  # O3 closed 1 April: not March's
    assert metrics.value(table, "marketing_spend") == pytest.approx(60000 + 61000 * 31 / 61, abs=0.01)
    cac = metrics.row(table, "cac")
    assert (cac["denominator"], cac["value"]) == (2, pytest.approx((60000 + 31000) / 2, abs=0.01))
    assert (cac["target"], cac["verdict"]) == ("< 50000", "met")  # 45,500
    at_target = load_policy(policy_file(tmp_path, {"spend": [
        {"period_start": "2026-03-01", "period_end": "2026-04-01", "channel": "ads", "amount": 99999}]}))
    assert metrics.row(metrics.compute(won_data(), *MARCH, MARCH[1], at_target), "cac")["verdict"] == "met"
    exactly = load_policy(policy_file(tmp_path, {"spend": [
        {"period_start": "2026-03-01", "period_end": "2026-04-01", "channel": "ads", "amount": 100000}]}))
    assert metrics.row(metrics.compute(won_data(), *MARCH, MARCH[1], exactly), "cac")["verdict"] == "missed"


def test_without_spend_or_without_a_win_cac_is_empty_and_the_report_says_why(tmp_path):
    none = load_policy(policy_file(tmp_path, {}, cac_max=None))
    table = metrics.compute(won_data(), *MARCH, MARCH[1], none)
    assert pd.isna(metrics.value(table, "cac")) and metrics.value(table, "marketing_spend") == 0
    spent = load_policy(policy_file(tmp_path, {"spend": [
        {"period_start": "2026-01-01", "period_end": "2026-02-01", "channel": "ads", "amount": 5000}]}))
    january = sc.parse_period("2026-01")
    assert pd.isna(metrics.value(metrics.compute(won_data(), *january, january[1], spent), "cac"))  # no win
    money = reporting.money_table(table, none).set_index("measure")
    assert money.loc["Won revenue: marketing-sourced", "value"] == 30000
    assert pd.isna(money.loc["CAC (spend / opportunities won)", "value"])


def test_the_spend_file_is_read_beside_the_policy_and_a_bad_row_is_one_line(tmp_path):
    (tmp_path / "spend.csv").write_text("period_start,period_end,channel,amount\n"
                                        "2026-03-01,2026-04-01,ads,40000\n", encoding="utf-8")
    policy = load_policy(policy_file(tmp_path, {"spend_file": "spend.csv"}))
    assert metrics.value(metrics.compute(won_data(), *MARCH, MARCH[1], policy), "cac") == 20000
    (tmp_path / "spend.csv").write_text("period_start,period_end,channel,amount\n"
                                        "2026-03-01,2026-04-01,ads,-5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"spend.csv line 2: amount: .*greater than or equal to 0"):
        load_policy(tmp_path / "policy.yaml")
    (tmp_path / "spend.csv").unlink()
    with pytest.raises(ConfigError, match=r"money\.spend_file"):
        load_policy(tmp_path / "policy.yaml")
