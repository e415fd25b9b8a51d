"""Load a 200k-account / ~10M-signal export folder: our loader (SQLite, PostgreSQL) beside a DuckDB reference.

    .venv/bin/pip install duckdb          # benchmark-only; not in requirements.lock
    .venv/bin/python benchmarks/bench_load.py [--accounts 200000] [--signals-per-account 50]
        [--data /work/scale-data] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]
        [--repeat 3] [--only sqlite,postgresql,reference] [--steps first,unchanged,plus] [--postgres-schema S]

Measures, each in a child process of its own (so each peak RSS is that step's alone):
(a) a one-pass DuckDB reference over the same CSVs: load, quarantine-like filtering, SPEC 3-4 scoring as of
    one time; (b) our first load into a fresh SQLite file and a fresh PostgreSQL schema; (c) the re-load of
    the unchanged folder; (d) a re-load after 1% new activities are appended to activities.csv (a copy of
    the folder with the other files hard-linked). The generated folder is cached under ``--data``.
Prints one JSON line per step and a summary line; medians where a step is repeated.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import child as run_child
from _measure import own_peak_rss_mib

AS_OF = "2026-03-31T12:00:00Z"
NOW = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)

REFERENCE_SQL = """
CREATE TEMP TABLE accounts AS
  SELECT * FROM (
    SELECT id, name, lower(trim(regexp_replace(regexp_replace(domain, '^[a-z][a-z0-9+.-]*://', ''), '^www\\.', '')))
             AS domain, industry, TRY_CAST(employees AS DOUBLE) AS employees, country,
           row_number() OVER (PARTITION BY id) AS nth
    FROM read_csv('{folder}/accounts.csv', all_varchar = true, header = true))
  WHERE nth = 1 AND id IS NOT NULL AND name IS NOT NULL;
CREATE TEMP TABLE contacts AS
  SELECT c.id, c.account_id, c.title
  FROM read_csv('{folder}/contacts.csv', all_varchar = true, header = true) c
  SEMI JOIN accounts a ON a.id = c.account_id;
CREATE TEMP TABLE touches AS
  SELECT x.account_id, lower(trim(x.type)) AS type, x.contact_id, x.url,
         TRY_CAST(x.occurred_at AS TIMESTAMPTZ) AS at
  FROM read_csv('{folder}/activities.csv', all_varchar = true, header = true) x
  SEMI JOIN accounts a ON a.id = x.account_id
  WHERE TRY_CAST(x.occurred_at AS TIMESTAMPTZ) > TIMESTAMPTZ '{as_of}' - INTERVAL 30 DAY
    AND TRY_CAST(x.occurred_at AS TIMESTAMPTZ) <= TIMESTAMPTZ '{as_of}'
    AND lower(trim(x.type)) IN ('email_open', 'email_click', 'form_submit', 'webinar', 'web_visit');
CREATE TEMP TABLE intent AS
  SELECT coalesce(nullif(i.account_id, ''), a.id) AS account_id, lower(trim(i.topic)) AS topic,
         TRY_CAST(i.score AS DOUBLE) AS score
  FROM read_csv('{folder}/intent.csv', all_varchar = true, header = true) i
  LEFT JOIN accounts a ON a.domain = lower(trim(regexp_replace(regexp_replace(i.domain, '^[a-z][a-z0-9+.-]*://', ''),
                                                                 '^www\\.', '')))
  WHERE TRY_CAST(i.observed_at AS TIMESTAMPTZ) > TIMESTAMPTZ '{as_of}' - INTERVAL 30 DAY
    AND TRY_CAST(i.observed_at AS TIMESTAMPTZ) <= TIMESTAMPTZ '{as_of}'
    AND TRY_CAST(i.score AS DOUBLE) BETWEEN 0 AND 100;
