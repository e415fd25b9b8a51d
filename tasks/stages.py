"""Prefect tasks of the pipeline: one per stage, or per shard of a sharded stage, never per account.

A sharded stage is planned here (recompute what changed, in how many shards), runs one task per
shard (in this process or on Dask, :mod:`tasks.shards`) and finishes with one step that records the
run; for the hand-off that step is the ``route-mqas`` task, which routes and stores every shard's
MQAs exactly once. Tasks take names, URLs and small plans, never clients or engines.
"""

from __future__ import annotations

import datetime as dt
from contextlib import nullcontext

import pandas as pd

from abm_sla.domain import freshness
from abm_sla.infra.shards import Shard
from abm_sla.services import backfill, stages
from abm_sla.services.config_files import load_model, load_policy
from abm_sla.services.incremental import Plan
from abm_sla.services.summary import counts_line
from tasks.common import (
    call,
    in_prefect,
    load_app_config_with_secrets,
    only_in_prefect,
    retry_transient,
    run_logger,
    task,
    utc_now,
    warehouse,
    warn_once,
)
from tasks.observe import emit_mqas_fired, emit_sla_changes, sla_snapshot, stage_slot
from tasks.shards import run_shards, shard_count


@task(name="extract-files", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_transient)
def extract_files(db_url: str, path: str, run_id: str) -> dict:
    """Load a CRM export folder into the warehouse (quarantining bad rows)."""
    summary = stages.extract_files(warehouse(db_url), path, run_id, utc_now())
    logger = run_logger()
    for file, counts in summary.items():
        logger.info("%s: %d loaded, %d quarantined, %d values dropped", file, counts["loaded"], counts["quarantined"],
                    counts.get("values_dropped", 0))
    return summary


@task(name="sync-crm")  # the sources retry each call themselves
def sync_crm(db_url: str, source: str, config_path: str | None, run_id: str) -> dict:
    """Bring a CRM's changes since the stored cursors into the warehouse (a re-run resumes from the last page)."""
    from abm_sla.crm.sync import sync
    from tasks.rate_budget import budget_options

    app_config = load_app_config_with_secrets(config_path)
    summary = sync(warehouse(db_url), source, app_config, run_id, utc_now(), **budget_options(app_config, source))
    logger = run_logger()
    for name, counts in summary.items():
        logger.info("%s %s: %d loaded, %d deleted, %d quarantined in %d pages", source, name, counts["loaded"],
                    counts["deleted"], counts["quarantined"], counts["pages"])
        for warning in counts.get("warnings", []):
            logger.warning("%s %s: %s", source, name, warning)
    return summary


@task(name="write-back")
def write_back(db_url: str, config_path: str | None) -> dict:
    """Create the CRM task and set the account status of each newly routed MQA (when abm-sla.yaml enables it)."""
    from abm_sla.crm.writeback import write_back_configured
    from tasks.rate_budget import budget_options

    app_config = load_app_config_with_secrets(config_path)
    options = budget_options(app_config, app_config.writeback_target()) if app_config.writeback.enabled else {}
    counts = write_back_configured(warehouse(db_url), app_config, utc_now(), **options)
    run_logger().info("write-back: %s", counts_line(counts))
    return counts


@task(name="score-shard")
def score_shard(
    db_url: str, planned: Plan, model_path: str | None, policy_path: str | None, run_id: str, shard: Shard
) -> dict:
    """Score one shard's accounts that changed since the reference run and store the changed scores."""
    return stages.score_shard(warehouse(db_url), planned, load_model(model_path), load_policy(policy_path), run_id,
                              shard)


def score_accounts(
    db_url: str, as_of: pd.Timestamp, model_path: str | None, policy_path: str | None, run_id: str, *,
    full: bool = False, shards: int | None = None, dask_address: str | None = None,
) -> dict:
    """Score every account (those on the target account list when the policy limits scoring to it) as of
    ``as_of``: plan, one task per shard, record the run."""
    store, model, policy, started = warehouse(db_url), load_model(model_path), load_policy(policy_path), utc_now()
    planned = stages.plan(store, "score", as_of, *stages.score_configs(store, model, policy), full=full,
                          shards=shard_count(shards))
    parts = run_shards(score_shard, planned.shard_list(), dask_address, db_url=db_url, planned=planned,
                       model_path=model_path, policy_path=policy_path, run_id=run_id)
    summary = stages.finish_score(store, planned, model, policy, run_id, started, parts)
    run_logger().info("scored %d accounts as of %s with model %s (%s: %d recomputed, %d changed)",
                          summary["accounts_scored"], as_of, model.version, planned.mode,
                          summary["accounts_recomputed"], summary["scores_changed"])
    return summary


@task(name="fire-shard")
def fire_shard(
    db_url: str, planned: Plan, model_path: str | None, policy_path: str | None, shard: Shard
) -> pd.DataFrame:
    """The MQAs one shard's changed accounts fire (routed and stored by ``route-mqas``)."""
    return stages.fire_shard(warehouse(db_url), planned, load_model(model_path), load_policy(policy_path), shard)


@task(name="route-mqas")
def route_mqas(
    db_url: str, planned: Plan, model_path: str | None, policy_path: str | None, run_id: str, started: dt.datetime,
    parts: list[pd.DataFrame],
) -> pd.DataFrame:
    """Route the fired MQAs and store them exactly once, under the warehouse lock (one task per run)."""
    with _slot("fire-and-route"):
        return stages.route_and_store(warehouse(db_url), planned, load_model(model_path), load_policy(policy_path),
                                      run_id, started, parts)


