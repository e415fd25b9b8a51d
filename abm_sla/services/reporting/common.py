"""The report model (:class:`Report`, its sections, tables, charts and decisions), reading the warehouse, and
the small helpers every report shares: spans, ISO times, owner names, footnote texts."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, wraps

import pandas as pd

from abm_sla.domain import marketing as mk
from abm_sla.domain import metrics as catalog
from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy import DEFAULT_PATH as DEFAULT_POLICY_PATH
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard import SlaData
from abm_sla.warehouse import Warehouse, schema, score_history
from abm_sla.warehouse.view import CrmView

KINDS = ("weekly", "monthly", "quarterly")
DEFAULT_SCORING_PATH = DEFAULT_POLICY_PATH.with_name("scoring.yaml")
TREND_WEEKS = 8
#: Each chart is titled for the question it answers.
CHART_TITLES = {
    "mqas_by_month": "Did marketing deliver the MQAs it committed each month?",
    "response_times": "How fast does sales make the first touch, per tier?",
    "compliance_trend": "Is sales keeping its SLA clocks week by week?",
    "threshold_backtest": "Which hand-off threshold keeps rejection in the agreed band?",
}
CLOCK_LABELS = {"routing_time": "routing time", "first_touch": "first touch", "status_update": "status update",
                "cadence": "cadence", "marketing_response": "marketing research"}


@dataclass
class Table:
    """One table: its frame, where every number comes from, and an optional note."""

    name: str
    title: str
    frame: pd.DataFrame
    source: str
    note: str = ""

    def records(self) -> list[dict]:
        """The rows as JSON-ready dicts (timestamps ISO 8601 UTC, missing values None), for artifacts."""
        frame = _csv_frame(self.frame).astype(object)
        return frame.where(frame.notna(), None).to_dict(orient="records")


@dataclass
class Chart:
    """A chart drawn when first shown: ``draw`` makes its PNG bytes (a report built only for its numbers, as
    the exports and most tests do, never pays matplotlib's ~0.2 s a chart)."""

    name: str
    title: str
    draw: Callable[[], bytes]
    source: str

    @cached_property
    def png(self) -> bytes:
        """The chart's PNG bytes, drawn once."""
        return self.draw()


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    code: dict[str, str] = field(default_factory=dict)  # file name → unified diff


@dataclass
class Decision:
    """One item under "needs a decision": a title, one line of summary, the top rows, where the rest is."""

    title: str
    summary: str
    headline: str
    table: Table | None = None
    link: str = ""
    code: dict[str, str] = field(default_factory=dict)
    link_text: str = "All rows"


@dataclass
class Report:
    kind: str
    period: str
    start: pd.Timestamp
    end: pd.Timestamp
    as_of: pd.Timestamp
    title: str
    sections: list[Section]
    notes: list[str] = field(default_factory=list)
    scorecard: pd.DataFrame | None = None  # scorecard.headline(): each commitment of both sides
    previous_label: str = ""
    decisions: list[Decision] = field(default_factory=list)
    measured: bool = True  # False: no score, MQA or clock in the period (the report is empty)
    metrics: pd.DataFrame | None = None  # the metrics catalog's table of the period (abm_sla.domain.metrics.compute)

    @property
    def tables(self) -> dict[str, Table]:
        return {table.name: table for section in self.sections for table in section.tables}

    @property
    def charts(self) -> dict[str, Chart]:
        return {chart.name: chart for section in self.sections for chart in section.charts}

    @property
    def diffs(self) -> dict[str, str]:
        return {name: diff for section in self.sections for name, diff in section.code.items()}

    def markdown(self, chart_dir: str | None = "charts") -> str:
        """Markdown; charts link to ``<chart_dir>/<name>.png`` (omitted when ``chart_dir`` is None)."""
        from abm_sla.services.reporting.render import render_markdown  # render imports this module

        return render_markdown(self, chart_dir)

    def html(self) -> str:
        """A self-contained HTML page (charts as base64 PNG)."""
        from abm_sla.services.reporting.render import render_html

        return render_html(self)


def load_data(warehouse: Warehouse) -> SlaData:
    """Every frame the scorecard reads, from the warehouse."""
    kinds = ("accounts", "contacts", "activities", "intent_signals", "opportunities", "users", "status_changes",
             "target_accounts", "requests")
    view = CrmView(warehouse)
    crm = {kind: view.read_kind(kind) for kind in kinds}
    derived = {name: warehouse.read_table(getattr(schema, name))
               for name in ("mqas", "sla_clocks", "escalations", "tier_move_recommendations", "reassignments",
                            "disputes", "dispute_notes", "signoffs", "review_decisions",
                            "review_attendance")}
    escalations = derived["escalations"]
    derived["escalations"] = escalations.assign(owner_id=escalations["owner_id"].replace("", None))  # "": no owner
    history = score_history.dense(warehouse.read_table(schema.score_history), score_history.score_runs(warehouse))
    return SlaData.of(**crm, **derived, score_history=history)


def _span(start: pd.Timestamp, end: pd.Timestamp) -> str:
    return f"[{_iso(start)}, {_iso(end)})"


def _iso(moment: pd.Timestamp) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def period_label(start: pd.Timestamp, end: pd.Timestamp) -> str:
    """``2026-W12``, ``2026-03``, ``2026-Q1`` or ``2026`` for a period ``[start, end)``."""
    if end - start == pd.Timedelta(days=7):
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    months = (end.year - start.year) * 12 + end.month - start.month
    return {1: f"{start:%Y-%m}", 3: sc.quarter_label(start), 12: f"{start:%Y}"}.get(months, _span(start, end))


def _with_owner_names(frame: pd.DataFrame, data: SlaData) -> pd.DataFrame:
    """``owner_name`` next to ``owner_id`` (the total row keeps its ``all``)."""
    names = sc.owner_names(data)
    position = list(frame.columns).index("owner_id") + 1
    out = frame.copy()
    out.insert(position, "owner_name", out["owner_id"].map(names).where(out["owner_id"] != sc.ALL, "All owners"))
    return out


def _with_missing_owner_names(chronic: pd.DataFrame, data: SlaData) -> pd.DataFrame:
    """``owners_missed_names`` ("Ann (U1), Bob (U2)") next to ``owners_missed_ids``."""
    names = sc.owner_names(data)
    out = chronic.copy()
    out.insert(list(out.columns).index("owners_missed_ids") + 1, "owners_missed_names", [
        ", ".join(f"{names.get(owner, owner)} ({owner})" for owner in ids.split(", ") if owner)
        for ids in out["owners_missed_ids"].fillna("")])
    return out


def _window_text(window) -> str:
    """``16 business hours``, ``24 hours``, ``2 days``, ``the same business day``."""
    if window.kind == "same_business_day":
        return "the same business day"
    return f"{window.amount:g} {window.kind.replace('_', ' ')}"


def _measured_accounts(data: SlaData) -> str:
    return ("accounts on the target account list" if mk.tal_exists(data.target_accounts)
            else "every account (no target account list)")


def _pct_text(table: pd.DataFrame, metric: str) -> str:
    """A catalog rate as text: ``12.5% (3 of 24)`` or ``n/a (none)``."""
    found = catalog.row(table, metric)
    if found is None or not found["denominator"]:
        return "n/a (none)"
    return f"{found['value']:g}% ({found['numerator']:g} of {found['denominator']:g})"


def _verdict_source(span: str, as_of: pd.Timestamp, policy: SlaPolicy) -> str:
    """Where a verdict comes from (the footnote of every table counting accepted or rejected MQAs)."""
    classes = policy.dispositions
    return (f"mqas where trigger_at in {span}; verdict = the latest status_changes.status of the episode (by "
            f"{_iso(as_of)}) whose disposition is accepted ({', '.join(classes.accepted)}) or rejected "
            f"({', '.join(classes.rejected)}) by policy dispositions")


def _credit_text(policy: SlaPolicy) -> str:
    """The pipeline-credit rule in a sentence (one rule for every report: policy ``pipeline_credit``)."""
    days = f"{policy.pipeline_credit.lookback_days:g} days"
    sourced, middle, sales = sc.credit_parts(policy)
    if policy.pipeline_credit.rule == "mqa":
        return (f"Pipeline credit (policy pipeline_credit: mqa): {sourced} = an MQA fired on the account in the "
                f"{days} before the opportunity was created; {middle} = no such MQA but a marketing touch; "
                f"{sales} = neither.")
    return (f"Pipeline credit (policy pipeline_credit: touch_order, the seven commitments): {sourced} = a marketing "
            f"touch in the {days} before the opportunity and before any sales touch; {middle} = a marketing touch "
            f"after the first sales touch; {sales} = no marketing touch.")


def _credit_source(span: str, policy: SlaPolicy) -> str:
    days = f"{policy.pipeline_credit.lookback_days:g}"
    what = "mqas.trigger_at and marketing-touch activities" if policy.pipeline_credit.rule == "mqa" else "activities"
    return f"opportunities where created_at in {span}; {what} in the {days} days before created_at"


def _csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].map(_iso, na_action="ignore")
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def reusing_catalog_tables(build: Callable[..., Report]) -> Callable[..., Report]:
    """A report build that computes each period's metrics catalog table once (:func:`catalog.reusing_tables`)."""
    @wraps(build)
    def run(*args, **kwargs) -> Report:
        with catalog.reusing_tables():
            return build(*args, **kwargs)
    return run
