"""What a backfill costs: step by step vs the one-pass engine, beside a DuckDB reference; SQLite and PostgreSQL.

    .venv/bin/pip install duckdb          # benchmark-only; not in requirements.lock
    .venv/bin/python benchmarks/bench_backfill.py [--accounts 20000] [--signals-per-account 50] [--days 30]
        [--data /work/scale-data] [--postgres URL] [--only reference,sqlite,postgresql]
        [--engines steps,one-pass] [--full] [--what-if] [--dask N]
    .venv/bin/python benchmarks/bench_backfill.py --accounts 200000 --days 90 --what-if   # the lead's 200k run

Side by side in one script, each step in a child process of its own (its peak RSS is its own):
- ``reference``: a one-pass DuckDB reference of SPEC sections 3-4: the CSVs read once, then every account
  scored as of each of the days (``bench_load.REFERENCE_SQL`` per day over the tables read);
- per dialect, the export folder loaded once into a warehouse (not timed as part of the backfill), then
  for each engine a copy of that warehouse backfilled daily over the ``--days`` days ending ``AS_OF``,
  as ``abm-sla backfill`` runs it without a Prefect server (``--engine steps|one-pass``; ``--full``
  recomputes every account at every step); the warehouse's growth, undo-log and score-history rows after it;
- the exports of the engines compared (``equal``: scores, MQAs, clocks and escalations identical);
- ``--what-if``: the recalculation over the same days with a lenient model (dry run, one pass).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import child as run_child
from _measure import own_peak_rss_mib
from bench_load import NOW, REFERENCE_SQL, data_arguments, drop_postgres, export_folder, fresh_postgres

AS_OF = pd.Timestamp("2026-03-31T12:00:00Z")
EXPORTS = ("scores", "mqas", "sla", "escalations")


def child(step: str, args: list[str]) -> dict:
    return run_child(__file__, step, args)


def reference(folder: str, days: list[pd.Timestamp]) -> dict:
    """The CSVs read once into DuckDB, then the reference scoring as of each day."""
    import duckdb

    connection = duckdb.connect()
    start = time.perf_counter()
    for table, file in (("raw_activities", "activities.csv"), ("raw_intent", "intent.csv")):
        connection.execute(f"CREATE TEMP TABLE {table} AS SELECT * FROM read_csv('{folder}/{file}', "
                           "all_varchar = true, header = true)")
    statements = [s for s in REFERENCE_SQL.split(";") if s.strip()]
    for statement in statements[:2]:  # accounts, contacts
        connection.execute(statement.format(folder=folder, as_of=days[-1]))
    read_s = time.perf_counter() - start
    qualified = []
    for day in days:
        for statement, raw, file in ((statements[2], "raw_activities", "activities.csv"),
                                     (statements[3], "raw_intent", "intent.csv")):
            text = statement.replace("CREATE TEMP TABLE", "CREATE OR REPLACE TEMP TABLE")
            text = text.replace(f"read_csv('{{folder}}/{file}', all_varchar = true, header = true)", raw)
            connection.execute(text.format(folder=folder, as_of=day.isoformat()))
        qualified.append(int(connection.execute(statements[4]).fetchone()[1] or 0))
    return {"seconds": round(time.perf_counter() - start, 2), "read_s": round(read_s, 2), "days": len(days),
            "qualified_last": qualified[-1]}


def load(url: str, folder: str) -> dict:
    from abm_sla.services import stages
    from abm_sla.warehouse import Warehouse

    start = time.perf_counter()
    stages.extract_files(Warehouse(url), folder, "bench-load", NOW)
    return {"seconds": round(time.perf_counter() - start, 2)}


def backfill(url: str, days: list[pd.Timestamp], engine: str, full: bool, dask: str | None) -> dict:
    """The backfill as ``abm-sla backfill`` runs it without a Prefect server; what it left in the warehouse."""
    import sqlalchemy as sa

    from abm_sla.infra import settings
    from abm_sla.warehouse import Warehouse, schema
    from tasks.common import direct_calls

    settings.configure_prefect_defaults()
    from flows.backfill import backfill as flow
    from flows.parameters import BackfillParameters, validated

    params = validated(BackfillParameters, {"start": days[0].isoformat(), "end": days[-1].isoformat(),
                                            "step_hours": 24, "full": full, "engine": engine,
                                            "dask_address": dask or ""})
    start, cpu = time.perf_counter(), time.process_time()
    with settings.database_url_env(url), direct_calls():
        summaries = flow.fn(params)
    seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    store = Warehouse(url)
    with store.engine.connect() as connection:
        rows = {table.name: connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                for table in (schema.undo_log, schema.score_history, schema.mqas, schema.sla_clocks)}
    return {"seconds": round(seconds, 2), "cpu_s": round(cpu_s, 2), "steps": len(summaries),
            "s_per_step": round(seconds / max(1, len(summaries)), 2), "rows": rows,
            "mqas_fired": sum(s["handoff"]["mqas_fired"] for s in summaries)}


def what_if(url: str, days: list[pd.Timestamp]) -> dict:
    """The recalculation over the days with a lenient model (dry run)."""
    from abm_sla.services import backfill as engine
    from abm_sla.services.config_files import load_model, load_policy
    from abm_sla.warehouse import Warehouse

    live = load_model()
    gates = live.gates.model_copy(update={"min_total": max(0, live.gates.min_total - 15)})
    lenient = live.model_copy(update={"version": "lenient-bench", "gates": gates})
    start = time.perf_counter()
    result = engine.what_if_period(Warehouse(url), days, lenient, live, load_policy())
    return {"seconds": round(time.perf_counter() - start, 2), "steps": len(result.steps),
            "mqas_fired": int(result.mqas["fired"].sum()), "mqas_would_fire": int(result.mqas["would_fire"].sum())}


def exports_of(url: str) -> dict[str, pd.DataFrame]:
    from abm_sla.services import exports
    from abm_sla.warehouse import Warehouse

    store = Warehouse(url)
    return {kind: exports.EXPORTS[kind](store).reset_index(drop=True) for kind in EXPORTS}


def compare(urls: list[str]) -> dict:
    """Whether every engine's warehouse gives the same exports."""
    first, *others = [exports_of(url) for url in urls]
    for other in others:
        for kind in EXPORTS:
            try:
                pd.testing.assert_frame_equal(first[kind], other[kind], check_dtype=False)
            except AssertionError as error:
                return {"equal": False, "first_difference": f"{kind}: {str(error).splitlines()[0:3]}"}
    return {"equal": True, "rows": {kind: len(frame) for kind, frame in first.items()}}


