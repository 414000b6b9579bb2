"""Cron expressions: what is accepted and refused, and when they fire, in each job's zone, DST included."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.cron import (
    CronError,
    CrontabFields,
    crontab_expression,
    describe_cron,
    latest_fire,
    next_fire,
    parse_cron,
)

YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2027, 1, 1, tzinfo=UTC)


def year_of_fires(cron: str, zone: str) -> list[datetime]:
    """Every fire time in 2026 (UTC), through the fields beat stores, as beat would walk them."""
    expression = crontab_expression(parse_cron(cron))
    fires, moment = [], YEAR_START - timedelta(seconds=1)
    while (moment := next_fire(expression, zone, moment)) and moment < YEAR_END:
        fires.append(moment)
    return fires


def local(moment: datetime, zone: str) -> datetime:
    return moment.astimezone(ZoneInfo(zone))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("*/15 * * * *", CrontabFields("*/15", "*", "*", "*", "*")),
        ("30 2 * * *", CrontabFields("30", "2", "*", "*", "*")),
        ("0 9 * * mon-fri", CrontabFields("0", "9", "*", "*", "mon-fri")),
        ("0 0 1 jan,jul *", CrontabFields("0", "0", "1", "jan,jul", "*")),
        ("0 0 * * 7", CrontabFields("0", "0", "*", "*", "0")),  # cron's Sunday-as-7
        ("0 9 * * 5-7", CrontabFields("0", "9", "*", "*", "0,5,6")),
        ("0 8-18/2 * * *", CrontabFields("0", "8-18/2", "*", "*", "*")),
        ("0 0 29 2 *", CrontabFields("0", "0", "29", "2", "*")),  # fires in leap years
        ("0 12 * JUL *", CrontabFields("0", "12", "*", "jul", "*")),
    ],
)
def test_it_accepts_standard_cron_and_stores_what_celery_reads_the_same_way(expression, expected):
    assert parse_cron(expression) == expected


@pytest.mark.parametrize(
    ("macro", "expected"),
    [
        ("@hourly", CrontabFields("0", "*", "*", "*", "*")),
        ("@daily", CrontabFields("0", "0", "*", "*", "*")),
        ("@midnight", CrontabFields("0", "0", "*", "*", "*")),
        ("@weekly", CrontabFields("0", "0", "*", "*", "0")),
        ("@monthly", CrontabFields("0", "0", "1", "*", "*")),
        ("@yearly", CrontabFields("0", "0", "1", "1", "*")),
        ("@annually", CrontabFields("0", "0", "1", "1", "*")),
        ("@DAILY", CrontabFields("0", "0", "*", "*", "*")),
    ],
)
def test_it_expands_macros(macro, expected):
    assert parse_cron(macro) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 3"),
        ("* * * * * *", "got 6"),
        ("", "cron is empty"),
        ("61 * * * *", "minute '61' is out of range: 61 is not in 0-59"),
        ("* 24 * * *", "hour '24' is out of range: 24 is not in 0-23"),
        ("0 0 0 * *", "day-of-month '0' is out of range: 0 is not in 1-31"),
        ("0 0 * 13 *", "month '13' is out of range: 13 is not in 1-12"),
        ("0 0 * * 8", "day-of-week '8' is out of range: 8 is not in 0-7"),
        ("0 0 * foo *", "month 'foo' has an unknown value 'foo': use 1-12 or jan-dec"),
        ("0 0 * * funday", "day-of-week 'funday' has an unknown value 'funday'"),
        ("*/0 * * * *", "minute '*/0' has a step of 0"),
        ("30-10 * * * *", "minute '30-10' has a backwards range 30-10"),
        ("0 0 L * *", "day-of-month 'L' uses a non-standard extension"),
        ("0 0 * * 1#2", "day-of-week '1#2' uses a non-standard extension"),
        ("0 0 ? * *", "day-of-month '?' has an unknown value '?'"),
        ("@reboot", "unknown macro '@reboot'"),
        ("0 0 31 2 *", "never fires: day-of-month '31' does not occur in month '2'"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("0 0 1 * mon", "restricts both day-of-month '1' and day-of-week 'mon'"),
        ("0 0 1-7 * 1-5", "restricts both day-of-month '1-7' and day-of-week '1-5'"),
    ],
)
def test_it_refuses_bad_cron_naming_the_field_and_value(expression, message):
    with pytest.raises(CronError) as caught:
        parse_cron(expression)
    assert message in str(caught.value)
    if expression:
        assert repr(expression) in str(caught.value)


def test_a_star_step_day_field_counts_as_unrestricted_like_debian_cron():
    # cron only ORs the day fields when neither starts with '*'; '*/2' with a weekday is an AND.
    assert parse_cron("0 0 */2 * mon").day_of_week == "mon"


def test_it_describes_cron_in_plain_english():
    assert describe_cron("30 2 * * *") == "At 02:30"
    assert describe_cron("@hourly") == "Every hour"
    assert describe_cron("nonsense") == "(cannot describe)"


def test_next_fire_is_read_in_the_jobs_zone():
    after = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
    # 02:30 in London during summer time is 01:30 UTC.
    when = next_fire("30 2 * * *", "Europe/London", after)
    assert when.astimezone(UTC) == datetime(2026, 7, 1, 1, 30, tzinfo=UTC)


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
    assert latest_fire(expression, "UTC", datetime(2026, 5, 1, 12, 34, 56, tzinfo=UTC)) == datetime(
        2026, 5, 1, 12, 30, tzinfo=UTC
    )
    assert latest_fire(expression, "UTC", datetime(2026, 5, 1, 12, 30, tzinfo=UTC)) == datetime(
        2026, 5, 1, 12, 30, tzinfo=UTC
    )


def test_next_fire_is_strictly_after_and_in_utc():
    after = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    when = next_fire("*/10 * * * *", "UTC", after)
    assert when == datetime(2026, 5, 1, 12, 40, tzinfo=UTC) and when.tzinfo is UTC
    assert next_fire("0 9 * * *", "America/New_York", after).tzinfo is UTC


def test_macros_fire_like_their_fields():
    after = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    assert next_fire("@daily", "Europe/London", after) == datetime(2026, 5, 1, 23, 0, tzinfo=UTC)  # BST midnight
    assert next_fire("@hourly", "UTC", after) == datetime(2026, 5, 1, 13, 0, tzinfo=UTC)
    assert latest_fire("@monthly", "UTC", after) == datetime(2026, 5, 1, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "zone", "message"),
    [
        ("30 2 * * *", "Mars/Olympus_Mons", "time zone 'Mars/Olympus_Mons' is not a known IANA zone name"),
        ("30 2 * * *", "", "time zone '' is not a known IANA zone name"),
        ("61 * * * *", "UTC", "cron '61 * * * *'"),
        ("@reboot", "UTC", "unknown macro '@reboot'"),
        ("0 0 31 2 *", "UTC", "cron '0 0 31 2 *'"),
    ],
)
def test_an_expression_or_zone_it_cannot_use_raises_cron_error(expression, zone, message):
    after = datetime(2026, 5, 1, tzinfo=UTC)
    for fire in (next_fire, latest_fire):
        with pytest.raises(CronError) as caught:
            fire(expression, zone, after)
        assert message in str(caught.value)


def test_latest_fire_is_none_before_the_first_fire():
    # 29 February 1 AD does not exist: the calendar starts with a common year.
    assert latest_fire("0 0 29 2 *", "UTC", datetime(1, 12, 31, tzinfo=UTC)) is None
