"""A zone's changes of UTC offset (daylight saving time, and changes of standard time), as cron sees
them: whole minutes since the epoch, found by probing the zone database and cached per year.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 - wall-clock minutes are naive on purpose
_EPOCH_UTC = _EPOCH.replace(tzinfo=UTC)
MINUTES_PER_DAY = 1440
#: Debian cron's limit between a daylight-saving change and a correction of the clock (cron.c).
CHANGE_LIMIT = 180
#: Moves forward this small are "woke up late": every job runs for every minute missed (cron.c).
LATE_LIMIT = 5


def real_minutes(moment: datetime) -> int:
    """An aware datetime as whole minutes since the epoch (UTC), rounded down."""
    return int((moment - _EPOCH_UTC).total_seconds() // 60)


def real_datetime(real: int) -> datetime:
    """Whole minutes since the epoch as an aware UTC datetime."""
    return _EPOCH_UTC + timedelta(minutes=real)


def wall_datetime(wall: int) -> datetime:
    return _EPOCH + timedelta(minutes=wall)


def wall_minutes(day: date, hour: int, minute: int) -> int:
    return (day.toordinal() - _EPOCH_ORDINAL) * MINUTES_PER_DAY + hour * 60 + minute


_EPOCH_ORDINAL = _EPOCH.toordinal()
#: A year's worth of minutes, rounded up: the stretch one search step covers.
YEAR = 366 * MINUTES_PER_DAY
#: The real minutes searched, years 3 to 9998: offsets, margins and a year's neighbours stay inside
#: the calendar Python's dates can hold (years 1 to 9999).
FIRST_REAL = (date(3, 1, 1).toordinal() - _EPOCH_ORDINAL) * MINUTES_PER_DAY
LAST_REAL = (date(9998, 12, 31).toordinal() - _EPOCH_ORDINAL) * MINUTES_PER_DAY


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
        """The first real minute after the repeated wall minutes of a move back (or ``at`` if none).

        In them cron runs only wildcard jobs, except after a move back of one minute: the wall
        minute then reads as it did a minute ago, and cron's loop waits for it to change.
        """
        if -CHANGE_LIMIT < self.shift + 1 <= 0:  # cron.c: timeDiff in (-180, 0] at the change
            return self.at - self.shift
        return self.at

    def is_jump(self) -> bool:
        """A move forward that cron treats as skipped minutes (cron.c: 1 < timeDiff <= 180)."""
        return 1 < self.shift + 1 <= CHANGE_LIMIT


def offset_at(zone: ZoneInfo, real: int) -> int:
    """The zone's UTC offset at real minute ``real``, in whole minutes."""
    offset = datetime.fromtimestamp(real * 60, zone).utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0


@functools.lru_cache(maxsize=8192)
def changes_in_year(zone_name: str, year: int) -> tuple[Change, ...]:
    """The zone's offset changes at real minutes from 1 January 00:00 UTC of ``year`` up to the next,
    found by probing every six hours and bisecting to the minute. Cached: beat asks about a handful
    of zones over and over."""
    zone = ZoneInfo(zone_name)
    start = wall_minutes(date(year, 1, 1), 0, 0)
    end = wall_minutes(date(year + 1, 1, 1), 0, 0)
    step = 360  # six hours: no zone changes its offset twice within that
    changes = []
    # From the minute before the year, so that a change at its very first minute is the year's own.
    probe = start - 1
    previous = offset_at(zone, probe)
    while probe < end - 1:
        following = min(probe + step, end - 1)
        offset = offset_at(zone, following)
        if offset != previous:
            changes.append(_bisect_change(zone, probe, following, previous, offset))
        previous, probe = offset, following
    return tuple(changes)


def _bisect_change(zone: ZoneInfo, low: int, high: int, before: int, after: int) -> Change:
    # offset(low) == before, offset(high) == after: find the first minute with the new offset.
    while high - low > 1:
        middle = (low + high) // 2
        if offset_at(zone, middle) == before:
            low = middle
        else:
            high = middle
    return Change(high, before, after)


def changes_between(zone_name: str, first: int, last: int) -> list[Change]:
    """The zone's changes at real minutes in [first, last], oldest first (a year or two of them)."""
    years = range(wall_datetime(first).year, wall_datetime(last).year + 1)
    return [change for year in years for change in changes_in_year(zone_name, year) if first <= change.at <= last]
