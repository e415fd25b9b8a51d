"""How many of a report's numbers come from the metrics catalog (issue 22's measurement).

Usage: ``python benchmarks/catalog_coverage.py abm-sla-demo/abm-sla.db`` (a demo warehouse). Per report, the
numeric cells of its headline scorecard (value, previous value, sample) and tables are counted as *from the
catalog* when the code reads them from :mod:`abm_sla.domain.metrics` (the commitments' values and samples, the
month-over-month and week-over-week rows, the acceptance/rejection/conversion, win-rate and engagement
tables' metric columns, the monthly pipeline by source, the chronic-miss values, the clock tables' met / missed /
pending counts and met % per tier, per owner and per week, the first-touch response counts, median and p90; the
marketing side's tempo, engaged-stage, channel-coverage, channel-table, marketing_response and ABM columns, the
catalog benchmarks' values, the quarterly pipeline attribution and the proposals' backtest and MQA counts; the
disposition mix per tier and per owner, the progression of accepted MQAs, the comparisons' MQA commitment and
Tier 1 status rows, and the chronic-miss table's per-owner split (owners measured and owners missing, of the
commitments whose split the headline reads from the catalog's ``owner=`` / ``tier=1,owner=`` segments); since 22c
the comparisons' change column (:func:`abm_sla.domain.metrics.change`), the MQA volume per tier and month and its
commitment, conversion by hand-off source and the optional clocks per owner; since 22d the SLA design's
tables: the Tier 1 commitments' value, numerator and denominator, the team clocks' and the regional appendix's
met / missed / pending and met %, the CRM-logging counts and share (its late column the catalog's
``*_activities_logged_late``), the lead measures and leads per tier, content coverage per tier, the money table's
values, what routing time was measured to (``routing_clocks_*``), escalations by clock and level (``escalated_mqas``,
``escalation_recipients`` in the ``clock=...,level=...`` segments), the target account list's agreement
(``accounts_on_list``, ``list_rows_added|removed``, ``list_agreement_age_days``), the top accounts' revisit
(``top_accounts``, ``top_accounts_revisit_age_days`` and its target) and campaigns per tier), else as *outside*.
Since 22e also the marketing quality tables' MQAs without a verdict (``mqas_without_verdict``), the weekly four
numbers' missed and pending (``sla_clocks_missed``, ``sla_clocks_pending``: the four SLA clocks), the MQAs of each
week of the weekly MQA rule (the catalog's ``mqas`` of each ISO week, :func:`abm_sla.domain.metrics.per_period`),
the monthly pipeline by source's share (``pipeline_created_share``), the engagement trend (each month's
``engagement_rate`` per tier and in all, ``engaged_contacts``, ``engaged_leads``), the reassignments per clock
(``reassignments_made``, ``reassignments_kept``, ``reassignments_written_back``) and the list size's accounts on
the list (``accounts_on_list``).

Row keys and policy values (22e) are counted apart, as *keys and policy*, neither from the catalog nor outside it:
they are not measurements. Row keys (:data:`KEYS`): the tier of the MQA volume, the marketing activity, the
regional windows, the campaigns per tier and the benchmarks, the escalation level of escalations by clock: they
name the row a measure belongs to. Policy values (:data:`POLICY`): what the signed policy agreed, shown beside a
measure: the MQA volume's pro-rated max (``targets.monthly_mqa_max``), the weekly band's min and max
(``targets.weekly_mqas``), the list's agreed min and max (``target_account_list.size``), the first-touch target per
tier (``targets.first_touch_met_pct``; the four numbers and compliance per tier), the win-rate and sales-cycle
targets (``targets.tier1_win_rate_pct``, ``opportunity_to_won_pct``, ``sales_cycle_days_max``). Any other number
row key or policy value still counts as outside. The cells of item lists (one row per
missed clock, escalation, tier move, reassignment or dispute; since 22d also per account, clock, pair, campaign, deal
or decision: the intent list, stale accounts, incomplete records, Tier 1 accounts without a conversation, follow-ups
and research due, unreached top accounts, briefings, team clocks to chase, outreach collisions, the campaign
calendar and plan, closed deals, stalled and top accounts, review decisions) are counted apart: they are not metrics.
A table counting a column twice in its catalog columns counts it once (22d; the two conversion-by-source tables
listed ``mqas`` twice before).

Since 22e (the quarterly renegotiation's tables) the tier-move decisions per rule (``tier_moves_*``,
``tier_move_age_median_days`` in ``rule=`` segments) and the disputes of the period (``disputes_*``,
``dispute_close_median_days``, ``disputes_open_at_end``) are read from the catalog, the disqualification patterns
are the catalog's MQA family over each reason's MQAs (``mqas``, ``mqa_owners``; a reason's share of them is
computed here and stays outside), "Does the score predict pipeline?" and its calibration are the catalog's
``score_check`` family (``score_*``) computed by the catalog's functions over the current model re-scored weekly
(not in the period's metrics table: they need the scoring model). Its keys and policy values: a row key (the
backtest's ``threshold``: each row is the catalog's MQA family over the MQAs that threshold would have fired; a
proposal's or the chronic misses' ``tier``) names which cut a row measures; a policy value (the proposals'
``current`` window or commitment, read from the policy, and the ``proposed`` one, the policy change derived from
the catalog's p80 or run-rate by the proposal's rounding and caps) is what the SLA says or would say, not what
happened. The last lines print each table's four counts.
"""
from __future__ import annotations

