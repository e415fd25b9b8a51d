"""The ``abm-sla`` app and what its commands share: options, the runtime (Prefect flows or their bodies
called directly, a local Dask cluster), source checks, the warehouse to read, times and dates."""

from __future__ import annotations

import logging
import os
import sys
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
    """Flows as Prefect runs, or their bodies called directly (``tasks.common.direct_calls``), which import
    Prefect only if something needs it (a Dask cluster, a CRM write-back's rate limits)."""
    settings.configure_prefect_defaults()  # before Prefect is imported, if it is
    if use_prefect:
        yield
        return
    from tasks.common import direct_calls

    with direct_calls(), _console_log():
        yield


#: The format of Prefect's console log lines, which the direct runtime keeps.
CONSOLE_FORMAT = "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(name)s - %(message)s"


@contextmanager
def _console_log() -> Iterator[None]:
    """Warnings and errors on stderr as Prefect's console handler writes them (its format, one line per expected
    failure), when nothing handles the root logger yet (Prefect not imported, no test harness)."""
    root = logging.getLogger()
    if root.handlers:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(CONSOLE_FORMAT, datefmt="%H:%M:%S"))
    if not os.environ.get("ABM_SLA_DEBUG"):
        handler.addFilter(_drop_expected_failures)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


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
ModelOption = Annotated[Path | None, typer.Option(help="Scoring model YAML (default config/scoring.yaml).")]
PolicyOption = Annotated[Path | None, typer.Option(help="SLA policy YAML (default config/sla.yaml).")]
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


def _moment(value) -> str:
    return "" if value is None or value != value else value.isoformat().replace("+00:00", "Z")


AtOption = Annotated[str | None, typer.Option("--at", help="When (ISO 8601; default now).")]
ByOption = Annotated[str, typer.Option("--by", help="Who does it (a user id or a name).")]


def _at(value: str | None):
    from abm_sla.services.stages import parse_as_of, utc_now

    return parse_as_of(value).to_pydatetime() if value else utc_now()


def _date_option(name: str, value: str):
    """An option's ISO 8601 date or timestamp (naive = UTC); a bad one is a one-line error naming the option."""
    from abm_sla.services.stages import parse_as_of

    try:
        return parse_as_of(value)
    except AbmSlaError:
        raise AbmSlaError(f"{name} {value!r} is not an ISO 8601 date (e.g. 2026-10-01)") from None
