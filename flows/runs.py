"""One pipeline run as of one moment, Prefect-free: the ``abm-sla-run`` flow's body (:mod:`flows.pipeline`),
which the direct runtime (``tasks.common.direct_calls``) calls without importing Prefect.

A run is recorded in the warehouse's run log (:func:`recorded_run`); its stages call the tasks of
:mod:`tasks.stages` through :func:`tasks.common.call`, as task runs inside a flow, else as plain functions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd

from abm_sla.crm.config import load_app_config
from abm_sla.infra import settings
from abm_sla.infra.faults import checkpoint
from abm_sla.services.config_files import load_policy
from abm_sla.services.stages import check_not_future, parse_as_of
from abm_sla.warehouse import Warehouse, undo
from tasks.alerts import send_alerts
from tasks.common import call, current_flow_run_id, only_in_prefect, run_logger, utc_now, warehouse
from tasks.observe import publish_run_report, timed
from tasks.stages import (
    check_freshness,
    evaluate_sla,
    extract_files,
    fire_and_route,
    record_tier_moves,
    score_accounts,
    sync_crm,
    write_back,
)


def run_once(
    db_url: str,
    as_of: pd.Timestamp | str,
    source: str = "files",
    path: str | None = None,
    model_path: str | None = None,
    policy_path: str | None = None,
    load: bool = True,
    config_path: str | None = None,
    full: bool = False,
    shards: int | None = None,
    dask_address: str | None = None,
    *,
    allow_future: bool = False,
    live: bool = False,
) -> dict:
    """Body of one pipeline run, logged in the warehouse's run log (inside a flow, or called directly
    under ``tasks.common.direct_calls``).

    ``full`` recomputes every account (else only what changed since the last run at or before
    ``as_of``); ``shards`` and ``dask_address`` say how the stages split and where the shards run.
    An ``as_of`` ahead of the clock beyond ``ABM_SLA_FUTURE_TOLERANCE_MINUTES`` is refused unless
    ``allow_future``. An interrupted run (Ctrl-C) is recorded ``aborted``, a failed one ``failed``.
    ``live``: the run computes for now (a schedule), so the policy's freshness checks apply by default."""
    scale = {"full": full, "shards": shards, "dask_address": dask_address}
    run_id = uuid.uuid4().hex
    as_of_ts = parse_as_of(as_of)  # a no-op for the timestamp the flows and backfill pass
    check_not_future(as_of_ts, utc_now(), settings.future_tolerance(), allow_future=allow_future)
    app_config = load_app_config(config_path)  # a bad abm-sla.yaml fails before any work
    summary: dict = {"run_id": run_id, "as_of": as_of_ts.isoformat()}
    with recorded_run(warehouse(db_url), summary, "run", as_of_ts):
        if load:
            with timed(summary, "extract"):
                summary["extract"] = extract(db_url, source, path, config_path, run_id)
        summary["freshness"] = call(check_freshness, db_url, as_of_ts, policy_path, live)
        with timed(summary, "score"):
            summary["scoring"] = score_accounts(db_url, as_of_ts, model_path, policy_path, run_id, **scale)
        with timed(summary, "fire-and-route"):
            summary["handoff"] = fire_and_route(db_url, as_of_ts, model_path, policy_path, run_id, **scale)
        with timed(summary, "evaluate-sla"):
            summary["sla"] = evaluate_sla(db_url, as_of_ts, policy_path, run_id, **scale,
                                          escalate=summary["freshness"]["escalate"])
        alert(db_url, policy_path, summary)
        with timed(summary, "tier-moves"):
            summary["tier_moves"] = call(record_tier_moves, db_url, as_of_ts, policy_path, model_path, run_id)
        if app_config.writeback.enabled:  # after the clocks: the task is due at the first-touch deadline
            with timed(summary, "write-back"):
                summary["writeback"] = call(write_back, db_url, config_path)
    only_in_prefect(publish_run_report, summary)
    return summary


@contextmanager
def recorded_run(store: Warehouse, summary: dict, kind: str, as_of: pd.Timestamp) -> Iterator[None]:
    """Record the body as run ``summary["run_id"]`` in the warehouse's run log (with this process, so a
    killed run reads as dead): completed, failed, or aborted (Ctrl-C, SIGTERM, cancellation)."""
    run_id = summary["run_id"]
    undo.mark_dead_runs(store, utc_now())
    store.start_run(run_id, kind, as_of.to_pydatetime(), utc_now(), flow_run_id=current_flow_run_id())
    run_logger().info("warehouse run %s (%s as of %s): the undo form takes this id or this flow run's id",
                      run_id, kind, as_of.isoformat())
    checkpoint("start")
    try:
        yield
    except BaseException as error:
        store.finish_run(run_id, "failed" if isinstance(error, Exception) else "aborted", utc_now(), summary, None)
        raise
    store.finish_run(run_id, "completed", utc_now(), summary, summary.get("scoring", {}).get("model_version"))
    undo.prune(store)


def extract(db_url: str, source: str, path: str | None, config_path: str | None, run_id: str) -> dict:
    """The extract step of a run: one task for the chosen source."""
    if source == "files":
        return {"files": call(extract_files, db_url, path or load_app_config(config_path).sources.files.path, run_id)}
    return {source: call(sync_crm, db_url, source, config_path, run_id)}


def alert(db_url: str, policy_path: str | None, summary: dict) -> None:
    """Send the new escalation levels to the policy's alert block, when it names one (``summary["alerts"]``)."""
    if load_policy(policy_path).alerts.block:
        summary["alerts"] = call(send_alerts, db_url, policy_path, summary["run_id"])
