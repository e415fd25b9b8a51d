"""Issue 22: numbers two places disagreed on, fixed at their one definition in the metrics catalog."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain import metrics
from abm_sla.domain import scorecard as sc
from abm_sla.services.config_files import load_policy
from tests.unit.test_scorecard import frame, t

POLICY = load_policy()
Q1 = sc.parse_period("2026-Q1")
MONTHS = [sc.parse_period(f"2026-0{month}") for month in (1, 2, 3)]


def escalated_data() -> sc.SlaData:
    """One MQA of 5 January whose first touch never came: escalated on 6 January and open all quarter."""
    mqas = frame("account_id trigger_at tier owner_id routed_at ended_at total", [
        ("A1", t("2026-01-05 08:00"), 1, "U1", t("2026-01-05 09:00"), pd.NaT, 60.0)])
    clocks = frame("account_id trigger_at clock status due_at met_at owner_id tier", [
        ("A1", t("2026-01-05 08:00"), "first_touch", "missed", t("2026-01-05 11:00"), pd.NaT, "U1", 1)])
    escalations = frame("account_id trigger_at level to_user_id opened_at owner_id clock steps_taken resolution", [
        ("A1", t("2026-01-05 08:00"), 1, "U9", t("2026-01-06 12:00"), "U1", "first_touch", "", "call")])
    return sc.SlaData.of(mqas=mqas, sla_clocks=clocks, escalations=escalations)


def test_open_escalations_are_a_snapshot_that_does_not_add_up_over_the_months():
    """Open at each month's end and at the quarter's: 1 each, so the months' 3 is not the quarter's 1. The metrics
    tables said ``additive=true`` (a second SNAPSHOT_FAMILIES without the escalations replaced the first), so a BI
    tool summing the months' metrics.csv rows got 3 open escalations for the quarter."""
    data = escalated_data()
    quarter = metrics.compute(data, *Q1, Q1[1], POLICY)
    months = [metrics.compute(data, *month, Q1[1], POLICY) for month in MONTHS]
    assert [metrics.value(month, "escalations_open") for month in months] == [1.0, 1.0, 1.0]
    assert metrics.value(quarter, "escalations_open") == 1.0
    assert not metrics.row(quarter, "escalations_open")["additive"]
    assert metrics.csv_frame(quarter).set_index(["metric", "segment"]).loc[("escalations_open", "all"),
                                                                              "additive"] == "false"
