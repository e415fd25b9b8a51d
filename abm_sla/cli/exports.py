"""What the warehouse gives out: ``abm-sla export`` (CSV) and ``abm-sla report`` (the SLA reports)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from abm_sla.cli.common import DbOption, ModelOption, PolicyOption, _existing_warehouse, app
from abm_sla.errors import AbmSlaError
from abm_sla.infra import settings


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


@app.command()
def report(
    kind: Annotated[str, typer.Argument(help="weekly, monthly or quarterly")],
    period: Annotated[str, typer.Option(help="2026-W14 (weekly), 2026-03 (monthly), 2026-Q1 (quarterly).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the HTML, Markdown and CSV files.")],
    db: DbOption = None,
    policy: PolicyOption = None,
    model: ModelOption = None,
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
