"""A report rendered: the headline scorecard rows and lines, Markdown, and HTML (charts embedded)."""

from __future__ import annotations

import base64
import html
import re

import jinja2
import pandas as pd
from markupsafe import Markup

from abm_sla.domain import scorecard as sc
from abm_sla.services import report_format as fmt
from abm_sla.services.reporting.common import Report, _iso, _slug, _span

#: Rows shown before a table folds the rest behind a "show all" (HTML) or points to its CSV (Markdown).
SHOWN_ROWS = 10
MARKDOWN_ROWS = 25
VERDICTS = {True: ("missed", "Missed"), False: ("met", "Met"), None: ("none", "No data")}
MARKDOWN_VERDICTS = {"missed": "🔴 missed", "met": "🟢 met", "none": "⚪ no data"}


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
