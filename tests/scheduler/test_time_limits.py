"""A job's own time limit: from the admin's spec or an Alloy attribute, honoured by the runner and by
Celery's backstop, and part of what makes a sync update a job."""

from __future__ import annotations

import math
import time

import pytest
from celery.signals import before_task_publish
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from alloysync.client import parse_item
from alloysync.fake_alloy import SAMPLE_CRON_ATTRIBUTE, SAMPLE_STEPS_ATTRIBUTE, TITLE_ATTRIBUTE
from alloysync.mapping import AttributeCodes, ItemInvalid, job_spec_from_item
from scheduler.jobspec import JobSpecError, job_spec_build
from scheduler.models import MAX_TIME_LIMIT, JobRun
from scheduler.runner import job_run_execute
from scheduler.services import job_create, job_run_now
from scheduler.tasks import run_job
from tests.alloysync.helpers import job_item

LIMIT_CODE = "attributes_scheduledJobsTimeLimit_65f0c0ffee0000000000abd9"
CODES = AttributeCodes(
    title=TITLE_ATTRIBUTE, cron=SAMPLE_CRON_ATTRIBUTE, steps=SAMPLE_STEPS_ATTRIBUTE, time_limit=LIMIT_CODE
)
MESSAGE = "time limit (ALLOY_TIME_LIMIT_ATTRIBUTE) must be a whole number of seconds from 1 to 31622400, got "


def spec_of(item):
    return job_spec_from_item(parse_item(item), CODES, default_timezone="UTC")


def limited_job(limit, steps='examples.sleep {"seconds": 1}'):
    spec = job_spec_build(name="limited", cron="0 3 * * *", timezone="UTC", steps=steps, time_limit=limit)
    return job_create(spec=spec)


# --- from Alloy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(90, 90), (90.0, 90), (None, None), ("", None), (MAX_TIME_LIMIT, MAX_TIME_LIMIT)]
)
def test_an_item_s_time_limit_becomes_the_spec_s(value, expected):
    assert spec_of(job_item(**{LIMIT_CODE: value})).time_limit == expected


def test_without_the_setting_the_attribute_is_not_read():
    codes = AttributeCodes(title=TITLE_ATTRIBUTE, cron=SAMPLE_CRON_ATTRIBUTE, steps=SAMPLE_STEPS_ATTRIBUTE)
    spec = job_spec_from_item(parse_item(job_item(**{LIMIT_CODE: 90})), codes, default_timezone="UTC")
    assert spec.time_limit is None


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("abc", "'abc'"),
        ("90", "'90'"),
        (True, "True"),
        (0, "0"),
        (-5, "-5"),
        (1.5, "1.5"),
        (math.nan, "nan"),
        (1e308, "1e+308"),
        (MAX_TIME_LIMIT + 1, "31622401"),
        ([60], "a list"),
        ({"seconds": 60}, "a dict"),
    ],
)
def test_a_bad_time_limit_is_the_item_s_error_naming_the_setting_and_value(value, shown):
    with pytest.raises(ItemInvalid) as caught:
        spec_of(job_item(**{LIMIT_CODE: value}))
    assert caught.value.errors == [MESSAGE + shown]


@given(
    st.one_of(
        st.booleans(),
        st.floats().filter(lambda f: not (math.isfinite(f) and f.is_integer() and 1 <= f <= MAX_TIME_LIMIT)),
        st.integers().filter(lambda n: not 1 <= n <= MAX_TIME_LIMIT),
        st.text(min_size=1).filter(str.strip),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )
)
@example(10**5000)
@example(-(2**63))
@example(math.inf)
@hypothesis_settings(max_examples=150, deadline=None)
def test_every_kind_of_bad_time_limit_is_refused_with_one_clear_message(value):
    with pytest.raises(ItemInvalid) as caught:
        spec_of(job_item(**{LIMIT_CODE: value}))
    (error,) = caught.value.errors
    assert error.startswith(MESSAGE)
    assert len(error) < len(MESSAGE) + 300  # a value is cut short, not repeated whole


def test_the_admin_s_spec_names_the_field_without_the_alloy_setting():
    with pytest.raises(JobSpecError) as caught:
        job_spec_build(name="x", cron="@daily", timezone="UTC", steps='examples.sleep {"seconds": 1}', time_limit=0)
    assert caught.value.errors == ["time limit must be a whole number of seconds from 1 to 31622400, got 0"]


# --- the runner -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_step_running_past_its_job_s_own_limit_is_stopped_and_the_run_failed_naming_it(settings):
    settings.JOB_TIME_LIMIT = 60
    job = limited_job(1, steps='examples.sleep {"seconds": 30}')
    started = time.monotonic()
    run = job_run_execute(job=job, trigger=JobRun.Trigger.SCHEDULE)
    assert time.monotonic() - started < 5
    assert run.status == JobRun.Status.FAILED
    assert run.error == "step 1 (examples.sleep) failed: time limit of 1 s exceeded"


@pytest.mark.django_db
@pytest.mark.parametrize("trigger", [JobRun.Trigger.SCHEDULE, JobRun.Trigger.COMMAND, JobRun.Trigger.MANUAL])
def test_a_job_allowed_longer_than_job_time_limit_is_not_stopped_at_it(settings, trigger):
    settings.JOB_TIME_LIMIT = 0.3
    job = limited_job(5, steps='examples.sleep {"seconds": 0.8}')
    run = job_run_execute(job=job, trigger=trigger)
    assert (run.status, run.error) == (JobRun.Status.SUCCEEDED, "")


@pytest.mark.django_db
def test_a_job_without_its_own_limit_still_gets_job_time_limit(settings):
    settings.JOB_TIME_LIMIT = 0.3
    run = job_run_execute(job=limited_job(None), trigger=JobRun.Trigger.SCHEDULE)
    assert run.error == "step 1 (examples.sleep) failed: time limit of 0.3 s exceeded"


@pytest.mark.django_db
def test_run_now_tells_celery_the_job_s_own_hard_limit(django_capture_on_commit_callbacks):
    """Celery's hard limit (the backstop that kills the worker process) must not come before the
    job's own limit: "run now" sends the limit with the message (a documented apply_async option)."""
    sent = []

    def record(headers=None, **kwargs):
        sent.append(headers["timelimit"])

    before_task_publish.connect(record, weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            job_run_now(job=limited_job(7200))
        with django_capture_on_commit_callbacks(execute=True):
            job_run_now(job=limited_job(None))
    finally:
        before_task_publish.disconnect(record)
    assert [list(limits) for limits in sent] == [[7260, None], [run_job.time_limit, None]]
