"""Cron expressions: validation with messages that name the field and value, and cron maths.

Parsing and firing follow Debian cron's rules through cronsim; what is stored for beat is checked
against Celery's own crontab parser, so the schedule beat runs is the schedule the user wrote.

``next_fire`` and ``latest_fire`` are the one answer to "when does this fire?", for the admin, beat
and catch-up alike. Times are read in the job's zone, daylight saving time included:

- A job at a particular time (specific minute and hour, e.g. ``30 1 * * *``) whose local time is
  skipped by a spring-forward jump runs once, right after the jump; one whose local time occurs
  twice at fall-back runs once, at the first occurrence.
- A job with ``*`` or a step in its minute or hour field runs by the clock as it reads after the
  change: no run in the hour that does not exist, and runs in both copies of the repeated hour
  (an hourly job still runs every real hour).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.schedules import crontab_parser
from cron_descriptor import ExpressionDescriptor
from cronsim import CronSim, CronSimError
from cronsim.cronsim import Field

if TYPE_CHECKING:
    from django_celery_beat.models import CrontabSchedule

MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


@dataclass(frozen=True)
class _FieldRule:
    label: str
    cronsim_field: Field
    low: int
    high: int
    names: tuple[str, ...] = ()

    def describe_allowed(self) -> str:
        names = f" or {self.names[0]}-{self.names[-1]}" if self.names else ""
        return f"{self.low}-{self.high}{names}"


_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_RULES = (
    _FieldRule("minute", Field.MINUTE, 0, 59),
    _FieldRule("hour", Field.HOUR, 0, 23),
    _FieldRule("day-of-month", Field.DAY, 1, 31),
    _FieldRule("month", Field.MONTH, 1, 12, _MONTH_NAMES),
    _FieldRule("day-of-week", Field.DOW, 0, 7, _DAY_NAMES),
)


class CronError(ValueError):
    """A cron expression that cannot be scheduled; the message names the field and value."""


@dataclass(frozen=True)
class CrontabFields:
    """The five fields as django-celery-beat's CrontabSchedule stores them."""

    minute: str
    hour: str
    day_of_month: str
    month_of_year: str
    day_of_week: str


def expand_macro(expression: str) -> str:
    text = expression.strip()
    if not text.startswith("@"):
        return text
    try:
        return MACROS[text.lower()]
    except KeyError:
        raise CronError(f"cron {expression!r}: unknown macro {text!r}; use one of {', '.join(MACROS)}") from None


