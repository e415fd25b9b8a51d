"""Weekly dashboard, monthly review and quarterly renegotiation report: HTML (charts embedded), Markdown,
one CSV per table.

:func:`build_weekly` / :func:`build_monthly` / :func:`build_quarterly` read the warehouse once, compute with
the pure :mod:`abm_sla.domain.scorecard`, :mod:`abm_sla.domain.review`, :mod:`abm_sla.domain.tier_moves` and
:mod:`abm_sla.domain.proposals`, and return a :class:`Report` (tables as frames,
charts as PNG bytes, Markdown and HTML text) that Prefect tasks can turn into artifacts;
:func:`write_report` writes it; :func:`generate_report` is the one call the CLI makes. Every table
names its source (warehouse table + filter) in a numbered footnote.
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jinja2
import matplotlib
from markupsafe import Markup

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from abm_sla.domain import breaches, dispositions, leads, regions, review, routed_records, signoff
from abm_sla.domain import commitments as cm
from abm_sla.domain import coordination as co
from abm_sla.domain import crm_updates as cu
from abm_sla.domain import feedback as fb
from abm_sla.domain import marketing as mk
from abm_sla.domain import metrics as catalog
from abm_sla.domain import proposals as proposals_module
from abm_sla.domain import scorecard as sc
from abm_sla.domain import team_clocks as tc
from abm_sla.domain import tier_moves as tm
from abm_sla.domain.policy import DEFAULT_PATH as DEFAULT_POLICY_PATH
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard import SlaData
from abm_sla.domain.sla import OPTIONAL_CLOCKS
from abm_sla.errors import AbmSlaError, ConfigError
from abm_sla.infra import atomic
from abm_sla.infra.progress import track
from abm_sla.services import exports
from abm_sla.services import report_format as fmt
from abm_sla.services.config_files import load_model, load_policy
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
        return render_markdown(self, chart_dir)

    def html(self) -> str:
        """A self-contained HTML page (charts as base64 PNG)."""
        return render_html(self)


# -- reading --------------------------------------------------------------------------------------------

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
    axis.set_title(CHART_TITLES["mqas_by_month"] + "\n(bars: MQAs fired; — commitment, pro-rated)", fontsize=10)
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
    figure.suptitle(CHART_TITLES["response_times"] + " (dashed: the tier's window)", fontsize=10)
    return _png(figure)


def chart_compliance_trend(trend: pd.DataFrame) -> bytes:
    """Met % per week for each clock."""
    figure, axis = plt.subplots(figsize=(7, 3.2))
    for clock in sc.CLOCKS:
        rows = trend[trend["clock"] == clock]
        axis.plot(rows["week"], rows["met_pct"], marker="o", label=CLOCK_LABELS[clock])
    axis.set_ylim(0, 105)
    axis.set_ylabel("met % of decided clocks")
    axis.set_title(CHART_TITLES["compliance_trend"] + "\n(met % of clocks decided, by due week)", fontsize=10)
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
    axis.set_title(CHART_TITLES["threshold_backtest"], fontsize=10)
    _empty_note(axis, bool(backtest["mqas"].sum()))
    return _png(figure)


# -- the first screen: scorecard and what needs a decision ----------------------------------------------

DECISION_ROWS = 5


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


def _chronic_decision(chronic: pd.DataFrame, link: str) -> Decision:
    rows = chronic[chronic["chronic"]]
    columns = ["commitment", "tier", "value", "previous_value", "target", "diagnosis"]
    if rows.empty:
        summary = (f"none: no commitment was missed in both {chronic['quarter'].iloc[0]} and "
                   f"{chronic['previous_quarter'].iloc[0]}." if len(chronic) else "none: the policy sets no targets.")
        return Decision("Chronic misses to renegotiate", summary, "no chronic misses", link=link)
    names = ", ".join(fmt.commitment_name(c, t) for c, t in zip(rows["commitment"], rows["tier"], strict=True))
    return Decision("Chronic misses to renegotiate",
                    f"{len(rows)} commitments missed this quarter and the one before: {names}.",
                    f"{len(rows)} chronic misses", Table("chronic_misses", "Chronic misses",
                                                         rows[columns].reset_index(drop=True), ""), link)


def _moves_decision(moves: pd.DataFrame, link: str) -> Decision:
    moves = moves[moves["decision"].eq(tm.PENDING)] if "decision" in moves.columns else moves
    if moves.empty:
        return Decision("Tier moves awaiting sales", "none pending.", "no tier moves", link=link)
    counts = moves["rule"].map(fmt.RULE_NAMES).fillna(moves["rule"]).value_counts()
    summary = f"{len(moves):,} accounts: " + ", ".join(f"{n:,} {rule}" for rule, n in counts.items()) + "."
    top = moves.head(DECISION_ROWS)[["account_id", "account_name", "owner_id", "owner_name", "tier",
                                      "proposed_tier", "reason", "age_days"]]
    return Decision("Tier moves awaiting sales", summary, f"{len(moves):,} tier moves",
                    Table("tier_moves", "Tier moves", top, ""), link)


def _escalations_decision(escalations: pd.DataFrame, as_of: pd.Timestamp, link: str) -> Decision:
    if escalations.empty:
        return Decision("Escalations open longest", "no escalation is open.", "no open escalations", link=link)
    oldest = escalations.sort_values("first_opened_at").head(DECISION_ROWS).copy()
    oldest["open_for_days"] = ((as_of - oldest["first_opened_at"]) / sc.DAY).round(1)
    top = oldest[["account_id", "account_name", "owner_id", "owner_name", "tier", "clock", "level",
                  "open_for_days"]].reset_index(drop=True)
    longest = fmt.days(oldest["open_for_days"].iloc[0])
    return Decision("Escalations open longest", f"{len(escalations):,} open; the oldest for {longest}.",
                    f"{len(escalations):,} escalations open (oldest {longest})",
                    Table("open_escalations", "Escalations open longest", top, ""), link)


def _proposals_decision(found: proposals_module.Proposals, link: str) -> Decision:
    threshold = found.threshold
    changes = [f"hand-off threshold {threshold.current} → {threshold.proposed}"] \
        if threshold.proposed != threshold.current else []
    changes += [f"{fmt.tier(row.tier)} first-touch window {row.current:g} → {float(row.proposed):g} "
                f"{str(row.unit).replace('_', ' ')}"
                for row in found.windows.itertuples() if pd.notna(row.proposed)]
    changes += [f"{fmt.tier(row.tier)} MQA commitment {row.current} → {row.proposed} a month"
                for row in found.volumes.itertuples() if pd.notna(row.proposed)]
    if not found.diffs:
        return Decision("Proposals to agree", "no configuration change proposed.", "no proposals", link=link)
    return Decision("Proposals to agree", "; ".join(changes) + "." if changes else "see the diffs.",
                    f"{len(found.diffs)} config changes proposed", link=link, code=found.diffs,
                    link_text="Evidence")


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


def _feedback_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                      policy: SlaPolicy, table: pd.DataFrame) -> Section:
    """Issue 14's feedback loop: dispositions, disqualification patterns, conversion by hand-off source,
    the optional clocks' compliance, unknown status values and what routing time measures."""
    span = _span(start, end)
    mqas = fb.mqas_in(data, start, end, as_of, policy)
    outcomes = sc.mqa_outcomes(data, as_of, policy)
    basis = fb.routing_basis(table, policy)
    episode = (f"mqas where trigger_at in {span}; disposition = that of the MQA's verdict (as in the scorecard), "
               f"else the latest status_changes.status of the episode (trigger_at to ended_at or {_iso(as_of)}), "
               "mapped by policy dispositions")
    switched = [name for name in OPTIONAL_CLOCKS if getattr(policy.clocks, name)]
    text = [fb.routing_sentence(basis),
            "Feedback clocks on in this policy: " + (", ".join(switched) if switched else "none (switch on clocks."
                                                    + " / ".join(OPTIONAL_CLOCKS) + ")") + "."]
    return Section("Feedback loop", text, tables=[
        Table("disposition_mix_by_tier", "Disposition mix per tier", fb.disposition_mix(outcomes, start, end, "tier"),
              episode),
        Table("disposition_mix_by_owner", "Disposition mix per owner",
              _with_owner_names(fb.disposition_mix(outcomes, start, end, "owner_id"), data), episode),
        Table("disqualification_patterns", "Rejection reasons, ranked (disqualification patterns)",
              fb.rejection_reasons(mqas, policy),
              f"{episode}; dispositions {', '.join(policy.dispositions.feedback)}; reason = the latest "
              "status_changes.reason from trigger_at to the account's next MQA"),
        Table("conversion_by_source", "Conversion by hand-off source",
              fb.conversion_by_source(data, start, end, as_of, policy),
              f"mqas where trigger_at in {span}; source = the scoring rule of the signal at trigger_at found in "
              f"mqas.reasons (else the top non-firmographic reason); opportunities created by {_iso(as_of)}"),
        Table("feedback_compliance", "Feedback and recurring-status clocks per owner",
              _with_owner_names(fb.optional_compliance(data, start, end), data),
              f"sla_clocks where due_at in {span} and clock in ({', '.join(OPTIONAL_CLOCKS)})"),
        Table("routing_basis", "What routing time was measured to", basis,
              f"sla_clocks where due_at in {span} and clock = routing_time; mqas.writeback_done_at; activities "
              "of type owner_assigned; metrics catalog: " + ", ".join(catalog.ROUTING_BASES.values())),
        Table("unknown_statuses", "Status values the policy does not map (kept, never dropped)",
              dispositions.unknown_statuses(data.status_changes[data.status_changes["changed_at"] <= as_of], policy),
              f"status_changes by {_iso(as_of)}; map from policy dispositions.map and the built-in map"),
    ])


def team_clock_compliance(table: pd.DataFrame, policy: SlaPolicy) -> pd.DataFrame:
    """Per team clock the policy switches on: who owes it, met / missed / pending and met % of those due in the
    period, overall (``all``) and per owner, read from the metrics catalog's team_clocks family."""
    rows = []
    for clock in tc.enabled(policy):
        ids = catalog.clock_metric_ids(clock)
        mine = table[table["metric"].isin(list(ids.values()))]
        segments = [catalog.ALL, *sorted(s for s in mine["segment"].unique() if str(s).startswith("owner="))]
        for segment in segments:
            values = {column: catalog.value(table, metric, segment) for column, metric in ids.items()}
            counts = {status: int(np.nan_to_num(values[status])) for status in catalog.CLOCK_STATUSES}
            if segment != catalog.ALL and not any(counts.values()):
                continue
            rows.append({"clock": clock, "owed_by": tc.OWED_BY[clock],
                         "owner_id": segment.removeprefix("owner=") if segment != catalog.ALL else catalog.ALL,
                         **counts, "met_pct": values["met_pct"]})
    columns = ["clock", "owed_by", "owner_id", *catalog.CLOCK_STATUSES, "met_pct"]
    return pd.DataFrame(rows, columns=columns)


