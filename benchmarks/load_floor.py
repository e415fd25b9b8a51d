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

Each step runs in a child process of its own; one JSON line per step, a summary line at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import child as run_child
from _measure import own_peak_rss_mib
from bench_load import data_arguments, drop_postgres, export_folder, fresh_postgres

BATCH_ROWS = 100_000


def child(step: str, args: list[str]) -> dict:
    return run_child(__file__, step, args)


def _files(folder: Path):
    """``(path, table, header, columns)`` of each export file present, in load order."""
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


def run_step(step: str, url: str, folder: str) -> dict:
    start = time.perf_counter()
    if step == "reference":
        from bench_load import run_step as load_step

        return load_step("reference", url, folder)
    answer = (sqlite_floor if step == "sqlite" else postgresql_floor)(url, Path(folder))
    return {"step": step, "seconds": round(time.perf_counter() - start, 2), "peak_rss_mib": round(own_peak_rss_mib()),
            **answer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data_arguments(parser)
    parser.add_argument("--only", default="reference,sqlite,postgresql")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(run_step(args.step, args.url, args.folder)))
        return
    folder = export_folder(args.data, args.accounts, args.signals_per_account)
    only = args.only.split(",")
    results: dict = {"folder": str(folder)}
    for step in only:
        if step == "reference":
            results[step] = child("reference", ["--url", "-", "--folder", str(folder)])
        elif step == "sqlite":
            path = args.data / f"load-floor-{folder.name}.db"
            for leftover in args.data.glob(f"{path.name}*"):
                leftover.unlink()
            results[step] = child("sqlite", ["--url", f"sqlite:///{path}", "--folder", str(folder)])
        elif step == "postgresql":
            url, name = fresh_postgres(args.postgres)
            try:
                results[step] = child("postgresql", ["--url", url, "--folder", str(folder)])
            finally:
                drop_postgres(args.postgres, name)
        print(json.dumps({step: results[step]}), flush=True)
    print(json.dumps({"benchmark": "load_floor", **results}))


if __name__ == "__main__":
    main()
