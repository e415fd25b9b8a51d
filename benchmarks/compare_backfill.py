"""Before/after of the one-pass backfill: two checkouts, the same loaded warehouse, alternating, CPU seconds.

    git archive main abm_sla flows tasks config | tar -x -C /tmp/backfill-before
    .venv/bin/python benchmarks/compare_backfill.py --code before=/tmp/backfill-before --code after=. --repeat 3
    .venv/bin/python benchmarks/compare_backfill.py --code after=. --repeat 1 --profile /tmp/backfill.prof

The export folder (``--accounts``, default 5,000) is generated and loaded once into a SQLite snapshot
(``--data``; reused); each run copies the snapshot and runs ``flows.backfill`` (``--engine one-pass``, daily
steps over ``--days`` ending ``bench_backfill.AS_OF``; every account at every step, the backfill's default,
unless ``--incremental``) in a child process with the checkout's code first on
``PYTHONPATH``: its CPU seconds (user + system of the child, and of the backfill alone), wall seconds and the
load average. ``--profile`` runs cProfile with a CPU-time timer instead (one file per checkout and run).
"""

from __future__ import annotations

import argparse
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
from bench_backfill import AS_OF, _drop_sqlite
from bench_load import NOW, data_arguments, export_folder


def snapshot(data: Path, accounts: int, signals: float) -> Path:
    """The loaded warehouse of the export folder (made once)."""
    folder = export_folder(data, accounts, signals)
    path = data / f"backfill-snapshot-{folder.name}.db"
    if not path.is_file():
        from abm_sla.services import stages
        from abm_sla.warehouse import Warehouse

        warehouse = Warehouse(f"sqlite:///{path}.part")
        stages.extract_files(warehouse, str(folder), "bench-load", NOW)
        warehouse.engine.dispose()  # the last connection closed: its write-ahead log is in the file, not beside it
        Path(f"{path}.part").rename(path)
    return path


def run_step(args: argparse.Namespace) -> dict:
    """In the child: the backfill on a fresh copy of the snapshot (under cProfile with ``--profile``)."""
    import cProfile

    import abm_sla
    from abm_sla.infra import settings
    from tasks.common import direct_calls

    work = Path(args.work)
    _drop_sqlite(work)
    shutil.copyfile(args.snapshot, work)
    days = [AS_OF - pd.Timedelta(days=n) for n in range(args.days - 1, -1, -1)]
    settings.configure_prefect_defaults()
    from flows.backfill import backfill as flow
    from flows.parameters import BackfillParameters, validated

    params = validated(BackfillParameters, {"start": days[0].isoformat(), "end": days[-1].isoformat(),
                                            "step_hours": 24, "engine": "one-pass", "full": not args.incremental})
    profile = cProfile.Profile(time.process_time) if args.profile else None
    start, cpu = time.perf_counter(), time.process_time()
    with settings.database_url_env(f"sqlite:///{work}"), direct_calls():
        if profile:
            profile.enable()
        summaries = flow.fn(params)
        if profile:
            profile.disable()
    result = {"wall_s": round(time.perf_counter() - start, 2), "backfill_cpu_s": round(time.process_time() - cpu, 2),
              "steps": len(summaries), "mqas_fired": sum(s["handoff"]["mqas_fired"] for s in summaries),
              "abm_sla": str(Path(abm_sla.__file__).parent)}
    if profile:
        profile.dump_stats(args.profile)
    return result


def child(code: str, args: list[str]) -> dict:
    """One run in a fresh interpreter with ``code`` first on the path; its CPU seconds seen from here."""
    before, load, start = resource.getrusage(resource.RUSAGE_CHILDREN), os.getloadavg(), time.perf_counter()
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], cwd=code, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(code).resolve())}, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "child_cpu_s": round(cpu, 2),
            "child_wall_s": round(time.perf_counter() - start, 2), "load_average": [round(x, 2) for x in load]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data_arguments(parser)
    parser.set_defaults(accounts=5_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--code", action="append", default=[], help="NAME=CHECKOUT (repeatable)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", help="cProfile output prefix (CPU timer)")
    parser.add_argument("--incremental", action="store_true",
                        help="each step recomputes what changed since the step before (default: the backfill's "
                        "default, every account at every step)")
    for hidden in ("--step", "--snapshot", "--work"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(run_step(args)))
        return
    codes = dict(item.split("=", 1) for item in args.code or ["here=."])
    path = snapshot(args.data, args.accounts, args.signals_per_account)
    rows = []
    for number in range(1, args.repeat + 1):
        for name, code in codes.items():
            extra = ["--profile", f"{args.profile}-{name}-{number}.out"] if args.profile else []
            row = {"run": number, "code": name, **child(code, ["--step", "run", "--snapshot", str(path), "--work",
                                                               str(path.with_name(f"backfill-{name}.db")),
                                                               "--days", str(args.days), *extra,
                                                               *(["--incremental"] if args.incremental else [])])}
            rows.append(row)
            print(json.dumps(row), flush=True)
    for name in codes:
        mine = [row for row in rows if row["code"] == name]
        print(json.dumps({"code": name, **{f"median_{key}": statistics.median(row[key] for row in mine)
                                           for key in ("child_cpu_s", "backfill_cpu_s", "wall_s")}}), flush=True)


if __name__ == "__main__":
    main()
