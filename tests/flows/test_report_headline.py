"""The weekly flow posts its headline through a Prefect notification block, and keeps it as an artifact."""

from __future__ import annotations

import pytest

from tests.flows.conftest import run_live
from tests.flows.test_scheduled import artifacts

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]


def test_weekly_headline_is_posted_to_the_named_block_and_kept_as_an_artifact(crm_export, env_db, tmp_path, chat):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    from flows.reports import weekly_sla_dashboard

    url, received = chat.url, chat.received
    CustomWebhookNotificationBlock(name="sla", url=url, json_data={"text": "{{body}}", "title": "{{subject}}"}).save(
        "sla-chat", overwrite=True)
    run_live(env_db, as_of="2026-01-20T12:00:00Z", source="files", path=str(crm_export))
    result = weekly_sla_dashboard({"period": "2026-W03", "out_dir": str(tmp_path / "out"),
                                   "notify_block": "custom-webhook/sla-chat"})
    assert result["posted_to"] == "custom-webhook/sla-chat"
    html = tmp_path / "out" / "weekly-2026-W03.html"
    assert result["files"]["html"] == str(html.resolve())
    assert len(received) == 1
    text = received[0]["text"]
    lines = text.splitlines()
    assert received[0]["title"] == lines[0] and lines[0].startswith("SLA weekly dashboard 2026-W03")
    assert lines[1].startswith("Marketing: ") and lines[2].startswith("Sales: ")
    assert lines[-1] == f"Report: {html.resolve()}"
    artifact = artifacts("weekly-headline")["weekly-headline"]
    assert artifact.split("\n\n") == lines  # the same text


def test_a_missing_block_is_one_line_and_the_report_is_still_written(crm_export, env_db, tmp_path, caplog):
    from flows.reports import weekly_sla_dashboard

    run_live(env_db, as_of="2026-01-20T12:00:00Z", source="files", path=str(crm_export))
    result = weekly_sla_dashboard({"period": "2026-W03", "out_dir": str(tmp_path),
                                   "notify_block": "slack-webhook/no-such-block"})
    assert result["posted_to"] is None and (tmp_path / "weekly-2026-W03.html").is_file()
    assert "headline not posted to notification block 'slack-webhook/no-such-block'" in caplog.text


def test_a_default_period_without_data_says_so_in_one_line(crm_export, env_db, tmp_path, caplog, monkeypatch):
    from flows.parameters import OUTPUT_DIR_ENV
    from flows.reports import weekly_sla_dashboard

    monkeypatch.setenv(OUTPUT_DIR_ENV, str(tmp_path / "output"))
    run_live(env_db, as_of="2026-01-20T12:00:00Z", source="files", path=str(crm_export))
    result = weekly_sla_dashboard({})  # the last full week before today: nothing measured then
    assert result["files"]["html"].startswith(str(tmp_path / "output" / "reports") + "/")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("No data for ")]
    assert len(lines) == 1 and "the warehouse's latest measurement is 2026-01-20 (2026-W04)" in lines[0]
    assert lines[0].endswith("(the default period; set Period to one with data)")
    report = artifacts("weekly-report")["weekly-report"]
    assert f"`{tmp_path / 'output' / 'reports'}/" in report  # artifacts name absolute paths


def test_monthly_review_runs_on_the_first_business_day_only(env_db, tmp_path, monkeypatch):
    import datetime as dt

    from flows import reports

    monkeypatch.setattr(reports, "_today", lambda params: dt.date(2026, 2, 3))  # a Tuesday, not the 1st business day
    params = {"out_dir": str(tmp_path), "only_on_first_business_day": True}
    assert reports.monthly_review(params)["skipped"] is True
    monkeypatch.setattr(reports, "_today", lambda params: dt.date(2026, 2, 2))  # Monday: February's first
    result = reports.monthly_review(params)
    assert result["period"] == "2026-01" and (tmp_path / "monthly-2026-01.html").is_file()
    assert artifacts("monthly-headline")["monthly-headline"].startswith("SLA monthly review 2026-01")
