"""The ``abm-sla`` command line (SPEC section 7). Errors end as one line and a non-zero exit."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from abm_sla.errors import AbmSlaError
from abm_sla.infra import settings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Run a sales-marketing SLA on CRM data: score, hand off, route, measure, escalate, report.",
)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: $ABM_SLA_DATABASE_URL, then ./abm-sla.db)."),
]


def _flows():
    """Import the Prefect flows only when a command runs them (Prefect is slow to import)."""
    settings.configure_prefect_defaults()
    from flows import pipeline

    if not os.environ.get("ABM_SLA_DEBUG"):
        for handler in logging.getLogger().handlers:  # Prefect's console handler sits on the root logger
            if type(handler).__module__.startswith("prefect"):
                handler.addFilter(_drop_expected_failures)
    return pipeline


RUNTIME_ENV = "ABM_SLA_RUNTIME"


def _use_prefect(dask: str | None = None) -> bool:
    """Whether a run goes through Prefect flows (a Prefect API is configured, or shards go to Dask) or calls
    the same code directly (no Prefect server to start). ``ABM_SLA_RUNTIME=prefect|direct`` overrides."""
    chosen = os.environ.get(RUNTIME_ENV, "").strip().lower()
    if chosen in ("prefect", "direct"):
        return chosen == "prefect"
    if chosen:
        raise AbmSlaError(f"{RUNTIME_ENV}={chosen!r}: use prefect or direct (empty = prefect when PREFECT_API_URL "
                          "is set)")
    if dask:
        return True
    settings.configure_prefect_defaults()
    from tasks.common import prefect_api_configured

    return prefect_api_configured()


@contextmanager
def _runtime(use_prefect: bool) -> Iterator[None]:
    """Flows as Prefect runs, or their bodies called directly (``tasks.common.direct_calls``)."""
    if use_prefect:
        yield
        return
    from tasks.common import direct_calls

    with direct_calls():
        yield


def _body(flow_function, use_prefect: bool):
    """The flow, or its plain function when running directly."""
    return flow_function if use_prefect else flow_function.fn


def _drop_expected_failures(record: logging.LogRecord) -> bool:
    """Keep Prefect's console quiet about an error the CLI reports in one line itself.

    An :class:`AbmSlaError` is not logged at all, nor are the flow and task runs' failure lines; any other
    record keeps its log line without the traceback (``ABM_SLA_DEBUG=1`` shows it).
    """
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, AbmSlaError):
        return False
    if record.levelno >= logging.ERROR and record.name.startswith(("prefect.flow_runs", "prefect.task_runs")):
        return False  # "Finished in state Failed(...)": the CLI ends with the error's one line (the UI keeps the log)
    record.exc_info, record.exc_text = None, None
    return True


SourceOption = Annotated[str, typer.Option(help="Where CRM data comes from: files, salesforce or hubspot.")]
PathOption = Annotated[Path | None, typer.Option(help="The CRM export folder (source files).")]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="abm-sla.yaml: CRM sources, system of record, write-back (default ./abm-sla.yaml)."),
]


def _check_source(source: str, path: Path | None, config: Path | None) -> None:
    """Fail fast, in one line, on a source that cannot be read."""
    from abm_sla.crm.config import load_app_config
    from abm_sla.crm.sync import SOURCE_NAMES

    if source not in SOURCE_NAMES:
        raise AbmSlaError(f"unknown source {source!r}: choose one of {', '.join(SOURCE_NAMES)}")
    app_config = load_app_config(config)
    if source != "files":
        return
    folder = path or (Path(app_config.sources.files.path) if app_config.sources.files.path else None)
    if folder is None:
        raise AbmSlaError("--path is required with --source files (or sources.files.path in abm-sla.yaml)")
    if not folder.is_dir():
        raise AbmSlaError(f"export folder {folder} does not exist or is not a folder")
    from flows.parameters import check_export_folder

    try:
        check_export_folder(str(folder))
    except ValueError as error:
        raise AbmSlaError(str(error).replace(" on the worker", "")) from None


ShardsOption = Annotated[int, typer.Option(
    min=0, help="Split accounts into N shard tasks (0 = $ABM_SLA_SHARDS, else one per 50,000).")]


def _progress():
    """Progress lines on stderr when it is a terminal (:mod:`abm_sla.infra.progress`)."""
    from abm_sla.infra.progress import console_progress

    return console_progress(sys.stderr.isatty())


@contextmanager
def dask_cluster(address: str | None) -> Iterator[str | None]:
    """The Dask scheduler address to use: as given, or a local cluster started for the run (``local[:N]``)."""
    if not address or not address.startswith("local"):
        yield address
        return
    workers = address.partition(":")[2]
    if workers and not workers.isdigit():
        raise AbmSlaError(f"--dask {address!r}: use local or local:N (N workers), or a scheduler address")
    from distributed import LocalCluster

    with LocalCluster(n_workers=int(workers or 2), threads_per_worker=1, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@app.command()
def run(
    as_of: Annotated[str, typer.Option("--as-of", help="The moment to compute for (ISO 8601; naive = UTC).")],
    source: SourceOption = "files",
    path: PathOption = None,
    db: DbOption = None,
    model: Annotated[Path | None, typer.Option(help="Scoring model YAML (default config/scoring.yaml).")] = None,
    policy: Annotated[Path | None, typer.Option(help="SLA policy YAML (default config/sla.yaml).")] = None,
    config: ConfigOption = None,
    full: Annotated[bool, typer.Option("--full", help="Recompute every account, not only what changed.")] = False,
    shards: ShardsOption = 0,
    dask: Annotated[str | None, typer.Option(
        "--dask", help="Run the shards on a Dask scheduler (tcp://host:8786), or 'local[:N]' for a local cluster "
        "of N workers (default $ABM_SLA_DASK_ADDRESS; none = in this process).")] = None,
    allow_future: Annotated[bool, typer.Option(
        "--allow-future", help="Compute for an AS_OF more than $ABM_SLA_FUTURE_TOLERANCE_MINUTES (10) ahead of the "
        "clock (refused otherwise, as a likely typo).")] = False,
) -> None:
    """Load the CRM data, score as of AS_OF, fire and route MQAs, evaluate every SLA clock (then write back).

    Only the accounts whose data changed since the last run at or before AS_OF are recomputed
    (the results are those of a full recompute); --full recomputes everything."""
    from abm_sla.services.config_files import load_model, load_policy
    from abm_sla.services.stages import check_not_future, parse_as_of, utc_now
    from abm_sla.warehouse import Warehouse

    _check_source(source, path, config)
    as_of_ts = parse_as_of(as_of)
    check_not_future(as_of_ts, utc_now(), settings.future_tolerance(), allow_future=allow_future)
    load_model(model)  # fail fast on bad config files, before anything runs
    load_policy(policy)
    db_url = settings.database_url(db)
    Warehouse(db_url)  # fail fast on an unreachable database
    use_prefect = _use_prefect(dask or os.environ.get("ABM_SLA_DASK_ADDRESS"))
    with settings.database_url_env(db_url), dask_cluster(dask) as address, _runtime(use_prefect), \
            _progress():
        summary = _body(_flows().run_pipeline, use_prefect)(  # the URL is never a flow parameter
            as_of=as_of_ts.isoformat(), source=source, path=str(path) if path else None,
            model_path=str(model) if model else None, policy_path=str(policy) if policy else None,
            config_path=str(config) if config else None, full=full, shards=shards, dask_address=address or "",
            allow_future=allow_future,
        )
    from abm_sla.services.summary import print_run_summary

    print_run_summary(summary)


@app.command()
def backfill(
    start: Annotated[str, typer.Option("--start", help="The first as-of (ISO 8601; naive = UTC).")],
    end: Annotated[str, typer.Option("--end", help="The last as-of, inclusive (ISO 8601; naive = UTC).")],
    step_hours: Annotated[float, typer.Option("--step-hours", help="Hours between two as-ofs (24 = daily).")] = 24,
    full: Annotated[bool, typer.Option("--full", help="Recompute every account at every step (default: what "
                                       "changed since the step before; the same results).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list the steps to run and those done; write "
                                          "nothing.")] = False,
    engine: Annotated[str, typer.Option("--engine", help="steps: the pipeline as of each step in turn; one-pass: "
                                        "each shard's signals read once for every step (the same results).")
                      ] = "steps",
    source: SourceOption = "files",
    path: PathOption = None,
    db: DbOption = None,
    model: Annotated[Path | None, typer.Option(help="Scoring model YAML (default config/scoring.yaml).")] = None,
    policy: Annotated[Path | None, typer.Option(help="SLA policy YAML (default config/sla.yaml).")] = None,
    config: ConfigOption = None,
    shards: ShardsOption = 0,
    dask: Annotated[str | None, typer.Option(
        "--dask", help="Run the shards on a Dask scheduler, or 'local[:N]' (default $ABM_SLA_DASK_ADDRESS).")] = None,
) -> None:
    """Run the pipeline as of every step from START to END, in order (a re-run resumes after the last finished
    step). With --path the export folder is loaded once first; without it, the warehouse's data is used."""
    from abm_sla.services.config_files import load_model, load_policy
    from abm_sla.services.stages import parse_as_of
    from abm_sla.warehouse import Warehouse

    if engine not in ("steps", "one-pass"):
        raise AbmSlaError(f"--engine {engine!r}: use steps or one-pass")
    if path is not None or source != "files":
        _check_source(source, path, config)
    first, last = parse_as_of(start), parse_as_of(end)
    if last < first:
        raise AbmSlaError(f"--end {last.isoformat()} is before --start {first.isoformat()}")
    if not step_hours > 0:
        raise AbmSlaError(f"--step-hours must be more than 0 (24 = daily), got {step_hours:g}")
    load_model(model)  # fail fast on bad config files, before anything runs
    load_policy(policy)
    db_url = settings.database_url(db)
    Warehouse(db_url)  # fail fast on an unreachable database
    use_prefect = _use_prefect(dask or os.environ.get("ABM_SLA_DASK_ADDRESS"))
    fields = {"start": first.isoformat(), "end": last.isoformat(), "step_hours": step_hours, "full": full,
              "dry_run": dry_run, "engine": engine, "source": source, "path": str(path) if path else "",
              "model_path": str(model) if model else "", "policy_path": str(policy) if policy else "",
              "config_path": str(config) if config else "", "shards": shards}
    with settings.database_url_env(db_url), dask_cluster(dask) as address, _runtime(use_prefect), _progress():
        _flows()  # Prefect's defaults first
        from flows.backfill import backfill as backfill_flow
        from flows.parameters import BackfillParameters, validated

        params = validated(BackfillParameters, {**fields, "dask_address": address or ""})
        summaries = _body(backfill_flow, use_prefect)(params)
    _print_backfill(summaries, dry_run)