SELECT count(*) AS accounts, sum(qualified::INT) AS qualified, avg(total) AS mean_total FROM (
  SELECT a.id,
    least(40, CASE WHEN a.employees BETWEEN 200 AND 5000 THEN 20 WHEN a.employees >= 50 THEN 10 ELSE 0 END
              + CASE WHEN lower(trim(a.industry)) IN ('software', 'internet', 'financial services', 'healthcare')
                     THEN 10 ELSE 0 END
              + CASE WHEN upper(trim(a.country)) IN ('US', 'CA', 'GB', 'DE', 'FR', 'NL', 'AU') THEN 10 ELSE 0 END)
      AS fit,
    least(30, coalesce(e.points, 0)) AS engagement,
    least(30, coalesce(e.page_points, 0) + least(20, 10 * coalesce(n.topics, 0))) AS intent,
    fit + engagement + intent AS total,
    total >= 50 AND fit >= 20 AND engagement >= 15 AND intent >= 15
      AND coalesce(e.touches, 0) >= 2 AND coalesce(d.decision_maker, false) AS qualified
  FROM accounts a
  LEFT JOIN (
    SELECT account_id, count(*) AS touches,
      least(9, 3 * count(*) FILTER (type = 'email_open')) + least(10, 5 * count(*) FILTER (type = 'email_click'))
      + least(24, 12 * count(*) FILTER (type = 'form_submit')) + least(20, 10 * count(*) FILTER (type = 'webinar'))
      + least(16, 8 * count(*) FILTER (type = 'web_visit')) AS points,
      least(15, 15 * count(*) FILTER (type = 'web_visit' AND url LIKE '%/pricing%'))
      + least(15, 15 * count(*) FILTER (type = 'web_visit' AND url LIKE '%/demo%')) AS page_points
    FROM touches GROUP BY account_id) e ON e.account_id = a.id
  LEFT JOIN (SELECT account_id, count(DISTINCT topic) AS topics FROM intent WHERE score >= 70 GROUP BY account_id) n
    ON n.account_id = a.id
  LEFT JOIN (
    SELECT t.account_id, true AS decision_maker FROM touches t JOIN contacts c ON c.id = t.contact_id
    WHERE regexp_matches(lower(c.title),
      '\\b(vp|svp|evp|vice president|chief|president|founder|head of|ceo|cfo|cto|cmo|cro|coo|cio|ciso)\\b')
    GROUP BY t.account_id) d ON d.account_id = a.id)
"""


def export_folder(data: Path, accounts: int, signals: float) -> Path:
    """The generator's export folder, written once and cached on disk."""
    folder = data / f"export-{accounts // 1000}k-{signals:g}"
    if not (folder / ".complete").is_file():
        from abm_sla.services import synthetic

        crm = synthetic.generate_crm(n_accounts=accounts, signals_per_account=signals)
        synthetic.write_export_folder(crm, folder)
        (folder / ".complete").write_text("ok")
    return folder


