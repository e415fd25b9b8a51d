"""The weekly, monthly and quarterly reports (the package's API; see :mod:`abm_sla.services.reporting.common`)."""

from abm_sla.services.reporting.common import (
    CHART_TITLES,
    KINDS,
    SHOWN_ROWS,
    Report,
    _breaches_section,
    _content_section,
    _leads_section,
    build_monthly,
    build_quarterly,
    build_report,
    build_weekly,
    campaign_tier_table,
    crm_logging_table,
    generate_report,
    headline_lines,
    load_data,
    money_table,
    no_data_note,
    tal_agreement_table,
    top_revisit_table,
    write_report,
)

__all__ = ["CHART_TITLES", "KINDS", "SHOWN_ROWS", "Report", "_breaches_section", "_content_section", "_leads_section",
           "build_monthly", "build_quarterly", "build_report", "build_weekly", "campaign_tier_table",
           "crm_logging_table", "generate_report", "headline_lines", "load_data", "money_table", "no_data_note",
           "tal_agreement_table", "top_revisit_table", "write_report"]
