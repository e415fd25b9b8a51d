"""Human summaries of a run, printed with rich."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_run_summary(summary: dict, console: Console | None = None) -> None:
    """Rows loaded/quarantined per file or CRM object, then what the run computed."""
    console = console or Console()
    for source, objects in summary.get("extract", {}).items():
        print_sync_summary(source, objects, console)
    scoring = summary.get("scoring")
    if scoring:
        console.print(
            f"Scored {scoring['accounts_scored']} accounts as of {summary['as_of']} "
            f"(model {scoring['model_version']}): {scoring['qualified']} pass every hand-off gate."
        )
    freshness = summary.get("freshness", {})
    if freshness.get("checks") and freshness.get("status") != "pass":
        console.print(f"Freshness: {freshness['headline']}")
        for line in freshness["checks"]:
            console.print(f"  {line}")
    if summary.get("run_id"):
        console.print(f"Run {summary['run_id']} (`abm-sla undo {summary['run_id']}` takes it back).")
    unknown = summary.get("sla", {}).get("unknown_statuses")
    if unknown:
        console.print("Status values the SLA policy does not map (kept, see dispositions.map): " + ", ".join(unknown))
    writeback = summary.get("writeback")
    if writeback:
        console.print(
            "Write-back: {created} CRM tasks created, {existing} already there, {failed} refused (retried next run), "
            "{skipped} MQAs of companies not in that CRM.".format(**writeback)
        )


def counts_line(counts: dict) -> str:
    """A stage's counts as one readable line: ``12 clocks, 3 clocks missed, mode incremental`` (lists joined,
    nested counts in parentheses, empty values left out)."""
    parts = []
    for name, value in counts.items():
        label = str(name).replace("_", " ")
        if isinstance(value, dict):
            value = f"({counts_line(value)})" if value else ""
        elif isinstance(value, list | tuple):
            value = ", ".join(map(str, value))
        if value == "" or value is None:
            continue
        parts.append(f"{value:,} {label}" if isinstance(value, int) and not isinstance(value, bool)
                     else f"{label} {value}")
    return ", ".join(parts) or "nothing to do"


def describe_undone(done: dict) -> str:
    """One undone run (a summary of ``warehouse.undo.undo_run``) as a readable line."""
    if done.get("status") == "undone already":
        return f"run {done['run_id']} was undone already"
    return (f"undone run {done['run_id']} (as of {done['as_of']}): {done.get('scores_removed', 0)} score "
            f"changes and {done.get('mqas_removed', 0)} MQAs removed, {done.get('sla_clocks_restored', 0)} clocks "
            f"and {done.get('escalations_restored', 0)} escalations restored")


def print_sync_summary(source: str, objects: dict[str, dict[str, int]], console: Console | None = None) -> None:
    """Per file (export folder) or CRM object: rows loaded, deleted and quarantined (a file skipped because it
    matches its last load says ``unchanged``); ``values dropped`` counts the rows loaded without an unusable
    value, which the quarantine table records too (so the two columns add up to its new rows)."""
    console = console or Console()
    crm = source != "files"
    table = Table(title=f"Extract ({source})")
    table.add_column("object" if crm else "file")
    table.add_column("loaded", justify="right")
    if crm:
        table.add_column("deleted", justify="right")
    table.add_column("quarantined", justify="right")
    table.add_column("values dropped", justify="right")
    for name, counts in objects.items():
        deleted = [str(counts.get("deleted", 0))] if crm else []
        loaded = "unchanged" if counts.get("unchanged") else str(counts["loaded"])
        table.add_row(name, loaded, *deleted, str(counts["quarantined"]), str(counts.get("values_dropped", 0)))
    console.print(table)
    for name, counts in objects.items():
        for warning in counts.get("warnings", []):
            console.print(f"warning: {name}: {warning}")
