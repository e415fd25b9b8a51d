"""Named commitment owners on every scorecard, and the regional appendix (issue 26): regional windows on the
clocks, compliance per region through the metrics catalog, and nothing changed without the policy keys."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import yaml

from abm_sla.domain import metrics
from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy import DEFAULT_PATH, parse_policy
from abm_sla.domain.sla import evaluate_clocks
from abm_sla.errors import ConfigError
from abm_sla.services import reporting
from abm_sla.services.config_files import load_policy
from tests.unit.test_scorecard import W10, sample_data
from tests.unit.test_sla import USERS, activities, changes, check, mqa, mqas, one, ts

BASE = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
EMEA = {"countries": ["gb", "DE"], "clocks": {"first_touch": {1: {"business_hours": 4}}},
        "targets": {"first_touch": 90}}


def policy(**keys):
    return parse_policy({**BASE, **keys})


def accounts(*rows: tuple[str, str | None]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["account_id", "country"])


# --- owners --------------------------------------------------------------------------------------------

def test_owner_keys_are_normalized_and_nobody_or_a_bad_key_is_a_one_line_error():
    assert policy(owners={" Marketing ": " VP Marketing ", "custom:win_rate_pct": "CRO"}).owners == {
        "marketing": "VP Marketing", "custom:win_rate_pct": "CRO"}
    with pytest.raises(ConfigError, match=r"owners.*names nobody"):
        policy(owners={"sales": "  "})
    with pytest.raises(ConfigError, match="not a commitment name"):
        policy(owners={"first touch!": "VP Sales"})


def test_a_commitments_own_owner_wins_over_its_sides_default_and_none_is_empty():
    data = sample_data()
    owned = policy(owners={"sales": "VP Sales", "first_touch_met_pct": "Head of SDRs", "marketing": "CMO"})
    card = sc.headline(data, *W10, W10[1], owned).set_index(["commitment", "tier"])
    assert card.loc[("first_touch_met_pct", 1), "owner"] == "Head of SDRs"
    assert card.loc[("tier1_win_rate_pct", 1), "owner"] == "VP Sales"
    assert card.loc[("mqa_volume", 3), "owner"] == "CMO"
    assert set(sc.headline(data, *W10, W10[1], policy())["owner"]) == {""}


@pytest.fixture(scope="module")
def plain_weekly() -> reporting.Report:
    """The weekly report of the sample data under the default policy (no owners, no regions); tests only read it."""
    return reporting.build_weekly(sample_data(), "2026-W10", policy())


def test_owners_show_beside_each_commitment_on_the_report_and_not_without_them(plain_weekly):
    data, plain = sample_data(), plain_weekly
    owned = reporting.build_weekly(data, "2026-W10", policy(owners={"sales": "VP Sales", "marketing": "CMO"}))
    assert "| Commitment | Actual | Target | Verdict | Change | Sample |" in plain.markdown()
    assert "Owner" not in plain.markdown().split("## Needs a decision")[0]
    text = owned.markdown()
    assert "| Commitment | Owner | Actual | Target | Verdict | Change | Sample |" in text
    assert "| First touch within the window, Tier 2 | VP Sales | 0%" in text
    assert 'class="owner">Owner: VP Sales</span>' in owned.html()
    assert "owner VP Sales)" in "\n".join(reporting.headline_lines(owned))


def test_an_owner_key_naming_no_commitment_is_flagged_and_metrics_columns_stay_stable(plain_weekly):
    data = sample_data()
    owned = policy(owners={"sales": "VP Sales", "first_tuoch_met_pct": "typo"})
    report = reporting.build_weekly(data, "2026-W10", owned)
    assert any("first_tuoch_met_pct" in note for note in report.notes)
    assert not any("Policy owners" in note for note in plain_weekly.notes)
    assert list(report.metrics.columns) == metrics.COLUMNS
    pd.testing.assert_frame_equal(report.metrics, metrics.compute(data, *W10, W10[1], policy(), report="weekly"))


# --- regions: the policy ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("regions", "message"), [
    ({"EMEA": {"countries": ["GB"]}, "UKI": {"countries": ["gb"]}}, "country GB is in two regions"),
    ({"EMEA": {"countries": ["GBR"]}}, "not an ISO 3166 alpha-2"),
    ({"EMEA": {"countries": ["GB"], "targets": {"first_touch": 101}}}, "between 0 and 100"),
    ({"EMEA": {"countries": []}}, "countries"),
    ({"EMEA=1": {"countries": ["GB"]}}, "region name"),
])
def test_bad_regions_are_one_line_errors(regions, message):
    with pytest.raises(ConfigError, match=message):
        policy(regions=regions)


def test_regions_are_off_by_default_in_every_preset_but_the_demo():
    presets = sorted((DEFAULT_PATH.parent / "presets").glob("*.yaml"))
    on = [path.stem for path in presets if load_policy(path).regions]
    assert on == ["demo"]


# --- regions: the clocks ---------------------------------------------------------------------------------

def run(policy_, frame, acts=None, as_of="2026-04-30T00:00Z", accounts_=None):
    return evaluate_clocks(frame, activities() if acts is None else acts, changes(), USERS, policy_, ts(as_of),
                           accounts=accounts_)


def test_without_regions_the_clocks_are_spec_whatever_the_accounts_say():
    frame = mqas(mqa("A"), mqa("B", tier=2, owner="U2"))
    acts = activities(("A", "call", "2026-03-02T13:00Z"), ("B", "call", "2026-03-02T20:00Z"))
    spec = run(load_policy(), frame, acts)
    pd.testing.assert_frame_equal(run(load_policy(), frame, acts, accounts_=accounts(("A", "GB"), ("B", "DE"))), spec)
    # a region nobody is in changes nothing either
    apac = policy(regions={"APAC": {"countries": ["AU"], "clocks": {"first_touch": {1: {"business_hours": 8}}}}})
    pd.testing.assert_frame_equal(run(apac, frame, acts, accounts_=accounts(("A", "GB"), ("B", "DE"))), spec)


@pytest.mark.parametrize(("touch", "status"), [("2026-03-02T14:00Z", "met"), ("2026-03-02T14:00:01Z", "missed")])
def test_a_regional_first_touch_window_replaces_the_tier_window_at_its_boundary(touch, status):
    # routed Monday 10:00 UTC: Tier 1 = 2 business hours (12:00) on the master policy, 4 (14:00) in EMEA
    emea = policy(regions={"EMEA": EMEA})
    result = run(emea, mqas(mqa("A")), activities(("A", "call", touch)), accounts_=accounts(("A", "GB")))
    check(one(result, "first_touch"), status, "2026-03-02T14:00Z", touch)
    master = run(load_policy(), mqas(mqa("A")), activities(("A", "call", touch)), accounts_=accounts(("A", "GB")))
    check(one(master, "first_touch"), "missed", "2026-03-02T12:00Z", touch)


def test_the_accounts_country_decides_and_the_owners_country_only_stands_in_for_a_missing_one():
    emea = policy(regions={"EMEA": EMEA})
    frame = mqas(mqa("US"), mqa("NONE"), mqa("UNKNOWN"), mqa("T2", tier=2))  # owner U1: country GB
    result = run(emea, frame, as_of="2026-03-02T11:00Z",
                 accounts_=accounts(("US", "US"), ("NONE", None), ("T2", "DE")))
    assert one(result, "first_touch", "US")["due_at"] == ts("2026-03-02T12:00Z")  # US account: master
    assert one(result, "first_touch", "NONE")["due_at"] == ts("2026-03-02T14:00Z")  # no country: owner's GB
    assert one(result, "first_touch", "UNKNOWN")["due_at"] == ts("2026-03-02T14:00Z")  # not in accounts: owner's
    assert one(result, "first_touch", "T2")["due_at"] == ts("2026-03-02T14:00Z")  # EMEA gives no Tier 2: master 4 h


def test_regional_routing_status_and_cadence_windows():
    emea = policy(regions={"EMEA": {"countries": ["GB"], "clocks": {
        "routing_time": {"hours": 48}, "status_update": {"hours": 72},
        "cadence": {"touches": 2, "window": {"days": 21}}}}})
    acts = activities(("A", "call", "2026-03-03T10:00Z"), ("A", "email_sent", "2026-03-04T10:00Z"))
    result = run(emea, mqas(mqa("A")), acts, as_of="2026-03-05T00:00Z", accounts_=accounts(("A", "GB")))
    assert one(result, "routing_time")["due_at"] == ts("2026-03-04T08:00Z")
    assert one(result, "status_update")["due_at"] == ts("2026-03-05T10:00Z")
    check(one(result, "cadence"), "met", "2026-03-23T10:00Z", "2026-03-04T10:00Z")  # the 2nd touch meets it
    master = run(load_policy(), mqas(mqa("A")), acts, as_of="2026-03-05T00:00Z", accounts_=accounts(("A", "GB")))
    check(one(master, "cadence"), "pending", "2026-03-16T10:00Z", None)


# --- regions: the appendix -----------------------------------------------------------------------------

def regional_data() -> sc.SlaData:
    data = sample_data()
    countries = {"A1": "GB", "A2": "de", "A3": None}
    return dataclasses.replace(data, accounts=data.accounts.assign(country=data.accounts["account_id"].map(countries)))


def test_compliance_per_region_comes_from_the_catalog_with_the_regions_targets():
    data = regional_data()
    table = metrics.compute(data, *W10, W10[1], policy(regions={"EMEA": EMEA}))
    emea = metrics.row(table, "first_touch_met_rate", "region=EMEA")
    assert (emea["numerator"], emea["denominator"], emea["value"]) == (1, 2, 50.0)  # A1 met, A2 missed
    assert (emea["target"], emea["verdict"]) == (">= 90", "missed")
    none = metrics.row(table, "first_touch_met_rate", "region=(none)")
    assert (none["numerator"], none["denominator"], none["target"], none["verdict"]) == (1, 1, "", "")  # A3
    assert metrics.value(table, "status_update_clocks_missed", "region=(none)") == 1
    plain = metrics.compute(data, *W10, W10[1], policy())
    assert not plain["segment"].str.startswith("region=").any()


def test_the_regional_appendix_is_in_every_report_only_with_regions():
    data = regional_data()
    regional = policy(regions={"EMEA": EMEA})
    built = {}
    for build, period in ((reporting.build_weekly, "2026-W10"), (reporting.build_monthly, "2026-03"),
                          (reporting.build_quarterly, "2026-Q1")):
        report = built[period] = build(data, period, regional)
        assert "Regional appendix" in [section.title for section in report.sections]
        windows = report.tables["regional_windows"].frame
        assert windows[["region", "clock", "window", "master_window"]].values.tolist() == [
            ["EMEA", "first_touch", "4 business hours", "2 business hours"]]
        assert "Regional appendix" not in [section.title for section in build(data, period, policy()).sections]
    weekly = built["2026-W10"]  # the weekly report built above (building it again costs seconds)
    assert "| EMEA | first touch | 1 | 1 | 0 | 50% | ≥ 90% | missed |" in weekly.markdown()
    compliance = weekly.tables["regional_compliance"].frame
    first = compliance[compliance["clock"].eq("first_touch")].set_index("region")
    assert first.loc["EMEA", ["met", "missed", "met_pct", "verdict"]].tolist() == [1, 1, 50.0, "missed"]
    assert first.loc["(none)", ["met", "missed", "met_pct"]].tolist() == [1, 0, 100.0]
