"""Issue 26 (implementation guide): the quarterly review's attendance through the command line on a SQLite
warehouse, shown in the quarterly report with a warning when sales did not attend; off by default."""

from __future__ import annotations

from pathlib import Path

from abm_sla.cli import main
from abm_sla.services.config_files import load_policy
from abm_sla.services.reporting import build_monthly, build_quarterly, build_weekly, load_data
from abm_sla.warehouse import Warehouse, decisions


def test_attendance_recorded_and_shown_with_a_warning_when_sales_is_absent(tmp_path: Path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    store = Warehouse(db)
    base = ["--db", db]
    assert main(["review", "attend", "--period", "2026-q1", "--name", "Sam Okafor", "--side", "Marketing",
                 "--at", "2026-03-30T15:00Z", *base]) == 0
    assert capsys.readouterr().out.strip() == "recorded Sam Okafor (marketing) at the 2026-Q1 review"
    assert main(["review", "attend", "--period", "2026-Q1", "--name", "Sam Okafor", "--side", "marketing",
                 *base]) == 0
    assert "already recorded" in capsys.readouterr().out
    assert main(["review", "attend", "--period", "2026-03", "--name", "x", "--side", "sales", *base]) == 1
    assert capsys.readouterr().err.strip() == "error: the period must be a quarter like 2026-Q1, got '2026-03'"
    assert main(["review", "attend", "--period", "2026-Q1", "--name", "x", "--side", "finance", *base]) == 1
    assert capsys.readouterr().err.strip() == "error: the side must be sales or marketing, got 'finance'"
    assert decisions.read_attendance(store)[["period", "side", "name"]].values.tolist() == [
        ["2026-Q1", "marketing", "Sam Okafor"]]

    policy = load_policy("config/presets/demo.yaml")
    report = build_quarterly(load_data(store), "2026-Q1", policy)
    shown = report.tables["review_attendance"].frame
    assert shown.values.tolist() == [["sales", "absent", ""], ["marketing", "present", "Sam Okafor"]]
    assert any(note.startswith("Nobody from sales is recorded at the 2026-Q1 account review") for note in report.notes)
    assert any("No campaign started this quarter on Tier 1, 2, 3" in note for note in report.notes)

    assert main(["review", "attend", "--period", "2026-Q1", "--name", "Dana Reyes", "--side", "sales", *base]) == 0
    report = build_quarterly(load_data(store), "2026-Q1", policy)
    assert report.tables["review_attendance"].frame["attended"].tolist() == ["present", "present"]
    assert not any("account review" in note for note in report.notes)
    assert report.metrics.query("metric == 'review_sides_absent'")["value"].tolist() == [0]

    default = build_quarterly(load_data(store), "2026-Q1", load_policy())  # off by default: not shown
    assert not {"review_attendance", "campaign_calendar", "campaign_tiers"} & set(default.tables)
    # the weekly collisions and the monthly content coverage: shown only with their policy, "n/a" without data
    week, month = build_weekly(load_data(store), "2026-W10", policy), build_monthly(load_data(store), "2026-03", policy)
    assert "outreach_collisions" in week.tables and "content_coverage" in month.tables
    assert "n/a (none)" in next(s for s in week.sections if s.title == "Outreach coordination").text[0]
    assert "outreach_collisions" not in build_weekly(load_data(store), "2026-W10", load_policy()).tables
    assert "content_coverage" not in build_monthly(load_data(store), "2026-03", load_policy()).tables
