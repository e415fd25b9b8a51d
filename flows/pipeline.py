"""The main job: extract → score → hand-off and routing → SLA clocks, for one ``as of``."""

from __future__ import annotations

import uuid

import pandas as pd
from prefect import flow

from abm_sla.stages import parse_as_of
from tasks.common import utc_now, warehouse
from tasks.stages import extract_files, score_accounts


@flow(name="crm-sync")
def crm_sync(db_url: str, source: str = "files", path: str | None = None, run_id: str | None = None) -> dict:
    """Bring CRM changes into the warehouse."""
    run_id = run_id or uuid.uuid4().hex
    return {"files": extract_files(db_url, path, run_id)} if source == "files" else {}


@flow(name="score-and-route")
def score_and_route(db_url: str, as_of: str, model_path: str | None = None, run_id: str | None = None) -> dict:
    """Score every account as of ``as_of``."""
    run_id = run_id or uuid.uuid4().hex
    return {"scoring": score_accounts(db_url, parse_as_of(as_of), model_path, run_id)}


@flow(name="abm-sla-run")
def run_pipeline(
    db_url: str,
    as_of: str,
    source: str = "files",
    path: str | None = None,
    model_path: str | None = None,
) -> dict:
    """One full run as of ``as_of``; the run log keeps its summary."""
    run_id = uuid.uuid4().hex
    as_of_ts: pd.Timestamp = parse_as_of(as_of)
    store = warehouse(db_url)
    store.start_run(run_id, "run", as_of_ts.to_pydatetime(), utc_now())
    summary: dict = {"run_id": run_id, "as_of": as_of_ts.isoformat()}
    try:
        summary["extract"] = crm_sync(db_url, source, path, run_id)
        summary.update(score_and_route(db_url, as_of_ts.isoformat(), model_path, run_id))
    except Exception:
        store.finish_run(run_id, "failed", utc_now(), summary, None)
        raise
    store.finish_run(run_id, "completed", utc_now(), summary, summary["scoring"]["model_version"])
    return summary