def _print_backfill(summaries: list[dict], dry_run: bool) -> None:
    """One line per step: what it did (or, in a dry run, whether it is done already)."""
    if dry_run:
        for step in summaries:
            typer.echo(f"{step['as_of']}  {step['status']}")
        todo = sum(step["status"] == "to run" for step in summaries)
        typer.echo(f"dry run: {todo} of {len(summaries)} steps to run, nothing written")
        return
    for step in summaries:
        scoring, handoff, sla = step.get("scoring", {}), step.get("handoff", {}), step.get("sla", {})
        typer.echo(f"{step['as_of']}  scored {scoring.get('accounts_scored', 0)}, "
                   f"{scoring.get('scores_changed', 0)} changed, {handoff.get('mqas_fired', 0)} MQAs fired, "
                   f"{sla.get('clocks_missed', 0)} clocks missed, {sla.get('escalations', 0)} escalations")
    typer.echo(f"backfill: {len(summaries)} steps ran" if summaries else "backfill: every step was done already")


@app.command()
def sync(
    source: SourceOption = "files",
    path: PathOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Bring the CRM's changes since the last sync into the warehouse (resumes where an interrupted sync stopped)."""
    from abm_sla.warehouse import Warehouse
    from flows.parameters import SyncParameters, validated

    _check_source(source, path, config)
    db_url = settings.database_url(db)
    Warehouse(db_url)
    params = validated(SyncParameters, {"source": source, "path": str(path) if path else None,
                                        "config_path": str(config) if config else None})
    use_prefect = _use_prefect()
    with settings.database_url_env(db_url), _runtime(use_prefect), _progress():
        summary = _body(_flows().crm_sync, use_prefect)(params)
    from abm_sla.services.summary import print_sync_summary

    for name, objects in summary.items():
        print_sync_summary(name, objects)


@app.command()
def export(
    kind: Annotated[str, typer.Argument(
        help="scores, mqas, sla, escalations, metrics, engagement, opportunities or intent-list")],
    out: Annotated[Path, typer.Option("--out", help="The CSV file to write.")],
    db: DbOption = None,
    period: Annotated[str | None, typer.Option(
        help="metrics (required), mqas (fired in it, verdicts as of its end; default: all, as of the latest run), "
             "engagement (default: the latest run's quarter), opportunities (created in it; default: all), "
             "intent-list (default: the latest run's week): the week (2026-W13), month (2026-03) or quarter "
             "(2026-Q1).")] = None,
    policy: Annotated[Path | None, typer.Option(
        help="SLA policy YAML for verdicts, targets and pipeline credit (mqas, metrics, opportunities; default "
             "config/sla.yaml).")] = None,
) -> None:
    """Write a CSV export of the warehouse."""
    from abm_sla.domain import scorecard
    from abm_sla.services import exports
    from abm_sla.services.config_files import load_policy

    if kind not in exports.KINDS:
        raise AbmSlaError(f"unknown export {kind!r}: choose one of {', '.join(exports.KINDS)}")
    if kind == "metrics" and not period:
        raise AbmSlaError("export metrics needs --period (2026-Q1, 2026-03 or 2026-W13)")
    if period:
        scorecard.parse_period(period)  # a bad period fails before the database is touched
    rows = exports.export(_existing_warehouse(db), kind, out, period=period, policy=load_policy(policy))
    typer.echo(f"wrote {rows} {kind} rows to {out}")


def _existing_warehouse(db: str | None):
    """The warehouse to read; a SQLite file that does not exist is an error (a mistyped ``--db`` path
    would otherwise be created as an empty warehouse and read as one)."""
    import sqlalchemy as sa

    from abm_sla.warehouse import Warehouse

    url = settings.database_url(db)
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        parsed = None  # Warehouse() says what is wrong with it, without the password
    if parsed is not None and parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
            and not parsed.database.startswith("file:") and not Path(parsed.database).is_file():
        raise AbmSlaError(f"no warehouse at {parsed.database}: check --db (`abm-sla run` creates one)")
    return Warehouse(url)


@app.command()
def report(
    kind: Annotated[str, typer.Argument(help="weekly, monthly or quarterly")],
    period: Annotated[str, typer.Option(help="2026-W14 (weekly), 2026-03 (monthly), 2026-Q1 (quarterly).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the HTML, Markdown and CSV files.")],
    db: DbOption = None,
    policy: Annotated[Path | None, typer.Option(help="SLA policy YAML (default config/sla.yaml).")] = None,
    model: Annotated[Path | None, typer.Option(help="Scoring model YAML (default config/scoring.yaml).")] = None,
) -> None:
    """Write the weekly SLA dashboard, the monthly review or the quarterly renegotiation report."""
    from abm_sla.infra.progress import console_progress
    from abm_sla.services.reporting import generate_report

    _existing_warehouse(db)  # a mistyped SQLite path is an error, not an empty report
    with console_progress(sys.stderr.isatty()):
        paths = generate_report(settings.database_url(db), kind, period, out, policy_path=policy,
                                scoring_path=model)
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the sample CRM, warehouse, exports and reports.")] = Path(
        "abm-sla-demo"
    ),
    accounts: Annotated[int, typer.Option(help="How many accounts the sample CRM has.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the sample CRM.")] = 7,
) -> None:
    """Make a sample CRM, run the whole pipeline daily over its quarter, export and summarize."""
    from abm_sla.infra.progress import console_progress
    from abm_sla.services import demo as demo_module

    use_prefect = _use_prefect()  # progress on a terminal as a bar, else (make demo > log) as plain lines
    with _runtime(use_prefect), console_progress(plain=not sys.stderr.isatty()):
        demo_module.run_demo(out, accounts, seed, _body(_flows().run_steps, use_prefect))


