"""Backfill: the pipeline as of each step between start and end, in order, resumable.

Each step is claimed in the warehouse run log before it is computed (``runs``, kind
``backfill-step``, run id ``backfill-<key>-<epoch>``, status ``running`` with the process) and
marked ``completed`` when its pipeline run committed; the key fingerprints the parameters and the
model and policy files. Re-running a failed backfill with the same parameters skips the completed
steps. Two identical backfills at once share the work: a step the other one has claimed is waited
for (its process alive), then skipped when completed, or computed when it failed; so every step is
computed once, in order. A claim whose process died (kill -9) is taken over.

With ``engine: one-pass`` the steps still to run are computed by :mod:`abm_sla.services.backfill` as one warehouse
run (kind ``backfill``, undone as one unit); each step it finishes is recorded completed as above, so a
stopped one-pass backfill resumes at its first unfinished step. One-pass steps are not claimed.
"""

from __future__ import annotations

import hashlib
import json
import time
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

from abm_sla.crm.config import load_app_config
from abm_sla.infra.progress import track
from abm_sla.infra.settings import database_url_env
from abm_sla.infra.shards import all_shards
from abm_sla.services import backfill as engine
from abm_sla.services.config_files import load_model, load_policy
from abm_sla.warehouse import Warehouse, schema, undo
from flows.parameters import BackfillParameters, resolve_database_url, validated
from flows.runs import alert, extract, recorded_run, run_once
from tasks.common import call, current_flow_run_id, only_in_prefect, run_logger, utc_now, warehouse
from tasks.observe import STEP_COLUMNS, folded_run_reports, step_counts
from tasks.shards import run_shards, shard_count
from tasks.stages import backfill_shard, check_freshness, evaluate_sla, write_back

STEP_KIND = undo.STEP_KIND
#: How often a backfill looks again at a step another backfill is computing.
CLAIM_POLL_SECONDS = 1.0


def backfill_key(params: BackfillParameters) -> str:
    """A fingerprint of what a backfill computes: same key, same steps, so a re-run can resume."""
    names = {"start", "end", "step_hours", "source", "path", "config_path"}
    if params.start_at_data_beginning:  # other steps: a key of its own (and the keys of before stay)
        names.add("start_at_data_beginning")
    fields = params.model_dump(mode="json", include=names)
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


def claim_step(store: Warehouse, key: str, as_of: pd.Timestamp) -> str:
    """Claim a step before computing it: ``"claimed"`` (compute it now), ``"done"`` (completed already) or
    ``"busy"`` (another live process holds it: wait). A claim left by a dead process (this host), or by a
    flow run that ended (Crashed on a worker that died on another host), is taken over."""
    runs, run_id = schema.runs, step_run_id(key, as_of)
    with store.engine.begin() as connection:
        row = connection.execute(sa.select(runs.c.status, runs.c.pid, runs.c.host, runs.c.flow_run_id)
                                 .where(runs.c.run_id == run_id)).mappings().first()
        if row is not None and row["status"] == "completed":
            return "done"
        if row is not None and row["status"] == "running" and undo.process_alive(row["pid"], row["host"]) \
                and not flow_run_ended(row["flow_run_id"]):
            return "busy"
        claim = {"kind": STEP_KIND, "as_of": as_of.to_pydatetime(), "started_at": utc_now(), "finished_at": None,
                 "status": "running", "summary": {"backfill_key": key}, "flow_run_id": current_flow_run_id(),
                 **undo.this_process()}
        if row is None:
            try:
                with connection.begin_nested():
                    connection.execute(runs.insert().values(run_id=run_id, **claim))
            except sa.exc.IntegrityError:  # claimed a moment ago by the other backfill
                return "busy"
            return "claimed"
        taken = connection.execute(runs.update().where(runs.c.run_id == run_id, runs.c.status == row["status"],
                                                       runs.c.pid == row["pid"]).values(**claim))
        return "claimed" if taken.rowcount == 1 else "busy"


