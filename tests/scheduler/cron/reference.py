"""An independent reference for when Debian's cron starts a job, written from cron's documented behaviour.

The product's cron maths (``scheduler/cron/``) and the cronsim library are deliberately *not* used or imported here,
so this module cannot share their bugs. It has three parts:

* :func:`parse` -- a small parser of the five crontab time fields and the ``@`` macros, following crontab(5) and
  the parser in Debian's ``entry.c`` (``get_list``/``get_range``, the ``MIN_STAR``/``HR_STAR``/``DOM_STAR``/
  ``DOW_STAR`` flags, and "make sundays equivalent").
* :func:`fire_times` -- a minute-by-minute replay of the main loop of Debian's ``cron.c`` (``virtualTime``,
  ``timeRunning``, ``timeDiff`` and its cases), driven by a real clock in an IANA zone.
* :func:`transitions` -- the instants at which a zone's UTC offset changes, so callers can replay around them.

The behaviour being replayed, from Debian's cron(8): "If the time has moved forwards, those jobs which would have run
in the time that was skipped will be run soon after the change. Conversely, if the time has moved backwards by less
than 3 hours, those jobs that fall into the repeated time will not be re-run. Only jobs that run at a particular time
(not specified as @hourly, nor with '*' in the hour or minute specifier) are affected. Jobs which are specified with
wildcards are run based on the new time immediately. Clock changes of more than 3 hours are considered to be
corrections to the clock, and the new time is used immediately."

Clocks are integers counting minutes since the Unix epoch, as in ``cron.c``: a *real* minute ``u`` is UTC, and the
*wall* minute ``clockTime`` that cron sees at that real minute is ``u`` plus the zone's UTC offset then (``set_time``:
``(StartTime + GMToff) / SECONDS_PER_MINUTE``); ``find_jobs`` turns a wall minute back into minute, hour, day, month
and weekday with ``gmtime``, which :func:`_wall_datetime` mirrors.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["ReferenceCron", "fire_times", "parse", "replay_clock", "transitions"]

# cron.c classifies a jump by its size in minutes: 3 * MINUTE_COUNT = 180 ("more than 3 hours") and 5.
LARGE_JUMP_MINUTES = 3 * 60
SMALL_JUMP_MINUTES = 5

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 -- a wall clock has no zone; this mirrors cron's gmtime()
_ONE_MINUTE = timedelta(minutes=1)
_ONE_SECOND = timedelta(seconds=1)

# crontab(5): the macros and the five-field schedules they stand for.
MACROS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NUMBER = re.compile(
    r"[0-9]+"
)  # ASCII digits only: int() alone would also take "+5", " 5", "1_0" and non-ASCII digits.


@dataclass(frozen=True)
class _Field:
    """One crontab field's bounds and, for month and weekday, its names (the first name is worth ``low``)."""

    label: str
    low: int
    high: int
    names: tuple[str, ...] = ()


# Bounds as in cron.h: FIRST_/LAST_MINUTE 0-59, HOUR 0-23, DOM 1-31, MONTH 1-12, DOW 0-7 (0 and 7 are Sunday).
_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DOM = _Field("day of month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTH_NAMES)
_DOW = _Field("day of week", 0, 7, _DOW_NAMES)


@dataclass(frozen=True)
class ReferenceCron:
    """A parsed schedule: the set of values each field allows, and the flags cron keeps beside them.

    ``dom_star``/``dow_star`` are entry.c's ``DOM_STAR``/``DOW_STAR`` (the field's text starts with ``*``);
    ``wildcard`` is ``MIN_STAR|HR_STAR`` (the minute or hour field's text starts with ``*``), which is what
    cron.c's ``find_jobs(..., doWild, doNonWild)`` sorts jobs by. Days of the week are 0-6 with Sunday 0
    (a 7 in the expression has already been folded into 0).
    """

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]
    dom_star: bool
    dow_star: bool
    wildcard: bool

    def matches(self, wall: datetime) -> bool:
        """Whether the naive wall-clock minute ``wall`` (seconds ignored) satisfies the schedule.

        This is the test in cron.c's ``find_jobs``: minute, hour and month must match; for the day, if
        either day field starts with ``*`` the day must be in both sets (AND, the star allowing every day),
        otherwise in either (OR) -- "'* * 1,15 * Sun' will run on the first and fifteenth AND every Sunday".
        """
        if wall.tzinfo is not None:
            raise ValueError(f"matches() takes a naive wall-clock time, not {wall!r}")
        if wall.minute not in self.minutes or wall.hour not in self.hours or wall.month not in self.months:
            return False
        in_dom = wall.day in self.days_of_month
        in_dow = (wall.weekday() + 1) % 7 in self.days_of_week  # Python's Monday=0 -> cron's Sunday=0
        if self.dom_star or self.dow_star:
            return in_dom and in_dow
        return in_dom or in_dow


