"""Running the pipeline: ``abm-sla run`` (as of one moment), ``backfill`` (every step of a range) and
``sync`` (the CRM's changes into the warehouse)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from abm_sla.cli.common import (
    ConfigOption,
    DbOption,
    ModelOption,
    PathOption,
    PolicyOption,
    ShardsOption,
    SourceOption,
    _body,
    _check_source,
    _flows,
    _progress,
    _runtime,
    _use_prefect,
    app,
    dask_cluster,
)
from abm_sla.errors import AbmSlaError
from abm_sla.infra import settings


@app.command()
def run(
    as_of: Annotated[str, typer.Option("--as-of", help="The moment to compute for (ISO 8601; naive = UTC).")],
    source: SourceOption = "files",
    path: PathOption = None,
    db: DbOption = None,
    model: ModelOption = None,
    policy: PolicyOption = None,
    config: ConfigOption = None,
    full: Annotated[bool, typer.Option("--full", help="Recompute every account, not only what changed.")] = False,
    shards: ShardsOption = 0,
    dask: Annotated[str | None, typer.Option(
        "--dask", help="Run the shards on a Dask scheduler (tcp://host:8786), or 'local[:N]' for a local cluster "
        "of N workers (default $ABM_SLA_DASK_ADDRESS; none = in this process).")] = None,
    allow_future: Annotated[bool, typer.Option(
        "--allow-future", help="Compute for an AS_OF more than $ABM_SLA_FUTURE_TOLERANCE_MINUTES (10) ahead of the "
        "clock (refused otherwise, as a likely typo).")] = False,
) -> None:
    """Load the CRM data, score as of AS_OF, fire and route MQAs, evaluate every SLA clock (then write back).

    Only the accounts whose data changed since the last run at or before AS_OF are recomputed
    (the results are those of a full recompute); --full recomputes everything."""
    from abm_sla.services.config_files import load_model, load_policy
    from abm_sla.services.stages import check_not_future, parse_as_of, utc_now
    from abm_sla.warehouse import Warehouse

    _check_source(source, path, config)
    as_of_ts = parse_as_of(as_of)
    check_not_future(as_of_ts, utc_now(), settings.future_tolerance(), allow_future=allow_future)
    load_model(model)  # fail fast on bad config files, before anything runs
    load_policy(policy)
    db_url = settings.database_url(db)
    Warehouse(db_url)  # fail fast on an unreachable database
    use_prefect = _use_prefect(dask or os.environ.get("ABM_SLA_DASK_ADDRESS"))
    paths = {"path": str(path) if path else None, "model_path": str(model) if model else None,
             "policy_path": str(policy) if policy else None, "config_path": str(config) if config else None}
    with settings.database_url_env(db_url), dask_cluster(dask) as address, _runtime(use_prefect), \
            _progress():
        if use_prefect:  # the URL is never a flow parameter
            summary = _flows().run_pipeline(as_of=as_of_ts.isoformat(), source=source, **paths, full=full,
                                            shards=shards, dask_address=address or "", allow_future=allow_future)
        else:  # the flow's body, without importing Prefect
            from flows.runs import run_once

            summary = run_once(db_url, as_of_ts, source, **paths, full=full, shards=shards or None,
                               dask_address=address or None, allow_future=allow_future)
    from abm_sla.services.summary import print_run_summary

    print_run_summary(summary)


@app.command()
def backfill(
    start: Annotated[str, typer.Option("--start", help="The first as-of (ISO 8601; naive = UTC).")],
    end: Annotated[str, typer.Option("--end", help="The last as-of, inclusive (ISO 8601; naive = UTC).")],
    step_hours: Annotated[float, typer.Option("--step-hours", help="Hours between two as-ofs (24 = daily).")] = 24,
    full: Annotated[bool, typer.Option("--full", help="Recompute every account at every step (default: what "
                                       "changed since the step before; the same results).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list the steps to run and those done; write "
                                          "nothing.")] = False,
    engine: Annotated[str, typer.Option("--engine", help="steps: the pipeline as of each step in turn; one-pass: "
                                        "each shard's signals read once for every step (the same results).")
                      ] = "steps",
    source: SourceOption = "files",
    path: PathOption = None,
    db: DbOption = None,
    model: ModelOption = None,
    policy: PolicyOption = None,
    config: ConfigOption = None,
    shards: ShardsOption = 0,
    dask: Annotated[str | None, typer.Option(
        "--dask", help="Run the shards on a Dask scheduler, or 'local[:N]' (default $ABM_SLA_DASK_ADDRESS).")] = None,
) -> None:
    """Run the pipeline as of every step from START to END, in order (a re-run resumes after the last finished
    step). With --path the export folder is loaded once first; without it, the warehouse's data is used."""
    from abm_sla.services.config_files import load_model, load_policy
    from abm_sla.services.stages import parse_as_of
    from abm_sla.warehouse import Warehouse

    if engine not in ("steps", "one-pass"):
        raise AbmSlaError(f"--engine {engine!r}: use steps or one-pass")
    if path is not None or source != "files":
        _check_source(source, path, config)
    first, last = parse_as_of(start), parse_as_of(end)
    if last < first:
        raise AbmSlaError(f"--end {last.isoformat()} is before --start {first.isoformat()}")
    if not step_hours > 0:
        raise AbmSlaError(f"--step-hours must be more than 0 (24 = daily), got {step_hours:g}")
    load_model(model)  # fail fast on bad config files, before anything runs
    load_policy(policy)
    db_url = settings.database_url(db)
    Warehouse(db_url)  # fail fast on an unreachable database
    use_prefect = _use_prefect(dask or os.environ.get("ABM_SLA_DASK_ADDRESS"))
    fields = {"start": first.isoformat(), "end": last.isoformat(), "step_hours": step_hours, "full": full,
              "dry_run": dry_run, "engine": engine, "source": source, "path": str(path) if path else "",
              "model_path": str(model) if model else "", "policy_path": str(policy) if policy else "",
              "config_path": str(config) if config else "", "shards": shards}
    with settings.database_url_env(db_url), dask_cluster(dask) as address, _runtime(use_prefect), _progress():
        _flows()  # Prefect's defaults first
        from flows.backfill import backfill as backfill_flow
        from flows.parameters import BackfillParameters, validated

        params = validated(BackfillParameters, {**fields, "dask_address": address or ""})
        summaries = _body(backfill_flow, use_prefect)(params)
    _print_backfill(summaries, dry_run)


