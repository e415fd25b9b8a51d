"""Tier 1 commitments, the top of the list and the watch list (issue 26; docs/designs/tier1-commitments.md)."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain import commitments as cm
from abm_sla.domain import marketing as mk
from abm_sla.domain import metrics as catalog
from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard import SlaData
from abm_sla.services.reporting.common import Section, Table, _iso, _span, _with_owner_names
from abm_sla.services.reporting.tier_moves import _ledger, _moves_source

#: The section's summary rows: (commitment, catalog metric).
COMMITMENT_METRICS = (
    ("Tier 1 accounts", "tier1_accounts"),
    ("Tier 1 accounts with a qualified conversation", "tier1_conversation_rate"),
    ("Sales contact within the window of a marketing touch", "sales_follow_up_met_rate"),
    ("Research within the window of a campaign start", "campaign_research_met_rate"),
    ("Top accounts of the list", "top_accounts"),
    ("Top accounts reached personally by sales", "top_accounts_reached_rate"),
    ("Watch-list promotions to brief", "watch_list_promotions"),
)
COMMITMENT_SUMMARY_COLUMNS = ["commitment", "period", "value", "numerator", "denominator", "unit"]
#: Quarterly commitments: a week's figure of them is not shown (the weekly report shows the quarter to date).
QUARTERLY_METRICS = ("tier1_accounts", "tier1_conversation_rate")


def commitment_summary(tables: list[tuple[str, pd.DataFrame]], policy: SlaPolicy,
                       skip: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per commitment the policy defines and metrics table (label, catalog table), read from the catalog;
    ``skip``: metrics left out of the first table (the week's, for the quarterly commitments)."""
    on = _commitment_parts(policy)
    rows = []
    for number, (label, table) in enumerate(tables):
        for commitment, metric in COMMITMENT_METRICS:
            found = catalog.row(table, metric)
            if found is None or metric not in on or (number == 0 and metric in skip):
                continue
            rows.append((commitment, label, found["value"], found["numerator"], found["denominator"], found["unit"]))
    return pd.DataFrame(rows, columns=COMMITMENT_SUMMARY_COLUMNS)


def _commitment_parts(policy: SlaPolicy) -> set[str]:
    """The catalog metrics of the parts the policy switches on."""
    tier1, tal = policy.tier1_commitments, policy.target_account_list
    rules = policy.targets.tier_moves if policy.targets else None
    on = set()
    if tier1 is not None and tier1.conversation is not None:
        on |= {"tier1_accounts", "tier1_conversation_rate"}
    if tier1 is not None and tier1.sales_follow_up is not None:
        on.add("sales_follow_up_met_rate")
    if tier1 is not None and tier1.research is not None:
        on.add("campaign_research_met_rate")
    if tal is not None and tal.top_accounts is not None:
        on |= {"top_accounts", "top_accounts_reached_rate"}
    if rules is not None and rules.brief_sales:
        on.add("watch_list_promotions")
    return on


def top_revisit_table(table: pd.DataFrame, data: SlaData, top: pd.DataFrame, moment: pd.Timestamp,
                      policy: SlaPolicy) -> pd.DataFrame:
    """One row: the top accounts, when their list rows were last agreed (revisited), its age in days, the days
    allowed and whether it is overdue (older, or never): the numbers and the verdict from the metrics catalog table
    ``table``, the date from the top accounts' (``top``) list rows."""
    count = int(catalog.read(table, "top_accounts", default=0.0))
    age = catalog.row(table, "top_accounts_revisit_age_days")
    return pd.DataFrame([{"top_accounts": count, "last_revisited_at": cm.last_revisited(data, top, moment),
                          "revisit_age_days": catalog.read(table, "top_accounts_revisit_age_days"),
                          "revisit_days": catalog.read(table, "top_accounts_revisit_age_days", field="target",
                                                       policy=policy),
                          "overdue": bool(count) and (age is None or age["verdict"] != catalog.MET)}])


