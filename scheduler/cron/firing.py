"""When a cron expression fires in a zone, by Debian cron's rules, daylight saving time included.

Debian's cron wakes every real minute and reads the local wall clock (cron.c, main loop). When the
wall clock moved by exactly one minute it runs the jobs matching it. Around a clock change:

- **forward** by up to three hours (spring): at the first real minute after the jump it runs the
  wildcard jobs matching the new wall time, and the fixed-time jobs matching any wall minute that was
  skipped, up to and including the new one (moves of five minutes or less run everything for every
  skipped minute);
- **back** by less than three hours (autumn): while the wall clock repeats minutes it already showed,
  only wildcard jobs run (by the wall clock as it reads); fixed-time jobs are not run again;
- a move of three hours or more is a correction: the new wall time is simply used.

A *wildcard* job has ``*`` at the start of its minute or hour field (``*/15 2 * * *``, ``0 * * * *``,
``@hourly``); the others are *fixed-time* jobs. cronsim, which the project used before, does not
follow these rules at every change (the README's "Daylight saving time" lists its faults, and
tests/scheduler/cron/test_firing.py compares this module with an independent replay of cron's loop):
this module replaces it for firing; its field parser is still used.

Times are whole minutes counted from the Unix epoch (``int``), real (UTC) or wall (UTC plus the zone's
offset then); datetimes only at the edges.
"""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 - wall-clock minutes are naive on purpose
_EPOCH_UTC = _EPOCH.replace(tzinfo=UTC)
_MINUTES_PER_DAY = 1440
#: Debian cron's limit between a daylight-saving change and a correction of the clock (cron.c).
_CHANGE_LIMIT = 180
#: Moves forward this small are "woke up late": every job runs for every minute missed (cron.c).
_LATE_LIMIT = 5
#: How far next/latest look before giving up (a validated expression fires at least every 8 years).
SEARCH_YEARS = 10


class NeverFires(ValueError):
    """No fire time within SEARCH_YEARS of the start."""


@dataclass(frozen=True)
class FieldSets:
    """An expression's five fields as sets of values, and the two flags cron keeps about them."""

    minutes: tuple[int, ...]  # sorted, 0-59
    hours: tuple[int, ...]  # sorted, 0-23
    days: frozenset[int]  # 1-31
    months: frozenset[int]  # 1-12
    weekdays: frozenset[int]  # 0-6, Sunday 0
    days_and: bool  # either day field starts with "*": both must match; else either may (cron's OR)
    wildcard: bool  # the minute or hour field starts with "*"

    def day_matches(self, day: date) -> bool:
        in_month = day.day in self.days
        in_week = day.isoweekday() % 7 in self.weekdays
        return (in_month and in_week) if self.days_and else (in_month or in_week)

    def matches(self, wall: int) -> bool:
        moment = _wall_datetime(wall)
        return (
            moment.minute in self.minutes
            and moment.hour in self.hours
            and moment.month in self.months
            and self.day_matches(moment.date())
        )


# --- wall-clock search (no zones) ------------------------------------------------------------------


def next_wall(fields: FieldSets, start: int, end: int) -> int | None:
    """The first wall minute in [start, end) matching ``fields``, or None."""
    if start >= end:
        return None
    moment = _wall_datetime(start)
    day, hour, minute = moment.date(), moment.hour, moment.minute
    last_day = _wall_datetime(end - 1).date()
    while day <= last_day:
        if day.month not in fields.months:
            day = _first_of_next_month(day)
            hour = minute = 0
            continue
        if fields.day_matches(day):
            found = _first_time_from(fields, hour, minute)
            if found is not None:
                wall = _wall_minutes(day, *found)
                return wall if wall < end else None
        day += timedelta(days=1)
        hour = minute = 0
    return None


