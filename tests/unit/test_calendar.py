"""Business calendar: DST, holidays, weekends, opening/closing boundaries, and a brute-force oracle."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from abm_sla.domain import calendar
from abm_sla.domain.calendar import add_business_hours, business_hours_between, end_of_business_day
from abm_sla.domain.policy.clocks import BusinessHours

BH = BusinessHours()


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


def add_one(start: str, hours: float, zone: str | None = "UTC", country: str | None = None,
            business_hours: BusinessHours = BH) -> pd.Timestamp:
    result = add_business_hours(pd.Series([ts(start)]), hours, pd.Series([zone]), pd.Series([country]),
                                business_hours)
    return result.iloc[0]


def end_of_day(moment: str, zone: str = "UTC", country: str | None = None) -> pd.Timestamp:
    return end_of_business_day(pd.Series([ts(moment)]), zone, country, BH).iloc[0]


# --- adding business hours -------------------------------------------------------------------------

@pytest.mark.parametrize(("start", "hours", "expected"), [
    ("2026-03-02T10:00Z", 2, "2026-03-02T12:00Z"),     # inside hours
    ("2026-03-02T15:00Z", 2, "2026-03-02T17:00Z"),     # lands exactly on closing: 17:00, not next 09:00
    ("2026-03-02T16:00Z", 2, "2026-03-03T10:00Z"),     # runs over the close into the next day
    ("2026-03-02T07:00Z", 1, "2026-03-02T10:00Z"),     # before opening: counts from 09:00
    ("2026-03-02T18:00Z", 1, "2026-03-03T10:00Z"),     # after closing: counts from next opening
    ("2026-03-02T17:00Z", 8, "2026-03-03T17:00Z"),     # start at closing, a full day lands on closing
    ("2026-03-06T16:00Z", 2, "2026-03-09T10:00Z"),     # Friday over the weekend
    ("2026-03-07T12:00Z", 1, "2026-03-09T10:00Z"),     # Saturday start
    ("2026-03-02T09:00Z", 24, "2026-03-04T17:00Z"),    # Tier 3 window: three full days
    ("2026-03-02T12:34Z", 0, "2026-03-02T12:34Z"),     # adding nothing is the start itself
    ("2026-03-07T12:00Z", 0, "2026-03-07T12:00Z"),
])
def test_add_business_hours_utc(start: str, hours: float, expected: str) -> None:
    assert add_one(start, hours) == ts(expected)


def test_fractional_hours() -> None:
    assert add_one("2026-03-02T16:30Z", 1.5) == ts("2026-03-03T10:00Z")


def test_us_dst_spring_forward_new_york() -> None:
    # Friday 16:00 EST (UTC-5) + 2h -> Monday 10:00 EDT (UTC-4) after 2026-03-08
    assert add_one("2026-03-06T21:00Z", 2, "America/New_York") == ts("2026-03-09T14:00Z")
    # opening on the Monday after the change is 09:00 local = 13:00Z
    assert add_one("2026-03-09T05:00Z", 1, "America/New_York") == ts("2026-03-09T14:00Z")


def test_us_dst_fall_back_new_york() -> None:
    # Friday 2026-10-30 16:00 EDT + 2h -> Monday 2026-11-02 10:00 EST (UTC-5)
    assert add_one("2026-10-30T20:00Z", 2, "America/New_York") == ts("2026-11-02T15:00Z")


def test_eu_dst_berlin() -> None:
    # Friday 2026-03-27 16:00 CET (UTC+1) + 2h -> Monday 10:00 CEST (UTC+2) after 2026-03-29
    assert add_one("2026-03-27T15:00Z", 2, "Europe/Berlin") == ts("2026-03-30T08:00Z")
    # the US has changed (03-08) but Europe not yet: New York and Berlin differ by 5 hours that week
    assert add_one("2026-03-10T00:00Z", 1, "Europe/Berlin") == ts("2026-03-10T09:00Z")


def test_good_friday_and_easter_monday_gb_vs_de_vs_us() -> None:
    assert "2026-04-06" not in holidays.country_holidays("GB", years=2026)  # Easter Monday is not UK-wide
    # Thursday 2026-04-02 16:00 local + 2 business hours
    assert add_one("2026-04-02T15:00Z", 2, "Europe/London", "GB") == ts("2026-04-06T09:00Z")  # Mon 10:00 BST
    assert add_one("2026-04-02T14:00Z", 2, "Europe/Berlin", "DE") == ts("2026-04-07T08:00Z")  # Tue 10:00 CEST
    assert add_one("2026-04-02T20:00Z", 2, "America/New_York", "US") == ts("2026-04-03T14:00Z")  # Fri works


def test_country_code_case_missing_and_unknown() -> None:
    assert add_one("2026-04-02T14:00Z", 2, "Europe/Berlin", " de ") == ts("2026-04-07T08:00Z")
    assert add_one("2026-04-02T14:00Z", 2, "Europe/Berlin", None) == ts("2026-04-03T08:00Z")
    assert add_one("2026-04-02T14:00Z", 2, "Europe/Berlin", "XX") == ts("2026-04-03T08:00Z")


def test_missing_or_unknown_time_zone_is_utc() -> None:
    assert add_one("2026-03-02T16:00Z", 2, None) == ts("2026-03-03T10:00Z")
    assert add_one("2026-03-02T16:00Z", 2, "Mars/Olympus") == ts("2026-03-03T10:00Z")
    assert add_one("2026-03-02T16:00Z", 2, "") == ts("2026-03-03T10:00Z")


def test_vectorized_rows_keep_their_own_calendar_and_index() -> None:
    starts = pd.Series([ts("2026-04-02T15:00Z"), pd.NaT, ts("2026-04-02T14:00Z"), ts("2026-03-02T10:00Z")],
                       index=[10, 11, 12, 13])
    zones = pd.Series(["Europe/London", "UTC", "Europe/Berlin", None], index=[10, 11, 12, 13])
    countries = pd.Series(["GB", "GB", "DE", None], index=[10, 11, 12, 13])
    hours = pd.Series([2.0, 2.0, 2.0, float("nan")], index=[10, 11, 12, 13])
    result = add_business_hours(starts, hours, zones, countries, BH)
    assert list(result.index) == [10, 11, 12, 13]
    assert str(result.dtype) == "datetime64[ns, UTC]"
    assert result[10] == ts("2026-04-06T09:00Z")
    assert pd.isna(result[11]) and pd.isna(result[13])
    assert result[12] == ts("2026-04-07T08:00Z")


def test_long_windows_cross_many_holidays() -> None:
    # 40 business days from mid December in Germany skips Christmas, New Year and weekends
    result = add_one("2026-12-14T08:00Z", 8 * 40, "Europe/Berlin", "DE")
    assert business_hours_between(pd.Series([ts("2026-12-14T08:00Z")]), pd.Series([result]),
                                  "Europe/Berlin", "DE", BH).iloc[0] == 320
    assert result.tz_convert("Europe/Berlin").hour == 17


def test_custom_business_hours() -> None:
    gulf = BusinessHours(days=["sun", "mon", "tue", "wed", "thu"], open=dt.time(8), close=dt.time(16))
    # Thursday 15:00 + 2h -> Sunday 09:00
    assert add_one("2026-03-05T15:00Z", 2, "UTC", None, gulf) == ts("2026-03-08T09:00Z")


def test_negative_hours_rejected() -> None:
    with pytest.raises(ValueError):
        add_one("2026-03-02T10:00Z", -1)


# --- measuring and end of day ----------------------------------------------------------------------

def test_business_hours_between() -> None:
    starts = pd.Series([ts("2026-03-06T16:00Z"), ts("2026-03-09T12:00Z"), ts("2026-03-07T10:00Z"), pd.NaT])
    ends = pd.Series([ts("2026-03-09T10:00Z"), ts("2026-03-06T16:00Z"), ts("2026-03-08T10:00Z"),
                      ts("2026-03-08T10:00Z")])
    result = business_hours_between(starts, ends, "UTC", None, BH)
    assert result.iloc[0] == 2
    assert result.iloc[1] == -4
    assert result.iloc[2] == 0
    assert pd.isna(result.iloc[3])


@pytest.mark.parametrize(("moment", "expected"), [
    ("2026-03-02T10:00Z", "2026-03-02T17:00Z"),   # inside hours: today's close
    ("2026-03-02T07:00Z", "2026-03-02T17:00Z"),   # before opening on a business day: that day's close
    ("2026-03-02T17:00Z", "2026-03-03T17:00Z"),   # at closing: the day is over
    ("2026-03-02T20:00Z", "2026-03-03T17:00Z"),   # evening: next business day
    ("2026-03-06T18:00Z", "2026-03-09T17:00Z"),   # Friday evening: Monday
    ("2026-03-07T10:00Z", "2026-03-09T17:00Z"),   # Saturday: Monday
])
def test_end_of_business_day(moment: str, expected: str) -> None:
    assert end_of_day(moment) == ts(expected)


def test_end_of_business_day_local_and_holiday() -> None:
    assert end_of_day("2026-03-09T13:30Z", "America/New_York", "US") == ts("2026-03-09T21:00Z")
    assert end_of_day("2026-04-02T16:00Z", "Europe/Berlin", "DE") == ts("2026-04-07T15:00Z")


# --- property test against a deliberately simple oracle ---------------------------------------------

ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Europe/London", "Asia/Kolkata", "Australia/Sydney"]
COUNTRIES = [None, "US", "DE", "GB", "XX"]
MINUTE = dt.timedelta(minutes=1)


@lru_cache
def closed_days(country: str | None, year: int) -> frozenset[dt.date]:
    try:
        return frozenset(holidays.country_holidays(country, years=year)) if country else frozenset()
    except NotImplementedError:
        return frozenset()


def is_business_minute(moment: dt.datetime, zone: str, country: str | None) -> bool:
    """Is the minute starting at ``moment`` (UTC) inside business hours? Checked one minute at a time."""
    local = moment.astimezone(ZoneInfo(zone))
    closed = closed_days(country, local.year)
    return local.weekday() < 5 and local.date() not in closed and dt.time(9) <= local.time() < dt.time(17)


def oracle_add(start: dt.datetime, minutes: int, zone: str, country: str | None) -> dt.datetime:
    moment, left = start, minutes
    while left > 0:
        if is_business_minute(moment, zone, country):
            left -= 1
        moment += MINUTE
    return moment


def oracle_between(start: dt.datetime, end: dt.datetime, zone: str, country: str | None) -> int:
    count, moment = 0, start
    while moment < end:
        count += is_business_minute(moment, zone, country)
        moment += MINUTE
    return count


moments = st.datetimes(min_value=dt.datetime(2026, 3, 1), max_value=dt.datetime(2026, 11, 5)).map(
    lambda value: value.replace(second=0, microsecond=0, tzinfo=dt.UTC)
)


@settings(deadline=None, max_examples=40)
@given(start=moments, minutes=st.integers(0, 20 * 60), zone=st.sampled_from(ZONES),
       country=st.sampled_from(COUNTRIES))
def test_add_matches_minute_stepping_oracle(start: dt.datetime, minutes: int, zone: str,
                                            country: str | None) -> None:
    got = add_one(start.isoformat(), minutes / 60, zone, country)
    assert got == pd.Timestamp(oracle_add(start, minutes, zone, country))


@settings(deadline=None, max_examples=40)
@given(start=moments, span=st.integers(0, 4 * 24 * 60), zone=st.sampled_from(ZONES),
       country=st.sampled_from(COUNTRIES))
def test_between_matches_minute_stepping_oracle(start: dt.datetime, span: int, zone: str,
                                                country: str | None) -> None:
    end = start + span * MINUTE
    got = business_hours_between(pd.Series([pd.Timestamp(start)]), pd.Series([pd.Timestamp(end)]),
                                 zone, country, BH).iloc[0]
    assert got * 60 == pytest.approx(oracle_between(start, end, zone, country))


#: A few starts the batches share (a Friday afternoon, the night Europe's clocks go forward, Easter), so the
#: same start is asked with other amounts, zones and countries.
SHARED = st.sampled_from([dt.datetime(2026, 3, 6, 16, tzinfo=dt.UTC), dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC),
                          dt.datetime(2026, 4, 2, 15, tzinfo=dt.UTC)])
rows = st.lists(st.tuples(SHARED | moments | st.none(), st.sampled_from([0, 0.5, 2, 8, 24, 48]), st.sampled_from(ZONES),
                          st.sampled_from(COUNTRIES)), min_size=1, max_size=8)


@settings(deadline=None, max_examples=25)
@given(batches=st.lists(rows, min_size=1, max_size=4), hours=st.sampled_from([BH, BusinessHours(open="08:00")]))
@example(  # one start, zone and country asked with two amounts, then in other zones: each its own answer
    batches=[[(dt.datetime(2026, 3, 6, 16, tzinfo=dt.UTC), 2, "Europe/Berlin", "DE"),
              (dt.datetime(2026, 3, 6, 16, tzinfo=dt.UTC), 8, "Europe/Berlin", "DE")],
             [(dt.datetime(2026, 3, 6, 16, tzinfo=dt.UTC), 8, "America/New_York", "US"),
              (dt.datetime(2026, 3, 6, 16, tzinfo=dt.UTC), 8, "America/New_York", None)]], hours=BH)
def test_remembered_answers_equal_computed_ones(batches: list[list[tuple]], hours: BusinessHours) -> None:
    """Within ``calendar.remembered()`` (a backfill's steps asking again), deadlines and ends of business day are
    those computed without it, batch after batch (repeats, NaT starts, other opening hours among them)."""
    def ask(batch: list[tuple]) -> tuple[pd.Series, pd.Series]:
        starts = pd.Series([pd.Timestamp(row[0]) if row[0] else pd.NaT for row in batch], dtype="datetime64[ns, UTC]",
                           index=range(10, 10 + len(batch)))
        zones = pd.Series([row[2] for row in batch], index=starts.index)
        countries = pd.Series([row[3] for row in batch], index=starts.index)
        amounts = pd.Series([row[1] for row in batch], index=starts.index)
        return (add_business_hours(starts, amounts, zones, countries, hours),
                end_of_business_day(starts, zones, countries, hours))

    expected = [ask(batch) for batch in batches]
    with calendar.remembered():
        got = [ask(batch) for batch in [*batches, *batches]]
    for (want_add, want_end), (add, end) in zip(expected * 2, got, strict=True):
        pd.testing.assert_series_equal(add, want_add)
        pd.testing.assert_series_equal(end, want_end)
