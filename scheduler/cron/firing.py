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
follow these rules at every change, and its field parser misreads ``5-5/2``: the README's "Daylight
saving time" lists its faults. This module and ``fields`` replace it; tests/scheduler/cron/
test_against_reference.py compares them with an independent replay of cron's loop.

Times are whole minutes counted from the Unix epoch (``int``), real (UTC) or wall (UTC plus the zone's
offset then); datetimes only at the edges.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from scheduler.cron.zones import (
    CHANGE_LIMIT,
    FIRST_REAL,
    LAST_REAL,
    LATE_LIMIT,
    YEAR,
    Change,
    changes_between,
    offset_at,
    wall_datetime,
    wall_minutes,
)

#: How far next/latest look before giving up: longer than any gap between fires of an expression that
#: fires at all (29 February on one weekday can be 40 years apart across a century year).
SEARCH_YEARS = 50
#: Minutes by which a year's search widens the wall clock it looks at: more than a zone's offset moves.
_MARGIN = 26 * 60


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
        moment = wall_datetime(wall)
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
    moment = wall_datetime(start)
    day, hour, minute = moment.date(), moment.hour, moment.minute
    last_day = wall_datetime(end - 1).date()
    while day <= last_day:
        if day.month not in fields.months:
            day = _first_of_next_month(day)
            hour = minute = 0
            continue
        if fields.day_matches(day):
            found = _first_time_from(fields, hour, minute)
            if found is not None:
                wall = wall_minutes(day, *found)
                return wall if wall < end else None
        day += timedelta(days=1)
        hour = minute = 0
    return None


def previous_wall(fields: FieldSets, start: int, end: int) -> int | None:
    """The last wall minute in [start, end) matching ``fields``, or None."""
    if start >= end:
        return None
    moment = wall_datetime(end - 1)
    day, hour, minute = moment.date(), moment.hour, moment.minute
    first_day = wall_datetime(start).date()
    while day >= first_day:
        if day.month not in fields.months:
            day = day.replace(day=1) - timedelta(days=1)
            hour, minute = 23, 59
            continue
        if fields.day_matches(day):
            found = _last_time_until(fields, hour, minute)
            if found is not None:
                wall = wall_minutes(day, *found)
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


# --- next and latest -------------------------------------------------------------------------------


def _fires_at_jump(fields: FieldSets, change: Change) -> bool:
    """Whether cron starts the job at the first real minute after a jump forward (cron.c cases 1, 2)."""
    last_shown = change.at - 1 + change.before  # virtualTime
    now_shown = change.at + change.after  # timeRunning
    if change.shift + 1 <= LATE_LIMIT or not fields.wildcard:
        return next_wall(fields, last_shown + 1, now_shown + 1) is not None
    return fields.matches(now_shown)


def next_real(fields: FieldSets, zone_name: str, start: int) -> int:
    """The first real minute at or after ``start`` at which the job starts. Raises NeverFires."""
    zone = ZoneInfo(zone_name)
    horizon = min(start + SEARCH_YEARS * YEAR, LAST_REAL)
    real = max(start, FIRST_REAL)
    while real < horizon:
        chunk_end = min(horizon, real + YEAR)
        if not _may_fire(fields, zone, real, chunk_end):
            real = chunk_end  # a year without a matching day: no need to know its clock changes
            continue
        while real < chunk_end:
            found, real = _next_in_stretch(fields, zone_name, zone, real, chunk_end)
            if found is not None:
                return found
    raise NeverFires("before the calendar ends" if horizon == LAST_REAL else f"within {SEARCH_YEARS} years")


def _next_in_stretch(
    fields: FieldSets, zone_name: str, zone: ZoneInfo, real: int, limit: int
) -> tuple[int | None, int]:
    """Look from ``real`` through one stretch of the zone's clock: a jump, a repeat, or a span with
    one offset up to the next change (or ``limit``). Returns (the fire time or None, where to go on)."""
    recent = changes_between(zone_name, real - CHANGE_LIMIT, real)
    change = recent[-1] if recent else None
    if change is not None and change.is_jump() and real == change.at:
        return (real if _fires_at_jump(fields, change) else None), real + 1
    if change is not None and real < change.repeats_until():
        # The wall clock repeats minutes it already showed: only wildcard jobs run (cron.c case 0).
        end = change.repeats_until()
        if fields.wildcard and change.shift < -1:
            wall = next_wall(fields, real + change.after, end + change.after)
            if wall is not None:
                return wall - change.after, end
        return None, end
    upcoming = changes_between(zone_name, real + 1, limit)
    end = upcoming[0].at if upcoming else limit
    offset = offset_at(zone, real)
    wall = next_wall(fields, real + offset, end + offset)
    return (wall - offset if wall is not None else None), end


def latest_real(fields: FieldSets, zone_name: str, at_or_before: int) -> int | None:
    """The last real minute at or before ``at_or_before`` at which the job starts, or None."""
    zone = ZoneInfo(zone_name)
    floor = max(at_or_before - SEARCH_YEARS * YEAR, FIRST_REAL)
    real = min(at_or_before, LAST_REAL)
    while real >= floor:
        chunk_start = max(floor, real - YEAR)
        if not _may_fire(fields, zone, chunk_start, real + 1):
            real = chunk_start - 1
            continue
        while real >= chunk_start:
            found, real = _latest_in_stretch(fields, zone_name, zone, real, chunk_start)
            if found is not None:
                return found
    return None


def _latest_in_stretch(
    fields: FieldSets, zone_name: str, zone: ZoneInfo, real: int, limit: int
) -> tuple[int | None, int]:
    """Look back from ``real`` through one stretch of the zone's clock, not before ``limit`` (except
    to finish a change). Returns (the fire time or None, where to go on)."""
    # From a little before: a move back just before the limit still governs the minutes after it.
    earlier = changes_between(zone_name, limit - CHANGE_LIMIT, real)
    change = earlier[-1] if earlier else None
    start = limit if change is None else max(change.repeats_until(), change.at + change.is_jump())
    if real >= start:
        offset = offset_at(zone, real)
        wall = previous_wall(fields, start + offset, real + offset + 1)
        if wall is not None:
            return wall - offset, real
    if change is None:
        return None, limit - 1
    if change.is_jump():
        if _fires_at_jump(fields, change):
            return change.at, real
    elif change.repeats_until() > change.at and fields.wildcard and change.shift < -1:
        last = min(real, change.repeats_until() - 1)
        wall = previous_wall(fields, change.at + change.after, last + change.after + 1)
        if wall is not None:
            return wall - change.after, real
    return None, change.at - 1


def _may_fire(fields: FieldSets, zone: ZoneInfo, start: int, end: int) -> bool:
    """Whether any wall minute the zone can show during real minutes [start, end) matches: the offset
    at ``start``, widened by more than any zone moves in a year (Samoa skipped a whole day in 2011)."""
    offset = offset_at(zone, start)
    return next_wall(fields, start + offset - _MARGIN, end + offset + _MARGIN) is not None
