"""A job's own time limit read from Alloy by the sync: a bad value refuses only its item, and a
changed one updates the job."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from alloysync.models import SyncRun
from alloysync.sync import alloy_sync
from scheduler.models import Job
from tests.alloysync.helpers import job_item
from tests.scheduler.test_time_limits import LIMIT_CODE, MESSAGE


@pytest.mark.django_db
@pytest.mark.timeout(120)
@hypothesis_settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=st.one_of(st.booleans(), st.just(math.nan), st.just(1e308), st.text(max_size=5), st.integers(max_value=0)))
def test_a_sync_refuses_only_the_item_with_a_bad_limit(alloy, settings, bad):
    settings.ALLOY_TIME_LIMIT_ATTRIBUTE = LIMIT_CODE
    Job.objects.all().delete()
    alloy.put_item(job_item("good", n=1, **{LIMIT_CODE: 120}))
    alloy.put_item(job_item("bad", n=2, **{LIMIT_CODE: bad}))
    run = alloy_sync(trigger=SyncRun.Trigger.COMMAND, mode=SyncRun.Mode.FULL).run
    assert run.status == SyncRun.Status.SUCCEEDED
    jobs = {job.name: job for job in Job.objects.filter(source="alloy")}
    if isinstance(bad, str) and not bad.strip():
        # An empty attribute means "no limit of its own": JOB_TIME_LIMIT.
        assert jobs["bad"].time_limit is None
    else:
        assert list(jobs) == ["good"]
        assert [error["message"] for error in run.errors] == [MESSAGE + _shown(bad)]
    assert jobs["good"].time_limit == 120


def _shown(value):
    return repr(value) if not isinstance(value, float) or math.isfinite(value) else "nan"


@pytest.mark.django_db
@pytest.mark.timeout(60)
def test_a_changed_limit_in_alloy_updates_the_job_and_an_unchanged_one_writes_nothing(alloy, settings):
    settings.ALLOY_TIME_LIMIT_ATTRIBUTE = LIMIT_CODE
    alloy.put_item(job_item("report", n=1, **{LIMIT_CODE: 120}))

    def sync():
        return alloy_sync(trigger=SyncRun.Trigger.COMMAND, mode=SyncRun.Mode.FULL).run

    assert sync().created == 1
    assert Job.objects.get().time_limit == 120
    assert (sync().updated, Job.objects.get().time_limit) == (0, 120)
    alloy.edit_item(f"{1:024x}", {LIMIT_CODE: 7200})
    assert (sync().updated, Job.objects.get().time_limit) == (1, 7200)
    alloy.edit_item(f"{1:024x}", {LIMIT_CODE: None})
    assert (sync().updated, Job.objects.get().time_limit) == (1, None)
