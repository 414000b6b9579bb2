"""What a job definition's values may be: checked against what the database will store, before any write.

A sync writes many jobs in one bulk statement, so a value the database refuses there would refuse
them all (PostgreSQL rejects a NUL in text or jsonb, an unpaired surrogate, text longer than its
column). Each value is therefore checked here, where it can still be one item's error. Kwargs are
also put in the form storage gives back, so that comparing an incoming definition with a stored
one compares like with like.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from decimal import Decimal

from scheduler.types import JSONObject, JSONValue

#: Kwargs nest at most this deep: enough for any real argument, far from Python's recursion limit
#: and PostgreSQL's stack depth, so neither can be reached through a job definition.
MAX_KWARGS_DEPTH = 20
#: A job's definition (its steps, with name, cron and zone) takes at most this many bytes as UTF-8
#: JSON: room for a generous text argument (a 2 MB one is tested), while a schedule stays no place
#: for bulk data.
MAX_DEFINITION_JSON_BYTES = 4 * 1024 * 1024
#: The largest integer a float can become (``1.8e308`` has 309 digits) fits in 1,024 bits.
MAX_INT_BITS = 1024
#: Function names are dotted Python names; longer ones are not names of anything registered.
MAX_FUNCTION_NAME = 200
#: Steps a job may have: a run writes a row per step and the admin shows them all; a job of
#: thousands of steps (10,000 took 19 s to run and an 18 MB admin page to show) is a loop, not a job.
MAX_STEPS = 100
#: Job.external_id's column: an Alloy item id (24 hex digits) with room to spare.
MAX_EXTERNAL_ID = 64

_SURROGATE = re.compile("[\ud800-\udfff]")


class UnstorableValue(ValueError):
    """A value the database would refuse or change; the message says what and where."""


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored as text, or None. PostgreSQL refuses both of these; SQLite keeps them."""
    if "\x00" in text:
        return f"holds a NUL character (at position {text.index(chr(0)) + 1})"
    surrogate = _SURROGATE.search(text)
    if surrogate:
        return f"holds an unpaired surrogate {surrogate.group()!r}, which is not Unicode text"
    return None


def storable_kwargs(kwargs: Mapping[str, JSONValue]) -> JSONObject:
    """``kwargs`` as the database stores them, or UnstorableValue naming the argument at fault.

    Refused: NUL or unpaired surrogates in keys or strings, NaN and infinities (not JSON), integers
    above ``MAX_INT_BITS`` bits, nesting deeper than ``MAX_KWARGS_DEPTH``. Changed as PostgreSQL's
    jsonb changes them, on every database alike: a float written with an exponent (``1e20``) comes
    back as the integer it equals, and ``-0.0`` as ``0.0``. Without that, ``1e20`` read from Alloy
    would never equal ``100000000000000000000`` read from the table, and every sync would rewrite the job.
    """
    return {key: _storable(value, 1, _path("", key)) for key, value in _checked_items(kwargs, 0, "")}


def _storable(value: JSONValue, depth: int, path: str) -> JSONValue:
    if depth > MAX_KWARGS_DEPTH:
        raise UnstorableValue(f"{path} nests deeper than {MAX_KWARGS_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise UnstorableValue(f"{path} is an integer too large to store (over {MAX_INT_BITS} bits)")
        return value
    if isinstance(value, float):
        return _stored_float(value, path)
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise UnstorableValue(f"{path} {problem}")
        return value
    if isinstance(value, list):
        return [_storable(entry, depth + 1, f"{path}[{index}]") for index, entry in enumerate(value)]
    if isinstance(value, dict):
        return {key: _storable(entry, depth + 1, _path(path, key)) for key, entry in _checked_items(value, depth, path)}
    raise UnstorableValue(f"{path} is a {type(value).__name__}, not a JSON value")


def _checked_items(mapping: Mapping[str, JSONValue], depth: int, path: str) -> list[tuple[str, JSONValue]]:
    items = list(mapping.items())
    for key, _ in items:
        if not isinstance(key, str):
            raise UnstorableValue(f"{path or 'the arguments'} have a key {key!r} that is not text")
        problem = text_problem(key)
        if problem:
            raise UnstorableValue(f"a key in {path or 'the arguments'} {problem}")
    return items


def _stored_float(value: float, path: str) -> JSONValue:
    if not math.isfinite(value):
        raise UnstorableValue(f"{path} is {value}, which JSON cannot hold (only finite numbers)")
    if value == 0:
        return 0.0  # jsonb has no negative zero
    text = repr(value)
    if "e+" in text:
        # jsonb keeps the decimal written, digits and all: 1.5e+20 is stored as 150000000000000000000.
        return int(Decimal(text))
    return value


def _path(parent: str, key: str) -> str:
    shown = key if key.isidentifier() and len(key) <= 40 else repr(key[:40])
    return f"{parent}.{shown}" if parent else f"argument {shown}"


@functools.cache
def crontab_column_limits() -> dict[str, int]:
    """The most characters each of django-celery-beat's CrontabSchedule fields can hold."""
    from django_celery_beat.models import CrontabSchedule

    names = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
    return {name: int(CrontabSchedule._meta.get_field(name).max_length or 0) for name in names}