import sys

import pandas as pd

from abm_sla.domain import breaches, marketing, metrics, review
from abm_sla.domain import feedback as fb
from abm_sla.domain import proposals as pr
from abm_sla.domain import scorecard as sc
from abm_sla.domain.disputes import OUTCOMES as DISPUTE_OUTCOMES
from abm_sla.domain.metrics.catalog_quarterly import SCORE_OUTCOMES
from abm_sla.services import reporting
from abm_sla.services.config_files import load_policy
from abm_sla.services.demo import DEMO_POLICY
from abm_sla.warehouse import Warehouse

CATALOG_COMMITMENTS = {"mqa_volume", "first_touch_met_pct", "rejection_pct", "tier1_win_rate_pct",
                       "opportunity_to_won_pct", "sales_cycle_days", "engaged_contacts_per_account", *sc.BENCHMARKS}
COMPARISONS = {"monthly_trend", "weekly_changes"}
QUALITY = list(sc.QUALITY_METRICS)  # since 22e with no_verdict (mqas_without_verdict)
CLOCK_COLUMNS = ["met", "missed", "pending", "met_pct"]
CATALOG_COLUMNS = {"marketing_by_tier": QUALITY, "marketing_by_owner": QUALITY,
                   "win_rates": ["closed", "won", "win_rate_pct", "median_cycle_days"],
                   "engagement": list(sc.ENGAGEMENT_METRICS),
                   "pipeline_by_source": ["opportunities", "amount"],
                   "compliance_by_tier": CLOCK_COLUMNS, "compliance_by_owner": CLOCK_COLUMNS,
                   "compliance_trend": CLOCK_COLUMNS,
                   "four_numbers": [*(f"{clock}_met_pct" for clock in sc.CLOCKS), "missed", "pending"],
                   **{name: list(sc.RESPONSE_METRICS)
                      for name in ("response_times", "response_by_tier", "response_by_owner")},
                   # marketing side, attribution, proposals (22b)
                   "touch_tempo": list(marketing.TEMPO_METRICS), "engaged_stage": list(marketing.STAGE_METRICS),
                   "channel_coverage": list(marketing.COVERAGE_METRICS), "marketing_response": CLOCK_COLUMNS,
                   "marketing_activity": list(review.ACTIVITY_METRICS),
                   "abm_comparison": list(marketing.ABM_METRICS), "pipeline": list(sc.ATTRIBUTION_METRICS),
                   "threshold_backtest": list(pr.BACKTEST_METRICS), "volume_proposals": ["months", "mqas", "run_rate"],
                   "window_proposals": ["responses", "unanswered", pr.WINDOW_QUANTILE],
                   "progression": list(sc.PROGRESSION_METRICS),
                   # the last report tables (22c): MQA volume (the catalog's mqas per tier and month, the bound of its
                   # target), conversion by hand-off source (the MQA family per source: the feedback loop's and the
                   # monthly review's), the optional clocks per owner
                   "mqa_volume": ["mqas", "commitment"],
                   "conversion_by_source": [*fb.SOURCE_METRICS, *review.SOURCE_COLUMNS],
                   "feedback_compliance": CLOCK_COLUMNS,
                   # the SLA design's tables (22d): read from the catalog (the commitments' value, numerator and
                   # denominator; the clock and logging counts; the lead and content measures; money's values) or
                   # moved onto it (routing basis, escalation levels, the list's agreement, the top accounts' revisit,
                   # logged late, campaigns per tier); row keys (level, tier) stay outside
                   "tier1_commitments": ["value", "numerator", "denominator"],
                   "team_clock_compliance": CLOCK_COLUMNS, "regional_compliance": CLOCK_COLUMNS,
                   "crm_logging": ["activities", "in_time", "late", "in_time_pct"],
                   "lead_measures": ["value", "numerator", "denominator"],
                   "leads_by_tier": [metric for metric in metrics.BY_ID if metrics.BY_ID[metric].family == "leads"],
                   "content_coverage": ["covered", "mqas", "covered_pct"], "money": ["value"],
                   "routing_basis": ["clocks"], "escalations_by_clock": list(breaches.ESCALATION_COLUMNS),
                   "tal_agreement": ["on_list", "added_recently", "removed_recently", "agreement_age_days"],
                   "top_revisit": ["top_accounts", "revisit_age_days", "revisit_days"],
                   "campaign_tiers": ["campaigns"],
                   # the last report tables (22e): the weekly MQA rule per week, the pipeline's share per source, the
                   # engagement trend per month, reassignments per clock, the list's size
                   "mqa_weeks": ["mqas"], "engagement_trend": list(review.TREND_METRICS),
                   "reassignments_by_clock": list(breaches.REASSIGNMENT_COLUMNS), "list_size": ["on_list"],
                   # the quarterly renegotiation's tables (22e)
                   "tier_move_decisions": ["recommended", "accepted", "declined", "pending", "median_age_days"],
                   # per reason, the catalog's MQA family over the reason's MQAs (mqas, owners (mqa_owners) and
                   # tiers; one table in the monthly review and the quarterly feedback loop); the share stays outside
                   "disqualification_patterns": ["mqas", "owners", "tier_1", "tier_2", "tier_3"],
                   # the pipeline check: the catalog's score_check family over the re-scored rows (every figure of
                   # both outcomes; per band the rows, rows won and their rate)
                   "score_predicts_pipeline": list(SCORE_OUTCOMES),
                   "score_calibration": ["rows", "won_rows", "won_rate"],
                   "dispute_counts": ["opened", "reopened", "closed", "open_at_end", "median_days_to_close",
                                      *(f"outcome_{outcome}" for outcome in DISPUTE_OUTCOMES)]}
