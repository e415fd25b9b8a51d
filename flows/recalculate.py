"""Recalculate / what-if: re-score accounts with a scoring model as of a moment.

A dry run writes nothing to the warehouse: it reports, per account, the score before (the
baseline model) and after (the given model), who would newly pass or drop below the hand-off
and which MQAs would fire, as a Prefect table artifact and a CSV. Without dry run the new
scores are stored in ``score_history`` under the model's version and the run is logged in
``runs`` (kind ``recalculate``) with that version; MQAs, clocks and escalations are untouched.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from abm_sla.domain import frames, handoff, marketing, scoring, whatif
from abm_sla.infra import atomic
from abm_sla.services import backfill, exports, stages
from abm_sla.services.config_files import load_model, load_policy
from abm_sla.services.summary import counts_line
from abm_sla.warehouse import schema
from abm_sla.warehouse.view import CrmView
from flows.parameters import InvalidParameters, RecalculateParameters, resolve_database_url, validated
from tasks.common import only_in_prefect, run_logger, utc_now, warehouse

ARTIFACT_ROWS = 500


@task(name="what-if-diff", cache_policy=NO_CACHE)
def what_if_diff(
    db_url: str, as_of: pd.Timestamp, accounts: list[str], model_path: str | None,
    baseline_path: str | None, policy_path: str | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score the accounts with both models; returns (diff, candidate scores)."""
    store = warehouse(db_url)
    model, baseline, policy = load_model(model_path), load_model(baseline_path), load_policy(policy_path)
    lookback = pd.Timedelta(days=2 * max(model.window_days, baseline.window_days))
    crm = CrmView(store)
    signals = stages.read_signals(crm, as_of, lookback)
    chosen = signals.accounts
    if accounts:
        chosen = chosen[chosen["account_id"].isin(accounts)].reset_index(drop=True)
    listed = stages.target_list(store, crm, policy, None, None)  # the policy's target account list, if it limits
    if listed is not None:  # scoring and the hand-off are limited to the list: off-list accounts have no score
        chosen = chosen[marketing.on_list_at(listed, chosen["account_id"], as_of).to_numpy(dtype=bool)]
        chosen = chosen.reset_index(drop=True)
    args = (chosen, signals.contacts, signals.activities, signals.intent_signals)
    before = scoring.score_accounts(*args, baseline, as_of)
    after = scoring.score_accounts(*args, model, as_of)
    prior = store.read_table(schema.mqas)[["account_id", "trigger_at"]]
    fired = handoff.replay_handoffs(
        *args, stages.read_status_changes(crm, as_of), prior, model, as_of, end_statuses=policy.episode_end_statuses(),
        listed=listed,
    )
    diff = whatif.score_diff(before, after, baseline.version, model.version)
    return whatif.with_would_fire(diff, fired), after


@task(name="what-if-policy", cache_policy=NO_CACHE)
def what_if_policy(
    db_url: str, as_of: pd.Timestamp, accounts: list[str], policy_path: str | None, baseline_path: str | None,
) -> pd.DataFrame:
    """The stored MQAs' clocks under both policies as of ``as_of``: the per-clock diff."""
    store = warehouse(db_url)
    policy, baseline = load_policy(policy_path), load_policy(baseline_path)
    crm = CrmView(store)
    mqas = store.read_table(schema.mqas)
    chosen = accounts or None
    if chosen:
        mqas = mqas[mqas["account_id"].isin(chosen)]
    args = (mqas, crm.read_kind("activities", types=frames.SALES_TOUCHES + frames.OWNER_EVENTS, accounts=chosen),
            stages.read_status_changes(crm, as_of, accounts=chosen), crm.read_kind("users"),
            crm.read_kind("opportunities", accounts=chosen))
    regional = crm.read_kind("accounts", accounts=chosen) if policy.regions or baseline.regions else None
    before = whatif.policy_clocks(*args, baseline, as_of, regional)
    after = whatif.policy_clocks(*args, policy, as_of, regional)
    return whatif.clock_diff(before, after, baseline.name, policy.name)


@task(name="store-recalculated-scores", cache_policy=NO_CACHE)
def store_scores(
    db_url: str, scores: pd.DataFrame, as_of: pd.Timestamp, model_path: str | None, accounts: list[str], summary: dict,
    policy_path: str | None = None,
) -> str:
    """Keep the new scores that changed under their model version and log the run (accounts off the target
    account list, when the policy limits scoring to it: not scored); returns the run id."""
    store = warehouse(db_url)
    run_id = uuid.uuid4().hex
    store.start_run(run_id, "recalculate", as_of.to_pydatetime(), utc_now())
    model = load_model(model_path)
    stages.store_recalculated(store, scores, as_of, model, run_id, accounts or None, load_policy(policy_path))
    store.finish_run(run_id, "completed", utc_now(), summary, model.version)
    return run_id