def parse(expression: str) -> ReferenceCron:
    """Parse a five-field cron expression or an ``@`` macro; raise ValueError if it is malformed.

    This is stricter than Debian's entry.c, which skips whatever follows a well-formed range up to the next blank
    (so it reads ``*-5`` as ``*``); such leftovers are refused here.

    Fields are separated by whitespace. Each is a comma list of: ``*``; a number; a name (month and weekday
    fields, three letters, any case); a range ``a-b`` (a <= b); each of those followed by ``/n`` (n >= 1) to
    step through it; and ``a/n`` meaning ``a-<field maximum>/n``, as Vixie-derived crons such as cronie read it
    (the Debian 3.0pl1 entry.c consulted for this module does not: it keeps ``a`` and skips the ``/n``). In the
    weekday field 0 and 7 both mean Sunday, and ``*`` spans 0-7, as in cron.h. Macros are matched exactly, in
    lower case, as entry.c does with ``strcmp``; ``@reboot`` is not a time and is refused.
    """
    if not isinstance(expression, str):
        raise ValueError(f"a cron expression is a string, not {type(expression).__name__}")
    text = expression.strip()
    if text.startswith("@"):
        if text not in MACROS:
            raise ValueError(f"unknown cron macro {text!r}; known: {', '.join(sorted(MACROS))}")
        text = MACROS[text]
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"a cron expression has five fields, {expression!r} has {len(fields)}")
    minute, hour, dom, month, dow = fields
    days_of_week = _parse_field(dow, _DOW)
    if 7 in days_of_week:  # entry.c: "make sundays equivalent"
        days_of_week = (days_of_week - {7}) | {0}
    return ReferenceCron(
        expression=expression,
        minutes=_parse_field(minute, _MINUTE),
        hours=_parse_field(hour, _HOUR),
        days_of_month=_parse_field(dom, _DOM),
        months=_parse_field(month, _MONTH),
        days_of_week=days_of_week,
        dom_star=dom.startswith("*"),
        dow_star=dow.startswith("*"),
        wildcard=minute.startswith("*") or hour.startswith("*"),
    )


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    """entry.c's ``get_list``: a comma list of ranges, the union of their values."""
    values: set[int] = set()
    for part in text.split(","):
        values |= _parse_range(part, field)
    return frozenset(values)


def _parse_range(text: str, field: _Field) -> set[int]:
    """entry.c's ``get_range``: ``*``, ``n``, ``a-b``, each optionally with ``/step``; plus ``a/step``."""
    where = f"{field.label} field {text!r}"
    span, slash, step_text = text.partition("/")
    if slash:
        if not _NUMBER.fullmatch(step_text):
            raise ValueError(f"{where}: the step must be a number")
        step = int(step_text)
        if step == 0:
            raise ValueError(f"{where}: the step must be at least 1")
    else:
        step = 1
    if span == "*":
        first, last = field.low, field.high
    else:
        first_text, dash, last_text = span.partition("-")
        first = _parse_value(first_text, field, where)
        if dash:
            last = _parse_value(last_text, field, where)
        elif slash:
            last = field.high  # "a/n" is "a-max/n", as Vixie cron reads it
        else:
            last = first
        if first > last:
            raise ValueError(f"{where}: a range must not run backwards")
    return set(range(first, last + 1, step))


def _parse_value(text: str, field: _Field, where: str) -> int:
    """entry.c's ``get_number``: a name from the field's list (any case) or a number within its bounds."""
    lowered = text.lower()
    if lowered in field.names:
        return field.low + field.names.index(lowered)
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"{where}: {text!r} is neither a number nor a name")
    value = int(text)
    if not field.low <= value <= field.high:
        raise ValueError(f"{where}: {value} is outside {field.low}-{field.high}")
    return value


