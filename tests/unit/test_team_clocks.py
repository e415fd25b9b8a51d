"""Team clocks (issue 26, ABM template): requests answered between the teams, hot accounts coordinated."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from abm_sla.domain import frames, metrics
from abm_sla.domain import team_clocks as tc
from abm_sla.domain.policy import DEFAULT_PATH, Window
from abm_sla.domain.policy.teams import HotAccounts, Requests
from abm_sla.domain.scorecard import SlaData
from abm_sla.services.config_files import load_policy
from abm_sla.services.reporting import build_weekly

DEFAULT = load_policy()
DEMO = load_policy(DEFAULT_PATH.parent / "presets" / "demo.yaml")
TEMPLATE = load_policy(DEFAULT_PATH.parent / "presets" / "abm-template.yaml")
ON = DEFAULT.model_copy(update={
    "requests": Requests(materials=Window(business_hours=16), account_info=Window(business_hours=8)),
    "hot_accounts": HotAccounts()})
USERS = pd.DataFrame([("S1", "sales", "Europe/London", "GB"), ("M1", "marketing", "America/New_York", "US")],
                     columns=["user_id", "role", "time_zone", "country"])
ACCOUNTS = pd.DataFrame([("A", "Acme", "S1", "1"), ("B", "Beta", None, "2")],
                        columns=["account_id", "name", "owner_id", "tier"])
TUESDAY = "2026-03-03T10:00Z"  # in business hours in London; 05:00 in New York


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


def request(kind: str, answered: str | None, owner: str | None = None, account: str = "A",
            asked: str = TUESDAY) -> pd.DataFrame:
    frame = pd.DataFrame([("R1", account, kind, "X", asked, answered, owner)], columns=frames.REQUEST_COLUMNS)
    return frame.assign(requested_at=frames.to_utc(frame["requested_at"]),
                        answered_at=frames.to_utc(frame["answered_at"]))


def activities(*rows: tuple[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame([(f"T{i}", "A", kind, at, "S1") for i, (kind, at) in enumerate(rows)],
                         columns=["activity_id", "account_id", "type", "occurred_at", "owner_id"])
    return frame.assign(occurred_at=frames.to_utc(frame["occurred_at"]))


def clocks(requests: pd.DataFrame | None = None, acts: pd.DataFrame | None = None, as_of: str = "2026-04-01T00:00Z",
           policy=ON) -> list[tuple]:
    requests = frames.empty("requests") if requests is None else requests
    acts = frames.empty("activities") if acts is None else acts
    out = tc.evaluate(requests, acts, ACCOUNTS, USERS, policy, ts(as_of))
    return [(r.clock, r.status, r.due_at, None if pd.isna(r.met_at) else r.met_at, r.owner_id)
            for r in out.itertuples()]


def test_off_by_default_on_in_the_demo_and_the_abm_template() -> None:
    assert DEFAULT.requests is None and DEFAULT.hot_accounts is None and tc.enabled(DEFAULT) == ()
    assert clocks(request("materials", None), activities(("hot_flag", TUESDAY)), policy=DEFAULT) == []
    for preset in (DEMO, TEMPLATE):
        assert tc.enabled(preset) == tc.TEAM_CLOCKS
        assert (preset.requests.materials.amount, preset.requests.account_info.amount) == (16, 8)
        assert preset.hot_accounts.window.amount == 8


def test_account_info_answered_exactly_one_business_day_on_is_met_a_second_later_missed() -> None:
    due = ts("2026-03-04T10:00Z")  # the account's owner S1 (London) owes it
    assert clocks(request("account_info", "2026-03-04T10:00Z")) == [("account_info_request", "met", due, due, "S1")]
    assert clocks(request("account_info", "2026-03-04T10:00:01Z"))[0][1] == "missed"
    assert clocks(request("account_info", None), as_of="2026-03-04T10:00Z")[0][1] == "pending"
    assert clocks(request("account_info", None), as_of="2026-03-04T10:00:01Z")[0][1] == "missed"


def test_materials_due_in_the_marketers_zone_over_the_weekend() -> None:
    # 05:00 in New York: the two business days run from Tuesday 09:00 local to Wednesday 17:00 local
    assert clocks(request("materials", None, owner="M1"))[0][2] == ts("2026-03-04T22:00Z")
    # asked Friday 16:00 London (owner S1): 1 h Friday, 8 h Monday, 7 h Tuesday
    friday = clocks(request("materials", None, asked="2026-03-06T16:00Z"))
    assert friday[0][2] == ts("2026-03-10T16:00Z")


def test_missing_inputs_no_owner_is_utc_an_answer_before_as_of_only_and_an_unset_kind_is_off() -> None:
    # account B has no owner and the request none: UTC, no holidays (16 business hours from Tuesday 10:00)
    assert clocks(request("materials", None, account="B"))[0][2:] == (ts("2026-03-05T10:00Z"), None, None)
    # an answer after as_of is not known yet
    assert clocks(request("materials", "2026-03-04T12:00Z"), as_of="2026-03-04T11:00Z")[0][1:4:2] == ("pending", None)
    # a request after as_of does not count yet
    assert clocks(request("materials", None), as_of="2026-03-03T09:00Z") == []
    only = ON.model_copy(update={"requests": Requests(materials=Window(business_hours=16))})
    assert clocks(request("account_info", None), policy=only) == []


def test_hot_account_met_by_marketing_work_after_the_flag_only() -> None:
    flag = ("hot_flag", TUESDAY)
    due = ts("2026-03-04T10:00Z")
    assert clocks(acts=activities(flag, ("account_research", "2026-03-04T10:00Z"))) == [
        ("hot_account", "met", due, due, "S1")]
    # research before the flag or a sales touch after it does not coordinate anything
    late = clocks(acts=activities(("account_research", "2026-03-03T09:00Z"), flag, ("call", "2026-03-03T11:00Z")))
    assert late == [("hot_account", "missed", due, None, "S1")]
    assert clocks(acts=activities(flag), as_of="2026-03-04T10:00Z")[0][1] == "pending"


def test_coordinated_by_takes_activity_types_only() -> None:
    assert HotAccounts(coordinated_by=["Ad_Click "]).coordinated_by == ["ad_click"]
    with pytest.raises(ValidationError):
        HotAccounts(coordinated_by=["hot_flag"])
    with pytest.raises(ValidationError):
        HotAccounts(coordinated_by=["fax"])


def test_counted_through_the_catalog_and_shown_in_the_weekly_dashboard() -> None:
    requests = pd.concat([request("account_info", "2026-03-03T12:00Z"),
                          request("materials", None, asked="2026-03-04T10:00Z").assign(request_id="R2")])
    data = SlaData.of(accounts=ACCOUNTS.reindex(columns=frames.ACCOUNT_COLUMNS),
                      users=USERS.reindex(columns=frames.USER_COLUMNS), requests=requests,
                      activities=activities(("hot_flag", TUESDAY), ("account_research", "2026-03-05T10:00Z"))
                      .reindex(columns=frames.ACTIVITY_COLUMNS))
    table = metrics.compute(data, ts("2026-03-02T00:00Z"), ts("2026-03-09T00:00Z"), ts("2026-03-09T00:00Z"), ON,
                            report="weekly")
    assert metrics.value(table, "account_info_request_met_rate") == 100.0
    assert metrics.value(table, "materials_request_clocks_missed") == 1
    assert metrics.value(table, "hot_account_clocks_missed") == 1
    report = build_weekly(data, "2026-W10", ON)
    shown = report.tables["team_clock_compliance"].frame
    assert shown[shown["owner_id"] == "all"].set_index("clock")["met"].to_dict() == {
        "materials_request": 0, "account_info_request": 1, "hot_account": 0}
    assert set(report.tables["team_clock_open"].frame["clock"]) == {"materials_request", "hot_account"}
    # the next week's list keeps the unanswered request, not the flag coordinated late
    later = build_weekly(data, "2026-W11", ON).tables["team_clock_open"].frame
    assert list(later["item_id"]) == ["R2"]
    assert "team_clock_compliance" not in build_weekly(data, "2026-W10", DEFAULT).tables


def test_the_demo_crm_has_requests_and_hot_flags_with_plausible_answers() -> None:
    from abm_sla.services.synthetic import add_team_requests, generate_crm

    start = ts("2026-01-05T00:00Z")
    crm = add_team_requests(generate_crm(n_accounts=200, start=start, days=60, seed=3), start, 60, 3)
    requests, flags = crm["requests"], crm["activities"][crm["activities"]["type"] == frames.HOT_FLAG]
    assert list(requests.columns) == frames.REQUEST_COLUMNS and requests["request_id"].is_unique
    assert len(requests) > 10 and len(flags) > 3 and crm["activities"]["activity_id"].is_unique
    assert set(requests["kind"]) == set(frames.REQUEST_KINDS)
    assert requests["account_id"].isin(crm["accounts"]["account_id"]).all()
    assert (requests["answered_at"].dropna() > requests.loc[requests["answered_at"].notna(), "requested_at"]).all()
    out = tc.evaluate(requests, crm["activities"], crm["accounts"], crm["users"], DEMO, start + pd.Timedelta(days=60))
    shares = out["status"].value_counts(normalize=True)
    assert 0.4 < shares["met"] < 0.95 and shares["missed"] > 0.05
