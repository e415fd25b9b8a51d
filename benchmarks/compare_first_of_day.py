"""The first run of a UTC day, two checkouts side by side: `abm-sla run` as a whole process, CPU seconds.

    git archive main abm_sla flows tasks config | tar -x -C /tmp/day-base
    .venv/bin/python benchmarks/compare_backfill.py --accounts 200000 --days 10 --incremental \
        --code daybase=/tmp/day-base --repeat 1         # the backfilled warehouse: backfill-daybase.db
    .venv/bin/python benchmarks/compare_first_of_day.py --warehouse /work/scale-data/backfill-daybase.db \
        --code base=/tmp/day-base --code new=. --pairs 5

Each checkout gets its own copy of the backfilled warehouse (``--warehouse``, ``--work``), caught up by its own
code with a run an hour before the day boundary after ``bench_backfill.AS_OF`` (``--catch-up``); then, per pair,
alternating which goes first, the day's first run (``--as-of``; the tier-move ledger runs) and, with
``--hour-later``, the run an hour after it, each undone with ``abm-sla undo`` before the next pair. Every
process runs in the checkout's folder with its code first on ``PYTHONPATH``, the direct runtime
(``ABM_SLA_RUNTIME=direct``), under ``/usr/bin/time``: user + system CPU seconds, peak RSS, wall, the load
average. One warm-up run and undo per checkout comes first (not counted). One JSON line per process, then the
medians and the pairs' ratios (the first checkout is the reference).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_backfill import AS_OF, _drop_sqlite

DAY = (AS_OF + pd.Timedelta(days=1)).normalize()


def timed(code: Path, db: Path, args: list[str]) -> dict:
    """``abm-sla ARGS --db DB`` in ``code``: its CPU seconds, peak RSS, wall, output."""
    env = {**os.environ, "PYTHONPATH": str(code), "ABM_SLA_RUNTIME": "direct"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the bytecode written once, as an installed package has it
    with tempfile.NamedTemporaryFile("r", suffix=".time") as clock:
        load = os.getloadavg()[0]
        done = subprocess.run(["/usr/bin/time", "-o", clock.name, "-f", "%U %S %M %e", sys.executable, "-m",
                               "abm_sla.cli", *args, "--db", f"sqlite:///{db}"], cwd=code, env=env,
                              capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{code}: abm-sla {' '.join(args)} failed:\n{done.stderr}")
        user, system, rss_kb, wall = clock.read().split()[-4:]
    return {"cpu_s": round(float(user) + float(system), 2), "rss_gib": round(int(rss_kb) / 2**20, 2),
            "wall_s": float(wall), "load": round(load, 2), "stdout": done.stdout}


def run(code: Path, db: Path, folder: Path, as_of: pd.Timestamp) -> dict:
    out = timed(code, db, ["run", "--path", str(folder), "--as-of", as_of.isoformat().replace("+00:00", "Z")])
    found = re.search(r"Run ([0-9a-f]{32})", " ".join(out["stdout"].split()))
    if not found:
        raise SystemExit(f"{code}: no run id in\n{out['stdout']}")
    return {**out, "run_id": found.group(1)}


def undo(code: Path, db: Path, run_id: str) -> dict:
    out = timed(code, db, ["undo", run_id])
    return {**out, "undone": " ".join(out.pop("stdout").split())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", type=Path, required=True, help="the backfilled SQLite warehouse")
    parser.add_argument("--folder", type=Path, default=Path("/work/scale-data/export-200k-50"))
    parser.add_argument("--work", type=Path, help="folder of the per-checkout copies (default: the warehouse's)")
    parser.add_argument("--code", action="append", default=[], help="NAME=CHECKOUT (2 or more; the first is "
                        "the reference)")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--as-of", type=pd.Timestamp, default=DAY)
    parser.add_argument("--catch-up", type=pd.Timestamp, help="default: an hour before --as-of")
    parser.add_argument("--hour-later", action="store_true", help="also time the run an hour after --as-of")
    parser.add_argument("--reuse", action="store_true", help="keep copies already caught up (same names)")
    args = parser.parse_args()
    codes = {name: Path(path).resolve() for name, path in (item.split("=", 1) for item in args.code)}
    as_of = args.as_of.tz_localize("UTC") if args.as_of.tzinfo is None else args.as_of
    catch_up = args.catch_up if args.catch_up is not None else as_of - pd.Timedelta(hours=1)
    work = args.work or args.warehouse.parent
    copies = {name: work / f"first-of-day-{name}.db" for name in codes}
    for name, code in codes.items():
        if args.reuse and copies[name].is_file():
            continue
        _drop_sqlite(copies[name])
        shutil.copyfile(args.warehouse, copies[name])
        row = run(code, copies[name], args.folder, catch_up)
        print(json.dumps({"code": name, "what": f"catch-up {catch_up.isoformat()}",
                          **{k: v for k, v in row.items() if k != "stdout"}}), flush=True)
    rows = []
    for number in range(args.pairs + 1):  # pair 0: the warm-up
        order = list(codes) if number % 2 else list(reversed(codes))
        for name in order:
            code, db = codes[name], copies[name]
            first = run(code, db, args.folder, as_of)
            steps = [("first", first)]
            if args.hour_later:
                steps.append(("hour-later", run(code, db, args.folder, as_of + pd.Timedelta(hours=1))))
            for what, done in reversed(steps):
                steps.append((f"undo {what}", undo(code, db, done["run_id"])))
            for what, row in steps:
                row = {"pair": number, "code": name, "what": what, **{k: v for k, v in row.items() if k != "stdout"}}
                rows.append(row)
                print(json.dumps(row), flush=True)
    summary(rows, list(codes))


def summary(rows: list[dict], names: list[str]) -> None:
    """Medians per checkout and kind of process, and the pairs' ratios to the first checkout."""
    counted = [row for row in rows if row["pair"] > 0]
    for what in dict.fromkeys(row["what"] for row in counted):
        cpu = {name: {row["pair"]: row["cpu_s"] for row in counted if row["code"] == name and row["what"] == what}
               for name in names}
        line = {"what": what}
        for name in names:
            mine = [row for row in counted if row["code"] == name and row["what"] == what]
            line[name] = {"cpu_s": sorted(cpu[name].values()), "median_cpu_s": statistics.median(cpu[name].values()),
                          "max_rss_gib": max(row["rss_gib"] for row in mine),
                          "median_wall_s": statistics.median(row["wall_s"] for row in mine)}
            if name != names[0]:
                ratios = [cpu[name][pair] / cpu[names[0]][pair] for pair in cpu[name]]
                line[name]["median_ratio"] = round(statistics.median(ratios), 3)
        line["load"] = [min(row["load"] for row in counted), max(row["load"] for row in counted)]
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
