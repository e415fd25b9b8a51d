"""CSV exports (SPEC section 7): ``scores``, ``mqas``, ``sla``, ``escalations``; ``metrics``, the metrics
catalog's table for a period (:mod:`abm_sla.domain.metrics`); and, for the weekly sync, ``engagement`` (per account)
and ``opportunities`` (with the pipeline-credit source); ``briefings``, the Tier 3 watch list's briefing tasks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from abm_sla.domain import dispositions
from abm_sla.domain.frames import MARKETING_TOUCHES
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.sla import CLOCKS, OPTIONAL_CLOCKS
from abm_sla.errors import AbmSlaError
from abm_sla.infra import atomic
from abm_sla.services.config_files import load_policy
from abm_sla.warehouse import Warehouse, schema, score_history
from abm_sla.warehouse.view import CrmView

#: A text cell starting with one of these is run as a formula by Excel, LibreOffice and Google Sheets
#: (OWASP "CSV Injection"): ``=HYPERLINK(...)`` in an account name would be a live link.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Text that is a plain number (``-12.5``, ``+3``, ``1e6``) cannot be a formula and stays as it is.
PLAIN_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula, prefixed with ``'`` as OWASP recommends (the
    spreadsheet then shows the text as written); numbers, and text that is a plain number, are kept."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype != object and not pd.api.types.is_string_dtype(values.dtype):
            continue
        try:  # a cell that is not text (a number, None) gives NaN here, so False
            risky = values.str.startswith(FORMULA_STARTS, na=False) & ~values.str.fullmatch(PLAIN_NUMBER, na=False)
        except AttributeError:  # no text in the column at all
            continue
        if risky.any():
            out[column] = values.where(~risky, "'" + values[risky].astype(str))
    return out


def iso_utc(values: pd.Series) -> pd.Series:
    """Timestamps as ISO 8601 in UTC (``2026-03-02T14:00:00Z``), empty when missing."""
    text = pd.Series("", index=values.index, dtype=object)  # built as text: an all-missing column stays text
    present = values.notna()
    utc = pd.to_datetime(values[present], utc=True)
    text[present] = utc.map(lambda ts: ts.isoformat().replace("+00:00", "Z"))
    return text


def _with_iso_timestamps(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = iso_utc(out[column])
    return out


def scores(warehouse: Warehouse) -> pd.DataFrame:
    """One row per live account: its score as of the latest run that scored it (latest run on ties)."""
    live = CrmView(warehouse).read_kind("accounts")["account_id"]
    latest = score_history.current_scores(warehouse, live_accounts=live)
    out = latest[["account_id", "as_of", "firmographic", "engagement", "intent", "total", "qualified"]]
    return out.assign(qualified=out["qualified"].map({True: "true", False: "false"}))


#: SPEC's columns of the ``mqas`` export, then the verdict columns this project adds after them.
MQA_COLUMNS = ["account_id", "trigger_at", "routed_at", "tier", "owner_id", "total"]
VERDICT_COLUMNS = ["disposition", "verdict", "reason", "verdict_at"]


def mqas(warehouse: Warehouse, policy: SlaPolicy | None = None, period: str | None = None) -> pd.DataFrame:
    """One row per MQA: when it fired, when and to whom it was routed, and its score at trigger_at (SPEC's
    columns), then its episode's disposition, its verdict (``accepted`` / ``rejected`` / empty by the policy's
    verdict classes), the reason and when the verdict was given, as of the latest run
    (:func:`abm_sla.domain.dispositions.episode_dispositions`, the scorecard's own definition). With ``period``
    (``2026-Q1``, ``2026-03``, ``2026-W13``): the MQAs fired in it, their verdicts as of its end, as the report
    of that period and ``export metrics`` count them."""
    policy = policy if policy is not None else load_policy()
    table = warehouse.read_table(schema.mqas)
    bounds = _period_bounds(period)
    if bounds is not None:
        fired = pd.to_datetime(table["trigger_at"], utc=True)
        table = table[(fired >= bounds[0]) & (fired < bounds[1])]
    out = table.sort_values(["trigger_at", "account_id"]).reset_index(drop=True)
    if out.empty:  # nothing to give a verdict to
        return out[MQA_COLUMNS].assign(tier=out["tier"].astype("Int64"), disposition=None, verdict=None, reason=None,
                                       verdict_at=pd.Series(dtype="datetime64[ns, UTC]"))
    status = CrmView(warehouse).read_kind("status_changes")
    as_of = bounds[1] if bounds is not None else _latest_run_as_of(warehouse, out, status)
    found = dispositions.episode_dispositions(out, status, policy, as_of)
    out = out[MQA_COLUMNS].assign(tier=out["tier"].astype("Int64"))
    return out.join(found[["disposition", "verdict", "reason", "verdict_at"]])[[*MQA_COLUMNS, *VERDICT_COLUMNS]]


def _period_bounds(period: str | None) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    from abm_sla.domain import scorecard

    return scorecard.parse_period(period) if period else None


def _latest_run_as_of(warehouse: Warehouse, mqas_table: pd.DataFrame, status: pd.DataFrame) -> pd.Timestamp:
    """The as-of of the latest completed run (else the latest MQA or status change): what the export knows."""
    with warehouse.engine.connect() as connection:
        latest = connection.execute(sa.select(sa.func.max(schema.runs.c.as_of)).where(
            schema.runs.c.status == "completed")).scalar_one()
    if latest is not None:
        return pd.Timestamp(latest).tz_convert("UTC") if pd.Timestamp(latest).tzinfo else pd.Timestamp(latest, tz="UTC")
    moments = [pd.to_datetime(mqas_table["trigger_at"], utc=True).max(),
               pd.to_datetime(status["changed_at"], utc=True).max()]
    return max(moment for moment in moments if pd.notna(moment))  # the MQAs are not empty


def metrics(warehouse: Warehouse, period: str | None = None, policy: SlaPolicy | None = None) -> pd.DataFrame:
    """The metrics catalog's table for ``period`` (a week ``2026-W13``, month ``2026-03`` or quarter ``2026-Q1``)
    as of its end, the same rows as the report of that period writes to ``<report>.metrics.csv``."""
    from abm_sla.domain import metrics as catalog
    from abm_sla.domain import scorecard
    from abm_sla.services.reporting import load_data

    if not period:
        raise AbmSlaError("the metrics export needs a period: --period 2026-Q1 (or 2026-03, 2026-W13)")
    start, end = scorecard.parse_period(period)
    policy = policy if policy is not None else load_policy()
    data = load_data(warehouse).known_by(end)
    return catalog.csv_frame(catalog.compute(data, start, end, end, policy))


def _latest_completed_run(warehouse: Warehouse) -> pd.Timestamp | None:
    with warehouse.engine.connect() as connection:
        latest = connection.execute(sa.select(sa.func.max(schema.runs.c.as_of)).where(
            schema.runs.c.status == "completed")).scalar_one()
    return None if latest is None else pd.Timestamp(latest).tz_localize("UTC") if pd.Timestamp(
        latest).tzinfo is None else pd.Timestamp(latest).tz_convert("UTC")


def sync_period(warehouse: Warehouse, period: str | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` of a weekly-sync export: ``period`` (``2026-W13``, ``2026-03``, ``2026-Q1``), else the
    quarter of the latest completed run."""
    from abm_sla.domain import scorecard

    if period:
        return scorecard.parse_period(period)
    latest = _latest_completed_run(warehouse)
    if latest is None:
        raise AbmSlaError("the warehouse has no completed run: give --period (2026-Q1, 2026-03 or 2026-W13)")
    return scorecard.parse_period(f"{latest.year}-Q{latest.quarter}")


#: The engagement export's columns (``touches_<channel>``: one per marketing touch type).
ENGAGEMENT_COLUMNS = ["period_start", "period_end", "account_id", "account_name", "tier", "owner_id", "on_list",
                      *(f"touches_{channel}" for channel in MARKETING_TOUCHES), "marketing_touches",
                      "engaged_contacts", "intent", "score", "score_as_of"]


def engagement(warehouse: Warehouse, period: str | None = None) -> pd.DataFrame:
    """One row per account for the weekly sync: its marketing touches by channel and engaged contacts in the
    period (the catalog's engagement facts, :func:`abm_sla.domain.metrics.account_engagement`), whether it is on the
    target account list at the period's end (:func:`abm_sla.domain.scorecard.listed_accounts`), and its intent points
    and total score as of the latest run that scored it (the ``scores`` export)."""
    from abm_sla.domain import metrics as catalog
    from abm_sla.domain import scorecard
    from abm_sla.services.reporting import load_data

    start, end = sync_period(warehouse, period)
    data = load_data(warehouse).known_by(end)
    accounts = scorecard.account_dimensions(data)
    accounts = accounts[accounts["created_at"].isna() | (accounts["created_at"] < end)].reset_index(drop=True)
    listed = set(scorecard.listed_accounts(data, end)["account_id"])
    touches = catalog.account_engagement(data, start, end).reindex(accounts["account_id"]).fillna(0)
    touches = touches.astype("int64").reset_index(drop=True)
    latest = scores(warehouse).set_index("account_id")
    out = pd.DataFrame({"period_start": start, "period_end": end, "account_id": accounts["account_id"],
                        "account_name": accounts["account_name"], "tier": accounts["tier"].astype("Int64"),
                        "owner_id": accounts["owner_id"],
                        "on_list": accounts["account_id"].isin(listed).map({True: "true", False: "false"})})
    for channel in MARKETING_TOUCHES:
        out[f"touches_{channel}"] = touches[channel]
    out["marketing_touches"] = touches["marketing_touches"]
    out["engaged_contacts"] = touches["stakeholders"]
    for column, source in (("intent", "intent"), ("score", "total"), ("score_as_of", "as_of")):
        out[column] = out["account_id"].map(latest[source])
    order = out["marketing_touches"].rank(ascending=False, method="first")
    return out.assign(_order=order).sort_values(["_order"]).drop(columns="_order").reset_index(drop=True)[
        ENGAGEMENT_COLUMNS]


#: The opportunities export's columns.
OPPORTUNITY_COLUMNS = ["opportunity_id", "account_id", "account_name", "tier", "owner_id", "created_at",
                       "close_date", "amount", "is_closed", "is_won", "source", "source_segment", "influenced",
                       "from_mqa"]


def opportunities(warehouse: Warehouse, period: str | None = None, policy: SlaPolicy | None = None) -> pd.DataFrame:
    """One row per opportunity created in ``period`` (every one without it): its account, dates, amount and
    outcome, and its ``source`` by the policy's one pipeline-credit rule (:func:`domain.scorecard.pipeline_credit`,
    the label; ``source_segment`` the catalog's ``source=`` segment: marketing, influenced, sales)."""
    from abm_sla.domain import metrics as catalog
    from abm_sla.domain import scorecard
    from abm_sla.services.reporting import load_data

    policy = policy if policy is not None else load_policy()
    data = load_data(warehouse)
    if period:
        start, end = scorecard.parse_period(period)
        data = data.known_by(end)
    else:
        start, end = pd.Timestamp("1900-01-01", tz="UTC"), pd.Timestamp("2200-01-01", tz="UTC")
    credited = catalog.created_facts(data, start, end, policy).set_index("opportunity_id")
    frame = scorecard.opportunity_frame(data)
    frame = frame[frame["opportunity_id"].isin(credited.index)].sort_values(["created_at", "opportunity_id"])
    frame = frame.reset_index(drop=True)
    labels = credited["source"].map(dict(zip(catalog.SOURCE_SEGMENTS, scorecard.credit_parts(policy), strict=True)))
    flags = {True: "true", False: "false"}
    return frame.assign(
        tier=frame["tier"].astype("Int64"), close_date=pd.to_datetime(frame["close_date"], utc=True),
        is_closed=frame["is_closed"].map(flags), is_won=frame["is_won"].map(flags),
        source=frame["opportunity_id"].map(labels), source_segment=frame["opportunity_id"].map(credited["source"]),
        influenced=frame["opportunity_id"].map(credited["influenced"]).map(flags),
        from_mqa=frame["opportunity_id"].map(credited["from_mqa"]).map(flags))[OPPORTUNITY_COLUMNS]


def briefings(warehouse: Warehouse, period: str | None = None, policy: SlaPolicy | None = None) -> pd.DataFrame:
    """The Tier 3 watch list's briefing tasks to sales (:func:`abm_sla.domain.commitments.briefings`): one row per
    promotion of a Tier 3 account recommended in ``period`` (every one without it); none unless the policy's
    ``targets.tier_moves.brief_sales`` is on."""
    from abm_sla.domain import commitments, scorecard
    from abm_sla.services.reporting import load_data

    policy = policy if policy is not None else load_policy()
    data = load_data(warehouse)
    start, end = (scorecard.parse_period(period) if period else
                  (pd.Timestamp("1900-01-01", tz="UTC"), pd.Timestamp("2200-01-01", tz="UTC")))
    return commitments.briefings(data, data.tier_move_recommendations, start, end, end, policy)


def sla(warehouse: Warehouse) -> pd.DataFrame:
    """One row per MQA and clock, with its status as of the latest run."""
    table = warehouse.read_table(schema.sla_clocks)
    order = {name: rank for rank, name in enumerate(CLOCKS + OPTIONAL_CLOCKS)}
    table = table.assign(_order=table["clock"].map(order))
    table = table.sort_values(["trigger_at", "account_id", "_order", "period"])
    return table[["account_id", "trigger_at", "clock", "status", "due_at", "met_at"]]


def escalations(warehouse: Warehouse) -> pd.DataFrame:
    """One row per escalation level and recipient."""
    table = warehouse.read_table(schema.escalations)
    table = table.sort_values(["trigger_at", "account_id", "clock", "level", "to_user_id"])
    return table[["account_id", "trigger_at", "level", "opened_at", "to_user_id"]]


def _latest_week(warehouse: Warehouse, period: str | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` of ``period``, else the ISO week of the latest completed run."""
    from abm_sla.domain import scorecard

    if period:
        return scorecard.parse_period(period)
    latest = _latest_completed_run(warehouse)
    if latest is None:
        raise AbmSlaError("the warehouse has no completed run: give --period (2026-W13)")
    year, week, _ = latest.isocalendar()
    return scorecard.parse_period(f"{year}-W{week:02d}")


def intent_list(warehouse: Warehouse, period: str | None = None, policy: SlaPolicy | None = None) -> pd.DataFrame:
    """The weekly intent list (:func:`domain.leads.intent_list`): accounts with policy ``intent_list.min_signals``
    (default 3) intent signals observed in ``period`` (default: the latest run's ISO week), most signals first."""
    from abm_sla.domain import leads
    from abm_sla.domain.policy import IntentList
    from abm_sla.services.reporting import load_data

    policy = policy if policy is not None else load_policy()
    start, end = _latest_week(warehouse, period)
    found = leads.intent_list(load_data(warehouse), start, end, policy.intent_list or IntentList())
    return found.assign(period_start=start, period_end=end)[["period_start", "period_end",
                                                            *leads.INTENT_LIST_COLUMNS]]


#: The warehouse's exports (SPEC section 7), each a function of the warehouse alone.
EXPORTS: dict[str, Callable[[Warehouse], pd.DataFrame]] = {
    "scores": scores,
    "mqas": mqas,
    "sla": sla,
    "escalations": escalations,
}
#: Every export kind: the warehouse's, and ``metrics``, which needs a period.
MAKERS: dict[str, Callable[..., pd.DataFrame]] = {**EXPORTS, "metrics": metrics, "engagement": engagement,
                                                  "opportunities": opportunities, "briefings": briefings,
                                                  "intent-list": intent_list}
KINDS = tuple(MAKERS)
#: The options each export takes besides the warehouse.
OPTIONS: dict[str, tuple[str, ...]] = {"mqas": ("policy", "period"), "metrics": ("period", "policy"),
                                        "engagement": ("period",), "opportunities": ("period", "policy"),
                                        "briefings": ("period", "policy"),
                                        "intent-list": ("period", "policy")}


def export(warehouse: Warehouse, kind: str, out: str | Path, period: str | None = None,
           policy: SlaPolicy | None = None) -> int:
    """Write one export as CSV (whole or not at all, formula-like text neutralised); returns the number of rows.
    ``period`` is the metrics export's period; ``policy`` (default ``config/sla.yaml``) gives the mqas and
    metrics exports their verdicts and targets."""
    if kind not in MAKERS:
        raise AbmSlaError(f"unknown export {kind!r}: choose one of {', '.join(KINDS)}")
    given = {"period": period, "policy": policy}
    options = {name: given[name] for name in OPTIONS.get(kind, ())}
    table = spreadsheet_safe(_with_iso_timestamps(MAKERS[kind](warehouse, **options)))
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_csv(path, table)
    except OSError as error:
        raise AbmSlaError(f"cannot write {path}: {error.strerror or error}") from None
    return len(table)


def has_runs(warehouse: Warehouse) -> bool:
    with warehouse.engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(schema.runs)).scalar_one() > 0
