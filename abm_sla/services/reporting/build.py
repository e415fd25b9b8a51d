"""The one call the CLI and the flows make: build a report of a kind for a period (:func:`build_report`) and
write it (:func:`generate_report`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from abm_sla.domain import scorecard as sc
from abm_sla.domain import signoff
from abm_sla.domain.policy import DEFAULT_PATH as DEFAULT_POLICY_PATH
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard import SlaData
from abm_sla.errors import AbmSlaError
from abm_sla.infra.progress import track
from abm_sla.services.config_files import load_policy
from abm_sla.services.reporting.common import DEFAULT_SCORING_PATH, KINDS, Report
from abm_sla.services.reporting.monthly import build_monthly
from abm_sla.services.reporting.quarterly import build_quarterly
from abm_sla.services.reporting.weekly import build_weekly
from abm_sla.services.reporting.writing import write_report
from abm_sla.warehouse import Warehouse, schema


def _scoring_refresh_notes(report: Report, policy: SlaPolicy, scoring_path: str | Path | None) -> list[str]:
    """The monthly review's scoring-refresh prompt, from the scoring model file's last change."""
    model_file = Path(scoring_path) if scoring_path is not None else DEFAULT_SCORING_PATH
    if policy.scoring_refresh.max_age_days <= 0 or not model_file.is_file():
        return []
    changed_at = pd.Timestamp(model_file.stat().st_mtime, unit="s", tz="UTC")
    line = signoff.scoring_refresh_line(str(model_file), changed_at, report.end, policy.scoring_refresh.max_age_days)
    return [line] if line else []


def build_report(db_url_or_warehouse: str | Warehouse | SlaData, kind: str, period: str,
                 policy_path: str | Path | None = None, scoring_path: str | Path | None = None) -> Report:
    """The ``weekly``, ``monthly`` or ``quarterly`` report for ``period``, built from the warehouse."""
    if kind not in KINDS:
        raise AbmSlaError(f"report kind {kind!r} is not one of {', '.join(KINDS)}")
    sc.parse_period(period)  # a bad period fails before the database is touched
    warehouse = Warehouse(db_url_or_warehouse) if isinstance(db_url_or_warehouse, str) else db_url_or_warehouse
    policy_file = Path(policy_path) if policy_path is not None else DEFAULT_POLICY_PATH
    policy = load_policy(policy_file)
    if kind == "weekly":
        report = build_weekly(warehouse, period, policy)
    elif kind == "monthly":
        report = build_monthly(warehouse, period, policy)
        report.notes = _scoring_refresh_notes(report, policy, scoring_path) + report.notes
    else:
        scoring_file = Path(scoring_path) if scoring_path is not None else DEFAULT_SCORING_PATH
        scoring_text = scoring_file.read_text(encoding="utf-8") if scoring_file.is_file() else None
        report = build_quarterly(warehouse, period, policy, policy_text=policy_file.read_text(encoding="utf-8"),
                                 scoring_text=scoring_text, policy_path=policy_file, scoring_path=scoring_file)
    signoffs = warehouse.signoffs if isinstance(warehouse, SlaData) else warehouse.read_table(schema.signoffs)
    line = signoff.status_line(signoffs, signoff.policy_hash(policy_file.read_bytes()), policy.signoff.roles)
    report.notes = [line, *report.notes]
    return report


def generate_report(db_url_or_warehouse: str | Warehouse | SlaData, kind: str, period: str, out_dir: str | Path,
                    policy_path: str | Path | None = None, scoring_path: str | Path | None = None
                    ) -> dict[str, Path]:
    """Build and write the ``weekly`` or ``quarterly`` report for ``period``; returns the written paths."""
    with track(f"{kind} report {period}", total=2) as bar:
        report = build_report(db_url_or_warehouse, kind, period, policy_path, scoring_path)
        bar.advance()
        paths = write_report(report, out_dir)
        bar.advance()
    return paths