def _team_clocks_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                         policy: SlaPolicy, table: pd.DataFrame) -> list[Section]:
    """Issue 26 (ABM template): requests answered between the teams and hot accounts coordinated; no section
    when the policy switches none of them on."""
    on = tc.enabled(policy)
    if not on:
        return []
    span = _span(start, end)
    clocks = catalog.team_clocks(data, as_of, policy)
    names = data.accounts.drop_duplicates("account_id", keep="last").set_index("account_id")["name"]
    windows = []
    if policy.requests is not None:
        windows += [f"{tc.REQUEST_CLOCK[kind]} within {_window_text(getattr(policy.requests, kind))}"
                    for kind in ("materials", "account_info") if getattr(policy.requests, kind) is not None]
    if policy.hot_accounts is not None:
        windows.append(f"hot_account within {_window_text(policy.hot_accounts.window)} (met by "
                       + ", ".join(policy.hot_accounts.coordinated_by) + ")")
    text = ["Clocks on in this policy: " + "; ".join(windows) + ". Met % is met / (met + missed) of the clocks "
            "that came due this period; the due time is in the calendar of whoever owes the answer."]
    if policy.requests is not None and not len(data.requests):
        text.append("No requests loaded (the export folder has no requests.csv): the request clocks have no rows.")
    source = (f"requests (requests.csv) and activities of type {tc.frames.HOT_FLAG}, due_at in {span}, evaluated as of "
              f"{_iso(as_of)}; owner = requests.owner_id, else accounts.owner_id; calendar from users")
    return [Section("Requests and hot accounts", text, tables=[
        Table("team_clock_compliance", "Requests answered and hot accounts coordinated, per owner",
              _with_owner_names(team_clock_compliance(table, policy), data), source),
        Table("team_clock_open", "Requests and hot accounts to chase: late this week, or still unanswered",
              _with_owner_names(tc.late_or_open(tc.to_chase(clocks, start, end), names), data),
              f"{source.replace(f'due_at in {span}, ', '')}; status missed or pending: due in {span}, or due "
              f"earlier and still unanswered; requested or flagged before {_iso(end)}"),
    ])]


def _window_text(window) -> str:
    """``16 business hours``, ``24 hours``, ``2 days``, ``the same business day``."""
    if window.kind == "same_business_day":
        return "the same business day"
    return f"{window.amount:g} {window.kind.replace('_', ' ')}"


def build_weekly(warehouse: Warehouse | SlaData, period: str, policy: SlaPolicy,
                 as_of: pd.Timestamp | None = None) -> Report:
    """Last week's four numbers per tier, misses by owner and account, open escalations, tier moves."""
    data = warehouse if isinstance(warehouse, SlaData) else load_data(warehouse)
    start, end = sc.parse_period(period)
    as_of = as_of if as_of is not None else end
    data = data.known_by(as_of)
    table = catalog.compute(data, start, end, as_of, policy, report="weekly")
    span = _span(start, end)
    compliance = sc.clock_compliance(data, start, end, policy)
    responses = sc.response_times(data, start, end, policy)
    trend_start = end - pd.Timedelta(weeks=TREND_WEEKS)
    trend = sc.compliance_trend(data, trend_start, end, policy)
    volume_start = pd.Timestamp(end.year, end.month, 1, tz="UTC") - pd.offsets.MonthBegin(2)
    volume = catalog.mqa_volume(data, volume_start, end, as_of, policy)
    due = f"sla_clocks where due_at in {span}"
    moves = tier_move_table(data, start, as_of, policy)
    escalations = sc.open_escalations(data, as_of)
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
            Chart("response_times", CHART_TITLES["response_times"], chart_response_times(responses, policy),
                  f"{due} and clock = first_touch"),
        ]),
        _weekly_additions(data, start, end, as_of, policy),
        Section("Misses", tables=[
            Table("misses", "Missed clocks by owner and account", sc.clock_misses(data, start, end),
                  f"{due} and status = missed; names from users and accounts"),
            Table("open_escalations", "Open escalations", escalations,
                  f"escalations where opened_at <= {_iso(as_of)}, episode open (mqas.ended_at empty or later), "
                  "clock still unmet (sla_clocks.met_at empty or later)"),
        ]),
        *_intent_list_section(data, start, end, policy, table),
        *_crm_updates_section(data, start, end, policy, table),
        *_routed_record_section(data, start, end, policy, table),
        _feedback_section(data, start, end, as_of, policy, table),
        *_team_clocks_section(data, start, end, as_of, policy, table),
        *_collisions_section(data, start, end, as_of, policy, table),
        _breaches_section(data, policy, start, end, as_of, weekly=True, table=table),
        Section("Recommended tier moves", [_moves_text(policy), MOVES_LEDGER_TEXT], tables=[
            Table("tier_moves", "Tier moves: pending, and decided this week", moves, _moves_source(as_of)),
        ]),
        Section("Trends", tables=[
            Table("compliance_trend", f"Compliance by week (last {TREND_WEEKS} weeks)", trend,
                  f"sla_clocks where due_at in {_span(trend_start, end)}, grouped by ISO week of due_at"),
            Table("mqa_volume", "MQAs per tier by month", volume,
                  f"mqas where trigger_at in {_span(volume_start, end)}; commitments from policy "
                  "targets.monthly_mqa_commitments, pro-rated to the part of the month covered"),
        ], charts=[
            Chart("compliance_trend", CHART_TITLES["compliance_trend"], chart_compliance_trend(trend), "sla_clocks"),
            Chart("mqas_by_month", CHART_TITLES["mqas_by_month"], chart_mqas_by_month(volume), "mqas"),
        ]),
    ]
    commitments, commitment_notes = commitments_section(data, table, start, end, as_of, policy, label="this week")
    sections[5:5] = [commitments] if commitments is not None else []
    sections += regional_section(table, policy, span)
    decisions = [_chronic_decision(sc.chronic_misses(data, end, as_of, policy), ""),
                 _moves_decision(moves, "#table-tier_moves"),
                 _escalations_decision(escalations, as_of, "#table-open_escalations")]
    empty = no_data_line(data, period, start, end)
    return Report("weekly", period, start, end, as_of, f"SLA weekly dashboard {period}", sections,
                  [empty] * bool(empty) + _evaluation_notes(data, as_of) + _policy_notes(policy) + commitment_notes,
                  sc.headline(data, start, end, as_of, policy, table), period_label(*sc.previous_period(start, end)),
                  decisions, measured=empty is None, metrics=table)


def build_quarterly(warehouse: Warehouse | SlaData, period: str, policy: SlaPolicy,
                    as_of: pd.Timestamp | None = None, policy_text: str | None = None,
                    scoring_text: str | None = None, policy_path: str | Path | None = None,
                    scoring_path: str | Path | None = None) -> Report:
    """The scorecard for the period, chronic misses and the proposals (with diffs) for renegotiation; the diffs
    name ``policy_path`` and ``scoring_path``, the files the run used (default ``config/sla.yaml``, ...)."""
    data = warehouse if isinstance(warehouse, SlaData) else load_data(warehouse)
    start, end = sc.parse_period(period)
    as_of = as_of if as_of is not None else end
    data = data.known_by(as_of)
    table = catalog.compute(data, start, end, as_of, policy, report="quarterly")
    span = _span(start, end)
    outcomes = sc.mqa_outcomes(data, as_of, policy)
    responses = sc.response_times(data, start, end, policy)
    volume = catalog.mqa_volume(data, start, end, as_of, policy)
    trend = sc.compliance_trend(data, start, end, policy)
    mqa_source = _verdict_source(span, as_of, policy)
    opp_source = f"opportunities created at or after trigger_at by {_iso(as_of)}"
    due = f"sla_clocks where due_at in {span}"
    closed = f"opportunities where is_closed and close_date in {span}, tier and owner from accounts"
    chronic = _with_missing_owner_names(sc.chronic_misses(data, end, as_of, policy), data)
    moves = tier_move_table(data, start, as_of, policy)
    escalations = sc.open_escalations(data, as_of)
    sections = [
        Section("Marketing", tables=[
            Table("mqa_volume", "MQAs per tier per month vs commitment", volume,
                  f"mqas where trigger_at in {span}; policy targets.monthly_mqa_commitments (pro-rated)"),
            *_weekly_mqa_tables(data, start, end, as_of, policy, table),
            Table("marketing_by_tier", "Acceptance, rejection and conversion per tier",
                  sc.marketing_quality(outcomes, start, end, policy), f"{mqa_source}; {opp_source}"),
            Table("marketing_by_owner", "Acceptance, rejection and conversion per owner",
                  _with_owner_names(sc.marketing_quality(outcomes, start, end, policy, by="owner_id"), data),
                  f"{mqa_source}; {opp_source}"),
            Table("engagement", "Account engagement per tier", sc.engagement(data, start, end),
                  f"accounts created before {_iso(end)}; activities of a marketing type with occurred_at in {span}; "
                  "multi-stakeholder = >= 2 distinct contact_id"),
        ], charts=[Chart("mqas_by_month", CHART_TITLES["mqas_by_month"], chart_mqas_by_month(volume), "mqas")]),
        *_leads_section(data, start, end, policy, table),
        marketing_side_section(data, start, end, as_of, policy, table),
        Section("Sales", tables=[
            Table("compliance_by_tier", "SLA clocks per tier", sc.clock_compliance(data, start, end, policy),
                  f"{due}; targets from policy targets.first_touch_met_pct"),
            Table("compliance_by_owner", "SLA clocks per owner",
                  _with_owner_names(sc.clock_compliance(data, start, end, policy, by=("owner_id",)), data), due),
            Table("response_by_tier", "First-touch response per tier (business hours)",
                  sc.response_summary(responses, policy), f"{due} and clock = first_touch; mqas.routed_at"),
            Table("response_by_owner", "First-touch response per owner (business hours)",
                  _with_owner_names(sc.response_summary(responses, policy, by="owner_id"), data),
                  f"{due} and clock = first_touch"),
            Table("progression", "Progression of accepted MQAs", sc.progression(outcomes, start, end),
                  f"{mqa_source}, accepted only; first {opp_source}"),
        ], charts=[
            Chart("response_times", CHART_TITLES["response_times"], chart_response_times(responses, policy), due),
            Chart("compliance_trend", CHART_TITLES["compliance_trend"], chart_compliance_trend(trend), due),
        ]),
        _feedback_section(data, start, end, as_of, policy, table),
        Section("Joint", [
            _credit_text(policy) + " The three add up to all; marketing-influenced is the first two, so it is not "
            "added to the others.",
        ], tables=[
            Table("pipeline", "Pipeline created in the period by attribution",
                  sc.pipeline_attribution(data, start, end, policy),
                  _credit_source(span, policy) + "; from_mqa = an MQA fired on the account by created_at (mqas)"),
            Table("win_rates", "Win rate and sales cycle", sc.win_rates(data, start, end, as_of, policy), closed),
            Table("money", "Won revenue by source and customer acquisition cost", money_table(table, policy),
                  f"{closed}, is_won; source by the pipeline-credit rule; spend: policy money (spend rows and "
                  "spend_file) pro-rated to the period; CAC = spend / opportunities won (metrics catalog: "
                  "won_revenue, marketing_spend, cac)", "" if policy.money.spend else
                  "No spend is recorded (policy money.spend or money.spend_file): CAC is not computed."),
        ]),
        Section("Commitments", [
            "Chronic = missed this quarter and the one before: renegotiate. A miss spread over most owners is a "
            "system problem (fix routing, cadence or staffing); concentrated on a few owners, a coaching matter.",
        ], tables=[
            Table("chronic_misses", "Commitments this quarter and last", chronic,
                  "the tables above recomputed for the quarter containing the period and the quarter before; "
                  "targets from policy targets"),
            Table("tier_moves", "Tier moves: pending, and decided this quarter", moves, _moves_source(as_of)),
            Table("tier_move_decisions", "Tier-move recommendations of the quarter and sales' decisions",
                  tm.summary(_ledger(data, as_of, policy), start, end, as_of), _moves_source(as_of)),
            Table("open_escalations", "Open escalations", escalations,
                  f"escalations where opened_at <= {_iso(as_of)}, episode open (mqas.ended_at empty or later), "
                  "clock still unmet (sla_clocks.met_at empty or later)"),
        ]),
    ]
    commitments, commitment_notes = commitments_section(data, table, start, end, as_of, policy, label="this quarter")
    sections += [commitments] if commitments is not None else []
    sections.append(_breaches_section(data, policy, start, end, as_of, weekly=False, table=table))
    proposal_section, notes, found = _proposal_section(data, start, end, as_of, policy, policy_text, scoring_text,
                                                       policy_path, scoring_path, table)
    sections.append(proposal_section)
    sections.append(_pipeline_section(data, start, end, scoring_text))
    sections += regional_section(table, policy, span)
    review_sections, review_notes = _quarterly_review_section(data, start, end, as_of, policy, table)
    sections += review_sections
    notes += review_notes
    decisions = [_chronic_decision(chronic, "#table-chronic_misses"),
                 _proposals_decision(found, "#section-proposals"),
                 _moves_decision(moves, "#table-tier_moves"),
                 _escalations_decision(escalations, as_of, "#table-open_escalations")]
    empty = no_data_line(data, period, start, end)
    return Report("quarterly", period, start, end, as_of, f"SLA quarterly review {period}", sections,
                  [empty] * bool(empty) + _evaluation_notes(data, as_of) + _policy_notes(policy) + notes
                  + commitment_notes,
                  sc.headline(data, start, end, as_of, policy, table), period_label(*sc.previous_period(start, end)),
                  decisions, measured=empty is None, metrics=table)


