"""Rev-ops operations: deployment parameters, prefect.yaml schedules served from one process."""
