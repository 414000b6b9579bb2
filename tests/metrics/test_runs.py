"""Run metrics against real runs: each run counted once, by outcome, with its duration and lag."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler.metrics import JOB_RUN_DURATION, JOB_RUN_LAG, JOB_RUNS, counters_read
from scheduler.models import Job, JobRun
from scheduler.run_guards import job_runs_reap_lost, run_fail_if
from scheduler.runner import job_run_execute
from scheduler.services import job_pause
from tests.metrics.helpers import scrape, value

pytestmark = pytest.mark.django_db(transaction=True)  # autocommit, as a worker runs


def runs(found, **labels):
    return value(found, JOB_RUNS, **labels)


def test_runs_are_counted_by_source_trigger_and_outcome(client, settings, make_job):
    ok = make_job(name="ok")
    bad = make_job(name="bad", steps='examples.fail {"message": "no"}')
    for _ in range(3):
        job_run_execute(job=ok, trigger=JobRun.Trigger.COMMAND)
    job_run_execute(job=bad, trigger=JobRun.Trigger.MANUAL)
    found = scrape(client, settings)
    assert runs(found, source="local", trigger="command", outcome="succeeded") == 3
    assert runs(found, source="local", trigger="manual", outcome="failed") == 1
    assert runs(found, source="local", trigger="command", outcome="failed") == 0


def test_durations_fall_in_their_buckets_cumulated_with_sum_and_count(client, settings, make_job):
    job = make_job(steps='examples.sleep {"seconds": 0.6}')
    quick = make_job(name="quick")
    job_run_execute(job=job, trigger=JobRun.Trigger.COMMAND)
    job_run_execute(job=quick, trigger=JobRun.Trigger.COMMAND)
    found = scrape(client, settings)
    bucket = f"{JOB_RUN_DURATION}_bucket"
    assert value(found, bucket, source="local", le="0.1") == 1
    assert value(found, bucket, source="local", le="0.5") == 1
    assert value(found, bucket, source="local", le="1.0") == 2
    assert value(found, bucket, source="local", le="+Inf") == 2
    assert value(found, f"{JOB_RUN_DURATION}_count", source="local") == 2
    assert 0.6 <= value(found, f"{JOB_RUN_DURATION}_sum", source="local") < 1.5


def test_lag_is_observed_for_scheduled_runs_only(client, settings, make_job):
    job = make_job()
    job_run_execute(job=job, trigger=JobRun.Trigger.SCHEDULE, due_at=timezone.now() - timedelta(seconds=7))
    job_run_execute(job=job, trigger=JobRun.Trigger.COMMAND)
    found = scrape(client, settings)
    bucket = f"{JOB_RUN_LAG}_bucket"
    assert value(found, bucket, source="local", le="5.0") == 0
    assert value(found, bucket, source="local", le="10.0") == 1
    assert value(found, f"{JOB_RUN_LAG}_count", source="local") == 1
    assert 7 <= value(found, f"{JOB_RUN_LAG}_sum", source="local") < 9


def test_a_second_message_for_one_due_time_is_not_counted_again(client, settings, make_job):
    job = make_job()
    due = timezone.now().replace(microsecond=0)
    job_run_execute(job=job, trigger=JobRun.Trigger.SCHEDULE, due_at=due)
    job_run_execute(job=job, trigger=JobRun.Trigger.SCHEDULE, due_at=due)  # two beats, a redelivery
    found = scrape(client, settings)
    assert runs(found, source="local", trigger="schedule", outcome="succeeded") == 1
    assert value(found, f"{JOB_RUN_LAG}_count", source="local") == 1
    assert JobRun.objects.count() == 1


def test_overlapping_and_paused_runs_are_counted_skipped(client, settings, make_job):
    job = make_job()
    JobRun.objects.create(job=job, trigger="manual", status="running", started_at=timezone.now())
    job_run_execute(job=job, trigger=JobRun.Trigger.SCHEDULE, due_at=timezone.now())  # overlap
    queued = JobRun.objects.create(job=job, trigger="manual")
    job_run_execute(job=job, trigger="manual", run=queued)  # job busy
    job_run_execute(job=job, trigger="manual", run=queued)  # the same message again: once
    other = make_job(name="paused")
    job_pause(job=other, note="maintenance")
    job_run_execute(job=Job.objects.get(pk=other.pk), trigger=JobRun.Trigger.SCHEDULE, due_at=timezone.now())
    found = scrape(client, settings)
    assert runs(found, source="local", trigger="schedule", outcome="skipped") == 2
    assert runs(found, source="local", trigger="manual", outcome="skipped") == 1
    assert value(found, f"{JOB_RUN_DURATION}_count", source="local") == 0  # they never started


def test_a_lost_run_counts_failed_once_and_its_late_end_not_at_all(client, settings, make_job):
    job = make_job()
    started = timezone.now() - timedelta(minutes=10)
    run = JobRun.objects.create(
        job=job, trigger="schedule", status="running", started_at=started, heartbeat_at=started, due_at=started
    )
    assert job_runs_reap_lost() == [run.pk]
    assert job_runs_reap_lost() == []
    # The worker was only slow: its own end comes now, and must not count the run a second time.
    assert not run_fail_if(JobRun.objects.filter(pk=run.pk, status="running"), run_id=run.pk, now=timezone.now(),
                           error="late", step_error="late")  # fmt: skip
    found = scrape(client, settings)
    assert runs(found, source="local", trigger="schedule", outcome="failed") == 1
    assert value(found, f"{JOB_RUN_DURATION}_bucket", source="local", le="900.0") == 1
    assert value(found, f"{JOB_RUN_DURATION}_bucket", source="local", le="300.0") == 0


def test_counts_survive_as_rows_not_process_memory(make_job):
    job = make_job(source=Job.Source.ALLOY, external_id="642062376be3a0036bbbb64b")
    job_run_execute(job=job, trigger=JobRun.Trigger.ALLOY)
    stored = counters_read([JOB_RUNS])[JOB_RUNS]
    assert stored == [({"outcome": "succeeded", "source": "alloy", "trigger": "alloy"}, 1, 0.0)]
