"""The demo and the run log: ``abm-sla demo``, ``runs`` (list) and ``undo``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from abm_sla.cli.common import DbOption, _body, _existing_warehouse, _flows, _moment, _runtime, _use_prefect, app


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
