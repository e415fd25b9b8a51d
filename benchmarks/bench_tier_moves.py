"""The daily tier-move ledger, every account recomputed vs incremental, side by side on the same warehouse.

    .venv/bin/pip install duckdb          # benchmark-only (the first run's folder); not in requirements.lock
    .venv/bin/python benchmarks/bench_tier_moves.py [--accounts 20000] [--data /work/scale-data]
        [--only sqlite,postgresql] [--days 4] [--snapshot warehouse.db] [--arrivals export|none]

Two warehouses start from the same first full run (load, score, fire-and-route, SLA, ledger as of ``AS_OF``:
SQLite copies one file; PostgreSQL runs it into two schemas). Then, day after day, the 1% incremental export of
``bench_pipeline`` (new signals for 1% of the accounts) is loaded into both (not timed) and the first run of
the next UTC day advances the ledger: in one over every account (``full``), in the other incrementally. Each
ledger run is a child process of its own: wall and CPU seconds, the accounts recomputed, and the load average
(``os.getloadavg``) at its end; the medians are of the days after the first (``--days 4``: medians of 3) and
``cpu_ratio`` is full over incremental. ``--arrivals none`` loads nothing between the days, as a daily backfill
steps through them (every step the first run of its UTC day, only the window and the clock moving). The first
incremental day has no reference yet (the first run's ledger was written by the same code, so it has one; an
older warehouse would recompute everything once).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import child as run_child
from bench_load import NOW, data_arguments, drop_postgres, export_folder, fresh_postgres
from bench_pipeline import AS_OF, new_signals_folder


def child(step: str, args: list[str]) -> dict:
    return run_child(__file__, step, args)


def run_step(step: str, url: str, folder: str, as_of: str) -> dict:
    """Inside the child: load ``folder`` (not timed; ``-``: nothing), then one ledger run, timed."""
    from abm_sla.services import stages
    from abm_sla.services.config_files import load_model, load_policy
    from abm_sla.warehouse import Warehouse

    store = Warehouse(url)
    if folder != "-":
        stages.extract_files(store, folder, f"load-{as_of}", NOW)
    start, cpu = time.perf_counter(), time.process_time()
    summary = stages.record_tier_moves(store, pd.Timestamp(as_of), load_policy(), load_model(), f"ledger-{as_of}",
                                       full=step == "whole")
    return {"step": step, "as_of": as_of, "seconds": round(time.perf_counter() - start, 2),
            "cpu_seconds": round(time.process_time() - cpu, 2), "load_average": round(os.getloadavg()[0], 1),
            "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data_arguments(parser)
    parser.add_argument("--only", default="sqlite,postgresql")
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--snapshot", type=Path, help="SQLite: start from this warehouse (after a first run)")
    parser.add_argument("--arrivals", choices=("export", "none"), default="export",
                        help="export: the 1%% incremental export loaded before each day; none: nothing (a backfill)")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(run_step(args.step, args.url, args.folder, args.as_of), default=str))
        return
    folder = export_folder(args.data, args.accounts, args.signals_per_account)
    results: dict = {"folder": str(folder)}
    for dialect in args.only.split(","):
        urls, schemas = _two_warehouses(dialect, args, folder)
        runs: dict[str, list[dict]] = {"whole": [], "incremental": []}
        try:
            for day in range(1, args.days + 1):
                at = AS_OF.normalize() + pd.Timedelta(days=day, minutes=5)
                new = new_signals_folder(args.data, folder, 100 + day, at) if args.arrivals == "export" else "-"
                for mode, url in zip(("whole", "incremental"), urls, strict=True):
                    runs[mode].append(child(mode, ["--url", url, "--folder", str(new), "--as-of", at.isoformat()]))
                    print(json.dumps({dialect: runs[mode][-1]}, default=str), flush=True)
        finally:
            for name in schemas:
                drop_postgres(args.postgres, name)
        results[dialect] = {mode: _medians(rows) for mode, rows in runs.items()}
        cpu = [results[dialect][mode]["cpu_seconds_median"] for mode in ("whole", "incremental")]
        results[dialect]["cpu_ratio"] = round(cpu[0] / cpu[1], 2) if cpu[1] else None
        print(json.dumps({dialect: results[dialect]}), flush=True)
    print(json.dumps({"benchmark": "tier_moves", "arrivals": args.arrivals, **results}, default=str))


def _two_warehouses(dialect: str, args, folder: Path) -> tuple[list[str], list[str]]:
    """Two warehouses after the same first full run (SQLite: one run, the file copied)."""
    first = [str(Path(__file__).with_name("bench_pipeline.py")), "--step", "first_run", "--folder", str(folder),
             "--as-of", AS_OF.isoformat(), "--url"]
    if dialect == "sqlite":
        paths = [args.data / f"bench-tier-moves-{folder.name}-{mode}.db" for mode in ("whole", "incremental")]
        for leftover in args.data.glob(f"bench-tier-moves-{folder.name}-*"):
            leftover.unlink()
        if args.snapshot:
            shutil.copyfile(args.snapshot, paths[0])
        else:
            _run([*first, f"sqlite:///{paths[0]}"])
        shutil.copyfile(paths[0], paths[1])
        return [f"sqlite:///{path}" for path in paths], []
    made = [fresh_postgres(args.postgres) for _ in range(2)]
    for url, _ in made:
        _run([*first, url])
    return [url for url, _ in made], [name for _, name in made]


def _run(command: list[str]) -> None:
    import subprocess

    subprocess.run([sys.executable, *command], check=True, capture_output=True)


def _medians(rows: list[dict]) -> dict:
    later = rows[1:] or rows  # the first day of the incremental chain may have no reference
    return {"seconds_median": statistics.median(r["seconds"] for r in later),
            "cpu_seconds_median": statistics.median(r["cpu_seconds"] for r in later),
            "seconds": [r["seconds"] for r in rows], "cpu_seconds": [r["cpu_seconds"] for r in rows],
            "recomputed": [r["summary"].get("tier_moves_accounts_recomputed") for r in rows],
            "load_average": [r["load_average"] for r in rows]}


if __name__ == "__main__":
    main()