def appended_folder(folder: Path) -> tuple[Path, int]:
    """A copy of ``folder`` whose activities.csv has 1% more rows (new ids, recent times); others hard-linked."""
    target = folder.with_name(folder.name + "-plus1pct")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    for path in folder.glob("*.csv"):
        if path.name != "activities.csv":
            os.link(path, target / path.name)
    shutil.copyfile(folder / "activities.csv", target / "activities.csv")
    import pandas as pd

    sample = pd.read_csv(folder / "activities.csv", dtype=str, keep_default_na=False, nrows=200_000)
    lines = sum(1 for _ in (folder / "activities.csv").open("rb")) - 1
    extra = sample.sample(n=lines // 100, replace=True, random_state=1).reset_index(drop=True)
    token = uuid.uuid4().hex[:6]  # new ids on every run, so a warehouse kept from a run before gets new rows
    extra["id"] = [f"ACT-NEW-{token}-{i:08d}" for i in range(len(extra))]
    extra["occurred_at"] = "2026-03-31T10:00:00+00:00"
    extra.to_csv(target / "activities.csv", mode="a", header=False, index=False)
    return target, len(extra)


def child(step: str, args: list[str]) -> dict:
    return run_child(__file__, step, args)


def run_step(step: str, target: str, folder: str) -> dict:
    """Inside the child: one step, timed, with the peak RSS of this process."""
    start = time.perf_counter()
    if step == "reference":
        import duckdb

        connection = duckdb.connect()
        statements = [s for s in REFERENCE_SQL.format(folder=folder, as_of=AS_OF).split(";") if s.strip()]
        for statement in statements[:-1]:
            connection.execute(statement)
        accounts, qualified, mean_total = connection.execute(statements[-1]).fetchone()
        answer = {"accounts": accounts, "qualified": int(qualified or 0), "mean_total": round(mean_total, 2)}
    else:
        from abm_sla.crm.files.source import FilesSource
        from abm_sla.crm.sync import sync_source
        from abm_sla.warehouse import Warehouse

        summary = sync_source(Warehouse(target), FilesSource(folder), f"bench-{step}", NOW)
        answer = {
            "loaded": sum(counts["loaded"] for counts in summary.values()),
            "written": sum(counts["written"] for counts in summary.values()),
            "quarantined": sum(counts["quarantined"] for counts in summary.values()),
            "unchanged": sorted(file for file, counts in summary.items() if counts.get("unchanged")),
        }
    return {"step": step, "seconds": round(time.perf_counter() - start, 2), "peak_rss_mib": round(own_peak_rss_mib()),
            **answer}


def fresh_postgres(base: str) -> tuple[str, str]:
    import sqlalchemy as sa

    name = f"bench_load_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(base)
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    engine.dispose()
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{name}", name


def drop_postgres(base: str, name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(base)
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
    engine.dispose()


def median_of(step: str, args: list[str], repeat: int) -> dict:
    runs = [child(step, args) for _ in range(repeat)]
    result = dict(runs[-1])
    result["seconds"] = statistics.median(run["seconds"] for run in runs)
    result["runs_s"] = [run["seconds"] for run in runs]
    result["peak_rss_mib"] = max(run["peak_rss_mib"] for run in runs)
    return result


def data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every scale benchmark shares: the generated folder's size and place, the PostgreSQL server."""
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--signals-per-account", type=float, default=50)
    parser.add_argument("--data", type=Path, default=Path("/work/scale-data"))
    parser.add_argument("--postgres", default=os.environ.get("ABM_SLA_BENCH_POSTGRES_URL",
                                                             "postgresql+psycopg://postgres@127.0.0.1:5432/test"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data_arguments(parser)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="reference,sqlite,postgresql")
    parser.add_argument("--steps", default="first,unchanged,plus",
                        help="first,unchanged,plus; without first the warehouse of an earlier run is reused")
    parser.add_argument("--postgres-schema", help="reuse this schema (kept) instead of a fresh one")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(run_step(args.step, args.target, args.folder)))
        return

    folder = export_folder(args.data, args.accounts, args.signals_per_account)
    size_mb = sum(path.stat().st_size for path in folder.glob("*.csv")) / 1e6
    plus, appended = appended_folder(folder)
    only = set(args.only.split(","))
    results = {"folder": str(folder), "csv_mb": round(size_mb), "appended_activities": appended}
    if "reference" in only:
        results["reference"] = median_of("reference", ["--folder", str(folder)], args.repeat)
        print(json.dumps(results["reference"]), flush=True)
    steps_wanted = set(args.steps.split(","))
    targets = []
    if "sqlite" in only:
        path = args.data / "bench-load.db"
        if "first" in steps_wanted:
            for leftover in args.data.glob("bench-load.db*"):
                leftover.unlink()
        targets.append(("sqlite", f"sqlite:///{path}", None))
    if "postgresql" in only:
        if args.postgres_schema:
            separator = "&" if "?" in args.postgres else "?"
            targets.append(("postgresql", f"{args.postgres}{separator}options=-csearch_path%3D{args.postgres_schema}",
                            None))
        else:
            url, schema_name = fresh_postgres(args.postgres)
            targets.append(("postgresql", url, schema_name))
    for dialect, url, schema_name in targets:
        steps = {}
        if "first" in steps_wanted:
            steps["first_load"] = child("first_load", ["--target", url, "--folder", str(folder)])
            print(json.dumps({dialect: steps["first_load"]}), flush=True)
        if "unchanged" in steps_wanted:
            steps["unchanged_reload"] = median_of("unchanged_reload", ["--target", url, "--folder", str(folder)],
                                                  args.repeat)
            print(json.dumps({dialect: steps["unchanged_reload"]}), flush=True)
        if "plus" in steps_wanted:
            steps["reload_plus_1pct_activities"] = child("reload_plus_1pct", ["--target", url, "--folder", str(plus)])
            print(json.dumps({dialect: steps["reload_plus_1pct_activities"]}), flush=True)
        results[dialect] = steps
        if schema_name:
            drop_postgres(args.postgres, schema_name)
    print(json.dumps({"benchmark": "load", **results}))


if __name__ == "__main__":
    main()
