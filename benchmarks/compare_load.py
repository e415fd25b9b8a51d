"""Before/after of the LOAD alone: the same export folders loaded by two checkouts of the code, side by side.

    git archive main abm_sla benchmarks config | tar -x -C /tmp/load-before      # the code before
    .venv/bin/pip install duckdb                                                 # benchmark-only
    .venv/bin/python benchmarks/compare_load.py --folder /work/scale-data/export-20k-50 \\
        --code before=/tmp/load-before --code after=. [--steps first,incremental] [--repeat 3] \\
        [--first-repeat 3] [--dialects sqlite,postgresql] [--snapshot DB] [--work /work/scale-data/cmp-load]

For each checkout, alternating checkout by checkout: (a) ``first``: the folder loaded into a fresh SQLite file
(and a fresh PostgreSQL schema), ``--first-repeat`` times; (b) ``incremental``: into a copy of the warehouse
after a first load (``--snapshot``, else the last first load's file), the incremental folders of
``bench_pipeline.new_signals_folder`` (1% of the accounts' rows again, 4 new activities each), one per repeat.
Each load is one child process whose ``abm_sla`` is the checkout's (``PYTHONPATH``): wall seconds, CPU
seconds (user + system of the child, read-ahead thread included) and its own peak RSS. The DuckDB
reference (``bench_load.py``) runs once, in a child too. Prints one JSON line per load and a summary of medians.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import own_peak_rss_mib
from bench_load import drop_postgres, fresh_postgres
from bench_pipeline import AS_OF, new_signals_folder

PG = os.environ.get("ABM_SLA_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NOW = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)


def load_step(url: str, folder: str) -> dict:
    """Inside the child: one load of ``folder`` into ``url``, timed (wall and CPU), with this process's peak RSS."""
    import abm_sla
    try:
        from abm_sla.crm.files.source import FilesSource
    except ImportError:  # a checkout from before abm_sla/crm/files/ was a package
        from abm_sla.crm.files import FilesSource
    from abm_sla.crm.sync import sync_source
    from abm_sla.warehouse import Warehouse

    warehouse = Warehouse(url)  # migrations outside the timing
    start, cpu = time.perf_counter(), time.process_time()
    summary = sync_source(warehouse, FilesSource(folder), "cmp-load", NOW)
    return {"seconds": round(time.perf_counter() - start, 2), "cpu_s": round(time.process_time() - cpu, 2),
            "peak_rss_mib": round(own_peak_rss_mib()), "code": str(Path(abm_sla.__file__).parents[1]),
            "loaded": sum(counts["loaded"] for counts in summary.values()),
            "written": sum(counts["written"] for counts in summary.values()),
            "quarantined": sum(counts["quarantined"] for counts in summary.values())}


def child(code: str, url: str, folder: Path) -> dict:
    """One load in a fresh interpreter whose ``abm_sla`` is ``code``'s."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, __file__, "--step", "load", "--url", url, "--folder", str(folder)],
                         env={**os.environ, "PYTHONPATH": str(Path(code).resolve())}, capture_output=True, text=True,
                         check=False)
    if out.returncode:
        raise SystemExit(f"load failed under {code}: {out.stderr.strip().splitlines()[-1:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["child_cpu_s"] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2)
    return result


def reference(folder: Path) -> dict:
    out = subprocess.run([sys.executable, str(Path(__file__).with_name("bench_load.py")), "--step", "reference",
                          "--folder", str(folder)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def sqlite_file(work: Path, name: str) -> Path:
    path = work / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def copy_sqlite(source: Path, target: Path) -> None:
    """A copy of a closed SQLite warehouse (no WAL left), else a consistent one through the backup API; the
    source is only read."""
    import sqlite3

    sqlite_file(target.parent, target.stem)
    if not Path(f"{source}-wal").exists():
        shutil.copyfile(source, target)
        return
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def medians(runs: list[dict]) -> dict:
    keys = ("seconds", "cpu_s", "child_cpu_s")
    return {**{key: statistics.median(run[key] for run in runs) for key in keys},
            "peak_rss_mib": max(run["peak_rss_mib"] for run in runs), "runs_s": [run["seconds"] for run in runs],
            "runs_cpu_s": [run["cpu_s"] for run in runs], "written": runs[-1]["written"],
            "quarantined": runs[-1]["quarantined"], "loaded": runs[-1]["loaded"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--code", action="append", default=[], help="name=path of a checkout (repeatable)")
    parser.add_argument("--steps", default="first,incremental")
    parser.add_argument("--dialects", default="sqlite")
    parser.add_argument("--repeat", type=int, default=3, help="incremental loads per checkout")
    parser.add_argument("--first-repeat", type=int, default=3, help="first loads per checkout and dialect")
    parser.add_argument("--snapshot", type=Path, help="a SQLite warehouse after a first load (read only)")
    parser.add_argument("--work", type=Path, help="where the warehouses go (default: beside the folder)")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(load_step(args.url, str(args.folder))))
        return

    codes = dict(item.split("=", 1) for item in args.code)
    work = args.work or args.folder.with_name(f"{args.folder.name}-cmp-load")
    work.mkdir(exist_ok=True)
    steps, dialects = set(args.steps.split(",")), args.dialects.split(",")
    results: dict = {"folder": str(args.folder), "uptime_load": os.getloadavg()}
    if not args.no_reference:
        results["reference"] = reference(args.folder)
        print(json.dumps({"reference": results["reference"]}), flush=True)
    runs: dict[tuple[str, str, str], list[dict]] = {}
    if "first" in steps:
        for _ in range(args.first_repeat):
            for name, code in codes.items():  # alternating, so a load burst of the machine hits both
                for dialect in dialects:
                    if dialect == "sqlite":
                        url, schema = f"sqlite:///{sqlite_file(work, f'first-{name}')}", None
                    else:
                        url, schema = fresh_postgres(PG)
                    run = child(code, url, args.folder)
                    if schema:
                        drop_postgres(PG, schema)
                    runs.setdefault(("first", name, dialect), []).append(run)
                    print(json.dumps({"first": name, "dialect": dialect, **run}), flush=True)
    if "incremental" in steps:
        snapshot = args.snapshot or work / f"first-{next(iter(codes))}.db"
        run_at = pd.Timestamp(AS_OF) + pd.Timedelta(hours=1)
        folders = [new_signals_folder(work, args.folder, round_, run_at) for round_ in range(1, args.repeat + 1)]
        for name, code in codes.items():
            target = work / f"incremental-{name}.db"
            copy_sqlite(snapshot, target)
            for folder in folders:  # each round its own new activities
                run = child(code, f"sqlite:///{target}", folder)
                runs.setdefault(("incremental", name, "sqlite"), []).append(run)
                print(json.dumps({"incremental": name, "folder": folder.name, **run}), flush=True)
            sqlite_file(work, target.stem)
    results["medians"] = {f"{step}/{name}/{dialect}": medians(found) for (step, name, dialect), found in runs.items()}
    print(json.dumps({"benchmark": "compare_load", **results}))


if __name__ == "__main__":
    main()