def flow_run_ended(flow_run_id: str | None) -> bool:
    """Whether the Prefect flow run ``flow_run_id`` is in a final state (False when unknown or unreachable)."""
    if not flow_run_id or current_flow_run_id() is None:
        return False
    try:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run_id).state
    except Exception:  # no API, or no such run: judge by the process alone
        return False
    return state is not None and state.is_final()


def release_step(store: Warehouse, key: str, as_of: pd.Timestamp) -> None:
    """Drop this process's claim of a step that did not finish (a re-run or the other backfill computes it)."""
    runs = schema.runs
    with store.engine.begin() as connection:
        connection.execute(runs.delete().where(runs.c.run_id == step_run_id(key, as_of), runs.c.status == "running",
                                               runs.c.pid == undo.this_process()["pid"]))


def wait_for_step(store: Warehouse, key: str, as_of: pd.Timestamp, logger) -> str:
    """Claim the step, waiting while another backfill computes it: ``"claimed"`` or ``"done"``."""
    status = claim_step(store, key, as_of)
    if status == "busy":
        logger.info("step %s is being computed by another backfill with the same parameters: waiting for it",
                    as_of.isoformat())
    while status == "busy":
        time.sleep(CLAIM_POLL_SECONDS)
        status = claim_step(store, key, as_of)
    return status


def mark_step_done(store: Warehouse, key: str, as_of: pd.Timestamp, summary: dict) -> None:
    """Record a finished step (after its pipeline run committed)."""
    now = utc_now()
    row = {
        "run_id": step_run_id(key, as_of), "kind": STEP_KIND, "as_of": as_of.to_pydatetime(),
        "finished_at": now, "status": "completed",
        "model_version": summary.get("scoring", {}).get("model_version"),
        "summary": {"backfill_key": key, "pipeline_run_id": summary.get("run_id"),
                    "mqas_fired": summary.get("handoff", {}).get("mqas_fired", 0)},
    }
    runs = schema.runs
    with store.engine.begin() as connection:  # the claim's row (its start kept), else a new one
        updated = connection.execute(runs.update().where(runs.c.run_id == row["run_id"]).values(**row))
        if updated.rowcount == 0:
            store.upsert(connection, runs, [{"started_at": now, **row}])


def data_start(store: Warehouse, until: pd.Timestamp) -> pd.Timestamp | None:
    """The oldest activity or intent signal at or before ``until`` (None: no such data)."""
    oldest = [store.oldest_event(kind, column, until.to_pydatetime())
              for kind, column in (("activities", "occurred_at"), ("intent_signals", "observed_at"))]
    oldest = [moment for moment in oldest if moment is not None]
    return min(oldest) if oldest else None


