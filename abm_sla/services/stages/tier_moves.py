"""The tier-move ledger: the daily recommendations (full, or only the accounts whose candidacy can have changed
since the reference run)."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd

from abm_sla.domain import (
    frames,
    scorecard,
    tier_moves,
)
from abm_sla.domain.model import ScoringModel
from abm_sla.domain.policy import SlaPolicy
from abm_sla.errors import WarehouseError
from abm_sla.infra.shards import Shard
from abm_sla.services import incremental
from abm_sla.warehouse import Warehouse, schema, undo
from abm_sla.warehouse.view import CrmView

TIER_MOVES_KEY = "tier_moves:last_as_of"
#: What the last ledger run saw (its as-of, journal position, configuration and the first activity on record):
#: the next day's run recomputes only the accounts whose candidacy can have changed since.
TIER_MOVES_REFERENCE_KEY = "tier_moves:reference"
#: The CRM kinds the tier-move rules read.
TIER_MOVE_KINDS = ("accounts", "contacts", "activities", "intent_signals", "opportunities")
#: With more than this share of the accounts to recompute, the ledger reads every account (as cheap).
TIER_MOVES_WHOLE_SHARE = 0.5
#: The columns of the accounts and opportunities the ledger reads (its rules, sales' decisions); the others come
#: back empty.
LEDGER_COLUMNS = {"accounts": ("account_id", "name", "owner_id", "tier", "created_at", "updated_at"),
                  "opportunities": ("account_id", "amount", "created_at", "close_date", "is_closed")}
#: The rules compare inactive days rounded to a tenth: a crossing may come this much early or late.
ROUNDING = pd.Timedelta(hours=2)


def record_tier_moves(warehouse: Warehouse, as_of: pd.Timestamp, policy: SlaPolicy, model: ScoringModel,
                      run_id: str = "", full: bool = False) -> dict:
    """Advance the tier-move ledger as of ``as_of``: decide pending recommendations from the accounts' tiers,
    record the new ones (:mod:`abm_sla.domain.tier_moves`); undoable with the run. Once per UTC day: a later run the
    same day (``sla-monitor`` runs every 15 minutes) skips it. No rules in the policy: no-op.

    Incremental: against the ledger run before (same rules, earlier, the ledger untouched since), only the
    accounts whose candidacy can have changed are recomputed (:func:`tier_move_accounts`); every other
    account's candidacy is what that run saw, and that run recorded it or found it blocked by a
    recommendation still pending or a decline still quiet. The ledger is the same as ``full`` gives."""
    rules = policy.targets.tier_moves if policy.targets else None
    last = warehouse.get_state(TIER_MOVES_KEY)
    if rules is None or (last and pd.Timestamp(last).normalize() == as_of.normalize() and as_of >= pd.Timestamp(last)):
        return {"tier_moves_recommended": 0, "tier_moves_decided": 0}
    view = CrmView(warehouse)
    reference = {"as_of": as_of.isoformat(), "journal_seq": warehouse.journal_position(),
                 "version": incremental.config_version(rules, model)}  # the position before anything is read
    table = schema.tier_move_recommendations
    stored = tier_moves.conform(warehouse.read_table(table))
    accounts = view.read_kind("accounts", columns=LEDGER_COLUMNS["accounts"])
    opportunities = view.read_kind("opportunities", columns=LEDGER_COLUMNS["opportunities"])
    decided = tier_moves.decide(stored, accounts, as_of, rules)
    first_at = None if view.unified else warehouse.first_activity_at(as_of.to_pydatetime())
    reference["first_at"] = None if first_at is None or pd.isna(first_at) else first_at.isoformat()
    chosen = None
    if not full and not view.unified:
        before = _tier_move_reference(warehouse, last, reference, stored, as_of)
        if before is not None:
            chosen = tier_move_accounts(warehouse, before, reference["journal_seq"], as_of, rules, accounts,
                                        opportunities, stored, decided, first_at)
        if chosen is not None and len(chosen) > TIER_MOVES_WHOLE_SHARE * len(accounts):
            chosen = None
    intent, facts = _tier_move_window(view, as_of, rules, chosen, first_at)
    candidates = _tier_move_candidates(view, as_of, policy, model, accounts, opportunities, intent, facts, chosen)
    after = tier_moves.record(decided, candidates, as_of, rules)
    merged = after.merge(stored, on=["account_id", "recommended_at"], how="left", suffixes=("", "_was"),
                         indicator=True)
    changed = merged["_merge"].eq("left_only") | merged["decision"].ne(merged["decision_was"]) | merged[
        "evaluated_at"].ne(merged["evaluated_at_was"])
    rows = after[changed.to_numpy()].assign(run_id=run_id or None)
    stamped = (merged["_merge"].eq("both") & merged["decision"].eq(tier_moves.PENDING)
               & merged["decision_was"].eq(tier_moves.PENDING) & changed).to_numpy()[changed.to_numpy()]
    with warehouse.engine.begin() as connection:
        undo.remember(warehouse, connection, run_id, table, rows.loc[~stamped, ["account_id", "recommended_at"]])
        warehouse.upsert_frame(connection, table, rows[~stamped])
        _stamp_pending(warehouse, connection, as_of, run_id, rows.loc[stamped, ["account_id", "recommended_at"]])
        for key, value in ((TIER_MOVES_KEY, as_of.isoformat()), (TIER_MOVES_REFERENCE_KEY, json.dumps(reference))):
            undo.remember_state(connection, run_id, key)
            warehouse.set_state(connection, key, value)
    decided_count = int((merged["decision"].ne(tier_moves.PENDING) & merged["decision_was"].eq(tier_moves.PENDING))
                        .sum())
    return {"tier_moves_recommended": int(merged["_merge"].eq("left_only").sum()), "tier_moves_decided": decided_count,
            "tier_moves_accounts_recomputed": len(accounts) if chosen is None else len(chosen)}


def _stamp_pending(warehouse: Warehouse, connection, as_of: pd.Timestamp, run_id: str, keys: pd.DataFrame) -> None:
    """Stamp this run on the recommendations still pending that it evaluated (``evaluated_at``, ``run_id``): the
    pending ones made by ``as_of`` not stamped at it yet, after the rows that changed otherwise are written (those
    decided now are no longer pending). One statement instead of every such row written again, and one undo-log
    entry of their stamps before (:func:`undo.remember_columns`; in a backfill, read only while some is not logged
    yet); ``keys``: the rows :func:`tier_moves.decide` stamped (another count means the ledger changed since it
    was read)."""
    if keys.empty:
        return
    table, moment = schema.tier_move_recommendations, as_of.to_pydatetime()
    evaluated = [table.c.decision == tier_moves.PENDING, table.c.recommended_at <= moment,
                 table.c.evaluated_at != moment]
    if run_id and undo.unlogged_columns(run_id, table, keys).any():
        before = warehouse.select_frame([table.c.account_id, table.c.recommended_at, table.c.evaluated_at,
                                         table.c.run_id], evaluated, connection)
        undo.remember_columns(connection, run_id, table, before)
    stamped = connection.execute(table.update().where(*evaluated).values(evaluated_at=moment,
                                                                         run_id=run_id or None)).rowcount
    if stamped != len(keys):
        raise WarehouseError(f"the tier-move ledger changed while it was advanced: {stamped} pending "
                             f"recommendations to stamp as of {as_of.isoformat()}, {len(keys)} expected")


def _tier_move_window(view: CrmView, as_of: pd.Timestamp, rules, chosen: set[str] | None,
                      first_at: pd.Timestamp | None) -> tuple[pd.DataFrame, scorecard.ActivityFacts]:
    """The window's intent rows that may count and its activity facts (:meth:`CrmView.activity_facts`, the first
    and last activities left to :func:`_tier_move_candidates`): of every account, or of the ``chosen`` ones."""
    window = scorecard.tier_move_window(rules)
    since, until = (as_of - window).to_pydatetime(), as_of.to_pydatetime()
    ids = None if chosen is None else sorted(chosen)
    intent = view.read_kind("intent_signals", since=since, until=until, min_score=scorecard.tier_move_intent_min(rules),
                            columns=("account_id", "topic", "score", "observed_at"), accounts=ids)
    if ids is None:
        return intent, view.activity_facts(as_of, window, extent=False)
    buying = view.warehouse.read_kind(
        "activities", since=since, until=until, types=(*scorecard.HIGH_INTENT_TOUCHES, "web_visit"),
        columns=("account_id", "type", "url", "occurred_at"), url_contains={"web_visit": scorecard.HIGH_INTENT_PAGES},
        accounts=ids)
    pairs = view.warehouse.activity_contacts(since, until, frames.MARKETING_TOUCHES, accounts=ids)
    extent = pd.DataFrame({"first_at": pd.Series(dtype="datetime64[ns, UTC]"),
                           "last_at": pd.Series(dtype="datetime64[ns, UTC]")}, index=pd.Index([], dtype=object))
    return intent, scorecard.ActivityFacts(extent, buying[["account_id", "type", "url", "occurred_at"]], pairs,
                                           first_at=first_at)


def _tier_move_candidates(view: CrmView, as_of: pd.Timestamp, policy: SlaPolicy, model: ScoringModel,
                          accounts: pd.DataFrame, opportunities: pd.DataFrame, intent: pd.DataFrame,
                          facts: scorecard.ActivityFacts, chosen: set[str] | None) -> pd.DataFrame:
    """``scorecard.tier_moves`` of every account (``chosen`` None) or of the ``chosen`` ones only: then their
    first and last activity and the titles of their engaged contacts are read by key."""
    if chosen is None:
        if not view.unified:
            extent = view.warehouse.activity_extent(as_of.to_pydatetime())
            facts = dataclasses.replace(facts, extent=extent.set_index("account_id")[["first_at", "last_at"]])
        contacts = view.read_kind("contacts", columns=("contact_id", "account_id", "title"))
    else:
        def mine(frame: pd.DataFrame) -> pd.DataFrame:
            return frame[frame["account_id"].astype(str).isin(chosen)]

        last = view.warehouse.last_activities(as_of.to_pydatetime(), sorted(chosen)).set_index("account_id")
        extent = last.assign(first_at=pd.NaT)[["first_at", "last_at"]]  # facts.first_at stands for the first ones
        facts = dataclasses.replace(facts, extent=extent)
        accounts, opportunities = mine(accounts), mine(opportunities)
        contacts = view.warehouse.contacts_by_id(facts.touch_pairs["contact_id"].astype(str).unique())
    data = scorecard.SlaData.of(accounts=accounts, opportunities=opportunities, contacts=contacts,
                                intent_signals=intent)
    return scorecard.tier_moves(data, as_of, policy, model.decision_maker_pattern, facts=facts)


def _tier_move_reference(warehouse: Warehouse, last: str | None, now: dict, stored: pd.DataFrame,
                         as_of: pd.Timestamp) -> dict | None:
    """The last ledger run's reference when this run can build on it: same rules and model, the same first
    activity on record, earlier than ``as_of``, and no ledger row newer than it (else None: recompute all)."""
    text = warehouse.get_state(TIER_MOVES_REFERENCE_KEY)
    if not text or not last:
        return None
    before = json.loads(text)
    reference_as_of = pd.Timestamp(before["as_of"])
    if (before["as_of"] != last or before["version"] != now["version"] or before["first_at"] != now["first_at"]
            or reference_as_of >= as_of):
        return None
    latest = stored[["recommended_at", "decided_at", "evaluated_at"]].max().max() if len(stored) else pd.NaT
    if pd.notna(latest) and latest > reference_as_of:
        return None
    return {**before, "as_of": reference_as_of}


def tier_move_accounts(warehouse: Warehouse, reference: dict, journal_seq: int, as_of: pd.Timestamp, rules,
                       accounts: pd.DataFrame,
                       opportunities: pd.DataFrame, stored: pd.DataFrame, decided: pd.DataFrame,
                       first_at: pd.Timestamp | None) -> set[str] | None:
    """The accounts whose tier-move candidacy or ledger standing can differ from the reference run's
    (``T0``) at ``as_of`` (``T``); None: every account. A superset is harmless, a missing account is not:

    - rows stored since (the journal) of the kinds the rules read; for contacts, also the accounts whose
      window touches are by those accounts' contacts (a title counts for the account touched);
    - intent and opportunities entering the window, ``(T0, T]``, and opportunities closing then; activities
      entering it that can count or end an inactivity (:func:`_tier_move_entering`);
      Signals *leaving* the window need no recompute: they only lower counts the rules compare with ``>=``,
      so they can end a candidacy but never start one, nor unmask a later rule (the two promotions, the
      last rules, need different tiers);
    - inactivity crossing a rule's limit ``L``: the last activity, or an account's creation, in ``(T0 - L, T - L]``
      (two hours wider each side: days are rounded to 0.1); when the activity records begin in it, every
      account without activity crosses: None;
    - the ledger: recommendations decided now, and declines whose quiet period ends in ``(T0, T]``.
    """
    reference_as_of = reference["as_of"]
    journal = warehouse.read_journal(reference["journal_seq"], journal_seq, kinds=TIER_MOVE_KINDS)
    if journal["account_id"].isna().any():
        return None
    chosen = set(journal["account_id"].astype(str))
    touched = journal.loc[journal["kind"].eq("contacts"), "account_id"]
    if len(touched):
        window = scorecard.tier_move_window(rules)
        people = warehouse.contact_ids(touched.astype(str).unique())
        pairs = warehouse.activity_contacts((as_of - window).to_pydatetime(), as_of.to_pydatetime(),
                                            frames.MARKETING_TOUCHES, contacts=people.tolist())
        chosen |= set(pairs["account_id"].astype(str))
    whole = Shard(0, 1)
    chosen |= _tier_move_entering(warehouse, reference_as_of, as_of, rules, accounts)
    chosen |= incremental.accounts_with_events(warehouse, "intent_signals", reference_as_of, as_of, whole,
                                               min_score=scorecard.tier_move_intent_min(rules))
    opps = opportunities.assign(account_id=opportunities["account_id"].astype(str))
    for column in ("created_at", "close_date"):
        chosen |= set(opps.loc[(opps[column] > reference_as_of) & (opps[column] <= as_of), "account_id"])
    created = accounts["created_at"]
    for limit in tier_moves.inactivity_limits(rules):
        lo, hi = reference_as_of - limit - ROUNDING, as_of - limit + ROUNDING
        if first_at is not None and lo < first_at <= hi:  # every account older than the records crosses now
            return None
        chosen |= warehouse.accounts_going_quiet(lo.to_pydatetime(), hi.to_pydatetime(), as_of.to_pydatetime())
        chosen |= set(accounts.loc[(created > lo) & (created <= hi), "account_id"].astype(str))
    return chosen | tier_moves.ledger_changes(stored, decided, reference_as_of, as_of, rules)


def _tier_move_entering(warehouse: Warehouse, since: pd.Timestamp, as_of: pd.Timestamp, rules,
                        accounts: pd.DataFrame) -> set[str]:
    """Of the accounts with live activities in ``(since, as_of]``, those whose candidacy they can change: one
    counts toward a promotion (:func:`tier_moves.entering_may_count`), or the account may have been inactive
    at ``since`` (:func:`tier_moves.inactive_at`). Another account's new activities leave it as active as it
    was, with the same counts."""
    entering = warehouse.read_kind("activities", since=since.to_pydatetime(), until=as_of.to_pydatetime(),
                                   columns=("account_id", "type", "url", "occurred_at"))
    entering = entering[entering["account_id"].notna()]
    counting = tier_moves.entering_may_count(entering, accounts)
    others = set(entering["account_id"].astype(str)) - counting
    last = warehouse.last_activities(since.to_pydatetime(), sorted(others)) if others else None
    return counting | (tier_moves.inactive_at(others, last, since, rules, ROUNDING) if others else set())
