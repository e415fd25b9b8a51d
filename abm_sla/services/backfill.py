"""The one-pass backfill engine: many as-of steps computed by account, not by step.

A step-by-step backfill runs the whole pipeline as of each step. Here, for each shard of accounts,
the signals are read once (back to the first step minus twice the window), every account's score is
computed at every step in one :func:`abm_sla.domain.scoring.score_at` call (window sums over sorted events)
and its hand-off replayed over the steps (:func:`abm_sla.domain.handoff.replay_steps`); the score rows that
change are written once, in bulk. Then the steps are finished in time order: each step's scoring run
is recorded, its fired MQAs are routed (the round-robin is global, so routing stays in time order
across accounts and after the reassignments of the step before) and its clocks and escalations are
evaluated by the SLA stage, the tier-move ledger advanced. The results equal a step-by-step
backfill's (the property test in ``tests/adapters/test_backfill_engine.py`` pins it).

Undo: everything is written under one run id, and the undo log keeps each key's state before the
backfill once (:func:`abm_sla.warehouse.undo.logged_once`), so the backfill is undone as one unit and
its log grows with what changed, not with steps × accounts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd

from abm_sla.domain import calendar, frames, handoff, marketing, scorecard, scoring, whatif
from abm_sla.domain.model import ScoringModel
from abm_sla.domain.policy import SlaPolicy
from abm_sla.infra.faults import checkpoint
from abm_sla.infra.shards import Shard, all_shards
from abm_sla.services import incremental, stages
from abm_sla.services.stages import held_clocks
from abm_sla.services.stages.load import _joined_frames, _only_listed
from abm_sla.services.stages.route import _stored_mqas
from abm_sla.warehouse import Warehouse, schema, score_history, undo
from abm_sla.warehouse.reads import crm_reads_cached
from abm_sla.warehouse.view import CrmView

#: Score rows computed at once per shard (accounts × steps): bounds a shard's memory.
ROWS_PER_CHUNK = 400_000
#: The activity types whose windows the steps read again and again (the SLA stage's sales touches and owner
#: events, the tier-move ledger's buying signals and marketing touches), held in memory while the steps are
#: finished.
HELD_ACTIVITY_TYPES = (*frames.SALES_TOUCHES, *frames.OWNER_EVENTS, *scorecard.HIGH_INTENT_TOUCHES, "web_visit",
                       *frames.MARKETING_TOUCHES)
#: How far past the window a step asks for a held read reaches (bounds the memory: the rows of the windows and
#: of this much more; as the window moves, the rows it left are dropped and only the rows after it are read).
HELD_HORIZON = pd.Timedelta(days=7)


@dataclass
class ShardResult:
    """What one shard computed: per step, the score rows that changed and the MQAs it fires."""

    scores_changed: dict[pd.Timestamp, int]
    fired: pd.DataFrame  # MQA columns, ``step`` and ``prior_seen``


def compute_shard(
    warehouse: Warehouse, steps: Sequence[pd.Timestamp], model: ScoringModel, policy: SlaPolicy | None, run_id: str,
    shard: Shard,
) -> ShardResult:
    """Read one shard's signals once, store its score changes at every step and return the MQAs it fires."""
    crm = CrmView(warehouse)
    first, last = steps[0], steps[-1]
    signals = stages.read_signals(crm, last, last - first + 2 * model.window, shard, None, model)
    limited = _only_listed(policy) and stages.tal_exists(warehouse)
    listed = crm.read_kind("target_accounts", shard=shard) if limited else None
    changed = store_score_steps(warehouse, signals, steps, model, listed, run_id)
    fired = pd.DataFrame()
    if policy is not None:
        status_changes = stages.read_status_changes(crm, last, shard)
        prior = _stored_mqas(warehouse, signals.accounts["account_id"])
        fired = handoff.replay_steps(signals.accounts, signals.contacts, signals.activities, signals.intent_signals,
                                     status_changes, prior, model, steps, policy.episode_end_statuses(), listed)
        fired = with_prior_seen(fired, prior)
    checkpoint("score")
    return ShardResult(changed, fired)


