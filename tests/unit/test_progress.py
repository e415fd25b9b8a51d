"""Progress lines: shown inside console_progress (the CLI), a no-op elsewhere."""

from __future__ import annotations

import io

from rich.console import Console

from abm_sla.infra import progress


def test_track_outside_a_display_only_counts():
    with progress.track("backfill steps", total=3) as bar:
        bar.advance(rows=10)
        bar.advance(rows=5)
    assert (bar.done, bar.rows) == (2, 15)


def test_console_progress_shows_each_stage_with_counts_and_rows(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr("rich.console.Console", lambda **kw: Console(file=buffer, width=120, force_terminal=False))
    with progress.console_progress(), progress.track("backfill steps", total=4) as bar:
        for _ in range(4):
            bar.advance(rows=250)
    shown = buffer.getvalue()
    assert "backfill steps" in shown and "4/4" in shown and "1,000 rows" in shown


def test_disabled_console_progress_shows_nothing(capsys):
    with progress.console_progress(enabled=False), progress.track("report", total=2) as bar:
        bar.advance()
    assert capsys.readouterr().err == ""


def test_a_load_shows_its_rows_as_they_are_stored(monkeypatch, tmp_path):
    import datetime as dt

    from abm_sla.crm.files.source import FilesSource
    from abm_sla.crm.sync import sync_source
    from abm_sla.warehouse import Warehouse

    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "accounts.csv").write_text("id,name\n" + "".join(f"A{n},Company {n}\n" for n in range(5)))
    buffer = io.StringIO()
    monkeypatch.setattr("rich.console.Console", lambda **kw: Console(file=buffer, width=120, force_terminal=False))
    with progress.console_progress():
        sync_source(Warehouse(f"sqlite:///{tmp_path / 'w.db'}"), FilesSource(folder, chunk_rows=2), "load",
                    dt.datetime(2026, 4, 1, tzinfo=dt.UTC))
    shown = buffer.getvalue()
    assert "load files" in shown and "5 rows" in shown


def test_without_a_terminal_progress_is_plain_lines_one_per_tenth(capsys):
    with progress.console_progress(plain=True), progress.track("runs", total=20) as bar:
        for _ in range(20):
            bar.advance(rows=100)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("runs: 0/20 (0%)") and lines[0].endswith("started")
    assert [line.split(",")[0] for line in lines[1:]] == [f"runs: {2 * n}/20 ({10 * n}%)" for n in range(1, 11)]
    assert "2,000 rows" in lines[-1] and lines[-1].endswith("done")


def test_a_stage_that_ends_early_says_done_once(capsys):
    with progress.console_progress(plain=True), progress.track("backfill steps", total=50) as bar:
        bar.advance()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[-1].endswith("done")


def test_the_demo_tables_keep_long_paths_whole_when_not_on_a_terminal(capsys):
    from rich.table import Table

    from abm_sla.services.demo import wide_console

    path = "/srv/abm-sla/" + "/".join(["a-rather-long-folder-name"] * 6) + "/weekly-2026-W14.html"
    table = Table(title="Outputs")
    table.add_column("what")
    table.add_column("where")
    table.add_row("weekly report (html)", path)
    wide_console().print(table)
    assert path in capsys.readouterr().out