MONEY_COLUMNS = ["measure", "value", "target", "verdict"]


def money_table(table: pd.DataFrame, policy: SlaPolicy) -> pd.DataFrame:
    """Won revenue per part of the pipeline-credit rule and in all, opportunities won, spend and CAC against
    ``targets.cac_max``: rows of the metrics catalog table ``table``."""
    parts = zip(sc.credit_parts(policy), catalog.SOURCE_SEGMENTS, strict=True)
    wanted = [(f"Won revenue: {label}", "won_revenue", f"source={slug}") for label, slug in parts]
    wanted += [("Won revenue: all", "won_revenue", catalog.ALL),
               ("Opportunities won", "opportunities_won", catalog.ALL),
               ("Marketing spend", "marketing_spend", catalog.ALL),
               ("CAC (spend / opportunities won)", "cac", catalog.ALL)]
    rows = []
    for measure, metric, segment in wanted:
        found = catalog.row(table, metric, segment)
        rows.append((measure, None if found is None else found["value"], "" if found is None else found["target"],
                     "" if found is None else found["verdict"]))
    return pd.DataFrame(rows, columns=MONEY_COLUMNS)


def marketing_side_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                           policy: SlaPolicy, table: pd.DataFrame) -> Section:
    """Marketing tempo, channel coverage, the engaged-account stage, the marketing_response clock, every
    benchmark's verdict, and (with a target account list) the list's agreement and ABM against non-ABM."""
    span, moment = _span(start, end), mk.last_moment(end, as_of)
    shown = _iso(min(end, as_of)) + (" (exclusive)" if as_of >= end else "")
    settings = mk.marketing_settings(policy)
    listed = mk.tal_exists(data.target_accounts)
    engaged = mk.engaged_accounts(data.accounts, data.activities, data.target_accounts, data.mqas, moment, policy)
    rule = settings.engaged_account
    tempo, coverage = _tempo_and_coverage(data, start, end, as_of, policy)
    tables = [tempo, Table(
        "engaged_stage", "Engaged accounts (the stage before the MQA) per tier", mk.engaged_stage(engaged),
        f"{_measured_accounts(data)}; engaged = >= {rule.contacts_min} distinct contacts with a marketing touch in "
        f"the {rule.within_days:g} days to {shown}; before the MQA = no open MQA then"), coverage]
    if settings.response is not None:
        compliance = sc.clock_compliance(data, start, end, policy)
        tables.append(Table("marketing_response", "Marketing research after a pricing visit (marketing_response)",
                            compliance[compliance["clock"] == sc.MARKETING_RESPONSE],
                            f"sla_clocks where clock = marketing_response and due_at in {span}"))
    benchmarks = sc.commitments(data, start, end, as_of, policy)
    benchmarks = benchmarks[benchmarks["commitment"].isin(set(sc.BENCHMARK_SIDES))
                            | benchmarks["commitment"].str.startswith("custom:")]
    tables.append(Table("benchmarks", "Benchmarks and custom targets", benchmarks[
        ["commitment", "tier", "value", "target", "missed"]], "policy targets; values as in the tables above"))
    if listed:
        tables += [
            Table("tal_agreement", "Target account list and its monthly agreement",
                  tal_agreement_table(table, data, moment),
                  f"target_accounts at {_iso(moment)}; overdue after policy target_account_list.agreement_days; "
                  "metrics catalog: accounts_on_list, list_rows_added, list_rows_removed, list_agreement_age_days"),
            Table("abm_comparison", "ABM (target account list) against non-ABM accounts",
                  mk.abm_comparison(data.opportunities, data.target_accounts, start, end, as_of),
                  f"opportunities closed in {span}; ABM = the account was on the list when the opportunity was "
                  "created"),
        ]
    return Section("Marketing side", [
        "Marketing touches are activities of the policy's channel types; tempo is touches per account per month "
        "(or quarter) over the period, min and max included.",
    ], tables=tables)


TAL_AGREEMENT_COLUMNS = ["on_list", "added_recently", "removed_recently", "last_agreed_at", "agreed_by",
                         "agreement_age_days", "agreement_overdue"]


def tal_agreement_table(table: pd.DataFrame, data: SlaData, moment: pd.Timestamp) -> pd.DataFrame:
    """One row: accounts on the list, rows added and removed in the last ``agreement_days``, the last agreement
    (when, by whom), its age in days and whether it is overdue (older than ``agreement_days``, or never): the
    numbers and the verdict from the metrics catalog table ``table``, the agreement's date and name from the list."""
    agreed_at, agreed_by = mk.last_agreement(data.target_accounts, moment)
    age = catalog.row(table, "list_agreement_age_days")
    listed = mk.tal_exists(data.target_accounts)
    return pd.DataFrame([{
        "on_list": int(catalog.read(table, "accounts_on_list", default=0.0)) if listed else 0,
        "added_recently": int(catalog.read(table, "list_rows_added", default=0.0)),
        "removed_recently": int(catalog.read(table, "list_rows_removed", default=0.0)),
        "last_agreed_at": agreed_at, "agreed_by": agreed_by,
        "agreement_age_days": catalog.read(table, "list_agreement_age_days"),
        "agreement_overdue": (age is None or age["verdict"] != catalog.MET) if listed else None,
    }], columns=TAL_AGREEMENT_COLUMNS)


def _breaches_section(data: SlaData, policy: SlaPolicy, start: pd.Timestamp, end: pd.Timestamp,
                      as_of: pd.Timestamp, *, weekly: bool, table: pd.DataFrame) -> Section:
    """Escalations by clock and level, reassignments on breach, and disputes (open ones with their step;
    the quarter's counts, time to close and outcomes)."""
    span = _span(start, end)
    ladders = ", ".join(ladder.clock for ladder in policy.ladders) or "none"
    tables = [
        Table("escalations_by_clock", "Escalations by clock and level",
              breaches.escalations_by_clock(data, start, end, table),
              f"escalations where opened_at in {span}; roles from users (active); clocks with a ladder: {ladders}; "
              "metrics catalog: escalated_mqas, escalation_recipients (segments clock=...,level=...)"),
        Table("reassignments", "Reassignments on breach", breaches.reassignments(data, start, end),
              f"reassignments where reassigned_at in {span}; written back = reassignments.writeback_done_at set"),
        Table("open_disputes", "Open disputes: current step and due date", breaches.open_disputes(data, policy, as_of),
              f"disputes open at {_iso(as_of)}; steps from policy disputes.steps, due from the (re)opening"),
    ]
    if not weekly:
        tables += [
            Table("reassignments_by_clock", "Reassignments per clock", breaches.reassignment_counts(data, start, end),
                  f"reassignments where reassigned_at in {span}"),
            Table("dispute_counts", "Disputes in the period", breaches.dispute_counts(data, start, end),
                  f"dispute_notes (opened, reopened, closed) with at in {span}; open at the end = last event before "
                  f"{_iso(end)} not a closing; days to close from the first opening; outcome of each closing"),
            Table("closed_disputes", "Disputes closed", breaches.closed_disputes(data, start, end),
                  f"disputes closed (and still closed) with closed_at in {span}"),
        ]
    return Section("Escalations, reassignments and disputes", [
        "Every clock with a ladder in the policy escalates; a reassigning level moves the MQA to the next rep. "
        "Disputes stay here until closed with a resolution."], tables=tables)


def diff_path(path: str | Path | None, default: Path) -> str:
    """How a proposal diff names a config file: relative to the working folder (or else to the project) when
    inside it, so that ``patch -p1`` applies it from there; else its absolute path."""
    resolved = Path(path if path is not None else default).resolve()
    for base in (Path.cwd().resolve(), DEFAULT_POLICY_PATH.parents[1]):
        if resolved.is_relative_to(base):
            return resolved.relative_to(base).as_posix()
    return resolved.as_posix()


def _proposal_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                      policy: SlaPolicy, policy_text: str | None, scoring_text: str | None,
                      policy_path: str | Path | None = None, scoring_path: str | Path | None = None,
                      table: pd.DataFrame | None = None) -> tuple[Section, list[str], proposals_module.Proposals]:
    """The proposals, arguing from the report's own metrics table ``table`` (the catalog's numbers)."""
    text = policy_text if policy_text is not None else DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    found = proposals_module.build_proposals(data, start, end, as_of, policy, text, scoring_text,
                                             sla_path=diff_path(policy_path, DEFAULT_POLICY_PATH),
                                             scoring_path=diff_path(scoring_path, DEFAULT_SCORING_PATH), table=table)
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
              f"sla_clocks where due_at in {span} and clock = first_touch, answered; mqas.routed_at (metrics "
              "catalog: first_touch_response_p80_hours, first_touch_response_p80_calendar_hours, "
              "first_touches_unanswered)"),
        Table("volume_proposals", "Monthly MQA commitments from the period's run-rate", found.volumes,
              f"mqas where trigger_at in {span}, per calendar month elapsed by {_iso(as_of)} (metrics catalog: "
              "mqas, mqa_run_rate)"),
    ], charts=[
        Chart("threshold_backtest", CHART_TITLES["threshold_backtest"],
              chart_backtest(found.backtest, policy, threshold.current, threshold.proposed), "score_history"),
    ], code=found.diffs)
    return section, [], found


