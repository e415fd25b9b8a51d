"""The first screen's "needs a decision" items: chronic misses, tier moves, open escalations, proposals."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain import proposals as proposals_module
from abm_sla.domain import scorecard as sc
from abm_sla.domain import tier_moves as tm
from abm_sla.services import report_format as fmt
from abm_sla.services.reporting.common import Decision, Table

DECISION_ROWS = 5


def _chronic_decision(chronic: pd.DataFrame, link: str) -> Decision:
    rows = chronic[chronic["chronic"]]
    columns = ["commitment", "tier", "value", "previous_value", "target", "diagnosis"]
    if rows.empty:
        summary = (f"none: no commitment was missed in both {chronic['quarter'].iloc[0]} and "
                   f"{chronic['previous_quarter'].iloc[0]}." if len(chronic) else "none: the policy sets no targets.")
        return Decision("Chronic misses to renegotiate", summary, "no chronic misses", link=link)
    names = ", ".join(fmt.commitment_name(c, t) for c, t in zip(rows["commitment"], rows["tier"], strict=True))
    return Decision("Chronic misses to renegotiate",
                    f"{len(rows)} commitments missed this quarter and the one before: {names}.",
                    f"{len(rows)} chronic misses", Table("chronic_misses", "Chronic misses",
                                                         rows[columns].reset_index(drop=True), ""), link)


def _moves_decision(moves: pd.DataFrame, link: str) -> Decision:
    moves = moves[moves["decision"].eq(tm.PENDING)] if "decision" in moves.columns else moves
    if moves.empty:
        return Decision("Tier moves awaiting sales", "none pending.", "no tier moves", link=link)
    counts = moves["rule"].map(fmt.RULE_NAMES).fillna(moves["rule"]).value_counts()
    summary = f"{len(moves):,} accounts: " + ", ".join(f"{n:,} {rule}" for rule, n in counts.items()) + "."
    top = moves.head(DECISION_ROWS)[["account_id", "account_name", "owner_id", "owner_name", "tier",
                                      "proposed_tier", "reason", "age_days"]]
    return Decision("Tier moves awaiting sales", summary, f"{len(moves):,} tier moves",
                    Table("tier_moves", "Tier moves", top, ""), link)


def _escalations_decision(escalations: pd.DataFrame, as_of: pd.Timestamp, link: str) -> Decision:
    if escalations.empty:
        return Decision("Escalations open longest", "no escalation is open.", "no open escalations", link=link)
    oldest = escalations.sort_values("first_opened_at").head(DECISION_ROWS).copy()
    oldest["open_for_days"] = ((as_of - oldest["first_opened_at"]) / sc.DAY).round(1)
    top = oldest[["account_id", "account_name", "owner_id", "owner_name", "tier", "clock", "level",
                  "open_for_days"]].reset_index(drop=True)
    longest = fmt.days(oldest["open_for_days"].iloc[0])
    return Decision("Escalations open longest", f"{len(escalations):,} open; the oldest for {longest}.",
                    f"{len(escalations):,} escalations open (oldest {longest})",
                    Table("open_escalations", "Escalations open longest", top, ""), link)


def _proposals_decision(found: proposals_module.Proposals, link: str) -> Decision:
    threshold = found.threshold
    changes = [f"hand-off threshold {threshold.current} → {threshold.proposed}"] \
        if threshold.proposed != threshold.current else []
    changes += [f"{fmt.tier(row.tier)} first-touch window {row.current:g} → {float(row.proposed):g} "
                f"{str(row.unit).replace('_', ' ')}"
                for row in found.windows.itertuples() if pd.notna(row.proposed)]
    changes += [f"{fmt.tier(row.tier)} MQA commitment {row.current} → {row.proposed} a month"
                for row in found.volumes.itertuples() if pd.notna(row.proposed)]
    if not found.diffs:
        return Decision("Proposals to agree", "no configuration change proposed.", "no proposals", link=link)
    return Decision("Proposals to agree", "; ".join(changes) + "." if changes else "see the diffs.",
                    f"{len(found.diffs)} config changes proposed", link=link, code=found.diffs,
                    link_text="Evidence")
