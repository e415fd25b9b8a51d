"""The SLA scorecard: marketing, sales and joint numbers per tier and per owner, for any period.

Pure and vectorized. Every function takes the frames (:class:`SlaData`), a period ``[start, end)`` and
an ``as_of``: outcomes (statuses, opportunities, wins) count only when they happened at or before it.
Targets come from the policy's ``targets`` section; a missing target leaves its column empty.

Definitions (the report footnotes repeat them):

- an MQA belongs to the period of its ``trigger_at``; its *verdict* is the class (the policy's
  ``dispositions.accepted`` / ``dispositions.rejected``) of the latest disposition of its episode in one
  (:func:`abm_sla.domain.dispositions.episode_dispositions`);
- an MQA *converts* when an opportunity on the account is created at or after ``trigger_at`` (same bound);
- a clock belongs to the period its ``due_at`` falls in, as evaluated in ``sla_clocks``; met % is
  met / (met + missed), pending clocks are counted apart;
- response time is business hours from ``routed_at`` to the first-touch ``met_at`` in the owner's
  calendar (:mod:`abm_sla.domain.calendar`), 0 when the touch came before routing;
- win rate and opportunity → won are won / closed over opportunities closed in the period; the sales
  cycle is days from ``created_at`` to ``close_date`` of the opportunities won in the period.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from abm_sla.domain import calendar, dispositions, frames, marketing
from abm_sla.domain.policy import SlaPolicy, Targets, Window
from abm_sla.errors import AbmSlaError

CLOCKS = ("routing_time", "first_touch", "status_update", "cadence")
MARKETING_RESPONSE = "marketing_response"
TIERS = (1, 2, 3)
ALL = "all"
DAY = pd.Timedelta(days=1)
#: Derived tables the scorecard reads (columns from ``warehouse/schema.py``; timestamps in UTC).
DERIVED_COLUMNS: dict[str, dict[str, str]] = {
    "signoffs": {"signed_at": "ts", "signed_by": "object", "role": "object", "policy_sha256": "object",
                 "policy_file": "object"},
    "mqas": {"account_id": "object", "trigger_at": "ts", "tier": "float64", "owner_id": "object",
             "routed_at": "ts", "ended_at": "ts", "total": "float64", "reasons": "object",
             "writeback_done_at": "ts"},
    "sla_clocks": {"account_id": "object", "trigger_at": "ts", "clock": "object", "status": "object",
                   "due_at": "ts", "met_at": "ts", "owner_id": "object", "tier": "float64", "as_of": "ts",
                   "period": "float64"},
    "escalations": {"account_id": "object", "trigger_at": "ts", "level": "float64", "to_user_id": "object",
                    "opened_at": "ts", "owner_id": "object", "clock": "object", "steps_taken": "object",
                    "resolution": "object"},
    "score_history": {"account_id": "object", "as_of": "ts", "model_version": "object", "total": "float64",
                      "qualified": "object", "gates": "object", "reasons": "object"},
    "tier_move_recommendations": {"account_id": "object", "recommended_at": "ts", "rule": "object",
                                  "from_tier": "object", "proposed_tier": "object", "reason": "object",
                                  "decision": "object", "decided_at": "ts", "decision_note": "object",
                                  "evaluated_at": "ts"},
    "reassignments": {"account_id": "object", "trigger_at": "ts", "clock": "object", "level": "float64",
                      "reassigned_at": "ts", "from_owner_id": "object", "to_owner_id": "object", "status": "object",
                      "reason": "object", "writeback_done_at": "ts"},
    "disputes": {"dispute_id": "int64", "account_id": "object", "disagreement": "object", "raised_by": "object",
                 "requested_resolution": "object", "opened_at": "ts", "steps_from": "ts", "status": "object",
                 "closed_at": "ts", "resolution": "object", "outcome": "object", "times_reopened": "int64",
                 "updated_at": "ts"},
    "review_decisions": {"decision_id": "int64", "month": "object", "text": "object", "owner": "object",
                         "due": "object", "recorded_at": "ts", "status": "object", "outcome": "object",
                         "updated_at": "ts"},
    "review_attendance": {"period": "object", "side": "object", "name": "object", "recorded_at": "ts"},
    "dispute_notes": {"id": "int64", "dispute_id": "int64", "at": "ts", "author": "object", "kind": "object",
                      "text": "object"},
}


def empty_derived(table: str) -> pd.DataFrame:
    """An empty derived table with its columns and dtypes."""
    return pd.DataFrame({
        column: pd.Series(dtype="datetime64[ns, UTC]" if kind == "ts" else kind)
        for column, kind in DERIVED_COLUMNS[table].items()
    })


@dataclass(frozen=True)
class SlaData:
    """Everything the scorecard reads: the CRM frames and the warehouse's derived tables."""

    accounts: pd.DataFrame
    contacts: pd.DataFrame
    activities: pd.DataFrame
    intent_signals: pd.DataFrame
    opportunities: pd.DataFrame
    users: pd.DataFrame
    status_changes: pd.DataFrame
    mqas: pd.DataFrame
    sla_clocks: pd.DataFrame
    escalations: pd.DataFrame
    score_history: pd.DataFrame
    target_accounts: pd.DataFrame = field(default_factory=lambda: frames.empty("target_accounts"))
    tier_move_recommendations: pd.DataFrame = field(default_factory=pd.DataFrame)
    reassignments: pd.DataFrame = field(default_factory=pd.DataFrame)
    disputes: pd.DataFrame = field(default_factory=pd.DataFrame)
    dispute_notes: pd.DataFrame = field(default_factory=pd.DataFrame)
    signoffs: pd.DataFrame = field(default_factory=pd.DataFrame)
    review_decisions: pd.DataFrame = field(default_factory=pd.DataFrame)
    review_attendance: pd.DataFrame = field(default_factory=pd.DataFrame)
    requests: pd.DataFrame = field(default_factory=lambda: frames.empty("requests"))

    @classmethod
    def of(cls, **tables: pd.DataFrame) -> SlaData:
        """Build from any subset of frames; a missing one is empty."""
        unknown = set(tables) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown tables: {sorted(unknown)}")
        out = {}
        for name in (f.name for f in fields(cls)):
            given = tables.get(name)
            if given is None:
                given = frames.empty(name) if name in frames.COLUMNS else empty_derived(name)
            out[name] = _utc_columns(name, given.reset_index(drop=True))
        return cls(**out)

    def known_by(self, as_of: pd.Timestamp) -> SlaData:
        """The same data with every clock's met_at after ``as_of`` unknown (a report never shows the future)."""
        clocks = self.sla_clocks.copy()
        clocks["met_at"] = clocks["met_at"].where(clocks["met_at"] <= as_of)
        return replace(self, sla_clocks=clocks)

    def clocks_evaluated_at(self) -> pd.Timestamp | None:
        """The latest ``as_of`` any run evaluated the clocks at (None before the first)."""
        if "as_of" not in self.sla_clocks or self.sla_clocks["as_of"].isna().all():
            return None
        return pd.Timestamp(self.sla_clocks["as_of"].max())


def _utc_columns(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The table's timestamp columns as ``datetime64[ns, UTC]`` (naive values are UTC)."""
    if name in frames.TIMESTAMP_COLUMNS:
        columns = frames.TIMESTAMP_COLUMNS[name]
    else:
        columns = [column for column, kind in DERIVED_COLUMNS[name].items() if kind == "ts"]
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            out[column] = pd.to_datetime(out[column], utc=True).astype("datetime64[ns, UTC]")
    return out


# -- periods ----------------------------------------------------------------------------------------

_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)
_YEAR = re.compile(r"^(\d{4})$")