def _pipeline_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, scoring_text: str | None) -> Section:
    """"Does the score predict pipeline?": :func:`abm_sla.domain.learning.pipeline_check` of the scoring model."""
    import yaml

    from abm_sla.domain import learning
    from abm_sla.domain.model import parse_model

    model = parse_model(yaml.safe_load(scoring_text)) if scoring_text else load_model()
    try:
        check = learning.pipeline_check(data, model, start, end)
    except ConfigError as error:  # a model rule on a column the accounts lack: the rest of the report stands
        return Section(learning.PIPELINE_SECTION_TITLE, [f"Not computed: {error}."])
    return Section(learning.PIPELINE_SECTION_TITLE, check.text, tables=[Table(*table) for table in check.tables])


MOVES_LEDGER_TEXT = (
    "A move is recommended once and stays pending until sales decides it in the CRM: accepted when the "
    "account's tier moves as recommended within targets.tier_moves.decide_within_days, declined when it moves "
    "the other way or the days pass (decided at the deadline). Age is days from the recommendation to the "
    "decision, or to the report's as-of while pending.")
MOVE_COLUMNS = ["account_id", "account_name", "owner_id", "owner_name", "tier", "proposed_tier", "rule", "reason",
                "recommended_at", "decision", "decided_at", "age_days"]


@lru_cache(maxsize=4)
def _decision_makers(scoring_path: str | None = None) -> re.Pattern[str] | None:
    """The scoring model's decision-maker titles (gate 3), for the stakeholder rule of Tier 2 → 1."""
    path = Path(scoring_path) if scoring_path else DEFAULT_SCORING_PATH
    return load_model(path).decision_maker_pattern if path.is_file() else None


def _ledger(data: SlaData, as_of: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """The stored tier-move ledger; a warehouse that has none yet (runs older than the ledger) shows what one
    run as of ``as_of`` would record."""
    rules = policy.targets.tier_moves if policy.targets else None
    if rules is None:
        return tm.empty()
    if len(data.tier_move_recommendations):
        return data.tier_move_recommendations
    return tm.advance(tm.empty(), sc.tier_moves(data, as_of, policy, _decision_makers()), data.accounts, as_of,
                      rules)


def tier_move_table(data: SlaData, start: pd.Timestamp, as_of: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """Recommendations pending at ``as_of`` and those decided since ``start``, with names and age."""
    rows = tm.known_at(_ledger(data, as_of, policy), as_of)
    rows = rows[rows["decision"].eq(tm.PENDING) | (rows["decided_at"] >= start)]
    accounts = sc.account_dimensions(data).set_index("account_id")
    rows = rows.assign(account_name=rows["account_id"].map(accounts["account_name"]),
                       owner_id=rows["account_id"].map(accounts["owner_id"]),
                       tier=pd.to_numeric(rows["from_tier"], errors="coerce"))
    rows["owner_name"] = rows["owner_id"].map(sc.owner_names(data))
    return rows[MOVE_COLUMNS].sort_values(["decision", "rule", "account_id"],
                                          key=lambda c: c.map({tm.PENDING: 0}).fillna(1) if c.name == "decision"
                                          else c).reset_index(drop=True)


def _moves_source(as_of: pd.Timestamp) -> str:
    return (f"tier_move_recommendations as known at {_iso(as_of)} (recorded by each run from accounts, contacts, "
            "activities, intent_signals and opportunities; decisions from accounts.tier and updated_at); "
            "rules from policy targets.tier_moves")


def _weekly_additions(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                      policy: SlaPolicy) -> Section:
    """Meetings, opportunities and pipeline created, engagement rate and Tier 1 status, this week vs last."""
    before = period_label(*sc.previous_period(start, end))
    return Section("This week against last week", [
        f"Each row: this week, {before}, and the change. Meetings booked = meeting activities in the week; "
        "engagement rate = accounts with a marketing touch in the week / accounts on the list; Tier 1 status "
        f"at the week's end (quiet = no activity for {review.QUIET_DAYS}+ days).",
    ], tables=[Table("weekly_changes", "This week against last week",
                     review.compare(review.weekly_metrics, data, start, end, as_of, policy),
                     f"activities (type meeting, marketing touches) and opportunities (created_at, amount) in "
                     f"{_span(start, end)} and the week before; accounts (tier 1); mqas (open episodes)")])


REGIONAL_COLUMNS = ["region", "clock", "met", "missed", "pending", "met_pct", "target", "verdict"]


def regional_compliance(table: pd.DataFrame, policy: SlaPolicy) -> pd.DataFrame:
    """Per region of the policy (then ``(none)``: the accounts of no region, on the master policy) and clock:
    the clocks due in the period met, missed and pending, and the met % against the region's target: the rows
    of the metrics catalog table ``table`` with a ``region=`` segment."""
    wanted = [*sc.clock_names(policy)]
    wanted += [clock for region in policy.regions.values() for clock in region.targets if clock not in wanted]
    rows = []
    for name in [*policy.regions, regions.NO_REGION]:
        segment = f"region={name}"
        for clock in wanted:
            ids = catalog.clock_metric_ids(clock) if f"{clock}_met_rate" in catalog.BY_ID else {}
            found = catalog.row(table, ids["met_pct"], segment) if ids else None
            counts = {status: catalog.value(table, ids[status], segment) if ids else np.nan
                      for status in ("met", "missed", "pending")}
            rows.append({"region": name, "clock": clock, **{k: 0 if pd.isna(v) else int(v) for k, v in counts.items()},
                         "met_pct": np.nan if found is None else found["value"],
                         "target": "" if found is None else found["target"],
                         "verdict": "" if found is None else found["verdict"]})
    return pd.DataFrame(rows, columns=REGIONAL_COLUMNS)


def regional_section(table: pd.DataFrame, policy: SlaPolicy, span: str) -> list[Section]:
    """The regional appendix (policy ``regions``; none without it): each region's windows beside the master
    policy's, and compliance per region from the metrics catalog's ``region=`` rows."""
    if not policy.regions:
        return []
    return [Section("Regional appendix", [
        "Each region runs the master SLA's structure with its own windows (one-page SLA: \"the adaptation is "
        "documented region by region in a single SLA appendix\"). An account belongs to the region listing its "
        "country, else to its owner's country's; (none) = accounts of no region, on the master policy's windows.",
    ], tables=[
        Table("regional_windows", "Windows each region replaces", regions.appendix_windows(policy),
              "policy regions (countries, clocks) beside the master policy's clocks"),
        Table("regional_compliance", "SLA clocks per region", regional_compliance(table, policy),
              f"sla_clocks where due_at in {span}; region from accounts.country, else the owner's users.country; "
              "metrics catalog segments region=...; targets from policy regions.<name>.targets"),
    ])]


def _measured_accounts(data: SlaData) -> str:
    return ("accounts on the target account list" if mk.tal_exists(data.target_accounts)
            else "every account (no target account list)")


def _tempo_and_coverage(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                        policy: SlaPolicy) -> tuple[Table, Table]:
    """Touch tempo per tier and the channel coverage of engaged accounts in the period (``domain.marketing``)."""
    span, settings = _span(start, end), mk.marketing_settings(policy)
    shown = _iso(min(end, as_of)) + (" (exclusive)" if as_of >= end else "")
    touches = f"activities of a marketing channel type ({', '.join(settings.touch_types)}) with occurred_at in {span}"
    tempo = mk.touch_tempo(data.accounts, data.activities, data.target_accounts, start, end, as_of, policy)
    coverage = mk.channel_coverage(data.accounts, data.activities, data.target_accounts, data.mqas, start, end,
                                   as_of, policy)
    return (Table("touch_tempo", "Marketing touch tempo per tier", mk.tempo_summary(tempo),
                  f"{_measured_accounts(data)} at {shown}; {touches}; tempo from policy marketing.tempo"),
            Table("channel_coverage", "Channel coverage of engaged accounts", mk.coverage_summary(coverage),
                  f"engaged accounts at {shown}; {touches}; covered = >= {settings.coverage.channels_min} "
                  "channels (policy marketing.channels, marketing.coverage)"))


def _marketing_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                       policy: SlaPolicy) -> Section:
    """Marketing tempo and coverage in the month against the policy, and the touches per tier and channel."""
    return Section("Marketing tempo and coverage", [
        "Tempo is marketing touches per account in the month against policy marketing.tempo (a quarterly tempo "
        "is judged on the quarter's monthly average); coverage is the channels reached per engaged account.",
    ], tables=[*_tempo_and_coverage(data, start, end, as_of, policy), Table(
        "marketing_activity", "Marketing touches per tier and channel", review.marketing_activity(data, start, end),
        f"activities of a marketing type with occurred_at in {_span(start, end)}; accounts created before "
        f"{_iso(end)}, tier from accounts")])


def _intent_list_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy,
                         table: pd.DataFrame) -> list[Section]:
    """The week's intent list (policy ``intent_list``; none without it)."""
    settings = policy.intent_list
    if settings is None:
        return []
    found = leads.intent_list(data, start, end, settings)
    count = catalog.value(table, "intent_list_accounts")
    score = f" with score >= {settings.min_score:g}" if settings.min_score else ""
    topics = " (each topic once)" if settings.distinct_topics else ""
    return [Section("Intent list", [
        f"{count:g} account{'' if count == 1 else 's'} with {settings.min_signals}+ intent signals{score}{topics} "
        "observed this week: sales "
        "contacts them this week. The full list is the table's CSV beside this report, and "
        "`abm-sla export intent-list --period <week>`.",
    ], tables=[Table("intent_list", f"Accounts with {settings.min_signals}+ intent signals this week", found,
                     f"intent_signals with observed_at in {_span(start, end)}{score}; policy intent_list")])]


def _pct_text(table: pd.DataFrame, metric: str) -> str:
    """A catalog rate as text: ``12.5% (3 of 24)`` or ``n/a (none)``."""
    found = catalog.row(table, metric)
    if found is None or not found["denominator"]:
        return "n/a (none)"
    return f"{found['value']:g}% ({found['numerator']:g} of {found['denominator']:g})"


