"""``abm-sla demo``: a sample CRM, a quarter of daily runs, the exports and a summary per tier.

After ``DEMO_DECISION_DAY`` days sales acts on the tier-move recommendations in the CRM (the export's
accounts.csv is rewritten, :func:`synthetic.sales_tier_decisions`), so the reports show accepted,
declined and pending moves."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from abm_sla.domain import dispositions, learning, metrics, sla
from abm_sla.domain import feedback as fb
from abm_sla.domain.scorecard import TIERS, SlaData, parse_period
from abm_sla.infra.settings import database_url_env
from abm_sla.services import exports, model_proposal, synthetic
from abm_sla.services.config_files import load_policy
from abm_sla.services.reporting import generate_report, load_data
from abm_sla.warehouse import Warehouse, decisions, disputes, schema, signoffs

DEMO_START = pd.Timestamp("2026-01-01T00:00:00Z")
DEMO_DAYS = 90
DEMO_WEEK = "2026-W13"
DEMO_MONTH = "2026-03"
DEMO_QUARTER = "2026-Q1"
#: The demo's policy: SPEC's clocks and ladder plus everything the product adds beside them (the feedback
#: loop, the marketing side and the target account list, escalation of other clocks), so the demo shows it all.
DEMO_POLICY = Path(__file__).resolve().parents[2] / "config" / "presets" / "demo.yaml"
#: Days run before sales acts on the tier-move recommendations in the CRM (the export is rewritten).
DEMO_DECISION_DAY = 60
#: The model proposal needs quarters of outcomes the demo's one quarter lacks: it learns from its own sample
#: CRM of five quarters whose outcomes follow a known relation (synthetic.TRUTH_SIGNALS), trained on the
#: first three (their outcomes known by day 270) and checked on the rest.
PROPOSAL_ACCOUNTS = 1000
PROPOSAL_DAYS = 450
PROPOSAL_TRAIN_DAYS = 270


#: Columns the demo's tables may use when the output is not a terminal (tables stay as narrow as their rows).
NON_TERMINAL_WIDTH = 1000


def wide_console() -> Console:
    """A console for the demo's tables: the terminal's width, or when the output is a file or a pipe (rich's
    default there is 80 columns) as wide as the rows need, so paths are never cut."""
    console = Console()
    return console if console.is_terminal else Console(width=NON_TERMINAL_WIDTH)


def run_demo(out: Path, n_accounts: int, seed: int, run_steps: Callable[..., list[dict]]) -> dict[str, Path]:
    """Generate, run daily at 12:00 UTC over the quarter, export; returns the output paths."""
    console = wide_console()
    out = out.resolve()
    if out.exists():
        shutil.rmtree(out)  # the demo folder is the demo's own: start clean so figures are reproducible
    store, summaries, folder = build_demo(out, n_accounts, seed, run_steps, console)
    paths = {"crm_export": folder, "database": out / "abm-sla.db"}
    data, written = write_outputs(store, out)
    paths.update(written)
    proposal, written = demo_model_proposal(out / "model-proposal", seed)
    paths.update({f"model proposal ({name})": path for name, path in written.items()})
    print_extract(console, summaries[0].get("extract", {}).get("files", {}))
    quarter = quarter_metrics(data)
    print_tier_summary(console, data, quarter)
    print_feedback_summary(console, data, summaries[-1].get("sla", {}), quarter)
    print_breaches(console, store)
    paths_table = Table(title="Outputs")
    paths_table.add_column("what")
    paths_table.add_column("where")
    for name, path in paths.items():
        paths_table.add_row(name, str(path))
    console.print(paths_table)
    console.print(f"Model proposal (five-quarter sample CRM): {proposal.verdict}")
    return paths


def build_demo(out: Path, n_accounts: int, seed: int, run_steps: Callable[..., list[dict]],
               console: Console | None = None) -> tuple[Warehouse, list[dict], Path]:
    """The demo's warehouse in ``out`` (``abm-sla.db``): a sample CRM export run daily at 12:00 UTC over the
    quarter, sales' tier decisions after :data:`DEMO_DECISION_DAY`, then disputes, decisions and sign-offs;
    returns the warehouse, the runs' summaries and the export folder."""
    console = console if console is not None else wide_console()
    crm = synthetic.generate_crm(n_accounts=n_accounts, start=DEMO_START, days=DEMO_DAYS, seed=seed, feedback=True,
                                 marketing_program=True)
    crm = synthetic.add_team_requests(crm, DEMO_START, DEMO_DAYS, seed)  # issue 26: requests, hot accounts
    folder = synthetic.write_export_folder(crm, out / "crm-export", dirty=True)
    db_url = f"sqlite:///{out / 'abm-sla.db'}"
    console.print(f"Sample CRM: {n_accounts} accounts, {len(crm['activities'])} activities → {folder}")
    as_ofs = pd.date_range(DEMO_START + pd.Timedelta(hours=12), periods=DEMO_DAYS, freq="D")
    with database_url_env(db_url), _each_warning_once():
        summaries = run_steps(as_ofs=[t.isoformat() for t in as_ofs[:DEMO_DECISION_DAY]], source="files",
                              path=str(folder), policy_path=str(DEMO_POLICY))
        store = Warehouse(db_url)
        ledger = store.read_table(schema.tier_move_recommendations)
        crm["accounts"] = synthetic.sales_tier_decisions(crm["accounts"], ledger, as_ofs[DEMO_DECISION_DAY - 1], seed)
        synthetic.write_export_folder(crm, folder, dirty=True)  # sales changed tiers in the CRM
        summaries += run_steps(as_ofs=[t.isoformat() for t in as_ofs[DEMO_DECISION_DAY:]], source="files",
                               path=str(folder), policy_path=str(DEMO_POLICY))
        store = Warehouse(db_url)
        demo_disputes(store)
        demo_decisions(store)
        for name, role, day in (("Dana Reyes", "head of sales", 1), ("Sam Okafor", "head of marketing", 2)):
            signoffs.record(store, DEMO_POLICY, name, role, DEMO_START + pd.Timedelta(days=day, hours=10))
    return store, summaries, folder


