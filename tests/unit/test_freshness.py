"""Source freshness: dbt's warn_after / error_after on each table's newest row, as of the run's as of."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from abm_sla.domain import freshness
from abm_sla.domain.policy import DEFAULT_PATH, parse_policy
from abm_sla.errors import ConfigError
from abm_sla.services.config_files import load_policy

AS_OF = pd.Timestamp("2026-03-31T12:00:00Z")


def rules(**fields) -> freshness.Freshness:
    return freshness.Freshness(**fields)


@pytest.mark.parametrize(("age_days", "status"), [(1, "pass"), (3, "warn"), (8, "error")])
def test_the_default_rules_warn_after_two_days_and_call_data_stale_after_seven(age_days, status):
    result = freshness.check(rules(), {"activities": AS_OF - pd.Timedelta(days=age_days)}, AS_OF)
    assert result.status == status
    assert result.escalate is (status != "error")  # a stale run opens no escalations by default


def test_a_table_without_rows_at_or_before_the_as_of_is_stale():
    result = freshness.check(rules(), {"activities": None}, AS_OF)
    assert result.stale and "no rows" in result.as_dict()["checks"][0]


def test_escalate_when_stale_lets_a_stale_run_escalate_and_says_so():
    result = freshness.check(rules(escalate_when_stale=True), {"activities": AS_OF - pd.Timedelta(days=30)}, AS_OF)
    assert result.stale and result.escalate and "escalations opened anyway" in result.headline()


def test_only_live_runs_are_checked_by_default():
    assert freshness.applies(rules(), live=True) and not freshness.applies(rules(), live=False)
    assert freshness.applies(rules(applies_to="all"), live=False)
    assert not freshness.applies(rules(applies_to="none"), live=True)


def test_the_policy_file_carries_the_documented_defaults_and_rejects_nonsense():
    policy = load_policy()
    assert policy.freshness == freshness.Freshness()
    assert policy.freshness.tables["activities"].error_after.delta == pd.Timedelta(days=7)
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    data["freshness"]["tables"]["activities"]["warn_after"] = {"count": 8, "period": "day"}
    with pytest.raises(ConfigError, match="warn_after must not be longer than error_after"):
        parse_policy(data)
    data["freshness"]["tables"] = {"contacts": {}}
    with pytest.raises(ConfigError, match=r"freshness\.tables\.contacts"):
        parse_policy(data)


def test_without_escalations_drops_every_ladder_and_keeps_the_clocks():
    policy = load_policy()
    quiet = freshness.without_escalations(policy)
    assert policy.ladders and not quiet.ladders
    assert quiet.clocks == policy.clocks
