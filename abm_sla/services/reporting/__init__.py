"""Weekly dashboard, monthly review and quarterly renegotiation report: HTML (charts embedded), Markdown,
one CSV per table, the metrics catalog's table beside each.

:func:`build_weekly` / :func:`build_monthly` / :func:`build_quarterly` read the warehouse once, compute with
the pure :mod:`abm_sla.domain.scorecard`, :mod:`abm_sla.domain.review`, :mod:`abm_sla.domain.tier_moves` and
:mod:`abm_sla.domain.proposals`, and return a :class:`Report` (tables as frames,
charts as PNG bytes, Markdown and HTML text) that Prefect tasks can turn into artifacts;
:func:`write_report` writes it; :func:`generate_report` is the one call the CLI makes. Every table
names its source (warehouse table + filter) in a numbered footnote.

The parts: ``common`` (the report model, reading, shared helpers), ``charts``, ``decisions`` and ``notes`` (the
first screen), ``design_tables`` (the SLA design's tables from the metrics catalog), ``sections`` (sections more
than one report shows), ``tier_moves``, ``marketing_side``, ``commitments``, ``proposals``, ``weekly``,
``monthly``, ``quarterly``, ``render`` (Markdown, HTML, headline lines), ``writing`` (the files) and ``build``
(:func:`build_report`, :func:`generate_report`).
"""

from abm_sla.services.reporting.build import build_report, generate_report
from abm_sla.services.reporting.commitments import commitment_summary, commitments_section, top_revisit_table
from abm_sla.services.reporting.common import (
    CHART_TITLES,
    KINDS,
    Chart,
    Decision,
    Report,
    Section,
    Table,
    load_data,
    period_label,
)
from abm_sla.services.reporting.design_tables import (
    campaign_tier_table,
    crm_logging_table,
    money_table,
    regional_compliance,
    tal_agreement_table,
    team_clock_compliance,
)
from abm_sla.services.reporting.marketing_side import marketing_side_section
from abm_sla.services.reporting.monthly import build_monthly
from abm_sla.services.reporting.notes import no_data_line, no_data_note
from abm_sla.services.reporting.proposals import diff_path
from abm_sla.services.reporting.quarterly import build_quarterly
from abm_sla.services.reporting.render import SHOWN_ROWS, headline_lines, render_html, render_markdown
from abm_sla.services.reporting.sections import regional_section
from abm_sla.services.reporting.tier_moves import tier_move_table
from abm_sla.services.reporting.weekly import build_weekly
from abm_sla.services.reporting.writing import write_report

__all__ = ["CHART_TITLES", "KINDS", "SHOWN_ROWS", "Chart", "Decision", "Report", "Section", "Table", "build_monthly",
           "build_quarterly", "build_report", "build_weekly", "campaign_tier_table", "commitment_summary",
           "commitments_section", "crm_logging_table", "diff_path", "generate_report", "headline_lines", "load_data",
           "marketing_side_section", "money_table", "no_data_line", "no_data_note", "period_label",
           "regional_compliance", "regional_section", "render_html", "render_markdown", "tal_agreement_table",
           "team_clock_compliance", "tier_move_table", "top_revisit_table", "write_report"]
