"""Human summaries of a run, printed with rich."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_run_summary(summary: dict, console: Console | None = None) -> None:
    """Rows loaded/quarantined per file, then what the run computed."""
    console = console or Console()
    extract = summary.get("extract", {}).get("files", {})
    if extract:
        table = Table(title="Extract")
        table.add_column("file")
        table.add_column("loaded", justify="right")
        table.add_column("quarantined", justify="right")
        for file, counts in extract.items():
            table.add_row(file, str(counts["loaded"]), str(counts["quarantined"]))
        console.print(table)
    scoring = summary.get("scoring")
    if scoring:
        console.print(
            f"Scored {scoring['accounts_scored']} accounts as of {summary['as_of']} "
            f"(model {scoring['model_version']}): {scoring['qualified']} pass every hand-off gate."
        )
