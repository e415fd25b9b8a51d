"""Weekly dashboard and quarterly renegotiation report: HTML (charts embedded), Markdown, one CSV per table.

:func:`build_weekly` / :func:`build_quarterly` read the warehouse once, compute with the pure
:mod:`abm_sla.scorecard` and :mod:`abm_sla.proposals`, and return a :class:`Report` (tables as frames,
charts as PNG bytes, Markdown and HTML text) that Prefect tasks can turn into artifacts;
:func:`write_report` writes it; :func:`generate_report` is the one call the CLI makes. Every table
names its source (warehouse table + filter) in a numbered footnote.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from abm_sla import proposals as proposals_module
from abm_sla import scorecard as sc
from abm_sla.errors import AbmSlaError
from abm_sla.policy import DEFAULT_PATH as DEFAULT_POLICY_PATH
from abm_sla.policy import SlaPolicy, load_policy
from abm_sla.scorecard import SlaData
from abm_sla.warehouse import Warehouse, schema, score_history
from abm_sla.warehouse.view import CrmView

KINDS = ("weekly", "quarterly")
DEFAULT_SCORING_PATH = DEFAULT_POLICY_PATH.with_name("scoring.yaml")
TREND_WEEKS = 8
CLOCK_LABELS = {"routing_time": "routing time", "first_touch": "first touch", "status_update": "status update",
                "cadence": "cadence"}


# -- the report model ---------------------------------------------------------------------------------

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
    name: str
    title: str
    png: bytes
    source: str


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    code: dict[str, str] = field(default_factory=dict)  # file name → unified diff


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
        return render_markdown(self, chart_dir)

    def html(self) -> str:
        """A self-contained HTML page (charts as base64 PNG)."""
        return render_html(self)


# -- reading --------------------------------------------------------------------------------------------

def load_data(warehouse: Warehouse) -> SlaData:
    """Every frame the scorecard reads, from the warehouse."""
    kinds = ("accounts", "contacts", "activities", "intent_signals", "opportunities", "users", "status_changes")
    view = CrmView(warehouse)
    crm = {kind: view.read_kind(kind) for kind in kinds}
    derived = {name: warehouse.read_table(getattr(schema, name)) for name in ("mqas", "sla_clocks", "escalations")}
    history = score_history.dense(warehouse.read_table(schema.score_history), score_history.score_runs(warehouse))
    return SlaData.of(**crm, **derived, score_history=history)


def _span(start: pd.Timestamp, end: pd.Timestamp) -> str:
    return f"[{_iso(start)}, {_iso(end)})"


def _iso(moment: pd.Timestamp) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# -- charts ---------------------------------------------------------------------------------------------

def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _empty_note(axis: plt.Axes, shown: bool) -> None:
    if not shown:
        axis.text(0.5, 0.5, "no data in this period", ha="center", va="center", transform=axis.transAxes,
                  color="#777")


def chart_mqas_by_month(volume: pd.DataFrame) -> bytes:
    """Grouped bars: MQAs per tier per month, commitment as a tick per bar."""
    figure, axis = plt.subplots(figsize=(7, 3.2))
    months = sorted(volume["month"].unique())
    x = np.arange(len(months))
    width = 0.26
    for offset, tier in enumerate(sc.TIERS):
        rows = volume[volume["tier"] == tier].set_index("month").reindex(months)
        positions = x + (offset - 1) * width
        axis.bar(positions, rows["mqas"].fillna(0), width, label=f"Tier {tier}")
        if rows["commitment"].notna().any():
            axis.scatter(positions, rows["commitment"], marker="_", s=300, color="black", zorder=3)
    axis.set_xticks(x, months)
    axis.set_ylabel("MQAs")
    axis.set_title("MQAs per tier by month (— commitment, pro-rated)")
    axis.legend(fontsize=8)
    _empty_note(axis, bool(volume["mqas"].sum()))
    return _png(figure)


def chart_response_times(responses: pd.DataFrame, policy: SlaPolicy) -> bytes:
    """Per tier: histogram of business-hour first-touch response with the tier's window."""
    figure, axes = plt.subplots(1, 3, figsize=(9, 2.8), sharey=False)
    for axis, tier in zip(axes, sc.TIERS, strict=True):
        values = responses.loc[responses["tier"] == tier, "response_bh"].dropna()
        window = sc.tier_window(policy, tier)
        if len(values):
            axis.hist(values, bins=min(20, max(5, len(values) // 3)), color="#4C72B0")
        if window.kind == "business_hours":
            axis.axvline(window.amount, color="#C44E52", linestyle="--", label=f"window {window.amount:g} bh")
            axis.legend(fontsize=7)
        axis.set_title(f"Tier {tier} ({sc.window_text(window)})", fontsize=9)
        axis.set_xlabel("business hours to first touch", fontsize=8)
        _empty_note(axis, bool(len(values)))
    figure.suptitle("First-touch response vs the tier window", fontsize=10)
    return _png(figure)


def chart_compliance_trend(trend: pd.DataFrame) -> bytes:
    """Met % per week for each clock."""
    figure, axis = plt.subplots(figsize=(7, 3.2))
    for clock in sc.CLOCKS:
        rows = trend[trend["clock"] == clock]
        axis.plot(rows["week"], rows["met_pct"], marker="o", label=CLOCK_LABELS[clock])
    axis.set_ylim(0, 105)
    axis.set_ylabel("met % of decided clocks")
    axis.set_title("SLA compliance by week (clocks by due week)")
    axis.tick_params(axis="x", labelrotation=45, labelsize=7)
    axis.legend(fontsize=8)
    _empty_note(axis, bool(trend["met_pct"].notna().any()))
    return _png(figure)


def chart_backtest(backtest: pd.DataFrame, policy: SlaPolicy, current: int, proposed: int) -> bytes:
    """Rejection and acceptance % per threshold, MQA count on a second axis, the band shaded."""
    figure, axis = plt.subplots(figsize=(7, 3.2))
    axis.plot(backtest["threshold"], backtest["rejection_pct"], marker=".", color="#C44E52", label="rejection %")
    axis.plot(backtest["threshold"], backtest["acceptance_pct"], marker=".", color="#55A868", label="acceptance %")
    band = policy.targets.rejection_rate if policy.targets else None
    if band is not None:
        axis.axhspan(band.min_pct or 0, band.max_pct or 100, color="#C44E52", alpha=0.12, label="rejection band")
    axis.axvline(current, color="gray", linestyle=":", label=f"current {current}")
    if proposed != current:
        axis.axvline(proposed, color="black", linestyle="--", label=f"proposed {proposed}")
    axis.set_xlabel("hand-off threshold (total points)")
    axis.set_ylabel("acceptance % of MQAs, rejection % of verdicts")
    other = axis.twinx()
    other.bar(backtest["threshold"], backtest["mqas"], alpha=0.2, color="#4C72B0")
    other.set_ylabel("MQAs fired")
    axis.set_zorder(other.get_zorder() + 1)
    axis.patch.set_visible(False)
    axis.legend(fontsize=7, loc="upper left")
    axis.set_title("Hand-off threshold backtest")
    _empty_note(axis, bool(backtest["mqas"].sum()))
    return _png(figure)


# -- building -------------------------------------------------------------------------------------------

def _four_numbers(compliance: pd.DataFrame) -> pd.DataFrame:
    """One row per tier: met % and met/decided per clock (routing, first touch, cadence, status), target, pending."""
    frame = compliance.assign(decided=compliance["met"] + compliance["missed"])
    frame["count"] = frame["met"].astype(str) + "/" + frame["decided"].astype(str)
    rows = pd.DataFrame({"tier": [*sc.TIERS, sc.ALL]})
    for clock in ("routing_time", "first_touch", "cadence", "status_update"):
        part = frame[frame["clock"] == clock].set_index("tier")
        rows[f"{clock}_met_pct"] = rows["tier"].map(part["met_pct"])
        rows[f"{clock}_met_of_decided"] = rows["tier"].map(part["count"])
        if clock == "first_touch":
            rows["first_touch_target_pct"] = rows["tier"].map(part["target_pct"])
    totals = frame.groupby("tier")[["missed", "pending"]].sum()
    rows["missed"] = rows["tier"].map(totals["missed"]).fillna(0).astype(int)
    rows["pending"] = rows["tier"].map(totals["pending"]).fillna(0).astype(int)
    return rows


def build_weekly(warehouse: Warehouse | SlaData, period: str, policy: SlaPolicy,
                 as_of: pd.Timestamp | None = None) -> Report:
    """Last week's four numbers per tier, misses by owner and account, open escalations, tier moves."""
    data = warehouse if isinstance(warehouse, SlaData) else load_data(warehouse)
    start, end = sc.parse_period(period)
    as_of = as_of if as_of is not None else end
    data = data.known_by(as_of)
    span = _span(start, end)
    compliance = sc.clock_compliance(data, start, end, policy)
    responses = sc.response_times(data, start, end, policy)
    trend_start = end - pd.Timedelta(weeks=TREND_WEEKS)
    trend = sc.compliance_trend(data, trend_start, end, policy)
    volume_start = pd.Timestamp(end.year, end.month, 1, tz="UTC") - pd.offsets.MonthBegin(2)
    volume = sc.mqa_volume(data, volume_start, end, policy)
    due = f"sla_clocks where due_at in {span}"
    sections = [
        Section("The four numbers", [
            "Met % is met / (met + missed) of the clocks that came due this week; pending clocks are counted apart.",
        ], tables=[
            Table("four_numbers", "SLA clocks due this week, per tier", _four_numbers(compliance),
                  f"{due}; status as last evaluated (sla_clocks.as_of); first-touch targets from "
                  "policy targets.first_touch_met_pct"),
            Table("response_times", "First-touch response (business hours from routed_at to met_at)",
                  sc.response_summary(responses, policy), f"{due} and clock = first_touch, joined to mqas.routed_at; "
                  "business hours in the owner's time zone and country (users)"),
        ], charts=[
            Chart("response_times", "Response distribution per tier", chart_response_times(responses, policy),
                  f"{due} and clock = first_touch"),
        ]),
        Section("Misses", tables=[
            Table("misses", "Missed clocks by owner and account", sc.clock_misses(data, start, end),
                  f"{due} and status = missed; names from users and accounts"),
            Table("open_escalations", "Open escalations", sc.open_escalations(data, as_of),
                  f"escalations where opened_at <= {_iso(as_of)}, episode open (mqas.ended_at empty or later), "
                  "clock still unmet (sla_clocks.met_at empty or later)"),
        ]),
        Section("Recommended tier moves", [_moves_text(policy)], tables=[
            Table("tier_moves", "Tier moves", sc.tier_moves(data, as_of, policy),
                  f"accounts, activities and intent_signals up to {_iso(as_of)}, opportunities created by then; "
                  "rules from policy targets.tier_moves"),
        ]),
        Section("Trends", tables=[
            Table("compliance_trend", f"Compliance by week (last {TREND_WEEKS} weeks)", trend,
                  f"sla_clocks where due_at in {_span(trend_start, end)}, grouped by ISO week of due_at"),
            Table("mqa_volume", "MQAs per tier by month", volume,
                  f"mqas where trigger_at in {_span(volume_start, end)}; commitments from policy "
                  "targets.monthly_mqa_commitments, pro-rated to the part of the month covered"),
        ], charts=[
            Chart("compliance_trend", "Compliance trend", chart_compliance_trend(trend), "sla_clocks"),
            Chart("mqas_by_month", "MQAs per tier by month", chart_mqas_by_month(volume), "mqas"),
        ]),
    ]
    return Report("weekly", period, start, end, as_of, f"SLA weekly dashboard {period}", sections,
                  _evaluation_notes(data, as_of) + _policy_notes(policy))


def build_quarterly(warehouse: Warehouse | SlaData, period: str, policy: SlaPolicy,
                    as_of: pd.Timestamp | None = None, policy_text: str | None = None,
                    scoring_text: str | None = None) -> Report:
    """The scorecard for the period, chronic misses and the proposals (with diffs) for renegotiation."""
    data = warehouse if isinstance(warehouse, SlaData) else load_data(warehouse)
    start, end = sc.parse_period(period)
    as_of = as_of if as_of is not None else end
    data = data.known_by(as_of)
    span = _span(start, end)
    outcomes = sc.mqa_outcomes(data, as_of)
    responses = sc.response_times(data, start, end, policy)
    volume = sc.mqa_volume(data, start, end, policy)
    trend = sc.compliance_trend(data, start, end, policy)
    mqa_source = (f"mqas where trigger_at in {span}; verdict = first status_changes.status accepted/rejected "
                  f"at or after trigger_at (before the next MQA, by {_iso(as_of)})")
    opp_source = f"opportunities created at or after trigger_at by {_iso(as_of)}"
    due = f"sla_clocks where due_at in {span}"
    closed = f"opportunities where is_closed and close_date in {span}, tier and owner from accounts"
    sections = [
        Section("Marketing", tables=[
            Table("mqa_volume", "MQAs per tier per month vs commitment", volume,
                  f"mqas where trigger_at in {span}; policy targets.monthly_mqa_commitments (pro-rated)"),
            Table("marketing_by_tier", "Acceptance, rejection and conversion per tier",
                  sc.marketing_quality(outcomes, start, end, policy), f"{mqa_source}; {opp_source}"),
            Table("marketing_by_owner", "Acceptance, rejection and conversion per owner",
                  sc.marketing_quality(outcomes, start, end, policy, by="owner_id"), f"{mqa_source}; {opp_source}"),
            Table("engagement", "Account engagement per tier", sc.engagement(data, start, end),
                  f"accounts created before {_iso(end)}; activities of a marketing type with occurred_at in {span}; "
                  "multi-stakeholder = >= 2 distinct contact_id"),
        ], charts=[Chart("mqas_by_month", "MQAs per tier by month", chart_mqas_by_month(volume), "mqas")]),
        Section("Sales", tables=[
            Table("compliance_by_tier", "SLA clocks per tier", sc.clock_compliance(data, start, end, policy),
                  f"{due}; targets from policy targets.first_touch_met_pct"),
            Table("compliance_by_owner", "SLA clocks per owner",
                  sc.clock_compliance(data, start, end, policy, by=("owner_id",)), due),
            Table("response_by_tier", "First-touch response per tier (business hours)",
                  sc.response_summary(responses, policy), f"{due} and clock = first_touch; mqas.routed_at"),
            Table("response_by_owner", "First-touch response per owner (business hours)",
                  sc.response_summary(responses, policy, by="owner_id"), f"{due} and clock = first_touch"),
            Table("progression", "Progression of accepted MQAs", sc.progression(outcomes, start, end),
                  f"{mqa_source}, accepted only; first {opp_source}"),
        ], charts=[
            Chart("response_times", "Response distribution per tier", chart_response_times(responses, policy), due),
            Chart("compliance_trend", "Compliance by week", chart_compliance_trend(trend), due),
        ]),
        Section("Joint", [
            "Pipeline: marketing-sourced, sales-first (marketing-influenced) and sales-sourced add up to all; "
            "marketing-influenced is sourced + sales-first, so it is not added to the others.",
        ], tables=[
            Table("pipeline", "Pipeline created in the period by attribution",
                  sc.pipeline_attribution(data, start, end),
                  f"opportunities where created_at in {span}; activities in the 180 days before created_at; "
                  "from_mqa = an MQA fired on the account by created_at (mqas)"),
            Table("win_rates", "Win rate and sales cycle", sc.win_rates(data, start, end, as_of, policy), closed),
        ]),
        Section("Commitments", [
            "Chronic = missed this quarter and the one before: renegotiate. A miss spread over most owners is a "
            "system problem (fix routing, cadence or staffing); concentrated on a few owners, a coaching matter.",
        ], tables=[
            Table("chronic_misses", "Commitments this quarter and last", sc.chronic_misses(data, end, as_of, policy),
                  "the tables above recomputed for the quarter containing the period and the quarter before; "
                  "targets from policy targets"),
        ]),
    ]
    proposal_section, notes = _proposal_section(data, start, end, as_of, policy, policy_text, scoring_text)
    sections.append(proposal_section)
    return Report("quarterly", period, start, end, as_of, f"SLA quarterly review {period}", sections,
                  _evaluation_notes(data, as_of) + _policy_notes(policy) + notes)


def _proposal_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                      policy: SlaPolicy, policy_text: str | None, scoring_text: str | None
                      ) -> tuple[Section, list[str]]:
    text = policy_text if policy_text is not None else DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    found = proposals_module.build_proposals(data, start, end, as_of, policy, text, scoring_text)
    threshold = found.threshold
    span = _span(start, end)
    section = Section("Proposals", [
        f"Hand-off threshold: current {threshold.current}, proposed {threshold.proposed} — {threshold.reason}.",
        "Backtest: each account fires at its first scored as_of passing the threshold and every other gate, "
        "again only after a rejected/nurture status. Rates as in the marketing scorecard: acceptance and "
        "conversion over the simulated MQAs, rejection over those with a verdict (accepted or rejected; an "
        "account never handed off rarely has one).",
        *found.notes,
        "Apply a diff with `patch -p1 < file.diff` from the project folder." if found.diffs else
        "No configuration change proposed.",
    ], tables=[
        Table("threshold_backtest", "Hand-off threshold backtest", found.backtest,
              f"score_history where as_of in {span} (total, gates); status_changes and opportunities by {_iso(as_of)}"),
        Table("window_proposals", "First-touch windows from observed response (p80, rounded up)", found.windows,
              f"sla_clocks where due_at in {span} and clock = first_touch, answered; mqas.routed_at"),
        Table("volume_proposals", "Monthly MQA commitments from the trailing run-rate", found.volumes,
              "mqas where trigger_at in the 3 full months before the period end"),
    ], charts=[
        Chart("threshold_backtest", "Threshold backtest",
              chart_backtest(found.backtest, policy, threshold.current, threshold.proposed), "score_history"),
    ], code=found.diffs)
    return section, []


def _moves_text(policy: SlaPolicy) -> str:
    rules = policy.targets.tier_moves if policy.targets else None
    if rules is None:
        return "The policy has no targets.tier_moves: no moves recommended."
    parts = [f"{name}: {value}" for name, value in rules.model_dump().items() if value]
    return "Rules (policy targets.tier_moves): " + "; ".join(parts) + "."


def _evaluation_notes(data: SlaData, as_of: pd.Timestamp) -> list[str]:
    """Say when the clocks were last evaluated if that is before the report's as-of."""
    evaluated = data.clocks_evaluated_at()
    if evaluated is None or evaluated >= as_of:
        return []
    return [f"Clock statuses are those of the last SLA evaluation, as of {_iso(evaluated)}: a clock due "
            f"between then and {_iso(as_of)} still shows as pending. Run `sla-monitor` (or `abm-sla run`) "
            "as of the period's end for final figures."]


def _policy_notes(policy: SlaPolicy) -> list[str]:
    targets = policy.targets
    if targets is None:
        return ["The policy has no targets section: numbers are shown without targets."]
    missing = [name for name in ("first_touch_met_pct", "rejection_rate", "tier1_win_rate_pct",
                                 "sales_cycle_days_max", "opportunity_to_won_pct", "monthly_mqa_commitments",
                                 "tier_moves") if getattr(targets, name) is None]
    notes = [f"Targets not set in the policy: {', '.join(missing)}."] if missing else []
    return [*notes, f"Policy: {policy.name}. Status-update and cadence clocks have no % target in the policy."]


# -- rendering ------------------------------------------------------------------------------------------

def _display(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells as text: ISO timestamps, trimmed floats, '' for missing."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            out[column] = values.map(lambda t: t.strftime("%Y-%m-%d %H:%M"), na_action="ignore")
        elif pd.api.types.is_float_dtype(values):
            out[column] = values.map(lambda v: f"{v:,.2f}".rstrip("0").rstrip("."), na_action="ignore")
    return out.astype(object).where(out.notna(), "")


def _csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].map(_iso, na_action="ignore")
    return out


def _footnotes(report: Report) -> dict[str, int]:
    """Footnote number of each table and chart source, in order of appearance."""
    numbers: dict[str, int] = {}
    for section in report.sections:
        for item in [*section.tables, *section.charts]:
            numbers.setdefault(f"{type(item).__name__}:{item.name}", len(numbers) + 1)
    return numbers


def _md_cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report, chart_dir: str | None = "charts") -> str:
    numbers = _footnotes(report)
    lines = [f"# {report.title}", "",
             f"Period {report.period}: {_span(report.start, report.end)}, as of {_iso(report.as_of)}.", ""]
    lines += [f"> {note}" for note in report.notes] + ([""] if report.notes else [])
    sources = []
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        for paragraph in section.text:
            lines += [paragraph, ""]
        for table in section.tables:
            number = numbers[f"Table:{table.name}"]
            sources.append(f"[^{number}]: `{table.name}` — {table.source}")
            lines += [f"### {table.title}[^{number}]", ""]
            shown = _display(table.frame)
            if shown.empty:
                lines += ["_No rows._", ""]
                continue
            lines.append("| " + " | ".join(map(_md_cell, shown.columns)) + " |")
            lines.append("|" + "---|" * len(shown.columns))
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in shown.itertuples(index=False)]
            lines.append("")
        for chart in section.charts:
            number = numbers[f"Chart:{chart.name}"]
            sources.append(f"[^{number}]: chart `{chart.name}` — {chart.source}")
            if chart_dir is not None:
                lines += [f"![{chart.title}]({chart_dir}/{chart.name}.png)[^{number}]", ""]
        for name, diff in section.code.items():
            lines += [f"Proposed change to `{name}`:", "", "```diff", diff.rstrip("\n"), "```", ""]
    return "\n".join([*lines, "---", "", *sources, ""])


HTML_TEMPLATE = jinja2.Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ report.title }}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:.5rem 0 1.5rem}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
.note{background:#fff8e1;padding:.4rem .8rem;border-left:4px solid #f0b400}
figure{margin:1rem 0}figure img{max-width:100%;border:1px solid #eee}
pre{background:#f6f8fa;padding:.8rem;overflow:auto;font-size:12px}.sources{font-size:12px;color:#555}
</style></head><body>
<h1>{{ report.title }}</h1>
<p>Period {{ report.period }}: {{ span }}, as of {{ as_of }}.</p>
{% for note in report.notes %}<p class="note">{{ note }}</p>{% endfor %}
{% for section in sections %}<section><h2>{{ section.title }}</h2>
{% for paragraph in section.text %}<p>{{ paragraph }}</p>{% endfor %}
{% for table in section.tables %}<h3 id="table-{{ table.name }}">{{ table.title }}
<sup><a href="#src-{{ table.number }}">{{ table.number }}</a></sup></h3>
{% if table.rows %}<table><thead><tr>{% for c in table.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead><tbody>
{% for row in table.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>{% else %}<p><em>No rows.</em></p>{% endif %}
{% endfor %}
{% for chart in section.charts %}<figure>
<img id="chart-{{ chart.name }}" alt="{{ chart.title }}" src="data:image/png;base64,{{ chart.data }}">
<figcaption>{{ chart.title }}<sup><a href="#src-{{ chart.number }}">{{ chart.number }}</a></sup></figcaption>
</figure>
{% endfor %}
{% for name, diff in section.code.items() %}<p>Proposed change to <code>{{ name }}</code>:</p>
<pre>{{ diff }}</pre>{% endfor %}
</section>{% endfor %}
<hr><ol class="sources">{% for number, text in sources %}
<li id="src-{{ number }}" value="{{ number }}">{{ text }}</li>{% endfor %}</ol>
</body></html>
""", autoescape=True)


def render_html(report: Report) -> str:
    numbers = _footnotes(report)
    sources: list[tuple[int, str]] = []
    sections = []
    for section in report.sections:
        tables = []
        for table in section.tables:
            number = numbers[f"Table:{table.name}"]
            sources.append((number, f"{table.name}: {table.source}"))
            shown = _display(table.frame)
            tables.append({"name": table.name, "title": table.title, "number": number,
                           "columns": list(shown.columns), "rows": shown.itertuples(index=False, name=None)})
        charts = []
        for chart in section.charts:
            number = numbers[f"Chart:{chart.name}"]
            sources.append((number, f"chart {chart.name}: {chart.source}"))
            charts.append({"name": chart.name, "title": chart.title, "number": number,
                           "data": base64.b64encode(chart.png).decode("ascii")})
        sections.append({"title": section.title, "text": section.text, "tables": tables, "charts": charts,
                         "code": section.code})
    return HTML_TEMPLATE.render(report=report, sections=sections, sources=sources,
                                span=_span(report.start, report.end), as_of=_iso(report.as_of))


# -- writing --------------------------------------------------------------------------------------------

def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def write_report(report: Report, out_dir: str | Path) -> dict[str, Path]:
    """Write ``<stem>.html``/``.md``, ``tables/<stem>/<name>.csv``, ``charts/<stem>/<name>.png`` and
    ``<stem>-<file>.diff``, where ``<stem>`` is ``<kind>-<period>``: reports written to one folder never
    overwrite each other's tables, charts or diffs."""
    out = Path(out_dir)
    stem = f"{report.kind}-{_slug(report.period)}"
    tables, charts = out / "tables" / stem, out / "charts" / stem
    tables.mkdir(parents=True, exist_ok=True)
    charts.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / f"{stem}.html", "markdown": out / f"{stem}.md"}
    paths["html"].write_text(report.html(), encoding="utf-8")
    paths["markdown"].write_text(report.markdown(f"charts/{stem}"), encoding="utf-8")
    for name, table in report.tables.items():
        paths[f"table:{name}"] = tables / f"{name}.csv"
        _csv_frame(table.frame).to_csv(paths[f"table:{name}"], index=False)
    for name, chart in report.charts.items():
        paths[f"chart:{name}"] = charts / f"{name}.png"
        paths[f"chart:{name}"].write_bytes(chart.png)
    for name, diff in report.diffs.items():
        paths[f"diff:{name}"] = out / f"{stem}-{_slug(Path(name).name)}.diff"
        paths[f"diff:{name}"].write_text(diff, encoding="utf-8")
    return paths


def build_report(db_url_or_warehouse: str | Warehouse, kind: str, period: str,
                 policy_path: str | Path | None = None, scoring_path: str | Path | None = None) -> Report:
    """The ``weekly`` or ``quarterly`` report for ``period``, built from the warehouse."""
    if kind not in KINDS:
        raise AbmSlaError(f"report kind {kind!r} is not one of {', '.join(KINDS)}")
    sc.parse_period(period)  # a bad period fails before the database is touched
    warehouse = Warehouse(db_url_or_warehouse) if isinstance(db_url_or_warehouse, str) else db_url_or_warehouse
    policy_file = Path(policy_path) if policy_path is not None else DEFAULT_POLICY_PATH
    policy = load_policy(policy_file)
    if kind == "weekly":
        return build_weekly(warehouse, period, policy)
    scoring_file = Path(scoring_path) if scoring_path is not None else DEFAULT_SCORING_PATH
    scoring_text = scoring_file.read_text(encoding="utf-8") if scoring_file.is_file() else None
    return build_quarterly(warehouse, period, policy, policy_text=policy_file.read_text(encoding="utf-8"),
                           scoring_text=scoring_text)


def generate_report(db_url_or_warehouse: str | Warehouse, kind: str, period: str, out_dir: str | Path,
                    policy_path: str | Path | None = None, scoring_path: str | Path | None = None
                    ) -> dict[str, Path]:
    """Build and write the ``weekly`` or ``quarterly`` report for ``period``; returns the written paths."""
    return write_report(build_report(db_url_or_warehouse, kind, period, policy_path, scoring_path), out_dir)
