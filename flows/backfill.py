"""Backfill: the pipeline as of each step between start and end, in order, resumable.

Each finished step is recorded in the warehouse run log (``runs``, kind ``backfill-step``,
run id ``backfill-<key>-<epoch>``), where the key fingerprints the parameters and the model
and policy files. Re-running a failed backfill with the same parameters skips those steps.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from prefect import flow
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from abm_sla import backfill as engine
from abm_sla.crm.config import load_app_config
from abm_sla.model import load_model
from abm_sla.policy import load_policy
from abm_sla.progress import track
from abm_sla.settings import database_url_env
from abm_sla.shards import all_shards
from abm_sla.warehouse import Warehouse, schema, undo
from flows.parameters import BackfillParameters, resolve_database_url, validated
from flows.pipeline import alert, extract, recorded_run, run_once
from tasks.common import call, only_in_prefect, run_logger, utc_now, warehouse
from tasks.observe import STEP_COLUMNS, folded_run_reports, step_counts
from tasks.shards import run_shards, shard_count
from tasks.stages import backfill_shard, evaluate_sla, write_back

STEP_KIND = undo.STEP_KIND


def backfill_key(params: BackfillParameters) -> str:
    """A fingerprint of what a backfill computes: same key, same steps, so a re-run can resume."""
    fields = params.model_dump(mode="json", include={"start", "end", "step_hours", "source", "path", "config_path"})
    fields = {name: value if value != "" else None for name, value in fields.items()}  # keys as before: None
    for name in ("model_path", "policy_path"):
        path = getattr(params, name)
        fields[name] = hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else None
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def step_run_id(key: str, as_of: pd.Timestamp) -> str:
    return f"backfill-{key}-{int(as_of.timestamp())}"


def completed_steps(store: Warehouse, key: str) -> set[pd.Timestamp]:
    """The as-of moments this backfill already finished."""
    runs = schema.runs
    query = sa.select(runs.c.as_of).where(
        runs.c.kind == STEP_KIND, runs.c.status == "completed", runs.c.run_id.like(f"backfill-{key}-%")
    )
    with store.engine.connect() as connection:
        return {pd.Timestamp(value) for value in connection.execute(query).scalars()}


def mark_step_done(store: Warehouse, key: str, as_of: pd.Timestamp, summary: dict) -> None:
    """Record a finished step (after its pipeline run committed)."""
    now = utc_now()
    row = {
        "run_id": step_run_id(key, as_of), "kind": STEP_KIND, "as_of": as_of.to_pydatetime(),
        "started_at": now, "finished_at": now, "status": "completed",
        "model_version": summary.get("scoring", {}).get("model_version"),
        "summary": {"backfill_key": key, "pipeline_run_id": summary.get("run_id"),
                    "mqas_fired": summary.get("handoff", {}).get("mqas_fired", 0)},
    }
    with store.engine.begin() as connection:
        store.upsert(connection, schema.runs, [row])


@flow(name="backfill", validate_parameters=False)  # the form is checked below, in one readable line
def backfill(params: BackfillParameters) -> list[dict]:
    """Load the source once, then score, fire, route and measure the SLA as of each step, in order."""
    params = validated(BackfillParameters, params)
    load_model(params.model_path)  # a bad model or policy file fails before any work
    load_policy(params.policy_path)
    db_url = resolve_database_url(params.database_secret)
    store = warehouse(db_url)
    key = backfill_key(params)
    steps = params.steps()
    done = completed_steps(store, key)
    todo = [as_of for as_of in steps if as_of not in done]
    logger = run_logger()
    logger.info("backfill %s: %d steps, %d already done, %d to run", key, len(steps), len(steps) - len(todo),
                len(todo))
    if params.dry_run:
        _plan_artifact(key, steps, done, dry_run=True)
        return [{"as_of": as_of.isoformat(), "status": "done" if as_of in done else "to run"} for as_of in steps]
    progress_id = only_in_prefect(
        create_progress_artifact,
        progress=_percent(len(steps) - len(todo), len(steps)), key=f"backfill-{key}",
        description=f"Backfill {steps[0].isoformat()} → {steps[-1].isoformat()}, every {params.step_hours:g} h",
    )
    summaries: list[dict] = []
    loads = params.path or params.source != "files"  # files without a folder: use what the warehouse holds
    loaded = extract(db_url, params.source, params.path, params.config_path, f"backfill-{key}") if loads else None

    def step_done(as_of: pd.Timestamp, summary: dict) -> None:
        mark_step_done(store, key, as_of, summary)
        summaries.append(summary)
        only_in_prefect(update_progress_artifact, progress_id, _percent(len(steps) - len(todo) + len(summaries),
                                                                        len(steps)))

    # each step is a row of the steps table, not two artifacts of its own; the CLI shows a progress line
    with folded_run_reports(), track("backfill steps", total=len(todo)) as bar:
        def advanced(as_of: pd.Timestamp, summary: dict) -> None:
            step_done(as_of, summary)
            bar.advance(rows=summary.get("scoring", {}).get("accounts_scored", 0))

        if params.engine == "one-pass" and todo:
            one_pass(db_url, store, todo, params, key, advanced)
        for as_of in todo if params.engine == "steps" else []:
            advanced(as_of, run_once(db_url, as_of, params.source, params.path, params.model_path,
                                     params.policy_path, load=False, config_path=params.config_path,
                                     **params.scale()))
    if summaries and loaded is not None:
        summaries[0] = {"extract": loaded, **summaries[0]}
    ran = {as_of: step_counts(summary) for as_of, summary in zip(todo, summaries, strict=True)}
    _plan_artifact(key, steps, done, dry_run=False, fired=sum(s["handoff"]["mqas_fired"] for s in summaries),
                   ran=ran)
    return summaries


def one_pass(db_url: str, store: Warehouse, todo: list[pd.Timestamp], params: BackfillParameters, key: str,
             step_done: Callable[[pd.Timestamp, dict], None]) -> None:
    """The steps ``todo`` with the one-pass engine (:mod:`abm_sla.backfill`), recorded as one run (undone as one
    unit): one task per shard (on Dask when the form names a scheduler), then each step's scoring run, routing,
    clocks (the SLA stage's shard tasks), alerts, tier moves and write-back in time order."""
    model, policy = load_model(params.model_path), load_policy(params.policy_path)
    run_id, writeback = uuid.uuid4().hex, load_app_config(params.config_path).writeback.enabled
    scale = params.scale()
    shards = engine.shard_total(store, todo[-1], model, shard_count(scale["shards"]))
    summary: dict = {"run_id": run_id, "backfill_key": key, "engine": "one-pass", "steps": len(todo)}

    def evaluate(as_of: pd.Timestamp) -> dict:
        result = evaluate_sla(db_url, as_of, params.policy_path, run_id, full=scale["full"], shards=shards,
                              dask_address=scale["dask_address"])
        step = {"run_id": run_id, "sla": result}
        alert(db_url, params.policy_path, step)
        return {**result, **({"alerts": step["alerts"]} if "alerts" in step else {})}

    def finished(as_of: pd.Timestamp, step: dict) -> None:
        if writeback:  # after the clocks, as a run does
            step["writeback"] = call(write_back, db_url, params.config_path)
        step_done(as_of, step)

    with recorded_run(store, summary, "backfill", todo[0]), undo.logged_once(run_id):
        with track("backfill shards", total=shards) as bar:
            results = []
            for part in run_shards(backfill_shard, all_shards(shards), scale["dask_address"], db_url=db_url,
                                   steps=todo, model_path=params.model_path, policy_path=params.policy_path,
                                   run_id=run_id):
                results.append(part)
                bar.advance()
        engine.finish_steps(store, todo, model, policy, run_id, results, shards, full=scale["full"],
                            on_step=finished, evaluate=evaluate)


def run_backfill(db_url: str, **fields) -> list[dict]:
    """In-process backfill on ``db_url`` (CLI, demo): ``fields`` are BackfillParameters fields."""
    with database_url_env(db_url):
        return backfill(validated(BackfillParameters, fields))


def _percent(done: int, total: int) -> float:
    return round(100.0 * done / total, 1) if total else 100.0


def _plan_artifact(key: str, steps: list[pd.Timestamp], done: set[pd.Timestamp], dry_run: bool,
                   fired: int = 0, ran: dict[pd.Timestamp, dict] | None = None) -> None:
    """The summary and the steps table: every step with its status and, for the steps run now, what each
    stage did (the step reports, folded in)."""
    skipped = sum(as_of in done for as_of in steps)
    title = "Backfill plan (dry run: nothing written)" if dry_run else "Backfill finished"
    lines = [f"# {title}", "", f"- key: `{key}`", f"- steps: {len(steps)} ({steps[0].isoformat()} → "
             f"{steps[-1].isoformat()})", f"- already done before this run (skipped): {skipped}"]
    lines.append(f"- would run: {len(steps) - skipped}" if dry_run else
                 f"- ran now: {len(steps) - skipped}, MQAs fired: {fired}")
    only_in_prefect(create_markdown_artifact, "\n".join(lines), key=f"backfill-{key}-summary", description=title)
    verb = "to run" if dry_run else "ran"
    ran = ran or {}
    blank = dict.fromkeys([*STEP_COLUMNS, "seconds"], None) if ran else {}
    rows = [{"as_of": as_of.isoformat(), "status": "done before" if as_of in done else verb, **ran.get(as_of, blank)}
            for as_of in steps]
    only_in_prefect(create_table_artifact, rows, key=f"backfill-{key}-steps", description=f"{title}: every step")