@app.command()
def runs(
    db: DbOption = None,
    limit: Annotated[int, typer.Option(min=1, help="How many runs to list, newest first.")] = 20,
) -> None:
    """List the recent runs: id, kind, as of, status (a killed run shows as dead), start and end."""
    from rich.console import Console
    from rich.table import Table

    from abm_sla.warehouse import undo

    listed = _one_row_per_step(undo.list_runs(_existing_warehouse(db)))
    table = Table(title="Runs (newest first)")
    for column in ("run id", "kind", "as of", "status", "started", "finished", "Prefect flow run"):
        table.add_column(column)
    for run in listed.head(limit).itertuples():
        table.add_row(run.run_id, run.kind, _moment(run.as_of), run.status, _moment(run.started_at),
                      _moment(run.finished_at), run.flow_run_id if isinstance(run.flow_run_id, str) else "")
    Console(width=200).print(table)


def _one_row_per_step(runs):
    """The runs without a backfill's bookkeeping rows (kind ``backfill-step``, one per step beside the step's
    own run): each step is listed once, as its run (the one undo takes), kind ``backfill-step``."""
    steps = runs["kind"].eq("backfill-step")
    step_runs = {summary.get("pipeline_run_id") for summary in runs.loc[steps, "summary"] if isinstance(summary, dict)}
    runs = runs[~steps]
    return runs.assign(kind=runs["kind"].where(~runs["run_id"].isin(step_runs), "backfill-step"))


