"""abm-sla: run a sales-marketing SLA on CRM data."""

__version__ = "0.1.0"