def _collisions_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                        policy: SlaPolicy, table: pd.DataFrame) -> list[Section]:
    """The week's outreach collisions (policy ``coordination``; none without it)."""
    settings = policy.coordination
    if settings is None:
        return []
    found = co.collisions(data.activities, start, end, as_of, settings)
    names = sc.account_dimensions(data).set_index("account_id")["account_name"]
    found.insert(1, "account_name", found["account_id"].map(names))
    return [Section("Outreach coordination", [
        f"Sales touches colliding with a marketing touch: {_pct_text(table, 'outreach_collision_rate')}. A "
        f"collision: a sales touch and a marketing touch to the same contact (the same account when either has no "
        f"contact) within {settings.window_hours:g} hours of each other: a duplicate or conflicting message. "
        "Each row is one pair; coordinate the next touch with marketing's campaign.",
    ], tables=[Table("outreach_collisions", "Sales touches within the window of a marketing touch", found,
                     f"activities: sales touches with occurred_at in {_span(start, end)}, marketing touches of "
                     f"{', '.join(settings.marketing_types)} within {settings.window_hours:g} h; policy coordination; "
                     "metrics catalog: outreach_collisions, outreach_collision_rate")])]


def _content_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                     policy: SlaPolicy, table: pd.DataFrame) -> list[Section]:
    """The month's content coverage of MQAs before sales' first touch (policy ``content_support``)."""
    settings = policy.content_support
    if settings is None:
        return []
    cut = table["segment"].eq(catalog.ALL) | table["segment"].str.startswith("tier=")
    shown = table.loc[(table["metric"] == "content_coverage_rate") & cut, ["segment", "numerator", "denominator",
                                                                            "value"]]
    shown = shown.rename(columns={"numerator": "covered", "denominator": "mqas", "value": "covered_pct"})
    return [Section("Content for sales' touches", [
        f"MQAs whose account received marketing content ({', '.join(settings.types)}) in the "
        f"{settings.lookback_days:g} days before sales' first touch: {_pct_text(table, 'content_coverage_rate')}. "
        "Requests for materials and their 2-business-day answer are the materials clock (requests.csv).",
    ], tables=[Table("content_coverage", "MQAs with content before sales' first touch, per tier", shown,
                     f"mqas with trigger_at in {_span(start, end)}; activities of {', '.join(settings.types)}; "
                     "policy content_support; metrics catalog: content_coverage_rate")])]


def campaign_tier_table(table: pd.DataFrame, policy: SlaPolicy) -> pd.DataFrame:
    """Per tier the campaign plan requires: the campaigns started on it and whether it has none, read from the
    metrics catalog table ``table`` (``campaigns_per_tier``, ``tiers_without_campaign`` per ``tier=``)."""
    tiers = sorted(set(policy.campaign_plan.tiers))
    campaigns = [int(catalog.read(table, "campaigns_per_tier", f"tier={tier}", default=0.0)) for tier in tiers]
    without = [catalog.read(table, "tiers_without_campaign", f"tier={tier}", default=0.0) > 0 for tier in tiers]
    return pd.DataFrame({"tier": tiers, "campaigns": campaigns, "without": without})


def _quarterly_review_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                              policy: SlaPolicy, table: pd.DataFrame) -> tuple[list[Section], list[str]]:
    """The quarter's campaign calendar per tier (policy ``campaign_plan``) and the review's attendance (policy
    ``review_attendance``), with the warnings (a tier without a campaign, a side absent)."""
    sections, notes = [], []
    if policy.campaign_plan is not None:
        calendar = co.campaign_calendar(data.activities, data.accounts, start, end, as_of)
        tiers = campaign_tier_table(table, policy)
        missing = tiers.loc[tiers["without"], "tier"].tolist()
        plan = co.plan_check(calendar, policy.campaign_plan)
        if len(plan) and (plan["status"] != co.AS_PLANNED).any():
            off = plan[plan["status"] != co.AS_PLANNED]
            notes.append("Campaign plan: " + "; ".join(f"{row.campaign} {row.status}" for row in off.itertuples())
                         + " (policy campaign_plan.campaigns).")
        if missing:
            notes.append("No campaign started this quarter on Tier " + ", ".join(map(str, missing))
                         + " (ABM template: Tier 1 1:1 + ads, Tier 2 campaign + outreach, Tier 3 campaign only).")
        sections.append(Section("Campaign calendar", [
            f"Campaigns started this quarter per tier (campaign_start activities, the subject names the campaign); "
            f"tiers without one: {catalog.value(table, 'tiers_without_campaign'):g}. The ABM template plans them "
            "jointly each quarter: Tier 1 1:1 + ads, Tier 2 campaign + outreach, Tier 3 campaign only.",
        ], tables=[
            Table("campaign_tiers", "Campaigns per tier", tiers.rename(columns={"without": "flagged"}),
                  "policy campaign_plan.tiers; metrics catalog: campaigns_per_tier, tiers_without_campaign"),
            Table("campaign_calendar", "The quarter's campaigns", calendar,
                  f"activities of type campaign_start with occurred_at in {_span(start, end)}; tier from accounts"),
            *([Table("campaign_plan", "The joint plan against the campaigns started", plan,
                     "policy campaign_plan.campaigns (the signed policy); campaign_start subjects and tiers; "
                     "metrics catalog: planned_campaigns_not_started, campaigns_off_plan")] if len(plan) else []),
        ]))
    if policy.review_attendance is not None:
        quarter = sc.quarter_label(start)
        present = co.attendance(data.review_attendance, quarter, policy.review_attendance)
        absent = co.absent_sides(present, policy.review_attendance)
        if absent:
            notes.append(f"Nobody from {' or '.join(absent)} is recorded at the {quarter} account review "
                         f"(`abm-sla review attend --period {quarter} --name ... --side {absent[0]}`).")
        shown = present.assign(attended=present["attended"].map({True: "present", False: "absent"}))
        sections.append(Section("Quarterly review attendance", [
            f"Who attended the {quarter} account review per side (`abm-sla review attend`); sides absent: "
            f"{catalog.value(table, 'review_sides_absent'):g}.",
        ], tables=[Table("review_attendance", f"Attendance of the {quarter} review", shown,
                         f"review_attendance where period = {quarter}; policy review_attendance.required")]))
    return sections, notes


def _weekly_mqa_tables(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                       policy: SlaPolicy, table: pd.DataFrame) -> list[Table]:
    """The per-week MQA rule judged week by week (policy ``targets.weekly_mqas``; none without it)."""
    rule = policy.targets.weekly_mqas if policy.targets is not None else None
    if rule is None:
        return []
    found = catalog.row(table, "mqa_weeks_in_band_rate")
    weeks = int(np.nan_to_num(found["denominator"])) if found is not None else 0
    inside = int(np.nan_to_num(found["numerator"])) if found is not None else 0
    band = "-".join(f"{bound:g}" for bound in (rule.min, rule.max) if bound is not None)
    band = band if rule.min is not None and rule.max is not None else (
        f">= {rule.min:g}" if rule.min is not None else f"<= {rule.max:g}")
    tier = f"Tier {rule.tier} " if rule.tier is not None else ""
    return [Table("mqa_weeks", f"{tier}MQAs per week against the weekly band {band}: {inside} of {weeks} "
                  f"week{'' if weeks == 1 else 's'} in band", sc.weekly_mqas(data, start, end, as_of, policy),
                  f"mqas by ISO week (Monday UTC) of trigger_at, weeks starting in {_span(start, end)}; a week is "
                  f"judged once it has ended by {_iso(as_of)}; policy targets.weekly_mqas")]


def _routed_record_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy,
                           table: pd.DataFrame) -> list[Section]:
    """The routed MQAs' records complete (policy ``routed_record``; none without it)."""
    rule = policy.routed_record
    if rule is None:
        return []
    found = catalog.row(table, "routed_record_complete_rate")
    routed = int(np.nan_to_num(found["denominator"])) if found is not None else 0
    complete = int(np.nan_to_num(found["numerator"])) if found is not None else 0
    needs = ", ".join(rule.account_fields) + (" and the score's reasons" if rule.reasons else "")
    text = [f"{complete} of {routed} MQA{'' if routed == 1 else 's'} routed this week had a complete record "
            f"({found['value'] if found is not None else float('nan'):g}%): the account's {needs}."]
    facts = routed_records.record_facts(data, start, end, policy)
    return [Section("Routed records", text, tables=[
        Table("incomplete_records", "Routed MQAs with an incomplete record",
              _with_owner_names(routed_records.incomplete(facts), data),
              f"mqas with routed_at in {_span(start, end)}; fields from accounts, reasons from mqas; "
              "policy routed_record")])]


#: The CRM-updates table's rows: side → the catalog metric of its share logged in time (its numerator: in time,
#: its denominator: judged) and of its count logged late.
CRM_LOGGING_METRICS = {"sales": "sales_activities_logged_rate", "marketing": "marketing_activities_logged_rate"}
CRM_LATE_METRICS = {"sales": "sales_activities_logged_late", "marketing": "marketing_activities_logged_late"}


def crm_logging_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per side (sales meetings and calls, marketing touches), overall and per owner: activities judged, logged in
    time, late and the share in time, read from the metrics catalog's crm_logging family."""
    rows = []
    for side, metric in CRM_LOGGING_METRICS.items():
        mine = table[table["metric"] == metric]
        segments = [catalog.ALL, *sorted(s for s in mine["segment"].unique() if str(s).startswith("owner="))]
        for segment in segments:
            found = catalog.row(table, metric, segment)
            judged = int(np.nan_to_num(found["denominator"])) if found is not None else 0
            if segment != catalog.ALL and not judged:
                continue
            in_time = int(np.nan_to_num(found["numerator"])) if found is not None else 0
            late = int(catalog.read(table, CRM_LATE_METRICS[side], segment, default=0.0))
            rows.append({"side": side, "owner_id": segment.removeprefix("owner="), "activities": judged,
                         "in_time": in_time, "late": late,
                         "in_time_pct": found["value"] if found is not None else np.nan})
    return pd.DataFrame(rows, columns=["side", "owner_id", "activities", "in_time", "late", "in_time_pct"])


def _crm_updates_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy,
                         table: pd.DataFrame) -> list[Section]:
    """Issue 26 (ABM template): every meeting, call and engaged-lead touch logged within the policy's hours, and
    the listed accounts updated this week (policy ``crm_updates``; none without it)."""
    rule = policy.crm_updates
    if rule is None:
        return []
    span = _span(start, end)
    updated = catalog.row(table, "accounts_updated_rate")
    listed = int(np.nan_to_num(updated["denominator"])) if updated is not None else 0
    stale = int(np.nan_to_num(catalog.value(table, "stale_accounts")))
    text = [f"An activity is logged in time when logged_at - occurred_at <= {rule.hours:g} hours (sales: "
            f"{', '.join(rule.sales_types)}; marketing: {', '.join(rule.marketing_types)}); activities without "
            "logged_at are not judged.",
            f"{listed - stale} of {listed} listed account{'' if listed == 1 else 's'} updated this week "
            f"({catalog.value(table, 'accounts_updated_rate'):g}%): an activity logged or a status change; "
            f"{stale} stale."]
    stale_list = cu.stale_accounts(cu.account_update_facts(data, start, end))
    return [Section("CRM updates", text, tables=[
        Table("crm_logging", f"Activities logged within {rule.hours:g} hours, per owner",
              _with_owner_names(crm_logging_table(table), data),
              f"activities of the types above with occurred_at in {span} and a logged_at; owner = "
              "activities.owner_id, else accounts.owner_id; policy crm_updates"),
        Table("stale_accounts", "Listed accounts with no update this week", _with_owner_names(stale_list, data),
              f"accounts on the list at {_iso(end)} with no activity logged (logged_at, else occurred_at) and no "
              f"status change in {span}"),
    ])]