@flow(name="backfill", validate_parameters=False)  # the form is checked below, in one readable line
def backfill(params: BackfillParameters) -> list[dict]:
    """Load the source once, then score, fire, route and measure the SLA as of each step, in order."""
    params = validated(BackfillParameters, params)
    load_model(params.model_path)  # a bad model or policy file fails before any work
    load_policy(params.policy_path)
    db_url = resolve_database_url(params.database_secret)
    store = warehouse(db_url)
    key = backfill_key(params)
    logger = run_logger()
    loads = params.path or params.source != "files"  # files without a folder: use what the warehouse holds
    loaded = None
    if loads and not params.dry_run:
        loaded = extract(db_url, params.source, params.path, params.config_path, f"backfill-{key}")
    history_from = data_start(store, pd.Timestamp(params.end))
    steps = params.steps(history_from)
    done = completed_steps(store, key)
    todo = [as_of for as_of in steps if as_of not in done]
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
    ran: dict[pd.Timestamp, dict] = {}
    finished = len(steps) - len(todo)
    # each step is a row of the steps table, not two artifacts of its own; the CLI shows a progress line
    try:
        with folded_run_reports(), track("backfill steps", total=len(todo)) as bar:
            def advanced(as_of: pd.Timestamp, summary: dict | None) -> None:
                """A step finished (``summary``), or skipped (None: the other backfill computed it)."""
                nonlocal finished
                if summary is not None:
                    summaries.append(summary)
                    ran[as_of] = step_counts(summary)
                finished += 1
                only_in_prefect(update_progress_artifact, progress_id, _percent(finished, len(steps)))
                bar.advance(rows=summary.get("scoring", {}).get("accounts_scored", 0) if summary else 0)

            if params.engine == "one-pass" and todo:
                one_pass(db_url, store, todo, params, key, advanced)
            for as_of in todo if params.engine == "steps" else []:
                if wait_for_step(store, key, as_of, logger) == "done":  # the other backfill computed it
                    logger.info("step %s: done by another backfill with the same parameters, skipped",
                                as_of.isoformat())
                    done.add(as_of)
                    advanced(as_of, None)
                else:
                    advanced(as_of, _run_step(store, key, as_of, params, db_url))
    except BaseException:  # cancelled, interrupted or failed: say where it stopped and how to resume
        _stopped(progress_id, finished, steps, logger)
        raise
    if summaries and loaded is not None:
        summaries[0] = {"extract": loaded, **summaries[0]}
    history = _history_fired(steps[0], history_from, summaries[0]) if summaries and steps[0] in ran else None
    if history:
        logger.warning(history)
    _plan_artifact(key, steps, done, dry_run=False, fired=sum(s["handoff"]["mqas_fired"] for s in summaries),
                   ran=ran, note=history)
    return summaries


def _run_step(store: Warehouse, key: str, as_of: pd.Timestamp, params: BackfillParameters, db_url: str) -> dict:
    """One claimed step: the pipeline as of ``as_of``, then the step marked completed (its claim dropped on
    failure, so a re-run computes it)."""
    try:
        summary = run_once(db_url, as_of, params.source, params.path, params.model_path, params.policy_path,
                           load=False, config_path=params.config_path, **params.scale())
    except BaseException:
        release_step(store, key, as_of)
        raise
    mark_step_done(store, key, as_of, summary)
    return summary


def stopped_note(finished: int, steps: list[pd.Timestamp]) -> str:
    """Where a backfill stopped and how to go on, for its progress artifact and log."""
    at = steps[min(finished, len(steps) - 1)]
    return (f"stopped at step {finished + 1} of {len(steps)} ({_percent(finished, len(steps)):g}% done, as of "
            f"{at.isoformat()}); resume with a new backfill run with the same parameters: its {finished} completed "
            "steps are skipped")


def _stopped(progress_id, finished: int, steps: list[pd.Timestamp], logger) -> None:
    """Put the stop into the progress artifact's description and the log (never masking why it stopped)."""
    note = stopped_note(finished, steps)
    logger.warning("backfill %s", note)
    try:
        only_in_prefect(update_progress_artifact, progress_id, _percent(finished, len(steps)),
                        description=f"Backfill {note}")
    except Exception as error:  # the API may be going away with the run: the log line stays
        logger.warning("progress artifact not updated: %s", str(error).splitlines()[0] if str(error) else error)


