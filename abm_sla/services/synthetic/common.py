"""What every part of the synthetic CRM draws with: time units, ids, the activity vocabulary, the
per-account arrays, activity rows as code arrays and the business-hours calendar of each user."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from abm_sla.domain import frames

DAY = 86_400
HOUR = 3_600
DEFAULT_START = pd.Timestamp("2026-01-01", tz="UTC")
VENDOR_SITE = "https://acme.com"
BUSINESS_EPOCH = np.datetime64("2000-01-03", "D")

SUBJECTS = {
    "email_open": ("Q1 newsletter", "ABM benchmark report 2026", "Webinar invite: speed to lead",
                   "Product update: routing rules", "Case study: how Northwind cut response time"),
    "email_click": ("Q1 newsletter", "ABM benchmark report 2026", "Webinar invite: speed to lead",
                    "Product update: routing rules"),
    "form_submit": ("Contact sales", "Demo request", "Ebook download: ABM playbook", "Pricing inquiry"),
    "webinar": ("Speed to lead: SLA masterclass", "RevOps office hours", "Intent data 101"),
    "web_visit": (),
    "call": ("Intro call", "Follow-up call", "Left voicemail"),
    "email_sent": ("Following up on your visit", "Quick question", "Re: pricing", "Resources you asked for"),
    "meeting": ("Discovery meeting", "Product demo", "Technical deep dive"),
    "linkedin_message": ("Connection request", "InMail: following up"),
    "owner_assigned": ("Owner assigned by assignment rule",),
    "ad_click": ("LinkedIn ad: SLA benchmark", "Retargeting: pricing"),
    "content_download": ("ABM playbook", "Speed-to-lead checklist"),
    "event_attended": ("RevOps summit booth", "Customer roundtable"),
    "account_research": ("Account research: buying committee", "Account research: next step"),
    "hot_flag": ("Hot account: coordinate with marketing",),
    "campaign_start": ("Q1 Tier 1 program: 1:1 ads", "Q1 Tier 1 program: executive dinner"),
}
TYPE_CODE = {name: code for code, name in enumerate(frames.ACTIVITY_TYPES)}


def _p(weights: dict | tuple) -> np.ndarray:
    values = np.asarray(list(weights.values()) if isinstance(weights, dict) else weights, dtype=float)
    return values / values.sum()


_DIGIT_BLOCKS = (48 + np.array([[i // 1000, i // 100 % 10, i // 10 % 10, i % 10] for i in range(10_000)],
                                dtype=np.uint32))


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    """``prefix`` + zero-padded 1..n as an object array of str, built without a Python loop."""
    width = -(-max(width, len(str(n))) // 4) * 4
    codes = np.empty((n, len(prefix) + width), dtype=np.uint32)
    codes[:, : len(prefix)] = np.frombuffer(prefix.encode("utf-32-le"), dtype=np.uint32)
    value = np.arange(1, n + 1, dtype=np.int64)
    for end in range(len(prefix) + width, len(prefix), -4):
        codes[:, end - 4 : end] = _DIGIT_BLOCKS[value % 10_000]
        value //= 10_000
    return codes.view(f"<U{len(prefix) + width}").ravel().astype(object)


def _lookup(values: tuple | list, index: np.ndarray) -> np.ndarray:
    """``values[index]`` as objects; index -1 gives None. Every row shares the same str objects."""
    table = np.array([*values, None], dtype=object)
    return table[index]


def _to_utc(seconds: np.ndarray) -> pd.Series:
    nanoseconds = (np.asarray(seconds, dtype=np.int64) * 1_000_000_000).view("datetime64[ns]")
    return pd.Series(pd.DatetimeIndex(nanoseconds).tz_localize("UTC"))


def _frame(columns: dict[str, object]) -> pd.DataFrame:
    """A frame over the column arrays as they are: no copy, no stacking of same-dtype columns."""
    return pd.DataFrame(columns, copy=False)


def _time_order(at: np.ndarray, span: int) -> np.ndarray:
    """Indices of the rows with 0 <= at < span, by time then position (deterministic, no stable sort)."""
    rows = np.flatnonzero((at >= 0) & (at < span))
    bits = max(len(at).bit_length(), 1)
    if int(span).bit_length() + bits > 62:
        return rows[np.argsort(at[rows], kind="stable")]
    key = (at[rows] << bits) | rows
    key.sort()
    return key & ((1 << bits) - 1)


def _seconds(stamps: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(stamps).as_unit("s").asi8


def _group_positions(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups of ``counts`` rows laid out in order: each row's group and position in it."""
    group = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    return group, np.arange(counts.sum()) - first[group]


