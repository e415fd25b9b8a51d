"""Rev-ops operations: prefect.yaml schedules served from one process (the flows own their parameter forms)."""
