"""The monthly review and the weekly additions: month boundaries, month over month, pipeline by source."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain import review
from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy.reports import PipelineCredit
from abm_sla.services.config_files import load_policy
from tests.unit.test_scorecard import sample_data

POLICY = load_policy()


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def mqa_frame(account_ids: list[str], triggers: list[pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame({"account_id": account_ids, "trigger_at": triggers, "tier": 1.0, "owner_id": "U1",
                         "routed_at": triggers, "ended_at": pd.NaT, "total": 60.0})


def values(frame: pd.DataFrame, column: str = "value") -> dict[str, float]:
    return frame.set_index("metric")[column].to_dict()


def test_months_are_utc_calendar_months():
    """An MQA at 02:00 UTC on April 1st (22:00 on March 31st in New York) belongs to April."""
    mqas = mqa_frame(["A1", "A2"], [t("2026-03-31 23:59:59"), t("2026-04-01 02:00")])
    data = sc.SlaData.of(mqas=mqas)
    march, april = sc.parse_period("2026-03"), sc.parse_period("2026-04")
    assert values(review.compare(review.monthly_metrics, data, *april, april[1], POLICY))["MQAs, Tier 1"] == 1
    trend = review.compare(review.monthly_metrics, data, *march, march[1], POLICY)
    assert values(trend)["MQAs, Tier 1"] == 1 and values(trend)["MQA commitment, Tier 1"] == 10


def test_month_over_month_with_an_empty_previous_month():
    data = sc.SlaData.of(mqas=mqa_frame(["A1", "A2"], [t("2026-03-02"), t("2026-03-03")]))
    march = review.compare(review.monthly_metrics, data, *sc.parse_period("2026-03"), t("2026-04-01"), POLICY)
    assert march["previous_value"].isna().all() and march["change"].isna().all()  # February measured nothing
    assert values(march)["MQAs"] == 2
    april = review.compare(review.monthly_metrics, data, *sc.parse_period("2026-04"), t("2026-05-01"), POLICY)
    assert values(april, "previous_value")["MQAs"] == 2 and values(april, "change")["MQAs"] == -2
    assert values(april)["MQA commitment, Tier 1"] == 10  # the commitment stands in a month without MQAs


def test_pipeline_by_source_partitions_the_joint_pipeline():
    opps = pd.DataFrame({"opportunity_id": ["O1", "O2", "O3"], "account_id": ["A1", "A2", "A3"],
                         "amount": [100.0, 50.0, 25.0], "created_at": [t("2026-03-10")] * 3,
                         "close_date": pd.NaT, "is_closed": False, "is_won": False})
    mqas = mqa_frame(["A1", "A3"], [t("2026-03-01"), t("2026-03-10 00:00:01")])
    acts = pd.DataFrame({"activity_id": ["a1", "a2"], "account_id": ["A2", "A3"], "type": ["email_open", "call"],
                         "occurred_at": [t("2026-02-01"), t("2026-03-01")], "contact_id": None, "url": None})
    accounts = pd.DataFrame({"account_id": ["A1", "A2", "A3"], "name": ["a", "b", "c"], "tier": [1, 2, 3],
                             "owner_id": "U1", "created_at": t("2025-01-01")})
    data = sc.SlaData.of(opportunities=opps, mqas=mqas, activities=acts, accounts=accounts)
    by_mqa = POLICY.model_copy(update={"pipeline_credit": PipelineCredit(rule="mqa")})
    out = review.pipeline_by_source(data, *sc.parse_period("2026-03"), by_mqa).set_index("source")
    assert out["amount"].to_dict() == {"marketing-sourced": 100.0, "marketing-touched, no MQA": 50.0,
                                       "sales-sourced": 25.0, "joint pipeline": 175.0}  # A3's MQA came after
    assert out.loc["marketing-sourced", "share_pct"] == 57.1


def test_monthly_and_quarterly_credit_pipeline_by_one_rule():
    """The default rule is the seven commitments' touch order, in the monthly as in the quarterly: before, the
    monthly called an opportunity marketing-sourced for an MQA while the quarterly counted touches."""
    opps = pd.DataFrame({"opportunity_id": ["O1", "O2", "O3"], "account_id": ["A1", "A2", "A3"],
                         "amount": [100.0, 50.0, 25.0], "created_at": [t("2026-03-10")] * 3,
                         "close_date": pd.NaT, "is_closed": False, "is_won": False})
    mqas = mqa_frame(["A1"], [t("2026-03-01")])
    acts = pd.DataFrame({"activity_id": ["a1", "a2", "a3"], "account_id": ["A2", "A3", "A3"],
                         "type": ["email_open", "call", "email_open"],
                         "occurred_at": [t("2026-02-01"), t("2026-03-01"), t("2026-03-02")], "contact_id": None,
                         "url": None})
    accounts = pd.DataFrame({"account_id": ["A1", "A2", "A3"], "name": ["a", "b", "c"], "tier": [1, 2, 3],
                             "owner_id": "U1", "created_at": t("2025-01-01")})
    data = sc.SlaData.of(opportunities=opps, mqas=mqas, activities=acts, accounts=accounts)
    march = sc.parse_period("2026-03")
    monthly = review.pipeline_by_source(data, *march, POLICY).set_index("source")["amount"]
    quarterly = sc.pipeline_attribution(data, *march, POLICY)
    quarterly = quarterly[quarterly["tier"] == sc.ALL].set_index("attribution")["amount"]
    assert monthly["marketing-sourced"] == quarterly["marketing-sourced"] == 50.0  # A2: a marketing touch first
    assert monthly["sales-first, marketing-influenced"] == 25.0  # A3: the call came before the email
    assert monthly["sales-sourced"] == quarterly["sales-sourced"] == 100.0  # A1: an MQA but no marketing touch


def test_weekly_additions_against_last_week():
    data = sample_data()
    week = sc.parse_period("2026-W10")
    changes = values(review.compare(review.weekly_metrics, data, *week, week[1], POLICY))
    status = review.tier1_status(data, *week)
    assert set(changes) >= {"Meetings booked", "Opportunities created", "Pipeline created",
                            "Engagement rate (accounts with a marketing touch)", "Tier 1 accounts: on the list"}
    assert changes["Tier 1 accounts: on the list"] == status["on the list"] > 0
    meetings = (data.activities["type"].eq("meeting") & sc.within(data.activities["occurred_at"], *week)).sum()
    assert changes["Meetings booked"] == meetings


def test_marketing_activity_per_tier_and_channel():
    data = sample_data()
    out = review.marketing_activity(data, *sc.parse_period("2026-03")).set_index("tier")
    assert out.loc[3, "touches"] == out.filter(like="touches_").drop(columns="touches_per_account").loc[3].sum()
    assert out.loc[2, "accounts_touched"] >= 1
