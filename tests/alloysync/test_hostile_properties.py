"""Generated hostile values, on the database under test: an item gives a valid spec or a clear
error, what is stored compares equal with what was read, and a sync schedules every good item."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alloysync.models import SyncRun
from alloysync.sync import alloy_sync
from scheduler.jobspec import JobSpecError, job_spec_build
from scheduler.models import Job
from scheduler.selectors import job_states_for_source
from scheduler.services import job_create
from tests.alloysync.helpers import job_item

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(600)]

HOSTILE_TEXT = st.text(
    alphabet=st.one_of(st.characters(), st.sampled_from(["\x00", "\ud800", "\udfff", "\u2028", "'", '"', "\\"])),
    max_size=30,
)
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | NUMBERS | HOSTILE_TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(HOSTILE_TEXT, children, max_size=3),
    max_leaves=8,
)
DEEP = st.integers(min_value=1, max_value=60).map(lambda depth: "[" * depth + "]" * depth)
_ids = itertools.count(1)
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@SETTINGS
@given(NUMBERS.filter(lambda number: not isinstance(number, float) or math.isfinite(number)))
def test_any_number_a_job_accepts_compares_equal_once_stored(number):
    try:
        spec = job_spec_build(
            name="n",
            cron="* * * * *",
            timezone="UTC",
            steps=[{"function": "examples.sleep", "kwargs": {"seconds": number}}],
        )
    except JobSpecError as exc:
        assert "too large" in str(exc)  # only integers of over 1,024 bits are refused
        return
    external_id = f"{next(_ids):024x}"
    job_create(spec=spec, source="alloy", external_id=external_id)
    assert job_states_for_source("alloy")[external_id].matches(spec)  # the next sync writes nothing


@SETTINGS
@given(JSON_VALUES, HOSTILE_TEXT)
def test_any_kwargs_and_title_give_a_storable_job_or_a_clear_error(kwargs_value, title):
    try:
        spec = job_spec_build(
            name=title,
            cron="* * * * *",
            timezone="UTC",
            steps=[{"function": "examples.echo", "kwargs": {"message": kwargs_value}}],
        )
    except JobSpecError as exc:
        assert exc.errors and all(error and len(error) < 1000 for error in exc.errors)
        return
    external_id = f"{next(_ids):024x}"
    job_create(spec=spec, source="alloy", external_id=external_id)  # the database takes it
    assert job_states_for_source("alloy")[external_id].matches(spec)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.one_of(
            HOSTILE_TEXT.map(lambda t: ("title", t)),
            JSON_VALUES.map(lambda v: ("kwargs", v)),
            DEEP.map(lambda d: ("kwargs-text", d)),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_a_sync_over_good_and_hostile_items_always_schedules_the_good_ones(alloy, hostile):
    Job.objects.all().delete()
    for item in alloy.items:
        alloy.remove_item(item["itemId"])
    base = next(_ids) * 100
    good = {f"{base + n:024x}" for n in range(3)}
    for n in range(3):
        alloy.put_item(job_item(f"good {n}", n=base + n))
    for offset, (kind, value) in enumerate(hostile, start=10):
        if kind == "title":
            item = job_item(value or "x", n=base + offset)
        elif kind == "kwargs":
            item = job_item(
                "hostile", steps=[{"function": "examples.echo", "kwargs": {"message": value}}], n=base + offset
            )
        else:
            item = job_item("hostile", steps=f'examples.echo {{"message": {value}}}', n=base + offset)
        alloy.put_item(item)
    # Full: each example starts from an empty Alloy (an incremental read would fall back to one anyway).
    run = alloy_sync(trigger=SyncRun.Trigger.COMMAND, mode=SyncRun.Mode.FULL).run
    assert run.status == "succeeded", run.message
    scheduled = set(Job.objects.filter(periodic_task__isnull=False).values_list("external_id", flat=True))
    assert good <= scheduled
    assert run.created + run.invalid == run.items_read
