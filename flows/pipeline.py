"""The main job: extract → score, fire and route → SLA clocks, for one ``as of`` (the run itself is
:func:`flows.runs.run_once`, which the flows here wrap)."""

from __future__ import annotations

import uuid

import pandas as pd
from prefect import flow

from abm_sla.infra import settings
from abm_sla.infra.progress import track
from abm_sla.services.stages import check_not_future, parse_as_of
from abm_sla.services.summary import describe_undone
from abm_sla.warehouse import Warehouse, undo
from flows.parameters import (
    MonitorParameters,
    ScoreParameters,
    SyncParameters,
    UndoParameters,
    resolve_database_url,
    validated,
)
from flows.runs import alert, extract, recorded_run, run_once
from tasks.common import call, only_in_prefect, run_logger, utc_now, warehouse
from tasks.observe import publish_run_report, timed
from tasks.stages import check_freshness, evaluate_sla, fire_and_route, record_tier_moves, score_accounts


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
    only_in_prefect(publish_run_report, summary, key="crm-sync", title=f"crm-sync from {params.source}")
    return summary["extract"]


@flow(name="score-and-route", validate_parameters=False)
def score_and_route(params: ScoreParameters = ScoreParameters()) -> dict:
    """Score every account, fire the hand-offs and route the new MQAs, as of ``params.as_of`` (empty = now)."""
    params = validated(ScoreParameters, params)
    db_url = resolve_database_url(params.database_secret)
    as_of = _as_of(params)
    summary: dict = {"run_id": uuid.uuid4().hex, "as_of": as_of.isoformat()}
    with recorded_run(warehouse(db_url), summary, "score-and-route", as_of):
        with timed(summary, "score"):
            summary["scoring"] = score_accounts(db_url, as_of, params.model_path, params.policy_path, summary["run_id"],
                                                **params.scale())
        with timed(summary, "fire-and-route"):
            summary["handoff"] = fire_and_route(db_url, as_of, params.model_path, params.policy_path,
                                                summary["run_id"], **params.scale())
    only_in_prefect(publish_run_report, summary, key="score-and-route",
                    title=f"score-and-route as of {as_of.isoformat()}")
    return summary


@flow(name="sla-monitor", validate_parameters=False)
def sla_monitor(params: MonitorParameters = MonitorParameters()) -> dict:
    """Evaluate every SLA clock and open the escalations due by ``params.as_of`` (empty = now)."""
    params = validated(MonitorParameters, params)
    db_url = resolve_database_url(params.database_secret)
    as_of = _as_of(params)
    summary: dict = {"as_of": as_of.isoformat(), "run_id": uuid.uuid4().hex}
    with recorded_run(warehouse(db_url), summary, "sla-monitor", as_of):
        summary["freshness"] = call(check_freshness, db_url, as_of, params.policy_path, not params.as_of)
        with timed(summary, "evaluate-sla"):
            summary["sla"] = evaluate_sla(db_url, as_of, params.policy_path, summary["run_id"], **params.scale(),
                                          escalate=summary["freshness"]["escalate"])
        alert(db_url, params.policy_path, summary)
        with timed(summary, "tier-moves"):
            summary["tier_moves"] = call(record_tier_moves, db_url, as_of, params.policy_path, None,
                                         summary["run_id"])
    only_in_prefect(publish_run_report, summary, key="sla-monitor", title=f"sla-monitor as of {as_of.isoformat()}")
    return summary["sla"]


def _as_of(params: ScoreParameters | MonitorParameters) -> pd.Timestamp:
    """The form's ``as of`` (empty = now), refused when ahead of the clock unless ``allow_future``."""
    as_of = params.as_of_or_now()
    check_not_future(as_of, utc_now(), settings.future_tolerance(), allow_future=params.allow_future)
    return as_of


@flow(name="abm-sla-undo", validate_parameters=False)
def undo_run(params: UndoParameters) -> list[dict]:
    """Undo a run (``params.run_id``; with ``and_later`` every run after it too): remove the scores, MQAs
    (and their round-robin turns), clock evaluations, escalations and pending write-backs it wrote, and
    restore the state before it. Loaded CRM data stays."""
    params = validated(UndoParameters, params)
    store = warehouse(resolve_database_url(params.database_secret))
    try:
        run_id, and_later = undo_target(store, params.run_id, params.and_later)
        undone = undo.undo_run(store, run_id, utc_now(), and_later=and_later)
    except undo.UndoError as error:
        raise undo.UndoError(for_the_form(str(error))) from None
    for summary in undone:
        run_logger().info(describe_undone(summary))
    return undone


def undo_target(store: Warehouse, given: str, and_later: bool) -> tuple[str, bool]:
    """The warehouse run to undo for ``given`` and whether later runs go too.

    ``given`` is a warehouse run id, or the id of the Prefect flow run (as the UI shows it) that made
    one or more runs: then its earliest run, with the runs after it when they are all this flow run's
    (a backfill's steps)."""
    runs = undo.list_runs(store)
    if runs.empty or runs["run_id"].eq(given).any():
        return given, and_later
    made = runs[runs["flow_run_id"].eq(given)].sort_values("started_at")
    if made.empty:
        return given, and_later  # refused by the undo: no such run
    first = made.iloc[0]
    later = runs[(runs["started_at"] > first["started_at"]) & runs["status"].ne("undone")]
    return str(first["run_id"]), and_later or bool(later["run_id"].isin(made["run_id"]).all())


def for_the_form(message: str) -> str:
    """An undo refusal in the words of the undo form (its switch, not the CLI's flag)."""
    return (message.replace("pass --and-later", "switch on 'And every later run'")
            .replace("(`abm-sla runs` lists them)", "(give the warehouse run id from the run's logs or report, "
                     "or the id of the Prefect flow run that made it)"))


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
    allow_future: bool = False,
) -> dict:
    """One run as of ``as_of`` (empty = now): extract, score, fire and route, SLA clocks and escalations,
    then the CRM write-back when ``abm-sla.yaml`` (``config_path``) enables it. The warehouse is
    ``ABM_SLA_DATABASE_URL`` (the CLI sets it from ``--db``) or the Secret block: never a parameter.
    Only what changed since the last run is recomputed unless ``full``; ``shards`` (0 = ``ABM_SLA_SHARDS``)
    split the accounts, run on the Dask cluster at ``dask_address`` (empty = ``ABM_SLA_DASK_ADDRESS``).
    An ``as_of`` more than ``ABM_SLA_FUTURE_TOLERANCE_MINUTES`` (10) ahead of the clock is refused
    unless ``allow_future`` (a run can be undone: the ``abm-sla-undo`` flow)."""
    db_url = resolve_database_url(database_secret)
    as_of_ts = parse_as_of(as_of) if as_of else pd.Timestamp(utc_now())  # parsed once, here at the edge
    return run_once(db_url, as_of_ts, source, path, model_path, policy_path,
                    config_path=config_path, full=full, shards=shards or None, dask_address=dask_address or None,
                    allow_future=allow_future, live=not as_of)


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
    summaries = []
    with track("runs", total=len(as_ofs)) as bar:  # a progress line on a terminal
        for index, as_of in enumerate(as_ofs):
            summaries.append(run_once(db_url, as_of, source, path, model_path, policy_path, load=index == 0,
                                      config_path=config_path))
            bar.advance(rows=summaries[-1].get("scoring", {}).get("accounts_scored", 0))
    return summaries
