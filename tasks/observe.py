"""Run observability and stage concurrency, for the task and flow layers.

- ``stage_slot``: a Prefect global concurrency slot per stage (``abm-sla:<stage>``); without a
  server-side limit (ephemeral mode, test harness) it is a no-op. The warehouse lock in the
  stage and the tables' unique keys keep results exactly-once either way. On a SQLite-backed
  Prefect server taking a slot right after a task run starts often meets ``database is locked``
  (HTTP 503, client retry after ~2 s): create the limits only on a PostgreSQL-backed server
  (docs/operations/crashes.md).
- ``timed``: records a stage's duration into the run summary.
- ``emit_mqas_fired`` / ``sla_snapshot`` + ``emit_sla_changes``: Prefect events per account,
  emitted once per batch after it is committed (never from pure code, never with secrets).
- ``publish_run_report``: the markdown + table artifact every pipeline run ends with.
- ``publish_report`` / ``publish_headline``: a report as artifacts; its headline as an artifact and,
  when a notification block is named, posted through it (Slack, Teams, e-mail, webhook...).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from abm_sla.warehouse import Warehouse, schema

if TYPE_CHECKING:
    from abm_sla.services.reporting import Report

LIMIT_PREFIX = "abm-sla:"
STAGES = ("extract", "score", "fire-and-route", "evaluate-sla")
#: At most this many events per batch (a backfill's first step can fire thousands of MQAs).
MAX_EVENTS_PER_BATCH = 1000


# -- Prefect, imported on first use: a direct run (no Prefect API) calls none of these ------------

def emit_event(**kwargs: Any) -> Any:
    from prefect.events import emit_event as emit

    return emit(**kwargs)


def create_markdown_artifact(*args: Any, **kwargs: Any) -> Any:
    from prefect.artifacts import create_markdown_artifact as create

    return create(*args, **kwargs)


def create_table_artifact(*args: Any, **kwargs: Any) -> Any:
    from prefect.artifacts import create_table_artifact as create

    return create(*args, **kwargs)


def get_run_logger() -> Any:
    from prefect import get_run_logger as run_logger

    return run_logger()


# -- concurrency ---------------------------------------------------------------------------------

def limit_name(stage: str) -> str:
    return f"{LIMIT_PREFIX}{stage}"


@contextmanager
def stage_slot(stage: str, timeout_seconds: float | None = 3600) -> Iterator[None]:
    """Hold one slot of the ``abm-sla:<stage>`` global concurrency limit while the body runs.

    A missing limit makes this a no-op (checked first, so ephemeral runs log no warning).
    """
    from prefect.concurrency.sync import concurrency

    if not limit_exists(limit_name(stage)):
        yield
        return
    with concurrency(limit_name(stage), occupy=1, timeout_seconds=timeout_seconds, strict=False):
        yield


def limit_exists(name: str) -> bool:
    """Whether the Prefect API has a global concurrency limit called ``name``."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            return False
    return True


def ensure_stage_limits(limit: int = 1, stages: tuple[str, ...] = STAGES) -> list[str]:
    """Create (or reset) one global concurrency limit per stage on the current Prefect API."""
    from prefect.client.orchestration import get_client

    names = [limit_name(stage) for stage in stages]
    with get_client(sync_client=True) as client:
        for name in names:
            client.upsert_global_concurrency_limit_by_name(name, limit)
    return names


# -- durations -----------------------------------------------------------------------------------