def parse_period(text: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` in UTC of ``2026-W14`` (ISO week), ``2026-03`` (month), ``2026-Q1`` or ``2026``."""
    value = str(text).strip()
    try:
        if match := _WEEK.match(value):
            monday = dt.date.fromisocalendar(int(match[1]), int(match[2]), 1)
            start = pd.Timestamp(monday, tz="UTC")
            return start, start + pd.Timedelta(days=7)
        if match := _MONTH.match(value):
            start = pd.Timestamp(year=int(match[1]), month=int(match[2]), day=1, tz="UTC")
            return start, start + pd.offsets.MonthBegin(1)
        if match := _QUARTER.match(value):
            start = pd.Timestamp(year=int(match[1]), month=3 * int(match[2]) - 2, day=1, tz="UTC")
            return start, start + pd.offsets.MonthBegin(3)
        if match := _YEAR.match(value):
            start = pd.Timestamp(year=int(match[1]), month=1, day=1, tz="UTC")
            return start, start + pd.offsets.YearBegin(1)
    except ValueError:
        pass
    raise AbmSlaError(f"period {text!r} is not a week (2026-W14), month (2026-03), quarter (2026-Q1) or year")


def quarter_of(moment: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The calendar quarter ``[start, end)`` containing ``moment``."""
    return parse_period(f"{moment.year}-Q{(moment.month - 1) // 3 + 1}")


def previous_quarter(start: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The quarter before the one starting at ``start``."""
    return quarter_of(start - pd.Timedelta(days=1))


def previous_period(start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The period of the same kind just before ``[start, end)``: the week, month, quarter or year before."""
    if end - start == pd.Timedelta(days=7):
        return start - pd.Timedelta(days=7), start
    months = (end.year - start.year) * 12 + end.month - start.month
    return start - pd.DateOffset(months=months), start


def quarter_label(start: pd.Timestamp) -> str:
    return f"{start.year}-Q{(start.month - 1) // 3 + 1}"


def weeks(start: pd.Timestamp, end: pd.Timestamp) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """ISO weeks (label, start, end) overlapping ``[start, end)``."""
    monday = (start - pd.Timedelta(days=start.weekday())).normalize()
    out = []
    while monday < end:
        year, week, _ = monday.isocalendar()
        out.append((f"{year}-W{week:02d}", monday, monday + pd.Timedelta(days=7)))
        monday += pd.Timedelta(days=7)
    return out


# -- helpers ----------------------------------------------------------------------------------------

def normalize_tier(values: pd.Series) -> pd.Series:
    """Tier 1, 2 or 3 from ``1``, ``"Tier 2"``, ``2.0``...; missing or unknown is Tier 3."""
    digits = values.astype("string").str.extract(r"([123])", expand=False)
    return pd.to_numeric(digits, errors="coerce").fillna(3).astype(int)


def account_dimensions(data: SlaData) -> pd.DataFrame:
    """Per account: name, tier (normalized), owner_id, created_at."""
    accounts = data.accounts
    return pd.DataFrame({
        "account_id": accounts["account_id"].astype(str),
        "account_name": accounts["name"],
        "tier": normalize_tier(accounts["tier"]),
        "owner_id": accounts["owner_id"],
        "created_at": accounts["created_at"],
    }).drop_duplicates("account_id")


def owner_names(data: SlaData) -> pd.Series:
    return data.users.drop_duplicates("user_id").set_index("user_id")["name"]


def pct(numerator: pd.Series | float, denominator: pd.Series | float) -> pd.Series | float:
    """100 × num / den rounded to 0.1; NaN when the denominator is 0."""
    num = np.asarray(numerator, dtype="float64")
    den = np.asarray(denominator, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, np.round(100.0 * num / np.where(den > 0, den, 1), 1), np.nan)
    return pd.Series(out, index=numerator.index) if isinstance(numerator, pd.Series) else float(out)


def within(values: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    return (values >= start) & (values < end)


_flag = marketing.flag


def _targets(policy: SlaPolicy) -> Targets:
    return policy.targets if policy.targets is not None else Targets()


def _with_all(frame: pd.DataFrame, by: list[str], total: pd.DataFrame) -> pd.DataFrame:
    """Append the all-groups row(s) ``total`` (its ``by`` columns set to ``"all"``)."""
    total = total.assign(**{column: ALL for column in by if column not in total.columns})
    out = pd.concat([frame.astype({c: object for c in by}), total], ignore_index=True)
    return out[frame.columns]


def _grouped(frame: pd.DataFrame, by: list[str], agg: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Group and aggregate, plus a total row over all groups."""
    per_group = frame.groupby(by, dropna=False).agg(**agg).reset_index()
    total = pd.DataFrame({name: [len(frame) if how == "size" else how(frame[column]) if callable(how)
                                 else _total(frame[column], how)] for name, (column, how) in agg.items()})
    return _with_all(per_group, by, total)


def _total(values: pd.Series, how: str) -> Any:
    """``values.agg(how)``; a median or mean of nothing is NaN without numpy's "Mean of empty slice" warning."""
    if how in ("median", "mean") and not values.notna().any():
        return np.nan
    return values.agg(how)


# -- marketing ------------------------------------------------------------------------------------

def mqa_outcomes(data: SlaData, as_of: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """Every MQA fired by ``as_of`` with its disposition and verdict (the policy's verdict classes, see
    :func:`abm_sla.domain.dispositions.episode_dispositions`), its first opportunity and that opportunity's fate."""
    mqas = data.mqas[data.mqas["trigger_at"] <= as_of].copy()
    mqas["tier"] = normalize_tier(mqas["tier"])
    mqas = mqas.sort_values(["account_id", "trigger_at"])
    mqas["next_trigger_at"] = mqas.groupby("account_id")["trigger_at"].shift(-1)
    mqas = mqas.sort_values("trigger_at").reset_index(drop=True)
    status = data.status_changes[data.status_changes["changed_at"] <= as_of]
    mqas = mqas.join(dispositions.episode_dispositions(mqas, status, policy, as_of))
    opps = data.opportunities[data.opportunities["created_at"] <= as_of]
    opps = pd.DataFrame({
        "account_id": opps["account_id"].astype(str), "opportunity_id": opps["opportunity_id"],
        "opportunity_at": opps["created_at"], "amount": pd.to_numeric(opps["amount"], errors="coerce"),
        "closed": _flag(opps["is_closed"]) & (opps["close_date"] <= as_of),
        "won": _flag(opps["is_won"]) & _flag(opps["is_closed"]) & (opps["close_date"] <= as_of),
    })
    mqas = _first_after(mqas, opps, "opportunity_at")
    mqas["accepted"] = mqas["verdict"].eq(dispositions.ACCEPTED)
    mqas["rejected"] = mqas["verdict"].eq(dispositions.REJECTED)
    mqas["converted"] = mqas["opportunity_at"].notna()
    mqas["won"] = mqas["converted"] & mqas["won"].eq(True)
    mqas["lost"] = mqas["converted"] & mqas["closed"].eq(True) & ~mqas["won"]
    return mqas


def _first_after(mqas: pd.DataFrame, events: pd.DataFrame, at: str) -> pd.DataFrame:
    """Join each MQA's first event at or after ``trigger_at`` and before the account's next MQA."""
    events = events.dropna(subset=[at]).sort_values(at)
    left = mqas.assign(account_id=mqas["account_id"].astype(str))
    joined = pd.merge_asof(left, events, left_on="trigger_at", right_on=at, by="account_id",
                           direction="forward", allow_exact_matches=True)
    stale = joined[at].notna() & joined["next_trigger_at"].notna() & (joined[at] >= joined["next_trigger_at"])
    event_columns = [column for column in events.columns if column != "account_id"]
    joined.loc[stale, event_columns] = None
    joined[at] = pd.to_datetime(joined[at], utc=True)
    return joined


def rejection_position(rate: float, policy: SlaPolicy) -> str:
    """Where a rejection rate sits against the policy's band."""
    band = _targets(policy).rejection_rate
    if band is None or pd.isna(rate):
        return ""
    if band.max_pct is not None and rate > band.max_pct:
        return "above band: hand-off too loose"
    if band.min_pct is not None and rate < band.min_pct:
        return "below band: hand-off maybe too strict"
    return "in band"


def catalog_breakdown(family: str, facts: pd.DataFrame, by: str, columns: dict[str, str]) -> pd.DataFrame:
    """Per ``by`` value present in ``facts`` (tier or owner_id), then ``all``: the catalog metric of each column
    (``columns``: column → metric id, or ``id:numerator``) computed by :func:`abm_sla.domain.metrics.family_table`
    over ``facts``."""
    from abm_sla.domain import metrics

    segment = "tier" if by == "tier" else "owner"
    table = metrics.family_table(family, facts, (segment,))
    groups = sorted(facts[by].dropna().unique(), key=str)
    out = pd.DataFrame({by: [*groups, ALL]})
    labels = [f"{segment}={group}" for group in groups] + [ALL]
    for column, source in columns.items():
        metric, _, field = source.partition(":")
        values = table.pivot(index="segment", columns="metric", values=field or "value")
        out[column] = values[metric].reindex(labels).to_numpy()
    return out


#: marketing_quality's columns and the catalog metric each is read from (abm_sla.domain.metrics).
QUALITY_METRICS = {"mqas": "mqas", "accepted": "mqas_accepted", "acceptance_pct": "acceptance_rate",
                   "rejected": "mqas_rejected", "rejection_pct": "rejection_rate", "converted": "mqas_converted",
                   "mqa_to_opportunity_pct": "mqa_to_opportunity_rate"}


def marketing_quality(outcomes: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy,
                      by: str = "tier") -> pd.DataFrame:
    """Per ``by`` (tier or owner_id) with MQAs, and ``all``: MQAs, acceptance, rejection vs band, MQA → opportunity
    conversion. The numbers are the metrics catalog's (:func:`abm_sla.domain.metrics.family_table` over these MQAs)."""
    from abm_sla.domain import metrics

    rows = outcomes[within(outcomes["trigger_at"], start, end)]
    out = catalog_breakdown("mqas", metrics.mqa_fact_columns(rows), by, QUALITY_METRICS)
    counts = ["mqas", "accepted", "rejected", "converted"]
    out[counts] = out[counts].fillna(0).astype(int)
    out["no_verdict"] = out["mqas"] - out["accepted"] - out["rejected"]
    out["rejection_band"] = [
        rejection_position(rate, policy) + _verdict_caveat(verdicts, mqas)
        for rate, verdicts, mqas in zip(out["rejection_pct"], out["accepted"] + out["rejected"], out["mqas"],
                                        strict=True)
    ]
    return out[[by, "mqas", "accepted", "acceptance_pct", "rejected", "rejection_pct", "rejection_band",
                "no_verdict", "converted", "mqa_to_opportunity_pct"]]


def _verdict_caveat(verdicts: int, mqas: int) -> str:
    """A warning when the rejection rate rests on few verdicts (sales left most MQAs without one)."""
    if mqas == 0 or verdicts * 2 >= mqas:
        return ""
    return "no verdict yet" if verdicts == 0 else f" ({verdicts} of {mqas} MQAs have a verdict)"


#: The weekly MQA rule's rows (one per ISO week starting in the period): ``judged`` once the week has ended by
#: ``as_of``; ``in_band`` is empty until then.
WEEKLY_MQA_COLUMNS = ["week", "week_start", "mqas", "min", "max", "judged", "in_band"]


def weekly_mqas(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                policy: SlaPolicy) -> pd.DataFrame:
    """Policy ``targets.weekly_mqas`` judged week by week: for each ISO week (Monday 00:00 UTC) starting in
    ``[start, end)``, the MQAs fired in the whole week (of the rule's tier, when given) and whether the count is in
    ``[min, max]``. A week not ended by ``as_of`` is not judged. Empty without the rule."""
    rule = _targets(policy).weekly_mqas
    if rule is None:
        return pd.DataFrame(columns=WEEKLY_MQA_COLUMNS)
    first = start.normalize() - pd.Timedelta(days=start.weekday())
    if first < start:
        first += pd.Timedelta(days=7)
    mondays = pd.date_range(first, end, freq="7D", inclusive="left")
    mqas = data.mqas
    if rule.tier is not None:
        mqas = mqas[normalize_tier(mqas["tier"]) == rule.tier]
    week_of = mqas["trigger_at"].dt.floor("D") - pd.to_timedelta(mqas["trigger_at"].dt.weekday, unit="D")
    counts = week_of.value_counts().reindex(mondays, fill_value=0).astype(int)
    judged = (mondays + pd.Timedelta(days=7)) <= as_of
    low = -np.inf if rule.min is None else rule.min
    high = np.inf if rule.max is None else rule.max
    in_band = (counts.to_numpy() >= low) & (counts.to_numpy() <= high)
    return pd.DataFrame({"week": mondays.strftime("%G-W%V"), "week_start": mondays, "mqas": counts.to_numpy(),
                         "min": rule.min, "max": rule.max, "judged": judged,
                         "in_band": pd.Series(in_band, dtype="object").where(judged, None)})


def listed_accounts(data: SlaData, end: pd.Timestamp) -> pd.DataFrame:
    """The accounts measured at the period's end: created before ``end`` and, when a target account list is
    recorded, on it at the period's last moment (``account_id, tier, owner_id``)."""
    accounts = account_dimensions(data)
    accounts = accounts[accounts["created_at"].isna() | (accounts["created_at"] < end)]
    if marketing.tal_exists(data.target_accounts):
        last = end - pd.Timedelta(1)
        accounts = accounts[marketing.on_list_at(data.target_accounts, accounts["account_id"], last).to_numpy()]
    return accounts.reset_index(drop=True)


#: engagement's columns and the catalog metric (``metric:numerator`` for its numerator) each is read from.
ENGAGEMENT_METRICS = {"accounts": "accounts_on_list", "engaged": "engagement_rate:numerator",
                      "engagement_pct": "engagement_rate", "multi_stakeholder": "multi_stakeholder_rate:numerator",
                      "multi_stakeholder_pct": "multi_stakeholder_rate",
                      "engaged_contacts_per_account": "engaged_contacts_per_account"}


def engagement(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, by: str = "tier") -> pd.DataFrame:
    """Per ``by``: accounts on the list, share with >= 1 marketing touch and with >= 2 engaged contacts,
    and the mean engaged contacts per engaged account. With a target account list, only the accounts on
    it at the period's last moment count (the designs' "% of TAL with 1+ engagement")."""
    from abm_sla.domain import metrics

    accounts = metrics.account_facts(data, start, end)
    out = catalog_breakdown("accounts", accounts, by, ENGAGEMENT_METRICS)
    out[["accounts", "engaged", "multi_stakeholder"]] = out[["accounts", "engaged", "multi_stakeholder"]].fillna(
        0).astype(int)
    return out[[by, "accounts", "engaged", "engagement_pct", "multi_stakeholder", "multi_stakeholder_pct",
                "engaged_contacts_per_account"]]


# -- sales ----------------------------------------------------------------------------------------

def clocks_due(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The clocks due in the period, with normalized tier."""
    clocks = data.sla_clocks[within(data.sla_clocks["due_at"], start, end)].copy()
    clocks["tier"] = normalize_tier(clocks["tier"])
    clocks["status"] = clocks["status"].astype(str).str.lower()
    return clocks


def clock_compliance(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy,
                     by: tuple[str, ...] = ("tier",)) -> pd.DataFrame:
    """Per ``by`` (tier or owner_id) and clock: met, missed, pending, met % (of decided clocks); first-touch target
    per tier. The numbers are the metrics catalog's clock family (:func:`abm_sla.domain.metrics.family_table`)."""
    if len(by) != 1:
        raise ValueError(f"clock_compliance takes one column (tier or owner_id), got {by!r}")
    return _with_clock_targets(_catalog_clocks(data, start, end, policy, by[0]), policy)


def _catalog_clocks(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy,
                    by: str) -> pd.DataFrame:
    """Per ``by`` value (every tier; or each owner with a clock due) then ``all``, per clock of the policy: the
    catalog's met / missed / pending counts and met rate."""
    from abm_sla.domain import metrics

    facts = metrics.clock_facts(data, start, end)
    segment = "tier" if by == "tier" else "owner"
    table = metrics.family_table("clocks", facts, (segment,))
    values = table.pivot(index="segment", columns="metric", values="value")
    groups = list(TIERS) if by == "tier" else sorted(facts[by].dropna().unique(), key=str)
    if by != "tier" and facts[by].isna().any():
        groups.append(None)
    labels = [f"{segment}={'(none)' if group is None else group}" for group in groups] + [ALL]
    parts = []
    for clock in clock_names(policy):
        part = pd.DataFrame({by: [*groups, ALL], "clock": clock})
        for column, metric in metrics.clock_metric_ids(clock).items():
            part[column] = values[metric].reindex(labels).to_numpy()
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    order = {group: rank for rank, group in enumerate([*groups, ALL])}
    out = out.iloc[np.argsort(out[by].map(order).to_numpy(), kind="stable")].reset_index(drop=True)
    out[["met", "missed", "pending"]] = out[["met", "missed", "pending"]].fillna(0).astype(int)
    return out


def _with_clock_targets(out: pd.DataFrame, policy: SlaPolicy) -> pd.DataFrame:
    """The first-touch target per tier beside the met rate, and whether it is on target."""
    targets = _targets(policy).first_touch_met_pct or {}
    tier = out["tier"] if "tier" in out.columns else pd.Series(ALL, index=out.index)
    out["target_pct"] = np.where(out["clock"].eq("first_touch"), tier.map(targets), np.nan).astype("float64")
    out["on_target"] = np.where(out["target_pct"].notna() & out["met_pct"].notna(),
                                out["met_pct"] >= out["target_pct"], None)
    return out


def clock_names(policy: SlaPolicy) -> tuple[str, ...]:
    """SPEC's four clocks, and ``marketing_response`` when the policy sets it."""
    response = policy.marketing is not None and policy.marketing.response is not None
    return (*CLOCKS, MARKETING_RESPONSE) if response else CLOCKS


def response_times(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """First-touch clocks due in the period with business hours from routing to the first touch."""
    clocks = clocks_due(data, start, end)
    clocks = clocks[clocks["clock"] == "first_touch"]
    routed = data.mqas[["account_id", "trigger_at", "routed_at"]]
    rows = clocks.merge(routed, on=["account_id", "trigger_at"], how="left").reset_index(drop=True)
    users = data.users.drop_duplicates("user_id").set_index("user_id")
    zones = rows["owner_id"].map(users["time_zone"]) if len(users) else pd.Series(None, index=rows.index)
    countries = rows["owner_id"].map(users["country"]) if len(users) else pd.Series(None, index=rows.index)
    answered = rows["met_at"].notna() & rows["routed_at"].notna()
    hours = pd.Series(np.nan, index=rows.index)
    if answered.any():
        hours[answered] = calendar.business_hours_between(
            rows.loc[answered, "routed_at"], rows.loc[answered, "met_at"], zones[answered], countries[answered],
            policy.business_hours).clip(lower=0)
    rows["response_bh"] = hours.round(2)
    return rows[["account_id", "trigger_at", "tier", "owner_id", "routed_at", "due_at", "met_at", "status",
                 "response_bh"]]


def tier_window(policy: SlaPolicy, tier: int) -> Window:
    return policy.clocks.first_touch.windows[tier]


def window_text(window: Window) -> str:
    if window.kind == "same_business_day":
        return "same business day"
    return f"{window.amount:g} {window.kind.replace('_', ' ')}"


#: response_summary's columns and the catalog metric each is read from (abm_sla.domain.metrics).
RESPONSE_METRICS = {"answered": "first_touches_answered", "before_routing": "first_touches_before_routing",
                    "unanswered": "first_touches_unanswered", "median_bh": "first_touch_response_median_hours",
                    "p90_bh": "first_touch_response_p90_hours"}


def response_summary(responses: pd.DataFrame, policy: SlaPolicy, by: str = "tier") -> pd.DataFrame:
    """Per ``by``: answered (of which before routing, counted as 0 hours), unanswered, median and p90
    business-hour response: the metrics catalog's response family over ``responses``."""
    from abm_sla.domain import metrics

    out = catalog_breakdown("responses", metrics.response_facts(responses), by, RESPONSE_METRICS)
    counts = ["answered", "before_routing", "unanswered"]
    out[counts] = out[counts].fillna(0).astype(int)
    if by == "tier":
        out["window"] = out["tier"].map(lambda t: window_text(tier_window(policy, t)) if t in TIERS else "")
    return out


#: progression's columns and the catalog metric each is read from (abm_sla.domain.metrics).
PROGRESSION_METRICS = {"accepted": "mqas_accepted", "opportunity": "mqas_accepted_converted",
                       "won": "mqas_accepted_won", "lost": "mqas_accepted_lost",
                       "open": "mqas_accepted_open_opportunity", "to_opportunity_pct": "sql_to_opportunity_rate",
                       "to_won_pct": "sql_to_won_rate"}


def progression(outcomes: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, by: str = "tier") -> pd.DataFrame:
    """Accepted MQAs of the period (per ``by`` with one, and ``all``): how many reached an opportunity, won, lost
    or are still open. The numbers are the metrics catalog's (:data:`PROGRESSION_METRICS`)."""
    from abm_sla.domain import metrics

    rows = outcomes[within(outcomes["trigger_at"], start, end)]
    out = catalog_breakdown("mqas", metrics.mqa_fact_columns(rows), by, PROGRESSION_METRICS)
    counts = ["accepted", "opportunity", "won", "lost", "open"]
    out[counts] = out[counts].fillna(0).astype(int)
    return out[(out["accepted"] > 0) | (out[by] == ALL)].reset_index(drop=True)


# -- joint ----------------------------------------------------------------------------------------



def opportunity_frame(data: SlaData) -> pd.DataFrame:
    """Opportunities with their account's tier and owner and clean flags."""
    accounts = account_dimensions(data)[["account_id", "account_name", "tier", "owner_id"]]
    opps = data.opportunities.assign(account_id=data.opportunities["account_id"].astype(str))
    opps = opps.merge(accounts, on="account_id", how="left")
    opps["tier"] = opps["tier"].fillna(3).astype(int)
    opps["amount"] = pd.to_numeric(opps["amount"], errors="coerce").fillna(0.0)
    opps["is_closed"] = _flag(opps["is_closed"])
    opps["is_won"] = _flag(opps["is_won"]) & opps["is_closed"]
    return opps


#: The three parts of the pipeline under each credit rule (they add up to all opportunities created).
CREDIT_PARTS = {
    "touch_order": ("marketing-sourced", "sales-first, marketing-influenced", "sales-sourced"),
    "mqa": ("marketing-sourced", "marketing-touched, no MQA", "sales-sourced"),
}


def credit_parts(policy: SlaPolicy) -> tuple[str, str, str]:
    """The labels of the policy's pipeline-credit rule: sourced, influenced but not sourced, sales-sourced."""
    return CREDIT_PARTS[policy.pipeline_credit.rule]


def pipeline_credit(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """The opportunities created in ``[start, end)``, each with its ``source`` by the policy's one pipeline-credit
    rule (``pipeline_credit``), ``influenced`` (any marketing touch in the lookback) and ``from_mqa`` (an MQA fired
    on the account by ``created_at``).

    ``touch_order`` (default): marketing-sourced = a marketing touch in the lookback before the opportunity and
    before any sales touch; sales-first, marketing-influenced = a marketing touch after the first sales touch;
    sales-sourced = no marketing touch. ``mqa``: marketing-sourced = an MQA fired in the lookback;
    marketing-touched, no MQA = a marketing touch but no such MQA; sales-sourced = neither.
    """
    lookback = pd.Timedelta(days=policy.pipeline_credit.lookback_days)
    opps = opportunity_frame(data)
    opps = opps[within(opps["created_at"], start, end)][
        ["opportunity_id", "account_id", "tier", "owner_id", "amount", "created_at"]].reset_index(drop=True)
    acts = data.activities[["account_id", "type", "occurred_at"]].assign(
        account_id=lambda f: f["account_id"].astype(str))
    joined = opps[["opportunity_id", "account_id", "created_at"]].merge(acts, on="account_id")
    joined = joined[(joined["occurred_at"] <= joined["created_at"])
                    & (joined["occurred_at"] > joined["created_at"] - lookback)]
    first = pd.DataFrame({
        "first_marketing": joined["occurred_at"].where(joined["type"].isin(frames.MARKETING_TOUCHES)),
        "first_sales": joined["occurred_at"].where(joined["type"].isin(frames.SALES_TOUCHES)),
        "opportunity_id": joined["opportunity_id"],
    }).groupby("opportunity_id").min()
    opps = opps.join(first, on="opportunity_id")
    mqas = data.mqas[["account_id", "trigger_at"]].dropna().assign(account_id=lambda f: f["account_id"].astype(str))
    fired = opps[["opportunity_id", "account_id", "created_at"]].merge(mqas, on="account_id")
    fired = fired[fired["trigger_at"] <= fired["created_at"]]
    recent = fired[fired["trigger_at"] > fired["created_at"] - lookback]
    touched = opps["first_marketing"].notna()
    if policy.pipeline_credit.rule == "mqa":
        sourced = opps["opportunity_id"].isin(recent["opportunity_id"])
        influenced = sourced | touched
    else:
        influenced = touched
        sourced = touched & (opps["first_sales"].isna() | (opps["first_marketing"] < opps["first_sales"]))
    parts = credit_parts(policy)
    opps["source"] = np.select([sourced, influenced], parts[:2], parts[2])
    opps["influenced"] = influenced.to_numpy()
    opps["from_mqa"] = opps["opportunity_id"].isin(fired["opportunity_id"])
    return opps.drop(columns=["first_marketing", "first_sales"])


#: pipeline_attribution's columns and the catalog metric each is read from (the created family).
ATTRIBUTION_METRICS = {"opportunities": "opportunities_created", "amount": "pipeline_created",
                       "from_mqa": "opportunities_from_mqa", "from_mqa_amount": "pipeline_from_mqa"}


def pipeline_attribution(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy,
                         by: str = "tier") -> pd.DataFrame:
    """Opportunities created in the period by attribution (the one pipeline-credit rule, :func:`pipeline_credit`),
    in count and amount, and how many came from MQAs: the rule's three parts add up to ``all``;
    marketing-influenced = the first two. Every number is the metrics catalog's created family
    (:func:`abm_sla.domain.metrics.family_table`) over the opportunities of each part."""
    from abm_sla.domain import metrics

    opps = metrics.created_facts(data, start, end, policy)
    slugs = metrics.SOURCE_SEGMENTS
    labels = (*credit_parts(policy), ALL, "marketing-influenced")
    masks = (*(opps["source"].eq(slug) for slug in slugs), pd.Series(True, index=opps.index), opps["influenced"])
    parts = [catalog_breakdown("created", opps[mask.to_numpy(dtype=bool)], by, ATTRIBUTION_METRICS)
             .assign(attribution=label) for label, mask in zip(labels, masks, strict=True)]
    out = pd.concat(parts, ignore_index=True)
    out[["opportunities", "from_mqa"]] = out[["opportunities", "from_mqa"]].fillna(0).astype(int)
    out[["amount", "from_mqa_amount"]] = out[["amount", "from_mqa_amount"]].fillna(0.0)
    return out[["attribution", by, "opportunities", "amount", "from_mqa", "from_mqa_amount"]]


#: Fewer closed opportunities than this make a win rate anecdote, not evidence: the table says so.
MIN_SAMPLE = 10


#: win_rates' columns and the catalog metric each is read from.
WIN_METRICS = {"closed": "opportunities_closed", "won": "opportunities_won", "win_rate_pct": "win_rate",
               "median_cycle_days": "sales_cycle_median_days"}


def win_rates(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp, policy: SlaPolicy,
              by: str = "tier") -> pd.DataFrame:
    """Opportunities closed in the period: won / closed and the median sales cycle of the *won*, against
    targets, with a ``sample`` warning under ``MIN_SAMPLE`` closed (numbers from the metrics catalog).

    The Tier 1 row carries the Tier 1 win-rate target; the ``all`` row the opportunity → won target.
    """
    from abm_sla.domain import metrics

    out = catalog_breakdown("closed", metrics.closed_facts(data, start, end, as_of), by, WIN_METRICS)
    out[["closed", "won"]] = out[["closed", "won"]].fillna(0).astype(int)
    targets = _targets(policy)
    out["win_rate_target_pct"] = np.nan
    if by == "tier":
        out.loc[out["tier"].eq(1), "win_rate_target_pct"] = targets.tier1_win_rate_pct
    out.loc[out[by].eq(ALL), "win_rate_target_pct"] = targets.opportunity_to_won_pct
    out["cycle_target_days_max"] = targets.sales_cycle_days_max
    out["cycle_on_target"] = out["median_cycle_days"].lt(targets.sales_cycle_days_max).where(
        out["median_cycle_days"].notna() & pd.notna(targets.sales_cycle_days_max))
    out["sample"] = np.where(out["closed"] < MIN_SAMPLE, f"small: fewer than {MIN_SAMPLE} closed", "")
    return out[[by, "closed", "won", "win_rate_pct", "win_rate_target_pct", "median_cycle_days",
                "cycle_target_days_max", "cycle_on_target", "sample"]]


# -- commitments and chronic misses -----------------------------------------------------------------

COMMITMENT_COLUMNS = ["commitment", "tier", "value", "target", "missed", "owners", "owners_missed",
                      "owners_missed_ids"]


def catalog_table(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                  policy: SlaPolicy) -> pd.DataFrame:
    """The metrics catalog's table for the period (:func:`abm_sla.domain.metrics.compute`): where the commitments'
    values come from."""
    from abm_sla.domain import metrics  # the catalog is built on this module's row-level functions

    return metrics.compute(data, start, end, as_of, policy)


def _catalog_value(table: pd.DataFrame, metric: str, tier: int | None = None) -> float:
    from abm_sla.domain import metrics

    return metrics.value(table, metric, metrics.ALL if tier is None else f"tier={tier}")


def _catalog_owners(table: pd.DataFrame, metric: str) -> pd.Series:
    """Per owner (index): the catalog value of ``metric`` in its ``owner=`` segments, where measured."""
    rows = table[(table["metric"] == metric) & table["segment"].str.startswith("owner=")]
    return rows.set_index(rows["segment"].str.removeprefix("owner="))["value"].dropna()


def commitments(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                policy: SlaPolicy, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every policy target evaluated for the period; per owner where the number has an owner. Values come
    from the metrics catalog (``table``, :func:`catalog_table` when not given)."""
    from abm_sla.domain import metrics

    targets = _targets(policy)
    table = catalog_table(data, start, end, as_of, policy) if table is None else table
    rows: list[dict[str, Any]] = []
    if targets.monthly_mqa_commitments:
        measured = _measured(data, start, end)
        for tier in sorted(targets.monthly_mqa_commitments):
            value = _catalog_value(table, "mqas", tier)
            target = metrics.target_bound(policy, start, end, "mqas", f"tier={tier}")
            text, missed = f">= {target:g}", bool(value < target)
            if tier in (targets.monthly_mqa_max or {}):  # the band (implementation guide)
                high = round(targets.monthly_mqa_max[tier] * marketing.months_between(start, end), 1)
                text, missed = f"{target:g}-{high:g}", bool(value < target or value > high)
            rows.append(_row("mqa_volume", tier, value, text, missed if measured else None))
    if targets.first_touch_met_pct:
        for tier, target in sorted(targets.first_touch_met_pct.items()):
            value = _catalog_value(table, "first_touch_met_rate", tier)
            owners = metrics.tier_owner_values(table, "first_touch_met_rate", tier)
            rows.append(_row("first_touch_met_pct", tier, value, f">= {target:g}", _below(value, target),
                             owners < target))
    band = targets.rejection_rate
    if band is not None:
        value = _catalog_value(table, "rejection_rate")
        outside = _catalog_owners(table, "rejection_rate").map(lambda rate: _outside(rate, band.min_pct, band.max_pct))
        rows.append(_row("rejection_pct", None, value, f"{band.min_pct:g}-{band.max_pct:g}",
                         _outside(value, band.min_pct, band.max_pct), outside))
    rows.extend(_opportunity_commitments(data, start, end, as_of, policy, table))
    rows.extend(benchmark_commitments(data, start, end, as_of, policy, table))
    out = pd.DataFrame(rows, columns=COMMITMENT_COLUMNS)
    out["tier"] = out["tier"].astype("Int64")
    return out


# -- every benchmark judged (issue 15) --------------------------------------------------------------

#: The designs' benchmarks as policy keys: (metric, tier or None for all tiers, operator).
BENCHMARKS: dict[str, tuple[str, int | None, str]] = {
    "engagement_rate_pct": ("engagement_rate_pct", None, ">="),
    "multi_stakeholder_pct": ("multi_stakeholder_pct", None, ">="),
    "tier1_acceptance_pct": ("acceptance_pct", 1, ">"),
    "tier2_mqa_to_opportunity_pct": ("mqa_to_opportunity_pct", 2, ">"),
    "sql_to_opportunity_pct": ("sql_to_opportunity_pct", None, ">="),
}
#: The catalog id (:mod:`abm_sla.domain.metrics`) of each benchmark metric.
CATALOG_IDS = {"engagement_rate_pct": "engagement_rate", "multi_stakeholder_pct": "multi_stakeholder_rate",
               "acceptance_pct": "acceptance_rate", "mqa_to_opportunity_pct": "mqa_to_opportunity_rate",
               "sql_to_opportunity_pct": "sql_to_opportunity_rate"}
#: What the sample of each metric counts.
METRIC_SAMPLES = {
    "mqas": "MQAs fired", "acceptance_pct": "MQAs fired", "rejection_pct": "verdicts",
    "mqa_to_opportunity_pct": "MQAs fired", "sql_to_opportunity_pct": "accepted MQAs",
    "engagement_rate_pct": "accounts measured", "multi_stakeholder_pct": "accounts measured",
    "engaged_contacts_per_account": "engaged accounts", "engaged_accounts": "accounts measured",
    "tempo_on_pct": "accounts with a tempo", "channel_coverage_pct": "engaged accounts",
    "win_rate_pct": "opportunities closed", "sales_cycle_days": "opportunities won",
    **{f"{clock}_met_pct": "clocks decided" for clock in (*CLOCKS, MARKETING_RESPONSE)},
}


def metric_values(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                  policy: SlaPolicy) -> pd.DataFrame:
    """Every metric of ``policy.METRICS`` for the period, per tier (1-3) and for all tiers (``tier`` None):
    ``metric, tier, value, sample`` (value NaN when nothing was measured)."""
    outcomes = mqa_outcomes(data, as_of, policy)
    quality = marketing_quality(outcomes, start, end, policy)
    progress = progression(outcomes, start, end)
    engaged = engagement(data, start, end)
    wins = win_rates(data, start, end, as_of, policy)
    clocks = clock_compliance(data, start, end, policy, by=("tier",))
    tempo, stage, coverage = _marketing_summaries(data, start, end, as_of, policy)
    parts = [
        _metric(quality, "mqas", "mqas", "mqas"),
        _metric(quality, "acceptance_pct", "acceptance_pct", "mqas"),
        _metric(quality.assign(verdicts=quality["accepted"] + quality["rejected"]), "rejection_pct",
                "rejection_pct", "verdicts"),
        _metric(quality, "mqa_to_opportunity_pct", "mqa_to_opportunity_pct", "mqas"),
        _metric(progress, "sql_to_opportunity_pct", "to_opportunity_pct", "accepted"),
        _metric(engaged, "engagement_rate_pct", "engagement_pct", "accounts"),
        _metric(engaged, "multi_stakeholder_pct", "multi_stakeholder_pct", "accounts"),
        _metric(engaged, "engaged_contacts_per_account", "engaged_contacts_per_account", "engaged"),
        _metric(stage, "engaged_accounts", "engaged", "accounts"),
        _metric(tempo, "tempo_on_pct", "on_tempo_pct", "judged"),
        _metric(coverage, "channel_coverage_pct", "covered_pct", "engaged"),
        _metric(wins, "win_rate_pct", "win_rate_pct", "closed"),
        _metric(wins, "sales_cycle_days", "median_cycle_days", "won"),
    ]
    decided = clocks.assign(decided=clocks["met"] + clocks["missed"])
    for clock in (*CLOCKS, MARKETING_RESPONSE):
        parts.append(_metric(decided[decided["clock"] == clock], f"{clock}_met_pct", "met_pct", "decided"))
    out = pd.concat(parts, ignore_index=True)
    out["tier"] = out["tier"].astype("Int64")
    return out


def _marketing_summaries(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                         policy: SlaPolicy) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Touch tempo, engaged-account stage and channel coverage summaries per tier: the metrics catalog's tempo,
    stage and coverage families (:func:`abm_sla.domain.metrics.marketing_facts`)."""
    from abm_sla.domain import metrics

    found = metrics.marketing_facts(data, start, end, as_of, policy)
    return (metrics.tier_table("tempo", found["tempo"], marketing.TEMPO_METRICS),
            metrics.tier_table("stage", found["stage"], marketing.STAGE_METRICS),
            metrics.tier_table("coverage", found["coverage"], marketing.COVERAGE_METRICS))


def _metric(frame: pd.DataFrame, name: str, column: str, sample: str) -> pd.DataFrame:
    """Rows ``metric, tier, value, sample`` from a per-tier table (its ``all`` row is tier None)."""
    rows = frame[frame["tier"].isin([*TIERS, ALL])]
    tier = rows["tier"].map(lambda t: None if t == ALL else int(t))
    return pd.DataFrame({"metric": name, "tier": tier.to_numpy(dtype=object),
                         "value": pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype="float64"),
                         "sample": pd.to_numeric(rows[sample], errors="coerce").fillna(0).astype(int).to_numpy()})


def benchmark_commitments(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                          policy: SlaPolicy, table: pd.DataFrame) -> list[dict[str, Any]]:
    """The benchmark targets (:data:`BENCHMARKS`, ``engaged_contacts_per_account``) and the ``custom`` ones,
    as commitment rows; team-level numbers (no owner breakdown). The benchmarks' values are the catalog's
    (``table``)."""
    targets = _targets(policy)
    wanted = [key for key in BENCHMARKS if getattr(targets, key) is not None]
    if not wanted and targets.engaged_contacts_per_account is None and not targets.custom:
        return []
    values = metric_values(data, start, end, as_of, policy)
    measured = _measured(data, start, end)  # a period the pipeline did not run in is not judged (as volume)
    rows = []
    for key in wanted:
        metric, tier, operator = BENCHMARKS[key]
        target = float(getattr(targets, key))
        value = _catalog_value(table, CATALOG_IDS[metric], tier)
        missed = None if pd.isna(value) else bool(value <= target if operator == ">" else value < target)
        rows.append(_row(key, tier, value, f"{operator} {target:g}", missed if measured else None))
    if targets.engaged_contacts_per_account is not None:
        band = targets.engaged_contacts_per_account
        value = _catalog_value(table, "engaged_contacts_per_account")
        rows.append(_row("engaged_contacts_per_account", None, value, _bounds_text(band.min, band.max),
                         _outside(value, band.min, band.max) if measured else None))
    for custom in targets.custom:
        value = _metric_value(values, custom.metric, custom.tier)
        rows.append(_row(custom_name(custom.metric), custom.tier, value, _bounds_text(custom.min, custom.max),
                         _outside(value, custom.min, custom.max) if measured else None))
    return rows


def custom_name(metric: str) -> str:
    """The commitment name of a ``targets.custom`` entry."""
    return f"custom:{metric}"


def commitment_sides(policy: SlaPolicy) -> dict[str, str]:
    """Which side each commitment belongs to, the benchmarks and custom targets included."""
    sides = {**SIDES, **BENCHMARK_SIDES}
    sides.update({custom_name(custom.metric): custom.side for custom in _targets(policy).custom})
    return sides


def _metric_value(values: pd.DataFrame, metric: str, tier: int | None) -> float:
    rows = values[(values["metric"] == metric) & (values["tier"].isna() if tier is None else values["tier"].eq(tier))]
    return float(rows["value"].iloc[0]) if len(rows) and pd.notna(rows["value"].iloc[0]) else float("nan")


def _bounds_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low:g}-{high:g}"
    return f">= {low:g}" if low is not None else f"<= {high:g}"


def has_data(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> bool:
    """Whether the pipeline measured anything in ``[start, end)``: a score, an MQA or a clock due."""
    return _measured(data, start, end)


def latest_measurement(data: SlaData) -> pd.Timestamp | None:
    """The latest moment scored, MQA fired or clocks evaluated at (None when there is none)."""
    moments = [data.score_history["as_of"].max(), data.mqas["trigger_at"].max(), data.sla_clocks["as_of"].max()]
    moments = [moment for moment in moments if pd.notna(moment)]
    return max(moments) if moments else None


def _measured(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> bool:
    """Whether the pipeline ran in the period: any score, MQA or clock in it (else volume is not judged)."""
    return bool(within(data.score_history["as_of"], start, end).any()
                or within(data.mqas["trigger_at"], start, end).any()
                or within(data.sla_clocks["due_at"], start, end).any())


def _opportunity_commitments(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
                             policy: SlaPolicy, table: pd.DataFrame) -> list[dict[str, Any]]:
    """The win-rate and sales-cycle commitments with their per-owner split: the catalog's ``win_rate`` (per
    ``tier=1,owner=`` for Tier 1, per ``owner=`` for all tiers) and ``sales_cycle_median_days``."""
    from abm_sla.domain import metrics

    targets = _targets(policy)
    rows = []
    if targets.tier1_win_rate_pct is not None:
        target = targets.tier1_win_rate_pct
        value = _catalog_value(table, "win_rate", 1)
        rows.append(_row("tier1_win_rate_pct", 1, value, f">= {target:g}", _below(value, target),
                         metrics.tier_owner_values(table, "win_rate", 1) < target))
    if targets.opportunity_to_won_pct is not None:
        target = targets.opportunity_to_won_pct
        value = _catalog_value(table, "win_rate")
        rows.append(_row("opportunity_to_won_pct", None, value, f">= {target:g}", _below(value, target),
                         _catalog_owners(table, "win_rate") < target))
    if targets.sales_cycle_days_max is not None:
        target = targets.sales_cycle_days_max
        value = _catalog_value(table, "sales_cycle_median_days")
        rows.append(_row("sales_cycle_days", None, value, f"<= {target:g}",
                         None if pd.isna(value) else bool(value > target),
                         _catalog_owners(table, "sales_cycle_median_days") > target))
    return rows


def _value(frame: pd.DataFrame, where: dict[str, Any], column: str) -> float:
    mask = np.logical_and.reduce([frame[key] == value for key, value in where.items()])
    values = frame.loc[mask, column]
    return float(values.iloc[0]) if len(values) and pd.notna(values.iloc[0]) else float("nan")


def _below(value: float, target: float) -> bool | None:
    return None if pd.isna(value) else bool(value < target)


def _outside(value: float, low: float | None, high: float | None) -> bool | None:
    if pd.isna(value):
        return None
    return bool((low is not None and value < low) or (high is not None and value > high))


def _row(name: str, tier: int | None, value: float, target: str, missed: bool | None,
         owner_missed: pd.Series | None = None) -> dict[str, Any]:
    owner_missed = owner_missed if owner_missed is not None else pd.Series(dtype=bool)
    owner_missed = owner_missed.dropna().astype(bool)
    return {"commitment": name, "tier": tier, "value": value, "target": target, "missed": missed,
            "owners": len(owner_missed), "owners_missed": int(owner_missed.sum()),
            "owners_missed_ids": ", ".join(sorted(str(o) for o in owner_missed[owner_missed].index))}


def chronic_misses(data: SlaData, end: pd.Timestamp, as_of: pd.Timestamp, policy: SlaPolicy,
                   system_share: float = 0.5) -> pd.DataFrame:
    """Each commitment in the quarter containing ``end - 1ns`` and the quarter before it.

    ``chronic`` (missed both quarters) is flagged for renegotiation. A miss spread over more than
    ``system_share`` of the owners measured is a *system problem* (fix the routing, cadence or staffing);
    a miss concentrated on fewer owners is a *coaching matter* (the owners are listed).
    """
    current = quarter_of(end - pd.Timedelta(1))
    previous = previous_quarter(current[0])
    now = commitments(data, *current, min(as_of, current[1]), policy)
    before = commitments(data, *previous, min(as_of, previous[1]), policy)
    keys = ["commitment", "tier"]
    merged = now.merge(before[[*keys, "value", "missed"]].rename(
        columns={"value": "previous_value", "missed": "previous_missed"}), on=keys, how="left")
    measured_before = bool(within(data.mqas["trigger_at"], *previous).any())
    if not measured_before:  # nothing measured then: say so, judge nothing
        merged["previous_value"], merged["previous_missed"] = np.nan, None
    merged["chronic"] = merged["missed"].eq(True) & merged["previous_missed"].eq(True)
    merged["action"] = np.where(merged["chronic"], "renegotiate", "")
    merged["diagnosis"] = [_diagnosis(row, system_share) for row in merged.itertuples()]
    merged.insert(0, "quarter", quarter_label(current[0]))
    label = quarter_label(previous[0])
    merged.insert(1, "previous_quarter", label if measured_before else f"{label} (no data)")
    return merged


def _diagnosis(row: Any, system_share: float) -> str:
    if row.missed is not True:
        return ""
    if row.owners == 0:
        return "team-level number (no owner breakdown)"
    share = row.owners_missed / row.owners
    if share > system_share:
        return f"system problem: {row.owners_missed} of {row.owners} owners miss it"
    return f"coaching matter: {row.owners_missed} of {row.owners} owners ({row.owners_missed_ids})"


# -- weekly dashboard -------------------------------------------------------------------------------

def clock_misses(data: SlaData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Clocks due in the period and missed, by owner and account."""
    clocks = clocks_due(data, start, end)
    missed = clocks[clocks["status"] == "missed"]
    accounts = account_dimensions(data).set_index("account_id")["account_name"]
    out = missed.assign(owner_name=missed["owner_id"].map(owner_names(data)),
                        account_name=missed["account_id"].astype(str).map(accounts))
    columns = ["owner_id", "owner_name", "account_id", "account_name", "tier", "clock", "trigger_at", "due_at",
               "met_at"]
    return out[columns].sort_values(["owner_id", "account_id", "due_at"]).reset_index(drop=True)


def open_escalations(data: SlaData, as_of: pd.Timestamp) -> pd.DataFrame:
    """Escalations opened by ``as_of`` whose episode is open and whose clock is still unmet, one row per MQA
    and clock."""
    escalations = data.escalations[data.escalations["opened_at"] <= as_of]
    mqas = data.mqas[["account_id", "trigger_at", "ended_at", "tier"]]
    rows = escalations.merge(mqas, on=["account_id", "trigger_at"], how="left")
    rows = rows[rows["ended_at"].isna() | (rows["ended_at"] > as_of)]
    clocks = data.sla_clocks[["account_id", "trigger_at", "clock", "met_at"]]
    rows = rows.merge(clocks, on=["account_id", "trigger_at", "clock"], how="left")
    rows = rows[rows["met_at"].isna() | (rows["met_at"] > as_of)]
    names = owner_names(data)
    rows = rows.assign(recipient=rows["to_user_id"].map(names).fillna(rows["to_user_id"]))
    # in the order opened: the owner, steps and ask shown are those of the latest ticket (after a reassignment,
    # the new owner's, whose ask says it is owed by them)
    rows = rows.sort_values(["account_id", "trigger_at", "clock", "opened_at", "level", "to_user_id"])
    out = rows.groupby(["account_id", "trigger_at", "clock"], as_index=False).agg(
        tier=("tier", "first"), owner_id=("owner_id", "last"),
        level=("level", "max"), first_opened_at=("opened_at", "min"), last_opened_at=("opened_at", "max"),
        recipients=("recipient", lambda s: ", ".join(dict.fromkeys(s.astype(str)))),
        steps_taken=("steps_taken", "last"), resolution=("resolution", "last"))
    out = out[["account_id", "trigger_at", "tier", "owner_id", "clock", *out.columns[5:]]]
    out["tier"] = normalize_tier(out["tier"])
    out["level"] = out["level"].astype(int)
    out.insert(3, "owner_name", out["owner_id"].map(names))
    accounts = account_dimensions(data).set_index("account_id")["account_name"]
    out.insert(1, "account_name", out["account_id"].astype(str).map(accounts))
    return out.sort_values(["level", "first_opened_at"], ascending=[False, True]).reset_index(drop=True)


HIGH_INTENT_TOUCHES = ("form_submit", "webinar")
HIGH_INTENT_PAGES = ("/pricing", "/demo")


@dataclass(frozen=True)
class ActivityFacts:
    """What the tier-move rules read of the activities as of ``as_of``: ``extent``, each account's first and
    last activity up to ``as_of`` (``first_at``, ``last_at``, indexed by account); ``buying``, the window's
    activities that may be buying signals (``account_id, type, url, occurred_at``); ``touch_pairs``, the
    distinct ``account_id, contact_id`` of the window's marketing touches. A warehouse computes them in SQL
    (:meth:`abm_sla.warehouse.view.CrmView.activity_facts`) instead of handing over every activity.
    ``first_at``: the first activity on record of any account (None: the earliest ``extent`` one; given
    when ``extent`` holds only some accounts)."""

    extent: pd.DataFrame
    buying: pd.DataFrame
    touch_pairs: pd.DataFrame
    first_at: pd.Timestamp | None = None

    @property
    def records_begin(self) -> pd.Timestamp:
        """When the activity records begin (NaT: no activity)."""
        return self.extent["first_at"].min() if self.first_at is None else self.first_at


def activity_facts(activities: pd.DataFrame, as_of: pd.Timestamp, window: pd.Timedelta) -> ActivityFacts:
    """:class:`ActivityFacts` from the activities themselves."""
    acts = activities[activities["occurred_at"] <= as_of].assign(account_id=lambda f: f["account_id"].astype(str))
    recent = acts[acts["occurred_at"] > as_of - window]
    buying = recent[recent["type"].isin((*HIGH_INTENT_TOUCHES, "web_visit"))]
    marketing = recent[recent["type"].isin(frames.MARKETING_TOUCHES)]
    pairs = marketing[["account_id", "contact_id"]].dropna().astype(str).drop_duplicates(ignore_index=True)
    return ActivityFacts(activity_extent(acts), buying[["account_id", "type", "url", "occurred_at"]], pairs)


def account_activity(data: SlaData, as_of: pd.Timestamp, window: pd.Timedelta,
                     intent_score_min: float = 70, decision_makers: re.Pattern[str] | None = None,
                     facts: ActivityFacts | None = None) -> pd.DataFrame:
    """Per account as of ``as_of``: last activity, buying signals and engaged stakeholders in ``window``,
    opportunities created in ``window``, open pipeline.

    ``facts`` (:class:`ActivityFacts` as of ``as_of`` for ``window``) stand in for ``data.activities``,
    which is then not read.

    A buying signal is a form submit, a webinar, a pricing or demo page visit, or an intent topic
    scoring >= ``intent_score_min``; each kind (activity type, page, topic) counts once per UTC day, an
    intent topic once in the window. Engaged stakeholders: ``stakeholders_engaged`` distinct contacts with
    a marketing touch, ``roles_engaged`` distinct roles among them (a role is the contact's title, lower-cased,
    spaces collapsed; a contact without a title has none), ``decision_makers_engaged`` those whose title
    matches ``decision_makers`` (the scoring model's gate-3 titles).
    """
    facts = activity_facts(data.activities, as_of, window) if facts is None else facts
    accounts = account_dimensions(data).set_index("account_id")
    intent = data.intent_signals
    intent = intent[(intent["observed_at"] <= as_of) & (intent["observed_at"] > as_of - window)
                    & (pd.to_numeric(intent["score"], errors="coerce") >= intent_score_min)]
    intent_topics = intent.assign(topic=intent["topic"].astype(str).str.strip().str.lower()).groupby(
        intent["account_id"].astype(str))["topic"].nunique()
    opps = opportunity_frame(data)
    opps = opps[opps["created_at"] <= as_of]
    open_now = ~(opps["is_closed"] & (opps["close_date"] <= as_of))
    out = pd.DataFrame(index=accounts.index)
    out["last_activity_at"] = facts.extent["last_at"]
    out["buying_signals"] = (buying_signal_days(facts.buying).reindex(out.index).fillna(0)
                             + intent_topics.reindex(out.index).fillna(0)).astype(int)
    out = out.join(engaged_stakeholders(facts.touch_pairs, data.contacts, decision_makers)).fillna(
        {"stakeholders_engaged": 0, "roles_engaged": 0, "decision_makers_engaged": 0})
    out = out.astype({"stakeholders_engaged": int, "roles_engaged": int, "decision_makers_engaged": int})
    out["opportunities_created"] = opps[opps["created_at"] > as_of - window].groupby(
        "account_id").size().reindex(out.index).fillna(0).astype(int)
    out["open_pipeline"] = opps[open_now].groupby("account_id")["amount"].sum().reindex(out.index).fillna(0.0)
    out["open_opportunities"] = opps[open_now].groupby("account_id").size().reindex(out.index).fillna(0).astype(int)
    history = facts.records_begin  # no account is inactive for longer than the activity records go back
    out["counted_from"] = accounts["created_at"] if pd.isna(history) else accounts["created_at"].clip(lower=history)
    since = out["last_activity_at"].fillna(out["counted_from"])
    out["inactive_days"] = ((as_of - since) / DAY).round(1)
    return accounts.join(out).reset_index()


def activity_extent(activities: pd.DataFrame) -> pd.DataFrame:
    """Per account (the index, as text): its first and last activity (``first_at``, ``last_at``)."""
    grouped = activities.groupby(activities["account_id"].astype(str))["occurred_at"]
    return pd.DataFrame({"first_at": grouped.min(), "last_at": grouped.max()})


def buying_signal_days(activities: pd.DataFrame) -> pd.Series:
    """Per account: distinct (kind, UTC day) of buying-signal activities; the kind of a web visit is its page."""
    url = activities["url"].astype("string").str.lower().fillna("")
    page = url.str.extract("(" + "|".join(map(re.escape, HIGH_INTENT_PAGES)) + ")", expand=False)
    visit = activities["type"].eq("web_visit") & page.notna()
    buying = activities["type"].isin(HIGH_INTENT_TOUCHES) | visit
    rows = activities[buying]
    kinds = pd.DataFrame({"account_id": rows["account_id"].astype(str),
                          "kind": rows["type"].where(~visit[buying], "web_visit " + page[buying].astype(str)),
                          "day": rows["occurred_at"].dt.floor("D")})
    return kinds.drop_duplicates().groupby("account_id").size()


def engaged_stakeholders(touches: pd.DataFrame, contacts: pd.DataFrame,
                         decision_makers: re.Pattern[str] | None) -> pd.DataFrame:
    """Per account: distinct contacts, distinct roles (normalized titles) and decision-makers among the
    contacts with a marketing touch in ``touches``."""
    people = touches[["account_id", "contact_id"]].dropna().astype(str).drop_duplicates()
    titles = contacts.assign(contact_id=contacts["contact_id"].astype(str)).drop_duplicates("contact_id")
    titles = titles.set_index("contact_id")["title"].reindex(people["contact_id"].unique())
    codes, distinct = pd.factorize(titles, use_na_sentinel=True)  # a few titles, many contacts: normalize each once
    roles = pd.Series(distinct, dtype="string").str.strip().str.lower().str.replace(r"\s+", " ", regex=True)
    roles = roles.mask(roles.eq(""))
    deciding = (roles.fillna("").str.contains(decision_makers).astype(bool) if decision_makers is not None
                else pd.Series(False, index=roles.index))
    # code -1 (no title) picks the appended None / False
    role_of = pd.Series(np.append(roles.to_numpy(dtype=object), None)[codes], index=titles.index)
    decides = pd.Series(np.append(deciding.to_numpy(dtype=bool), False)[codes], index=titles.index)
    people["role"] = people["contact_id"].map(role_of).astype("string")
    people["decision_maker"] = people["contact_id"].map(decides).astype(bool)
    return people.groupby("account_id").agg(stakeholders_engaged=("contact_id", "nunique"),
                                            roles_engaged=("role", "nunique"),
                                            decision_makers_engaged=("decision_maker", "sum"))


def tier_move_window(rules: Any) -> pd.Timedelta:
    """How far back the promotion rules look for buying signals and engagement (``within_days``, default 30)."""
    promote_3, promote_2 = rules.promote_3_to_2 or {}, rules.promote_2_to_1 or {}
    return pd.Timedelta(days=float(promote_3.get("within_days", promote_2.get("within_days", 30))))


def tier_move_intent_min(rules: Any) -> float:
    """The lowest intent score that counts as a buying signal (``promote_3_to_2.intent_score_min``, default 70)."""
    return float((rules.promote_3_to_2 or {}).get("intent_score_min", 70))


def tier_moves(data: SlaData, as_of: pd.Timestamp, policy: SlaPolicy,
               decision_makers: re.Pattern[str] | None = None, facts: ActivityFacts | None = None) -> pd.DataFrame:
    """Accounts a tier move applies to as of ``as_of``, with reasons, by the policy's ``targets.tier_moves``.

    One move per account, the first that applies: off the list (inactive and no open pipeline), back to
    Tier 2 (Tier 1 inactive), Tier 3 → 1 (the watch list's strong signal, ``promote_3_to_1``: buying signals or an
    opportunity), Tier 3 → 2 (buying signals, each kind once a day), Tier 2 → 1 (opportunity,
    or engaged stakeholders in distinct roles, one a decision-maker when ``require_decision_maker``).
    An account with no activity ever counts as inactive since its ``created_at``, or since the first activity on
    record when it is older than the records (unknown ``created_at``: never flagged).
    Which of these are *recommended* (once, until decided) is :mod:`abm_sla.domain.tier_moves`' ledger.
    With ``facts`` (see :func:`account_activity`) ``data.activities`` is not read.
    """
    rules = _targets(policy).tier_moves
    columns = ["account_id", "account_name", "owner_id", "owner_name", "tier", "proposed_tier", "rule", "reason"]
    if rules is None:
        return pd.DataFrame(columns=columns)
    window = tier_move_window(rules)
    state = account_activity(data, as_of, window, tier_move_intent_min(rules), decision_makers, facts)
    state["proposed_tier"], state["rule"], state["reason"] = None, None, None
    days = window / DAY
    for name, mask, proposed, reason in _move_rules(state, rules, days, decision_makers is not None):
        pick = mask & state["rule"].isna()
        state.loc[pick, ["proposed_tier", "rule"]] = [proposed, name]
        state.loc[pick, "reason"] = reason[pick]
    out = state[state["rule"].notna()].assign(owner_name=lambda f: f["owner_id"].map(owner_names(data)))
    return out[columns].sort_values(["rule", "account_id"]).reset_index(drop=True)


def _inactivity(state: pd.DataFrame) -> pd.Series:
    """How the inactive days are counted: from the last activity, or (none on record) from account creation,
    or from the first activity on record when the account is older than the records."""
    never = state["last_activity_at"].isna()
    older = never & (state["counted_from"] > state["created_at"])
    return pd.Series(np.select([older, never], ["no activity since the activity records begin, ",
                                                 "no activity on record since the account was created, "],
                               "no activity for "), index=state.index, dtype=object)


def _move_rules(state: pd.DataFrame, rules: Any, days: float,
                knows_decision_makers: bool) -> list[tuple[str, pd.Series, str, pd.Series]]:
    """(rule, applies, proposed tier, reason) in priority order, for the rules the policy defines.

    Without decision-maker titles (``knows_decision_makers`` false: the scoring model's gate 3 is off)
    the stakeholder rule counts distinct roles only."""
    out = []
    inactive = state["inactive_days"]
    if rules.remove_from_list:
        limit = float(rules.remove_from_list.get("inactive_days", 120))
        need_no_pipeline = rules.remove_from_list.get("open_pipeline", False) is False
        mask = (inactive >= limit) & ((state["open_opportunities"] == 0) if need_no_pipeline else True)
        reason = (_inactivity(state) + inactive.map("{:.0f}".format)
                  + f" days (>= {limit:g}) and no open pipeline")
        out.append(("remove_from_list", mask, "off list", reason))
    if rules.demote_1_to_2:
        limit = float(rules.demote_1_to_2.get("inactive_days", 60))
        mask = (state["tier"] == 1) & (inactive >= limit)
        reason = "Tier 1: " + _inactivity(state) + inactive.map("{:.0f}".format) + f" days (>= {limit:g})"
        out.append(("demote_1_to_2", mask, "2", reason))
    promote_3_to_1 = rules.promote_3_to_1
    if promote_3_to_1:  # the Tier 3 watch list's strong signal: straight to Tier 1 (implementation guide)
        need = int(promote_3_to_1.get("buying_signals", 4))
        by_opp = (state["opportunities_created"] > 0) if promote_3_to_1.get("opportunity_created") else False
        mask = (state["tier"] == 3) & ((state["buying_signals"] >= need) | by_opp)
        reason = pd.Series(np.where(state["opportunities_created"] > 0 if promote_3_to_1.get("opportunity_created")
                                    else False, f"watch list: opportunity created in the last {days:g} days",
                                    "watch list: " + state["buying_signals"].astype(str)
                                    + f" buying signals in {days:g} days (>= {need})"), index=state.index)
        out.append(("promote_3_to_1", mask, "1", reason))
    if rules.promote_3_to_2:
        need = int(rules.promote_3_to_2.get("buying_signals", 2))
        mask = (state["tier"] == 3) & (state["buying_signals"] >= need)
        reason = state["buying_signals"].astype(str) + f" buying signals in {days:g} days (>= {need})"
        out.append(("promote_3_to_2", mask, "2", reason))
    if rules.promote_2_to_1:
        need = int(rules.promote_2_to_1.get("stakeholders_engaged", 2))
        by_opp = state["opportunities_created"] > 0 if rules.promote_2_to_1.get("opportunity_created") else False
        with_dm = bool(rules.promote_2_to_1.get("require_decision_maker", True)) and knows_decision_makers
        by_people = (state["roles_engaged"] >= need) & ((state["decision_makers_engaged"] >= 1) if with_dm else True)
        mask = (state["tier"] == 2) & (by_opp | by_people)
        reason = np.where(by_opp, f"opportunity created in the last {days:g} days",
                          state["roles_engaged"].astype(str) + f" roles engaged (>= {need})"
                          + (", " + state["decision_makers_engaged"].astype(str) + " decision-maker(s)"
                             if with_dm else ""))
        out.append(("promote_2_to_1", mask, "1", pd.Series(reason, index=state.index)))
    return out


def compliance_trend(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, policy: SlaPolicy) -> pd.DataFrame:
    """Met % per ISO week and clock (all tiers) for the weeks overlapping ``[start, end)``."""
    parts = []
    for label, week_start, week_end in weeks(start, end):
        week = clock_compliance(data, week_start, week_end, policy, by=("tier",))
        parts.append(week[week["tier"] == ALL].assign(week=label))
    if not parts:
        return pd.DataFrame(columns=["week", "clock", "met", "missed", "pending", "met_pct"])
    return pd.concat(parts, ignore_index=True)[["week", "clock", "met", "missed", "pending", "met_pct"]]


# -- the headline scorecard -------------------------------------------------------------------------

#: Which side of the SLA each commitment belongs to.
SIDES = {"mqa_volume": "marketing", "rejection_pct": "marketing", "first_touch_met_pct": "sales",
         "tier1_win_rate_pct": "sales", "opportunity_to_won_pct": "sales", "sales_cycle_days": "sales"}
#: The benchmarks' sides (marketing's engagement numbers, sales' conversion numbers).
BENCHMARK_SIDES = {"engagement_rate_pct": "marketing", "multi_stakeholder_pct": "marketing",
                   "engaged_contacts_per_account": "marketing", "tier1_acceptance_pct": "marketing",
                   "tier2_mqa_to_opportunity_pct": "marketing", "sql_to_opportunity_pct": "sales"}
#: What the sample of each commitment counts.
SAMPLE_UNITS = {"mqa_volume": "MQAs fired", "rejection_pct": "verdicts", "first_touch_met_pct": "clocks decided",
                "tier1_win_rate_pct": "opportunities closed", "opportunity_to_won_pct": "opportunities closed",
                "sales_cycle_days": "opportunities won"}


def headline(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
             policy: SlaPolicy, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each commitment of both sides for ``[start, end)``: value against target, verdict, the value of the
    period before (:func:`previous_period`, judged as of its end) and the sample the value rests on.

    The values are those of :func:`commitments` (the metrics catalog's, ``table`` when given: the catalog table
    of this period as of ``as_of``); ``change`` is value minus previous value.
    """
    table = catalog_table(data, start, end, as_of, policy) if table is None else table
    now = commitments(data, start, end, as_of, policy, table)
    before_start, before_end = previous_period(start, end)
    before = commitments(data, before_start, before_end, min(as_of, before_end), policy)
    keys = ["commitment", "tier"]
    out = now.merge(before[[*keys, "value", "missed"]].rename(
        columns={"value": "previous_value", "missed": "previous_missed"}), on=keys, how="left")
    judged = out["previous_missed"].notna()  # a period the pipeline did not measure has no comparable value
    out["previous_value"] = out["previous_value"].where(judged)
    out["change"] = out["value"] - out["previous_value"]
    out.insert(0, "side", out["commitment"].map(commitment_sides(policy)))
    samples = _samples(data, start, end, as_of, policy, table)
    out["sample"] = [samples.get((name, None if pd.isna(tier) else int(tier)), 0)
                     for name, tier in zip(out["commitment"], out["tier"], strict=True)]
    out["sample_unit"] = out["commitment"].map(_sample_units(policy))
    out["owner"] = [commitment_owner(policy, name, side) for name, side in zip(out["commitment"], out["side"],
                                                                               strict=True)]
    return out[["side", "commitment", "tier", "value", "target", "missed", "previous_value", "previous_missed",
                "change", "sample", "sample_unit", "owners", "owners_missed", "owners_missed_ids", "owner"]]


def commitment_owner(policy: SlaPolicy, commitment: str, side: str | None) -> str:
    """Who owns a commitment (policy ``owners``): named for the commitment itself, else its side's default; ""
    when the policy names nobody."""
    owners = policy.owners
    return owners.get(str(commitment).lower()) or owners.get(str(side).lower(), "") if owners else ""


def unknown_owner_keys(policy: SlaPolicy) -> list[str]:
    """``owners`` keys that name no commitment the scorecard knows, no ``targets.custom`` entry and no side."""
    from abm_sla.domain.policy import OWNER_SIDES

    known = set(commitment_sides(policy)) | set(OWNER_SIDES)
    return [key for key in policy.owners if key not in known]


def _samples(data: SlaData, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp,
             policy: SlaPolicy, table: pd.DataFrame) -> dict[tuple[str, int | None], int]:
    """How many MQAs, clocks, verdicts or opportunities each commitment's value is computed from (the
    catalog's numerator of a count, denominator of a rate or median)."""
    from abm_sla.domain import metrics

    def sample(metric: str, tier: int | None = None) -> int:
        found = metrics.row(table, metric, metrics.ALL if tier is None else f"tier={tier}")
        if found is None:
            return 0
        counted = found["numerator"] if metrics.BY_ID[metric].kind == "count" else found["denominator"]
        return int(counted) if pd.notna(counted) else 0

    out: dict[tuple[str, int | None], int] = {("mqa_volume", tier): sample("mqas", tier) for tier in TIERS}
    out |= {("first_touch_met_pct", tier): sample("first_touch_met_rate", tier) for tier in TIERS}
    out[("rejection_pct", None)] = sample("rejection_rate")
    out[("tier1_win_rate_pct", 1)] = sample("win_rate", 1)
    out[("opportunity_to_won_pct", None)] = sample("win_rate")
    out[("sales_cycle_days", None)] = sample("sales_cycle_median_days")
    targets = _targets(policy)
    out |= {(key, tier): sample(CATALOG_IDS[metric], tier) for key, (metric, tier, _) in BENCHMARKS.items()
            if getattr(targets, key) is not None}
    extra = {}
    if targets.engaged_contacts_per_account is not None:
        extra["engaged_contacts_per_account"] = ("engaged_contacts_per_account", None)
    extra.update({custom_name(c.metric): (c.metric, c.tier) for c in targets.custom})
    if extra:
        values = metric_values(data, start, end, as_of, policy)
        for name, (metric, tier) in extra.items():
            rows = values[(values["metric"] == metric)
                          & (values["tier"].isna() if tier is None else values["tier"].eq(tier))]
            out[(name, tier)] = int(rows["sample"].iloc[0]) if len(rows) else 0
    return out


def _sample_units(policy: SlaPolicy) -> dict[str, str]:
    units = {**SAMPLE_UNITS, **{key: METRIC_SAMPLES[metric] for key, (metric, _, _) in BENCHMARKS.items()}}
    units["engaged_contacts_per_account"] = METRIC_SAMPLES["engaged_contacts_per_account"]
    units.update({custom_name(c.metric): METRIC_SAMPLES[c.metric] for c in _targets(policy).custom})
    return units

