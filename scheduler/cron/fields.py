"""Cron expressions read and checked: messages that name the field and value, the fields Celery
stores, and the value sets the firing rules work on.

The fields are read here, as Vixie and Debian cron read them (crontab(5)): cronsim's field parser
reads a one-value range with a step (``5-5/2``) as "5 to the end, every 2", so it is not used. What is
stored for beat is checked against Celery's own crontab parser, so the schedule beat runs is the
schedule the user wrote.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from celery.schedules import crontab_parser
from cron_descriptor import ExpressionDescriptor

from scheduler.cron.firing import FieldSets

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
    low: int
    high: int
    names: tuple[str, ...] = ()

    def describe_allowed(self) -> str:
        names = f" or {self.names[0]}-{self.names[-1]}" if self.names else ""
        return f"{self.low}-{self.high}{names}"


_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_RULES = (
    _FieldRule("minute", 0, 59),
    _FieldRule("hour", 0, 23),
    _FieldRule("day-of-month", 1, 31),
    _FieldRule("month", 1, 12, _MONTH_NAMES),
    _FieldRule("day-of-week", 0, 7, _DAY_NAMES),
)


class CronError(ValueError):
    """A cron expression that cannot be scheduled; the message names the field and value."""


def quoted(text: str, limit: int = 60) -> str:
    """``text`` quoted for a message, cut short if long: an error must not repeat a megabyte of input."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


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
        raise CronError(
            f"cron {quoted(expression)}: unknown macro {quoted(text)}; use one of {', '.join(MACROS)}"
        ) from None


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
    parts = _split_fields(expression)
    if len(parts) != len(_RULES):
        raise CronError(
            f"cron {quoted(expression)}: expected 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(parts)}"
        )
    values = [_parse_field(rule, part, expression) for rule, part in zip(_RULES, parts, strict=True)]
    day_of_month, day_of_week = parts[2], parts[4]
    if not day_of_month.startswith("*") and not day_of_week.startswith("*"):
        raise CronError(
            f"cron {quoted(expression)}: restricts both day-of-month {quoted(day_of_month)} and day-of-week "
            f"{quoted(day_of_week)}; cron runs when either matches but Celery only when both do, so this is "
            "ambiguous: restrict one of them and use '*' for the other"
        )
    field_sets(expression)  # refuses one that never fires
    celery_fields = [_celery_field(rule, part, value) for rule, part, value in zip(_RULES, parts, values, strict=True)]
    return CrontabFields(*celery_fields)


def _split_fields(expression: str) -> list[str]:
    """The fields of an expression or macro. Only spaces and tabs separate them, as in crontab(5):
    other whitespace (a newline, a no-break space) is part of a field, and so refused."""
    return [part for part in re.split(r"[ \t]+", expand_macro(expression).strip(" \t")) if part]


# Quartz-style extensions some crons accept (last day, nearest weekday, nth weekday); Vixie's does not.
_EXTENSION = re.compile(r"(\d*L|\d+W|LW|.*#.*)", re.IGNORECASE)


def _parse_field(rule: _FieldRule, text: str, expression: str) -> set[int]:
    """The values one field allows (Sunday as 0), or CronError naming the field and what is wrong."""
    if any(_EXTENSION.fullmatch(term) for term in re.split(r"[,/-]", text)):
        raise CronError(
            f"cron {quoted(expression)}: {rule.label} {quoted(text)} uses a non-standard extension (L, W or #) "
            "that Celery cannot schedule"
        )
    try:
        values = set().union(*(_term_values(rule, term) for term in text.split(",")))
    except ValueError:
        raise CronError(
            f"cron {quoted(expression)}: {rule.label} {quoted(text)} {_why_field_is_invalid(rule, text)}"
        ) from None
    return {0 if rule.label == "day-of-week" and value == 7 else value for value in values}