def _moment(value) -> str:
    return "" if value is None or value != value else value.isoformat().replace("+00:00", "Z")


@app.command()
def undo(
    run_id: Annotated[str, typer.Argument(help="The run to undo (`abm-sla runs` lists them).")],
    db: DbOption = None,
    and_later: Annotated[bool, typer.Option(
        "--and-later", help="Also undo every run started after it, newest first.")] = False,
) -> None:
    """Undo a run: remove its scores, MQAs (giving back their round-robin turns), clock evaluations,
    escalations and pending write-backs, and restore the state before it. Loaded CRM data stays."""
    from abm_sla.services.stages import utc_now
    from abm_sla.services.summary import describe_undone
    from abm_sla.warehouse import undo as undo_module

    for done in undo_module.undo_run(_existing_warehouse(db), run_id, utc_now(), and_later=and_later):
        typer.echo(describe_undone(done))
        if done.get("mqas_written_back"):
            typer.echo(f"warning: {done['mqas_written_back']} of its MQAs were written back to the CRM already; "
                       "their CRM tasks stay there", err=True)


docs_app = typer.Typer(no_args_is_help=True, help="Generated documentation: the metrics reference.")
app.add_typer(docs_app, name="docs")


@docs_app.command("metrics")
def docs_metrics(
    out: Annotated[Path | None, typer.Option("--out", help="Write here (default: print).")] = None,
) -> None:
    """The metrics reference (docs/metrics.md), generated from the metrics catalog."""
    from abm_sla.domain.metrics import reference_markdown

    text = reference_markdown()
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        raise AbmSlaError(f"cannot write {out}: {error.strerror or error}") from None
    typer.echo(f"wrote the metrics reference to {out}")