def commitments_section(data: SlaData, table: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                        as_of: pd.Timestamp, policy: SlaPolicy, *, label: str) -> tuple[Section | None, list[str]]:
    """The Tier 1 commitments, the top of the list and the watch-list briefings for the period ``label`` (None when
    the policy defines none of them), and the report notes it adds (the list-size warning). A period shorter than
    a quarter shows the quarterly conversation commitment quarter to date instead of its own figure."""
    on = _commitment_parts(policy)
    size_on = policy.target_account_list is not None and policy.target_account_list.size is not None
    if not on and not size_on:
        return None, []
    span, moment = _span(start, end), mk.last_moment(end, as_of)
    quarter_start, quarter_end = sc.parse_period(f"{start.year}-Q{(start.month - 1) // 3 + 1}")
    periods = [(label, table)]
    tier1 = policy.tier1_commitments
    conversations = cm.conversation_coverage(data, quarter_start, quarter_end, as_of, policy)
    to_date = (start, end) != (quarter_start, quarter_end)
    if to_date and tier1 is not None and tier1.conversation is not None:
        periods.append(("quarter to date", catalog.family_table("conversations", conversations, ())))
    tables = [Table("tier1_commitments", "Tier 1 commitments, top accounts and watch list",
                    commitment_summary(periods, policy, QUARTERLY_METRICS if to_date else ()),
                    f"metrics catalog ({', '.join(sorted(on))}) for {span}; quarter to date: "
                    f"{_span(quarter_start, min(quarter_end, as_of))}")]
    text = []
    if "tier1_conversation_rate" in on:
        rule = tier1.conversation
        missing = conversations[~conversations["conversed"]].drop(columns=["conversed"])
        tables.append(Table("tier1_no_conversation", "Tier 1 accounts without a qualified conversation this quarter",
                            _with_owner_names(missing, data),
                            f"activities of type {', '.join(rule.types)} in {_span(quarter_start, quarter_end)} by "
                            f"{_iso(as_of)} with a contact who had a marketing touch in the "
                            f"{rule.engaged_within_days:g} days before (policy tier1_commitments.conversation)"))
        text.append("A qualified conversation: a meeting or call with a contact of the account who engaged with "
                    "marketing shortly before; the commitment is at least one per Tier 1 account per quarter.")
    for metric, name, title, source in (
            ("sales_follow_up_met_rate", "sales_follow_up", "Sales follow-ups of marketing touches due, not met",
             "marketing touches on Tier 1 accounts; due = the first touch of a run + policy "
             "tier1_commitments.sales_follow_up.window (owner's business hours); met = the next sales touch"),
            ("campaign_research_met_rate", "campaign_research", "Campaign research due, not met",
             "activities of type campaign_start (one per account and subject); due = start + policy "
             "tier1_commitments.research.within_days; met = the next account_research activity")):
        if metric not in on:
            continue
        clocks = (cm.follow_up_clocks(data, start - catalog.FOLLOW_UP_LOOKBACK, as_of, policy)
                  if name == "sales_follow_up" else cm.research_clocks(data, as_of, policy))
        due = cm.clocks_due(clocks, start, end)
        tables.append(Table(name, title, _with_owner_names(due[due["status"].ne("met")], data),
                            f"{source}; due_at in {span}, status as of {_iso(as_of)}"))
    if "top_accounts" in on:
        top = cm.top_accounts(data, moment, policy)
        rule = policy.target_account_list.top_accounts
        tables += [
            Table("top_accounts_unreached", f"Top {rule.size} accounts not reached personally in "
                  f"{rule.reach_days:g} days", _with_owner_names(top[~top["reached"]], data),
                  f"target_accounts at {_iso(moment)} ranked by priority (else by score_history.total); sales "
                  f"touches with an owner_id in the {rule.reach_days:g} days to then"),
            Table("top_revisit", f"Top accounts revisited (every {rule.revisit_days:g} days)",
                  top_revisit_table(table, data, top, moment, policy),
                  "target_accounts.agreed_at of the top accounts' rows; metrics catalog: top_accounts, "
                  "top_accounts_revisit_age_days (target: policy target_account_list.top_accounts.revisit_days)"),
        ]
    notes = []
    if size_on:
        size = cm.list_size_check(data, moment, policy, catalog.read(table, "accounts_on_list", default=0.0))
        tables.append(Table("list_size", "Target account list size against the agreed size", size,
                            f"target_accounts at {_iso(moment)}; policy target_account_list.size; metrics catalog: "
                            "accounts_on_list"))
        notes += [warning for warning in size["warning"] if warning]
    if "watch_list_promotions" in on:
        tables.append(Table("briefings", "Watch-list promotions: briefing tasks to sales",
                            cm.briefings(data, _ledger(data, as_of, policy), start, end, as_of, policy),
                            _moves_source(as_of) + f"; rules promote_3_to_1, promote_3_to_2 recommended in {span}"))
        text.append("Each Tier 3 account the watch list promotes is a briefing task to its owner: the signals, the "
                    "proposed tier, and a response once promoted (`abm-sla export briefings`).")
    return Section("Tier 1 commitments and top accounts", text, tables=tables), notes
