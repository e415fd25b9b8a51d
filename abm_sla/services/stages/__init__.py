"""The pipeline's stages as plain functions: read the warehouse, call the pure modules, write back.

Each stage is planned (:mod:`abm_sla.services.incremental`: recompute everything or only what changed
since the reference run), split into account shards (:mod:`abm_sla.infra.shards`) that read and compute
independently, and finished in one step that records the run (and, for the hand-off, routes and
stores the MQAs under the warehouse lock). ``score``, ``fire_and_route`` and ``evaluate_sla`` run
the shards one after another in this process; the Prefect tasks (``tasks/``) call the same pieces
and run the shards as tasks (on Dask when the run names a Dask scheduler). The
functions know nothing of Prefect, so the CLI, tests and benchmarks can call them directly.

The package by stage: ``load`` (the export files, the signals a stage reads, the as-of, the plan and its shards,
run bookkeeping), ``score``, ``route`` (the hand-off, routing and storing the MQAs), ``clocks`` (the SLA clocks,
reassignment on breach) and ``tier_moves`` (the tier-move ledger). Below: the names the tasks, flows, CLI and
services use.
"""

from abm_sla.services.stages.clocks import evaluate_sla, finish_sla, reassignment_candidates, sla_shard, to_evaluate
from abm_sla.services.stages.load import (
    ACCOUNTS_PER_SHARD,
    ROUND_ROBIN_KEY,
    Signals,
    check_not_future,
    count_accounts,
    extract_files,
    parse_as_of,
    plan,
    read_signals,
    read_status_changes,
    tal_exists,
    target_list,
    utc_now,
)
from abm_sla.services.stages.route import fire_and_route, fire_shard, route_and_store
from abm_sla.services.stages.score import finish_score, score, score_configs, score_shard, store_recalculated
from abm_sla.services.stages.tier_moves import TIER_MOVES_KEY, TIER_MOVES_WHOLE_SHARE, record_tier_moves

__all__ = ["ACCOUNTS_PER_SHARD", "ROUND_ROBIN_KEY", "TIER_MOVES_KEY", "TIER_MOVES_WHOLE_SHARE", "Signals",
           "check_not_future", "count_accounts", "evaluate_sla", "extract_files", "finish_score", "finish_sla",
           "fire_and_route", "fire_shard", "parse_as_of", "plan", "read_signals", "read_status_changes",
           "reassignment_candidates", "record_tier_moves", "route_and_store", "score", "score_configs",
           "score_shard", "sla_shard", "store_recalculated", "tal_exists", "target_list", "to_evaluate", "utc_now"]
