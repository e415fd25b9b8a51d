"""Writing a report's files: HTML, Markdown, one CSV per table, charts, diffs and metrics.csv."""

from __future__ import annotations

from pathlib import Path

from abm_sla.domain import metrics as catalog
from abm_sla.infra import atomic
from abm_sla.services import exports
from abm_sla.services.reporting.common import Report, _csv_frame, _slug


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
