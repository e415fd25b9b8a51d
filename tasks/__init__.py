"""Thin Prefect tasks around ``abm_sla.stages``: I/O, retries, logging; one task per stage."""
