"""The routed MQA's record is complete (issue 26; one-page SLA, seven commitments), at its boundaries."""

from __future__ import annotations

import pandas as pd
import pytest

from abm_sla.domain import metrics
from abm_sla.domain import routed_records as rr
from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy.reports import RoutedRecord
from abm_sla.services import reporting
from abm_sla.services.config_files import load_policy
from tests.unit.builders import account, frame

WEEK = (pd.Timestamp("2026-03-23", tz="UTC"), pd.Timestamp("2026-03-30", tz="UTC"))
DEFAULT = load_policy()


def data_of(accounts: list[dict], routed: list[tuple[str, pd.Timestamp, str | None]]) -> sc.SlaData:
    mqas = pd.DataFrame([{"account_id": a, "trigger_at": at, "tier": 1, "owner_id": "U1", "routed_at": at,
                          "ended_at": pd.NaT, "total": 60.0, "reasons": reasons} for a, at, reasons in routed],
                        columns=["account_id", "trigger_at", "tier", "owner_id", "routed_at", "ended_at", "total",
                                 "reasons"])
    return sc.SlaData.of(accounts=frame("accounts", accounts), mqas=mqas)


def policy_with(**settings):
    return DEFAULT.model_copy(update={"routed_record": RoutedRecord(**settings)})


def test_a_record_is_complete_with_every_required_field_and_the_reasons() -> None:
    start, end = WEEK
    accounts = [account("a"), account("b", industry="  "), account("c", employees=None, country=None),
                account("d")]
    routed = [("a", start, "engagement 20; intent 15"), ("b", start, "fit"), ("c", end - pd.Timedelta(1), "x"),
              ("d", start + pd.Timedelta(hours=1), None),      # no reasons
              ("a", end, "later")]                              # routed after the week
    data = data_of(accounts, routed)
    facts = rr.record_facts(data, start, end, policy_with(complete_pct=80))
    assert facts["missing"].tolist() == ["", "industry", "employees, country", "reasons"]
    assert rr.incomplete(facts)["account_id"].tolist() == ["b", "d", "c"]
    table = metrics.compute(data, start, end, end, policy_with(complete_pct=80))
    row = metrics.row(table, "routed_record_complete_rate")
    assert (row["numerator"], row["denominator"], row["value"], row["verdict"]) == (1, 4, 25, "missed")
    lenient = rr.record_facts(data, start, end, policy_with(account_fields=("country",), reasons=False))
    assert lenient["complete"].tolist() == [True, True, False, True]


def test_unknown_fields_are_refused_and_no_policy_means_no_section() -> None:
    with pytest.raises(ValueError, match="unknown account field 'sector'"):
        RoutedRecord(account_fields=("industry", "sector"))
    start, end = WEEK
    data = data_of([account("a", industry=None)], [("a", start, "r")])
    assert DEFAULT.routed_record is None
    assert metrics.row(metrics.compute(data, start, end, end, DEFAULT), "routed_record_complete_rate")["target"] == ""
    assert "Routed records" not in [s.title for s in reporting.build_weekly(data, "2026-W13", DEFAULT).sections]
    report = reporting.build_weekly(data, "2026-W13", policy_with())
    section = next(s for s in report.sections if s.title == "Routed records")
    assert section.text[0].startswith("0 of 1 MQA routed this week had a complete record (0%)")
    assert section.tables[0].frame["missing"].tolist() == ["industry"]
    for preset in ("demo", "one-page-escalation", "seven-commitments"):
        assert load_policy(f"config/presets/{preset}.yaml").routed_record is not None
