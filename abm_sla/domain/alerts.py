"""Breach alerts: each new escalation, once per MQA, clock and level, as a message to people (pure).

An escalation is stored once per recipient; an alert is one message per escalation *level* — the
account, the clock that was missed and when it was due, who owes what (the owner and the resolution
the ladder asks for), who it goes to, the steps already taken, and a link to the run. The daily digest
is one message a UTC day with the escalations opened in the 24 hours before it.

What has been sent is kept by the caller (the warehouse's ``alert_log``), keyed by :data:`ALERT_KEY`;
:func:`due_alerts` leaves those out, and those opened longer ago than the policy's ``max_age_hours``
(a backfill of last quarter sends nothing; turning alerts on does not page for old breaches).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from abm_sla.domain.scorecard import normalize_tier

ALERT_KEY = ["account_id", "trigger_at", "clock", "level", "owner_id"]  # a new owner's ladder is its own
DIGEST_CLOCK = "digest"  # the alert_log key of a digest: account "", trigger_at the UTC day, level 0, owner ""
DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Alert:
    """One message: its log key (:data:`ALERT_KEY`), a subject and a body."""

    account_id: str
    trigger_at: pd.Timestamp
    clock: str
    level: int
    owner_id: str
    subject: str
    body: str

    @property
    def key(self) -> tuple[str, pd.Timestamp, str, int, str]:
        return (self.account_id, self.trigger_at, self.clock, self.level, self.owner_id)


def due_alerts(escalations: pd.DataFrame, sent: pd.DataFrame, now: pd.Timestamp, max_age: pd.Timedelta) -> pd.DataFrame:
    """The escalation rows whose level has not been alerted yet (``sent`` holds :data:`ALERT_KEY` rows)
    and that opened at most ``max_age`` before ``now``, one row per recipient, ordered by opening."""
    fresh = escalations[(escalations["opened_at"] > now - max_age) & (escalations["opened_at"] <= now)]
    if fresh.empty:
        return fresh
    done = fresh[ALERT_KEY].merge(sent[ALERT_KEY].drop_duplicates(), on=ALERT_KEY, how="left", indicator=True)
    return fresh[(done["_merge"] == "left_only").to_numpy()].sort_values(["opened_at", *ALERT_KEY], kind="stable")


def escalation_alerts(due: pd.DataFrame, accounts: pd.DataFrame, users: pd.DataFrame, link: str | None) -> list[Alert]:
    """One :class:`Alert` per escalation level in ``due`` (recipients gathered), in order of opening."""
    names, account_rows = _user_names(users), _account_rows(accounts)
    alerts = []
    for key, rows in due.groupby(ALERT_KEY, sort=False, dropna=False):
        account_id, trigger_at, clock, level, owner_id = key
        first = rows.iloc[0]
        account = _account_text(account_rows, account_id)
        clock_text = clock.replace("_", " ")
        subject = f"SLA escalation level {level}: {clock_text} missed on {account}"
        owner = _named(names, owner_id)
        lines = [
            subject,
            f"MQA triggered {_when(trigger_at)}; level {level} opened {_when(first['opened_at'])}.",
            f"Owed by {owner}: {first.get('resolution') or 'respond to the MQA'}.",
            "To: " + ", ".join(_named(names, user) for user in dict.fromkeys(rows["to_user_id"])),
        ]
        if isinstance(first.get("steps_taken"), str) and first["steps_taken"].strip():
            lines.append(f"Steps already taken: {first['steps_taken'].strip()}")
        if link:
            lines.append(f"Run: {link}")
        alerts.append(Alert(str(account_id), pd.Timestamp(trigger_at), str(clock), int(level), str(owner_id or ""),
                            subject, "\n".join(lines)))
    return alerts


def digest_alert(escalations: pd.DataFrame, accounts: pd.DataFrame, users: pd.DataFrame, day: pd.Timestamp,
                 link: str | None) -> Alert:
    """The digest of UTC ``day``: the escalation levels opened in the 24 hours before it, per clock and level,
    each with its account and owner (an empty day says so: silence would look like a broken feed)."""
    opened = escalations[(escalations["opened_at"] >= day - DAY) & (escalations["opened_at"] < day)]
    levels = opened.drop_duplicates(ALERT_KEY).sort_values(["clock", "level", "opened_at", "account_id"])
    subject = f"SLA escalations digest {(day - DAY).date()}: {len(levels)} opened"
    lines = [subject]
    names, account_rows = _user_names(users), _account_rows(accounts)
    for (clock, level), rows in levels.groupby(["clock", "level"], sort=False):
        lines.append(f"{str(clock).replace('_', ' ')}, level {level}: {len(rows)}")
        lines += [f"- {_account_text(account_rows, row.account_id)}, owner {_named(names, row.owner_id)}, "
                  f"opened {_when(row.opened_at)}" for row in rows.itertuples()]
    if levels.empty:
        lines.append("No escalation opened.")
    if link:
        lines.append(f"Run: {link}")
    return Alert("", day, DIGEST_CLOCK, 0, "", subject, "\n".join(lines))


def digest_day(now: pd.Timestamp) -> pd.Timestamp:
    """The UTC day whose digest is due at ``now`` (the start of the current UTC day)."""
    return now.tz_convert("UTC").normalize()


def _user_names(users: pd.DataFrame) -> pd.Series:
    if users.empty:
        return pd.Series(dtype="object")
    return users.drop_duplicates("user_id").set_index("user_id")["name"]


def _account_rows(accounts: pd.DataFrame) -> pd.DataFrame:
    """Accounts by id with their name and tier (normalized: missing or unknown is Tier 3)."""
    rows = accounts.drop_duplicates("account_id").set_index("account_id")
    return rows.assign(tier=normalize_tier(rows["tier"]) if len(rows) else rows.get("tier"))


def _named(names: pd.Series, user_id: object) -> str:
    if not isinstance(user_id, str) or not user_id:
        return "nobody (no owner)"
    name = names.get(user_id)
    return f"{name} ({user_id})" if isinstance(name, str) and name.strip() else user_id


def _account_text(accounts: pd.DataFrame, account_id: str) -> str:
    if account_id not in accounts.index:
        return str(account_id)
    row = accounts.loc[account_id]
    name = row.get("name")
    label = f"{account_id}, Tier {row['tier']}"
    return f"{name} ({label})" if isinstance(name, str) and name.strip() else label


def _when(moment: object) -> str:
    return pd.Timestamp(moment).tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")