def _leads_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy,
                   table: pd.DataFrame) -> list[Section]:
    """The lead measures of the period against the policy's targets (policy ``leads``; none without it)."""
    settings = policy.leads
    if settings is None:
        return []
    measures = review.lead_measures(table, policy)
    by_tier = table[table["segment"].str.startswith("tier=") & table["metric"].isin(list(measures["metric"]))]
    by_tier = by_tier.pivot(index="segment", columns="metric", values="value")
    by_tier = by_tier.reindex(columns=[metric for metric in measures["metric"]]).reset_index()
    personas = ", ".join(settings.personas) or "none given"
    geographies = ", ".join(settings.geographies) or "none given"
    return [Section("Leads", [
        "A lead is a contact of an account on the list with a marketing touch in the period. Personas (title, "
        f"whole words, any case): {personas}. Geographies (the account's country): {geographies}. An invalid "
        "email is empty or not of the form name@domain.tld. The engaged-leads target is per quarter, pro-rated "
        "to the period.",
    ], tables=[
        Table("lead_measures", "Lead volume and quality against target", measures,
              f"contacts with a marketing touch (activities) in {_span(start, end)}, of {_measured_accounts(data)}; "
              "titles and emails from contacts, country from accounts; targets from policy leads"),
        Table("leads_by_tier", "Lead measures per tier", by_tier, "as above, per the account's tier"),
    ])]


def _review_sections(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                     policy: SlaPolicy) -> list[Section]:
    """The monthly review's patterns, lists and decisions (policy ``monthly_review``; decisions whenever any
    is recorded)."""
    span = _span(start, end)
    decisions = review.review_decisions(data.review_decisions, start)
    settings = policy.monthly_review
    decision_section = Section("Decisions", [
        "The decisions the previous review took (follow them up) and those this review took "
        "(`abm-sla decision add --month <month> --text ... --owner ...`; `abm-sla decision done <id>`).",
    ], tables=[Table("review_decisions", "Decisions of the last review and this one", decisions,
                     "review_decisions of the review month and the month before")])
    if settings is None:
        return [decision_section] if len(decisions) else []
    mqa_source = _verdict_source(span, as_of, policy)
    return [
        Section("Disqualification patterns", [
            "Rejected MQAs of the month by the reason sales gave (status reason) and tier, then by owner.",
        ], tables=[
            Table("disqualification_patterns", "Rejected MQAs per reason and tier",
                  review.disqualification_patterns(data, start, end, as_of, policy), f"{mqa_source}; reasons from "
                  "status_changes.reason"),
            Table("disqualification_by_owner", "Rejected MQAs per owner and reason",
                  _with_owner_names(review.disqualification_by_owner(data, start, end, as_of, policy), data),
                  f"{mqa_source}; owner from mqas"),
        ]),
        Section("Conversion by hand-off source", [
            "The hand-off source is the signal that fired the MQA (at its trigger_at): a marketing touch's type, or "
            "intent.",
        ], tables=[Table("conversion_by_source", "MQA → SQL and MQA → opportunity per hand-off source",
                         review.conversion_by_source(data, start, end, as_of, policy),
                         f"{mqa_source}; activities and intent_signals at trigger_at")]),
        Section("Closed deals and stalled accounts", [
            f"Stalled: an open opportunity or open MQA and no activity of any kind for {settings.stalled_days:g}+ "
            "days at the month's end.",
        ], tables=[
            Table("closed_deals", "Deals closed in the month", review.closed_deals(data, start, end, as_of, policy),
                  f"opportunities closed in {span} by {_iso(as_of)}; source by the pipeline-credit rule"),
            Table("stalled_accounts", "Stalled accounts", review.stalled_accounts(data, end, settings.stalled_days),
                  f"opportunities open and mqas episodes open at {_iso(end)}; last activity before it"),
        ]),
        Section("Engagement trend and top performers", tables=[
            Table("engagement_trend", f"Engagement by month (last {settings.trend_months})",
                  review.engagement_trend(data, end, settings.trend_months, policy),
                  f"{_measured_accounts(data)} at each month's end; marketing touches per month"),
            Table("top_accounts", f"Top {settings.top_accounts} accounts per tier by marketing engagement",
                  review.top_accounts(data, start, end, settings.top_accounts),
                  f"{_measured_accounts(data)}; marketing touches, engaged contacts and meetings in {span}"),
        ]),
        decision_section,
    ]


def build_monthly(warehouse: Warehouse | SlaData, period: str, policy: SlaPolicy,
                  as_of: pd.Timestamp | None = None) -> Report:
    """The monthly review: volume against target, the funnel, pipeline by source and the joint number,
    marketing tempo and coverage, tier moves, each against the month before."""
    data = warehouse if isinstance(warehouse, SlaData) else load_data(warehouse)
    start, end = sc.parse_period(period)
    if (end.year - start.year) * 12 + end.month - start.month != 1:
        raise AbmSlaError(f"the monthly review takes a month (2026-03), got {period!r}")
    as_of = as_of if as_of is not None else end
    data = data.known_by(as_of)
    table = catalog.compute(data, start, end, as_of, policy, report="monthly")
    span = _span(start, end)
    before = period_label(*sc.previous_period(start, end))
    mqa_source = _verdict_source(span, as_of, policy) + "; opportunities created at or after trigger_at"
    moves = tier_move_table(data, start, as_of, policy)
    sections = [
        Section("Month over month", [
            f"Each row: {period}, {before} and the change. SQL = an MQA sales accepted; disqualified = its verdict "
            f"is rejected ({', '.join(policy.dispositions.rejected)}). "
            "Time to first contact: median business hours from routing to the first sales touch.",
        ], tables=[Table("monthly_trend", f"{period} against {before}",
                         review.compare(review.monthly_metrics, data, start, end, as_of, policy),
                         f"{mqa_source}; sla_clocks (first_touch) due in {span}; opportunities created in {span}; "
                         "the same for the month before, as of its end")]),
        Section("Volume against target", tables=[
            Table("mqa_volume", "MQAs per tier vs the monthly commitment",
                  catalog.mqa_volume(data, start, end, as_of, policy),
                  f"mqas where trigger_at in {span}; policy targets.monthly_mqa_commitments"),
            *_weekly_mqa_tables(data, start, end, as_of, policy, table),
            Table("marketing_by_tier", "MQA → SQL (accepted), disqualified and conversion per tier",
                  sc.marketing_quality(sc.mqa_outcomes(data, as_of, policy), start, end, policy), mqa_source),
            Table("progression", "SQL → opportunity (accepted MQAs)",
                  sc.progression(sc.mqa_outcomes(data, as_of, policy), start, end), mqa_source),
            Table("response_by_tier", "Time to first contact per tier (business hours)",
                  sc.response_summary(sc.response_times(data, start, end, policy), policy),
                  f"sla_clocks where due_at in {span} and clock = first_touch; mqas.routed_at"),
        ]),
        Section("Pipeline by source", [
            _credit_text(policy) + " The three add up to the joint pipeline: every opportunity created in the month.",
        ], tables=[Table("pipeline_by_source", "Pipeline created in the month by source, and the joint pipeline",
                         review.pipeline_by_source(data, start, end, policy), _credit_source(span, policy))]),
        _marketing_section(data, start, end, as_of, policy),
        *_leads_section(data, start, end, policy, table),
        *_review_sections(data, start, end, as_of, policy),
        *_content_section(data, start, end, as_of, policy, table),
        Section("Tier moves", [_moves_text(policy), MOVES_LEDGER_TEXT], tables=[
            Table("tier_move_decisions", "Recommendations of the month and sales' decisions",
                  tm.summary(_ledger(data, as_of, policy), start, end, as_of), _moves_source(as_of)),
            Table("tier_moves", "Tier moves: pending, and decided this month", moves, _moves_source(as_of)),
        ]),
    ]
    commitments, commitment_notes = commitments_section(data, table, start, end, as_of, policy, label="this month")
    sections += [commitments] if commitments is not None else []
    sections += regional_section(table, policy, span)
    decisions = [_moves_decision(moves, "#table-tier_moves")]
    empty = no_data_line(data, period, start, end)
    return Report("monthly", period, start, end, as_of, f"SLA monthly review {period}", sections,
                  [empty] * bool(empty) + _evaluation_notes(data, as_of) + _policy_notes(policy) + commitment_notes,
                  sc.headline(data, start, end, as_of, policy, table), before, decisions, measured=empty is None,
                  metrics=table)


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


def _moves_text(policy: SlaPolicy) -> str:
    rules = policy.targets.tier_moves if policy.targets else None
    if rules is None:
        return "The policy has no targets.tier_moves: no moves recommended."
    parts = [f"{name}: {value}" for name, value in rules.model_dump().items() if value]
    return "Rules (policy targets.tier_moves): " + "; ".join(parts) + "."


def no_data_line(data: SlaData, period: str, start: pd.Timestamp, end: pd.Timestamp) -> str | None:
    """One line when the pipeline measured nothing in the period (else None)."""
    if sc.has_data(data, start, end):
        return None
    latest = sc.latest_measurement(data)
    where = (f"the warehouse's latest measurement is {latest:%Y-%m-%d} ({period_label(*_period_of(latest))})"
             if latest is not None else "the warehouse has no scores, MQAs or clocks yet")
    return f"No data for {period}: no score, MQA or SLA clock in {_span(start, end)}; {where}."


def no_data_note(report: Report) -> str:
    """The report's "No data for …" note (other notes, such as the sign-off line, may come before it)."""
    return next((note for note in report.notes if note.startswith("No data for ")), report.notes[0])