CATALOG_COLUMNS["pipeline_by_source"] = [*CATALOG_COLUMNS["pipeline_by_source"], "share_pct"]
#: Row keys that are numbers (22e): they name the row a measure belongs to; counted apart, not metrics.
KEYS = {"mqa_volume": ["tier"], "marketing_activity": ["tier"], "regional_windows": ["tier"],
        "campaign_tiers": ["tier"], "benchmarks": ["tier"], "escalations_by_clock": ["level"],
        # which threshold or tier a row of the quarterly renegotiation measures
        "threshold_backtest": ["threshold"], "window_proposals": ["tier"], "volume_proposals": ["tier"],
        "chronic_misses": ["tier"]}
#: Policy values shown beside a measure (22e): what the policy agreed, not measured; counted apart, not metrics.
POLICY = {"mqa_volume": ["max"], "mqa_weeks": ["min", "max"], "list_size": ["min", "max"],
          "four_numbers": ["first_touch_target_pct"], "compliance_by_tier": ["target_pct"],
          "win_rates": ["win_rate_target_pct", "cycle_target_days_max"],
          # the proposals' current window or commitment (the policy's) and the proposed one (the policy change the
          # proposal derives from the catalog's p80 / run-rate)
          "window_proposals": ["current", "proposed"], "volume_proposals": ["current", "proposed"]}
#: Tables whose ``value`` column is a commitment's (from the catalog when the commitment is).
COMMITMENT_TABLES = {"chronic_misses", "benchmarks"}
#: Tables whose every numeric column is a catalog metric (the disposition mix: MQAs and one column per disposition).
CATALOG_TABLES = {"disposition_mix_by_tier", "disposition_mix_by_owner"}
#: Commitments whose per-owner split (owners, owners_missed) the headline reads from the catalog's segments.
SPLIT_FROM_CATALOG = {"first_touch_met_pct", "rejection_pct", "tier1_win_rate_pct", "opportunity_to_won_pct",
                      "sales_cycle_days"}
ITEMS = {"misses", "open_escalations", "tier_moves", "reassignments", "open_disputes", "closed_disputes",
         "unknown_statuses",
         # one row per account, clock, pair, campaign, deal or decision (22d): the items behind a catalog count
         "intent_list", "stale_accounts", "incomplete_records", "tier1_no_conversation", "sales_follow_up",
         "campaign_research", "top_accounts_unreached", "briefings", "team_clock_open", "outreach_collisions",
         "campaign_calendar", "campaign_plan", "closed_deals", "stalled_accounts", "top_accounts", "review_decisions"}


