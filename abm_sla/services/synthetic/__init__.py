"""A seeded synthetic CRM (the public API of the generator; see :mod:`abm_sla.services.synthetic.common`)."""

from abm_sla.services.synthetic.common import (
    DEFAULT_START,
    TRUTH_SIGNALS,
    add_marketing_program,
    add_team_requests,
    generate_crm,
    sales_tier_decisions,
    write_export_folder,
)

__all__ = ["DEFAULT_START", "TRUTH_SIGNALS", "add_marketing_program", "add_team_requests", "generate_crm",
           "sales_tier_decisions", "write_export_folder"]
