"""The independent cron reference (tests/scheduler/cron/reference.py) against cases worked out by hand.

Every expected list below was derived on paper from Debian's cron.c loop and cron(8), not by running the code:
the comments give the local wall-clock times, the UTC instants, and which branch of the loop applies
(``timeDiff = timeRunning - virtualTime``; "usual" is ``timeDiff == 1``, "medium" 5 < timeDiff <= 180,
"negative" -180 < timeDiff <= 0, "large" beyond 180 either way, "small" 1 < timeDiff <= 5).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.scheduler.cron.reference import (
    MACROS,
    ReferenceCron,
    fire_times,
    parse,
    replay_clock,
    transitions,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def fires(expression: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    return fire_times(parse(expression), zone, start, end)


def every(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    moments, moment = [], start
    while moment < end:
        moments.append(moment)
        moment += step
    return moments


# Local day 2026-03-29 in London: 00:00 GMT (= 00:00 UTC) to 24:00 BST (= 23:00 UTC), 23 real hours.
# At 01:00 UTC the wall clock goes from 00:59 GMT to 02:00 BST: timeDiff = 61, the "medium" case.
LONDON_SPRING = (utc(2026, 3, 29), utc(2026, 3, 29, 23))
# Local day 2026-10-25 in London: 00:00 BST (= 23:00 UTC on the 24th) to 24:00 GMT (= 00:00 UTC on the 26th),
# 25 real hours. At 01:00 UTC the wall clock goes from 01:59 BST back to 01:00 GMT: timeDiff = -59, "negative";
# virtualTime stays at 01:59 until the wall clock reaches 02:00 GMT (02:00 UTC), which is the usual case again.
LONDON_AUTUMN = (utc(2026, 10, 24, 23), utc(2026, 10, 26))


# ---------------------------------------------------------------------------------------------------- parse


def test_parse_numbers_ranges_steps_and_lists() -> None:
    cron = parse("5,10-12,40-50/5 */6 1-31/10 */4 *")
    assert cron.minutes == {5, 10, 11, 12, 40, 45, 50}
    assert cron.hours == {0, 6, 12, 18}
    assert cron.days_of_month == {1, 11, 21, 31}
    assert cron.months == {1, 5, 9}
    assert cron.days_of_week == set(range(7))
    assert parse("05 00 01 01 *").minutes == {5}  # leading zeros are numbers, as atoi reads them


def test_parse_a_slash_n_runs_to_the_field_maximum() -> None:
    assert parse("10/20 * * * *").minutes == {10, 30, 50}
    assert parse("* 22/1 * * *").hours == {22, 23}
    assert parse("* * 25/3 * *").days_of_month == {25, 28, 31}
    # The weekday field runs 0-7, so 1/2 is 1,3,5,7 and 7 is Sunday.
    assert parse("* * * * 1/2").days_of_week == {1, 3, 5, 0}


def test_parse_names_in_any_case() -> None:
    cron = parse("0 0 * JAN-mar,Dec Mon-FRI,sun")
    assert cron.months == {1, 2, 3, 12}
    assert cron.days_of_week == {1, 2, 3, 4, 5, 0}
    assert parse("0 0 * * SAT").days_of_week == {6}
    assert parse("0 0 * aug-oct/2 *").months == {8, 10}


def test_seven_is_sunday() -> None:
    assert parse("0 0 * * 7").days_of_week == {0}
    assert parse("0 0 * * 5-7").days_of_week == {5, 6, 0}
    assert parse("0 0 * * 0,7").days_of_week == {0}
    assert parse("0 0 * * */2").days_of_week == {0, 2, 4, 6}  # * is 0-7 in this field
    sunday = datetime(2026, 3, 1, 0, 0)  # noqa: DTZ001 -- a naive wall-clock time
    assert sunday.weekday() == 6
    assert parse("0 0 * * 7").matches(sunday)
    assert parse("0 0 * * sun").matches(sunday)
    assert not parse("0 0 * * 1-6").matches(sunday)


def wall(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute)  # noqa: DTZ001 -- matches() takes naive wall-clock times


def test_days_match_either_field_when_neither_starts_with_a_star() -> None:
    cron = parse("0 0 13 * fri")  # neither field starts with *: OR
    assert not cron.dom_star and not cron.dow_star
    assert cron.matches(wall(2026, 3, 6))  # a Friday, the 6th
    assert cron.matches(wall(2026, 4, 13))  # a Monday, the 13th
    assert cron.matches(wall(2026, 2, 13))  # a Friday, the 13th
    assert not cron.matches(wall(2026, 3, 7))  # a Saturday, the 7th


def test_days_match_both_fields_when_one_starts_with_a_star() -> None:
    assert parse("0 0 * * fri").matches(wall(2026, 3, 6))
    assert not parse("0 0 * * fri").matches(wall(2026, 4, 13))
    assert parse("0 0 13 * *").matches(wall(2026, 4, 13))
    assert not parse("0 0 13 * *").matches(wall(2026, 3, 6))
    # "*/2" starts with a star, so the day fields are ANDed: odd days that are also Mondays.
    cron = parse("0 0 */2 * mon")
    assert cron.dom_star and not cron.dow_star
    assert cron.matches(wall(2026, 3, 9))  # Monday the 9th
    assert not cron.matches(wall(2026, 3, 16))  # Monday the 16th (even)
    assert not cron.matches(wall(2026, 3, 11))  # Wednesday the 11th (would match with OR)


def test_matches_checks_minute_hour_and_month() -> None:
    cron = parse("30 1 * 3 *")
    assert cron.matches(wall(2026, 3, 29, 1, 30))
    assert not cron.matches(wall(2026, 3, 29, 1, 31))
    assert not cron.matches(wall(2026, 3, 29, 2, 30))
    assert not cron.matches(wall(2026, 4, 29, 1, 30))
    with pytest.raises(ValueError, match="naive"):
        cron.matches(utc(2026, 3, 29, 1, 30))


@pytest.mark.parametrize(
    ("expression", "wildcard"),
    [
        ("*/15 2 * * *", True),
        ("0 * * * *", True),
        ("* * * * *", True),
        ("*/30 1 * * *", True),
        ("@hourly", True),
        ("0-59 2 * * *", False),
        ("30 1 * * *", False),
        ("0 0-23 * * *", False),
        ("0 0 * * *", False),
        ("@daily", False),
        ("@weekly", False),
        ("@yearly", False),
    ],
)
def test_wildcard_is_a_star_at_the_start_of_the_minute_or_hour(expression: str, wildcard: bool) -> None:
    assert parse(expression).wildcard is wildcard


@pytest.mark.parametrize(
    ("macro", "fields"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
    ],
)
def test_macros(macro: str, fields: str) -> None:
    assert MACROS[macro] == fields
    from_macro, from_fields = parse(macro), parse(f"  {fields}\t")
    assert from_macro.expression == macro
    assert vars(from_macro) | {"expression": ""} == vars(from_fields) | {"expression": ""}


def test_macro_sets() -> None:
    weekly = parse("@weekly")
    assert (weekly.minutes, weekly.hours, weekly.days_of_week) == ({0}, {0}, {0})
    assert weekly.dom_star and not weekly.dow_star
    yearly = parse("@annually")
    assert (yearly.days_of_month, yearly.months) == ({1}, {1})
    assert not yearly.dom_star and yearly.dow_star


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "   ",
        "* * * *",
        "* * * * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * 32 * *",
        "* * * 0 *",
        "* * * 13 *",
        "* * * * 8",
        "+5 * * * *",
        "1.5 * * * *",
        "*/0 * * * *",
        "*/ * * * *",
        "*/x * * * *",
        "*/-1 * * * *",
        "1/2/3 * * * *",
        "5-1 * * * *",
        "1- * * * *",
        "-5 * * * *",
        "1-2-3 * * * *",
        "1-70/5 * * * *",
        "*-5 * * * *",
        "1,,2 * * * *",
        "1, * * * *",
        "a * * * *",
        "jan * * * *",
        "* * * foo *",
        "* * * * monday",
        "* * * * sat-sun",
        "* * * mon *",
        "* * * * jan",
        "\u0665 * * * *",
        "@reboot",
        "@every",
        "@Daily",
        "@daily extra",
        "@",
    ],
)
def test_wrong_expressions_raise_value_error(expression: str) -> None:
    with pytest.raises(ValueError):
        parse(expression)


# ------------------------------------------------------------------------------- London, 2026-03-29 (spring)


def test_london_spring_fixed_job_in_the_skipped_hour_runs_once_right_after_the_jump() -> None:
    # 01:30 GMT never happens. At 01:00 UTC (wall 00:59 GMT -> 02:00 BST, medium) the fixed-time jobs of every
    # wall minute 01:00..02:00 are run: 01:30 is one, so the job starts at 01:00 UTC (02:00 BST), once.
    assert fires("30 1 * * *", "Europe/London", *LONDON_SPRING) == [utc(2026, 3, 29, 1)]


def test_london_spring_every_quarter_hour_runs_92_times() -> None:
    # Wall hours 00 and 02..23 exist: 23 hours x 4 = 92. 01:00-01:45 never happen and, being wildcard, are not
    # caught up; at 01:00 UTC the medium case runs the wildcard jobs of the new time, 02:00 BST, which matches.
    # So the job starts at every quarter hour of UTC from 00:00 to 22:45.
    runs = fires("*/15 * * * *", "Europe/London", *LONDON_SPRING)
    assert len(runs) == 92
    assert runs == every(*LONDON_SPRING, timedelta(minutes=15))


def test_london_spring_hourly_runs_every_real_hour() -> None:
    # 00:00 GMT (00:00 UTC), then 02:00 BST at 01:00 UTC (medium, wildcard of the new time), 03:00 BST at 02:00
    # UTC, ... 23:00 BST at 22:00 UTC: 23 runs, one per real hour.
    expected = every(*LONDON_SPRING, timedelta(hours=1))
    assert len(expected) == 23
    assert fires("0 * * * *", "Europe/London", *LONDON_SPRING) == expected
    assert fires("@hourly", "Europe/London", *LONDON_SPRING) == expected


def test_london_spring_wildcard_job_in_the_skipped_hour_does_not_run() -> None:
    # */30 in the minute makes it a wildcard job: only the new time (02:00 BST) is tried at the jump, and hour 1
    # never occurs on the wall clock that day.
    assert fires("*/30 1 * * *", "Europe/London", *LONDON_SPRING) == []


def test_london_spring_fixed_jobs_either_side_of_the_gap() -> None:
    # 00:59 GMT is 00:59 UTC (usual case); 02:00 BST is 01:00 UTC (caught up by the medium case's fixed pass, which
    # includes timeRunning itself); 02:01 BST is 01:01 UTC (usual case).
    assert fires("59 0 * * *", "Europe/London", *LONDON_SPRING) == [utc(2026, 3, 29, 0, 59)]
    assert fires("0 2 * * *", "Europe/London", *LONDON_SPRING) == [utc(2026, 3, 29, 1)]
    assert fires("1 2 * * *", "Europe/London", *LONDON_SPRING) == [utc(2026, 3, 29, 1, 1)]
    # Several skipped minutes match, but they all start at the same real minute: one start.
    assert fires("0-59 1 * * *", "Europe/London", *LONDON_SPRING) == [utc(2026, 3, 29, 1)]


# ------------------------------------------------------------------------------- London, 2026-10-25 (autumn)


def test_london_autumn_fixed_job_in_the_repeated_hour_runs_once() -> None:
    # 01:30 BST is 00:30 UTC (usual case): it runs. 01:30 GMT is 01:30 UTC, while virtualTime is still 01:59 BST
    # (timeDiff = -29, negative): only wildcard jobs are run, so it does not run again.
    assert fires("30 1 * * *", "Europe/London", *LONDON_AUTUMN) == [utc(2026, 10, 25, 0, 30)]


def test_london_autumn_every_quarter_hour_runs_100_times() -> None:
    # 25 real hours, and wildcard jobs run on the new time in the repeated hour too: 25 x 4 = 100, at every
    # quarter hour of UTC from 23:00 on the 24th to 23:45 on the 25th.
    runs = fires("*/15 * * * *", "Europe/London", *LONDON_AUTUMN)
    assert len(runs) == 100
    assert runs == every(*LONDON_AUTUMN, timedelta(minutes=15))


def test_london_autumn_hourly_runs_at_both_one_oclocks() -> None:
    # 00:00 BST (23:00 UTC), 01:00 BST (00:00 UTC), 01:00 GMT (01:00 UTC, negative case: wildcard job, runs),
    # 02:00 GMT (02:00 UTC), ... 23:00 GMT (23:00 UTC): 25 runs, one per real hour.
    runs = fires("0 * * * *", "Europe/London", *LONDON_AUTUMN)
    assert runs == every(*LONDON_AUTUMN, timedelta(hours=1))
    assert len(runs) == 25
    assert {utc(2026, 10, 25, 0), utc(2026, 10, 25, 1)} <= set(runs)


def test_london_autumn_wildcard_job_in_the_repeated_hour_runs_in_both_copies() -> None:
    # 01:00 BST = 00:00 UTC, 01:30 BST = 00:30 UTC (usual case); 01:00 GMT = 01:00 UTC and 01:30 GMT = 01:30 UTC
    # (negative case, which still runs wildcard jobs on the new time).
    assert fires("*/30 1 * * *", "Europe/London", *LONDON_AUTUMN) == [
        utc(2026, 10, 25, 0, 0),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 1, 0),
        utc(2026, 10, 25, 1, 30),
    ]


def test_london_autumn_first_minute_after_the_repeat_is_the_usual_case() -> None:
    # At 01:59 UTC the wall clock reads 01:59 GMT = virtualTime (timeDiff 0, negative: a fixed 01:59 job does not
    # run again); at 02:00 UTC it reads 02:00 GMT, timeDiff 1: fixed jobs run again.
    assert fires("59 1 * * *", "Europe/London", *LONDON_AUTUMN) == [utc(2026, 10, 25, 0, 59)]
    assert fires("0 2 * * *", "Europe/London", *LONDON_AUTUMN) == [utc(2026, 10, 25, 2)]


def test_london_daily_fixed_job_runs_once_on_every_local_day_of_2026() -> None:
    # The man page's promise for fixed-time jobs, over a whole year: skipped times are caught up and repeated
    # times are not re-run, so a daily 01:30 job starts exactly once per local date.
    runs = fires("30 1 * * *", "Europe/London", utc(2026, 1, 1), utc(2027, 1, 1))
    london = ZoneInfo("Europe/London")
    local_dates = [run.astimezone(london).date() for run in runs]
    assert len(runs) == 365
    assert sorted(set(local_dates)) == [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]


# -------------------------------------------------------------------------------------- Australia/Lord_Howe


def test_lord_howe_half_hour_jump_forward() -> None:
    # 2026-10-04 at 02:00 +10:30 (= 15:30 UTC on the 3rd) the wall clock goes to 02:30 +11:00.
    # At 15:29 UTC it reads 01:59; at 15:30 UTC 02:30: timeDiff = 31, medium. The wildcard job "30 * * * *" is
    # run on the new time 02:30 then.
    # 23:30 +10:30 = 13:00 UTC, 00:30 = 14:00 UTC, 01:30 = 15:00 UTC, 02:30 +11:00 = 15:30 UTC,
    # 03:30 = 16:30 UTC, 04:30 = 17:30 UTC.
    assert fires("30 * * * *", "Australia/Lord_Howe", utc(2026, 10, 3, 13), utc(2026, 10, 3, 18)) == [
        utc(2026, 10, 3, 13, 0),
        utc(2026, 10, 3, 14, 0),
        utc(2026, 10, 3, 15, 0),
        utc(2026, 10, 3, 15, 30),
        utc(2026, 10, 3, 16, 30),
        utc(2026, 10, 3, 17, 30),
    ]


def test_lord_howe_fixed_job_in_the_skipped_half_hour_is_caught_up() -> None:
    # 02:15 on 2026-10-04 never happens; the medium case's fixed pass covers wall minutes 02:00..02:30 at 15:30 UTC.
    window = (utc(2026, 10, 3, 12), utc(2026, 10, 3, 20))
    assert fires("15 2 * * *", "Australia/Lord_Howe", *window) == [utc(2026, 10, 3, 15, 30)]
    # A wildcard job in the skipped half hour is not: "*/15 2" would want 02:00 and 02:15; only 02:30 is tried at
    # the jump (a match), then 02:45 at 15:45 UTC.
    assert fires("*/15 2 * * *", "Australia/Lord_Howe", *window) == [utc(2026, 10, 3, 15, 30), utc(2026, 10, 3, 15, 45)]


def test_lord_howe_half_hour_jump_back() -> None:
    # 2026-04-05 at 02:00 +11:00 (= 15:00 UTC on the 4th) the wall clock goes back to 01:30 +10:30:
    # timeDiff = 01:30 - 01:59 = -29, negative, until 02:00 +10:30 (15:30 UTC).
    # "45 1": 01:45 +11:00 = 14:45 UTC runs; 01:45 +10:30 = 15:15 UTC is in the repeated time: not again.
    window = (utc(2026, 4, 4, 12), utc(2026, 4, 4, 18))
    assert fires("45 1 * * *", "Australia/Lord_Howe", *window) == [utc(2026, 4, 4, 14, 45)]
    # "*/15 1" is wildcard: 01:00, 01:15, 01:30, 01:45 +11:00 (14:00-14:45 UTC), then 01:30 and 01:45 +10:30
    # (15:00 and 15:15 UTC) again.
    assert fires("*/15 1 * * *", "Australia/Lord_Howe", *window) == [
        utc(2026, 4, 4, 14, 0),
        utc(2026, 4, 4, 14, 15),
        utc(2026, 4, 4, 14, 30),
        utc(2026, 4, 4, 14, 45),
        utc(2026, 4, 4, 15, 0),
        utc(2026, 4, 4, 15, 15),
    ]


# ------------------------------------------------------------------------------------------- Pacific/Chatham


def test_chatham_every_two_hours_around_the_april_change() -> None:
    # 2026-04-05 at 03:45 +13:45 (= 14:00 UTC on the 4th) the wall clock goes back to 02:45 +12:45.
    # "0 */2" is wildcard (hour starts with *). 00:00 +13:45 = 10:15 UTC, 02:00 +13:45 = 12:15 UTC; the repeated
    # wall time is 02:45-03:44, which holds no even hour o'clock; 04:00 +12:45 = 15:15 UTC, 06:00 = 17:15 UTC,
    # 08:00 = 19:15 UTC. Three real hours between 12:15 and 15:15 UTC, and no duplicate.
    assert fires("0 */2 * * *", "Pacific/Chatham", utc(2026, 4, 4, 9), utc(2026, 4, 4, 20)) == [
        utc(2026, 4, 4, 10, 15),
        utc(2026, 4, 4, 12, 15),
        utc(2026, 4, 4, 15, 15),
        utc(2026, 4, 4, 17, 15),
        utc(2026, 4, 4, 19, 15),
    ]


def test_chatham_fixed_job_in_the_repeated_time_runs_once() -> None:
    # 03:00 +13:45 = 13:15 UTC runs; 03:00 +12:45 = 14:15 UTC comes while virtualTime is 03:44 (timeDiff -44):
    # negative case, not again. The wildcard "0 *" runs at both 03:00s.
    window = (utc(2026, 4, 4, 12), utc(2026, 4, 4, 16))
    assert fires("0 3 * * *", "Pacific/Chatham", *window) == [utc(2026, 4, 4, 13, 15)]
    assert fires("0 * * * *", "Pacific/Chatham", *window) == [
        utc(2026, 4, 4, 12, 15),  # 02:00 +13:45
        utc(2026, 4, 4, 13, 15),  # 03:00 +13:45
        utc(2026, 4, 4, 14, 15),  # 03:00 +12:45
        utc(2026, 4, 4, 15, 15),  # 04:00 +12:45
    ]


# ------------------------------------------------------------------------------------------ America/Santiago


def test_santiago_skipped_midnight_wildcard_sunday_job_does_not_run() -> None:
    # 2026-09-06 (a Sunday) at 00:00 -04 (= 04:00 UTC) the wall clock goes to 01:00 -03: Saturday 23:59 then
    # Sunday 01:00, timeDiff = 61, medium. "*/30 0 * * 0" is wildcard: only Sunday 01:00 is tried, hour 1.
    # So no run that Sunday; the Sundays either side run at 00:00 and 00:30:
    # 2026-08-30 (-04): 04:00 and 04:30 UTC; 2026-09-13 (-03): 03:00 and 03:30 UTC.
    sunday = (utc(2026, 9, 6, 3), utc(2026, 9, 7, 3))  # Saturday 23:00 -04 to Monday 00:00 -03, jump included
    assert fires("*/30 0 * * 0", "America/Santiago", *sunday) == []
    assert fires("*/30 0 * * 0", "America/Santiago", utc(2026, 8, 29), utc(2026, 9, 15)) == [
        utc(2026, 8, 30, 4, 0),
        utc(2026, 8, 30, 4, 30),
        utc(2026, 9, 13, 3, 0),
        utc(2026, 9, 13, 3, 30),
    ]


def test_santiago_skipped_midnight_fixed_sunday_job_is_caught_up() -> None:
    # The fixed-time "30 0 * * 0": the medium case's fixed pass covers Sunday 00:00..01:00, so 00:30 Sunday runs at
    # 04:00 UTC (01:00 -03). The weekday comes from the skipped wall minute, a Sunday.
    assert fires("30 0 * * 0", "America/Santiago", utc(2026, 8, 29), utc(2026, 9, 15)) == [
        utc(2026, 8, 30, 4, 30),
        utc(2026, 9, 6, 4, 0),
        utc(2026, 9, 13, 3, 30),
    ]


# ---------------------------------------------------------------------------------------------- Europe/Dublin


@pytest.mark.parametrize(
    "expression", ["30 1 * * *", "*/15 * * * *", "0 * * * *", "*/30 1 * * *", "0-59 1 * * *", "@daily"]
)
@pytest.mark.parametrize("window", [LONDON_SPRING, LONDON_AUTUMN], ids=["spring", "autumn"])
def test_dublin_behaves_like_london(expression: str, window: tuple[datetime, datetime]) -> None:
    # In the IANA data Dublin's summer time is its standard time and its winter time is a negative "DST", but the
    # wall clock is London's (GMT in winter, UTC+1 in summer, changing at 01:00 UTC), and cron only sees the wall
    # clock.
    assert fires(expression, "Europe/Dublin", *window) == fires(expression, "Europe/London", *window)


def test_dublin_changes_offset_when_london_does() -> None:
    year = (utc(2026, 1, 1), utc(2027, 1, 1))
    assert transitions("Europe/Dublin", *year) == transitions("Europe/London", *year)


# ------------------------------------------------------------------------------ a large jump: Samoa, 2011


def test_a_jump_of_more_than_three_hours_is_a_correction_and_nothing_is_caught_up() -> None:
    # Pacific/Apia skipped 2011-12-30: 23:59 on the 29th (-10:00) was followed by 00:00 on the 31st (+14:00), at
    # 10:00 UTC on the 30th; timeDiff = 1441 > 180, the large case: virtualTime jumps, only the new minute runs.
    # "30 23": 23:30 on the 28th (-10) = 09:30 UTC on the 29th; 23:30 on the 29th = 09:30 UTC on the 30th; the
    # 30th's never happens and is not caught up; 23:30 on the 31st (+14) = 09:30 UTC on the 31st.
    window = (utc(2011, 12, 29), utc(2012, 1, 1))
    assert fires("30 23 * * *", "Pacific/Apia", *window) == [
        utc(2011, 12, 29, 9, 30),
        utc(2011, 12, 30, 9, 30),
        utc(2011, 12, 31, 9, 30),
    ]
    # "0 0" on the 31st is the new minute itself, run by the large case at 10:00 UTC on the 30th.
    assert utc(2011, 12, 30, 10) in fires("0 0 * * *", "Pacific/Apia", *window)


# ------------------------------------------------------------------ the loop's branches, on a synthetic clock

# Wall minutes since the epoch of Monday 2026-01-05 00:00; the clock lists are what cron reads at each real minute.
MONDAY = int((datetime(2026, 1, 5, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(minutes=1))


def replay(expression: str, clock: list[int]) -> list[int]:
    return replay_clock(parse(expression), [MONDAY + minute for minute in clock])


def test_usual_case_runs_every_matching_minute() -> None:
    assert replay("* * * * *", [0, 1, 2, 3]) == [0, 1, 2, 3]
    assert replay("2 0 * * *", [0, 1, 2, 3]) == [2]
    assert replay("2 0 * * *", []) == []


def test_small_jump_runs_every_job_of_each_missed_minute() -> None:
    # 00:01 -> 00:06: timeDiff 5, "woke up late": wall minutes 00:02..00:06 are run in full, wildcard jobs too.
    assert replay("3 * * * *", [0, 1, 6]) == [2]
    assert replay("3 0 * * *", [0, 1, 6]) == [2]
    assert replay("* * * * *", [0, 1, 6]) == [0, 1, 2]


def test_medium_jump_runs_wildcard_jobs_now_and_catches_up_fixed_ones() -> None:
    # 00:01 -> 00:07: timeDiff 6. The wildcard "3 *" wanted 00:03: not run. The fixed "3 0" is caught up, and
    # the wildcard "7 *" runs on the new time.
    assert replay("3 * * * *", [0, 1, 7]) == []
    assert replay("3 0 * * *", [0, 1, 7]) == [2]
    assert replay("7 * * * *", [0, 1, 7]) == [2]
    # 00:01 -> 03:01: timeDiff 180, still medium: 02:00 is caught up.
    assert replay("0 2 * * *", [0, 1, 181]) == [2]


def test_large_jump_forward_runs_only_the_new_minute() -> None:
    # 00:01 -> 03:02: timeDiff 181, a correction: 02:00 is not caught up; 03:02 itself runs, fixed or not.
    assert replay("0 2 * * *", [0, 1, 182]) == []
    assert replay("2 3 * * *", [0, 1, 182]) == [2]
    assert replay("2 * * * *", [0, 1, 182]) == [2]


def test_going_back_less_than_three_hours_runs_only_wildcard_jobs_and_holds_virtual_time() -> None:
    # 12:01 -> 09:02: timeDiff -179, negative. The fixed "2 9" does not run; the wildcard "2 *" does. Virtual time
    # stays 12:01, so the fixed "3 9" at 09:03 (timeDiff -178) does not run either, nor "1 12" when the wall clock
    # reads 12:01 again (timeDiff 0); 12:02 is the usual case again.
    clock = [720, 721, 542, 543, 721, 722]
    assert replay("2 9 * * *", clock) == []
    assert replay("2 * * * *", clock) == [2, 5]
    assert replay("3 9 * * *", clock) == []
    assert replay("1 12 * * *", clock) == [1]
    assert replay("2 12 * * *", clock) == [5]


@pytest.mark.parametrize("back", [180, 181, 600])
def test_going_back_three_hours_or_more_is_a_correction(back: int) -> None:
    # Debian's cron.c classifies with `if (timeDiff > -(3*MINUTE_COUNT)) wakeupKind = 0;` (negative), so a
    # timeDiff of exactly -180 is already the default branch: virtual time jumps back and everything runs.
    # 12:01 -> 12:01 - back, then one minute later.
    clock = [720, 721, 721 - back, 722 - back]
    assert replay(f"{(721 - back) % 60} {(721 - back) // 60} * * *", clock) == [2]
    assert replay(f"{(722 - back) % 60} {(722 - back) // 60} * * *", clock) == [3]


def test_no_pass_when_the_wall_minute_has_not_changed() -> None:
    # cron sleeps in `do { cron_sleep(); set_time(); } while (clockTime == timeRunning)`: a real minute that
    # leaves the wall minute where it was gets no find_jobs pass at all.
    assert replay("* * * * *", [0, 0, 1]) == [0, 2]


# ---------------------------------------------------------------------------------- fire_times, transitions


def test_fire_times_without_transitions_is_every_matching_minute() -> None:
    start, end = utc(2026, 2, 27), utc(2026, 3, 3)
    for expression in ["*/7 * * * *", "0 9-17 * * mon-fri", "30 1 28-31 * *", "0 0 1 * sun", "15 */5 * 2,3 *"]:
        cron = parse(expression)
        minutes = every(start, end, timedelta(minutes=1))
        expected = [m for m in minutes if cron.matches(m.replace(tzinfo=None))]
        assert fire_times(cron, "UTC", start, end) == expected, expression
        # A fixed offset shifts every run by that offset, exactly.
        shifted = [m - timedelta(hours=5) for m in expected]
        assert fire_times(cron, "Etc/GMT-5", start - timedelta(hours=5), end - timedelta(hours=5)) == shifted


def test_fire_times_window_is_half_open_and_aware_utc() -> None:
    runs = fires("0 * * * *", "Europe/Paris", utc(2026, 5, 1, 10), utc(2026, 5, 1, 13))
    assert runs == [utc(2026, 5, 1, 10), utc(2026, 5, 1, 11), utc(2026, 5, 1, 12)]
    assert all(run.tzinfo is UTC for run in runs)
    assert fires("* * * * *", "UTC", utc(2026, 5, 1), utc(2026, 5, 1)) == []
    paris = ZoneInfo("Europe/Paris")
    assert fires("0 * * * *", "Europe/Paris", datetime(2026, 5, 1, 12, tzinfo=paris), utc(2026, 5, 1, 12)) == [
        utc(2026, 5, 1, 10),
        utc(2026, 5, 1, 11),
    ]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2026, 5, 1), utc(2026, 5, 2)),  # noqa: DTZ001 -- deliberately naive
        (utc(2026, 5, 1), datetime(2026, 5, 2)),  # noqa: DTZ001 -- deliberately naive
        (utc(2026, 5, 1) + timedelta(seconds=30), utc(2026, 5, 2)),
        (utc(2026, 5, 2), utc(2026, 5, 1)),
    ],
)
def test_bad_windows_raise_value_error(start: datetime, end: datetime) -> None:
    cron = parse("* * * * *")
    with pytest.raises(ValueError):
        fire_times(cron, "UTC", start, end)
    with pytest.raises(ValueError):
        transitions("UTC", start, end)


def test_transitions() -> None:
    year = (utc(2026, 1, 1), utc(2027, 1, 1))
    assert transitions("Europe/London", *year) == [utc(2026, 3, 29, 1), utc(2026, 10, 25, 1)]
    assert transitions("Australia/Lord_Howe", *year) == [utc(2026, 4, 4, 15), utc(2026, 10, 3, 15, 30)]
    assert transitions("Pacific/Chatham", *year) == [utc(2026, 4, 4, 14), utc(2026, 9, 26, 14)]
    assert transitions("America/Santiago", *year) == [utc(2026, 4, 5, 3), utc(2026, 9, 6, 4)]
    assert transitions("UTC", *year) == []
    assert transitions("Pacific/Apia", utc(2011, 12, 1), utc(2012, 1, 1)) == [utc(2011, 12, 30, 10)]


def test_transitions_window_is_half_open() -> None:
    assert transitions("Europe/London", utc(2026, 3, 29, 1), utc(2026, 3, 29, 2)) == [utc(2026, 3, 29, 1)]
    assert transitions("Europe/London", utc(2026, 3, 29), utc(2026, 3, 29, 1)) == []
    assert transitions("Europe/London", utc(2026, 3, 29, 0, 59), utc(2026, 3, 29, 1, 1)) == [utc(2026, 3, 29, 1)]


def test_reference_cron_is_a_frozen_value() -> None:
    cron = parse("0 0 * * *")
    assert isinstance(cron, ReferenceCron)
    with pytest.raises(AttributeError):
        cron.wildcard = True  # type: ignore[misc]