def _wall_datetime(wall_minute: int) -> datetime:
    """The naive wall-clock time of a wall minute count, as find_jobs gets it from ``gmtime(vtime * 60)``."""
    return _NAIVE_EPOCH + wall_minute * _ONE_MINUTE


def _find_jobs(cron: ReferenceCron, vtime: int, do_wild: bool, do_non_wild: bool) -> bool:
    """cron.c's ``find_jobs(vtime, db, doWild, doNonWild)`` for one job: would this pass start it?

    A wildcard job (``MIN_STAR|HR_STAR``) is only considered when ``doWild``, a fixed-time job only when
    ``doNonWild``; then the job starts if it matches the wall minute ``vtime``.
    """
    if not (do_wild if cron.wildcard else do_non_wild):
        return False
    return cron.matches(_wall_datetime(vtime))


def replay_clock(cron: ReferenceCron, clock: Sequence[int]) -> list[int]:
    """Replay cron.c's main loop over consecutive real minutes, given the wall clock cron reads at each.

    ``clock[i]`` is ``clockTime`` (wall minutes since the epoch, from ``set_time``) at the i-th real minute.
    Returns the indices ``i`` of the real minutes at which the job is started (once each, however many of that
    minute's ``find_jobs`` passes match it). The first minute is taken as the usual case: before it,
    ``timeRunning`` and ``virtualTime`` are both ``clock[0] - 1``.

    Each real minute, as in the loop's body:

    * ``do { cron_sleep(); set_time(); } while (clockTime == timeRunning)`` -- if the wall minute has not
      changed since the last pass (an offset that fell by exactly the minute that passed), cron keeps
      sleeping: there is no pass at this real minute.
    * ``timeRunning = clockTime; timeDiff = timeRunning - virtualTime``, then one of the branches in
      :func:`_wake_up`.
    """
    started: list[int] = []
    if not clock:
        return started
    time_running = virtual_time = clock[0] - 1
    for index, clock_time in enumerate(clock):
        if clock_time == time_running:
            continue  # still inside the do/while around cron_sleep(): no wall minute has passed
        time_running = clock_time
        virtual_time, start = _wake_up(cron, time_running, virtual_time)
        if start:
            started.append(index)
    return started


def _wake_up(cron: ReferenceCron, time_running: int, virtual_time: int) -> tuple[int, bool]:
    """One pass of cron.c's main loop: classify ``timeDiff`` and run ``find_jobs`` as that case does.

    Returns the new ``virtualTime`` and whether any ``find_jobs`` call of this pass started the job.
    Case names are Debian's ``wakeupKind`` numbers, with Vixie cron 4's enum ``timejump`` names in brackets.
    ``case 2``'s loop also stops early if its own ``find_jobs`` calls overrun the real minute
    (``clockTime == timeRunning``); a replay takes no time, so here it always runs to ``timeRunning``.
    """
    time_diff = time_running - virtual_time

    if time_diff == 1:
        # "shortcut for the most common case": virtualTime = timeRunning; find_jobs(virtualTime, TRUE, TRUE).
        return time_running, _find_jobs(cron, time_running, True, True)

    if 1 < time_diff <= SMALL_JUMP_MINUTES:
        # case 1 [small]: "timeDiff is a small positive number (wokeup late) run jobs for each virtual minute
        # until caught up": do { virtualTime++; find_jobs(virtualTime, TRUE, TRUE); } while (< timeRunning).
        start = False
        for vtime in range(virtual_time + 1, time_running + 1):
            start = _find_jobs(cron, vtime, True, True) or start
        return time_running, start

    if SMALL_JUMP_MINUTES < time_diff <= LARGE_JUMP_MINUTES:
        # case 2 [medium]: "timeDiff is a medium-sized positive number, for example because we went to DST":
        # "run wildcard jobs for current minute" -- find_jobs(timeRunning, TRUE, FALSE) -- then "run fixed-time
        # jobs for each minute missed" -- do { virtualTime++; find_jobs(virtualTime, FALSE, TRUE); } -- up to
        # and including timeRunning. The man page: skipped jobs "will be run soon after the change", and
        # wildcard jobs "are run based on the new time immediately".
        start = _find_jobs(cron, time_running, True, False)
        for vtime in range(virtual_time + 1, time_running + 1):
            start = _find_jobs(cron, vtime, False, True) or start
        return time_running, start

    if -LARGE_JUMP_MINUTES < time_diff <= 0:
        # case 0 [negative]: "timeDiff is a small or medium-sized negative num, eg. because of DST ending just
        # run the wildcard jobs. The fixed-time jobs probably have already run, and should not be repeated
        # virtual time does not change until we are caught up" -- find_jobs(timeRunning, TRUE, FALSE).
        # The man page: "jobs that fall into the repeated time will not be re-run".
        return virtual_time, _find_jobs(cron, time_running, True, False)

    # default, Debian's wakeupKind -1 (timeDiff <= -180) and 3 (timeDiff > 180) [large]: "time has changed a
    # *lot*, jump virtual time, and run everything" -- virtualTime = timeRunning; find_jobs(timeRunning, TRUE,
    # TRUE). The man page: "Clock changes of more than 3 hours are considered to be corrections to the clock,
    # and the new time is used immediately."
    return time_running, _find_jobs(cron, time_running, True, True)


