"""Disputes in the warehouse: open, note, close, reopen, list; every change is a row in ``dispute_notes``.

Each change runs in one transaction that re-reads the dispute (a close racing another close: the
second finds it closed and says so in one line). Moments are passed in (the CLI and flow use now).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd
import sqlalchemy as sa

from abm_sla.domain.disputes import OUTCOMES
from abm_sla.errors import AbmSlaError, required_text
from abm_sla.warehouse import schema
from abm_sla.warehouse.store import Warehouse
from abm_sla.warehouse.view import CrmView

ACTIONS = ("open", "note", "close", "reopen")


class DisputeError(AbmSlaError):
    """A dispute command that cannot be done (unknown dispute or account, wrong state, empty text)."""


def _text(value: str | None, what: str) -> str:
    return required_text(value, what, DisputeError)


def open_dispute(warehouse: Warehouse, account_id: str, disagreement: str, raised_by: str,
                 requested_resolution: str, at: dt.datetime) -> int:
    """Open a dispute on a known account; returns its id."""
    account_id = _text(account_id, "the account")
    row = {"disagreement": _text(disagreement, "the disagreement"), "raised_by": _text(raised_by, "who raised it"),
           "requested_resolution": _text(requested_resolution, "the requested resolution")}
    if CrmView(warehouse).read_kind("accounts", accounts=[account_id]).empty:
        raise DisputeError(f"no account {account_id!r} in the warehouse (load the CRM first, or check the id)")
    with warehouse.engine.begin() as connection:
        result = connection.execute(schema.disputes.insert().values(
            account_id=account_id, opened_at=at, steps_from=at, status="open", times_reopened=0, updated_at=at,
            **row))
        dispute_id = int(result.inserted_primary_key[0])
        _note(connection, dispute_id, at, row["raised_by"], "opened",
              f"{row['disagreement']} | requested: {row['requested_resolution']}")
    return dispute_id


def add_note(warehouse: Warehouse, dispute_id: int, author: str, text: str, at: dt.datetime) -> None:
    """Add a note to a dispute (open or closed: the history stays complete)."""
    with warehouse.engine.begin() as connection:
        _dispute(connection, dispute_id)
        _note(connection, dispute_id, at, _text(author, "the author"), "note", _text(text, "the note"))


def close_dispute(warehouse: Warehouse, dispute_id: int, resolution: str, by: str, at: dt.datetime,
                  outcome: str = "agreed") -> None:
    """Close an open dispute with its resolution and outcome (one of :data:`OUTCOMES`)."""
    if outcome not in OUTCOMES:
        raise DisputeError(f"unknown outcome {outcome!r}: choose one of {', '.join(OUTCOMES)}")
    resolution = _text(resolution, "the resolution")
    _change(warehouse, dispute_id, "open", "is closed already (reopen it first)", at, _text(by, "who closed it"),
            "closed", f"[{outcome}] {resolution}",
            lambda _: {"status": "closed", "closed_at": at, "resolution": resolution, "outcome": outcome})


def reopen_dispute(warehouse: Warehouse, dispute_id: int, by: str, reason: str, at: dt.datetime) -> None:
    """Reopen a closed dispute: its steps start again from ``at``; the earlier resolution stays in the notes."""
    _change(warehouse, dispute_id, "closed", "is open: only a closed dispute can be reopened", at,
            _text(by, "who reopened it"), "reopened", _text(reason, "the reason"),
            lambda current: {"status": "open", "steps_from": at, "closed_at": None, "resolution": None,
                             "outcome": None, "times_reopened": current["times_reopened"] + 1})


def _change(warehouse: Warehouse, dispute_id: int, must_be: str, refusal: str, at: dt.datetime, author: str,
            kind: str, text: str, values: Callable[[dict], dict]) -> None:
    """Move a dispute that is ``must_be`` to new ``values`` and note it, in one transaction."""
    with warehouse.engine.begin() as connection:
        current = _dispute(connection, dispute_id)
        if current["status"] != must_be:
            raise DisputeError(f"dispute {dispute_id} {refusal}")
        _not_before(at, current["updated_at"], dispute_id)
        connection.execute(schema.disputes.update().where(schema.disputes.c.dispute_id == dispute_id).values(
            **values(current), updated_at=at))
        _note(connection, dispute_id, at, author, kind, text)


def read_disputes(warehouse: Warehouse) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every dispute and every note."""
    return warehouse.read_table(schema.disputes), warehouse.read_table(schema.dispute_notes)


def _dispute(connection: sa.Connection, dispute_id: int) -> dict:
    row = connection.execute(sa.select(schema.disputes).where(schema.disputes.c.dispute_id == dispute_id)).first()
    if row is None:
        raise DisputeError(f"no dispute {dispute_id} (`abm-sla dispute list --all` lists them)")
    return row._asdict()


def _not_before(at: dt.datetime, last: dt.datetime, dispute_id: int) -> None:
    last = last if last.tzinfo else last.replace(tzinfo=dt.UTC)
    if at < last:
        raise DisputeError(f"dispute {dispute_id} last changed at {last.isoformat()}: a change cannot be dated "
                           "before it")


def _note(connection: sa.Connection, dispute_id: int, at: dt.datetime, author: str, kind: str, text: str) -> None:
    connection.execute(schema.dispute_notes.insert().values(dispute_id=dispute_id, at=at, author=author, kind=kind,
                                                            text=text))