def with_prior_seen(fired: pd.DataFrame, prior: pd.DataFrame) -> pd.DataFrame:
    """``fired`` with ``prior_seen``: the stored MQAs of its account when its step runs (those stored before
    the backfill and those the earlier steps fired), as the step-by-step hand-off counts them."""
    stored = prior.groupby("account_id").size()
    fired = fired.sort_values(["step", "trigger_at", "account_id"], kind="stable", ignore_index=True)
    per_step = fired.groupby(["account_id", "step"], sort=False).size().rename("n").reset_index()
    per_step = per_step.sort_values("step", kind="stable")
    per_step["before"] = per_step.groupby("account_id")["n"].cumsum() - per_step["n"]
    fired = fired.merge(per_step[["account_id", "step", "before"]], on=["account_id", "step"], how="left")
    seen = fired["account_id"].map(stored).fillna(0).astype("int64") + fired["before"].astype("int64")
    return fired.drop(columns="before").assign(prior_seen=seen)


def step_candidates(accounts: pd.DataFrame, steps: Sequence[pd.Timestamp], listed: pd.DataFrame | None
                    ) -> tuple[pd.DataFrame, list[tuple[pd.Timestamp, pd.Series]]]:
    """The (account_id, at) points a run at each of ``steps`` scores: the accounts created by then (and on the
    target account list then, when ``listed``); and per step the accounts off the list (not scored)."""
    ids = scoring.id_strings(accounts["account_id"])
    created = scoring._utc(accounts["created_at"]) if "created_at" in accounts else pd.Series(pd.NaT, index=ids.index)
    points, off_list = [], []
    for as_of in steps:
        exists = (created.isna() | (created <= as_of)).to_numpy(dtype=bool)
        present = pd.Series(ids[exists].dropna().unique(), dtype=object)
        if listed is not None:
            on = marketing.on_list_at(listed, present, as_of).to_numpy(dtype=bool)
            off_list.append((as_of, present[~on].reset_index(drop=True)))
            present = present[on].reset_index(drop=True)
        points.append(pd.DataFrame({"account_id": present, "at": pd.Series(as_of, index=present.index)}))
    candidates = pd.concat(points, ignore_index=True) if points else pd.DataFrame(
        {"account_id": pd.Series(dtype=object), "at": pd.Series(dtype="datetime64[ns, UTC]")})
    return candidates.astype({"account_id": object}), off_list


def score_rows(signals: stages.Signals, steps: Sequence[pd.Timestamp], model: ScoringModel,
               listed: pd.DataFrame | None, run_id: str) -> pd.DataFrame:
    """``score_history`` rows of every account existing at each of ``steps`` (not-scored rows for those off
    the target account list when ``listed``), with ``score_hash``."""
    accounts = signals.accounts
    candidates, off_list = step_candidates(accounts, steps, listed)
    frames = []
    if len(candidates):
        scores = scoring.score_at(candidates, accounts, signals.contacts, signals.activities, signals.intent_signals,
                                  model)
        frames.append(whatif.history_rows(scores, scores["at"], model.version, run_id))
    frames += [score_history.not_scored_rows(off, as_of, model.version, run_id) for as_of, off in off_list
               if len(off)]
    if not frames:
        return pd.DataFrame()
    rows = _joined_frames(frames).reset_index(drop=True)
    rows["as_of"] = pd.to_datetime(rows["as_of"], utc=True)
    return rows.assign(score_hash=score_history.score_hashes(rows))