def _utc_minute(moment: datetime, name: str) -> int:
    """Minutes since the epoch of an aware datetime that falls on a whole minute."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, not {moment!r}")
    whole, rest = divmod(moment - _EPOCH, _ONE_MINUTE)
    if rest:
        raise ValueError(f"{name} must fall on a whole minute, not {moment.isoformat()}")
    return whole


def _offset_seconds(zone: ZoneInfo, utc_minute: int) -> int:
    """The zone's UTC offset, in whole seconds, at a real minute (``get_gmtoff`` in cron's ``set_time``)."""
    offset = (_EPOCH + utc_minute * _ONE_MINUTE).astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset // _ONE_SECOND


def _check_window(start_utc: datetime, end_utc: datetime) -> tuple[int, int]:
    first, stop = _utc_minute(start_utc, "start_utc"), _utc_minute(end_utc, "end_utc")
    if stop < first:
        raise ValueError(f"the window ends ({end_utc.isoformat()}) before it starts ({start_utc.isoformat()})")
    return first, stop


def fire_times(cron: ReferenceCron, zone: str, start_utc: datetime, end_utc: datetime) -> list[datetime]:
    """The real instants (aware, UTC, sorted, distinct) at which Debian's cron, in ``zone``, starts the job.

    Real minutes ``start_utc <= m < end_utc`` are replayed one by one (the window is half-open; both ends are
    aware datetimes on whole minutes). At each, cron's ``clockTime`` is the real minute plus the zone's UTC
    offset at that instant, rounded down to a whole minute as cron's integer division does; the loop itself is
    :func:`replay_clock`. The first minute of the window is replayed as the usual case (``timeDiff == 1``).
    """
    first, stop = _check_window(start_utc, end_utc)
    tz = ZoneInfo(zone)
    real_minutes = range(first, stop)
    clock = [(minute * 60 + _offset_seconds(tz, minute)) // 60 for minute in real_minutes]
    return [_EPOCH + real_minutes[index] * _ONE_MINUTE for index in replay_clock(cron, clock)]


def transitions(zone: str, start_utc: datetime, end_utc: datetime) -> list[datetime]:
    """The instants in ``[start_utc, end_utc)`` at which ``zone``'s UTC offset changes, to the minute.

    Each is the first whole UTC minute with the new offset (a change exactly at ``start_utc`` counts). The
    offset is probed every hour from the minute before ``start_utc``; where two probes differ, bisection finds
    the first minute that differs from the earlier probe, and probing resumes from there, so several changes
    within one hour are all found as long as the offset does not return to its old value within that hour.
    """
    first, stop = _check_window(start_utc, end_utc)
    tz = ZoneInfo(zone)
    found: list[datetime] = []
    low = first - 1
    low_offset = _offset_seconds(tz, low)
    while low < stop - 1:
        high = min(low + 60, stop - 1)
        if _offset_seconds(tz, high) == low_offset:
            low = high
            continue
        before, after = low, high  # invariant: offset(before) == low_offset != offset(after)
        while after - before > 1:
            middle = (before + after) // 2
            if _offset_seconds(tz, middle) == low_offset:
                before = middle
            else:
                after = middle
        found.append(_EPOCH + after * _ONE_MINUTE)
        low, low_offset = after, _offset_seconds(tz, after)
    return found
