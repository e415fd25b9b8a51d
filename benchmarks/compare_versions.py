"""Before/after: the same warehouse snapshot and the same scheduled runs, under two checkouts of the code.

    git archive <commit> abm_sla benchmarks config | tar -x -C /tmp/before      # the code before
    .venv/bin/python benchmarks/compare_versions.py --folder /work/scale-data/export-20k-50 \\
        --snapshot /work/perf-dev/export-20k-50-snap --code before=/tmp/before --code after=. \\
        [--dialects sqlite,postgresql] [--repeat 3] [--shards 4]

The snapshot is a warehouse after a first full run (``bench_pipeline.py --step first_run``): a SQLite
file ``SNAPSHOT.db`` and/or a ``pg_dump -Fc -n perf_dev`` file ``SNAPSHOT.dump``. For each dialect and
checkout the snapshot is restored, then the run one hour later with nothing new is repeated hour after
hour, then the runs after an incremental export with new signals for 1% of the accounts; each run is
``bench_pipeline.py --step`` of that checkout in a child process (its wall and CPU seconds per stage).
The DuckDB reference runs before each series, in this process. Prints one line per run and a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_load import run_step as load_step
from bench_pipeline import AS_OF, new_signals_folder

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def restore(dialect: str, name: str, snapshot: Path) -> str:
    """A fresh copy of the snapshot for checkout ``name``; its URL."""
    if dialect == "sqlite":
        copy = snapshot.with_name(f"{snapshot.name}-{name}.db")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)
        shutil.copy(f"{snapshot}.db", copy)
        return f"sqlite:///{copy}"
    schema = f"perf_{name}"
    psql = ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "test"]
    subprocess.run([*psql, "-c", f"DROP SCHEMA IF EXISTS {schema} CASCADE"], check=True)
    subprocess.run(f"pg_restore -f - {snapshot}.dump | sed 's/perf_dev/{schema}/g' | {' '.join(psql)}",
                   shell=True, check=True, capture_output=True)
    return f"{PG}?options=-csearch_path%3D{schema}"


def child(code: str, step: str, url: str, folder: Path, at: pd.Timestamp, shards: int) -> dict:
    out = subprocess.run([sys.executable, "benchmarks/bench_pipeline.py", "--step", step, "--url", url, "--folder",
                          str(folder), "--as-of", at.isoformat(), "--shards", str(shards)],
                         cwd=code, env={"PYTHONPATH": code, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(runs: list[dict]) -> dict:
    return {"median_stages_s": statistics.median(run["seconds"]["stages"] for run in runs),
            "median_cpu_s": statistics.median(run["cpu_seconds"]["stages"] for run in runs),
            "cpu": [run["cpu_seconds"] for run in runs], "wall": [run["seconds"] for run in runs],
            "recomputed": [run["summary"]["score"].get("accounts_recomputed") for run in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--snapshot", type=Path, required=True)
    parser.add_argument("--code", action="append", required=True, help="NAME=PATH of a checkout")
    parser.add_argument("--dialects", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shards", type=int, default=4)
    args = parser.parse_args()
    codes = dict(item.split("=", 1) for item in args.code)
    results: dict = {"reference_s": [], "reference_cpu_s": []}
    for dialect in args.dialects.split(","):
        for name, code in codes.items():
            cpu = time.process_time()
            results["reference_s"].append(load_step("reference", "-", str(args.folder))["seconds"])
            results["reference_cpu_s"].append(round(time.process_time() - cpu, 2))
            url = restore(dialect, name, args.snapshot)
            runs: dict[str, list[dict]] = {"unchanged": [], "one_percent": []}
            for hour in range(1, args.repeat + 1):
                runs["unchanged"].append(child(str(Path(code).resolve()), "unchanged", url, args.folder,
                                               AS_OF + pd.Timedelta(hours=hour), args.shards))
                print(dialect, name, "unchanged", runs["unchanged"][-1]["cpu_seconds"], flush=True)
            for round_ in range(1, args.repeat + 1):
                at = AS_OF + pd.Timedelta(hours=args.repeat + round_)
                folder = new_signals_folder(args.folder.parent, args.folder, round_, at)
                runs["one_percent"].append(child(str(Path(code).resolve()), "one_percent", url, folder, at,
                                                 args.shards))
                print(dialect, name, "one_percent", runs["one_percent"][-1]["cpu_seconds"], flush=True)
            results[f"{dialect}-{name}"] = {step: summary(items) for step, items in runs.items()}
    results["reference_median_s"] = statistics.median(results["reference_s"])
    print(json.dumps(results))


if __name__ == "__main__":
    main()
