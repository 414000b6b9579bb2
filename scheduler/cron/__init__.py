"""Cron: expressions read and checked, and the one answer to "when does this fire?".

``next_fire`` and ``latest_fire`` serve the admin, beat and catch-up alike. They follow Debian cron's
rules in the job's zone (``firing``), daylight saving time included:

- a fixed-time job (specific minute and hour, e.g. ``30 1 * * *``) whose local time is skipped by a
  move forward runs once, right after the move; one whose local time occurs twice when the clock goes
  back runs once, at the first occurrence;
- a wildcard job (``*`` at the start of its minute or hour field) runs by the clock as it reads: no
  run in the hour that does not exist, and runs in both copies of a repeated hour;
- a move of three hours or more is a correction of the clock: the new time is simply used.

Each call takes microseconds (a zone's changes are found once per year and cached) and is bounded:
it looks at most fifty years ahead or back (a year with no matching day is skipped cheaply), then
gives up with a CronError or None.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scheduler.cron.fields import (
    MACROS,
    CronError,
    CrontabFields,
    crontab_expression,
    describe_cron,
    expand_macro,
    field_sets,
    parse_cron,
    quoted,
)
from scheduler.cron.firing import NeverFires, latest_real, next_real
from scheduler.cron.zones import real_datetime, real_minutes

__all__ = [
    "MACROS",
    "CronError",
    "CrontabFields",
    "crontab_expression",
    "describe_cron",
    "expand_macro",
    "latest_fire",
    "next_fire",
    "parse_cron",
    "quoted",
]


def next_fire(expression: str, zone: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` at which cron would start ``expression`` in ``zone``.

    ``after`` is aware; the answer is an aware UTC datetime on a whole minute, always later than
    ``after``. ``expression`` is five cron fields or a macro (``@daily``), ``zone`` an IANA name.
    Raises CronError if either cannot be used, or if nothing fires within fifty years.
    """
    fields, _ = field_sets(expression), _zone(zone)
    try:
        return real_datetime(next_real(fields, zone, real_minutes(after) + 1))
    except NeverFires as exc:
        raise CronError(f"cron {quoted(expression)}: no fire time after {after:%Y-%m-%d %H:%M} UTC {exc}") from None
    except (OverflowError, ValueError):  # past the end of the calendar (year 9999)
        raise CronError(f"cron {quoted(expression)}: no fire time after {after:%Y-%m-%d} in the calendar") from None


def latest_fire(expression: str, zone: str, at_or_before: datetime) -> datetime | None:
    """The last time at or before ``at_or_before`` at which cron would have started ``expression``.

    For runs missed while beat was down. Aware in, aware UTC out; None if nothing fired in the fifty
    years before. Raises CronError if the expression or zone cannot be used.
    """
    fields, _ = field_sets(expression), _zone(zone)
    try:
        latest = latest_real(fields, zone, real_minutes(at_or_before))
    except (OverflowError, ValueError):  # before the start of the calendar (year 1)
        return None
    return real_datetime(latest) if latest is not None else None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise CronError(f"time zone {quoted(name)} is not a known IANA zone name") from None