@dataclass
class _Accounts:
    """Per-account arrays the signal generators draw from."""

    ids: np.ndarray
    offset_h: np.ndarray
    region: np.ndarray
    worker: np.ndarray  # the user index who works the account (active owner, else a regional rep)
    fit: np.ndarray  # bool: a firmographic fit (size band and ICP/target market)
    propensity: np.ndarray  # heavy-tailed engagement level, mean 1
    contact_start: np.ndarray | None = None
    n_contacts: np.ndarray | None = None
    lead: np.ndarray | None = None  # a decision maker's contact index, else a random contact


class _Calendar:
    """Business hours (Mon-Fri 09:00-17:00 local, less national holidays) per user, vectorized."""

    def __init__(self, users: pd.DataFrame, start: pd.Timestamp, days: int) -> None:
        import holidays

        years = range(start.year - 1, (start + pd.Timedelta(days=days + 400)).year + 1)
        keys = list(zip(users["time_zone"], users["country"], strict=True))
        self.calendars = sorted(set(keys))
        self.of_user = np.array([self.calendars.index(key) for key in keys])
        self.holidays = [
            np.array(sorted(holidays.country_holidays(country, years=years)), dtype="datetime64[D]")
            for _, country in self.calendars
        ]

    def add(self, base: np.ndarray, hours: np.ndarray, user: np.ndarray) -> np.ndarray:
        """UTC seconds ``hours`` business hours after ``base`` (UTC seconds) in each row's user's calendar."""
        out = np.empty(len(base), dtype=np.int64)
        calendar = self.of_user[user]
        for index, (zone, _) in enumerate(self.calendars):
            rows = calendar == index
            if rows.any():
                out[rows] = self._add(base[rows], hours[rows], zone, self.holidays[index])
        return out

    @staticmethod
    def _add(base: np.ndarray, hours: np.ndarray, zone: str, holidays: np.ndarray) -> np.ndarray:
        local = pd.DatetimeIndex(pd.to_datetime(base, unit="s", utc=True)).tz_convert(zone).tz_localize(None)
        seconds = local.as_unit("s").asi8
        day = seconds // DAY
        date = day.astype("datetime64[D]")
        index = np.busday_count(BUSINESS_EPOCH, date, holidays=holidays)
        open_day = np.is_busday(date, holidays=holidays)
        into = np.where(open_day, np.clip((seconds - day * DAY) / HOUR - 9, 0, 8), 0)
        position = index * 8 + into + hours
        whole = np.floor(position / 8).astype(np.int64)
        new_date = np.busday_offset(BUSINESS_EPOCH, whole, roll="forward", holidays=holidays)
        new_local = new_date.astype("datetime64[s]").astype(np.int64) + np.round(
            (9 + position - whole * 8) * HOUR
        ).astype(np.int64)
        stamps = pd.DatetimeIndex(new_local.astype("datetime64[s]")).tz_localize(
            zone, nonexistent="shift_forward", ambiguous="NaT"
        )
        return stamps.as_unit("s").asi8


@dataclass
class _Events:
    """Activity rows as code arrays (index -1 = none), concatenated before becoming a frame."""

    account: np.ndarray
    kind: np.ndarray
    at: np.ndarray
    contact: np.ndarray
    owner: np.ndarray
    url: np.ndarray
    subject: np.ndarray

    @classmethod
    def concat(cls, parts: list[_Events]) -> _Events:
        """One set of arrays, in compact dtypes."""
        dtypes = (np.int32, np.int8, np.int64, np.int32, np.int16, np.int8, np.int8)
        return cls(*(
            np.concatenate([getattr(part, field).astype(dtype, copy=False) for part in parts])
            for field, dtype in zip(cls.__dataclass_fields__, dtypes, strict=True)
        ))

    def keep(self, rows: np.ndarray) -> _Events:
        return _Events(*(getattr(self, f)[rows] for f in self.__dataclass_fields__))


def _draw_types(rng: np.random.Generator, mix: dict[str, int], n: int) -> np.ndarray:
    """``n`` activity type codes drawn with the weights of ``mix``."""
    return np.array([TYPE_CODE[name] for name in mix])[rng.choice(len(mix), n, p=_p(mix))]


def _subjects(rng: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    """A subject index into the flat subject list for each row (-1 where the type has none)."""
    sizes = np.array([len(SUBJECTS[name]) for name in frames.ACTIVITY_TYPES])
    offsets = np.cumsum(sizes) - sizes
    pick = offsets[kind] + (rng.random(len(kind)) * sizes[kind]).astype(np.int64)
    return np.where(sizes[kind] > 0, pick, -1)


def _first_subject(name: str) -> int:
    """The index of the type's first subject in the flat subject list."""
    return sum(len(SUBJECTS[other]) for other in frames.ACTIVITY_TYPES[:frames.ACTIVITY_TYPES.index(name)])
