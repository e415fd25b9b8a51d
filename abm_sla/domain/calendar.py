"""Business calendar (SPEC section 6), vectorized over arrays of moments.

Business hours are the policy's opening days and hours in each row's local time
zone, less the national public holidays of the row's country (``holidays``
package; an unknown or missing country has none; a missing or unknown time zone
is UTC). Per (time zone, country) group the business days covering the needed
dates become UTC ``[open, close)`` intervals with a running total of business
time, so adding or measuring business time is two ``np.searchsorted`` calls.
Opening hours are local wall time, so DST changes are handled by construction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import holidays
import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from abm_sla.domain.policy.clocks import BusinessHours

NS_PER_HOUR = 3_600_000_000_000
NAT = np.iinfo(np.int64).min
MAX_SPAN_DAYS = 366 * 50

Labels = pd.Series | str | None


@dataclass(frozen=True)
class Intervals:
    """Business intervals of one (time zone, country) group, as int64 UTC nanoseconds."""

    opens: np.ndarray
    closes: np.ndarray
    cum_end: np.ndarray  # business ns from the first open to each close

    @property
    def cum_start(self) -> np.ndarray:
        return self.cum_end - (self.closes - self.opens)

    @property
    def total(self) -> int:
        return int(self.cum_end[-1]) if len(self.cum_end) else 0

    def position(self, moments: np.ndarray) -> np.ndarray:
        """Business ns elapsed from the first open to each moment."""
        index = np.searchsorted(self.opens, moments, side="right") - 1
        safe = np.clip(index, 0, None)
        within = np.minimum(moments - self.opens[safe], self.closes[safe] - self.opens[safe])
        return np.where(index >= 0, self.cum_start[safe] + within, 0)


def add_business_hours(
    starts: pd.Series,
    hours: pd.Series | float,
    time_zones: Labels,
    countries: Labels,
    business_hours: BusinessHours,
) -> pd.Series:
    """``starts`` plus ``hours`` business hours, per row in its zone/country calendar.

    Counting starts at the next opening when a start is outside business hours; a
    result landing exactly on a closing time is that closing time. Adding 0 hours
    returns the start unchanged. NaT starts or NaN hours give NaT.
    """
    start_ns = _as_ns(starts)
    amount = np.broadcast_to(np.asarray(hours, dtype="float64"), start_ns.shape)
    if (amount < 0).any():
        raise ValueError("business hours to add must be >= 0")
    valid = (start_ns != NAT) & ~np.isnan(amount)
    amount_ns = np.where(valid, np.rint(np.nan_to_num(amount) * NS_PER_HOUR), 0).astype("int64")
    zones, codes = normalize_time_zones(time_zones, starts.index), normalize_countries(countries, starts.index)

    def compute(rows: np.ndarray) -> np.ndarray:
        out = np.full(start_ns.shape, NAT, dtype="int64")
        for zone, country, chunk in _groups(starts.index, zones, codes, rows):
            moments, added = start_ns[chunk], amount_ns[chunk]

            def covered(intervals: Intervals, moments: np.ndarray = moments, added: np.ndarray = added) -> bool:
                return bool((intervals.position(moments) + added).max() <= intervals.total)

            extra_days = int(added.max() / NS_PER_HOUR / max(business_hours.hours_per_week, 1.0) * 7) + 14
            intervals = _covering(zone, country, moments, extra_days, business_hours, covered)
            target = intervals.position(moments) + added
            slot = np.clip(np.searchsorted(intervals.cum_end, target, side="left"), 0, len(intervals.opens) - 1)
            result = intervals.opens[slot] + (target - intervals.cum_start[slot])
            out[chunk] = np.where(added == 0, moments, result)
        return out

    question = ("add", *_calendar_key(business_hours))
    return _to_series(_answered(question, zones, codes, start_ns, amount_ns, valid, compute), starts.index)


def business_hours_between(
    starts: pd.Series,
    ends: pd.Series,
    time_zones: Labels,
    countries: Labels,
    business_hours: BusinessHours,
) -> pd.Series:
    """Business hours from each start to its end (negative when the end is earlier; NaN for NaT)."""
    start_ns, end_ns = _as_ns(starts), _as_ns(ends)
    valid = (start_ns != NAT) & (end_ns != NAT)
    out = np.full(start_ns.shape, np.nan)
    for zone, country, rows in _groups(starts.index, time_zones, countries, valid):
        moments = np.concatenate([start_ns[rows], end_ns[rows]])
        intervals = _covering(zone, country, moments, 1, business_hours, lambda _: True)
        elapsed = intervals.position(end_ns[rows]) - intervals.position(start_ns[rows])
        out[rows] = elapsed / NS_PER_HOUR
    return pd.Series(out, index=starts.index, dtype="float64")


def end_of_business_day(
    moments: pd.Series, time_zones: Labels, countries: Labels, business_hours: BusinessHours
) -> pd.Series:
    """The closing time of the business day a moment falls in (``open <= t < close``),
    else the closing time of the next business day (moment outside business hours)."""
    moment_ns = _as_ns(moments)
    valid = moment_ns != NAT
    zones, codes = normalize_time_zones(time_zones, moments.index), normalize_countries(countries, moments.index)

    def compute(rows: np.ndarray) -> np.ndarray:
        out = np.full(moment_ns.shape, NAT, dtype="int64")
        for zone, country, chunk in _groups(moments.index, zones, codes, rows):
            group = moment_ns[chunk]

            def covered(intervals: Intervals, group: np.ndarray = group) -> bool:
                return len(intervals.closes) > 0 and bool(intervals.closes[-1] > group.max())

            intervals = _covering(zone, country, group, 14, business_hours, covered)
            out[chunk] = intervals.closes[np.searchsorted(intervals.closes, group, side="right")]
        return out

    question = ("end", *_calendar_key(business_hours))
    answers = _answered(question, zones, codes, moment_ns, np.zeros_like(moment_ns), valid, compute)
    return _to_series(answers, moments.index)


# -- answers kept over many runs (a one-pass backfill's steps) ----------------------------------------

#: Per question (kind and opening hours), the answers given so far: per (zone, country, amount), start -> ns.
_ANSWERS: dict[tuple, dict[tuple, pd.Series]] = {}
_REMEMBERING = [0]


@contextmanager
def remembered() -> Iterator[None]:
    """Within the block (in this process), :func:`add_business_hours` and :func:`end_of_business_day` compute
    each distinct question (start, business time to add, zone, country, opening hours) once and answer its
    repeats from memory: a one-pass backfill's steps ask for the same deadlines and ladder moments at every
    step. An answer is a pure function of its question, so it is the one computed outside the block."""
    _REMEMBERING[0] += 1
    try:
        yield
    finally:
        _REMEMBERING[0] -= 1
        if not _REMEMBERING[0]:
            _ANSWERS.clear()


def _calendar_key(business_hours: BusinessHours) -> tuple:
    """What of the opening hours an answer depends on (``hours_per_week`` only sizes the dates covered)."""
    return tuple(business_hours.weekdays), business_hours.open, business_hours.close


def _answered(
    question: tuple, zones: pd.Series, countries: pd.Series, start_ns: np.ndarray, amount_ns: np.ndarray,
    valid: np.ndarray, compute: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """``compute(rows)`` (ns per row, NaT outside ``rows``) for the ``valid`` rows; within :func:`remembered`,
    only for the rows whose question was not answered before, the others from memory."""
    if not _REMEMBERING[0]:
        return compute(valid)
    rows = np.flatnonzero(valid)
    known = _ANSWERS.setdefault(question, {})
    out = np.full(start_ns.shape, NAT, dtype="int64")
    groups = list(_answer_groups(zones.to_numpy()[rows], countries.to_numpy()[rows], amount_ns[rows]))
    missing = []
    for key, chunk in groups:  # the starts of one (zone, country, amount): an int64 lookup
        answers = known.get(key)
        found = answers.index.get_indexer(start_ns[rows[chunk]]) if answers is not None else np.full(len(chunk), -1)
        hit = found >= 0
        if hit.any():
            out[rows[chunk[hit]]] = answers.to_numpy()[found[hit]]
        missing.append(rows[chunk[~hit]])
    new = np.concatenate(missing) if missing else rows[:0]
    if len(new):
        wanted = np.zeros(len(valid), dtype=bool)
        wanted[new] = True
        out[new] = compute(wanted)[new]
        for (key, _), asked in zip(groups, missing, strict=True):
            if len(asked):
                fresh = pd.Series(out[asked], index=start_ns[asked])
                fresh = fresh[~fresh.index.duplicated()]
                known[key] = fresh if key not in known else pd.concat([known[key], fresh])
    return out


def _answer_groups(zones: np.ndarray, countries: np.ndarray, amounts: np.ndarray
                   ) -> Iterator[tuple[tuple, np.ndarray]]:
    """Positions of each distinct (zone, country, amount), with it."""
    codes = [pd.factorize(values, use_na_sentinel=False) for values in (zones, countries, amounts)]
    key = np.zeros(len(zones), dtype="int64")
    for found, uniques in codes:
        key = key * max(len(uniques), 1) + found
    order = np.argsort(key, kind="stable")
    starts = np.unique(key[order], return_index=True)[1]
    for chunk in np.split(order, starts[1:]) if len(order) else []:
        first = chunk[0]
        yield tuple(uniques[found[first]] for found, uniques in codes), chunk


def business_intervals(
    zone: str, country: str | None, first: dt.date, last: dt.date, business_hours: BusinessHours
) -> Intervals:
    """The UTC business intervals of the local dates ``first..last`` (inclusive); computed once per arguments
    (a backfill's every step asks for the same ones; the arrays are shared, never written to)."""
    return _business_intervals(zone, country, first, last, tuple(business_hours.weekdays), business_hours.open,
                               business_hours.close)


@lru_cache(maxsize=512)
def _business_intervals(zone: str, country: str | None, first: dt.date, last: dt.date, weekdays: tuple[int, ...],
                        opening: dt.time, closing: dt.time) -> Intervals:
    dates = pd.date_range(first, last, freq="D")
    keep = np.isin(dates.weekday, list(weekdays))
    closed = _holidays(country, first.year, last.year)
    if len(closed):
        keep &= ~dates.isin(closed)
    days = dates[keep]
    opens = _localize(days + _offset(opening), zone)
    closes = _localize(days + _offset(closing), zone)
    positive = closes > opens
    opens, closes = opens[positive], closes[positive]
    for array in (opens, closes):
        array.flags.writeable = False
    cumulative = np.cumsum(closes - opens)
    cumulative.flags.writeable = False
    return Intervals(opens=opens, closes=closes, cum_end=cumulative)


def normalize_time_zones(values: Labels, index: pd.Index) -> pd.Series:
    """IANA zone names; missing, blank or unknown zones become ``UTC``."""
    return _normalized(values, index, _zone_name)


def normalize_countries(values: Labels, index: pd.Index) -> pd.Series:
    """Upper-case ISO alpha-2 codes; missing or blank become ``""`` (no holidays)."""
    return _normalized(values, index, _country_code)


def _groups(
    index: pd.Index, time_zones: Labels, countries: Labels, valid: np.ndarray
) -> Iterator[tuple[str, str, np.ndarray]]:
    """Row positions (among ``valid`` rows) of each (zone, country) group."""
    zone_codes, zones = pd.factorize(normalize_time_zones(time_zones, index))
    country_codes, codes = pd.factorize(normalize_countries(countries, index))
    key = zone_codes.astype("int64") * max(len(codes), 1) + country_codes
    rows = np.flatnonzero(valid)
    if not len(rows):  # all NaT: no group
        return
    order = rows[np.argsort(key[rows], kind="stable")]
    keys, starts = np.unique(key[order], return_index=True)
    for group, chunk in zip(keys, np.split(order, starts[1:]), strict=True):
        yield str(zones[group // max(len(codes), 1)]), str(codes[group % max(len(codes), 1)]), chunk


def _covering(
    zone: str,
    country: str,
    moments: np.ndarray,
    extra_days: int,
    business_hours: BusinessHours,
    covered: Callable[[Intervals], bool],
) -> Intervals:
    """Intervals from the day before the earliest moment, extended until ``covered`` holds."""
    tz = ZoneInfo(zone)
    first = pd.Timestamp(int(moments.min()), tz="UTC").tz_convert(tz).date() - dt.timedelta(days=1)
    last_moment = pd.Timestamp(int(moments.max()), tz="UTC").tz_convert(tz).date()
    span = max(extra_days, 1)
    while True:
        intervals = business_intervals(zone, country or None, first, last_moment + dt.timedelta(days=span),
                                       business_hours)
        if len(intervals.opens) and covered(intervals):
            return intervals
        if span > MAX_SPAN_DAYS:
            raise ValueError(f"no business hours found for time zone {zone!r}, country {country!r}")
        span *= 2


@lru_cache(maxsize=256)
def _holidays(country: str | None, first_year: int, last_year: int) -> pd.DatetimeIndex:
    if not country:
        return pd.DatetimeIndex([])
    try:
        calendar = holidays.country_holidays(country, years=range(first_year, last_year + 1))
    except NotImplementedError:
        return pd.DatetimeIndex([])
    return pd.DatetimeIndex(sorted(calendar.keys()))


def _localize(local: pd.DatetimeIndex, zone: str) -> np.ndarray:
    aware = local.tz_localize(zone, ambiguous=np.ones(len(local), dtype=bool), nonexistent="shift_forward")
    return aware.tz_convert("UTC").as_unit("ns").asi8


def _offset(moment: dt.time) -> pd.Timedelta:
    return pd.Timedelta(hours=moment.hour, minutes=moment.minute, seconds=moment.second)


def _zone_name(value: Any) -> str:
    name = str(value).strip() if isinstance(value, str) else ""
    return name if usable_zone(name) else "UTC"


@lru_cache(maxsize=1024)
def usable_zone(name: str) -> bool:
    """Whether both zoneinfo and pandas know the zone: ``posixrules``, ``Factory`` and ``localtime`` are
    files in the tz database that zoneinfo opens but pandas refuses, so they count as unknown."""
    try:
        ZoneInfo(name)
        pd.Timestamp("2000-01-01").tz_localize(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError and pytz's UnknownTimeZoneError are KeyErrors
        return False
    return True


def unusable_zones(users: pd.DataFrame) -> pd.DataFrame:
    """Users (``user_id``, ``time_zone``) whose non-blank zone is unknown: their clocks run on UTC."""
    zones = users["time_zone"].where(users["time_zone"].map(lambda zone: isinstance(zone, str)), "").str.strip()
    bad = zones.ne("") & ~zones.map(usable_zone)
    return users.loc[bad, ["user_id", "time_zone"]].reset_index(drop=True)


def _country_code(value: Any) -> str:
    return value.strip().upper() if isinstance(value, str) else ""


def _normalized(values: Labels, index: pd.Index, normalize: Callable[[Any], str]) -> pd.Series:
    """Normalize each distinct label once (a handful), then broadcast by code."""
    raw = values.to_numpy() if isinstance(values, pd.Series) else np.full(len(index), values, dtype="object")
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    table = np.array([normalize(value) for value in uniques] + [normalize(None)], dtype="object")
    return pd.Series(table[codes], index=index, dtype="object")


def _as_ns(values: pd.Series) -> np.ndarray:
    if not pd.api.types.is_datetime64_any_dtype(values):
        values = pd.to_datetime(values, utc=True)
    elif getattr(values.dt, "tz", None) is None:
        values = values.dt.tz_localize("UTC")
    return pd.DatetimeIndex(values).tz_convert("UTC").as_unit("ns").asi8.copy()


def _to_series(nanoseconds: np.ndarray, index: pd.Index) -> pd.Series:
    moments = pd.DatetimeIndex(nanoseconds.view("datetime64[ns]")).tz_localize("UTC")
    return pd.Series(moments, index=index)