def fire_and_route(
    db_url: str, as_of: pd.Timestamp, model_path: str | None, policy_path: str | None, run_id: str, *,
    full: bool = False, shards: int | None = None, dask_address: str | None = None,
) -> dict:
    """Fire the MQAs whose hand-off passed by ``as_of`` (exactly once) and route them to owners."""
    store, started = warehouse(db_url), utc_now()
    planned = stages.plan(store, "fire-and-route", as_of, load_model(model_path), load_policy(policy_path),
                          full=full, shards=shard_count(shards))
    parts = run_shards(fire_shard, planned.shard_list(), dask_address, db_url=db_url, planned=planned,
                       model_path=model_path, policy_path=policy_path)
    fired = call(route_mqas, db_url, planned, model_path, policy_path, run_id, started, parts)
    only_in_prefect(emit_mqas_fired, fired)
    run_logger().info("fired and routed %d MQAs as of %s (%s)", len(fired), as_of, planned.mode)
    by_tier = fired["tier"].value_counts().sort_index() if len(fired) else pd.Series(dtype=int)
    return {"mqas_fired": len(fired), "by_tier": {str(tier): int(n) for tier, n in by_tier.items()},
            "mode": planned.mode}


@task(name="check-freshness")
def check_freshness(db_url: str, as_of: pd.Timestamp, policy_path: str | None, live: bool) -> dict:
    """The policy's freshness checks as of ``as_of`` (a live run, or every run with ``applies_to: all``):
    each table's newest row at or before ``as_of``; a warning line per table past its limit."""
    rules = load_policy(policy_path).freshness
    if not freshness.applies(rules, live):
        return {"status": "not checked", "escalate": True, "checks": []}
    store = warehouse(db_url)
    newest = {name: store.newest_event(name, freshness.EVENT_TIMES[name], as_of.to_pydatetime())
              for name in rules.tables}
    result = freshness.check(rules, newest, as_of)
    logger = run_logger()
    for item in result.checks:
        (logger.info if item.status == "pass" else logger.warning)("freshness: %s", item.line())
    if result.status != "pass":
        logger.warning("freshness as of %s: %s", as_of.isoformat(), result.headline())
    return result.as_dict()


def _sla_policy(policy_path: str | None, escalate: bool):
    """The SLA policy, without its escalation ladders when the run must not escalate (stale data)."""
    policy = load_policy(policy_path)
    return policy if escalate else freshness.without_escalations(policy)


@task(name="sla-shard")
def sla_shard(db_url: str, planned: Plan, policy_path: str | None, shard: Shard, run_id: str = "",
              escalate: bool = True) -> dict:
    """Evaluate one shard's clocks and escalations that can change."""
    return stages.sla_shard(warehouse(db_url), planned, _sla_policy(policy_path, escalate), shard, run_id)


def evaluate_sla(
    db_url: str, as_of: pd.Timestamp, policy_path: str | None, run_id: str = "", *, full: bool = False,
    shards: int | None = None, dask_address: str | None = None, escalate: bool = True,
) -> dict:
    """Evaluate every SLA clock and escalation as of ``as_of`` that can change (with ``escalate`` off,
    the clocks only: over stale data, see :mod:`abm_sla.domain.freshness`)."""
    store, policy, started = warehouse(db_url), _sla_policy(policy_path, escalate), utc_now()
    before = only_in_prefect(sla_snapshot, store)
    planned = stages.plan(store, "evaluate-sla", as_of, policy, full=full, shards=shard_count(shards))
    with _slot("evaluate-sla"):
        parts = run_shards(sla_shard, planned.shard_list(), dask_address, db_url=db_url,
                           planned=planned, policy_path=policy_path, run_id=run_id, escalate=escalate)
    summary = stages.finish_sla(store, planned, run_id, started, parts, policy)
    if summary.get("users_on_utc"):
        warn_once(f"unknown time zone, clocks measured in UTC for: {', '.join(summary['users_on_utc'])}")
    if summary.get("unknown_statuses"):
        warn_once(f"status values the policy does not map (kept): {', '.join(summary['unknown_statuses'])}")
    summary.update(only_in_prefect(emit_sla_changes, store, before, default={}))
    shown = {key: value for key, value in summary.items() if key not in ("users_on_utc", "unknown_statuses")}
    run_logger().info("SLA as of %s (%s): %s", as_of.isoformat(), planned.mode, counts_line(shown))
    return {**summary, "mode": planned.mode}


def _slot(stage: str):
    """The stage's Prefect concurrency slot in a Prefect run (the warehouse lock serializes either way)."""
    return stage_slot(stage) if in_prefect() else nullcontext()


@task(name="tier-moves")
def record_tier_moves(db_url: str, as_of: pd.Timestamp, policy_path: str | None, model_path: str | None,
                      run_id: str = "") -> dict:
    """Advance the tier-move ledger: sales' decisions from the CRM's tiers, then the new recommendations."""
    return stages.record_tier_moves(warehouse(db_url), as_of, load_policy(policy_path), load_model(model_path), run_id)


@task(name="backfill-shard")
def backfill_shard(db_url: str, steps: list[pd.Timestamp], model_path: str | None, policy_path: str | None,
                   run_id: str, shard: Shard) -> backfill.ShardResult:
    """One shard of a one-pass backfill: its score changes at every step stored, the MQAs it fires returned."""
    return backfill.compute_shard(warehouse(db_url), steps, load_model(model_path), load_policy(policy_path), run_id,
                                  shard)