def previous_wall(fields: FieldSets, start: int, end: int) -> int | None:
    """The last wall minute in [start, end) matching ``fields``, or None."""
    if start >= end:
        return None
    moment = _wall_datetime(end - 1)
    day, hour, minute = moment.date(), moment.hour, moment.minute
    first_day = _wall_datetime(start).date()
    while day >= first_day:
        if day.month not in fields.months:
            day = day.replace(day=1) - timedelta(days=1)
            hour, minute = 23, 59
            continue
        if fields.day_matches(day):
            found = _last_time_until(fields, hour, minute)
            if found is not None:
                wall = _wall_minutes(day, *found)
                return wall if wall >= start else None
        day -= timedelta(days=1)
        hour, minute = 23, 59
    return None


def _first_time_from(fields: FieldSets, hour: int, minute: int) -> tuple[int, int] | None:
    index = bisect.bisect_left(fields.hours, hour)
    if index < len(fields.hours) and fields.hours[index] == hour:
        at = bisect.bisect_left(fields.minutes, minute)
        if at < len(fields.minutes):
            return hour, fields.minutes[at]
        index += 1
    if index < len(fields.hours):
        return fields.hours[index], fields.minutes[0]
    return None


def _last_time_until(fields: FieldSets, hour: int, minute: int) -> tuple[int, int] | None:
    index = bisect.bisect_right(fields.hours, hour) - 1
    if index >= 0 and fields.hours[index] == hour:
        at = bisect.bisect_right(fields.minutes, minute) - 1
        if at >= 0:
            return hour, fields.minutes[at]
        index -= 1
    if index >= 0:
        return fields.hours[index], fields.minutes[-1]
    return None