#: The demo's reports: kind and period.
DEMO_REPORTS = (("weekly", DEMO_WEEK), ("monthly", DEMO_MONTH), ("quarterly", DEMO_QUARTER))


def write_outputs(store: Warehouse, out: Path) -> tuple[SlaData, dict[str, Path]]:
    """Every export (``out/exports/<kind>.csv``: the quarter's, the intent list the week's) and the weekly,
    monthly and quarterly reports (``out/reports``, each with its ``<report>.metrics.csv``); returns the
    warehouse's data (read once for every report) and the written paths."""
    paths = {}
    policy = load_policy(DEMO_POLICY)
    for kind in exports.KINDS:
        paths[f"{kind}.csv"] = out / "exports" / f"{kind}.csv"
        exports.export(store, kind, paths[f"{kind}.csv"], period=DEMO_WEEK if kind == "intent-list" else DEMO_QUARTER,
                       policy=policy)
    data = load_data(store)  # read the warehouse once for every report
    for kind, period in DEMO_REPORTS:
        written = generate_report(data, kind, period, out / "reports", policy_path=DEMO_POLICY)
        paths.update({f"{kind} report ({suffix})": path for suffix, path in written.items()
                      if suffix in ("html", "markdown", "md")})
    return data, paths


def demo_model_proposal(out: Path, seed: int) -> tuple[learning.ModelProposal, dict[str, Path]]:
    """``abm-sla propose model`` on a five-quarter sample CRM with a known signal→outcome relation: the
    diff and the model card in ``out``."""
    crm = synthetic.generate_crm(n_accounts=PROPOSAL_ACCOUNTS, start=DEMO_START, days=PROPOSAL_DAYS, seed=seed,
                                 outcome_truth=True)
    return model_proposal.propose(SlaData.of(**crm), DEMO_START + pd.Timedelta(days=PROPOSAL_TRAIN_DAYS), out,
                                  until=DEMO_START + pd.Timedelta(days=PROPOSAL_DAYS))