def _period_of(moment: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    year, week, _ = moment.isocalendar()
    return sc.parse_period(f"{year}-W{week:02d}")


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
    unknown = sc.unknown_owner_keys(policy)
    if unknown:
        notes.append(f"Policy owners names no commitment of the scorecard: {', '.join(unknown)} (use a commitment "
                     "name such as first_touch_met_pct, custom:<metric>, or a side: marketing, sales, joint).")
    return [*notes, f"Policy: {policy.name}. Status-update and cadence clocks have no % target in the policy."]


# -- rendering ------------------------------------------------------------------------------------------

#: Rows shown before a table folds the rest behind a "show all" (HTML) or points to its CSV (Markdown).
SHOWN_ROWS = 10
MARKDOWN_ROWS = 25
VERDICTS = {True: ("missed", "Missed"), False: ("met", "Met"), None: ("none", "No data")}
MARKDOWN_VERDICTS = {"missed": "🔴 missed", "met": "🟢 met", "none": "⚪ no data"}


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


def scorecard_rows(report: Report) -> list[dict]:
    """The headline scorecard as display rows: side, name, actual, target, verdict, change, sample."""
    if report.scorecard is None:
        return []
    rows = []
    for row in report.scorecard.itertuples(index=False):
        missed = None if row.missed is None or pd.isna(row.missed) else bool(row.missed)
        verdict_class, verdict_text = VERDICTS[missed]
        small = row.commitment != "mqa_volume" and 0 < row.sample < sc.MIN_SAMPLE
        rows.append({
            "side": row.side, "name": fmt.commitment_name(row.commitment, row.tier),
            "actual": fmt.commitment_value(row.commitment, row.value),
            "target": fmt.commitment_target(row.commitment, row.target),
            "verdict": verdict_class, "verdict_text": verdict_text,
            "change": _change_text(row.commitment, row.change, report.previous_label),
            "trend": _trend(row.change, row.target),
            "sample": f"n = {row.sample:,} {row.sample_unit}" + (" (small sample)" if small else ""),
            "owner": getattr(row, "owner", "") or "",
        })
    return rows


def _change_text(commitment: str, change: float, previous: str) -> str:
    if pd.isna(change):
        return f"no figure for {previous}"
    unit = " pp" if commitment.endswith("_pct") else " days" if commitment.endswith("_days") else ""
    arrow = "▲" if change > 0 else "▼" if change < 0 else "="
    return f"{arrow} {change:+,.1f}".rstrip("0").rstrip(".") + f"{unit} vs {previous}"


def _trend(change: float, target: str) -> str:
    """``better``, ``worse`` or ``flat`` against the target's direction (a band has no direction)."""
    if pd.isna(change) or change == 0 or not str(target).startswith(("<=", ">=")):
        return "flat"
    return "better" if (change > 0) == str(target).startswith(">=") else "worse"


def side_tally(rows: list[dict], side: str) -> str:
    mine = [row for row in rows if row["side"] == side]
    judged = [row for row in mine if row["verdict"] != "none"]
    met = sum(row["verdict"] == "met" for row in judged)
    return f"{met} of {len(judged)} met" + (f", {len(mine) - len(judged)} without data" if len(judged) < len(mine)
                                             else "")


def shown_sides(rows: list[dict]) -> list[str]:
    """Marketing and sales always; joint when a commitment (a ``targets.custom`` entry) belongs to it."""
    return ["marketing", "sales"] + (["joint"] if any(row["side"] == "joint" for row in rows) else [])


def headline_lines(report: Report, link: str | None = None) -> list[str]:
    """A few lines for a chat or e-mail: each side's tally and misses, what needs a decision, where the report is."""
    rows = scorecard_rows(report)
    lines = [f"{report.title}: {_span_text(report)}"]
    for side in shown_sides(rows):
        missed = [f"{row['name']} {row['actual']} (target {row['target']}"
                  + (f", owner {row['owner']})" if row["owner"] else ")") for row in rows
                  if row["side"] == side and row["verdict"] == "missed"]
        lines.append(f"{side.capitalize()}: {side_tally(rows, side)}" + (f"; missed: {'; '.join(missed)}"
                                                                           if missed else ""))
    if report.decisions:
        lines.append("Needs a decision: " + "; ".join(decision.headline for decision in report.decisions))
    if link:
        lines.append(f"Report: {link}")
    return lines


def _span_text(report: Report) -> str:
    last = report.end - pd.Timedelta(days=1)
    return f"{report.period} ({report.start:%Y-%m-%d} to {last:%Y-%m-%d}), as of {report.as_of:%Y-%m-%d %H:%M} UTC"


def _md_cell(value: object) -> str:
    """A table cell: CRM text's HTML (``<script>``, ``<img onerror=...>``) escaped, as Markdown renders raw HTML."""
    return html.escape(str(value), quote=False).replace("|", "\\|").replace("\n", " ")


def _md_table(presented: fmt.Presented, limit: int | None = None) -> list[str]:
    rows = presented.rows if limit is None else presented.rows[:limit]
    lines = ["| " + " | ".join(map(_md_cell, presented.columns)) + " |", "|" + "---|" * len(presented.columns)]
    return lines + ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows]


def render_markdown(report: Report, chart_dir: str | None = "charts") -> str:
    numbers = _footnotes(report)
    lines = [f"# {report.title}", "", f"Period {report.period}: {_span(report.start, report.end)}, "
             f"as of {_iso(report.as_of)}.", ""]
    rows = scorecard_rows(report)
    owned = any(r["owner"] for r in rows)  # the Owner column only when the policy names owners
    for side in shown_sides(rows) if rows else ():
        lines += [f"## {side.capitalize()}: {side_tally(rows, side)}", "",
                  "| Commitment | " + "Owner | " * owned + "Actual | Target | Verdict | Change | Sample |",
                  "|---|" + "---|" * owned + "---:|---:|---|---|---|"]
        lines += [f"| {r['name']} | " + f"{_md_cell(r['owner'] or fmt.MISSING)} | " * owned
                  + f"{r['actual']} | {r['target']} | {MARKDOWN_VERDICTS[r['verdict']]} | {r['change']} "
                  f"| {r['sample']} |" for r in rows if r["side"] == side]
        lines.append("")
    if report.decisions:
        lines += ["## Needs a decision", ""]
        for decision in report.decisions:
            lines += [f"- **{decision.title}**: {decision.summary}"]
        lines.append("")
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
            presented = fmt.present(table.name, table.frame)
            if not presented.rows:
                lines += ["_No rows._", ""]
                continue
            lines += _md_table(presented, MARKDOWN_ROWS)
            if len(presented.rows) > MARKDOWN_ROWS:
                lines += ["", f"_{len(presented.rows) - MARKDOWN_ROWS:,} more rows in the table's CSV "
                          f"(`{table.name}.csv`)._"]
            lines.append("")
        for chart in section.charts:
            number = numbers[f"Chart:{chart.name}"]
            sources.append(f"[^{number}]: chart `{chart.name}` — {chart.source}")
            if chart_dir is not None:
                lines += [f"![{chart.title}]({chart_dir}/{chart.name}.png)[^{number}]", ""]
        for name, diff in section.code.items():
            lines += [f"Proposed change to `{name}`:", "", "```diff", diff.rstrip("\n"), "```", ""]
    return "\n".join([*lines, "---", "", *sources, ""])


_TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("abm_sla", "templates"), autoescape=True,
                                trim_blocks=True, lstrip_blocks=True)


def _html_table(name: str, frame: pd.DataFrame, limit: int = SHOWN_ROWS) -> dict:
    """A table for the template: header, the first ``limit`` rows, the rest folded; ``name · id`` split."""
    presented = fmt.present(name, frame)
    entity_positions = [i for i, column in enumerate(presented.columns) if column in presented.entities]
    cells = [[_cell(value, i in entity_positions) for i, value in enumerate(row)] for row in presented.rows]
    numeric = [all(_looks_numeric(row[i]) for row in presented.rows if row[i] not in ("", fmt.MISSING))
               and any(row[i] not in ("", fmt.MISSING) for row in presented.rows)
               for i in range(len(presented.columns))]
    return {"columns": presented.columns, "numeric": numeric, "rows": cells[:limit], "rest": cells[limit:]}


def _cell(text: str, entity: bool) -> Markup:
    if entity and fmt.ID_SEPARATOR in text:
        name, ident = text.rsplit(fmt.ID_SEPARATOR, 1)
        return Markup('{} <small class="id">{}</small>').format(name, ident)
    return Markup.escape(text)


def _looks_numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[-+$≥≤▲▼ ]*[\d,.]+ ?(%|h|days|pp)?", str(text)))


def render_html(report: Report) -> str:
    numbers = _footnotes(report)
    sources: list[tuple[int, str]] = []
    sections = []
    for section in report.sections:
        tables = []
        for table in section.tables:
            number = numbers[f"Table:{table.name}"]
            sources.append((number, f"{table.name}: {table.source}"))
            tables.append({"name": table.name, "title": table.title, "number": number, "note": table.note,
                           **_html_table(table.name, table.frame)})
        charts = []
        for chart in section.charts:
            number = numbers[f"Chart:{chart.name}"]
            sources.append((number, f"chart {chart.name}: {chart.source}"))
            charts.append({"name": chart.name, "title": chart.title, "number": number,
                           "data": base64.b64encode(chart.png).decode("ascii")})
        sections.append({"title": section.title, "id": _slug(section.title).lower(), "text": section.text,
                         "tables": tables, "charts": charts, "code": section.code})
    rows = scorecard_rows(report)
    sides = [{"name": side.capitalize(), "tally": side_tally(rows, side),
              "rows": [row for row in rows if row["side"] == side]} for side in shown_sides(rows)] if rows else []
    decisions = [{"decision": decision, "table": _html_table(decision.table.name, decision.table.frame)
                  if decision.table is not None else None} for decision in report.decisions]
    return _TEMPLATES.get_template("report.html.j2").render(
        report=report, sections=sections, sources=sources, sides=sides, decisions=decisions,
        span=_span(report.start, report.end), as_of=_iso(report.as_of), period_text=_span_text(report))


# -- writing --------------------------------------------------------------------------------------------

def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def write_report(report: Report, out_dir: str | Path) -> dict[str, Path]:
    """Write ``<stem>.html``/``.md``, ``<stem>.metrics.csv`` (the metrics catalog's table),
    ``tables/<stem>/<name>.csv``, ``charts/<stem>/<name>.png`` and ``<stem>-<file>.diff``, where ``<stem>`` is
    ``<kind>-<period>``: reports written to one folder never overwrite each other's tables, charts or diffs.
    Each file is replaced whole (:mod:`abm_sla.infra.atomic`): a failed write leaves the last good one; CSV cells
    that would run as formulas are neutralised."""
    out = Path(out_dir)
    stem = f"{report.kind}-{_slug(report.period)}"
    tables, charts = out / "tables" / stem, out / "charts" / stem
    tables.mkdir(parents=True, exist_ok=True)
    charts.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / f"{stem}.html", "markdown": out / f"{stem}.md"}
    atomic.write_text(paths["html"], report.html())
    atomic.write_text(paths["markdown"], report.markdown(f"charts/{stem}"))
    for name, table in report.tables.items():
        paths[f"table:{name}"] = tables / f"{name}.csv"
        atomic.write_csv(paths[f"table:{name}"], exports.spreadsheet_safe(_csv_frame(table.frame)))
    for name, chart in report.charts.items():
        paths[f"chart:{name}"] = charts / f"{name}.png"
        atomic.write_bytes(paths[f"chart:{name}"], chart.png)
    for name, diff in report.diffs.items():
        paths[f"diff:{name}"] = out / f"{stem}-{_slug(Path(name).name)}.diff"
        atomic.write_text(paths[f"diff:{name}"], diff)
    if report.metrics is not None:
        paths["metrics"] = out / f"{stem}.metrics.csv"
        atomic.write_csv(paths["metrics"], catalog.csv_frame(report.metrics))
    return paths


def _scoring_refresh_notes(report: Report, policy: SlaPolicy, scoring_path: str | Path | None) -> list[str]:
    """The monthly review's scoring-refresh prompt, from the scoring model file's last change."""
    model_file = Path(scoring_path) if scoring_path is not None else DEFAULT_SCORING_PATH
    if policy.scoring_refresh.max_age_days <= 0 or not model_file.is_file():
        return []
    changed_at = pd.Timestamp(model_file.stat().st_mtime, unit="s", tz="UTC")
    line = signoff.scoring_refresh_line(str(model_file), changed_at, report.end, policy.scoring_refresh.max_age_days)
    return [line] if line else []


