"""The MQA hand-off replay (SPEC section 4), pure and set-based.

Every signal time in the run's window is scored once with ``scoring.score_at``
(passing at t does not depend on earlier episodes). Episodes are then chained in
rounds, each vectorized over all accounts: per account the earliest passing time
after the end of its previous episode fires; an episode still open at ``as of``
stops the account; an ended one lets the next round look strictly after its end.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from abm_sla.domain import scoring
from abm_sla.domain.frames import to_utc
from abm_sla.domain.marketing import on_list_at
from abm_sla.domain.model import CATEGORIES, ScoringModel, normalize_text

MQA_COLUMNS = ["account_id", "trigger_at", *CATEGORIES, "total", "reasons", "ended_at"]
END_STATUSES = ("rejected", "nurture")


def replay_handoffs(
    accounts: pd.DataFrame,
    contacts: pd.DataFrame,
    activities: pd.DataFrame,
    intent_signals: pd.DataFrame,
    status_changes: pd.DataFrame,
    prior_mqas: pd.DataFrame,
    model: ScoringModel,
    as_of: pd.Timestamp,
    end_statuses: Iterable[str] = END_STATUSES,
    listed: pd.DataFrame | None = None,
    after: pd.Series | None = None,
) -> pd.DataFrame:
    """The MQAs this run fires (MQA_COLUMNS), scored as of their ``trigger_at``; none already stored.

    Needs signals back to ``as_of - 2 * window`` (a candidate at the window's start has its own window).
    With ``listed`` (target account list rows, policy ``target_account_list.only_listed``), an account
    passes only at moments it is on the list (:func:`abm_sla.domain.marketing.on_list_at`).
    ``after`` (account id → time) limits those accounts' candidate times to later ones: for an account
    whose data did not change since a replay as of that time stored its MQAs, only a later signal can
    fire (the caller's guarantee), and its signals are needed back to that time minus the window only.
    """
    as_of = scoring.utc_timestamp(as_of)
    end_statuses = tuple(end_statuses)
    candidates = candidate_times(accounts, activities, intent_signals, model, as_of)
    if after is not None and len(after) and len(candidates):
        bound = candidates["account_id"].map(after)
        candidates = candidates[(bound.isna() | (candidates["at"] > bound)).to_numpy(dtype=bool)].reset_index(
            drop=True)
    scored = scoring.score_at(
        candidates, accounts, contacts, activities, intent_signals, model, with_reasons=False
    )
    passing = scored.loc[scored["qualified"], ["account_id", "at"]]
    if listed is not None:
        passing = passing[on_list_at(listed, passing["account_id"], passing["at"]).to_numpy(dtype=bool)]
    prior = _prior_state(prior_mqas, status_changes, as_of, end_statuses)
    fired = _chain(passing, prior, status_changes, as_of, end_statuses)
    fired = _without(fired, prior_mqas)
    if fired.empty:
        return empty_mqas()
    return _scored_at_trigger(fired, accounts, contacts, activities, intent_signals, model)


def replay_steps(
    accounts: pd.DataFrame,
    contacts: pd.DataFrame,
    activities: pd.DataFrame,
    intent_signals: pd.DataFrame,
    status_changes: pd.DataFrame,
    prior_mqas: pd.DataFrame,
    model: ScoringModel,
    steps: Iterable[pd.Timestamp],
    end_statuses: Iterable[str] = END_STATUSES,
    listed: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """What :func:`replay_handoffs` fires at each of ``steps`` in turn (ascending), each run seeing the MQAs
    stored before it and those the earlier steps fired: MQA_COLUMNS plus ``step`` (the as-of that fires it,
    and ``ended_at`` as known then).

    Whether a signal time passes does not depend on the run's as-of (its window ends at the signal), so
    every candidate time of every step is scored once; each step then chains its window's passing times
    as a run at that as-of does. ``accounts`` carries ``created_at``: an account counts from its creation.
    Needs signals back to the first step minus twice the window.
    """
    steps = [scoring.utc_timestamp(step) for step in steps]
    end_statuses = tuple(end_statuses)
    if not steps:
        return empty_mqas().assign(step=pd.Series(dtype="datetime64[ns, UTC]"))
    everyone = candidate_times(accounts, activities, intent_signals, model, steps[-1], since=steps[0] - model.window)
    scored = scoring.score_at(everyone, accounts, contacts, activities, intent_signals, model, with_reasons=False)
    passing = scored.loc[scored["qualified"], ["account_id", "at"]].reset_index(drop=True)
    if listed is not None:
        passing = passing[on_list_at(listed, passing["account_id"], passing["at"]).to_numpy(dtype=bool)]
    at = passing["at"].to_numpy(dtype="datetime64[ns]")
    counts_from = _counts_from(_created_at(accounts), passing["account_id"])
    prior, fired = _keys(prior_mqas), []
    for as_of in steps:
        moment = as_of.tz_convert("UTC").tz_localize(None).to_datetime64()
        window = passing[(at > moment - model.window.to_timedelta64()) & (at <= moment) & (counts_from <= moment)]
        state = _prior_state(prior, status_changes, as_of, end_statuses)
        new = _without(_chain(window, state, status_changes, as_of, end_statuses), prior)
        if len(new):
            fired.append(new.assign(step=as_of))
            prior = pd.concat([prior, _keys(new)], ignore_index=True)
    if not fired:
        return empty_mqas().assign(step=pd.Series(dtype="datetime64[ns, UTC]"))
    fired = pd.concat(fired, ignore_index=True)
    out = _scored_at_trigger(fired, accounts, contacts, activities, intent_signals, model)
    return out.assign(step=fired["step"].to_numpy())


def _scored_at_trigger(fired: pd.DataFrame, accounts: pd.DataFrame, contacts: pd.DataFrame,
                       activities: pd.DataFrame, intent_signals: pd.DataFrame, model: ScoringModel) -> pd.DataFrame:
    """The ``fired`` episodes (``account_id, trigger_at, ended_at``) as MQA_COLUMNS, scored as of their trigger."""
    rescored = scoring.score_at(
        fired.rename(columns={"trigger_at": "at"}), accounts, contacts, activities, intent_signals, model
    )
    out = rescored.rename(columns={"at": "trigger_at"}).assign(ended_at=fired["ended_at"].to_numpy())
    return out[MQA_COLUMNS]


def _counts_from(created: pd.Series, accounts: pd.Series) -> np.ndarray:
    """Per row of ``accounts``: from when the account counts (its creation; unknown: always; an id with several
    rows: the earliest), NaT for an account not in ``created`` (never)."""
    always = pd.Timestamp.min.tz_localize("UTC")
    earliest = created.fillna(always).groupby(level=0).min()
    return accounts.map(earliest).to_numpy(dtype="datetime64[ns]")


def _created_at(accounts: pd.DataFrame) -> pd.Series:
    """Account id → creation time (NaT: unknown, counts as always there)."""
    ids = scoring.id_strings(accounts["account_id"]).to_numpy()
    if "created_at" not in accounts:
        return pd.Series(pd.NaT, index=pd.Index(ids), dtype="datetime64[ns, UTC]")
    return pd.Series(_utc(accounts["created_at"]).array, index=pd.Index(ids)).astype("datetime64[ns, UTC]")


def episode_ends(
    mqas: pd.DataFrame,
    status_changes: pd.DataFrame,
    as_of: pd.Timestamp,
    end_statuses: Iterable[str] = END_STATUSES,
) -> pd.Series:
    """Per MQA (index of ``mqas``): the first change to an end status in ``[trigger_at, as_of]``, else NaT."""
    as_of = scoring.utc_timestamp(as_of)
    ends = {normalize_text(status) for status in end_statuses}
    left = pd.DataFrame({
        "row": np.arange(len(mqas)),
        "account_id": scoring.id_strings(mqas["account_id"]).to_numpy(),
        "trigger_at": _utc(mqas["trigger_at"]).array,
    }).astype({"trigger_at": "datetime64[ns, UTC]"})
    changes = pd.DataFrame({
        "account_id": scoring.id_strings(status_changes["account_id"]).to_numpy(),
        "ended_at": _utc(status_changes["changed_at"]).array,
        "status": status_changes["status"].astype("string").str.strip().str.lower().to_numpy(),
    }).astype({"ended_at": "datetime64[ns, UTC]"})
    changes = changes[changes["status"].isin(ends) & (changes["ended_at"] <= as_of)
                      & changes["ended_at"].notna() & changes["account_id"].notna()]
    valid = left["trigger_at"].notna() & left["account_id"].notna()
    matched = pd.merge_asof(
        left[valid].sort_values("trigger_at"), changes[["account_id", "ended_at"]].sort_values("ended_at"),
        left_on="trigger_at", right_on="ended_at", by="account_id", direction="forward",
    )
    result = pd.Series(pd.NaT, index=mqas.index, dtype="datetime64[ns, UTC]", name="ended_at")
    result.iloc[matched["row"].to_numpy()] = matched["ended_at"].array
    return result


def candidate_times(
    accounts: pd.DataFrame,
    activities: pd.DataFrame,
    intent_signals: pd.DataFrame,
    model: ScoringModel,
    as_of: pd.Timestamp,
    since: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Distinct (account_id, at) signal times in ``(as_of - window, as_of]`` (``since`` instead of
    ``as_of - window`` if given), sorted.

    Signals are marketing touches (and any activity type the model's rules count) and intent rows.
    """
    known = set(scoring.id_strings(accounts["account_id"]).dropna())
    types = scoring.normalized(activities["type"])
    touches = activities[types.isin(model.signal_activity_types).to_numpy(dtype=bool)]
    times = pd.concat([
        pd.DataFrame({"account_id": scoring.id_strings(touches["account_id"]).to_numpy(),
                      "at": _utc(touches["occurred_at"]).array}),
        pd.DataFrame({"account_id": scoring.id_strings(intent_signals["account_id"]).to_numpy(),
                      "at": _utc(intent_signals["observed_at"]).array}),
    ], ignore_index=True).astype({"at": "datetime64[ns, UTC]"})
    since = as_of - model.window if since is None else since
    inside = (times["at"] > since) & (times["at"] <= as_of) & times["account_id"].isin(known)
    times = times[inside].drop_duplicates()
    return times.sort_values(["account_id", "at"]).reset_index(drop=True)


def _chain(
    passing: pd.DataFrame,
    prior: pd.DataFrame,
    status_changes: pd.DataFrame,
    as_of: pd.Timestamp,
    end_statuses: tuple[str, ...],
) -> pd.DataFrame:
    """Fire episodes round by round; ``prior`` gives per account ``after`` (NaT: none) and ``blocked``."""
    state = passing.merge(prior, on="account_id", how="left")
    state = state[~state["blocked"].eq(True)].drop(columns="blocked")
    state = state.sort_values(["account_id", "at"])
    fired = []
    while not state.empty:
        eligible = state[state["after"].isna() | (state["at"] > state["after"])]
        triggers = eligible.groupby("account_id", sort=False).head(1).rename(columns={"at": "trigger_at"})
        if triggers.empty:
            break
        triggers = triggers[["account_id", "trigger_at"]].reset_index(drop=True)
        triggers["ended_at"] = episode_ends(triggers, status_changes, as_of, end_statuses)
        fired.append(triggers)
        closed = triggers.loc[triggers["ended_at"].notna(), ["account_id", "ended_at"]]
        closed = closed.rename(columns={"ended_at": "after"})
        state = state.drop(columns="after").merge(closed, on="account_id")
    if not fired:
        return pd.DataFrame({"account_id": pd.Series(dtype=object),
                             "trigger_at": pd.Series(dtype="datetime64[ns, UTC]"),
                             "ended_at": pd.Series(dtype="datetime64[ns, UTC]")})
    return pd.concat(fired, ignore_index=True).sort_values(["trigger_at", "account_id"], ignore_index=True)


def _prior_state(
    prior_mqas: pd.DataFrame, status_changes: pd.DataFrame, as_of: pd.Timestamp, end_statuses: tuple[str, ...]
) -> pd.DataFrame:
    """Per account with an MQA by ``as_of``: its latest episode's end (``after``) and ``blocked`` (open)."""
    prior = _keys(prior_mqas)
    prior = prior[prior["trigger_at"] <= as_of]
    latest = prior.sort_values("trigger_at").drop_duplicates("account_id", keep="last").reset_index(drop=True)
    after = episode_ends(latest, status_changes, as_of, end_statuses)
    return pd.DataFrame({"account_id": latest["account_id"], "after": after, "blocked": after.isna()})


def _without(fired: pd.DataFrame, prior_mqas: pd.DataFrame) -> pd.DataFrame:
    """``fired`` less the MQAs already stored (same account_id and trigger_at) and those that would overlap
    a stored later one.

    A stored MQA triggered after a fired one comes from a run with a later ``as_of`` (a backfill
    running behind live runs): the fired episode may only open if it is known to end before that
    MQA's trigger, so no two episodes of an account ever overlap.
    """
    known = _keys(prior_mqas)
    merged = fired.merge(known.assign(_known=True), on=["account_id", "trigger_at"], how="left")
    new = merged[merged["_known"].isna()].drop(columns="_known").reset_index(drop=True)
    if new.empty or known.empty:
        return new
    later = pd.merge_asof(
        new[["account_id", "trigger_at"]].reset_index().sort_values("trigger_at"),
        known.rename(columns={"trigger_at": "later_trigger"}).sort_values("later_trigger"),
        left_on="trigger_at", right_on="later_trigger", by="account_id",
        direction="forward", allow_exact_matches=False,
    ).set_index("index")["later_trigger"].reindex(new.index)
    overlaps = later.notna() & (new["ended_at"].isna() | (new["ended_at"] >= later))
    return new[~overlaps].reset_index(drop=True)


def _keys(mqas: pd.DataFrame) -> pd.DataFrame:
    keys = pd.DataFrame({
        "account_id": scoring.id_strings(mqas["account_id"]).to_numpy(),
        "trigger_at": _utc(mqas["trigger_at"]).array,
    }).astype({"trigger_at": "datetime64[ns, UTC]"})
    return keys.dropna().drop_duplicates()


def _utc(values: pd.Series) -> pd.Series:
    return to_utc(pd.Series(values).reset_index(drop=True))


def empty_mqas() -> pd.DataFrame:
    frame = pd.DataFrame({column: pd.Series(dtype=object) for column in MQA_COLUMNS})
    for column in (*CATEGORIES, "total"):
        frame[column] = pd.Series(dtype=np.int64)
    for column in ("trigger_at", "ended_at"):
        frame[column] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame
