"""The escalation ladder: the levels a missed clock opens, when and to whom, the steps taken, and the
reassignments due."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from abm_sla.domain.policy import OWNER_MANAGER, EscalationLevel, SlaPolicy
from abm_sla.domain.routing import active_users, users_with_role
from abm_sla.domain.sla.common import (
    AFTER_EPISODE_CLOCKS,
    ESCALATION_COLUMNS,
    UTC,
    _empty,
    _owner_calendar,
    _stamp,
    _to_utc,
    _utc,
    apply_windows,
    clock_start,
)


def evaluate_escalations(
    clocks: pd.DataFrame,
    mqas: pd.DataFrame,
    activities: pd.DataFrame,
    users: pd.DataFrame,
    policy: SlaPolicy,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """One row per opened level and recipient, with ``ESCALATION_COLUMNS``, for every ladder of the policy.

    A ladder belongs to a clock by name (any name in ``clocks``, SPEC's four or another). A level
    of a missed clock opens at its offset past the clock's due_at (or the MQA's routed_at, never
    before due_at), once ``as_of`` has reached it, unless the clock was met (late) or the episode
    ended before that moment (SPEC: "before then"; for first_touch the meeting event is the first
    sales touch). A clock with several rows per MQA (a recurring clock) escalates once per MQA,
    from its earliest missed row still unmet (else its earliest missed row). A level without a
    recipient produces no row. ``activities`` is kept for callers; the clocks carry met_at.
    """
    as_of = _utc(as_of)
    frames = [_ladder_rows(clocks, mqas, users, policy, ladder.clock, ladder.levels, as_of)
              for ladder in policy.ladders]
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return _empty(ESCALATION_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    out = out.sort_values(["account_id", "trigger_at"], kind="stable").reset_index(drop=True)
    return out.astype({"level": "int64", "opened_at": UTC})


def reassignments_due(
    clocks: pd.DataFrame, mqas: pd.DataFrame, users: pd.DataFrame, policy: SlaPolicy, as_of: pd.Timestamp
) -> pd.DataFrame:
    """``account_id, trigger_at, clock, level, opened_at, owner_id`` of every reassigning level opened by
    ``as_of`` (whether or not the level has a recipient), by the same rules as the ladder."""
    as_of = _utc(as_of)
    parts = []
    for ladder in policy.ladders:
        specs = [spec for spec in ladder.levels if spec.reassign]
        missed = _missed_once(clocks, ladder.clock) if specs else clocks.iloc[:0]
        if missed.empty:
            continue
        cases = _cases(missed, mqas, users)
        opened = _opened_at(cases, specs[0], policy, as_of)
        parts.append(cases.loc[opened.notna(), ["account_id", "trigger_at", "owner_id"]].assign(
            clock=ladder.clock, level=specs[0].level, opened_at=opened[opened.notna()]))
    columns = ["account_id", "trigger_at", "clock", "level", "opened_at", "owner_id"]
    if not parts:
        return _empty(columns)
    return pd.concat(parts, ignore_index=True)[columns].astype({"level": "int64", "opened_at": UTC})


def _ladder_rows(
    clocks: pd.DataFrame, mqas: pd.DataFrame, users: pd.DataFrame, policy: SlaPolicy, clock: str,
    specs: list[EscalationLevel], as_of: pd.Timestamp,
) -> pd.DataFrame:
    missed = _missed_once(clocks, clock)
    if missed.empty:
        return _empty(ESCALATION_COLUMNS)
    cases = _cases(missed, mqas, users)
    levels = [Level(spec, _opened_at(cases, spec, policy, as_of), *_recipients(cases, spec, users))
              for spec in specs]
    prefix = _resolution_prefix(cases, clock)
    frames, order = [], []
    for number, level in enumerate(levels):
        index = cases.index[level.opened.notna()]
        if index.empty:
            continue
        head = pd.DataFrame({
            "account_id": cases.loc[index, "account_id"],
            "trigger_at": cases.loc[index, "trigger_at"],
            "level": level.spec.level,
            "opened_at": level.opened[index],
            "owner_id": cases.loc[index, "owner_id"],
            "clock": clock,
            "steps_taken": _steps_taken(index, level, levels[:number]),
            "resolution": prefix[index] + level.spec.ask,
        }, index=index)
        rows = head.merge(level.recipients, left_index=True, right_on="case")
        frames.append(rows)
        order.append(rows["case"].to_numpy() * len(levels) + number)
    if not frames:
        return _empty(ESCALATION_COLUMNS)
    out = pd.concat(frames, ignore_index=True)[ESCALATION_COLUMNS]
    return out.iloc[np.argsort(np.concatenate(order), kind="stable")].reset_index(drop=True)


def _missed_once(clocks: pd.DataFrame, clock: str) -> pd.DataFrame:
    """The missed rows of ``clock``, one per MQA: the earliest still unmet, else the earliest."""
    missed = clocks[(clocks["clock"] == clock) & (clocks["status"] == "missed")]
    if missed.empty:
        return missed
    order = missed.assign(_met=missed["met_at"].notna()).sort_values(["_met", "due_at"], kind="stable")
    return order.drop_duplicates(["account_id", "trigger_at"]).drop(columns="_met")


@dataclass(frozen=True)
class Level:
    """One ladder level evaluated for every case."""

    spec: EscalationLevel
    opened: pd.Series  # opened_at per case, NaT when not opened (yet)
    recipients: pd.DataFrame  # rows ``case, to_user_id``
    who: pd.Series  # recipients per case as text, "no recipient" when none

    @property
    def label(self) -> str:
        return " and ".join("the owner's manager" if role == OWNER_MANAGER else role for role in self.spec.roles)


def _cases(missed: pd.DataFrame, mqas: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    """Missed clocks with their met_at, their MQA's routed_at (the clock start), ended_at, name and owner
    calendar. A clock that runs after the episode's end (``quality_feedback``: a rejection ends the
    episode and starts the clock) has no ended_at here: only meeting it stops its ladder."""
    keys = ["account_id", "trigger_at"]
    extra = _mqa_starts(mqas, [*keys, "routed_at", "ended_at", "name"])
    cases = missed[[*keys, "due_at", "met_at", "owner_id", "tier"]].astype({"account_id": "object"}).copy()
    cases["trigger_at"] = _to_utc(cases["trigger_at"])
    cases = cases.merge(extra.drop_duplicates(keys), on=keys, how="left")
    cases = cases.sort_values(keys, kind="stable").reset_index(drop=True)
    for column in ("due_at", "met_at", "routed_at", "ended_at"):
        cases[column] = _to_utc(cases[column])
    if "clock" in missed and missed["clock"].isin(AFTER_EPISODE_CLOCKS).all():  # one clock's ladder at a time
        cases["ended_at"] = pd.Series(pd.NaT, index=cases.index, dtype=UTC)
    cases["name"] = cases["name"].astype("object").where(cases["name"].notna(), cases["account_id"])
    return cases.join(_owner_calendar(cases["owner_id"], users))


def _mqa_starts(mqas: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``columns`` of the MQAs with routed_at replaced by the reassignment moment when reassigned."""
    extra = mqas.reindex(columns=[*columns, "reassigned_at"]).astype({"account_id": "object"})
    extra["trigger_at"] = _to_utc(extra["trigger_at"])
    extra["routed_at"] = clock_start(extra)
    return extra.drop(columns="reassigned_at")


def _opened_at(
    cases: pd.DataFrame, level: EscalationLevel, policy: SlaPolicy, as_of: pd.Timestamp
) -> pd.Series:
    """When the level opens, or NaT when it has not (yet) opened as of ``as_of``."""
    at = _level_at(cases, level, policy)
    stopped = (cases["met_at"] < at) | (cases["ended_at"] < at)
    return at.where(at.notna() & (at <= as_of) & ~stopped)


def _level_at(cases: pd.DataFrame, level: EscalationLevel, policy: SlaPolicy) -> pd.Series:
    """When the level opens if nothing stops the ladder: its offset past its base, never before due_at."""
    base = cases["routed_at"] if level.base == "routed_at" else cases["due_at"]
    kinds = np.full(len(cases), level.after.kind, dtype="object")
    amounts = np.full(len(cases), level.after.amount)
    at = apply_windows(base, kinds, amounts, cases["zone"], cases["country"], policy)
    return at.where(at.isna() | (at >= cases["due_at"]), cases["due_at"])


def ladder_times(clocks: pd.DataFrame, mqas: pd.DataFrame, users: pd.DataFrame, policy: SlaPolicy) -> pd.DataFrame:
    """For every missed ladder clock (of every ladder), when each level would open if nothing stopped it:
    ``account_id, trigger_at, level, at`` (the moments when time alone can open a level)."""
    keys = ["account_id", "trigger_at"]
    parts = []
    for ladder in policy.ladders:
        missed = clocks[(clocks["clock"] == ladder.clock) & (clocks["status"] == "missed")]
        if missed.empty:
            continue
        cases = missed[[*keys, "due_at", "owner_id"]].astype({"account_id": "object"}).reset_index(drop=True)
        cases["trigger_at"], cases["due_at"] = _to_utc(cases["trigger_at"]), _to_utc(cases["due_at"])
        cases = cases.merge(_mqa_starts(mqas, [*keys, "routed_at"]).drop_duplicates(keys), on=keys, how="left")
        cases = cases.join(_owner_calendar(cases["owner_id"], users))
        parts += [cases[keys].assign(level=spec.level, at=_level_at(cases, spec, policy)) for spec in ladder.levels]
    if not parts:
        return pd.DataFrame({"account_id": pd.Series(dtype=object), "trigger_at": pd.Series(dtype=UTC),
                             "level": pd.Series(dtype="int64"), "at": pd.Series(dtype=UTC)})
    return pd.concat(parts, ignore_index=True)