def run_step(args: argparse.Namespace) -> dict:
    days = [pd.Timestamp(day) for day in args.days_list.split(",")] if args.days_list != "-" else []
    if args.step == "reference":
        result = reference(args.folder, days)
    elif args.step == "load":
        result = load(args.url, args.folder)
    elif args.step == "backfill":
        result = backfill(args.url, days, args.engine, args.full, args.address)
    elif args.step == "what_if":
        result = what_if(args.url, days)
    else:
        result = compare(args.url.split("|"))
    return {"step": args.step, "peak_rss_mib": round(own_peak_rss_mib()), **result}


def _drop_sqlite(path: Path) -> None:
    """A SQLite file and its ``-wal``/``-shm`` (left by an earlier run: a new file beside them would replay them)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def copies(dialect: str, url: str, engines: list[str], data: Path, postgres: str, folder: Path) -> list[tuple]:
    """A warehouse per engine holding the loaded folder: SQLite file copies, PostgreSQL schemas loaded each."""
    if dialect == "sqlite":
        source = Path(url.removeprefix("sqlite:///"))
        out = []
        for engine in engines:
            target = data / f"{source.stem}-{engine}.db"
            _drop_sqlite(target)  # a previous run's -wal beside the copy would be replayed into it
            shutil.copyfile(source, target)
            out.append((engine, f"sqlite:///{target}", None))
        return out
    out = []
    for engine in engines:
        engine_url, name = fresh_postgres(postgres)
        child("load", ["--url", engine_url, "--folder", str(folder), "--days-list", "-"])
        out.append((engine, engine_url, name))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data_arguments(parser)
    parser.set_defaults(accounts=20_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--only", default="reference,sqlite,postgresql")
    parser.add_argument("--engines", default="steps,one-pass")
    parser.add_argument("--full", action="store_true", help="recompute every account at every step")
    parser.add_argument("--what-if", action="store_true", help="also the recalculation over the days")
    parser.add_argument("--dask", type=int, default=0, help="run the shards on a LocalCluster of N workers")
    for hidden in ("--step", "--url", "--folder", "--days-list", "--engine", "--address"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(run_step(args), default=str))
        return

    folder = export_folder(args.data, args.accounts, args.signals_per_account)
    days = [AS_OF - pd.Timedelta(days=n) for n in range(args.days - 1, -1, -1)]
    day_list = ",".join(day.isoformat() for day in days)
    only, engines = set(args.only.split(",")), args.engines.split(",")
    results: dict = {"folder": str(folder), "days": args.days, "full": args.full, "load_average": os.getloadavg()}
    cluster, extra = None, []
    if args.dask:
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=args.dask, threads_per_worker=1, memory_limit="4GiB", dashboard_address=None)
        extra = ["--address", cluster.scheduler_address]
    if "reference" in only:
        results["reference"] = child("reference", ["--folder", str(folder), "--days-list", day_list])
        print(json.dumps({"reference": results["reference"]}), flush=True)
    for dialect in ("sqlite", "postgresql"):
        if dialect not in only:
            continue
        if dialect == "sqlite":
            path = args.data / f"bench-backfill-{folder.name}.db"
            _drop_sqlite(path)
            url, base_schema = f"sqlite:///{path}", None
        else:
            url, base_schema = fresh_postgres(args.postgres)
        steps: dict = {"load": child("load", ["--url", url, "--folder", str(folder), "--days-list", "-"])}
        targets = copies(dialect, url, engines, args.data, args.postgres, folder)
        for engine, engine_url, _ in targets:
            steps[engine] = child("backfill", ["--url", engine_url, "--days-list", day_list, "--engine", engine,
                                               *(["--full"] if args.full else []), *extra])
            print(json.dumps({dialect: {engine: steps[engine]}}), flush=True)
        if len(targets) > 1:
            steps["compare"] = child("compare", ["--url", "|".join(u for _, u, _ in targets), "--days-list", "-"])
        if args.what_if:
            steps["what_if"] = child("what_if", ["--url", targets[-1][1], "--days-list", day_list])
        if "reference" in results:
            for engine, _, _ in targets:
                steps[f"{engine}_x_reference"] = round(steps[engine]["seconds"] / results["reference"]["seconds"], 1)
        results[dialect] = steps
        print(json.dumps({dialect: steps}, default=str), flush=True)
        for _, _, name in [*targets, (None, None, base_schema)]:
            if name:
                drop_postgres(args.postgres, name)
    if cluster is not None:
        cluster.close()
    results["load_average_after"] = os.getloadavg()
    print(json.dumps({"benchmark": "backfill", **results}, default=str))


if __name__ == "__main__":
    main()