dispute_app = typer.Typer(no_args_is_help=True, help="Disputes on an account: open, note, close, reopen, list.")
app.add_typer(dispute_app, name="dispute")
AtOption = Annotated[str | None, typer.Option("--at", help="When (ISO 8601; default now).")]
ByOption = Annotated[str, typer.Option("--by", help="Who does it (a user id or a name).")]


def _at(value: str | None):
    from abm_sla.services.stages import parse_as_of, utc_now

    return parse_as_of(value).to_pydatetime() if value else utc_now()


@app.command()
def signoff(
    policy: Annotated[Path, typer.Option("--policy", help="The SLA policy file signed (its bytes are hashed).")],
    by: Annotated[str, typer.Option("--by", help="Who signs (a name).")],
    role: Annotated[str, typer.Option("--role", help="In which role (head of sales, head of marketing).")],
    at: AtOption = None,
    db: DbOption = None,
) -> None:
    """Record a signature of the SLA: who, in which role, when, and the policy file's version (SHA-256)."""
    import pandas as pd

    from abm_sla.warehouse import signoffs

    sha = signoffs.record(_existing_warehouse(db), policy, by, role, pd.Timestamp(_at(at)))
    typer.echo(f"signed policy {policy} version {sha[:12]} by {by} ({role})")


