"""The people's side of the SLA: ``abm-sla signoff``, ``dispute`` (open, note, close, reopen, list),
``decision`` (the monthly review's decisions) and ``review`` (quarterly review attendance)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from abm_sla.cli.common import AtOption, ByOption, DbOption, _at, _existing_warehouse, _moment, app

dispute_app = typer.Typer(no_args_is_help=True, help="Disputes on an account: open, note, close, reopen, list.")
app.add_typer(dispute_app, name="dispute")


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
