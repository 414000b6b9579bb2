"""Due times for a simulated year: what beat will send, in each job's zone, DST included."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.cron import parse_cron
from scheduler.due import crontab_expression, crontab_latest, crontab_next

YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2027, 1, 1, tzinfo=UTC)


def year_of_fires(cron: str, zone: str) -> list[datetime]:
    """Every fire time in 2026 (UTC), through the fields beat stores, as beat would walk them."""
    expression = crontab_expression(parse_cron(cron))
    fires, moment = [], YEAR_START - timedelta(seconds=1)
    while (moment := crontab_next(expression, zone, moment)) and moment < YEAR_END:
        fires.append(moment)
    return fires


def local(moment: datetime, zone: str) -> datetime:
    return moment.astimezone(ZoneInfo(zone))


@pytest.mark.parametrize("zone", ["Europe/London", "America/New_York", "UTC"])
def test_a_daily_job_runs_once_every_local_day_all_year(zone):
    fires = year_of_fires("30 1 * * *", zone)
    days = Counter(local(fire, zone).date() for fire in fires)
    assert len(fires) == 365
    assert set(days.values()) == {1}


def test_a_run_skipped_by_the_spring_jump_runs_once_right_after_it_in_london():
    # 2026-03-29: 01:00 GMT becomes 02:00 BST; there is no 01:30 that day.
    fires = [
        f for f in year_of_fires("30 1 * * *", "Europe/London") if local(f, "Europe/London").date() == date(2026, 3, 29)
    ]
    assert fires == [datetime(2026, 3, 29, 1, 0, tzinfo=UTC)]  # 02:00 BST, the moment after the jump


def test_a_run_whose_time_repeats_at_fall_back_runs_once_in_london():
    # 2026-10-25: 02:00 BST becomes 01:00 GMT; 01:30 happens twice.
    fires = [
        f
        for f in year_of_fires("30 1 * * *", "Europe/London")
        if local(f, "Europe/London").date() == date(2026, 10, 25)
    ]
    assert fires == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]  # 01:30 BST, the first one


def test_new_york_transitions_skip_once_and_repeat_once():
    # 2026-03-08: 02:00 EST becomes 03:00 EDT; 2026-11-01: 02:00 EDT becomes 01:00 EST.
    spring = [f for f in year_of_fires("30 2 * * *", "America/New_York") if f.date() == date(2026, 3, 8)]
    assert spring == [datetime(2026, 3, 8, 7, 0, tzinfo=UTC)]  # 03:00 EDT
    autumn = [
        f
        for f in year_of_fires("30 1 * * *", "America/New_York")
        if local(f, "America/New_York").date() == date(2026, 11, 1)
    ]
    assert autumn == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC)]  # 01:30 EDT, once


def test_jobs_with_wildcards_follow_the_clock_through_both_transitions():
    per_day = Counter(local(f, "Europe/London").date() for f in year_of_fires("*/15 * * * *", "Europe/London"))
    assert per_day[date(2026, 3, 29)] == 92  # the missing hour has no quarter hours
    assert per_day[date(2026, 10, 25)] == 100  # both copies of the repeated hour run
    assert per_day[date(2026, 6, 1)] == 96
    hourly = year_of_fires("0 * * * *", "Europe/London")
    assert len(hourly) == 365 * 24  # an hourly job runs every real hour, DST or not


def test_local_time_holds_across_the_seasons():
    fires = year_of_fires("0 9 * * *", "Europe/London")
    assert {local(f, "Europe/London").hour for f in fires} == {9}
    assert {f.hour for f in fires} == {8, 9}  # 08:00 UTC in summer, 09:00 in winter


def test_named_days_and_months_steps_and_lists():
    weekdays = year_of_fires("0 9 * * mon-fri", "UTC")
    assert len(weekdays) == 261
    assert {f.weekday() for f in weekdays} == {0, 1, 2, 3, 4}
    assert [f.month for f in year_of_fires("0 0 1 jan,jul *", "UTC")] == [1, 7]
    sundays = year_of_fires("0 12 * * 7", "UTC")  # cron's 7 is Sunday; stored as 0
    assert len(sundays) == 52 and {f.weekday() for f in sundays} == {6}
    listed = year_of_fires("0,30 8-10 * * *", "UTC")
    assert len(listed) == 365 * 6
    assert {(f.hour, f.minute) for f in listed} == {(h, m) for h in (8, 9, 10) for m in (0, 30)}
    stepped = year_of_fires("5/20 */6 1-10/3 * *", "UTC")
    assert {f.minute for f in stepped} == {5, 25, 45} and {f.hour for f in stepped} == {0, 6, 12, 18}
    assert {f.day for f in stepped} == {1, 4, 7, 10}
    assert len(year_of_fires("0 0 29 2 *", "UTC")) == 0  # 2026 is no leap year; 2028 will fire


def test_latest_fire_at_or_before_a_moment():
    expression = crontab_expression(parse_cron("*/10 * * * *"))
    assert crontab_latest(expression, "UTC", datetime(2026, 5, 1, 12, 34, 56, tzinfo=UTC)) == datetime(
        2026, 5, 1, 12, 30, tzinfo=UTC
    )
    assert crontab_latest(expression, "UTC", datetime(2026, 5, 1, 12, 30, tzinfo=UTC)) == datetime(
        2026, 5, 1, 12, 30, tzinfo=UTC
    )
