"""The quarterly report's proposals (threshold, windows, volumes, with diffs) and its pipeline check."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd

from abm_sla.domain import proposals as proposals_module
from abm_sla.domain.policy import DEFAULT_PATH as DEFAULT_POLICY_PATH
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard import SlaData
from abm_sla.errors import ConfigError
from abm_sla.services.config_files import load_model
from abm_sla.services.reporting.charts import chart_backtest
from abm_sla.services.reporting.common import CHART_TITLES, DEFAULT_SCORING_PATH, Chart, Section, Table, _iso, _span


def diff_path(path: str | Path | None, default: Path) -> str:
    """How a proposal diff names a config file: relative to the working folder (or else to the project) when
    inside it, so that ``patch -p1`` applies it from there; else its absolute path."""
    resolved = Path(path if path is not None else default).resolve()
    for base in (Path.cwd().resolve(), DEFAULT_POLICY_PATH.parents[1]):
        if resolved.is_relative_to(base):
            return resolved.relative_to(base).as_posix()
    return resolved.as_posix()


def _proposal_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                      policy: SlaPolicy, policy_text: str | None, scoring_text: str | None,
                      policy_path: str | Path | None = None, scoring_path: str | Path | None = None,
                      table: pd.DataFrame | None = None) -> tuple[Section, list[str], proposals_module.Proposals]:
    """The proposals, arguing from the report's own metrics table ``table`` (the catalog's numbers)."""
    text = policy_text if policy_text is not None else DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    found = proposals_module.build_proposals(data, start, end, as_of, policy, text, scoring_text,
                                             sla_path=diff_path(policy_path, DEFAULT_POLICY_PATH),
                                             scoring_path=diff_path(scoring_path, DEFAULT_SCORING_PATH), table=table)
    threshold = found.threshold
    span = _span(start, end)
    section = Section("Proposals", [
        f"Hand-off threshold: current {threshold.current}, proposed {threshold.proposed} — {threshold.reason}.",
        "Backtest: each account fires at its first scored as_of passing the threshold and every other gate, "
        "again only after a rejected/nurture status. Rates as in the marketing scorecard: acceptance and "
        "conversion over the simulated MQAs, rejection over those with a verdict (accepted or rejected; an "
        "account never handed off rarely has one).",
        *found.notes,
        "Apply a diff with `patch -p1 < file.diff` from the project folder." if found.diffs else
        "No configuration change proposed.",
    ], tables=[
        Table("threshold_backtest", "Hand-off threshold backtest", found.backtest,
              f"score_history where as_of in {span} (total, gates); status_changes and opportunities by {_iso(as_of)}"),
        Table("window_proposals", "First-touch windows from observed response (p80, rounded up)", found.windows,
              f"sla_clocks where due_at in {span} and clock = first_touch, answered; mqas.routed_at (metrics "
              "catalog: first_touch_response_p80_hours, first_touch_response_p80_calendar_hours, "
              "first_touches_unanswered)"),
        Table("volume_proposals", "Monthly MQA commitments from the period's run-rate", found.volumes,
              f"mqas where trigger_at in {span}, per calendar month elapsed by {_iso(as_of)} (metrics catalog: "
              "mqas, mqa_run_rate)"),
    ], charts=[
        Chart("threshold_backtest", CHART_TITLES["threshold_backtest"],
              partial(chart_backtest, found.backtest, policy, threshold.current, threshold.proposed), "score_history"),
    ], code=found.diffs)
    return section, [], found


def _pipeline_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, scoring_text: str | None) -> Section:
    """"Does the score predict pipeline?": :func:`abm_sla.domain.learning.pipeline_check` of the scoring model."""
    import yaml

    from abm_sla.domain import learning
    from abm_sla.domain.model import parse_model

    model = parse_model(yaml.safe_load(scoring_text)) if scoring_text else load_model()
    try:
        check = learning.pipeline_check(data, model, start, end)
    except ConfigError as error:  # a model rule on a column the accounts lack: the rest of the report stands
        return Section(learning.PIPELINE_SECTION_TITLE, [f"Not computed: {error}."])
    return Section(learning.PIPELINE_SECTION_TITLE, check.text, tables=[Table(*table) for table in check.tables])
