"""prefect.yaml and `serve`: every deployment loads, schedules have explicit time zones, serve matches the YAML."""

from __future__ import annotations

import pytest

from deployments.serve import deployment_specs, load_flow, to_deployments

EXPECTED = {
    "crm-sync": ["*/15 * * * *"], "score-and-route": ["5 * * * *"], "sla-monitor": ["10,25,40,55 * * * *"],
    "weekly-sla-dashboard": ["0 8 * * 2"], "monthly-review": ["0 8 1-7 * 1-5"],
    "quarterly-renegotiation-report": ["0 8 1-7 1,4,7,10 1-5"],
    "backfill": [], "recalculate": [], "undo": [], "dispute": [], "propose-model": [],
}


def test_prefect_yaml_declares_every_deployment_with_explicit_time_zones():
    specs = {spec["name"]: spec for spec in deployment_specs()}
    assert {name: [s["cron"] for s in spec.get("schedules") or []] for name, spec in specs.items()} == EXPECTED
    for spec in specs.values():
        assert spec["work_pool"]["name"] == "abm-sla"
        assert all(schedule.get("timezone") for schedule in spec.get("schedules") or [])
        load_flow(spec["entrypoint"])
    assert specs["quarterly-renegotiation-report"]["schedules"][0]["day_or"] is False


def test_serve_builds_the_same_deployments(monkeypatch):
    monkeypatch.setenv("ABM_SLA_EXPORT_PATH", "/data/crm-export")
    served = {d.name: d for d in to_deployments(deployment_specs())}
    assert {name: [s.schedule.cron for s in d.schedules] for name, d in served.items()} == EXPECTED
    assert served["crm-sync"].parameters == {"params": {"source": "files", "path": "/data/crm-export"}}
    quarterly = served["quarterly-renegotiation-report"].schedules[0]
    assert quarterly.schedule.day_or is False and quarterly.parameters["params"]["only_on_first_business_day"]
    assert quarterly.parameters["params"]["out_dir"] == ""  # a schedule's params replace the deployment's
    monthly = served["monthly-review"].schedules[0]
    assert monthly.schedule.day_or is False and monthly.parameters["params"]["only_on_first_business_day"]


def test_every_deployment_takes_one_typed_form_and_never_a_database_url():
    from prefect.utilities.callables import parameter_schema

    for spec in deployment_specs():
        schema = parameter_schema(load_flow(spec["entrypoint"]).fn).model_dump()  # what the UI renders
        assert list(schema["properties"]) == ["params"], spec["name"]
        form = schema["definitions"][schema["properties"]["params"]["$ref"].rsplit("/", 1)[-1]]
        assert "database_secret" in form["properties"] and not {"db_url", "database_url"} & set(form["properties"])
        assert all(field.get("description") for field in form["properties"].values()), spec["name"]


@pytest.mark.parametrize("day", ["2026-01-02", "2026-04-01", "2027-01-04"])
def test_quarterly_guard_accepts_the_first_business_day(day):
    import datetime as dt

    from flows.reports import is_first_business_day_of_quarter

    date = dt.date.fromisoformat(day)
    assert is_first_business_day_of_quarter(date, "US")
    assert not is_first_business_day_of_quarter(date + dt.timedelta(days=1), "US")


@pytest.mark.parametrize(("day", "month"), [("2026-03-02", "2026-02"), ("2026-06-01", "2026-05"),
                                            ("2027-01-04", "2026-12"), ("2026-09-01", "2026-08")])
def test_monthly_guard_accepts_the_first_business_day(day, month):
    """2026-03-02: Monday after a weekend 1st; 2027-01-04: New Year's Day on a Friday, then a weekend."""
    import datetime as dt

    from flows.reports import is_first_business_day_of_month, last_full_month

    date = dt.date.fromisoformat(day)
    assert is_first_business_day_of_month(date, "US") and last_full_month(date) == month
    assert not is_first_business_day_of_month(date + dt.timedelta(days=1), "US")
    assert not is_first_business_day_of_month(date.replace(day=1) - dt.timedelta(days=1), "US")