def print_extract(console: Console, files: dict) -> None:
    table = Table(title="Loaded from the export folder")
    for column in ("file", "loaded", "quarantined", "values dropped"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for file, counts in files.items():
        loaded = "unchanged" if counts.get("unchanged") else str(counts["loaded"])
        table.add_row(file, loaded, str(counts["quarantined"]), str(counts.get("values_dropped", 0)))
    console.print(table)


#: The demo's per-tier summary: column → the catalog metric it shows (abm_sla.domain.metrics), over the demo's quarter.
TIER_SUMMARY = {"mqas_fired": "mqas", "first_touch_met_pct": "first_touch_met_rate", "clocks_missed": "clocks_missed",
                "escalations_open": "escalations_open"}


def tier_summary(data: SlaData, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per tier over the demo's quarter: MQAs fired, first-touch met %, clocks missed and escalations open at its
    end: the metrics catalog's values (``table``: :func:`domain.metrics.compute` of the quarter), as the quarterly
    report's metrics.csv holds them."""
    table = quarter_metrics(data) if table is None else table
    summary = pd.DataFrame({column: [metrics.value(table, metric, f"tier={tier}") for tier in TIERS]
                            for column, metric in TIER_SUMMARY.items()}, index=pd.Index(TIERS, name="tier"))
    counts = ["mqas_fired", "clocks_missed", "escalations_open"]
    summary[counts] = summary[counts].fillna(0).astype(int)
    return summary


def quarter_metrics(data: SlaData) -> pd.DataFrame:
    """The metrics catalog's table of the demo's quarter as of its end (the quarterly report's metrics.csv)."""
    start, end = parse_period(DEMO_QUARTER)
    return metrics.compute(data.known_by(end), start, end, end, load_policy(DEMO_POLICY))


def print_tier_summary(console: Console, data: SlaData, table: pd.DataFrame | None = None) -> None:
    summary = tier_summary(data, table)
    table_ = Table(title=f"SLA by tier over the quarter ({DEMO_QUARTER}, from the metrics catalog)")
    for column in ("tier", "MQAs fired", "first touch met %", "clocks missed", "escalations open"):
        table_.add_column(column, justify="right")
    for row in summary.reset_index(names="tier").itertuples(index=False):
        met = "—" if pd.isna(row.first_touch_met_pct) else f"{row.first_touch_met_pct:.1f}"
        table_.add_row(f"Tier {row.tier}", str(row.mqas_fired), met, str(row.clocks_missed), str(row.escalations_open))
    console.print(table_)


def feedback_summary(data: SlaData, table: pd.DataFrame | None = None) -> list[tuple[str, str]]:
    """The feedback loop over the quarter, as (what, figure) lines: dispositions and the optional clocks (the
    metrics catalog's, ``table`` as :func:`quarter_metrics`), reasons, routing time's basis and unknown status
    values."""
    policy = load_policy(DEMO_POLICY)
    start, end = parse_period(DEMO_QUARTER)
    table = quarter_metrics(data) if table is None else table
    mix = pd.Series({name: metrics.value(table, metrics.disposition_metric_id(name))
                     for name in metrics.MIX_DISPOSITIONS}).fillna(0).astype(int)
    mix = mix[mix > 0].sort_values(ascending=False, kind="stable")
    reasons = fb.rejection_reasons(metrics.mqa_facts(data, start, end, end, policy))
    basis = fb.routing_basis(table, policy).set_index("measured_to")["clocks"]
    unknown = dispositions.unknown_statuses(data.status_changes, policy)
    lines = [("dispositions", ", ".join(f"{name} {count}" for name, count in mix.items()))]
    if len(reasons):
        top = reasons.iloc[0]
        lines.append(("top rejection reason", f"{top['reason']} ({top['mqas']} of {int(reasons['mqas'].sum())})"))
    for clock in sla.OPTIONAL_CLOCKS:
        counts = {status: metrics.value(table, metric) for status, metric in metrics.clock_metric_ids(clock).items()}
        if sum(counts[status] for status in metrics.CLOCK_STATUSES) > 0:
            rate = "—" if pd.isna(counts["met_pct"]) else f"{counts['met_pct']:.1f}%"
            lines.append((clock, f"{rate} met ({int(counts['met'])} met, {int(counts['missed'])} missed, "
                                 f"{int(counts['pending'])} pending)"))
    lines.append(("routing time measured to", ", ".join(f"{name} {count}" for name, count in basis.items() if count)))
    lines.append(("unknown status values", ", ".join(dispositions.summary_of_unknown(unknown)) or "none"))
    return lines


class _FirstTimeOnly(logging.Filter):
    """Lets each distinct message through once (the demo's 90 daily runs repeat the same warnings)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        first = message not in self.seen
        self.seen.add(message)
        return first


@contextmanager
def _each_warning_once() -> Iterator[None]:
    logger, only_once = logging.getLogger("abm_sla"), _FirstTimeOnly()
    logger.addFilter(only_once)
    try:
        yield
    finally:
        logger.removeFilter(only_once)


def print_feedback_summary(console: Console, data: SlaData, sla_summary: dict,
                           metrics_table: pd.DataFrame | None = None) -> None:
    table = Table(title="Feedback loop over the quarter (policy: demo preset)")
    table.add_column("what")
    table.add_column("figure")
    for what, figure in feedback_summary(data, metrics_table):
        table.add_row(what, figure)
    console.print(table)


def demo_disputes(store: Warehouse) -> list[int]:
    """Two disputes a rev-ops lead would record: one closed, reopened and still open at the quarter's end
    (on the first reassigned account, else the first MQA), one opened and closed in March."""
    mqas = store.read_table(schema.mqas).sort_values(["trigger_at", "account_id"])
    moved = store.read_table(schema.reassignments)
    accounts = list(dict.fromkeys([*moved.sort_values("reassigned_at")["account_id"], *mqas["account_id"]]))[:2]
    if not accounts:
        return []
    at = DEMO_START + pd.Timedelta(days=35, hours=15)
    first = disputes.open_dispute(store, accounts[0], "sales: this MQA was not ready to buy; marketing: no touch "
                                  "in 3 days", "Marcus Bell", "review the first-touch window for Tier 1", at)
    disputes.add_note(store, first, "Jenna Ortiz", "owners met: the contact was a researcher",
                      at + pd.Timedelta(days=6))
    disputes.close_dispute(store, first, "keep the window; tighten the decision-maker titles", "Priya Raman",
                           at + pd.Timedelta(days=8), "agreed")
    disputes.reopen_dispute(store, first, "Marcus Bell", "the same pattern on two more accounts",
                            at + pd.Timedelta(days=40))
    ids = [first]
    if len(accounts) > 1:
        second = disputes.open_dispute(store, accounts[1], "rejected as unqualified but won by a competitor",
                                       "Grace Miller", "re-open the account to sales", at + pd.Timedelta(days=20))
        disputes.close_dispute(store, second, "sales re-engages this quarter", "Daniel Okafor",
                               at + pd.Timedelta(days=31), "overturned")
        ids.append(second)
    return ids


def demo_decisions(store: Warehouse) -> list[int]:
    """The decisions of the February review (shown in March's) and one of March's own: what the seven
    commitments' monthly review produces."""
    february = DEMO_START + pd.Timedelta(days=59, hours=16)  # 2026-03-01, the February review
    ids = [decisions.add_decision(store, "2026-02", "Tighten the decision-maker titles: drop 'Director' from the "
                                  "hand-off gate's list", "Priya Raman", february, due="2026-03-15"),
           decisions.add_decision(store, "2026-02", "Tier 1 first touch by phone within 2 business hours; "
                                  "coach the two owners with most misses", "Marcus Bell", february, due="2026-03-31"),
           decisions.add_decision(store, "2026-02", "Move webinar budget to the pricing-page retargeting ads",
                                  "Jenna Ortiz", february)]
    decisions.mark_done(store, ids[0], "titles updated in config/scoring.yaml on 2026-03-09",
                        february + pd.Timedelta(days=8))
    ids.append(decisions.add_decision(store, "2026-03", "Review the stalled Tier 1 accounts in the weekly sync",
                                      "Grace Miller", DEMO_START + pd.Timedelta(days=89, hours=16)))
    review_day = DEMO_START + pd.Timedelta(days=89, hours=15)  # the Q1 account review (implementation guide)
    for name, side in (("Sam Okafor", "marketing"), ("Jenna Ortiz", "marketing"), ("Dana Reyes", "sales"),
                       ("Marcus Bell", "sales")):
        decisions.record_attendance(store, DEMO_QUARTER, name, side, review_day)
    return ids


def breach_summary(store: Warehouse) -> dict[str, int]:
    """Escalated MQAs per clock, reassignments, open and closed disputes."""
    escalations = store.read_table(schema.escalations)
    per_clock = escalations.drop_duplicates(["account_id", "trigger_at", "clock"])["clock"].value_counts()
    moved = store.read_table(schema.reassignments)
    rows, _ = disputes.read_disputes(store)
    return {**{f"escalated MQAs ({clock.replace('_', ' ')})": int(n) for clock, n in per_clock.sort_index().items()},
            "reassigned on breach": int((moved["status"] == "reassigned").sum()),
            "disputes open": int((rows["status"] == "open").sum()),
            "disputes closed": int((rows["status"] == "closed").sum())}


def print_breaches(console: Console, store: Warehouse) -> None:
    table = Table(title=f"Escalations, reassignments and disputes ({DEMO_POLICY.stem} policy)")
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, count in breach_summary(store).items():
        table.add_row(name, str(count))
    console.print(table)
