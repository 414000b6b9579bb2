"""Generated hostile steps: whatever a step returns or raises (text with NUL or unpaired surrogates,
nesting to 1,500 levels, NaN and infinities, integers of thousands of digits, objects without JSON,
BaseExceptions), its run ends terminal and its records say what the step did, on the database under
test."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.models import JobRun
from scheduler.runner import job_run_execute
from tests.scheduler import hostile_jobs
from tests.scheduler.hostile_values import DEEP, EXCEPTIONS, VALUES

pytestmark = pytest.mark.django_db

BEHAVIOURS = st.one_of(
    st.one_of(VALUES, DEEP).map(lambda value: ("return", value)),
    EXCEPTIONS.map(lambda exc: ("raise", exc)),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(behaviour=BEHAVIOURS)
def test_whatever_a_step_returns_or_raises_its_run_ends_and_says_so(make_job, behaviour):
    hostile_jobs.current = behaviour
    job = make_job(name="hostile", steps='hostile.current\nexamples.echo {"message": "after"}')
    action, value = behaviour
    try:
        job_run_execute(job=job, trigger=JobRun.Trigger.COMMAND)
    except (KeyboardInterrupt, SystemExit) as exc:
        assert exc is value  # only a stop the step itself raised comes back out, once recorded
    stored = JobRun.objects.get(job=job)
    steps = list(stored.steps.order_by("position").values_list("status", "result", "error"))
    assert stored.finished_at is not None
    if action == "return":
        assert stored.status == "succeeded", stored.error
        assert [status for status, _, _ in steps] == ["succeeded", "succeeded"]
        json.dumps(steps[0][1], allow_nan=False)  # what is stored is JSON, read back as it was written
    else:
        assert stored.status == "failed"
        assert [status for status, _, _ in steps] == ["failed", "skipped"]
        named = "called sys.exit(" if type(value) is SystemExit else type(value).__qualname__
        assert stored.error.startswith("step 1 (hostile.current) failed: ") and named in stored.error
        assert steps[0][2]  # its traceback, or why there is none