@contextmanager
def timed(summary: dict, stage: str) -> Iterator[None]:
    """Add the body's wall time in seconds to ``summary["durations"][stage]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        summary.setdefault("durations", {})[stage] = round(time.perf_counter() - started, 3)


# -- events --------------------------------------------------------------------------------------

def _account(account_id: str) -> dict[str, str]:
    return {"prefect.resource.id": f"abm.account.{account_id}", "prefect.resource.role": "account"}


def _emit(event: str, rows: pd.DataFrame, payload_columns: list[str]) -> int:
    """One event per row (capped), the account as resource; returns how many were emitted."""
    emitted = 0
    for row in rows.head(MAX_EVENTS_PER_BATCH).to_dict(orient="records"):
        payload = {column: _text(row.get(column)) for column in payload_columns}
        resource = {**_account(str(row["account_id"])), "prefect.resource.name": str(row["account_id"])}
        emit_event(event=event, resource=resource, payload=payload)
        emitted += 1
    if len(rows) > MAX_EVENTS_PER_BATCH:
        get_run_logger().warning("%s: %d events, only the first %d emitted", event, len(rows), MAX_EVENTS_PER_BATCH)
    return emitted


def _text(value: object) -> object:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return None
    return value.item() if hasattr(value, "item") else value


def emit_mqas_fired(fired: pd.DataFrame) -> int:
    """``abm.mqa.fired`` for each MQA of a committed fire-and-route batch."""
    if fired.empty:
        return 0
    return _emit("abm.mqa.fired", fired, ["trigger_at", "routed_at", "tier", "owner_id", "total", "model_version"])


def sla_snapshot(store: Warehouse) -> dict[str, pd.DataFrame]:
    """Clocks and escalations before an SLA evaluation, to diff against afterwards."""
    return {"clocks": store.read_table(schema.sla_clocks), "escalations": store.read_table(schema.escalations)}


def sla_changes(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Clocks whose status changed (or are new), clocks newly missed, escalations newly opened."""
    keys = ["account_id", "trigger_at", "clock", "period"]  # a recurring clock has one row per period
    before_clocks, after_clocks = (frame.assign(period=frame.get("period", 0)) for frame in
                                   (before["clocks"], after["clocks"]))
    old = before_clocks[[*keys, "status"]].rename(columns={"status": "status_before"})
    clocks = after_clocks.merge(old, on=keys, how="left")
    changed = clocks[clocks["status"] != clocks["status_before"]]
    breached = changed[changed["status"] == "missed"]
    escalation_keys = ["account_id", "trigger_at", "clock", "level", "to_user_id", "owner_id"]  # the table's key
    seen = before["escalations"][escalation_keys].assign(_seen=True)
    opened = after["escalations"].merge(seen, on=escalation_keys, how="left")
    opened = opened[opened["_seen"].isna()].drop(columns="_seen")
    return {"changed": changed, "breached": breached, "opened": opened}


def emit_sla_changes(store: Warehouse, before: dict[str, pd.DataFrame]) -> dict[str, int]:
    """``abm.sla.breached`` per newly missed clock and ``abm.escalation.opened`` per new escalation level."""
    changes = sla_changes(before, sla_snapshot(store))
    levels = changes["opened"].drop_duplicates(["account_id", "trigger_at", "clock", "level"])
    _emit("abm.sla.breached", changes["breached"], ["trigger_at", "clock", "due_at", "owner_id", "tier"])
    _emit("abm.escalation.opened", levels, ["trigger_at", "level", "clock", "opened_at", "owner_id"])
    return {"clocks_changed": len(changes["changed"]), "clocks_breached": len(changes["breached"]),
            "escalations_opened": len(levels)}


# -- the run report ------------------------------------------------------------------------------

def run_report_rows(summary: dict) -> list[dict]:
    """The run summary as table rows: rows synced/deleted/quarantined per source object, then the counts
    of the stages that ran, then the seconds per stage."""
    extract = summary.get("extract", {})
    rows = [{"what": "warehouse run id (undo takes it)", "value": summary["run_id"]}] if summary.get("run_id") else []
    rows += [
        {"what": f"{name}: rows {what}", "value": counts.get(key, 0)}
        for key, what in (("loaded", "synced"), ("deleted", "deleted"), ("quarantined", "quarantined"))
        for objects in extract.values()
        for name, counts in objects.items()
        if key in counts
    ]
    rows += [{"what": f"{name}: warning", "value": warning} for objects in extract.values()
             for name, counts in objects.items() for warning in counts.get("warnings", [])]
    rows += freshness_rows(summary.get("freshness", {}))
    sla = summary.get("sla", {})
    stages = [
        ("scoring", "accounts scored", summary.get("scoring", {}).get("accounts_scored", 0)),
        ("handoff", "MQAs fired", summary.get("handoff", {}).get("mqas_fired", 0)),
        ("sla", "clocks changed", sla.get("clocks_changed", sla.get("clocks", 0))),
        ("sla", "clocks breached", sla.get("clocks_breached", sla.get("clocks_missed", 0))),
        ("sla", "escalations opened", sla.get("escalations_opened", sla.get("escalations", 0))),
    ]
    rows += [{"what": what, "value": value} for stage, what, value in stages if stage in summary]
    rows += [{"what": "sla: status value the policy does not map (kept)", "value": value}
             for value in sla.get("unknown_statuses", [])]
    rows += [{"what": f"{stage}: seconds", "value": seconds} for stage, seconds in summary.get("durations", {}).items()]
    return rows


def freshness_rows(freshness: dict) -> list[dict]:
    """The freshness verdict (when checked) and one row per checked table."""
    if not freshness.get("checks"):
        return []
    rows = [{"what": "freshness", "value": freshness["headline"]}]
    return rows + [{"what": f"freshness: {line.partition(': ')[0]}", "value": line.partition(": ")[2]}
                   for line in freshness["checks"]]


