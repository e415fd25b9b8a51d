"""The model card of a scoring model proposal (:func:`abm_sla.domain.learning.propose_model`): its Markdown and
JSON files, and the names they are written under. Pure: text in memory, no I/O."""

from __future__ import annotations

import json
from typing import Any

from abm_sla.domain.learning import FIGURES, ModelProposal, outcome_text

CARD_FILES = {"diff": "scoring.yaml.diff", "markdown": "model-card.md", "json": "model-card.json"}
SHOWN_CHANGES = 25


def card_markdown(proposal: ModelProposal) -> str:
    """The model card as Markdown: the verdict, the data, the points, both models on the holdout, the what-if."""
    card = proposal.card
    lines = ["# Scoring model proposal: does the score predict pipeline?", "", f"**Verdict:** {proposal.verdict}.",
             "", "Never applied automatically: review the diff, then `patch -p1 < scoring.yaml.diff` to adopt it.",
             "", "## Data", "", f"- Outcome: {outcome_text(card['outcome'])} within {card['horizon_days']} days "
             f"after each as-of (as-ofs every {card['grid_days']} days).",
             f"- Training: as-ofs whose outcome was known by {card['train_until']} "
             f"({_part_text(card['training'])}).",
             f"- Held back: as-ofs from {card['train_until']} to {card['data_end']} less the horizon "
             f"({_part_text(card['holdout'])}).",
             f"- Minimums: {card['minimums']['training_outcome_accounts']} accounts with the outcome in training, "
             f"{card['minimums']['holdout_outcome_accounts']} held back.", f"- Method: {card['method']}."]
    if "rules" in card:
        lines += ["", "## Points", "", "| rule | category | coefficient | current | proposed | change |",
                  "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {r['rule']} | {r['category']} | {r['coefficient']} | {r['current_points']} | "
                  f"{r['proposed_points']} | {r['change']:+d} |" for r in card["rules"]]
        gates = card["category_minimums"]
        lines += ["", f"Threshold: {card['threshold']['current']} → {card['threshold']['proposed']} (training MQA "
                  f"rate {card['threshold']['training_mqa_rate_current']:.2%} → "
                  f"{card['threshold']['training_mqa_rate_proposed']:.2%}); category minimums: "
                  + ", ".join(f"{c} {v['current']} → {v['proposed']}" for c, v in gates.items()) + "."]
        lines += _comparison_lines(card["holdout_comparison"]) + _what_if_lines(card["what_if"])
    return "\n".join(lines) + "\n"


def _part_text(part: dict[str, Any]) -> str:
    return (f"{part['rows']} rows, {part['accounts']} accounts, {part['as_ofs']} as-ofs; "
            f"{part['opportunity_accounts']} accounts with a new opportunity, {part['won_accounts']} with a win")


def _comparison_lines(comparison: dict[str, Any]) -> list[str]:
    now, new = comparison["current"], comparison["proposed"]
    lines = ["", "## Held-back as-ofs: current and proposed", "",
             f"{now['rows']} rows, {now['outcome_rows']} with the outcome ({now['outcome_accounts']} accounts).", "",
             "| figure | current | proposed |", "|---|---:|---:|"]
    lines += [f"| {label} | {_cell(now[key])} | {_cell(new[key])} |" for key, label in FIGURES]
    lines += ["", "Calibration by score band (rows with the outcome / rows):", "",
              "| band | current | proposed |", "|---|---:|---:|"]
    for before, after in zip(now["calibration"], new["calibration"], strict=True):
        lines.append(f"| {before['band']} | {_band_cell(before)} | {_band_cell(after)} |")
    return lines


def _cell(value: Any) -> str:
    return "n/a" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _band_cell(band: dict[str, Any]) -> str:
    rate = "" if band["rate"] is None else f" ({band['rate']:.1%})"
    return f"{band['outcome_rows']} / {band['rows']}{rate}"


def _what_if_lines(what_if: dict[str, Any]) -> list[str]:
    changed = what_if["changed_mqas"]
    lines = ["", f"## What-if as of {what_if['as_of']}", "",
             f"{len(changed)} accounts would change hand-off: {what_if['summary']['newly_pass']} newly pass, "
             f"{what_if['summary']['drop_below']} drop below."]
    if changed:
        lines += ["", "| account | change | total now | total proposed |", "|---|---|---:|---:|"]
        lines += [f"| {row['account_id']} | {row['change']} | {row['total_before']} | {row['total_after']} |"
                  for row in changed[:SHOWN_CHANGES]]
        if len(changed) > SHOWN_CHANGES:
            lines.append(f"\n{len(changed) - SHOWN_CHANGES} more in model-card.json.")
    return lines


def card_json(proposal: ModelProposal) -> str:
    """The model card as JSON: every figure of the Markdown card and the full what-if list."""
    return json.dumps({**proposal.card, "proposed": proposal.proposed}, indent=2, default=str) + "\n"

