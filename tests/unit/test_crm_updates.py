"""CRM updates (issue 26, ABM template): every meeting, call and engaged-lead touch logged within 24 hours, and the
listed accounts updated weekly, at their boundaries."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from abm_sla.domain import crm_updates as cu
from abm_sla.domain import metrics as catalog
from abm_sla.domain.policy.reports import CrmUpdates
from abm_sla.domain.scorecard import SlaData
from abm_sla.errors import ConfigError
from abm_sla.services.config_files import load_policy
from tests.unit.builders import account, activity, frame, status

WEEK = (pd.Timestamp("2026-03-23", tz="UTC"), pd.Timestamp("2026-03-30", tz="UTC"))
H = pd.Timedelta(hours=1)
NS = pd.Timedelta(1, unit="ns")


def policy_with(**settings):
    return load_policy().model_copy(update={"crm_updates": CrmUpdates(**settings)})


def logged(type_: str, at: pd.Timestamp, delay: pd.Timedelta | None, account_id: str = "a",
           owner_id: str | None = None) -> dict:
    return {**activity(type_, at, account_id), "logged_at": None if delay is None else at + delay,
            "owner_id": owner_id}


def data_of(acts, accounts=None, changes=()) -> SlaData:
    accounts = accounts or [account("a", owner_id="U1"), account("b", owner_id="U2")]
    return SlaData.of(accounts=frame("accounts", accounts), activities=frame("activities", acts),
                      status_changes=frame("status_changes", list(changes)))


def test_every_sales_meeting_and_call_is_judged_at_24_hours_per_owner() -> None:
    start, end = WEEK
    day = start + pd.Timedelta(days=1)
    acts = [logged("meeting", day, 24 * H, owner_id="U9"),          # exactly 24 h: in time, owner who logged it
            logged("call", day, 24 * H + NS),                       # a nanosecond late; owner = the account's
            logged("call", day + 2 * H, -H),                        # logged before it happened: in time
            logged("meeting", day, None),                           # no logged_at: not judged
            logged("email_sent", day, 48 * H),                      # not a meeting or call
            logged("call", end, 48 * H),                            # outside the week
            logged("email_open", day, 30 * H, "b"),                 # marketing: late
            logged("form_submit", day, 2 * H, "b")]                 # marketing: in time
    data, policy = data_of(acts), policy_with()
    facts = cu.logging_facts(data, start, end, policy)
    sales = facts[facts["sales"]]
    assert sales["in_time"].tolist() == [True, False, True]
    assert sales["owner_id"].tolist() == ["U9", "U1", "U1"]
    table = catalog.compute(data, start, end, end, policy)
    assert catalog.value(table, "sales_activities_logged_rate") == pytest.approx(66.7)
    assert catalog.value(table, "sales_activities_logged_rate", "owner=U1") == 50
    assert catalog.value(table, "sales_activities_logged_rate", "owner=U9") == 100
    assert catalog.value(table, "marketing_activities_logged_rate") == 50
    assert catalog.value(table, "marketing_activities_logged_rate", "owner=U2") == 50


def test_the_window_and_types_are_policy_and_no_logged_at_column_measures_nothing() -> None:
    start, end = WEEK
    day = start + pd.Timedelta(days=1)
    data = data_of([logged("meeting", day, 30 * H), logged("email_sent", day, H)])
    table = catalog.compute(data, start, end, end, policy_with(hours=48, sales_types=("meeting", "email_sent")))
    assert catalog.value(table, "sales_activities_logged_rate") == 100
    bare = SlaData.of(accounts=data.accounts, activities=data.activities.drop(columns="logged_at"))
    assert cu.logging_facts(bare, start, end, policy_with()).empty
    with pytest.raises(ValueError, match="unknown activity type 'meetings'"):
        CrmUpdates(sales_types=("meetings",))


def test_a_listed_account_is_updated_by_an_activity_logged_or_a_status_change_in_the_week() -> None:
    start, end = WEEK
    accounts = [account(name, owner_id="U1") for name in ("a", "b", "c", "d", "e")]
    acts = [logged("web_visit", start - H, 2 * H, "a"),      # happened before, logged inside: updated
            logged("call", end - H, 2 * H, "b"),             # logged after the week: not this week
            logged("call", start - 48 * H, H, "b"),          # b's last update: before the week
            {**activity("call", start, "c"), "logged_at": None}]  # no logged_at: occurred_at counts
    changes = [status("working", end - NS, "d")]
    data = data_of(acts, accounts, changes)
    facts = cu.account_update_facts(data, start, end)
    assert dict(zip(facts["account_id"], facts["updated"], strict=True)) == {
        "a": True, "b": False, "c": True, "d": True, "e": False}
    stale = cu.stale_accounts(facts)
    assert stale["account_id"].tolist() == ["e", "b"]  # never updated first
    table = catalog.compute(data, start, end, end, policy_with(accounts_updated_pct=80))
    row = catalog.row(table, "accounts_updated_rate")
    assert (row["numerator"], row["denominator"], row["value"], row["verdict"]) == (3, 5, 60, "missed")
    assert catalog.value(table, "stale_accounts") == 2


def test_without_the_policy_there_is_no_target_and_no_section(tmp_path) -> None:
    from abm_sla.services import reporting

    start, end = WEEK
    data = data_of([logged("meeting", start + H, 30 * H)])
    default = load_policy()
    assert default.crm_updates is None
    table = catalog.compute(data, start, end, end, default)
    assert catalog.row(table, "sales_activities_logged_rate")["target"] == ""
    report = reporting.build_weekly(data, "2026-W13", default)
    assert "CRM updates" not in [section.title for section in report.sections]
    shown = reporting.build_weekly(data, "2026-W13", policy_with(logged_pct=90))
    section = next(section for section in shown.sections if section.title == "CRM updates")
    logging = section.tables[0].frame
    assert logging[["side", "owner_id", "activities", "late"]].values.tolist()[:2] == [
        ["sales", "all", 1, 1], ["sales", "U1", 1, 1]]


def test_the_demo_preset_switches_it_on_and_bad_keys_are_one_line_errors(tmp_path) -> None:
    assert load_policy("config/presets/demo.yaml").crm_updates is not None
    assert load_policy("config/presets/abm-template.yaml").crm_updates is not None
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path("config/sla.yaml").read_text(encoding="utf-8") + "\ncrm_updates: {hours: 0}\n")
    with pytest.raises(ConfigError, match=r"crm_updates\.hours"):
        load_policy(bad)
