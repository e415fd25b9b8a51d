"""What a run costs as the CRM grows: first run, unchanged scheduled run, 1% new signals; SQLite and PostgreSQL.

    .venv/bin/pip install duckdb          # benchmark-only; not in requirements.lock
    .venv/bin/python benchmarks/bench_pipeline.py [--accounts 200000] [--signals-per-account 50]
        [--data /work/scale-data] [--postgres URL] [--only reference,sqlite,postgresql] [--repeat 3] [--cli]
    .venv/bin/python benchmarks/bench_pipeline.py --dask 2 --accounts 500000   # 2-worker LocalCluster, 4 GB each

Side by side in one script, each step in a child process of its own (so each peak RSS is that step's):
- ``reference``: the one-pass DuckDB reference of SPEC sections 3-4 over the same CSVs (``bench_load.py``);
- ``first_run``: a fresh warehouse, the export folder loaded, then score, fire-and-route and SLA as of
  ``AS_OF`` (stage seconds each, and load + score);
- ``unchanged``: the scheduled run one hour later with nothing changed (the folder loaded again: its
  files are skipped), repeated hour after hour (median);
- ``one_percent``: an incremental export with new signals for 1% of the accounts arrives, then the run
  one hour after the last, repeated with fresh signals (median);
- ``--cli``: ``abm-sla run`` end to end (Prefect's start-up included) over the folder loaded last, unchanged,
  as the first run of the next UTC day (when the daily tier-move ledger runs) and an hour after it.
The first run includes the daily tier-move ledger (``tier_moves``), as ``abm-sla run`` does; the runs later
the same day skip it, as the scheduled ones do.
With ``--dask N`` the stages' shards run on a ``distributed.LocalCluster`` of N worker processes (memory
limit 4 GB each) and the per-worker peak is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import child as run_child
from _measure import own_peak_rss_mib as peak_rss_mib
from bench_load import NOW, data_arguments, drop_postgres, export_folder, fresh_postgres

AS_OF = pd.Timestamp("2026-03-31T12:00:00Z")
NEW_SIGNALS_PER_ACCOUNT = 4


def child(step: str, args: list[str]) -> dict:
    return run_child(__file__, step, args)


#: CPU seconds (user + system) of this process per stage: on a machine shared with other work, what the
#: stage costs apart from waiting for a core.
CPU_SECONDS: dict[str, float] = {}


def timed_stage(durations: dict, name: str, work):
    start, cpu = time.perf_counter(), time.process_time()
    result = work()
    durations[name] = round(time.perf_counter() - start, 2)
    CPU_SECONDS[name] = round(time.process_time() - cpu, 2)
    return result


def run_pipeline(url: str, folder: str, as_of: pd.Timestamp, run_id: str, dask: str | None, shards: int | None) -> dict:
    """Load, score, fire and route, SLA: the stages exactly as a run calls them, with their seconds."""
    from abm_sla.services import stages
    from abm_sla.services.config_files import load_model, load_policy
    from abm_sla.warehouse import Warehouse

    store, model, policy = Warehouse(url), load_model(), load_policy()
    durations: dict[str, float] = {}
    timed_stage(durations, "load", lambda: stages.extract_files(store, folder, run_id, NOW))
    if dask:
        summary = dask_stages(url, as_of, run_id, dask, shards, durations)
    else:
        summary = {
            "score": timed_stage(durations, "score", lambda: stages.score(store, as_of, model, policy, run_id,
                                                                                  shards=shards)),
            "fired": len(timed_stage(durations, "fire_and_route", lambda: stages.fire_and_route(
                store, as_of, model, policy, run_id, shards=shards))),
            "sla": timed_stage(durations, "sla", lambda: stages.evaluate_sla(store, as_of, policy, shards=shards)),
        }
    # once per UTC day, as sla-monitor and `abm-sla run` do it (a later run the same day skips it)
    summary["tier_moves"] = timed_stage(durations, "tier_moves", lambda: stages.record_tier_moves(
        store, as_of, policy, model, run_id))
    durations["stages"] = round(sum(durations.values()), 2)
    durations["load_and_score"] = round(durations["load"] + durations["score"], 2)
    cpu = {**CPU_SECONDS, "stages": round(sum(CPU_SECONDS.values()), 2)}
    return {"seconds": durations, "cpu_seconds": cpu, "summary": summary}


def dask_stages(url: str, as_of: pd.Timestamp, run_id: str, address: str, shards: int | None,
                durations: dict) -> dict:
    """The shard functions submitted to the Dask cluster directly (the flows do the same through prefect-dask)."""
    from distributed import Client

    from abm_sla.services import stages
    from abm_sla.services.config_files import load_model, load_policy
    from abm_sla.warehouse import Warehouse

    store, model, policy = Warehouse(url), load_model(), load_policy()
    with Client(address) as client:
        def spread(stage: str, work, *configs):
            planned = stages.plan(store, stage, as_of, *configs, shards=shards)
            futures = [client.submit(work, url, planned, shard, pure=False) for shard in planned.shard_list()]
            return planned, client.gather(futures)

        started = stages.utc_now()
        configs = stages.score_configs(store, model, policy)
        planned, parts = timed_stage(durations, "score_shards", lambda: spread("score", _score_shard, *configs))
        score = timed_stage(durations, "score_finish", lambda: stages.finish_score(store, planned, model, policy,
                                                                                   run_id, started, parts))
        durations["score"] = durations.pop("score_shards") + durations.pop("score_finish")
        planned, parts = timed_stage(durations, "fire_shards", lambda: spread("fire-and-route", _fire_shard, model,
                                                                              policy))
        fired = timed_stage(durations, "route", lambda: stages.route_and_store(store, planned, model, policy, run_id,
                                                                               started, parts))
        durations["fire_and_route"] = durations.pop("fire_shards") + durations.pop("route")
        planned, parts = timed_stage(durations, "sla", lambda: spread("evaluate-sla", _sla_shard, policy))
        sla = stages.finish_sla(store, planned, run_id, started, parts)
        workers = client.run(lambda: peak_rss_mib())
    return {"score": score, "fired": len(fired), "sla": sla, "worker_peak_rss_mib": sorted(workers.values())}


def _score_shard(url, planned, shard):
    from abm_sla.services import stages
    from abm_sla.services.config_files import load_model, load_policy
    from abm_sla.warehouse import Warehouse

    return stages.score_shard(Warehouse(url, migrate=False), planned, load_model(), load_policy(), "bench", shard)


def _fire_shard(url, planned, shard):
    from abm_sla.services import stages
    from abm_sla.services.config_files import load_model, load_policy
    from abm_sla.warehouse import Warehouse

    return stages.fire_shard(Warehouse(url, migrate=False), planned, load_model(), load_policy(), shard)


def _sla_shard(url, planned, shard):
    from abm_sla.services import stages
    from abm_sla.services.config_files import load_policy
    from abm_sla.warehouse import Warehouse

    return stages.sla_shard(Warehouse(url, migrate=False), planned, load_policy(), shard)


def new_signals_folder(data: Path, folder: Path, round_: int, run_at: pd.Timestamp, share: float = 0.01) -> Path:
    """An incremental export: ``share`` of the accounts get a few marketing touches half an hour before
    the run at ``run_at``."""
    hours = int((run_at - AS_OF) / pd.Timedelta(hours=1))
    target = data / f"{folder.name}-new-{round_}-h{hours}"
    if (target / ".complete").is_file():
        return target
    target.mkdir(exist_ok=True)
    accounts = pd.read_csv(folder / "accounts.csv", dtype=str, keep_default_na=False)
    chosen = accounts.sample(frac=share, random_state=round_)
    chosen.to_csv(target / "accounts.csv", index=False)  # the same rows: not written again
    at = run_at - pd.Timedelta(minutes=30)
    rows = chosen.loc[chosen.index.repeat(NEW_SIGNALS_PER_ACCOUNT), ["id"]].reset_index(drop=True)
    pd.DataFrame({
        "id": [f"NEW-{round_}-{i}" for i in range(len(rows))], "account_id": rows["id"],
        "type": ["web_visit", "email_click", "form_submit", "webinar"] * len(chosen),
        "occurred_at": at.isoformat(), "url": "https://example.com/pricing",
    }).to_csv(target / "activities.csv", index=False)
    (target / ".complete").write_text("ok")
    return target


def run_step(step: str, url: str, folder: str, as_of: str, dask: str | None, shards: int | None) -> dict:
    """Inside the child: one pipeline run, timed, with this process's peak RSS."""
    if step == "reference":
        from bench_load import run_step as load_step

        return load_step("reference", url, folder)
    if step == "cli":
        start = time.perf_counter()
        out = subprocess.run([str(Path(sys.executable).with_name("abm-sla")), "run", "--path", folder, "--as-of",
                              as_of, "--db", url], capture_output=True, text=True, check=True,
                             env={**os.environ, "PREFECT_HOME": str(Path(folder).parent / ".prefect")})
        return {"step": step, "seconds": round(time.perf_counter() - start, 2), "tail": out.stdout[-200:]}
    result = run_pipeline(url, folder, pd.Timestamp(as_of), f"bench-{step}", dask, shards)
    return {"step": step, "peak_rss_mib": round(peak_rss_mib()), **result}


