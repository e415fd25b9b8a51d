"""Thin Prefect tasks around ``abm_sla.services.stages``: I/O, retries, logging; one task per stage."""
