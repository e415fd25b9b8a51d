"""The monthly review's decisions through the command line on a SQLite warehouse: add, done, list, errors, and
the next month's review showing them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from abm_sla.cli import main
from abm_sla.services.config_files import load_policy
from abm_sla.services.reporting import build_monthly, load_data
from abm_sla.warehouse import Warehouse, decisions


def test_decisions_added_done_listed_and_shown_next_month(tmp_path: Path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    store = Warehouse(db)
    base = ["--db", db]
    assert main(["decision", "add", "--month", "2026-02", "--text", "drop Director from the titles",
                 "--owner", "Priya", "--due", "2026-03-15", "--at", "2026-03-02T10:00Z", *base]) == 0
    assert "recorded decision 1 of the 2026-02 review (owner Priya)" in capsys.readouterr().out
    assert main(["decision", "add", "--month", "2026-03", "--text", "call Tier 1 first", "--owner", "Marcus",
                 *base]) == 0
    assert main(["decision", "done", "1", "--outcome", "titles updated", "--at", "2026-03-09T10:00Z", *base]) == 0
    capsys.readouterr()
    assert main(["decision", "done", "1", "--outcome", "again", *base]) == 1
    assert capsys.readouterr().err.strip() == "error: decision 1 is done already"
    assert main(["decision", "add", "--month", "2026-13", "--text", "x", "--owner", "y", *base]) == 1
    assert capsys.readouterr().err.strip() == "error: the month must look like 2026-03, got '2026-13'"
    assert main(["decision", "add", "--month", "2026-03", "--text", " ", "--owner", "y", *base]) == 1
    assert "the decision (--text) is required" in capsys.readouterr().err
    assert main(["decision", "add", "--month", "2026-03", "--text", "x", "--owner", "y", "--due", "2026-02-30",
                 *base]) == 1
    assert "is not a date" in capsys.readouterr().err
    assert main(["decision", "list", "--month", "2026-02", *base]) == 0
    listed = capsys.readouterr().out
    assert "drop Director" in listed and "titles updated" in listed and "call Tier 1" not in listed
    rows = decisions.read_decisions(store)
    assert rows[["decision_id", "month", "status"]].values.tolist() == [[1, "2026-02", "done"],
                                                                        [2, "2026-03", "open"]]
    report = build_monthly(load_data(store), "2026-03", load_policy())  # the default policy: decisions still shown
    shown = report.tables["review_decisions"].frame
    assert shown["text"].tolist() == ["drop Director from the titles", "call Tier 1 first"]
    april = build_monthly(load_data(store), "2026-04", load_policy())
    assert april.tables["review_decisions"].frame["month"].tolist() == ["2026-03"]
    may = build_monthly(load_data(store), "2026-05", load_policy())
    assert "review_decisions" not in may.tables


def test_export_intent_list_for_a_week(tmp_path: Path, capsys) -> None:
    from abm_sla.services import stages
    from tests.adapters.test_reassign import NOW
    from tests.adapters.test_stages import write_folder

    db = f"sqlite:///{tmp_path / 'w.db'}"
    store = Warehouse(db)
    week = ["2026-02-23T09:00:00Z", "2026-02-25T09:00:00Z", "2026-03-01T23:59:59Z", "2026-03-02T00:00:00Z"]
    folder = write_folder(tmp_path / "export", {
        "accounts": [{"id": "ACME", "name": "Acme Corp"}, {"id": "BETA", "name": "Beta"}],
        "intent": [{"account_id": "ACME", "topic": f"t{n}", "score": 80, "observed_at": at}
                   for n, at in enumerate(week)]
                  + [{"account_id": "BETA", "topic": "t", "score": 80, "observed_at": at} for at in week[:2]]})
    stages.extract_files(store, folder, "load", NOW)
    out = tmp_path / "intent.csv"
    assert main(["export", "intent-list", "--period", "2026-W09", "--out", str(out), "--db", db]) == 0
    assert "wrote 1 intent-list rows" in capsys.readouterr().out
    written = pd.read_csv(out)
    assert written[["account_id", "signals"]].values.tolist() == [["ACME", 3]]
