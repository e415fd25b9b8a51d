"""The floor of a first load: what the database alone takes to store the export folder's rows, beside the reference.

    .venv/bin/pip install duckdb          # benchmark-only; not in requirements.lock
    .venv/bin/python benchmarks/load_floor.py [--accounts 200000] [--only reference,sqlite,postgresql]

Issue 11 asks a first full run (load + score) to take at most 3x the one-pass DuckDB reference. This script
asks how much of that any loader into our warehouse must spend: every row of every file goes into the real
tables (the warehouse's schema: primary key, secondary indexes, one transaction per file) with no
validation, no quarantine, no hashing, no raw row and no parsing in Python:

- ``sqlite``: DuckDB reads each CSV (native, multi-threaded) and hands over batches of tuples; SQLite takes
  them with ``executemany`` into the table with its secondary indexes dropped, then builds the indexes
  (as our loader does for a first bulk load). ``sqlite_seconds`` is the time inside SQLite alone.
- ``postgresql``: the file's bytes are streamed to ``COPY .. FROM STDIN (FORMAT csv)`` into a staging table
  (the server parses the CSV), then one ``INSERT .. SELECT`` casts the values into the real table.

Beside each floor, ``load-sqlite`` / ``load-postgresql`` is our whole first load of the same folder (``sync_source``
of the files source into a fresh SQLite file / PostgreSQL schema; migrations outside the timing), so the ratio
comes from one script on one folder (issue 24: the first load at most 1.5x the floor). ``--repeat N`` runs the
floor and our load alternately N times (a burst of other work hits both) and reports medians. Each step reports
wall seconds, ``cpu_s`` (user + system of its process, threads included) and, on PostgreSQL, ``server_cpu_s``
(the CPU of the step's server backends, read from ``/proc`` before they close: a local server only; other
server processes such as the WAL writer are not counted); ``total_cpu_s`` adds the two.

Each step runs in a child process of its own; one JSON line per step, a summary line at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import child as run_child
from _measure import own_peak_rss_mib
from bench_load import data_arguments, drop_postgres, export_folder, fresh_postgres

BATCH_ROWS = 100_000
NOW = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
#: The ``application_name`` of the benchmark's PostgreSQL connections (to find their backends' CPU).
APPLICATION = "abm-sla-load-floor"
#: The step's warehouses, kept so that their pooled connections (and backends) live until their CPU is read.
KEEP: list = []


def child(step: str, args: list[str]) -> dict:
    return run_child(__file__, step, args)


def _files(folder: Path):
    """``(path, table, header, columns)`` of each export file present, in load order."""
    try:
        from abm_sla.crm.files.specs import FILE_SPECS
    except ImportError:  # a checkout from before abm_sla/crm/files/ was a package
        from abm_sla.crm.files import FILE_SPECS
    from abm_sla.warehouse import schema

    for spec in FILE_SPECS:
        path, table = folder / spec.file, schema.CRM_TABLES[spec.kind]
        if path.is_file():
            header = [name.strip() for name in path.open(encoding="utf-8").readline().strip().split(",")]
            yield path, table, header, _columns(header, table)


def _columns(header: list[str], table) -> list[str]:
    """The CSV columns that are columns of ``table`` (``id`` is ``source_id``; intent's ``source`` is ``provider``)."""
    renamed = {"id": "source_id", "source": "provider"}
    return [column for column in header if renamed.get(column, column) in table.c]


def sqlite_floor(url: str, folder: Path) -> dict:
    import duckdb

    from abm_sla.warehouse import Warehouse
    from abm_sla.warehouse.store import _create_missing_indexes

    store = Warehouse(url)
    inside, rows = 0.0, 0
    raw = store.engine.raw_connection()
    cursor = raw.cursor()
    reader = duckdb.connect()
    for path, table, header, columns in _files(folder):
        key = "id" if "id" in header else "row_number() OVER ()"
        names = ["source", "source_id", *({"source": "provider"}.get(c, c) for c in columns if c != "id")]
        selected = ", ".join(["'files'", f"CAST({key} AS VARCHAR)", *(f'"{c}"' for c in columns if c != "id")])
        result = reader.execute(f"SELECT {selected} FROM read_csv('{path}', all_varchar=true, header=true)")
        insert = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
        start = time.perf_counter()
        for index in table.indexes:
            cursor.execute(f"DROP INDEX IF EXISTS {index.name}")
        cursor.execute("BEGIN")
        inside += time.perf_counter() - start
        while batch := result.fetchmany(BATCH_ROWS):
            start = time.perf_counter()
            cursor.executemany(insert, batch)
            inside += time.perf_counter() - start
            rows += len(batch)
        start = time.perf_counter()
        cursor.execute("COMMIT")
        inside += time.perf_counter() - start
    raw.close()
    start = time.perf_counter()
    with store.engine.begin() as connection:
        _create_missing_indexes(connection)
    inside += time.perf_counter() - start
    return {"rows": rows, "sqlite_seconds": round(inside, 2)}


def postgresql_floor(url: str, folder: Path) -> dict:
    from abm_sla.warehouse import Warehouse, schema

    store = Warehouse(url)
    KEEP.append(store)
    rows = 0
    raw = store.engine.raw_connection()
    driver = raw.driver_connection
    for path, table, header, columns in _files(folder):
        with driver.cursor() as cursor:
            cursor.execute(f"CREATE TEMP TABLE stage ({', '.join(f'{c} text' for c in header)}) ON COMMIT DROP")
            with cursor.copy("COPY stage FROM STDIN (FORMAT csv, HEADER true)") as copy, path.open("rb") as handle:
                while block := handle.read(1 << 20):
                    copy.write(block)
            key = "id" if "id" in header else "(row_number() OVER ())::text"
            names, values = ["source", "source_id"], ["'files'", key]
            for column in columns:
                if column == "id":
                    continue
                name = {"source": "provider"}.get(column, column)
                kind = table.c[name].type
                cast = ("::timestamptz" if isinstance(kind, schema.UtcDateTime) else
                        "::float8" if kind.python_type is float else "::boolean" if kind.python_type is bool else "")
                names.append(name)
                values.append(f"NULLIF({column}, ''){cast}")
            cursor.execute(f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(values)} FROM stage")
            rows += cursor.rowcount
        driver.commit()
    raw.close()
    return {"rows": rows}


def our_load(url: str, folder: Path) -> dict:
    """Our whole first load of ``folder`` (the files source through ``sync_source``), rows written and quarantined."""
    try:
        from abm_sla.crm.files.source import FilesSource
    except ImportError:  # a checkout from before abm_sla/crm/files/ was a package
        from abm_sla.crm.files import FilesSource
    from abm_sla.crm.sync import sync_source
    from abm_sla.warehouse import Warehouse

    KEEP.append(warehouse := Warehouse(url))
    summary = sync_source(warehouse, FilesSource(folder), "load-floor", NOW)
    return {key: sum(counts.get(key, 0) for counts in summary.values())
            for key in ("loaded", "written", "quarantined", "values_dropped")}


def server_cpu_seconds(url: str) -> float:
    """CPU seconds (user + system) of this benchmark's live PostgreSQL backends, from ``/proc`` (a local server)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as connection:
        pids = connection.execute(sa.text("SELECT pid FROM pg_stat_activity WHERE application_name = :name "
                                          "AND pid <> pg_backend_pid()"), {"name": APPLICATION}).scalars().all()
    engine.dispose()
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15 of stat)
    return total


def run_step(step: str, url: str, folder: str) -> dict:
    if step == "reference":
        from bench_load import run_step as load_step

        return load_step("reference", url, folder)
    if "postgresql" in step:
        url = f"{url}{'&' if '?' in url else '?'}application_name={APPLICATION}"
    if step.startswith("load-"):
        from abm_sla.warehouse import Warehouse

        Warehouse(url).engine.dispose()  # the migrations, outside the timing
    start, cpu = time.perf_counter(), time.process_time()
    run = {"sqlite": sqlite_floor, "postgresql": postgresql_floor}.get(step, our_load)
    answer = run(url, Path(folder))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    result = {"step": step, "seconds": round(seconds, 2), "cpu_s": round(cpu, 2),
              "peak_rss_mib": round(own_peak_rss_mib()), **answer}
    if "postgresql" in step:
        result["server_cpu_s"] = round(server_cpu_seconds(url), 2)
    result["total_cpu_s"] = round(cpu + result.get("server_cpu_s", 0.0), 2)
    return result


def medians(runs: list[dict]) -> dict:
    """The median of each timing over the repeats (and every run's), the rest from the last run."""
    keys = [key for key in ("seconds", "cpu_s", "server_cpu_s", "total_cpu_s", "wall_s") if key in runs[-1]]
    return {**runs[-1], **{key: round(statistics.median(run[key] for run in runs), 2) for key in keys},
            "runs_s": [run["seconds"] for run in runs], "runs_cpu_s": [run["total_cpu_s"] for run in runs],
            "peak_rss_mib": max(run["peak_rss_mib"] for run in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data_arguments(parser)
    parser.add_argument("--only", default="reference,sqlite,load-sqlite,postgresql,load-postgresql")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each step, alternating (medians)")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(run_step(args.step, args.url, args.folder)))
        return
    folder = export_folder(args.data, args.accounts, args.signals_per_account)
    only = args.only.split(",")
    results: dict = {"folder": str(folder), "load_average": os.getloadavg()}
    runs: dict[str, list[dict]] = {}
    for _ in range(args.repeat):
        for step in only:
            run = one_step(step, args, folder)
            runs.setdefault(step, []).append(run)
            print(json.dumps({step: run}), flush=True)
    results.update({step: medians(found) for step, found in runs.items()})
    for dialect in ("sqlite", "postgresql"):
        if dialect in results and f"load-{dialect}" in results:
            floor, ours = results[dialect], results[f"load-{dialect}"]
            results[f"ratio_{dialect}"] = {key: round(ours[key] / floor[key], 2)
                                           for key in ("seconds", "total_cpu_s") if floor.get(key)}
    results["load_average_after"] = os.getloadavg()
    print(json.dumps({"benchmark": "load_floor", **results}))


def one_step(step: str, args: argparse.Namespace, folder: Path) -> dict:
    """One step in a child process, on a fresh SQLite file or PostgreSQL schema (dropped after)."""
    if step == "reference":
        return child("reference", ["--url", "-", "--folder", str(folder)])
    if step.endswith("sqlite"):
        path = args.data / f"load-floor-{folder.name}.db"
        for leftover in args.data.glob(f"{path.name}*"):
            leftover.unlink()
        try:
            return child(step, ["--url", f"sqlite:///{path}", "--folder", str(folder)])
        finally:
            for leftover in args.data.glob(f"{path.name}*"):
                leftover.unlink()
    url, name = fresh_postgres(args.postgres)
    try:
        return child(step, ["--url", url, "--folder", str(folder)])
    finally:
        drop_postgres(args.postgres, name)

if __name__ == "__main__":
    main()