def _term_values(rule: _FieldRule, term: str) -> range:
    """One comma-separated term: ``*``, ``n``, ``a-b``, each optionally ``/step`` (``n/step`` runs from
    ``n`` to the field's end, as cronsim and Celery read it). Raises ValueError."""
    span, slash, step_text = term.partition("/")
    step = int(step_text) if slash and _is_number(step_text) else (1 if not slash else 0)
    if step < 1:
        raise ValueError(term)
    if span == "*":
        return range(rule.low, rule.high + 1, step)
    first_text, dash, last_text = span.partition("-")
    first = _value(rule, first_text)
    last = _value(rule, last_text) if dash else (rule.high if slash else first)
    if last < first:
        raise ValueError(term)
    return range(first, last + 1, step)


def _is_number(text: str) -> bool:
    # ASCII only: int() also reads other scripts' digits (Arabic-Indic ones, say), which no cron
    # accepts; and short, since no field's value or step needs ten digits.
    return text.isascii() and text.isdigit() and len(text) <= 9


def _value(rule: _FieldRule, text: str) -> int:
    if _is_number(text) and rule.low <= int(text) <= rule.high:
        return int(text)
    if text.lower() in rule.names:
        # Months count from 1, weekdays from 0 (Sunday).
        return rule.names.index(text.lower()) + (1 if rule.label == "month" else 0)
    raise ValueError(text)


def _why_field_is_invalid(rule: _FieldRule, text: str) -> str:
    for token in re.split(r"[,/-]", text):
        if token in ("", "*"):
            continue
        if token.isascii() and token.isdigit():
            if not _is_number(token) or not rule.low <= int(token) <= rule.high:
                shown = token if len(token) <= 12 else f"{token[:9]}... ({len(token)} digits)"
                return f"is out of range: {shown} is not in {rule.low}-{rule.high}"
        elif token.lower() not in rule.names:
            return f"has an unknown value {quoted(token)}: use {rule.describe_allowed()}"
    if re.search(r"/0*(,|$)", text):
        return "has a step of 0"
    for start, end in re.findall(r"(\d{1,9})-(\d{1,9})", text, flags=re.ASCII):
        if int(start) > int(end):
            return f"has a backwards range {start}-{end}"
    return f"is not valid: use {rule.describe_allowed()}, '*', lists (1,2), ranges (1-5) and steps (*/15)"


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


@functools.lru_cache(maxsize=4096)
def field_sets(expression: str) -> FieldSets:
    """The values each field allows, and cron's two flags, for the firing rules.

    Unlike ``parse_cron`` this accepts what Celery's crontab rows may hold but the service refuses
    from users (both day fields restricted: cron's OR applies), since beat fires whatever rows exist.
    Raises CronError naming the field and value for an expression cron cannot read, or one that
    never fires.
    """
    parts = _split_fields(expression) if isinstance(expression, str) else []
    if len(parts) != len(_RULES):
        raise CronError(f"cron {quoted(expression)}: expected 5 fields (minute hour day-of-month month day-of-week)")
    minutes, hours, days, months, weekdays = (
        _parse_field(rule, part, expression) for rule, part in zip(_RULES, parts, strict=True)
    )
    fields = FieldSets(
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=frozenset(days),
        months=frozenset(months),
        weekdays=frozenset(weekdays),
        # Vixie cron: a day field starting with "*" makes the two day fields AND, otherwise OR.
        days_and=parts[2].startswith("*") or parts[4].startswith("*"),
        # Vixie cron's MIN_STAR / HR_STAR: such jobs follow the wall clock across a clock change.
        wildcard=parts[0].startswith("*") or parts[1].startswith("*"),
    )
    if not _ever_fires(fields):
        raise CronError(
            f"cron {quoted(expression)}: never fires: day-of-month {quoted(parts[2])} "
            f"does not occur in month {quoted(parts[3])}"
        )
    return fields


_LONGEST_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


def _ever_fires(fields: FieldSets) -> bool:
    """Whether any day ever matches: decided, not searched (a search of years can end too soon).

    With the day fields ORed, every month has every weekday. ANDed, only whether one of the days
    exists in one of the months matters: a given date falls on each weekday in some year.
    """
    if not fields.days_and:
        return True
    return any(day <= _LONGEST_MONTH[month] for month in fields.months for day in fields.days)
