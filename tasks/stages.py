"""One Prefect task per pipeline stage. Tasks take names and URLs, return small summaries."""

from __future__ import annotations

import pandas as pd
from abm_sla.model import load_model
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from abm_sla import stages
from tasks.common import utc_now, warehouse


@task(name="extract-files", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def extract_files(db_url: str, path: str, run_id: str) -> dict:
    """Load a CRM export folder into the warehouse (quarantining bad rows)."""
    summary = stages.extract_files(warehouse(db_url), path, run_id, utc_now())
    logger = get_run_logger()
    for file, counts in summary.items():
        logger.info("%s: %d loaded, %d quarantined", file, counts["loaded"], counts["quarantined"])
    return summary


@task(name="score-accounts", cache_policy=NO_CACHE)
def score_accounts(db_url: str, as_of: pd.Timestamp, model_path: str | None, run_id: str) -> dict:
    """Score every account as of ``as_of`` and store the score history."""
    model = load_model(model_path)
    scores = stages.score(warehouse(db_url), as_of, model, run_id)
    get_run_logger().info("scored %d accounts as of %s with model %s", len(scores), as_of, model.version)
    return {"accounts_scored": len(scores), "qualified": int(scores["qualified"].sum()),
            "model_version": model.version}