def count_table(name: str, frame: pd.DataFrame) -> tuple[int, int, int, int]:
    """One report table's numeric cells: (from the catalog, computed outside it, row keys and policy values,
    item-list cells)."""
    apart = [column for column in dict.fromkeys([*KEYS.get(name, []), *POLICY.get(name, [])])
             if column in frame.columns]
    keys = int(frame[apart].select_dtypes("number").notna().sum().sum())
    here, there, listed = _count_table(name, frame.drop(columns=apart))
    return here, there, keys, listed


def _count_table(name: str, frame: pd.DataFrame) -> tuple[int, int, int]:
    """(from the catalog, computed outside it, item-list cells) of a table's numeric cells (keys dropped)."""
    numeric = frame.select_dtypes("number")
    cells = int(numeric.notna().sum().sum())
    if name in ITEMS:
        return 0, 0, cells
    if name in COMPARISONS:
        # every row reads the catalog (since 22a the MQA commitment rows its targets, the Tier 1 rows its
        # account metrics); since 22c the change column is the catalog's change of the two periods' tables
        return int(frame[["value", "previous_value", "change"]].notna().sum().sum()), 0, 0
    if name in CATALOG_TABLES:
        return cells, 0, 0
    if name in CATALOG_COLUMNS:
        columns = [c for c in dict.fromkeys(CATALOG_COLUMNS[name]) if c in frame.columns]  # each column once
        mine = int(frame[columns].notna().sum().sum())
        return mine, cells - mine, 0
    if name in COMMITMENT_TABLES:
        mine = frame["commitment"].isin(CATALOG_COMMITMENTS)
        values = [column for column in ("value", "previous_value") if column in frame.columns]
        here = int(frame.loc[mine, values].notna().sum().sum()) + split_cells(frame)
        return here, cells - here, 0
    return 0, cells, 0


def split_cells(frame: pd.DataFrame) -> int:
    """The chronic-miss table's per-owner split cells (owners, owners_missed) read from the catalog's segments."""
    if "commitment" not in frame.columns:
        return 0
    owners = [column for column in ("owners", "owners_missed") if column in frame.columns]
    return int(frame.loc[frame["commitment"].isin(SPLIT_FROM_CATALOG), owners].notna().sum().sum())


def main(db: str) -> None:
    policy = load_policy(DEMO_POLICY)
    data = reporting.load_data(Warehouse(f"sqlite:///{db}"))
    total_in = total_out = total_keys = total_items = split = 0
    by_table: dict[str, list[int]] = {}
    for kind, period in (("weekly", "2026-W13"), ("monthly", "2026-03"), ("quarterly", "2026-Q1")):
        build = {"weekly": reporting.build_weekly, "monthly": reporting.build_monthly,
                 "quarterly": reporting.build_quarterly}[kind]
        report = build(data, period, policy)
        inside = outside = keys = items = 0
        head = report.scorecard
        from_catalog = head["commitment"].isin(CATALOG_COMMITMENTS)
        for column in ("value", "previous_value", "sample"):
            present = head[column].notna()
            inside += int((present & from_catalog).sum())
            outside += int((present & ~from_catalog).sum())
        by_table[f"{kind}: headline"] = [inside, outside, 0, 0]
        for name, table in report.tables.items():
            here, there, apart, listed = count_table(name, table.frame)
            if name in COMMITMENT_TABLES:
                split += split_cells(table.frame)
            inside, outside, keys, items = inside + here, outside + there, keys + apart, items + listed
            by_table[f"{kind}: {name}"] = [here, there, apart, listed]
        total_in += inside
        total_out += outside
        total_keys += keys
        total_items += items
        print(f"{kind} {period}: {inside} numbers from the catalog, {outside} aggregate numbers computed outside it, "
              f"{keys} row keys and policy values, {items} cells of item lists (misses, escalations, tier moves, "
              "disputes: per account, not metrics)")
    print(f"all three: {total_in} from the catalog, {total_out} aggregates outside "
          f"({100 * total_in / (total_in + total_out):.1f}% of the aggregate numbers from the catalog), "
          f"{total_keys} row keys and policy values, {total_items} item-list cells; of the numbers, {split} are the "
          "headline's per-owner split (owners, owners_missed in the chronic-miss table) read from the catalog since "
          "22a")
    print("\nper table (report: table  from the catalog / outside / keys and policy / item-list cells):")
    for name, (here, there, apart, listed) in by_table.items():
        print(f"  {name:<48} {here:>5} {there:>5} {apart:>5} {listed:>5}")


if __name__ == "__main__":
    main(sys.argv[1])
