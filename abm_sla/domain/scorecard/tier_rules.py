"""The tier-move rules: what they read of the activities (:class:`ActivityFacts`), each account's activity,
buying signals and engaged stakeholders, and the moves that apply as of a moment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from abm_sla.domain import frames
from abm_sla.domain.policy import SlaPolicy
from abm_sla.domain.scorecard.data import DAY, SlaData, _targets, account_dimensions, owner_names
from abm_sla.domain.scorecard.pipeline import opportunity_frame

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


def buying_signal_pages(activities: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per activity: whether it is a buying signal (a high-intent touch, or a visit of a high-intent page), and
    the high-intent page of a web visit (NA for other rows)."""
    url = activities["url"].astype("string").str.lower().fillna("")
    page = url.str.extract("(" + "|".join(map(re.escape, HIGH_INTENT_PAGES)) + ")", expand=False)
    visit = activities["type"].eq("web_visit") & page.notna()
    return activities["type"].isin(HIGH_INTENT_TOUCHES) | visit, page.where(visit)


def buying_signal_days(activities: pd.DataFrame) -> pd.Series:
    """Per account: distinct (kind, UTC day) of buying-signal activities; the kind of a web visit is its page."""
    buying, page = buying_signal_pages(activities)
    visit = page.notna()
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