@dispute_app.command("open")
def dispute_open(
    account: Annotated[str, typer.Option("--account", help="The account's CRM id.")],
    disagreement: Annotated[str, typer.Option("--disagreement", help="What the sides disagree on.")],
    raised_by: Annotated[str, typer.Option("--raised-by", help="Who raised it.")],
    requested: Annotated[str, typer.Option("--requested", help="The resolution asked for.")],
    at: AtOption = None,
    db: DbOption = None,
) -> None:
    """Open a dispute on an account; prints its id and the first step's due date."""
    from abm_sla.warehouse import disputes

    dispute_id = disputes.open_dispute(_existing_warehouse(db), account, disagreement, raised_by, requested, _at(at))
    typer.echo(f"opened dispute {dispute_id} on {account}")


@dispute_app.command("note")
def dispute_note(
    dispute_id: Annotated[int, typer.Argument(help="The dispute's id.")],
    text: Annotated[str, typer.Option("--text", help="The note.")],
    by: ByOption,
    at: AtOption = None,
    db: DbOption = None,
) -> None:
    """Add a note to a dispute's history."""
    from abm_sla.warehouse import disputes

    disputes.add_note(_existing_warehouse(db), dispute_id, by, text, _at(at))
    typer.echo(f"noted on dispute {dispute_id}")


@dispute_app.command("close")
def dispute_close(
    dispute_id: Annotated[int, typer.Argument(help="The dispute's id.")],
    resolution: Annotated[str, typer.Option("--resolution", help="What was decided.")],
    by: ByOption,
    outcome: Annotated[str, typer.Option(
        "--outcome", help="agreed, upheld, overturned, sla_changed or withdrawn.")] = "agreed",
    at: AtOption = None,
    db: DbOption = None,
) -> None:
    """Close a dispute with its resolution (it leaves the weekly dashboard)."""
    from abm_sla.warehouse import disputes

    disputes.close_dispute(_existing_warehouse(db), dispute_id, resolution, by, _at(at), outcome)
    typer.echo(f"closed dispute {dispute_id} ({outcome})")


@dispute_app.command("reopen")
def dispute_reopen(
    dispute_id: Annotated[int, typer.Argument(help="The dispute's id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is reopened.")],
    by: ByOption,
    at: AtOption = None,
    db: DbOption = None,
) -> None:
    """Reopen a closed dispute: its steps start again from now."""
    from abm_sla.warehouse import disputes

    disputes.reopen_dispute(_existing_warehouse(db), dispute_id, by, reason, _at(at))
    typer.echo(f"reopened dispute {dispute_id}")