def store_score_steps(
    warehouse: Warehouse, signals: stages.Signals, steps: Sequence[pd.Timestamp], model: ScoringModel,
    listed: pd.DataFrame | None, run_id: str,
) -> dict[pd.Timestamp, int]:
    """Score the shard's accounts at every step and write, in one transaction, the rows a step-by-step run
    would have written (:func:`abm_sla.warehouse.score_history.store_changes` at each step in turn:
    a row when it differs from the account's latest row, the next later run pinned); returns the rows
    changed per step."""
    accounts = signals.accounts["account_id"].astype(str).tolist()
    stored = _stored_history(warehouse, model.version, accounts)
    stored_keys = pd.MultiIndex.from_frame(stored[["account_id", "as_of"]])
    later_runs = _score_run_times(warehouse, model.version)
    per_chunk = max(1, ROWS_PER_CHUNK // max(1, len(accounts)))
    history = _History(stored)
    counts = {}
    for start in range(0, len(steps), per_chunk):
        chunk = list(steps[start:start + per_chunk])
        rows = score_rows(signals, chunk, model, listed, run_id)
        for as_of in chunk:
            counts[as_of] = history.step(rows[rows["as_of"] == as_of] if len(rows) else rows, as_of, later_runs)
    _write_history(warehouse, history.written, history.pins, stored_keys, run_id)
    return counts


class _History:
    """An in-memory copy of the shard's score history under one model, advanced step by step (ascending) as
    :func:`abm_sla.warehouse.score_history.store_changes` would change the stored one."""

    KEYS: ClassVar[list[str]] = ["account_id", "as_of", "score_hash"]

    def __init__(self, stored: pd.DataFrame) -> None:
        self.stored = stored
        self.keys = stored[self.KEYS]  # stored rows and pins: their ``as_of`` may lie ahead of a step
        self.current = self.keys.iloc[0:0]  # per account, the latest row at or before ``self.moment``
        self.moment: pd.Timestamp | None = None
        self.written: list[pd.DataFrame] = []
        self.pins: list[pd.DataFrame] = []

    def step(self, rows: pd.DataFrame, as_of: pd.Timestamp, later_runs: pd.Series) -> int:
        """Keep the rows of the step at ``as_of`` that differ from each account's latest row, pinning the next
        later recorded run's value first; returns how many rows changed."""
        self._advance(as_of)
        if rows.empty:
            return 0
        known = rows[["account_id"]].merge(self.current[["account_id", "score_hash"]], on="account_id", how="left")
        changed = rows[known["score_hash"].to_numpy() != rows["score_hash"].to_numpy()].reset_index(drop=True)
        if changed.empty:
            return 0
        following = later_runs[later_runs > as_of]
        if len(following):
            self._pin(changed["account_id"], as_of, following.iloc[0])
        self.written.append(changed)
        self.current = _newest(self.current, changed[self.KEYS])
        return len(changed)

    def _advance(self, as_of: pd.Timestamp) -> None:
        after = self.keys["as_of"] > self.moment if self.moment is not None else True
        newer = self.keys[after & (self.keys["as_of"] <= as_of)]
        self.current, self.moment = _newest(self.current, newer), as_of

    def _pin(self, accounts: pd.Series, as_of: pd.Timestamp, moment: pd.Timestamp) -> None:
        """Keep, at ``moment`` (the next later recorded run), the value it read for ``accounts`` unless they have
        a row of their own after ``as_of`` up to it."""
        ids = set(accounts)
        ahead = self.keys[self.keys["account_id"].isin(ids) & (self.keys["as_of"] > as_of)
                          & (self.keys["as_of"] <= moment)]
        needed = self.current[self.current["account_id"].isin(ids - set(ahead["account_id"]))]
        if needed.empty:
            return
        rows = pd.concat([self.stored, *self.written, *self.pins], ignore_index=True)
        rows = rows.drop_duplicates(["account_id", "as_of"], keep="last")
        pinned = rows.merge(needed[["account_id", "as_of"]], on=["account_id", "as_of"]).assign(as_of=moment)
        self.pins.append(pinned)
        self.keys = pd.concat([self.keys, pinned[self.KEYS]], ignore_index=True)


def _newest(current: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Per account, the later of its ``current`` row and its latest of ``rows`` (a tie: the one of ``rows``)."""
    if rows.empty:
        return current
    both = pd.concat([current, rows], ignore_index=True) if len(current) else rows
    return both.sort_values(["account_id", "as_of"], kind="stable").drop_duplicates("account_id", keep="last")


def _stored_history(warehouse: Warehouse, model_version: str, accounts: list[str]) -> pd.DataFrame:
    table = schema.score_history
    rows = warehouse.select_in(list(table.columns), [table.c.model_version == model_version], table.c.account_id,
                               accounts)
    rows["as_of"] = pd.to_datetime(rows["as_of"], utc=True)
    return rows


def _score_run_times(warehouse: Warehouse, model_version: str) -> pd.Series:
    """The as-of moments of the recorded scoring runs of ``model_version``, ascending."""
    runs = schema.stage_runs
    times = warehouse.select_frame([runs.c.as_of], [runs.c.stage == score_history.STAGE,
                                                    runs.c.model_version == model_version])["as_of"]
    return pd.Series(pd.to_datetime(times, utc=True).drop_duplicates().sort_values().to_numpy())


def _write_history(
    warehouse: Warehouse, written: list[pd.DataFrame], pins: list[pd.DataFrame], stored_keys: pd.MultiIndex,
    run_id: str,
) -> None:
    columns = [column.name for column in schema.score_history.columns]
    with warehouse.engine.begin() as connection:
        if pins:
            pinned = pd.concat(pins, ignore_index=True).drop_duplicates(["account_id", "as_of"])
            warehouse.upsert_frame(connection, schema.score_history, pinned[columns], update=False)
        if written:
            rows = pd.concat(written, ignore_index=True).drop_duplicates(["account_id", "as_of"], keep="last")
            replaced = rows[pd.MultiIndex.from_frame(rows[["account_id", "as_of"]]).isin(stored_keys)]
            if len(replaced):
                undo.remember(warehouse, connection, run_id, schema.score_history,
                              replaced[score_history.KEY_COLUMNS], only_existing=True)
            warehouse.upsert_frame(connection, schema.score_history, rows[columns])
        checkpoint("score")


# -- the steps, in time order ----------------------------------------------------------------------

def record_score_run(
    warehouse: Warehouse, as_of: pd.Timestamp, model: ScoringModel, policy: SlaPolicy | None, run_id: str,
    shards: int, changed: int, started: dt.datetime, qualified: int | None = None,
) -> dict:
    """Record one step's scoring run (its rows are stored already), with the summary a step's run has
    (``qualified``: counted already, :func:`~abm_sla.warehouse.score_history.count_qualified_at`)."""
    version = incremental.config_version(*stages.score_configs(warehouse, model, policy))
    planned = incremental.Plan("score", as_of, version, warehouse.journal_position(), shards=shards)
    parts = [{"accounts_recomputed": stages.count_accounts(warehouse, as_of), "scores_changed": changed}]
    return stages.finish_score(warehouse, planned, model, policy, run_id, started, parts, qualified)


def route_step(
    warehouse: Warehouse, as_of: pd.Timestamp, model: ScoringModel, policy: SlaPolicy, run_id: str, shards: int,
    fired: pd.DataFrame, started: dt.datetime,
) -> pd.DataFrame:
    """Route and store one step's MQAs (exactly once, under the lock) and record its hand-off run."""
    planned = incremental.Plan("fire-and-route", as_of, incremental.config_version(model, policy),
                               warehouse.journal_position(), shards=shards)
    return stages.route_and_store(warehouse, planned, model, policy, run_id, started, [fired.drop(columns="step")])


def step_fired(results: list[ShardResult], as_of: pd.Timestamp) -> pd.DataFrame:
    """The MQAs every shard fires at ``as_of``."""
    parts = [part.fired[part.fired["step"] == as_of] for part in results if len(part.fired)]
    parts = [part for part in parts if len(part)]
    if not parts:
        return handoff.empty_mqas().assign(step=pd.Series(dtype="datetime64[ns, UTC]"),
                                           prior_seen=pd.Series(dtype="int64"))
    return pd.concat(parts, ignore_index=True)


def run(
    warehouse: Warehouse, steps: Sequence[pd.Timestamp], model: ScoringModel, policy: SlaPolicy, run_id: str, *,
    full: bool = False, shards: int | None = None, on_step: Callable[[pd.Timestamp, dict], None] | None = None,
) -> list[dict]:
    """A backfill over ``steps`` (ascending) in one pass, in this process: the pieces a flow runs as tasks.
    ``on_step`` is told each finished step and its summary (record it, advance a progress line)."""
    steps = sorted(pd.Timestamp(step) for step in steps)
    if not steps:
        return []
    count = shard_total(warehouse, steps[-1], model, shards)
    with undo.logged_once(run_id):
        results = [compute_shard(warehouse, steps, model, policy, run_id, shard) for shard in all_shards(count)]
        return finish_steps(warehouse, steps, model, policy, run_id, results, count, full=full, on_step=on_step)


def shard_total(warehouse: Warehouse, as_of: pd.Timestamp, model: ScoringModel, shards: int | None) -> int:
    """How many shards a one-pass backfill uses: ``shards``, else one per ``stages.ACCOUNTS_PER_SHARD`` accounts;
    one when several CRMs are unified (their accounts are re-keyed across sources, as the stages do)."""
    if CrmView(warehouse).unified:
        return 1
    return shards or stages.plan(warehouse, "score", as_of, model).shards


def finish_steps(
    warehouse: Warehouse, steps: Sequence[pd.Timestamp], model: ScoringModel, policy: SlaPolicy, run_id: str,
    results: list[ShardResult], shards: int, *, full: bool = False,
    on_step: Callable[[pd.Timestamp, dict], None] | None = None,
    evaluate: Callable[[pd.Timestamp], dict] | None = None,
) -> list[dict]:
    """Record, route and evaluate the steps in time order (see the module's docstring); one summary per step.
    ``evaluate``: the SLA stage of a step (default: :func:`abm_sla.services.stages.evaluate_sla` in this process).
    The business-hour deadlines and ladder moments the steps ask for again are computed once
    (:func:`abm_sla.domain.calendar.remembered`), and the windows the SLA stage and the tier-move ledger read
    at every step are read as they move, :data:`HELD_HORIZON` ahead (:meth:`~abm_sla.warehouse.Warehouse.hold_events`):
    the sales touches, the buying signals, the marketing touches and the activities entering the ledger's window, the
    intent signals; the SLA stage's stored clocks are held from one step to the next
    (:func:`.held_clocks.clocks_held`)."""
    with crm_reads_cached(warehouse.url), calendar.remembered(), held_clocks.clocks_held(warehouse.url):
        warehouse.hold_events(steps[-1].to_pydatetime(), HELD_ACTIVITY_TYPES, any_type=True, horizon=HELD_HORIZON)
        return _finish_steps(warehouse, steps, model, policy, run_id, results, shards, full, on_step, evaluate)


def _finish_steps(
    warehouse: Warehouse, steps: Sequence[pd.Timestamp], model: ScoringModel, policy: SlaPolicy, run_id: str,
    results: list[ShardResult], shards: int, full: bool, on_step: Callable[[pd.Timestamp, dict], None] | None,
    evaluate: Callable[[pd.Timestamp], dict] | None,
) -> list[dict]:
    summaries = []
    # every step's scores are stored already, and finishing the steps writes none: each step's count, read once
    qualified = score_history.count_qualified_at(warehouse, model.version, list(steps))
    for as_of, qualified_at in zip(steps, qualified, strict=True):
        started = stages.utc_now()
        changed = sum(part.scores_changed.get(as_of, 0) for part in results)
        summary: dict = {"run_id": run_id, "as_of": as_of.isoformat(), "engine": "one-pass"}
        summary["scoring"] = record_score_run(warehouse, as_of, model, policy, run_id, shards, changed, started,
                                              qualified_at)
        fired = route_step(warehouse, as_of, model, policy, run_id, shards, step_fired(results, as_of), started)
        by_tier = fired["tier"].value_counts().sort_index() if len(fired) else pd.Series(dtype=int)
        summary["handoff"] = {"mqas_fired": len(fired), "by_tier": {str(t): int(n) for t, n in by_tier.items()},
                              "mode": "one-pass"}
        summary["sla"] = evaluate(as_of) if evaluate else stages.evaluate_sla(
            warehouse, as_of, policy, full=full, shards=shards, run_id=run_id)
        summary["tier_moves"] = stages.record_tier_moves(warehouse, as_of, policy, model, run_id)
        summaries.append(summary)
        if on_step is not None:
            on_step(as_of, summary)
    return summaries



# -- what-if over a period ---------------------------------------------------------------------------

@dataclass
class PeriodWhatIf:
    """A model what-if at every step of a period: per step, what :func:`abm_sla.domain.whatif.summarize` counts and
    the MQAs fired by the stored runs vs those the candidate model would fire; and those MQAs, side by side."""

    steps: pd.DataFrame
    mqas: pd.DataFrame


#: What a period what-if counts per step and shard; summed over the shards (the mean delta from its sum).
_STEP_COUNTS = ("accounts", "newly_pass", "drop_below", "score_changed", "unchanged", "delta_sum")


def what_if_period(
    warehouse: Warehouse, steps: Sequence[pd.Timestamp], model: ScoringModel, baseline: ScoringModel,
    policy: SlaPolicy, accounts: list[str] | None = None, shards: int | None = None,
) -> PeriodWhatIf:
    """Score ``accounts`` (None: all) with both models at every step in one pass, and replay the candidate
    model's hand-off over the steps from the MQAs stored before the first step's window (the episodes starting
    from then on are compared with the stored ones); nothing is written. Shard by shard (``shards``, else as a
    backfill's), steps in chunks of :data:`ROWS_PER_CHUNK` score rows: memory is bounded by a shard, not the CRM."""
    steps = sorted(pd.Timestamp(step) for step in steps)
    counts, mqas = zip(*(_what_if_shard(warehouse, steps, model, baseline, policy, shard, accounts)
                         for shard in _account_groups(warehouse, steps, model, accounts, shards)), strict=True)
    per_step = pd.concat(counts).groupby("as_of", sort=True)[list(_STEP_COUNTS)].sum()
    mqas = pd.concat(mqas, ignore_index=True).sort_values(["trigger_at", "account_id"], ignore_index=True)
    since = steps[0] - model.window
    rows = []
    for as_of, previous in zip(steps, [since, *steps[:-1]], strict=True):
        step = per_step.loc[as_of]  # every shard counts every step
        moment = mqas["trigger_at"].gt(previous) & mqas["trigger_at"].le(as_of)
        rows.append({"as_of": as_of, **_step_summary(step), "mqas_fired": int((moment & mqas["fired"]).sum()),
                     "mqas_would_fire": int((moment & mqas["would_fire"]).sum())})
    return PeriodWhatIf(pd.DataFrame(rows), mqas)


def _account_groups(warehouse: Warehouse, steps: list[pd.Timestamp], model: ScoringModel,
                    accounts: list[str] | None, shards: int | None) -> list[Shard | None]:
    """What a period what-if goes through in turn: the chosen ``accounts`` at once (None), else every shard."""
    return [None] if accounts else all_shards(shard_total(warehouse, steps[-1], model, shards))


def _step_summary(step: pd.Series) -> dict[str, int | float]:
    """:func:`abm_sla.domain.whatif.summarize`'s counts of one step, from the counts summed over the shards."""
    accounts = int(step["accounts"])
    return {"accounts": accounts, **{name: int(step[name]) for name in _STEP_COUNTS[1:-1]},
            "mean_delta": round(float(step["delta_sum"]) / accounts, 2) if accounts else 0.0}


def _what_if_shard(
    warehouse: Warehouse, steps: list[pd.Timestamp], model: ScoringModel, baseline: ScoringModel,
    policy: SlaPolicy, shard: Shard | None, accounts: list[str] | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One shard's (or the chosen accounts') per-step counts (:data:`_STEP_COUNTS`) and MQAs side by side."""
    crm = CrmView(warehouse)
    first, last = steps[0], steps[-1]
    signals = stages.read_signals(crm, last, last - first + 2 * max(model.window, baseline.window), shard, accounts)
    listed = stages.target_list(warehouse, crm, policy, shard, accounts)
    tables = (signals.accounts, signals.contacts, signals.activities, signals.intent_signals)
    per_chunk = max(1, ROWS_PER_CHUNK // max(1, len(signals.accounts)))
    counts = []
    for start in range(0, len(steps), per_chunk):
        chunk = steps[start:start + per_chunk]
        candidates, _ = step_candidates(signals.accounts, chunk, listed)
        before = scoring.score_at(candidates, *tables, baseline, with_reasons=False) if len(candidates) else None
        after = scoring.score_at(candidates, *tables, model, with_reasons=False) if len(candidates) else None
        for as_of in chunk:
            at = before["at"].eq(as_of) if before is not None else None
            if at is None or not at.any():  # no account existed (or was listed) then
                counts.append({"as_of": as_of, **dict.fromkeys(_STEP_COUNTS, 0)})
                continue
            diff = whatif.score_diff(before[at], after[at.to_numpy()], baseline.version, model.version)
            summary = whatif.summarize(diff)
            counts.append({"as_of": as_of, **{name: summary[name] for name in _STEP_COUNTS[:-1]},
                           "delta_sum": int(diff["total_delta"].sum())})
    stored = _stored_mqas(warehouse, signals.accounts["account_id"])
    since = first - model.window  # the first step's window: episodes starting from there on are compared
    fired = handoff.replay_steps(*tables, stages.read_status_changes(crm, last, shard, accounts),
                                 stored[stored["trigger_at"] <= since], model, steps, policy.episode_end_statuses(),
                                 listed)
    live = stored[(stored["trigger_at"] > since) & (stored["trigger_at"] <= last)]
    side_by_side = _side_by_side(live, fired[fired["trigger_at"] > since])
    return pd.DataFrame(counts, columns=["as_of", *_STEP_COUNTS]), side_by_side


def _side_by_side(live: pd.DataFrame, fired: pd.DataFrame) -> pd.DataFrame:
    """The MQAs of a period: ``fired`` (stored) and ``would_fire`` (the candidate model), one row per episode start."""
    keys = ["account_id", "trigger_at"]
    both = live[keys].assign(fired=True).merge(fired[keys].assign(would_fire=True), on=keys, how="outer")
    both = both.assign(fired=both["fired"].eq(True), would_fire=both["would_fire"].eq(True))  # True or missing
    return both.sort_values(["trigger_at", "account_id"], ignore_index=True)


def store_period_scores(
    warehouse: Warehouse, steps: Sequence[pd.Timestamp], model: ScoringModel, policy: SlaPolicy | None, run_id: str,
    accounts: list[str] | None = None, shards: int | None = None,
) -> int:
    """Keep a period what-if's scores: the candidate model's score changes at every step (written once, shard by
    shard) and a scoring run of it per step (of ``accounts``, or of every account); returns the rows written."""
    steps = sorted(pd.Timestamp(step) for step in steps)
    crm = CrmView(warehouse)
    changed: dict[pd.Timestamp, int] = {}
    with undo.logged_once(run_id):
        for shard in _account_groups(warehouse, steps, model, accounts, shards):
            signals = stages.read_signals(crm, steps[-1], steps[-1] - steps[0] + model.window, shard, accounts, model)
            listed = stages.target_list(warehouse, crm, policy, shard, accounts)
            for as_of, count in store_score_steps(warehouse, signals, steps, model, listed, run_id).items():
                changed[as_of] = changed.get(as_of, 0) + count
    version = incremental.config_version(*stages.score_configs(warehouse, model, policy))
    position = warehouse.journal_position()
    with warehouse.engine.begin() as connection:
        for as_of in steps:
            planned = incremental.Plan("score", as_of, version, position)
            incremental.record(connection, planned, run_id, stages.utc_now(),
                               {"scores_changed": changed.get(as_of, 0)}, accounts=accounts,
                               model_version=model.version)
    return sum(changed.values())
