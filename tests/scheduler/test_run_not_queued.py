"""A run the broker does not take (down, unreachable) ends failed, saying so; it never stays queued."""

from __future__ import annotations

import pytest
from django.db import transaction

from config import celery_app
from scheduler.metrics import JOB_RUNS, counters_read
from scheduler.models import JobRun
from scheduler.services import RunNotQueued, job_run_now
from tests.helpers import broker_unreachable

pytestmark = pytest.mark.django_db(transaction=True)  # the message is sent once the run is committed

NOT_QUEUED = "not queued: the broker did not take the message (OperationalError); nothing ran"


def failed_counts():
    return {(labels["trigger"], labels["outcome"]): count for labels, count, _ in counters_read([JOB_RUNS])[JOB_RUNS]}


def test_run_now_with_the_broker_away_raises_and_records_the_run_failed_saying_why(make_job):
    job = make_job()
    with broker_unreachable(celery_app), pytest.raises(RunNotQueued) as raised:
        job_run_now(job=job)

    run = JobRun.objects.get(pk=raised.value.run.pk)
    assert (run.status, run.error) == ("failed", NOT_QUEUED) and run.finished_at is not None
    assert "127.0.0.1:1" not in str(raised.value)  # the broker's address stays out of records
    assert failed_counts() == {("manual", "failed"): 1}


def test_inside_a_caller_s_transaction_the_run_is_still_ended_and_nothing_is_raised_into_its_commit(make_job):
    # Alloy's run-now requests are queued inside the sync's own transaction: its commit must not fail.
    job = make_job()
    with broker_unreachable(celery_app), transaction.atomic():
        run = job_run_now(job=job, trigger=JobRun.Trigger.ALLOY)
    run.refresh_from_db()
    assert (run.status, run.error) == ("failed", NOT_QUEUED)


def test_the_admin_s_run_now_shows_the_failure_instead_of_a_queued_message(make_job, admin_client):
    job = make_job()
    with broker_unreachable(celery_app):
        response = admin_client.post(f"/admin/scheduler/job/{job.pk}/run/", follow=True)
    run = JobRun.objects.get(job=job)
    assert run.status == "failed"
    assert f"Run {run.pk} failed: {NOT_QUEUED}" in response.content.decode()