@flow(name="recalculate", validate_parameters=False)  # the form is checked below, in one readable line
def recalculate(params: RecalculateParameters = RecalculateParameters()) -> dict:
    """Re-score accounts with a model as of a moment; dry run = report only, else store the new scores."""
    params = validated(RecalculateParameters, params)
    load_policy(params.policy_path)  # bad files fail before any work
    model = load_model(params.model_path)
    load_model(params.baseline_model_path)
    db_url = resolve_database_url(params.database_secret)
    as_of = params.as_of_or_now()
    _check_accounts(db_url, params.accounts)
    if params.period_start:
        return _period(db_url, params)
    diff, scores = what_if_diff(db_url, as_of, params.accounts, params.model_path, params.baseline_model_path,
                                params.policy_path)
    summary = {**whatif.summarize(diff), "as_of": as_of.isoformat(), "model_before": _first(diff, "model_before"),
               "model_after": model.version, "dry_run": params.dry_run}
    summary["csv"] = str(_write_csv(diff, params.out_dir, model.version, as_of, params.dry_run))
    if not params.dry_run:
        summary["run_id"] = store_scores(db_url, scores, as_of, params.model_path, params.accounts, summary,
                                         params.policy_path)
    _publish(diff, summary)
    if params.policy_path or params.baseline_policy_path:
        clocks = what_if_policy(db_url, as_of, params.accounts, params.policy_path, params.baseline_policy_path)
        summary["policy"] = _policy_summary(clocks, params.out_dir, as_of)
    get_run_logger().info("what-if as of %s with model %s: %s", as_of, model.version, counts_line(summary))
    return summary


@task(name="what-if-period", cache_policy=NO_CACHE)
def what_if_period(
    db_url: str, steps: list[pd.Timestamp], accounts: list[str], model_path: str | None, baseline_path: str | None,
    policy_path: str | None,
) -> backfill.PeriodWhatIf:
    """Both models at every step of the period in one pass (:func:`abm_sla.services.backfill.what_if_period`)."""
    return backfill.what_if_period(warehouse(db_url), steps, load_model(model_path), load_model(baseline_path),
                                   load_policy(policy_path), accounts or None)


@task(name="store-period-scores", cache_policy=NO_CACHE)
def store_period_scores(
    db_url: str, steps: list[pd.Timestamp], model_path: str | None, accounts: list[str], summary: dict,
    policy_path: str | None = None,
) -> str:
    """Keep the model's scores at every step of the period (changes only) and log the run; returns its id."""
    store, model, run_id = warehouse(db_url), load_model(model_path), uuid.uuid4().hex
    store.start_run(run_id, "recalculate", steps[-1].to_pydatetime(), utc_now())
    backfill.store_period_scores(store, steps, model, load_policy(policy_path), run_id, accounts or None)
    store.finish_run(run_id, "completed", utc_now(), summary, model.version)
    return run_id