#: Set while a backfill runs its steps: their run reports become rows of its steps table instead of two
#: artifacts per step (which buried the progress bar and the summary).
_FOLDED: ContextVar[bool] = ContextVar("abm_sla_folded_run_reports", default=False)
STEP_COLUMNS = ("accounts scored", "MQAs fired", "clocks changed", "clocks breached", "escalations opened")


@contextmanager
def folded_run_reports() -> Iterator[None]:
    """Inside: :func:`publish_run_report` publishes nothing (the caller tabulates :func:`step_counts`)."""
    token = _FOLDED.set(True)
    try:
        yield
    finally:
        _FOLDED.reset(token)


def step_counts(summary: dict) -> dict:
    """One run's counts as a steps-table row: what the stages did, the seconds they took, its warehouse run id."""
    values = {row["what"]: row["value"] for row in run_report_rows(summary)}
    seconds = sum(value for what, value in values.items() if what.endswith(": seconds"))
    return {**{column: values.get(column, 0) for column in STEP_COLUMNS}, "seconds": round(seconds, 2),
            "run id": summary.get("run_id")}


def publish_run_report(summary: dict, key: str = "abm-sla-run", title: str | None = None) -> None:
    """A markdown and a table artifact for one run (no URLs, no secrets), keyed so history shows in the UI.

    Nothing inside :func:`folded_run_reports` (a backfill's steps).
    """
    if _FOLDED.get():
        return
    rows = run_report_rows(summary)
    title = title or f"abm-sla run as of {summary.get('as_of', '?')}"
    if summary.get("freshness", {}).get("status") == "error":
        title = f"STALE DATA: {title}"
    lines = [f"# {title}", "", "| what | value |", "|---|---:|", *(f"| {r['what']} | {r['value']} |" for r in rows)]
    create_markdown_artifact("\n".join(lines), key=key, description=title)
    create_table_artifact(rows, key=f"{key}-table", description=title)


def publish_report(report: Report, paths: dict[str, str]) -> None:
    """A report as keyed artifacts, so its history shows in the UI: the Markdown (charts stay in the files)
    with the list of files written, and one table artifact per table."""
    key = report.kind  # "weekly" or "quarterly": one history per report
    files = "\n".join(f"- {name}: `{path}`" for name, path in paths.items() if ":" not in name)
    files = "\n".join(f"- {name}: `{Path(path).resolve()}`" for name, path in paths.items() if ":" not in name)
    create_markdown_artifact(f"{report.markdown(chart_dir=None)}\n\n## Files\n\n{files}\n", key=f"{key}-report",
                             description=f"{report.title} ({report.period})")
    for name, table in report.tables.items():
        create_table_artifact(table.records(), key=f"{key}-{name.replace('_', '-')}",
                              description=f"{report.title}: {table.title}")


def publish_headline(report: Report, html_path: str, block_name: str = "") -> dict:
    """The report's headline (verdicts per side, what needs a decision, the report's absolute path) as a
    markdown artifact, and posted to the Prefect notification block ``block_name`` (``<type>/<name>``) if given.

    A block that cannot be loaded or fails to send is logged in one line: the report itself is written.
    """
    from abm_sla.services.reporting import headline_lines

    lines = headline_lines(report, str(Path(html_path).resolve()))
    text = "\n".join(lines)
    create_markdown_artifact("\n\n".join(lines), key=f"{report.kind}-headline",
                             description=f"{report.title}: headline")
    if not block_name:
        return {"text": text, "posted_to": None}
    try:
        notify_block(block_name, text, subject=lines[0])
    except Exception as error:  # any block failure is one line: the report stays written
        get_run_logger().error("headline not posted to notification block %r: %s", block_name,
                               str(error).splitlines()[0] if str(error) else type(error).__name__)
        return {"text": text, "posted_to": None}
    return {"text": text, "posted_to": block_name}


def notify_block(block_name: str, body: str, subject: str | None = None) -> None:
    """Send ``body`` through the saved notification block ``<block type slug>/<block name>``."""
    from prefect.blocks.abstract import NotificationBlock
    from prefect.blocks.core import Block

    if "/" not in block_name:
        raise ValueError(f"name the block as <block type>/<name> (e.g. slack-webhook/{block_name})")
    block = Block.load(block_name)
    if not isinstance(block, NotificationBlock):
        raise ValueError(f"{block_name} is a {type(block).__name__}, not a notification block")
    block.notify(body, subject=subject)