def _first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def real_minutes(moment: datetime) -> int:
    """An aware datetime as whole minutes since the epoch (UTC), rounded down."""
    return int((moment - _EPOCH_UTC).total_seconds() // 60)


def real_datetime(real: int) -> datetime:
    """Whole minutes since the epoch as an aware UTC datetime."""
    return _EPOCH_UTC + timedelta(minutes=real)


def _wall_datetime(wall: int) -> datetime:
    return _EPOCH + timedelta(minutes=wall)


def _wall_minutes(day: date, hour: int, minute: int) -> int:
    return (day.toordinal() - _EPOCH_ORDINAL) * _MINUTES_PER_DAY + hour * 60 + minute


_EPOCH_ORDINAL = _EPOCH.toordinal()
_YEAR = 366 * _MINUTES_PER_DAY


# --- the zone's clock changes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """The zone's UTC offset changes at real minute ``at`` from ``before`` to ``after`` minutes."""

    at: int
    before: int
    after: int

    @property
    def shift(self) -> int:
        """Minutes the wall clock jumps: positive forward (spring), negative back (autumn)."""
        return self.after - self.before

    def repeats_until(self) -> int:
        """The first real minute after the repeated wall minutes of a move back (or ``at`` if none)."""
        if -_CHANGE_LIMIT < self.shift + 1 <= 0:  # cron.c: timeDiff in (-180, 0] at the change
            return self.at - self.shift
        return self.at

    def is_jump(self) -> bool:
        """A move forward that cron treats as skipped minutes (cron.c: 1 < timeDiff <= 180)."""
        return 1 < self.shift + 1 <= _CHANGE_LIMIT


def offset_at(zone: ZoneInfo, real: int) -> int:
    """The zone's UTC offset at real minute ``real``, in whole minutes."""
    offset = datetime.fromtimestamp(real * 60, zone).utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0


@functools.lru_cache(maxsize=8192)
def changes_in_year(zone_name: str, year: int) -> tuple[Change, ...]:
    """The zone's offset changes during ``year`` (UTC), found by probing every three hours and
    bisecting to the minute. Cached: beat asks about a handful of zones over and over."""
    zone = ZoneInfo(zone_name)
    start = _wall_minutes(date(year, 1, 1), 0, 0)
    end = _wall_minutes(date(year + 1, 1, 1), 0, 0)
    step = 360  # six hours: no zone changes its offset twice within that (tzdata since 1970)
    changes = []
    previous = offset_at(zone, start)
    probe = start
    while probe < end:
        following = min(probe + step, end)
        offset = offset_at(zone, following)
        if offset != previous:
            changes.append(_bisect_change(zone, probe, following, previous, offset))
        previous, probe = offset, following
    return tuple(change for change in changes if start < change.at <= end)


def _bisect_change(zone: ZoneInfo, low: int, high: int, before: int, after: int) -> Change:
    # offset(low) == before, offset(high) == after: find the first minute with the new offset.
    while high - low > 1:
        middle = (low + high) // 2
        if offset_at(zone, middle) == before:
            low = middle
        else:
            high = middle
    return Change(high, before, after)


def _changes_between(zone_name: str, first: int, last: int) -> list[Change]:
    """The zone's changes at real minutes in [first, last], oldest first (a year or two of them)."""
    years = range(_wall_datetime(first).year, _wall_datetime(last).year + 1)
    return [change for year in years for change in changes_in_year(zone_name, year) if first <= change.at <= last]


# --- next and latest -------------------------------------------------------------------------------


def _fires_at_jump(fields: FieldSets, change: Change) -> bool:
    """Whether cron starts the job at the first real minute after a jump forward (cron.c cases 1, 2)."""
    last_shown = change.at - 1 + change.before  # virtualTime
    now_shown = change.at + change.after  # timeRunning
    if change.shift + 1 <= _LATE_LIMIT or not fields.wildcard:
        return next_wall(fields, last_shown + 1, now_shown + 1) is not None
    return fields.matches(now_shown)


def next_real(fields: FieldSets, zone_name: str, start: int) -> int:
    """The first real minute at or after ``start`` at which the job starts. Raises NeverFires."""
    zone = ZoneInfo(zone_name)
    horizon = start + SEARCH_YEARS * _YEAR
    real = start
    while real < horizon:
        recent = _changes_between(zone_name, real - _CHANGE_LIMIT, real)
        change = recent[-1] if recent else None
        if change is not None and change.is_jump() and real == change.at:
            if _fires_at_jump(fields, change):
                return real
            real += 1
            continue
        if change is not None and real < change.repeats_until():
            # The wall clock repeats minutes it already showed: only wildcard jobs run (cron.c case 0).
            end = change.repeats_until()
            if fields.wildcard:
                wall = next_wall(fields, real + change.after, end + change.after)
                if wall is not None:
                    return wall - change.after
            real = end
            continue
        # A stretch with one offset: up to the next change, or a year (to bound the work per step).
        upcoming = _changes_between(zone_name, real + 1, min(horizon, real + _YEAR))
        end = upcoming[0].at if upcoming else min(horizon, real + _YEAR)
        offset = offset_at(zone, real)
        wall = next_wall(fields, real + offset, end + offset)
        if wall is not None:
            return wall - offset
        real = end
    raise NeverFires(f"no fire time within {SEARCH_YEARS} years")


def latest_real(fields: FieldSets, zone_name: str, at_or_before: int) -> int | None:
    """The last real minute at or before ``at_or_before`` at which the job starts, or None."""
    zone = ZoneInfo(zone_name)
    floor = at_or_before - SEARCH_YEARS * _YEAR
    real = at_or_before
    while real >= floor:
        chunk_start = max(floor, real - _YEAR)
        # From a little before the chunk: a move back just before it still governs its first minutes.
        earlier = _changes_between(zone_name, chunk_start - _CHANGE_LIMIT, real)
        change = earlier[-1] if earlier else None
        start = chunk_start if change is None else max(change.repeats_until(), change.at + change.is_jump())
        if real >= start:
            offset = offset_at(zone, real)
            wall = previous_wall(fields, start + offset, real + offset + 1)
            if wall is not None:
                return wall - offset
        if change is None:
            real = chunk_start - 1
            continue
        if change.is_jump():
            if _fires_at_jump(fields, change):
                return change.at
        elif change.repeats_until() > change.at and fields.wildcard:
            last = min(real, change.repeats_until() - 1)
            wall = previous_wall(fields, change.at + change.after, last + change.after + 1)
            if wall is not None:
                return wall - change.after
        real = change.at - 1
    return None