@dispute_app.command("list")
def dispute_list(
    all_: Annotated[bool, typer.Option("--all", help="Closed disputes too.")] = False,
    at: AtOption = None,
    db: DbOption = None,
    policy: Annotated[Path | None, typer.Option(help="SLA policy YAML, for the dispute steps.")] = None,
) -> None:
    """List the open disputes with their current step and due date (--all: closed ones too)."""
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from abm_sla.domain.disputes import current_steps
    from abm_sla.services.config_files import load_policy
    from abm_sla.warehouse import disputes

    rows, _ = disputes.read_disputes(_existing_warehouse(db))
    rows = rows if all_ else rows[rows["status"] == "open"]
    steps = current_steps(rows, load_policy(policy).disputes.steps, pd.Timestamp(_at(at)))
    table = Table(title="Disputes" if all_ else "Open disputes")
    for column in ("id", "account", "status", "raised by", "disagreement", "step", "due", "resolution"):
        table.add_column(column)
    for row, step in zip(rows.itertuples(), steps.itertuples(), strict=True):
        due = f"{_moment(step.step_due_at)}{' (overdue)' if step.overdue else ''}" if row.status == "open" else ""
        table.add_row(str(row.dispute_id), row.account_id, row.status, row.raised_by, row.disagreement,
                      f"{step.step} {step.step_name}" if row.status == "open" else "", due,
                      row.resolution if isinstance(row.resolution, str) else "")
    Console(width=160).print(table)


decision_app = typer.Typer(no_args_is_help=True, help="The monthly review's decisions: add, done, list.")
app.add_typer(decision_app, name="decision")


@decision_app.command("add")
def decision_add(
    month: Annotated[str, typer.Option("--month", help="The month of the review that decided it (2026-03).")],
    text: Annotated[str, typer.Option("--text", help="What was decided.")],
    owner: Annotated[str, typer.Option("--owner", help="Who owns it (a name or user id).")],
    due: Annotated[str | None, typer.Option("--due", help="When it is due (2026-04-30; optional).")] = None,
    at: AtOption = None,
    db: DbOption = None,
) -> None:
    """Record a decision the monthly review took; the next month's review shows it."""
    from abm_sla.warehouse import decisions

    decision_id = decisions.add_decision(_existing_warehouse(db), month, text, owner, _at(at), due)
    typer.echo(f"recorded decision {decision_id} of the {month.strip()} review (owner {owner.strip()})")


@decision_app.command("done")
def decision_done(
    decision_id: Annotated[int, typer.Argument(help="The decision's id.")],
    outcome: Annotated[str, typer.Option("--outcome", help="What came of it.")],
    at: AtOption = None,
    db: DbOption = None,
) -> None:
    """Mark a decision done with its outcome."""
    from abm_sla.warehouse import decisions

    decisions.mark_done(_existing_warehouse(db), decision_id, outcome, _at(at))
    typer.echo(f"decision {decision_id} done")


@decision_app.command("list")
def decision_list(
    month: Annotated[str | None, typer.Option("--month", help="Only the decisions of this review (2026-03).")] = None,
    db: DbOption = None,
) -> None:
    """List the reviews' decisions (oldest first)."""
    from rich.console import Console
    from rich.table import Table

    from abm_sla.warehouse import decisions

    rows = decisions.read_decisions(_existing_warehouse(db), month)
    table = Table(title="Review decisions" + (f" of {month}" if month else ""))
    for column in ("id", "month", "decision", "owner", "due", "status", "outcome"):
        table.add_column(column)
    for row in rows.itertuples():
        table.add_row(str(row.decision_id), row.month, row.text, row.owner, row.due or "", row.status,
                      row.outcome if isinstance(row.outcome, str) else "")
    Console(width=160).print(table)


review_app = typer.Typer(no_args_is_help=True, help="The quarterly account review: who attended.")
app.add_typer(review_app, name="review")


@review_app.command("attend")
def review_attend(
    period: Annotated[str, typer.Option("--period", help="The quarter of the review (2026-Q1).")],
    name: Annotated[str, typer.Option("--name", help="Who attended.")],
    side: Annotated[str, typer.Option("--side", help="Their side: sales or marketing.")],
    at: AtOption = None,
    db: DbOption = None,
) -> None:
    """Record that someone attended the quarterly account review; the quarterly report shows attendance."""
    from abm_sla.warehouse import decisions

    added = decisions.record_attendance(_existing_warehouse(db), period, name, side, _at(at))
    who = f"{name.strip()} ({side.strip().lower()})"
    typer.echo(f"recorded {who} at the {period.strip().upper()} review" if added
               else f"{who} is already recorded at the {period.strip().upper()} review")


