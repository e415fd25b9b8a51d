"""One Prefect task per pipeline stage. Tasks take names and URLs, return small summaries."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from abm_sla import stages
from abm_sla.model import load_model
from abm_sla.policy import load_policy
from tasks.common import load_app_config_with_secrets, utc_now, warehouse
from tasks.observe import emit_mqas_fired, emit_sla_changes, sla_snapshot, stage_slot


@task(name="extract-files", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def extract_files(db_url: str, path: str, run_id: str) -> dict:
    """Load a CRM export folder into the warehouse (quarantining bad rows)."""
    summary = stages.extract_files(warehouse(db_url), path, run_id, utc_now())
    logger = get_run_logger()
    for file, counts in summary.items():
        logger.info("%s: %d loaded, %d quarantined", file, counts["loaded"], counts["quarantined"])
    return summary


@task(name="sync-crm", cache_policy=NO_CACHE)  # the sources retry each call themselves
def sync_crm(db_url: str, source: str, config_path: str | None, run_id: str) -> dict:
    """Bring a CRM's changes since the stored cursors into the warehouse (a re-run resumes from the last page)."""
    from abm_sla.crm.sync import sync

    summary = sync(warehouse(db_url), source, load_app_config_with_secrets(config_path), run_id, utc_now())
    logger = get_run_logger()
    for name, counts in summary.items():
        logger.info("%s %s: %d loaded, %d deleted, %d quarantined in %d pages", source, name, counts["loaded"],
                    counts["deleted"], counts["quarantined"], counts["pages"])
        for warning in counts.get("warnings", []):
            logger.warning("%s %s: %s", source, name, warning)
    return summary


@task(name="write-back", cache_policy=NO_CACHE)
def write_back(db_url: str, config_path: str | None) -> dict:
    """Create the CRM task and set the account status of each newly routed MQA (when abm-sla.yaml enables it)."""
    from abm_sla.crm.writeback import write_back_configured

    counts = write_back_configured(warehouse(db_url), load_app_config_with_secrets(config_path), utc_now())
    get_run_logger().info("write-back: %s", counts)
    return counts


@task(name="score-accounts", cache_policy=NO_CACHE)
def score_accounts(db_url: str, as_of: pd.Timestamp, model_path: str | None, run_id: str) -> dict:
    """Score every account as of ``as_of`` and store the score history."""
    model = load_model(model_path)
    scores = stages.score(warehouse(db_url), as_of, model, run_id)
    get_run_logger().info("scored %d accounts as of %s with model %s", len(scores), as_of, model.version)
    return {"accounts_scored": len(scores), "qualified": int(scores["qualified"].sum()),
            "model_version": model.version}


@task(name="fire-and-route", cache_policy=NO_CACHE)
def fire_and_route(
    db_url: str, as_of: pd.Timestamp, model_path: str | None, policy_path: str | None, run_id: str
) -> dict:
    """Fire the MQAs whose hand-off passed by ``as_of`` (exactly once) and route them to owners."""
    with stage_slot("fire-and-route"):
        fired = stages.fire_and_route(
            warehouse(db_url), as_of, load_model(model_path), load_policy(policy_path), run_id
        )
    emit_mqas_fired(fired)
    get_run_logger().info("fired and routed %d MQAs as of %s", len(fired), as_of)
    by_tier = fired["tier"].value_counts().sort_index() if len(fired) else pd.Series(dtype=int)
    return {"mqas_fired": len(fired), "by_tier": {str(tier): int(n) for tier, n in by_tier.items()}}


@task(name="evaluate-sla", cache_policy=NO_CACHE)
def evaluate_sla(db_url: str, as_of: pd.Timestamp, policy_path: str | None) -> dict:
    """Evaluate every SLA clock and escalation as of ``as_of``."""
    store = warehouse(db_url)
    before = sla_snapshot(store)
    with stage_slot("evaluate-sla"):
        summary = stages.evaluate_sla(store, as_of, load_policy(policy_path))
    summary.update(emit_sla_changes(store, before))
    get_run_logger().info("SLA as of %s: %s", as_of, summary)
    return summary