@functools.lru_cache(maxsize=4096)
def parse_cron(expression: str) -> CrontabFields:
    """Validate a five-field cron expression (or macro) and return Celery crontab fields.

    Raises CronError for a wrong field count, out-of-range or unknown values, non-standard
    extensions, an expression that never fires, and one that restricts both day-of-month and
    day-of-week (cron ORs those, Celery ANDs them: the meaning would change, so it is refused).
    Cached: a sync of thousands of items meets the same few hundred expressions again and again.
    """
    if not isinstance(expression, str) or not expression.strip():
        raise CronError("cron is empty: expected five fields (minute hour day-of-month month day-of-week)")
    parts = expand_macro(expression).split()
    if len(parts) != len(_RULES):
        raise CronError(
            f"cron {expression!r}: expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    values = [_parse_field(rule, part, expression) for rule, part in zip(_RULES, parts, strict=True)]
    day_of_month, day_of_week = parts[2], parts[4]
    if not day_of_month.startswith("*") and not day_of_week.startswith("*"):
        raise CronError(
            f"cron {expression!r}: restricts both day-of-month {day_of_month!r} and day-of-week "
            f"{day_of_week!r}; cron runs when either matches but Celery only when both do, so this is "
            "ambiguous: restrict one of them and use '*' for the other"
        )
    _check_it_fires(parts, expression)
    celery_fields = [_celery_field(rule, part, value) for rule, part, value in zip(_RULES, parts, values, strict=True)]
    return CrontabFields(*celery_fields)


def _parse_field(rule: _FieldRule, text: str, expression: str) -> set[int]:
    try:
        parsed = rule.cronsim_field.parse(text.upper())
    except (CronSimError, ValueError):
        raise CronError(f"cron {expression!r}: {rule.label} {text!r} {_why_field_is_invalid(rule, text)}") from None
    values: set[int] = set()
    for value in parsed:
        if not isinstance(value, int) or not rule.low <= value <= rule.high:
            raise CronError(
                f"cron {expression!r}: {rule.label} {text!r} uses a non-standard extension (L, W or #) "
                "that Celery cannot schedule"
            )
        values.add(0 if rule.label == "day-of-week" and value == 7 else value)
    return values


def _why_field_is_invalid(rule: _FieldRule, text: str) -> str:
    for token in re.split(r"[,/-]", text):
        if token in ("", "*"):
            continue
        if token.isdigit():
            if not rule.low <= int(token) <= rule.high:
                return f"is out of range: {token} is not in {rule.low}-{rule.high}"
        elif token.lower() not in rule.names:
            return f"has an unknown value {token!r}: use {rule.describe_allowed()}"
    if re.search(r"/0*(,|$)", text):
        return "has a step of 0"
    for start, end in re.findall(r"(\d+)-(\d+)", text):
        if int(start) > int(end):
            return f"has a backwards range {start}-{end}"
    return f"is not valid: use {rule.describe_allowed()}, '*', lists (1,2), ranges (1-5) and steps (*/15)"


def _check_it_fires(parts: list[str], expression: str) -> None:
    try:
        next_fire(" ".join(parts), "UTC", datetime(2000, 1, 1, tzinfo=UTC))
    except CronError:
        raise CronError(
            f"cron {expression!r}: never fires: day-of-month {parts[2]!r} does not occur in month {parts[3]!r}"
        ) from None


def _celery_field(rule: _FieldRule, text: str, values: set[int]) -> str:
    """The field as Celery should store it: the user's text when Celery reads it the same way.

    Where Celery's parser differs (``7`` for Sunday, some step forms), store the explicit list.
    """
    lowered = text.lower()
    high = 6 if rule.label == "day-of-week" else rule.high
    try:
        if crontab_parser(high + 1 - rule.low, rule.low).parse(lowered) == values:
            return lowered
    except (ValueError, crontab_parser.ParseException):
        pass
    return ",".join(str(value) for value in sorted(values))


def describe_cron(expression: str) -> str:
    """Plain English for an expression, e.g. 'At 02:30 AM'."""
    try:
        return str(ExpressionDescriptor(expand_macro(expression), use_24hour_time_format=True))
    except Exception:  # noqa: BLE001 - a display helper must never break an admin page
        return "(cannot describe)"


def crontab_expression(fields: CrontabFields | CrontabSchedule) -> str:
    """The five fields as one cron expression, e.g. ``"30 2 * * 0,6"``: how a stored CrontabSchedule is read."""
    return f"{fields.minute} {fields.hour} {fields.day_of_month} {fields.month_of_year} {fields.day_of_week}"


def next_fire(expression: str, zone: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` (aware) at which ``expression`` fires, read in ``zone``.

    ``expression`` is five cron fields or a macro (``@daily``); ``zone`` an IANA name. Returns an aware
    datetime in UTC. Raises CronError if the expression or zone cannot be used, or if it never fires
    (an expression parse_cron accepted always fires).
    """
    try:
        return next(_fire_times(expression, zone, after)).astimezone(UTC)
    except (StopIteration, OverflowError):  # cronsim gives up after 50 years, or at the end of the calendar
        raise CronError(f"cron {expression!r}: never fires after {after:%Y-%m-%d %H:%M} UTC") from None


def latest_fire(expression: str, zone: str, at_or_before: datetime) -> datetime | None:
    """The last time at or before ``at_or_before`` (aware) at which ``expression`` fires, in ``zone``.

    For runs missed while beat was down. Returns an aware datetime in UTC, or None if it never fired.
    Raises CronError if the expression or zone cannot be used.
    """
    # cronsim's reverse walk starts strictly before its start: nudge past an exact match (cron has
    # whole minutes, so dropping the microseconds cannot skip a fire time).
    start = (at_or_before + timedelta(seconds=1)).replace(microsecond=0)
    try:
        return next(_fire_times(expression, zone, start, reverse=True)).astimezone(UTC)
    except (StopIteration, OverflowError):  # none in the 50 years before, or before the calendar starts
        return None


def _fire_times(expression: str, zone: str, start: datetime, *, reverse: bool = False) -> Iterator[datetime]:
    """Fire times after (or, ``reverse``, before) ``start``, aware, in ``zone``: the one place cronsim
    does cron maths, so its daylight-saving rules (Debian cron's) apply alike to the admin and beat."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"time zone {zone!r} is not a known IANA zone name") from None
    try:
        return CronSim(expand_macro(expression), start.astimezone(tz), reverse=reverse)
    except CronSimError as exc:
        raise CronError(f"cron {expression!r}: {exc}") from None
