"""Backfill: the pipeline at each step between start and end, in order (as_of = each step)."""

from __future__ import annotations

import pandas as pd
from prefect import flow

from abm_sla.stages import parse_as_of
from flows.pipeline import run_once


def steps(start: str, end: str, step_hours: float) -> list[pd.Timestamp]:
    """Every ``as of`` from start to end inclusive, ``step_hours`` apart."""
    first, last = parse_as_of(start), parse_as_of(end)
    return list(pd.date_range(first, last, freq=pd.Timedelta(hours=step_hours)))


@flow(name="backfill")
def backfill(
    db_url: str,
    start: str,
    end: str,
    step_hours: float = 24,
    source: str = "files",
    path: str | None = None,
    model_path: str | None = None,
    policy_path: str | None = None,
) -> list[dict]:
    """Load the source once, then run score/fire/route/SLA as of each step."""
    summaries = []
    for index, as_of in enumerate(steps(start, end, step_hours)):
        summaries.append(
            run_once(db_url, as_of.isoformat(), source, path, model_path, policy_path, extract=index == 0)
        )
    return summaries