def _print_backfill(summaries: list[dict], dry_run: bool) -> None:
    """One line per step: what it did (or, in a dry run, whether it is done already)."""
    if dry_run:
        for step in summaries:
            typer.echo(f"{step['as_of']}  {step['status']}")
        todo = sum(step["status"] == "to run" for step in summaries)
        typer.echo(f"dry run: {todo} of {len(summaries)} steps to run, nothing written")
        return
    for step in summaries:
        scoring, handoff, sla = step.get("scoring", {}), step.get("handoff", {}), step.get("sla", {})
        typer.echo(f"{step['as_of']}  scored {scoring.get('accounts_scored', 0)}, "
                   f"{scoring.get('scores_changed', 0)} changed, {handoff.get('mqas_fired', 0)} MQAs fired, "
                   f"{sla.get('clocks_missed', 0)} clocks missed, {sla.get('escalations', 0)} escalations")
    typer.echo(f"backfill: {len(summaries)} steps ran" if summaries else "backfill: every step was done already")


@app.command()
def sync(
    source: SourceOption = "files",
    path: PathOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Bring the CRM's changes since the last sync into the warehouse (resumes where an interrupted sync stopped)."""
    from abm_sla.warehouse import Warehouse
    from flows.parameters import SyncParameters, validated

    _check_source(source, path, config)
    db_url = settings.database_url(db)
    Warehouse(db_url)
    params = validated(SyncParameters, {"source": source, "path": str(path) if path else None,
                                        "config_path": str(config) if config else None})
    use_prefect = _use_prefect()
    with settings.database_url_env(db_url), _runtime(use_prefect), _progress():
        summary = _body(_flows().crm_sync, use_prefect)(params)
    from abm_sla.services.summary import print_sync_summary

    for name, objects in summary.items():
        print_sync_summary(name, objects)