def build_report(db_url_or_warehouse: str | Warehouse | SlaData, kind: str, period: str,
                 policy_path: str | Path | None = None, scoring_path: str | Path | None = None) -> Report:
    """The ``weekly``, ``monthly`` or ``quarterly`` report for ``period``, built from the warehouse."""
    if kind not in KINDS:
        raise AbmSlaError(f"report kind {kind!r} is not one of {', '.join(KINDS)}")
    sc.parse_period(period)  # a bad period fails before the database is touched
    warehouse = Warehouse(db_url_or_warehouse) if isinstance(db_url_or_warehouse, str) else db_url_or_warehouse
    policy_file = Path(policy_path) if policy_path is not None else DEFAULT_POLICY_PATH
    policy = load_policy(policy_file)
    if kind == "weekly":
        report = build_weekly(warehouse, period, policy)
    elif kind == "monthly":
        report = build_monthly(warehouse, period, policy)
        report.notes = _scoring_refresh_notes(report, policy, scoring_path) + report.notes
    else:
        scoring_file = Path(scoring_path) if scoring_path is not None else DEFAULT_SCORING_PATH
        scoring_text = scoring_file.read_text(encoding="utf-8") if scoring_file.is_file() else None
        report = build_quarterly(warehouse, period, policy, policy_text=policy_file.read_text(encoding="utf-8"),
                                 scoring_text=scoring_text, policy_path=policy_file, scoring_path=scoring_file)
    signoffs = warehouse.signoffs if isinstance(warehouse, SlaData) else warehouse.read_table(schema.signoffs)
    line = signoff.status_line(signoffs, signoff.policy_hash(policy_file.read_bytes()), policy.signoff.roles)
    report.notes = [line, *report.notes]
    return report


def generate_report(db_url_or_warehouse: str | Warehouse | SlaData, kind: str, period: str, out_dir: str | Path,
                    policy_path: str | Path | None = None, scoring_path: str | Path | None = None
                    ) -> dict[str, Path]:
    """Build and write the ``weekly`` or ``quarterly`` report for ``period``; returns the written paths."""
    with track(f"{kind} report {period}", total=2) as bar:
        report = build_report(db_url_or_warehouse, kind, period, policy_path, scoring_path)
        bar.advance()
        paths = write_report(report, out_dir)
        bar.advance()
    return paths


# -- Tier 1 commitments, the top of the list and the watch list (issue 26; docs/designs/tier1-commitments.md) --------

#: The section's summary rows: (commitment, catalog metric).
COMMITMENT_METRICS = (
    ("Tier 1 accounts", "tier1_accounts"),
    ("Tier 1 accounts with a qualified conversation", "tier1_conversation_rate"),
    ("Sales contact within the window of a marketing touch", "sales_follow_up_met_rate"),
    ("Research within the window of a campaign start", "campaign_research_met_rate"),
    ("Top accounts of the list", "top_accounts"),
    ("Top accounts reached personally by sales", "top_accounts_reached_rate"),
    ("Watch-list promotions to brief", "watch_list_promotions"),
)
COMMITMENT_SUMMARY_COLUMNS = ["commitment", "period", "value", "numerator", "denominator", "unit"]


#: Quarterly commitments: a week's figure of them is not shown (the weekly report shows the quarter to date).
QUARTERLY_METRICS = ("tier1_accounts", "tier1_conversation_rate")


def commitment_summary(tables: list[tuple[str, pd.DataFrame]], policy: SlaPolicy,
                       skip: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per commitment the policy defines and metrics table (label, catalog table), read from the catalog;
    ``skip``: metrics left out of the first table (the week's, for the quarterly commitments)."""
    on = _commitment_parts(policy)
    rows = []
    for number, (label, table) in enumerate(tables):
        for commitment, metric in COMMITMENT_METRICS:
            found = catalog.row(table, metric)
            if found is None or metric not in on or (number == 0 and metric in skip):
                continue
            rows.append((commitment, label, found["value"], found["numerator"], found["denominator"], found["unit"]))
    return pd.DataFrame(rows, columns=COMMITMENT_SUMMARY_COLUMNS)


def _commitment_parts(policy: SlaPolicy) -> set[str]:
    """The catalog metrics of the parts the policy switches on."""
    tier1, tal = policy.tier1_commitments, policy.target_account_list
    rules = policy.targets.tier_moves if policy.targets else None
    on = set()
    if tier1 is not None and tier1.conversation is not None:
        on |= {"tier1_accounts", "tier1_conversation_rate"}
    if tier1 is not None and tier1.sales_follow_up is not None:
        on.add("sales_follow_up_met_rate")
    if tier1 is not None and tier1.research is not None:
        on.add("campaign_research_met_rate")
    if tal is not None and tal.top_accounts is not None:
        on |= {"top_accounts", "top_accounts_reached_rate"}
    if rules is not None and rules.brief_sales:
        on.add("watch_list_promotions")
    return on


def top_revisit_table(table: pd.DataFrame, data: SlaData, top: pd.DataFrame, moment: pd.Timestamp,
                      policy: SlaPolicy) -> pd.DataFrame:
    """One row: the top accounts, when their list rows were last agreed (revisited), its age in days, the days
    allowed and whether it is overdue (older, or never): the numbers and the verdict from the metrics catalog table
    ``table``, the date from the top accounts' (``top``) list rows."""
    count = int(catalog.read(table, "top_accounts", default=0.0))
    age = catalog.row(table, "top_accounts_revisit_age_days")
    return pd.DataFrame([{"top_accounts": count, "last_revisited_at": cm.last_revisited(data, top, moment),
                          "revisit_age_days": catalog.read(table, "top_accounts_revisit_age_days"),
                          "revisit_days": catalog.read(table, "top_accounts_revisit_age_days", field="target",
                                                       policy=policy),
                          "overdue": bool(count) and (age is None or age["verdict"] != catalog.MET)}])


def commitments_section(data: SlaData, table: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                        as_of: pd.Timestamp, policy: SlaPolicy, *, label: str) -> tuple[Section | None, list[str]]:
    """The Tier 1 commitments, the top of the list and the watch-list briefings for the period ``label`` (None when
    the policy defines none of them), and the report notes it adds (the list-size warning). A period shorter than
    a quarter shows the quarterly conversation commitment quarter to date instead of its own figure."""
    on = _commitment_parts(policy)
    size_on = policy.target_account_list is not None and policy.target_account_list.size is not None
    if not on and not size_on:
        return None, []
    span, moment = _span(start, end), mk.last_moment(end, as_of)
    quarter_start, quarter_end = sc.parse_period(f"{start.year}-Q{(start.month - 1) // 3 + 1}")
    periods = [(label, table)]
    tier1 = policy.tier1_commitments
    conversations = cm.conversation_coverage(data, quarter_start, quarter_end, as_of, policy)
    to_date = (start, end) != (quarter_start, quarter_end)
    if to_date and tier1 is not None and tier1.conversation is not None:
        periods.append(("quarter to date", catalog.family_table("conversations", conversations, ())))
    tables = [Table("tier1_commitments", "Tier 1 commitments, top accounts and watch list",
                    commitment_summary(periods, policy, QUARTERLY_METRICS if to_date else ()),
                    f"metrics catalog ({', '.join(sorted(on))}) for {span}; quarter to date: "
                    f"{_span(quarter_start, min(quarter_end, as_of))}")]
    text = []
    if "tier1_conversation_rate" in on:
        rule = tier1.conversation
        missing = conversations[~conversations["conversed"]].drop(columns=["conversed"])
        tables.append(Table("tier1_no_conversation", "Tier 1 accounts without a qualified conversation this quarter",
                            _with_owner_names(missing, data),
                            f"activities of type {', '.join(rule.types)} in {_span(quarter_start, quarter_end)} by "
                            f"{_iso(as_of)} with a contact who had a marketing touch in the "
                            f"{rule.engaged_within_days:g} days before (policy tier1_commitments.conversation)"))
        text.append("A qualified conversation: a meeting or call with a contact of the account who engaged with "
                    "marketing shortly before; the commitment is at least one per Tier 1 account per quarter.")
    for metric, name, title, source in (
            ("sales_follow_up_met_rate", "sales_follow_up", "Sales follow-ups of marketing touches due, not met",
             "marketing touches on Tier 1 accounts; due = the first touch of a run + policy "
             "tier1_commitments.sales_follow_up.window (owner's business hours); met = the next sales touch"),
            ("campaign_research_met_rate", "campaign_research", "Campaign research due, not met",
             "activities of type campaign_start (one per account and subject); due = start + policy "
             "tier1_commitments.research.within_days; met = the next account_research activity")):
        if metric not in on:
            continue
        clocks = (cm.follow_up_clocks(data, start - catalog.FOLLOW_UP_LOOKBACK, as_of, policy)
                  if name == "sales_follow_up" else cm.research_clocks(data, as_of, policy))
        due = cm.clocks_due(clocks, start, end)
        tables.append(Table(name, title, _with_owner_names(due[due["status"].ne("met")], data),
                            f"{source}; due_at in {span}, status as of {_iso(as_of)}"))
    if "top_accounts" in on:
        top = cm.top_accounts(data, moment, policy)
        rule = policy.target_account_list.top_accounts
        tables += [
            Table("top_accounts_unreached", f"Top {rule.size} accounts not reached personally in "
                  f"{rule.reach_days:g} days", _with_owner_names(top[~top["reached"]], data),
                  f"target_accounts at {_iso(moment)} ranked by priority (else by score_history.total); sales "
                  f"touches with an owner_id in the {rule.reach_days:g} days to then"),
            Table("top_revisit", f"Top accounts revisited (every {rule.revisit_days:g} days)",
                  top_revisit_table(table, data, top, moment, policy),
                  "target_accounts.agreed_at of the top accounts' rows; metrics catalog: top_accounts, "
                  "top_accounts_revisit_age_days (target: policy target_account_list.top_accounts.revisit_days)"),
        ]
    notes = []
    if size_on:
        size = cm.list_size_check(data, moment, policy)
        tables.append(Table("list_size", "Target account list size against the agreed size", size,
                            f"target_accounts at {_iso(moment)}; policy target_account_list.size"))
        notes += [warning for warning in size["warning"] if warning]
    if "watch_list_promotions" in on:
        tables.append(Table("briefings", "Watch-list promotions: briefing tasks to sales",
                            cm.briefings(data, _ledger(data, as_of, policy), start, end, as_of, policy),
                            _moves_source(as_of) + f"; rules promote_3_to_1, promote_3_to_2 recommended in {span}"))
        text.append("Each Tier 3 account the watch list promotes is a briefing task to its owner: the signals, the "
                    "proposed tier, and a response once promoted (`abm-sla export briefings`).")
    return Section("Tier 1 commitments and top accounts", text, tables=tables), notes