def _period(db_url: str, params: RecalculateParameters) -> dict:
    """A what-if over a period: per step the score changes and the MQAs fired vs those that would fire (table
    artifact and two CSVs); without dry run the model's scores at every step are stored."""
    steps, model = params.period(), load_model(params.model_path)
    result = what_if_period(db_url, steps, params.accounts, params.model_path, params.baseline_model_path,
                            params.policy_path)
    folder = Path(params.out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = f"{steps[0].strftime('%Y%m%dT%H%M%SZ')}-{steps[-1].strftime('%Y%m%dT%H%M%SZ')}"
    paths = {name: folder / f"whatif-{_slug(model.version)}-{name}-{stamp}.csv" for name in ("steps", "mqas")}
    atomic.write_csv(paths["steps"], result.steps.assign(as_of=exports.iso_utc(result.steps["as_of"])))
    atomic.write_csv(paths["mqas"], result.mqas.assign(trigger_at=exports.iso_utc(result.mqas["trigger_at"])))
    summary = {"period_start": steps[0].isoformat(), "as_of": steps[-1].isoformat(), "steps": len(steps),
               "model_after": model.version, "dry_run": params.dry_run,
               "mqas_fired": int(result.mqas["fired"].sum()), "mqas_would_fire": int(result.mqas["would_fire"].sum()),
               "csv": str(paths["steps"].resolve()), "mqas_csv": str(paths["mqas"].resolve())}
    if not params.dry_run:
        summary["run_id"] = store_period_scores(db_url, steps, params.model_path, params.accounts, summary,
                                                params.policy_path)
    only_in_prefect(create_table_artifact, exports.spreadsheet_safe(result.steps.assign(
        as_of=exports.iso_utc(result.steps["as_of"]))).to_dict(orient="records"), key="whatif-period",
        description=f"What-if {model.version} over {len(steps)} steps: per step")
    run_logger().info("what-if over %d steps with model %s: %s", len(steps), model.version, summary)
    return summary


def _policy_summary(clocks: pd.DataFrame, out_dir: str, as_of: pd.Timestamp) -> dict:
    """Publish the policy what-if (table of changed clocks, per-clock counts, CSV); returns its summary."""
    before, after = _first(clocks, "policy_before"), _first(clocks, "policy_after")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"whatif-policy-{_slug(str(after))}-{as_of.strftime('%Y%m%dT%H%M%SZ')}.csv"
    stamps = ["trigger_at", "due_at_before", "due_at_after", "met_at_before", "met_at_after"]
    atomic.write_csv(path, exports.spreadsheet_safe(clocks.assign(**{c: exports.iso_utc(clocks[c]) for c in stamps})))
    counts = whatif.summarize_clocks(clocks)
    changed = clocks[clocks["change"] != whatif.UNCHANGED].head(ARTIFACT_ROWS)
    create_table_artifact(changed.assign(**{c: exports.iso_utc(changed[c]) for c in stamps}).to_dict(orient="records"),
                          key="whatif-policy-diff", description=f"What-if policy {before} → {after}: changed clocks")
    create_table_artifact(counts.to_dict(orient="records"), key="whatif-policy-summary",
                          description=f"What-if policy {before} → {after}: met / missed / pending per clock")
    return {"policy_before": before, "policy_after": after, "clocks": len(clocks),
            "clocks_changed": int((clocks["change"] != whatif.UNCHANGED).sum()), "csv": str(path.resolve())}


def _check_accounts(db_url: str, accounts: list[str]) -> None:
    if not accounts:
        return
    known = set(CrmView(warehouse(db_url)).read_kind("accounts")["account_id"])
    unknown = [account for account in accounts if account not in known]
    if unknown:
        shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
        raise InvalidParameters(f"invalid parameters: accounts not in the warehouse: {shown}")


def _first(frame: pd.DataFrame, column: str) -> str | None:
    return str(frame[column].iloc[0]) if len(frame) else None


def _write_csv(diff: pd.DataFrame, out_dir: str, version: str, as_of: pd.Timestamp, dry_run: bool) -> Path:
    """The diff as ``whatif-<model>-<as of>-dry-run.csv`` (a dry run) or ``...-stored.csv`` (scores stored):
    the run that stores a what-if keeps the dry run's file beside its own."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    kind = "dry-run" if dry_run else "stored"
    path = folder / f"whatif-{_slug(version)}-{as_of.strftime('%Y%m%dT%H%M%SZ')}-{kind}.csv"
    atomic.write_csv(path, exports.spreadsheet_safe(_iso(diff)))
    return path.resolve()


def _iso(diff: pd.DataFrame) -> pd.DataFrame:
    return diff.assign(would_fire_at=exports.iso_utc(diff["would_fire_at"]))


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-") or "model"


def _publish(diff: pd.DataFrame, summary: dict) -> None:
    """A table artifact of the accounts that change (largest first) and a markdown summary."""
    changed = diff[diff["change"] != whatif.UNCHANGED]
    shown = _iso(changed.head(ARTIFACT_ROWS))
    create_table_artifact(shown.to_dict(orient="records"), key="whatif-diff",
                          description=f"What-if {summary['model_before']} → {summary['model_after']} as of "
                                      f"{summary['as_of']}: accounts whose score changes (first {ARTIFACT_ROWS})")
    mode = "dry run — nothing written" if summary["dry_run"] else f"applied (run {summary.get('run_id')})"
    lines = [
        f"# What-if: model {summary['model_after']} vs {summary['model_before']}", "",
        f"As of {summary['as_of']} — {mode}", "",
        "| | accounts |", "|---|---:|",
        f"| re-scored | {summary['accounts']} |",
        f"| newly pass the hand-off | {summary['newly_pass']} |",
        f"| drop below the hand-off | {summary['drop_below']} |",
        f"| score changed, same hand-off | {summary['score_changed']} |",
        f"| unchanged | {summary['unchanged']} |",
        f"| MQAs that would fire now | {summary['mqas_would_fire']} |", "",
        f"Mean score change: {summary['mean_delta']:+}. Full diff: `{summary['csv']}`",
    ]
    create_markdown_artifact("\n".join(lines), key="whatif-summary", description="What-if summary")
