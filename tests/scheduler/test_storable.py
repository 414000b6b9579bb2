"""storable_text and storable_json: any value becomes one every supported database stores and Python
reads back the same, changed visibly where it must change, never an exception."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.models import JobRun, StepRun
from scheduler.storable import MAX_JSON_DEPTH, escape_unstorable, storable_json, storable_text
from tests.scheduler.hostile_values import HOSTILE_TEXT, VALUES

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def depth_of(value):
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


def all_text(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from all_text(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from all_text(item)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"rows": 3}, {"rows": 3}),
        (None, None),
        ((1, "two"), [1, "two"]),
        ({1, 2}, "{1, 2}"),
        (float("nan"), "nan"),
        (datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05"),  # noqa: DTZ001 - as Django's encoder writes it
        ("tab\there", "tab\there"),
    ],
)
def test_json_values_are_kept_and_others_stored_as_django_or_repr_writes_them(value, expected):
    assert storable_json(value) == expected


def test_big_results_are_truncated_to_a_preview_saying_how_big():
    stored = storable_json("x" * 1000, max_bytes=100)
    assert stored == {"truncated": True, "bytes": 1002, "preview": '"' + "x" * 49}
    assert storable_json("x" * 98, max_bytes=100) == "x" * 98


def test_text_is_escaped_visibly_and_cut_in_the_middle_with_the_count():
    assert storable_text("a\x00b\ud800c", 100) == "a\\x00b\\ud800c"
    original = "start" + "x" * 10_000 + "end"
    cut = storable_text(original, 60)
    assert len(cut) <= 60
    head, count, tail = re.fullmatch(r"(.*) \[\.\.\. ([\d,]+) characters cut \.\.\.\] (.*)", cut).groups()
    assert original.startswith(head) and original.endswith(tail) and head.startswith("start") and tail.endswith("end")
    assert len(head) + int(count.replace(",", "")) + len(tail) == len(original)
    assert storable_text("abcdef", 3) == "abc"  # too short for a marker: simply cut


def test_a_str_subclass_is_read_as_text_without_calling_its_own_str():
    class Sly(str):
        def __str__(self):
            raise RuntimeError("gotcha")

    assert storable_text(Sly("plain"), 10) == "plain"
    assert storable_json({Sly("k"): Sly("v")}) == {"k": "v"}


@settings(max_examples=300, deadline=None)
@given(HOSTILE_TEXT.map(lambda text: text * 7), st.integers(0, 300))
def test_storable_text_is_storable_bounded_and_unchanged_when_it_can_be(text, max_chars):
    stored = storable_text(text, max_chars)
    assert not UNSTORABLE.search(stored)
    assert len(stored) <= max_chars
    stored.encode("utf-8")
    if not UNSTORABLE.search(text) and len(text) <= max_chars:
        assert stored == text
    escaped = escape_unstorable(text)
    if len(escaped) <= max_chars:
        assert stored == escaped
    marked = re.fullmatch(r"(.*) \[\.\.\. ([\d,]+) characters cut \.\.\.\] (.*)", stored, re.DOTALL)
    if marked:  # the marker tells exactly how much is missing between the start and the end kept
        head, count, tail = marked.groups()
        assert escaped.startswith(head) and escaped.endswith(tail)
        assert len(head) + int(count.replace(",", "")) + len(tail) == len(escaped)


def _numbers_as_floats(value):
    """jsonb keeps 1e300 as the decimal 1 followed by 300 zeros: equal as numbers, not as Python types."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            return value
    if isinstance(value, list):
        return [_numbers_as_floats(item) for item in value]
    return {key: _numbers_as_floats(item) for key, item in value.items()}


def _nest(depth):
    value = "bottom"
    for _ in range(depth):
        value = {"down": [value]}
    return value


@pytest.mark.django_db
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(st.one_of(VALUES, st.integers(0, 1500).map(_nest)))
def test_storable_json_is_stored_and_read_back_unchanged_by_the_database(make_job, value):
    stored = storable_json(value, max_bytes=64 * 1024)
    text = json.dumps(stored, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    assert not any(UNSTORABLE.search(part) for part in all_text(stored))
    assert depth_of(stored) <= MAX_JSON_DEPTH
    assert storable_json(stored) == stored  # already safe: nothing changes twice
    assert all(math.isfinite(number) for number in _numbers(stored) if isinstance(number, float))
    run = JobRun.objects.create(job=make_job(), trigger=JobRun.Trigger.COMMAND)
    step = StepRun.objects.create(run=run, position=1, function="examples.echo", result=stored)
    step.refresh_from_db()
    assert _numbers_as_floats(step.result) == _numbers_as_floats(stored)


def _numbers(value):
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