def _recipients(
    cases: pd.DataFrame, level: EscalationLevel, users: pd.DataFrame
) -> tuple[pd.DataFrame, pd.Series]:
    """The level's recipients (every role it names) as rows ``case, to_user_id`` and as text per case."""
    parts = [_role_recipients(cases, role, users) for role in level.roles]
    rows = pd.concat([rows for rows, _ in parts], ignore_index=True).drop_duplicates()
    rows = rows.sort_values("case", kind="stable").reset_index(drop=True)
    texts = [who.where(who != "no recipient") for _, who in parts]
    who = texts[0]
    for more in texts[1:]:
        who = who.where(more.isna(), who.where(who.isna(), who + ", ").fillna("") + more)
    return rows, who.fillna("no recipient").astype("object")


def _role_recipients(cases: pd.DataFrame, role: str, users: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """One role's recipients: the active users with that role, or the owner's active manager."""
    if role != OWNER_MANAGER:
        ids = users_with_role(users, role).to_numpy()
        rows = pd.DataFrame({"case": np.repeat(cases.index.to_numpy(), len(ids)),
                             "to_user_id": np.tile(ids, len(cases))})
        return rows, pd.Series(", ".join(ids) or "no recipient", index=cases.index, dtype="object")
    people = users.reindex(columns=["user_id", "manager_id"]).dropna(subset=["user_id"])
    people = people.astype({"user_id": "object"}).drop_duplicates("user_id").set_index("user_id")
    manager = cases["owner_id"].map(people["manager_id"]).astype("string").str.strip()
    active_ids = set(active_users(users)["user_id"].dropna().astype(str))
    present = manager.isin(active_ids).fillna(False).astype(bool)
    rows = pd.DataFrame({"case": cases.index[present], "to_user_id": manager[present].astype("object")})
    return rows, manager.astype("object").where(present, "no recipient")


def _steps_taken(index: pd.Index, level: Level, earlier: list[Level]) -> pd.Series:
    """Text of the levels opened before this one, e.g. ``level 1 to revops (R1) at 2026-03-02T11:00Z``."""
    steps = pd.Series("", index=index, dtype="object")
    for previous in earlier:
        at = previous.opened[index]
        taken = at.notna() & (at <= level.opened[index])
        who = previous.who[index]
        text = f"level {previous.spec.level} to {previous.label} (" + who + ") at " + _stamp(at)
        steps = steps.where(~taken, steps + np.where(steps == "", "", "; ") + text)
    return steps.where(steps != "", "none")


def _resolution_prefix(cases: pd.DataFrame, clock: str) -> pd.Series:
    """``First touch on ACME (Tier 1) owed by U1 since 2026-03-02T11:00Z; `` (the level adds its ask)."""
    owner = cases["owner_id"].astype("object").where(cases["owner_id"].notna(), "no owner")
    return (clock.replace("_", " ").capitalize() + " on " + cases["name"].astype(str)
            + " (Tier " + cases["tier"].astype(str) + ") owed by " + owner.astype(str)
            + " since " + _stamp(cases["due_at"]) + "; ")
