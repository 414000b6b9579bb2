"""Alloy's timestamps: written with seven fractional digits, read from ISO-8601 with zero to seven.

Alloy is a .NET service: its times are 100 ns ticks, written ``2021-03-16T11:08:08.0232125Z``. The
fake keeps aware UTC datetimes (microseconds) and converts only here, at its edges.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# Date, time, 0-7 fractional digits, then Z or an offset: what clients send in DateTime values and Since.
_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?(Z|[+-]\d{2}:\d{2})$",
    re.IGNORECASE,
)


TICKS_PER_SECOND = 10_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_alloy_timestamp(when: datetime) -> str:
    """Alloy's timestamp style: UTC with seven fractional digits, ``2021-03-16T11:08:08.0232125Z``."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond:06d}0Z"


def alloy_ticks(text: str) -> int:
    """``2026-11-29T10:00:00.000Z`` (0-7 fractional digits, Z or ``+hh:mm``) as Alloy's 100 ns ticks
    since the Unix epoch: exact, where a datetime would drop the seventh digit. ValueError for
    anything else, naive times included."""
    match = _ISO.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an ISO-8601 date and time with Z or an offset.")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    zone = match.group(8).upper()
    offset = timedelta(0) if zone == "Z" else _offset(zone)
    whole = datetime(year, month, day, hour, minute, second, tzinfo=UTC) - offset
    return datetime_ticks(whole) + int((match.group(7) or "").ljust(7, "0"))


def parse_alloy_datetime(text: str) -> datetime:
    """An aware UTC datetime from ``2026-11-29T10:00:00.000Z`` (see ``alloy_ticks``).

    A seventh digit (100 ns) is cut off: right for "strictly after" against the fake's own times,
    which are whole microseconds. Compare ``alloy_ticks`` where "before" matters too.
    """
    return _EPOCH + timedelta(microseconds=alloy_ticks(text) // 10)


def datetime_ticks(when: datetime) -> int:
    """An aware datetime as 100 ns ticks since the Unix epoch."""
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * TICKS_PER_SECOND + delta.microseconds * 10


def _offset(zone: str) -> timedelta:
    sign = -1 if zone[0] == "-" else 1
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if hours > 23 or minutes > 59:
        raise ValueError(f"{zone!r} is not a UTC offset.")
    return sign * timedelta(hours=hours, minutes=minutes)
