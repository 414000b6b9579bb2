"""The run path keeps each job's failure streak and tells the alerts, in few queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scheduler.models import Alert, Job, JobRun, StepRun
from scheduler.run_guards import job_runs_reap_lost
from scheduler.runner import job_run_execute
from scheduler.services import job_pause

FAIL = 'examples.fail {"message": "pump offline"}'
ECHO = 'examples.echo {"message": "hi"}'

#: Queries for a one-step scheduled run that succeeds, as a worker runs it (autocommit, no savepoints),
#: the task's read of the job included; was 13 (12 in the runner). SQLite: insert the run already
#: running with its lag counted for /metrics (BEGIN IMMEDIATE, insert, count, COMMIT), insert its step
#: already running, record the step, record the run with its outcome and duration counted (BEGIN
#: IMMEDIATE, update, count, COMMIT: counted once, with the status change), reset the streak if any.
#: PostgreSQL: the run with its step and its count in one statement, the step's and the run's end,
#: the counts and the streak in another.
ONE_STEP_RUN_QUERIES = {"postgresql": 3, "sqlite": 12}


def run(job, trigger=JobRun.Trigger.SCHEDULE, **kwargs):
    return job_run_execute(job=job, trigger=trigger, **kwargs)


def streak(job):
    return Job.objects.get(pk=job.pk).failure_streak


@pytest.mark.django_db
def test_failures_in_a_row_count_up_and_a_success_ends_the_streak(make_job):
    job = make_job(steps=FAIL)
    for expected in (1, 2, 3):
        run(job)
        assert streak(job) == expected
    job.steps = [{"function": "examples.echo", "kwargs": {"message": "fixed"}}]
    assert run(job).status == JobRun.Status.SUCCEEDED
    assert streak(job) == 0
    run(job)
    assert streak(job) == 0


@pytest.mark.django_db
def test_the_alerts_hear_of_the_first_failure_and_of_the_recovery_only(make_job):
    job = make_job(steps=FAIL)
    run(job)
    run(job)
    assert list(Alert.objects.values_list("kind", flat=True)) == [Alert.Kind.FAILING]
    job.steps = [{"function": "examples.echo", "kwargs": {"message": "fixed"}}]
    run(job)
    run(job)
    assert sorted(Alert.objects.values_list("kind", flat=True)) == [Alert.Kind.FAILING, Alert.Kind.RECOVERED]


@pytest.mark.django_db
def test_skipped_runs_leave_the_streak_alone(make_job):
    job = make_job(steps=FAIL)
    run(job)
    JobRun.objects.create(job=job, trigger=JobRun.Trigger.SCHEDULE, status=JobRun.Status.RUNNING)
    assert run(job).status == JobRun.Status.SKIPPED  # previous run still running
    JobRun.objects.filter(status=JobRun.Status.RUNNING).update(status=JobRun.Status.SUCCEEDED)
    job_pause(job=job, note="maintenance")
    assert run(job).status == JobRun.Status.SKIPPED  # paused
    assert streak(job) == 1


@pytest.mark.django_db
def test_a_lost_run_counts_as_a_failure(make_job, settings):
    job = make_job()
    old = timezone.now() - timedelta(seconds=settings.JOB_LOST_AFTER + 5)
    lost = JobRun.objects.create(
        job=job, trigger=JobRun.Trigger.SCHEDULE, status=JobRun.Status.RUNNING, started_at=old, heartbeat_at=old
    )
    StepRun.objects.create(run=lost, position=1, function="examples.echo", status=StepRun.Status.RUNNING)
    assert job_runs_reap_lost() == [lost.pk]
    assert streak(job) == 1
    assert list(Alert.objects.values_list("kind", "run")) == [(Alert.Kind.FAILING, lost.pk)]


@pytest.mark.django_db
def test_a_runner_that_stops_between_steps_counts_as_a_failure(make_job):
    job = make_job(steps=f"{ECHO}\n{ECHO}")

    def interrupt(step):
        if step.position == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(job, on_step=interrupt)
    assert JobRun.objects.get().status == JobRun.Status.FAILED
    assert streak(job) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("source", [Job.Source.LOCAL, Job.Source.ALLOY])
def test_a_one_step_scheduled_run_costs_few_queries(make_job, settings, source):
    """A regression guard on the run path's cost, as a worker runs it (autocommit). With write-back on,
    the job_state_changed receiver fires for every run: it must cost nothing for a local job; for an
    Alloy job, finding its item already marked to be written is the one query allowed past the budget."""
    settings.ALLOY_STATUS_ATTRIBUTE = "attributes_status"  # write-back on
    job = make_job(source=source, external_id="642062376be3a0036bbbb64b" if source == Job.Source.ALLOY else "")
    run(job)  # an Alloy job's item is now marked to be written; the next mark only finds it so
    loaded = Job.objects.select_related("periodic_task").get(pk=job.pk)  # as the task loads it
    with CaptureQueriesContext(connection) as queries:
        finished = run(loaded, due_at=timezone.now().replace(microsecond=0))
    assert finished.status == JobRun.Status.SUCCEEDED
    write_back = 1 if source == Job.Source.ALLOY else 0
    assert len(queries) <= ONE_STEP_RUN_QUERIES[connection.vendor] - 1 + write_back, "\n".join(
        q["sql"][:150] for q in queries
    )
