"""The `abm-sla` command line: run + export on a small folder, and one-line errors for bad input."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import pytest

from abm_sla.cli import main

pytestmark = pytest.mark.e2e


def write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


@pytest.fixture
def small_export(tmp_path: Path) -> Path:
    folder = tmp_path / "crm"
    write(folder, "accounts.csv", """
        id,name,domain,industry,employees,country,owner_id,tier
        A1,Acme,acme.com,Software,300,US,U1,Tier 1
        A2,Beta,beta.io,Retail,10,BR,U1,3
        """)
    write(folder, "users.csv", """
        id,name,role,time_zone,country
        U1,Ann,sales,America/New_York,US
        """)
    write(folder, "contacts.csv", """
        id,account_id,title
        C1,A1,VP Marketing
        """)
    write(folder, "activities.csv", """
        id,account_id,type,occurred_at,contact_id,url
        X1,A1,web_visit,2026-03-02T10:00:00Z,C1,https://acme.com/pricing
        X2,A1,form_submit,2026-03-02T11:00:00Z,C1,
        X3,A2,email_open,2026-03-02T11:00:00Z,,
        """)
    write(folder, "intent.csv", """
        domain,topic,score,observed_at
        acme.com,CRM,80,2026-03-01T00:00:00Z
        """)
    return folder


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_run_then_export_scores(small_export: Path, tmp_path: Path, prefect_harness, capsys) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    assert main(["run", "--source", "files", "--path", str(small_export), "--as-of", "2026-03-03T00:00:00Z",
                 "--db", db]) == 0
    out = tmp_path / "scores.csv"
    assert main(["export", "scores", "--out", str(out), "--db", db]) == 0
    rows = {row["account_id"]: row for row in read_csv(out)}
    assert list(rows["A1"]) == ["account_id", "as_of", "firmographic", "engagement", "intent", "total", "qualified"]
    # A1: employees 20 + Software 10 + US 10 = 40; visit 8 + form 12 = 20; pricing 15 + intent topic 10 = 25.
    assert (rows["A1"]["firmographic"], rows["A1"]["engagement"], rows["A1"]["intent"]) == ("40", "20", "25")
    assert rows["A1"]["total"] == "85" and rows["A1"]["qualified"] == "true"
    assert rows["A1"]["as_of"] == "2026-03-03T00:00:00Z"
    assert (rows["A2"]["total"], rows["A2"]["qualified"]) == ("3", "false")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--path", "{folder}", "--as-of", "last tuesday"], "not an ISO 8601 timestamp"),
        (["run", "--path", "{missing}", "--as-of", "2026-03-03"], "does not exist"),
        (["run", "--path", "{folder}", "--as-of", "2026-03-03", "--db", "postgresql+psycopg://u:pw@127.0.0.1:1/x"],
         "cannot reach the database"),
        (["run", "--path", "{folder}", "--as-of", "2026-03-03", "--model", "{bad_model}"], "categories.engagement.cap"),
        (["run", "--source", "dynamics", "--path", "{folder}", "--as-of", "2026-03-03"], "unknown source"),
        (["run", "--as-of"], "requires an argument"),
        (["export", "leads", "--out", "x.csv"], "unknown export"),
    ],
)
def test_bad_input_is_one_line_and_a_failure(args, expected, small_export: Path, tmp_path: Path, capsys) -> None:
    bad_model = tmp_path / "bad.yaml"
    default_model = Path(__file__).parents[2] / "config" / "scoring.yaml"
    bad_model.write_text(default_model.read_text().replace("cap: 30", "cap: lots", 1))
    values = {"folder": str(small_export), "missing": str(tmp_path / "nope"), "bad_model": str(bad_model)}
    argv = [arg.format(**values) for arg in args]
    if "--db" not in argv and argv[0] == "run":
        argv[1:1] = ["--db", f"sqlite:///{tmp_path / 'w.db'}"]
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert expected in err
    assert "pw@" not in err


def test_export_mqas_carries_verdicts_and_export_metrics_rebuilds_the_rejection_rate(
        small_export: Path, tmp_path: Path, prefect_harness, capsys) -> None:
    """The mqas export keeps SPEC's columns first and adds disposition, verdict, reason and verdict_at; the metrics
    export of the month counts the same verdict (an Unqualified is a rejection)."""
    db = f"sqlite:///{tmp_path / 'w.db'}"
    assert main(["run", "--source", "files", "--path", str(small_export), "--as-of", "2026-03-03T00:00:00Z",
                 "--db", db]) == 0
    write(small_export, "status_changes.csv", """
        account_id,status,changed_at,changed_by,reason
        A1,Unqualified,2026-03-03T15:00:00Z,U1,no budget
        """)
    assert main(["run", "--source", "files", "--path", str(small_export), "--as-of", "2026-03-04T00:00:00Z",
                 "--db", db]) == 0
    mqas, table = tmp_path / "mqas.csv", tmp_path / "metrics.csv"
    assert main(["export", "mqas", "--out", str(mqas), "--db", db]) == 0
    rows = read_csv(mqas)
    assert list(rows[0]) == ["account_id", "trigger_at", "routed_at", "tier", "owner_id", "total",
                             "disposition", "verdict", "reason", "verdict_at"]
    assert [(r["account_id"], r["disposition"], r["verdict"], r["reason"], r["verdict_at"]) for r in rows] == [
        ("A1", "unqualified", "rejected", "no budget", "2026-03-03T15:00:00Z")]
    assert main(["export", "metrics", "--period", "2026-03", "--out", str(table), "--db", db]) == 0
    metrics = {(r["metric"], r["segment"]): r for r in read_csv(table)}
    assert list(read_csv(table)[0]) == ["report", "period_start", "period_end", "metric", "segment", "numerator",
                                        "denominator", "value", "unit", "target", "verdict", "additive"]
    rejection = metrics[("rejection_rate", "all")]
    assert (rejection["numerator"], rejection["denominator"], rejection["value"]) == ("1", "1", "100.0")
    assert (rejection["period_start"], rejection["target"], rejection["verdict"]) == (
        "2026-03-01T00:00:00Z", "5-10", "missed")
    assert metrics[("mqas", "tier=1")]["additive"] == "true"
    assert main(["export", "metrics", "--out", str(table), "--db", db]) != 0
    assert "needs --period" in capsys.readouterr().err


def test_export_mqas_of_a_period_gives_the_verdicts_the_metrics_export_counts(small_export: Path,
                                                                             tmp_path: Path) -> None:
    """Issue 22: a verdict given after the latest run (here 20 March, the run as of 4 March) counts in March's
    metrics (as of the month's end, as the monthly report) but not in the mqas export as of the latest run, so the
    rejection rate could not be rebuilt from it. ``export mqas --period 2026-03`` gives March's MQAs their verdicts
    as of its end: the same 0 rejected of 1 verdict."""
    db = f"sqlite:///{tmp_path / 'w.db'}"
    assert main(["run", "--source", "files", "--path", str(small_export), "--as-of", "2026-03-03T00:00:00Z",
                 "--db", db]) == 0
    write(small_export, "status_changes.csv", """
        account_id,status,changed_at,changed_by,reason
        A1,Unqualified,2026-03-03T15:00:00Z,U1,no budget
        A1,accepted,2026-03-20T10:00:00Z,U1,
        """)
    assert main(["run", "--source", "files", "--path", str(small_export), "--as-of", "2026-03-04T00:00:00Z",
                 "--db", db]) == 0
    latest, march, table = tmp_path / "latest.csv", tmp_path / "march.csv", tmp_path / "metrics.csv"
    assert main(["export", "mqas", "--out", str(latest), "--db", db]) == 0
    assert main(["export", "mqas", "--period", "2026-03", "--out", str(march), "--db", db]) == 0
    assert main(["export", "metrics", "--period", "2026-03", "--out", str(table), "--db", db]) == 0
    assert [(r["account_id"], r["verdict"]) for r in read_csv(latest)] == [("A1", "rejected")]
    verdicts = [r["verdict"] for r in read_csv(march) if r["verdict"]]
    assert verdicts == ["accepted"]
    rejection = {(r["metric"], r["segment"]): r for r in read_csv(table)}[("rejection_rate", "all")]
    assert (int(rejection["numerator"]), int(rejection["denominator"])) == (verdicts.count("rejected"), len(verdicts))
    assert main(["export", "mqas", "--period", "2026-02", "--out", str(march), "--db", db]) == 0
    assert read_csv(march) == []  # no MQA fired in February


def test_undo_of_a_run_as_of_a_moment_with_microseconds(tmp_path: Path, capsys) -> None:
    """A scheduled run is as of "now", to the microsecond; `abm-sla undo` takes it back."""
    import pandas as pd

    from abm_sla.services import demo, synthetic
    from abm_sla.warehouse import Warehouse, schema

    crm = synthetic.generate_crm(n_accounts=60, start=demo.DEMO_START, days=demo.DEMO_DAYS, seed=11)
    folder = synthetic.write_export_folder(crm, tmp_path / "crm")
    db = f"sqlite:///{tmp_path / 'w.db'}"
    for as_of in ("2026-03-01T12:00:00Z", "2026-03-31T19:40:20.405851Z"):
        assert main(["run", "--source", "files", "--path", str(folder), "--as-of", as_of, "--db", db]) == 0
    runs = Warehouse(db).read_table(schema.runs).sort_values("started_at")
    scheduled = runs["run_id"].iloc[-1]
    assert runs["as_of"].iloc[-1] == pd.Timestamp("2026-03-31T19:40:20.405851Z")
    capsys.readouterr()
    assert main(["undo", scheduled, "--db", db]) == 0, capsys.readouterr().err
    assert f"undone run {scheduled}" in capsys.readouterr().out
    assert Warehouse(db).read_table(schema.runs).set_index("run_id").loc[scheduled, "status"] == "undone"


def test_weekly_sync_exports_engagement_per_account_and_opportunities_with_their_source(
        small_export: Path, tmp_path: Path, prefect_harness, capsys) -> None:
    """engagement: touches by channel and engaged contacts in the period only, on the list, intent and score;
    opportunities: the pipeline-credit source (a marketing touch before any sales touch = marketing-sourced)."""
    write(small_export, "accounts.csv", """
        id,name,domain,industry,employees,country,owner_id,tier
        A1,Acme,acme.com,Software,300,US,U1,Tier 1
        A2,=HYPERLINK(1),beta.io,Retail,10,BR,U1,3
        """)
    write(small_export, "opportunities.csv", """
        id,account_id,stage,amount,created_at,close_date,is_closed,is_won
        O1,A1,Open,5000,2026-03-02T12:00:00Z,,false,false
        O2,A2,Won,700,2026-03-01T00:00:00Z,2026-03-02,true,true
        O3,A1,Open,100,2026-01-10T00:00:00Z,,false,false
        """)
    db = f"sqlite:///{tmp_path / 'w.db'}"
    assert main(["run", "--source", "files", "--path", str(small_export), "--as-of", "2026-03-03T00:00:00Z",
                 "--db", db]) == 0
    engagement, opps = tmp_path / "engagement.csv", tmp_path / "opps.csv"
    assert main(["export", "engagement", "--out", str(engagement), "--db", db]) == 0  # the run's quarter
    rows = {row["account_id"]: row for row in read_csv(engagement)}
    assert list(rows["A1"])[:7] == ["period_start", "period_end", "account_id", "account_name", "tier", "owner_id",
                                    "on_list"]
    a1, a2 = rows["A1"], rows["A2"]
    assert (a1["period_start"], a1["period_end"]) == ("2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z")
    assert (a1["touches_web_visit"], a1["touches_form_submit"], a1["touches_email_open"]) == ("1", "1", "0")
    assert (a1["marketing_touches"], a1["engaged_contacts"], a1["on_list"], a1["tier"]) == ("2", "1", "true", "1")
    assert float(a1["intent"]) > 0 and float(a1["score"]) >= float(a1["intent"])
    assert (a2["marketing_touches"], a2["engaged_contacts"], a2["account_name"]) == ("1", "0", "'=HYPERLINK(1)")
    assert main(["export", "engagement", "--period", "2026-W11", "--out", str(engagement), "--db", db]) == 0
    assert {row["marketing_touches"] for row in read_csv(engagement)} == {"0"}  # 9-15 March: no touch
    assert main(["export", "opportunities", "--out", str(opps), "--db", db]) == 0
    credit = {row["opportunity_id"]: (row["source"], row["source_segment"]) for row in read_csv(opps)}
    assert credit == {"O3": ("sales-sourced", "sales"), "O2": ("sales-sourced", "sales"),
                      "O1": ("marketing-sourced", "marketing")}
    assert main(["export", "opportunities", "--period", "2026-03", "--out", str(opps), "--db", db]) == 0
    assert [row["opportunity_id"] for row in read_csv(opps)] == ["O2", "O1"]


def test_signoff_is_recorded_and_every_report_shows_it_until_the_policy_changes(
        small_export: Path, tmp_path: Path, prefect_harness, capsys) -> None:
    """The sign-off is stored with the policy file's hash; after an edit of the file the report says re-sign."""
    import shutil

    from abm_sla.domain.policy import DEFAULT_PATH

    db = f"sqlite:///{tmp_path / 'w.db'}"
    assert main(["run", "--source", "files", "--path", str(small_export), "--as-of", "2026-03-03T00:00:00Z",
                 "--db", db]) == 0
    policy = tmp_path / "sla.yaml"
    shutil.copy(DEFAULT_PATH, policy)
    assert main(["signoff", "--policy", str(policy), "--by", "Ann", "--role", "head of sales",
                 "--at", "2026-03-01T10:00:00Z", "--db", db]) == 0
    out = tmp_path / "reports"
    assert main(["report", "weekly", "--period", "2026-W10", "--policy", str(policy), "--out", str(out),
                 "--db", db]) == 0
    assert "SLA signed, policy version" in (out / "weekly-2026-W10.md").read_text(encoding="utf-8")
    policy.write_text(policy.read_text(encoding="utf-8") + "\n# renegotiated\n", encoding="utf-8")
    assert main(["report", "weekly", "--period", "2026-W10", "--policy", str(policy), "--out", str(out),
                 "--db", db]) == 0
    assert "Re-sign needed" in (out / "weekly-2026-W10.md").read_text(encoding="utf-8")


def test_backfill_one_pass_and_steps_give_the_same_exports_without_a_prefect_server(
        small_export: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ABM_SLA_RUNTIME", "direct")
    window = ["--start", "2026-03-02T12:00:00Z", "--end", "2026-03-04T12:00:00Z", "--step-hours", "12"]
    dbs = {engine: f"sqlite:///{tmp_path / f'{engine}.db'}" for engine in ("steps", "one-pass")}
    assert main(["backfill", *window, "--path", str(small_export), "--db", dbs["one-pass"], "--dry-run"]) == 0
    assert "dry run: 5 of 5 steps to run, nothing written" in capsys.readouterr().out
    for engine, db in dbs.items():
        assert main(["backfill", *window, "--path", str(small_export), "--db", db, "--engine", engine]) == 0
        out = capsys.readouterr().out
        assert "backfill: 5 steps ran" in out and "1 MQAs fired" in out
    again = ["backfill", *window, "--path", str(small_export), "--db", dbs["one-pass"], "--engine", "one-pass"]
    assert main(again) == 0  # the same backfill again: every step done
    assert "every step was done already" in capsys.readouterr().out
    for kind in ("scores", "mqas", "sla"):
        files = {engine: tmp_path / f"{engine}-{kind}.csv" for engine in dbs}
        for engine, db in dbs.items():
            assert main(["export", kind, "--out", str(files[engine]), "--db", db]) == 0
        assert read_csv(files["steps"]) == read_csv(files["one-pass"]) != []


@pytest.mark.parametrize(("args", "message"), [
    (["--start", "2026-03-04", "--end", "2026-03-02"], "error: --end 2026-03-02T00:00:00+00:00 is before --start"),
    (["--start", "yesterday", "--end", "2026-03-02"], "error: --as-of 'yesterday' is not an ISO 8601 timestamp"),
    (["--start", "2026-03-02", "--end", "2026-03-04", "--step-hours", "0"], "error: --step-hours must be more than 0"),
    (["--start", "2026-03-02", "--end", "2026-03-04", "--engine", "fast"], "error: --engine 'fast': use steps or"),
])
def test_backfill_bad_input_is_one_line(tmp_path: Path, monkeypatch, capsys, args, message) -> None:
    monkeypatch.setenv("ABM_SLA_RUNTIME", "direct")
    assert main(["backfill", *args, "--db", f"sqlite:///{tmp_path / 'w.db'}"]) != 0
    err = capsys.readouterr().err
    assert err.startswith(message) and len(err.strip().splitlines()) == 1