def median_of(runs: list[dict]) -> dict:
    result = dict(runs[-1])
    stages_s = [run["seconds"]["stages"] for run in runs]
    result["stages_median_s"] = statistics.median(stages_s)
    result["stages_runs_s"] = stages_s
    result["stages_cpu_median_s"] = statistics.median(run["cpu_seconds"]["stages"] for run in runs)
    result["peak_rss_mib"] = max(run["peak_rss_mib"] for run in runs)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data_arguments(parser)
    parser.add_argument("--only", default="reference,sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cli", action="store_true")
    parser.add_argument("--dask", type=int, default=0, help="run the shards on a LocalCluster of N workers")
    parser.add_argument("--shards", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema (its name is printed)")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(run_step(args.step, args.url, args.folder, args.as_of, args.address, args.shards or None),
                         default=str))
        return

    folder = export_folder(args.data, args.accounts, args.signals_per_account)
    only = set(args.only.split(","))
    results: dict = {"folder": str(folder), "csv_mb": round(sum(p.stat().st_size for p in folder.glob("*.csv")) / 1e6)}
    cluster = None
    common = ["--shards", str(args.shards)]
    if args.dask:
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=args.dask, threads_per_worker=1, memory_limit="4GiB", dashboard_address=None)
        common += ["--address", cluster.scheduler_address]
    if "reference" in only:
        results["reference"] = child("reference", ["--url", "-", "--folder", str(folder), "--as-of", "-"])
        print(json.dumps({"reference": results["reference"]}), flush=True)
    targets = []
    if "sqlite" in only:
        path = args.data / f"bench-pipeline-{folder.name}.db"
        for leftover in args.data.glob(f"{path.name}*"):
            leftover.unlink()
        targets.append(("sqlite", f"sqlite:///{path}", None))
    if "postgresql" in only:
        url, schema_name = fresh_postgres(args.postgres)
        targets.append(("postgresql", url, schema_name))
    for dialect, url, schema_name in targets:
        steps = {}
        base = ["--url", url, *common]
        steps["first_run"] = child("first_run", [*base, "--folder", str(folder), "--as-of", AS_OF.isoformat()])
        print(json.dumps({dialect: {"first_run": steps["first_run"]}}), flush=True)
        # each repeat is the scheduled run one hour after the one before (a run at the same as_of again
        # would have nothing to recompute)
        steps["unchanged"] = median_of([child("unchanged", [*base, "--folder", str(folder), "--as-of",
                                                            (AS_OF + pd.Timedelta(hours=hour)).isoformat()])
                                        for hour in range(1, args.repeat + 1)])
        print(json.dumps({dialect: {"unchanged": steps["unchanged"]}}), flush=True)
        rounds = []
        for round_ in range(1, args.repeat + 1):
            at = AS_OF + pd.Timedelta(hours=args.repeat + round_)
            new = new_signals_folder(args.data, folder, round_, at)
            rounds.append(child("one_percent", [*base, "--folder", str(new), "--as-of", at.isoformat()]))
        steps["one_percent"] = median_of(rounds)
        print(json.dumps({dialect: {"one_percent": steps["one_percent"]}}), flush=True)
        if args.cli:  # the first run of the next UTC day (the daily tier-move ledger runs), then one an hour later
            next_day = AS_OF.normalize() + pd.Timedelta(days=1, minutes=5)
            for name, at in (("cli_first_of_day", next_day), ("cli_hour_later", next_day + pd.Timedelta(hours=1))):
                # the folder loaded last, unchanged: going back to the full export would read its files again
                steps[name] = child("cli", [*base, "--folder", str(new), "--as-of", at.isoformat()])
                print(json.dumps({dialect: {name: steps[name]}}), flush=True)
        results[dialect] = steps
        if schema_name and not args.keep:
            drop_postgres(args.postgres, schema_name)
        elif schema_name:
            print(json.dumps({dialect: {"kept_schema": schema_name, "url": url}}), flush=True)
    if cluster is not None:
        cluster.close()
    print(json.dumps({"benchmark": "pipeline", **results}, default=str))


if __name__ == "__main__":
    main()
