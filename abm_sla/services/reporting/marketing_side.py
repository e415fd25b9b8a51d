"""The marketing side: touch tempo, channel coverage, the engaged-account stage, benchmarks, the target
account list's agreement and ABM against non-ABM."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain import marketing as mk
from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard import SlaData
from abm_sla.services.reporting.common import Section, Table, _iso, _measured_accounts, _span
from abm_sla.services.reporting.design_tables import tal_agreement_table


def marketing_side_section(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                           policy: SlaPolicy, table: pd.DataFrame) -> Section:
    """Marketing tempo, channel coverage, the engaged-account stage, the marketing_response clock, every
    benchmark's verdict, and (with a target account list) the list's agreement and ABM against non-ABM."""
    span, moment = _span(start, end), mk.last_moment(end, as_of)
    shown = _iso(min(end, as_of)) + (" (exclusive)" if as_of >= end else "")
    settings = mk.marketing_settings(policy)
    listed = mk.tal_exists(data.target_accounts)
    engaged = mk.engaged_accounts(data.accounts, data.activities, data.target_accounts, data.mqas, moment, policy)
    rule = settings.engaged_account
    tempo, coverage = _tempo_and_coverage(data, start, end, as_of, policy)
    tables = [tempo, Table(
        "engaged_stage", "Engaged accounts (the stage before the MQA) per tier", mk.engaged_stage(engaged),
        f"{_measured_accounts(data)}; engaged = >= {rule.contacts_min} distinct contacts with a marketing touch in "
        f"the {rule.within_days:g} days to {shown}; before the MQA = no open MQA then"), coverage]
    if settings.response is not None:
        compliance = sc.clock_compliance(data, start, end, policy)
        tables.append(Table("marketing_response", "Marketing research after a pricing visit (marketing_response)",
                            compliance[compliance["clock"] == sc.MARKETING_RESPONSE],
                            f"sla_clocks where clock = marketing_response and due_at in {span}"))
    benchmarks = sc.commitments(data, start, end, as_of, policy)
    benchmarks = benchmarks[benchmarks["commitment"].isin(set(sc.BENCHMARK_SIDES))
                            | benchmarks["commitment"].str.startswith("custom:")]
    tables.append(Table("benchmarks", "Benchmarks and custom targets", benchmarks[
        ["commitment", "tier", "value", "target", "missed"]], "policy targets; values as in the tables above"))
    if listed:
        tables += [
            Table("tal_agreement", "Target account list and its monthly agreement",
                  tal_agreement_table(table, data, moment),
                  f"target_accounts at {_iso(moment)}; overdue after policy target_account_list.agreement_days; "
                  "metrics catalog: accounts_on_list, list_rows_added, list_rows_removed, list_agreement_age_days"),
            Table("abm_comparison", "ABM (target account list) against non-ABM accounts",
                  mk.abm_comparison(data.opportunities, data.target_accounts, start, end, as_of),
                  f"opportunities closed in {span}; ABM = the account was on the list when the opportunity was "
                  "created"),
        ]
    return Section("Marketing side", [
        "Marketing touches are activities of the policy's channel types; tempo is touches per account per month "
        "(or quarter) over the period, min and max included.",
    ], tables=tables)


def _tempo_and_coverage(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                        policy: SlaPolicy) -> tuple[Table, Table]:
    """Touch tempo per tier and the channel coverage of engaged accounts in the period (``domain.marketing``)."""
    span, settings = _span(start, end), mk.marketing_settings(policy)
    shown = _iso(min(end, as_of)) + (" (exclusive)" if as_of >= end else "")
    touches = f"activities of a marketing channel type ({', '.join(settings.touch_types)}) with occurred_at in {span}"
    tempo = mk.touch_tempo(data.accounts, data.activities, data.target_accounts, start, end, as_of, policy)
    coverage = mk.channel_coverage(data.accounts, data.activities, data.target_accounts, data.mqas, start, end,
                                   as_of, policy)
    return (Table("touch_tempo", "Marketing touch tempo per tier", mk.tempo_summary(tempo),
                  f"{_measured_accounts(data)} at {shown}; {touches}; tempo from policy marketing.tempo"),
            Table("channel_coverage", "Channel coverage of engaged accounts", mk.coverage_summary(coverage),
                  f"engaged accounts at {shown}; {touches}; covered = >= {settings.coverage.channels_min} "
                  "channels (policy marketing.channels, marketing.coverage)"))
