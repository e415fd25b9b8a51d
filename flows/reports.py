"""The report flows: the weekly SLA dashboard, the monthly review and the quarterly renegotiation report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import holidays
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from abm_sla.services import reporting
from abm_sla.services.reporting import build_report
from flows.parameters import ReportParameters, resolve_database_url, validated
from tasks.observe import publish_headline, publish_report


def last_full_week(today: dt.date) -> str:
    """The ISO week before the one containing ``today`` (``2026-W13``)."""
    year, week, _ = (today - dt.timedelta(days=7)).isocalendar()
    return f"{year}-W{week:02d}"


def last_full_quarter(today: dt.date) -> str:
    """The calendar quarter before the one containing ``today`` (``2026-Q1``)."""
    quarter = (today.month - 1) // 3
    return f"{today.year - 1}-Q4" if quarter == 0 else f"{today.year}-Q{quarter}"


def last_full_month(today: dt.date) -> str:
    """The calendar month before the one containing ``today`` (``2026-03``)."""
    return f"{today.year - 1}-12" if today.month == 1 else f"{today.year}-{today.month - 1:02d}"


def is_first_business_day_of_quarter(day: dt.date, country: str) -> bool:
    """Mon-Fri, not a public holiday of ``country``, and no earlier such day in its quarter."""
    return day == first_business_day(dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1), country)


def is_first_business_day_of_month(day: dt.date, country: str) -> bool:
    """Mon-Fri, not a public holiday of ``country``, and no earlier such day in its month."""
    return day == first_business_day(day.replace(day=1), country)


def first_business_day(first: dt.date, country: str) -> dt.date:
    """The first Mon-Fri on or after ``first`` that is not a public holiday of ``country``."""
    closed = holidays.country_holidays(country, years=first.year)
    while first.weekday() >= 5 or first in closed:
        first += dt.timedelta(days=1)
    return first


@task(name="write-report", cache_policy=NO_CACHE)
def write_report(db_url: str, kind: str, period: str, params: ReportParameters) -> dict:
    """Build and write one report, publish it and its headline as keyed artifacts, post the headline to the
    notification block the parameters name; returns the written files (absolute paths) and the headline."""
    report = build_report(db_url, kind, period, policy_path=params.policy_path, scoring_path=params.model_path)
    if not report.measured:  # most often the default period on a warehouse not run lately: say so in one line
        get_run_logger().warning("%s%s", reporting.no_data_note(report), "" if params.period else
                                 " (the default period; set Period to one with data)")
    paths = {name: str(path.resolve()) for name, path in reporting.write_report(report, params.out_dir).items()}
    publish_report(report, paths)
    headline = publish_headline(report, paths["html"], params.notify_block or "")
    return {"files": paths, "headline": headline["text"], "posted_to": headline["posted_to"]}


def _report(kind: str, params: ReportParameters, default_period: str) -> dict:
    db_url = resolve_database_url(params.database_secret)
    period = params.period or default_period
    return {"kind": kind, "period": period, **write_report(db_url, kind, period, params)}


@flow(name="weekly-sla-dashboard", validate_parameters=False)  # checked by _report, in one line
def weekly_sla_dashboard(params: ReportParameters = ReportParameters()) -> dict:
    """The weekly SLA dashboard (default: the last full ISO week)."""
    params = validated(ReportParameters, params)
    return _report("weekly", params, last_full_week(_today(params)))


@flow(name="quarterly-renegotiation-report", validate_parameters=False)
def quarterly_renegotiation_report(params: ReportParameters = ReportParameters()) -> dict:
    """The quarterly renegotiation report (default: the last full quarter).

    Cron cannot say "first business day of the quarter": the schedule fires on the weekdays of
    the quarter's first week with ``only_on_first_business_day`` set, and this guard skips the others.
    """
    params = validated(ReportParameters, params)
    return _on_first_business_day("quarterly", "quarter", params, is_first_business_day_of_quarter,
                                  last_full_quarter)


@flow(name="monthly-review", validate_parameters=False)
def monthly_review(params: ReportParameters = ReportParameters()) -> dict:
    """The monthly review (default: the last full month), on the month's first business day when the
    schedule sets ``only_on_first_business_day`` (cron fires on the weekdays of the first week)."""
    params = validated(ReportParameters, params)
    return _on_first_business_day("monthly", "month", params, is_first_business_day_of_month, last_full_month)


def _on_first_business_day(kind: str, span: str, params: ReportParameters,
                           is_first: Callable[[dt.date, str], bool], default_period: Callable[[dt.date], str]
                           ) -> dict:
    """The report, skipped unless today is the span's first business day when the schedule asks for that."""
    today = _today(params)
    if params.only_on_first_business_day and not is_first(today, params.holiday_country):
        get_run_logger().info("%s is not the %s's first business day in %s: skipped", today, span,
                              params.holiday_country)
        return {"kind": kind, "skipped": True, "date": today.isoformat()}
    return _report(kind, params, default_period(today))


def _today(params: ReportParameters) -> dt.date:
    return pd.Timestamp.now(tz=params.calendar_time_zone).date()
