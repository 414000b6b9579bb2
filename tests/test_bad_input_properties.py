"""Bad input at every door, generated: the parsers and the mapping never crash. Whatever they are
given, the answer is a valid spec or a clear error naming what is wrong."""

from __future__ import annotations

import string
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alloysync.client import AlloyItem
from alloysync.mapping import AttributeCodes, ItemInvalid, job_spec_from_item
from scheduler.cron import CronError, crontab_expression, next_fire, parse_cron
from scheduler.jobspec import JobSpecError, parse_steps

_NOW = datetime(2026, 6, 1, tzinfo=UTC)
CODES = AttributeCodes(title="title", cron="cron", steps="steps", timezone="zone")
FIELD_TOKENS = st.sampled_from(
    ["*", "*/5", "0", "7", "59", "60", "1-5", "5-1", "mon", "jan", "L", "#", "?", "-", ",", "/", "x"]
)
CRONISH = st.one_of(
    st.lists(st.text(alphabet="0123456789*/,-LW#? ", max_size=6), min_size=0, max_size=7).map(" ".join),
    st.lists(FIELD_TOKENS, min_size=5, max_size=5).map(" ".join),
    st.sampled_from(["@daily", "@hourly", "@reboot", "@", "@weekly x"]),
    st.text(max_size=30),
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
STEP_LINE = st.one_of(
    st.sampled_from(["examples.echo", "examples.sleep", "examples.fail", "os.system", "builtins.eval", "nope"]),
    st.text(alphabet=string.printable, max_size=40),
).flatmap(lambda name: st.one_of(st.just(name), JSONISH.map(lambda kwargs: f"{name} {kwargs!r}")))


@settings(max_examples=400, deadline=None)
@given(CRONISH)
def test_cron_is_either_schedulable_or_refused_with_a_message(expression):
    try:
        fields = parse_cron(expression)
    except CronError as exc:
        assert str(exc).startswith("cron ")
        return
    # Accepted: Celery-storable fields that really fire.
    assert next_fire(crontab_expression(fields), "UTC", _NOW) is not None


@settings(max_examples=300, deadline=None)
@given(st.lists(STEP_LINE, max_size=5).map("\n".join))
def test_steps_text_is_either_parsed_or_refused_naming_the_step(text):
    try:
        steps = parse_steps(text)
    except JobSpecError as exc:
        assert exc.errors and all(isinstance(error, str) and error for error in exc.errors)
        return
    assert steps and all(step.function.startswith("examples.") for step in steps)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["title", "cron", "steps", "zone", "other"]), JSONISH | CRONISH, max_size=5))
def test_any_item_maps_to_a_spec_or_a_precise_error(attributes):
    item = AlloyItem(
        item_id="65f0c1a0e4d0a1b2c3d4e599", design_code="d", collection="Live", signature="s", attributes=attributes
    )
    try:
        spec = job_spec_from_item(item, CODES, default_timezone="UTC")
    except ItemInvalid as exc:
        assert exc.item_id == item.item_id and exc.errors
        assert all(isinstance(error, str) and error for error in exc.errors)
        return
    assert spec.name and spec.steps
