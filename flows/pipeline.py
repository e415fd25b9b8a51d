"""The main job: extract → score, fire and route → SLA clocks, for one ``as of``."""

from __future__ import annotations

import uuid

from prefect import flow

from abm_sla.crm.config import load_app_config
from abm_sla.stages import parse_as_of
from flows.parameters import (
    MonitorParameters,
    ScoreParameters,
    SyncParameters,
    resolve_database_url,
    validated,
)
from tasks.common import utc_now, warehouse
from tasks.observe import publish_run_report, timed
from tasks.stages import evaluate_sla, extract_files, fire_and_route, score_accounts, sync_crm, write_back


@flow(name="crm-sync", validate_parameters=False)  # the form is checked below, in one readable line
def crm_sync(params: SyncParameters = SyncParameters()) -> dict:
    """Bring the CRM's changes into the warehouse: the export folder (``files``), Salesforce or HubSpot
    (configured by ``params.config_path``, default ``./abm-sla.yaml``). The warehouse is
    ``ABM_SLA_DATABASE_URL`` or the Secret block named in ``params.database_secret``."""
    params = validated(SyncParameters, params)
    db_url = resolve_database_url(params.database_secret)
    summary: dict = {"run_id": uuid.uuid4().hex}
    with timed(summary, "extract"):
        summary["extract"] = extract(db_url, params.source, params.path, params.config_path, summary["run_id"])
    publish_run_report(summary, key="crm-sync", title=f"crm-sync from {params.source}")
    return summary["extract"]


def extract(db_url: str, source: str, path: str | None, config_path: str | None, run_id: str) -> dict:
    """The extract step of a run: one task for the chosen source."""
    if source == "files":
        return {"files": extract_files(db_url, path or load_app_config(config_path).sources.files.path, run_id)}
    return {source: sync_crm(db_url, source, config_path, run_id)}


@flow(name="score-and-route", validate_parameters=False)
def score_and_route(params: ScoreParameters = ScoreParameters()) -> dict:
    """Score every account, fire the hand-offs and route the new MQAs, as of ``params.as_of`` (empty = now)."""
    params = validated(ScoreParameters, params)
    db_url = resolve_database_url(params.database_secret)
    as_of = params.as_of_or_now()
    summary: dict = {"run_id": uuid.uuid4().hex, "as_of": as_of.isoformat()}
    with timed(summary, "score"):
        summary["scoring"] = score_accounts(db_url, as_of, params.model_path, summary["run_id"], **params.scale())
    with timed(summary, "fire-and-route"):
        summary["handoff"] = fire_and_route(db_url, as_of, params.model_path, params.policy_path, summary["run_id"],
                                            **params.scale())
    publish_run_report(summary, key="score-and-route", title=f"score-and-route as of {as_of.isoformat()}")
    return summary


@flow(name="sla-monitor", validate_parameters=False)
def sla_monitor(params: MonitorParameters = MonitorParameters()) -> dict:
    """Evaluate every SLA clock and open the escalations due by ``params.as_of`` (empty = now)."""
    params = validated(MonitorParameters, params)
    db_url = resolve_database_url(params.database_secret)
    as_of = params.as_of_or_now()
    summary: dict = {"as_of": as_of.isoformat(), "run_id": uuid.uuid4().hex}
    with timed(summary, "evaluate-sla"):
        summary["sla"] = evaluate_sla(db_url, as_of, params.policy_path, summary["run_id"], **params.scale())
    publish_run_report(summary, key="sla-monitor", title=f"sla-monitor as of {as_of.isoformat()}")
    return summary["sla"]


def run_once(
    db_url: str,
    as_of: str,
    source: str = "files",
    path: str | None = None,
    model_path: str | None = None,
    policy_path: str | None = None,
    load: bool = True,
    config_path: str | None = None,
    full: bool = False,
    shards: int | None = None,
    dask_address: str | None = None,
) -> dict:
    """Body of one pipeline run, logged in the warehouse's run log (called inside a flow).

    ``full`` recomputes every account (else only what changed since the last run at or before
    ``as_of``); ``shards`` and ``dask_address`` say how the stages split and where the shards run."""
    scale = {"full": full, "shards": shards, "dask_address": dask_address}
    run_id = uuid.uuid4().hex
    as_of_ts = parse_as_of(as_of)
    app_config = load_app_config(config_path)  # a bad abm-sla.yaml fails before any work
    store = warehouse(db_url)
    store.start_run(run_id, "run", as_of_ts.to_pydatetime(), utc_now())
    summary: dict = {"run_id": run_id, "as_of": as_of_ts.isoformat()}
    try:
        if load:
            with timed(summary, "extract"):
                summary["extract"] = extract(db_url, source, path, config_path, run_id)
        with timed(summary, "score"):
            summary["scoring"] = score_accounts(db_url, as_of_ts, model_path, run_id, **scale)
        with timed(summary, "fire-and-route"):
            summary["handoff"] = fire_and_route(db_url, as_of_ts, model_path, policy_path, run_id, **scale)
        with timed(summary, "evaluate-sla"):
            summary["sla"] = evaluate_sla(db_url, as_of_ts, policy_path, run_id, **scale)
        if app_config.writeback.enabled:  # after the clocks: the task is due at the first-touch deadline
            with timed(summary, "write-back"):
                summary["writeback"] = write_back(db_url, config_path)
    except Exception:
        store.finish_run(run_id, "failed", utc_now(), summary, None)
        raise
    store.finish_run(run_id, "completed", utc_now(), summary, summary["scoring"]["model_version"])
    publish_run_report(summary)
    return summary


@flow(name="abm-sla-run")
def run_pipeline(
    as_of: str | None = None,
    source: str = "files",
    path: str | None = None,
    model_path: str | None = None,
    policy_path: str | None = None,
    database_secret: str | None = None,
    config_path: str | None = None,
    full: bool = False,
    shards: int = 0,
    dask_address: str = "",
) -> dict:
    """One run as of ``as_of`` (empty = now): extract, score, fire and route, SLA clocks and escalations,
    then the CRM write-back when ``abm-sla.yaml`` (``config_path``) enables it. The warehouse is
    ``ABM_SLA_DATABASE_URL`` (the CLI sets it from ``--db``) or the Secret block: never a parameter.
    Only what changed since the last run is recomputed unless ``full``; ``shards`` (0 = ``ABM_SLA_SHARDS``)
    split the accounts, run on the Dask cluster at ``dask_address`` (empty = ``ABM_SLA_DASK_ADDRESS``)."""
    db_url = resolve_database_url(database_secret)
    return run_once(db_url, as_of or utc_now().isoformat(), source, path, model_path, policy_path,
                    config_path=config_path, full=full, shards=shards or None, dask_address=dask_address or None)


@flow(name="abm-sla-run-steps")
def run_steps(
    as_ofs: list[str],
    source: str = "files",
    path: str | None = None,
    model_path: str | None = None,
    policy_path: str | None = None,
    config_path: str | None = None,
) -> list[dict]:
    """Load the source once, then run score/fire/route/SLA as of each moment, in order (the demo's quarter)."""
    db_url = resolve_database_url(None)
    return [
        run_once(db_url, as_of, source, path, model_path, policy_path, load=index == 0, config_path=config_path)
        for index, as_of in enumerate(as_ofs)
    ]
