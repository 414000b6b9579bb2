"""When cron expressions fire, in each job's zone, daylight saving time included."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from scheduler.cron import (
    CronError,
    crontab_expression,
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


# --- Every clock change: the faults found with the public cronsim, and the kind they belong to ------


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def at(zone: str, *parts: int, fold: int = 0) -> datetime:
    """A local time (``fold=1``: the second of a repeated one) as UTC, so that comparisons are exact."""
    return datetime(*parts, tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)


def test_next_fire_in_a_repeated_hour_is_never_before_its_start():
    # 01:10 GMT on the autumn day is the second 01:10 in London; 01:30 BST (00:30Z) has run already.
    after = utc(2026, 10, 25, 1, 10)
    assert next_fire("30 1 * * *", "Europe/London", after) == utc(2026, 10, 26, 1, 30)


def test_latest_fire_returns_at_once_where_the_offset_has_45_minutes():
    moment = at("Pacific/Chatham", 2026, 4, 5, 3, 30)  # +13:45, just before the clock goes back
    assert latest_fire("0 */2 * * *", "Pacific/Chatham", moment) == at("Pacific/Chatham", 2026, 4, 5, 2, 0)


def test_no_run_is_lost_where_the_shift_is_30_minutes():
    # Lord Howe: 02:00 +10:30 becomes 02:30 +11:00; 02:30 exists and is an hourly job's run.
    start = at("Australia/Lord_Howe", 2026, 10, 4, 1, 30)
    assert next_fire("30 * * * *", "Australia/Lord_Howe", start) == at("Australia/Lord_Howe", 2026, 10, 4, 2, 30)
    # In April 02:00 +11:00 becomes 01:30 +10:30: the hourly job runs in both copies of 01:30.
    first = at("Australia/Lord_Howe", 2026, 4, 5, 1, 30)
    assert next_fire("30 * * * *", "Australia/Lord_Howe", first) == at("Australia/Lord_Howe", 2026, 4, 5, 1, 30, fold=1)


def test_no_run_in_an_hour_that_does_not_exist_that_day():
    # Santiago skips local midnight on Sunday 6 September 2026: "*/30 0 * * 0" names only that hour.
    after = at("America/Santiago", 2026, 9, 5, 23, 0)
    assert next_fire("*/30 0 * * 0", "America/Santiago", after) == at("America/Santiago", 2026, 9, 13, 0, 0)


def test_waits_are_computed_from_the_right_time():
    # A catch-up after an outage across Lord Howe's change is for 02:30 +11:00, not an hour earlier.
    assert latest_fire("30 * * * *", "Australia/Lord_Howe", utc(2026, 10, 3, 15, 40)) == utc(2026, 10, 3, 15, 30)
    # A job created in Chatham at 03:30 +13:45 on its change day first runs at 04:00 +12:45, not two hours late.
    created = at("Pacific/Chatham", 2026, 4, 5, 3, 30)
    assert next_fire("0 */2 * * *", "Pacific/Chatham", created) == at("Pacific/Chatham", 2026, 4, 5, 4, 0)


@pytest.mark.parametrize("moment", [datetime(9999, 12, 31, 23, 0, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)])
def test_next_fire_at_the_end_of_the_calendar_is_a_clear_error_not_a_hang(moment):
    with pytest.raises(CronError, match="no fire time after 9999"):
        next_fire("0 0 29 2 *", "Europe/London", moment)


def test_latest_fire_at_the_start_of_the_calendar_is_none_not_a_hang():
    assert latest_fire("0 0 29 2 *", "Pacific/Chatham", datetime(1, 1, 2, tzinfo=UTC)) is None
    assert latest_fire("* * * * *", "Pacific/Chatham", datetime(1, 1, 1, 0, 0, tzinfo=UTC)) is None


def test_cronsim_gets_these_wrong_which_is_why_firing_is_ours():
    """The library's answers (cronsim 2.8) for the inputs above; ours are asserted in the tests above.

    If an upgrade makes this fail, cronsim may have been fixed: compare it with the reference again.
    """

    def cronsim_next(expression: str, zone: str, after: datetime) -> datetime:
        return next(CronSim(expression, after.astimezone(ZoneInfo(zone)))).astimezone(UTC)

    # Before its start (00:30Z), where ours gives the next day.
    assert cronsim_next("30 1 * * *", "Europe/London", utc(2026, 10, 25, 1, 10)) == utc(2026, 10, 25, 0, 30)
    # Skips 02:30 +11:00, the first 02:30 after Lord Howe's 30-minute jump.
    lord_howe = at("Australia/Lord_Howe", 2026, 10, 4, 1, 30)
    assert cronsim_next("30 * * * *", "Australia/Lord_Howe", lord_howe) == at("Australia/Lord_Howe", 2026, 10, 4, 3, 30)
    # Runs at 01:00 -03:00 on the day Santiago's midnight does not exist; the expression names hour 0 only.
    santiago = at("America/Santiago", 2026, 9, 5, 23, 0)
    assert cronsim_next("*/30 0 * * 0", "America/Santiago", santiago) == at("America/Santiago", 2026, 9, 6, 1, 0)
    # Reads the one-value range "5-5/2" as "5/2" (every other minute from 5); cron means minute 5 only.
    assert cronsim_next("5-5/2 * * * *", "UTC", utc(2026, 1, 1, 0, 5)) == utc(2026, 1, 1, 0, 7)
    assert next_fire("5-5/2 * * * *", "UTC", utc(2026, 1, 1, 0, 5)) == utc(2026, 1, 1, 1, 5)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 0 */31 2 mon", utc(2000, 1, 1), utc(2010, 2, 1)),
        ("0 0 29 2 */7", utc(2011, 12, 29), utc(2032, 2, 29)),  # 20 years on: found, not given up on
        ("* * * * *", utc(9997, 12, 30, 23, 59), utc(9997, 12, 31, 0, 0)),
    ],
)
def test_rare_and_far_fire_times_are_found(expression, after, expected):
    assert next_fire(expression, "UTC", after) == expected
    assert latest_fire(expression, "UTC", expected) == expected