propose_app = typer.Typer(no_args_is_help=True, help="Proposals backed by the warehouse's history.")
app.add_typer(propose_app, name="propose")


@propose_app.command("model")
def propose_model(
    train_until: Annotated[str, typer.Option("--train-until", help="Learn from as-ofs whose outcome was known by "
                                             "this date; validate on the as-ofs after it (ISO 8601).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for scoring.yaml.diff, model-card.md, model-card.json.")],
    db: DbOption = None,
    model: Annotated[Path | None, typer.Option(help="Scoring model YAML (default config/scoring.yaml).")] = None,
    horizon_days: Annotated[int, typer.Option("--horizon-days", help="Days after an as-of an outcome counts.")] = 90,
    outcome: Annotated[str, typer.Option(help="What to predict: won (an opportunity created and won) or "
                                         "opportunity (one created).")] = "won",
    volume_factor: Annotated[float, typer.Option("--volume-factor", help="MQA volume the proposed threshold aims "
                                                 "at, relative to the current one.")] = 1.0,
    until: Annotated[str | None, typer.Option("--until", help="The end of the data (default: the latest signal or "
                                              "opportunity in the warehouse).")] = None,
) -> None:
    """Learn the scoring points from outcomes and write a diff of the model file and its model card (never applied)."""
    from abm_sla.services import model_proposal

    split, end = _date_option("--train-until", train_until), _date_option("--until", until) if until else None
    found, paths = model_proposal.propose(_existing_warehouse(db), split, out, model, horizon_days, outcome,
                                          volume_factor, end)
    typer.echo(found.verdict)
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


def _date_option(name: str, value: str):
    """An option's ISO 8601 date or timestamp (naive = UTC); a bad one is a one-line error naming the option."""
    from abm_sla.services.stages import parse_as_of

    try:
        return parse_as_of(value)
    except AbmSlaError:
        raise AbmSlaError(f"{name} {value!r} is not an ISO 8601 date (e.g. 2026-10-01)") from None


@app.command()
def serve() -> None:
    """Serve every deployment of prefect.yaml from this process (single-machine installs, no worker)."""
    settings.configure_prefect_defaults()
    from deployments.serve import serve_all

    serve_all()


def _interrupt(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app, turning every failure into one line on stderr.

    SIGTERM stops a run as Ctrl-C does (exit 130, the run recorded ``aborted``)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = app(args=argv, standalone_mode=False)  # click returns an Exit's code here (130: Ctrl-C)
        if isinstance(code, int) and code:
            if code == 130:
                typer.echo("error: interrupted", err=True)
            return code
    except typer.Exit as done:
        if done.exit_code == 130:  # Ctrl-C (typer turns KeyboardInterrupt into Exit(130))
            typer.echo("error: interrupted", err=True)
        return done.exit_code
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        return 130
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 130
    except AbmSlaError as error:
        typer.echo(f"error: {error}", err=True)
        return 1
    except Exception as error:  # the user gets one line; ABM_SLA_DEBUG=1 shows the trace
        if _is_usage_error(error):
            if type(error).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
                typer.echo(f"error: {error.format_message()}", err=True)
            return 2
        if os.environ.get("ABM_SLA_DEBUG"):
            raise
        from abm_sla.warehouse.store import read_only_error

        read_only = read_only_error(error)
        if read_only is not None:
            typer.echo(f"error: {read_only}", err=True)
            return 1
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        typer.echo(f"error: {type(error).__name__}: {message} (set ABM_SLA_DEBUG=1 for details)", err=True)
        return 1
    return 0


def _is_usage_error(error: Exception) -> bool:
    """Click's usage errors (typer vendors click, so match by shape, not by class)."""
    return callable(getattr(error, "format_message", None)) and hasattr(error, "exit_code")


if __name__ == "__main__":
    sys.exit(main())
