"""Reports from a SQLite warehouse: HTML with embedded charts, Markdown, one CSV per table, footnoted sources."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pandas as pd
import pytest

from abm_sla import reporting
from abm_sla.errors import AbmSlaError
from abm_sla.policy import load_policy
from abm_sla.warehouse import Warehouse, schema
from abm_sla.warehouse.store import records
from tests.unit.test_scorecard import sample_data

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CRM_KINDS = ("accounts", "activities", "opportunities", "users", "status_changes")


@pytest.fixture
def warehouse(sqlite_url) -> Warehouse:
    """The scorecard's hand-built dataset stored in a fresh SQLite warehouse."""
    store = Warehouse(sqlite_url)
    data = sample_data()
    with store.engine.begin() as connection:
        for kind in CRM_KINDS:
            store.store_frames(connection, "files", kind, getattr(data, kind).dropna(axis=1, how="all"))
        for name in ("mqas", "sla_clocks", "escalations"):
            table = getattr(schema, name)
            rows = getattr(data, name)
            if name == "mqas":
                rows = rows.assign(firmographic=30, engagement=20, intent=15, total=65, reasons=[[]] * len(rows),
                                   model_version="test")
            columns = [column.name for column in table.columns if column.name in rows.columns]
            store.upsert(connection, table, records(rows[columns]))
    return store


def images(html: str) -> list[bytes]:
    return [base64.b64decode(match) for match in re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"', html)]


def test_weekly_report_files(warehouse, tmp_path):
    paths = reporting.generate_report(warehouse, "weekly", "2026-W10", tmp_path)
    html = paths["html"].read_text(encoding="utf-8")
    pngs = images(html)
    assert len(pngs) == 3 and all(png.startswith(PNG_MAGIC) and len(png) > 5_000 for png in pngs)
    assert paths["html"].name == "weekly-2026-W10.html"
    four = pd.read_csv(paths["table:four_numbers"])
    assert four.set_index("tier").loc["2", "first_touch_met_of_decided"] == "0/1"
    misses = pd.read_csv(paths["table:misses"])
    assert misses["account_name"].tolist() == ["Cyan", "Beta"]
    assert misses["due_at"].iloc[0] == "2026-03-05T10:00:00Z"
    assert pd.read_csv(paths["table:tier_moves"])["account_id"].tolist() == ["A7", "A6", "A5", "A8"]
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "[^1]: `four_numbers` — sla_clocks where due_at in [2026-03-02T00:00:00Z, 2026-03-09T00:00:00Z)" in markdown
    assert "![Compliance trend](charts/weekly-2026-W10/compliance_trend.png)" in markdown
    assert paths["chart:compliance_trend"].read_bytes().startswith(PNG_MAGIC)


def test_two_reports_in_one_folder_keep_their_own_tables_charts_and_diffs(warehouse, tmp_path):
    weekly = reporting.generate_report(warehouse, "weekly", "2026-W10", tmp_path)
    weekly_files = {key: path.read_bytes() for key, path in weekly.items() if key.startswith(("table:", "chart:"))}
    quarterly = reporting.generate_report(warehouse, "quarterly", "2026-Q1", tmp_path)
    assert set(weekly.values()).isdisjoint(quarterly.values())
    assert all(weekly[key].read_bytes() == content for key, content in weekly_files.items())
    for paths in (weekly, quarterly):  # every chart the Markdown links to is the one it was written with
        markdown = paths["markdown"].read_text(encoding="utf-8")
        for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown):
            assert (tmp_path / link).is_file()
        assert {key for key in paths if key.startswith("chart:")} == {
            f"chart:{Path(link).stem}" for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown)}
    assert quarterly["diff:config/sla.yaml"].name == "quarterly-2026-Q1-sla.yaml.diff"


def test_quarterly_report_has_every_section(warehouse, tmp_path):
    paths = reporting.generate_report(warehouse, "quarterly", "2026-Q1", tmp_path)
    html = paths["html"].read_text(encoding="utf-8")
    assert len(images(html)) == 4
    for title in ("Marketing", "Sales", "Joint", "Commitments", "Proposals"):
        assert f"<h2>{title}</h2>" in html
    report_tables = {key.split(":", 1)[1] for key in paths if key.startswith("table:")}
    assert {"marketing_by_tier", "chronic_misses", "threshold_backtest", "pipeline", "win_rates"} <= report_tables
    sources = re.findall(r'<li id="src-(\d+)"', html)
    assert len(sources) == len(report_tables) + 4  # every table and chart has a footnote
    chronic = pd.read_csv(paths["table:chronic_misses"])
    assert chronic["action"].fillna("").eq("renegotiate").any()
    assert "diff:config/sla.yaml" in paths and paths["diff:config/sla.yaml"].read_text().startswith("--- a/config/")


def test_report_object_serves_artifacts(warehouse):
    report = reporting.build_weekly(warehouse, "2026-W10", load_policy())
    assert set(report.tables) >= {"four_numbers", "misses", "open_escalations", "tier_moves"}
    assert report.markdown(chart_dir=None).count("![") == 0
    assert "<script" not in report.html()


def test_bad_kind_and_period(warehouse, tmp_path):
    with pytest.raises(AbmSlaError, match="kind"):
        reporting.generate_report(warehouse, "daily", "2026-W10", tmp_path)
    with pytest.raises(AbmSlaError, match="period"):
        reporting.generate_report(warehouse, "weekly", "W10", tmp_path)


def test_empty_warehouse_still_renders(sqlite_url, tmp_path):
    paths = reporting.generate_report(sqlite_url, "quarterly", "2026-Q1", tmp_path)
    assert len(images(paths["html"].read_text(encoding="utf-8"))) == 4