def one_pass(db_url: str, store: Warehouse, todo: list[pd.Timestamp], params: BackfillParameters, key: str,
             step_done: Callable[[pd.Timestamp, dict], None]) -> None:
    """The steps ``todo`` with the one-pass engine (:mod:`services.backfill`), recorded as one run (undone as one
    unit): one task per shard (on Dask when the form names a scheduler), then each step's scoring run, routing,
    freshness check and clocks (the SLA stage's shard tasks), alerts, tier moves and write-back in time order,
    each step marked completed as it finishes (``step_done`` is told then)."""
    model, policy = load_model(params.model_path), load_policy(params.policy_path)
    run_id, writeback = uuid.uuid4().hex, load_app_config(params.config_path).writeback.enabled
    scale = params.scale()
    shards = engine.shard_total(store, todo[-1], model, shard_count(scale["shards"]))
    summary: dict = {"run_id": run_id, "backfill_key": key, "engine": "one-pass", "steps": len(todo)}
    checked: dict[pd.Timestamp, dict] = {}

    def evaluate(as_of: pd.Timestamp) -> dict:
        """The SLA stage as a step-by-step step runs it: freshness (escalations off over stale data), alerts."""
        checked[as_of] = call(check_freshness, db_url, as_of, params.policy_path, False)
        result = evaluate_sla(db_url, as_of, params.policy_path, run_id, full=scale["full"], shards=shards,
                              dask_address=scale["dask_address"], escalate=checked[as_of]["escalate"])
        step = {"run_id": run_id, "sla": result}
        alert(db_url, params.policy_path, step)
        return {**result, **({"alerts": step["alerts"]} if "alerts" in step else {})}

    def finished(as_of: pd.Timestamp, step: dict) -> None:
        if as_of in checked:
            step["freshness"] = checked.pop(as_of)
        if writeback:  # after the clocks, as a run does
            step["writeback"] = call(write_back, db_url, params.config_path)
        mark_step_done(store, key, as_of, step)
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


def _history_fired(first: pd.Timestamp, history_from: pd.Timestamp | None, summary: dict) -> str | None:
    """The warning for a first step that starts after the data's beginning and so fires, at once, every
    account the history before it qualified (None when it fired nothing or starts at the beginning)."""
    fired = summary.get("handoff", {}).get("mqas_fired", 0)
    if not fired or history_from is None or history_from >= first:
        return None
    return (f"step 1 (as of {first.isoformat()}) fired {fired} MQAs at once: accounts qualified by the history "
            f"before the start (data begins {history_from.isoformat()}); start_at_data_beginning fires each when "
            "it qualified")


def run_backfill(db_url: str, **fields) -> list[dict]:
    """In-process backfill on ``db_url`` (CLI, demo): ``fields`` are BackfillParameters fields."""
    with database_url_env(db_url):
        return backfill(validated(BackfillParameters, fields))


def _percent(done: int, total: int) -> float:
    return round(100.0 * done / total, 1) if total else 100.0


def _plan_artifact(key: str, steps: list[pd.Timestamp], done: set[pd.Timestamp], dry_run: bool,
                   fired: int = 0, ran: dict[pd.Timestamp, dict] | None = None, note: str | None = None) -> None:
    """The summary and the steps table: every step with its status and, for the steps run now, what each
    stage did (the step reports, folded in)."""
    skipped = sum(as_of in done for as_of in steps)
    title = "Backfill plan (dry run: nothing written)" if dry_run else "Backfill finished"
    lines = [f"# {title}", "", f"- key: `{key}`", f"- steps: {len(steps)} ({steps[0].isoformat()} → "
             f"{steps[-1].isoformat()})", f"- already done before this run (skipped): {skipped}"]
    lines.append(f"- would run: {len(steps) - skipped}" if dry_run else
                 f"- ran now: {len(steps) - skipped}, MQAs fired: {fired}")
    if note:
        lines.append(f"- warning: {note}")
    only_in_prefect(create_markdown_artifact, "\n".join(lines), key=f"backfill-{key}-summary", description=title)
    verb = "to run" if dry_run else "ran"
    ran = ran or {}
    blank = dict.fromkeys([*STEP_COLUMNS, "seconds", "run id"], None) if ran else {}
    rows = [{"as_of": as_of.isoformat(), "status": "done before" if as_of in done else verb, **ran.get(as_of, blank)}
            for as_of in steps]
    only_in_prefect(create_table_artifact, rows, key=f"backfill-{key}-steps", description=f"{title}: every step")
