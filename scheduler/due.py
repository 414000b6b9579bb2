"""When a periodic task is next due: cron maths for the beat scheduler, in the task's own zone.

Crontab schedules follow Debian cron's rules through cronsim, daylight saving time included:

- A job at a particular time (specific minute and hour, e.g. ``30 1 * * *``) whose local time is
  skipped by a spring-forward jump runs once, right after the jump; one whose local time occurs
  twice at fall-back runs once, at the first occurrence.
- A job with ``*`` or a step in its minute or hour field runs by the clock as it reads after the
  change: no run in the hour that does not exist, and runs in both copies of the repeated hour
  (an hourly job still runs every real hour).

Every time is returned aware, in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError
from django_celery_beat.models import CrontabSchedule

from scheduler.cron import CrontabFields

_INTERVAL_PERIODS = {"days", "hours", "minutes", "seconds", "microseconds"}


def crontab_expression(fields: CrontabFields | CrontabSchedule) -> str:
    return f"{fields.minute} {fields.hour} {fields.day_of_month} {fields.month_of_year} {fields.day_of_week}"


def crontab_next(expression: str, timezone_name: str, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after``, or None if the expression never fires."""
    try:
        return next(CronSim(expression, after.astimezone(ZoneInfo(timezone_name)))).astimezone(UTC)
    except (CronSimError, StopIteration, ValueError, KeyError):
        return None


def crontab_latest(expression: str, timezone_name: str, at_or_before: datetime) -> datetime | None:
    """The last fire time at or before ``at_or_before`` (for runs missed while beat was down)."""
    zone = ZoneInfo(timezone_name)
    # cronsim's reverse iteration starts strictly before its start; nudge past an exact match.
    start = (at_or_before + timedelta(seconds=1)).astimezone(zone).replace(microsecond=0)
    try:
        return next(CronSim(expression, start, reverse=True)).astimezone(UTC)
    except (CronSimError, StopIteration, ValueError, KeyError):
        return None


def interval_length(every: int, period: str) -> timedelta:
    if period not in _INTERVAL_PERIODS or every <= 0:
        raise ValueError(f"not an interval: every {every} {period}")
    return timedelta(**{period: every})
