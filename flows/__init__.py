"""Prefect flows: orchestration only, one flow per business process, composed by ``pipeline``."""
