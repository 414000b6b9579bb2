"""End to end with real processes: celery worker and beat against PostgreSQL and Redis."""

import signal

import pytest
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from config import celery_app
from scheduler.models import JobRun, StepRun
from scheduler.services import job_run_now
from tests.helpers import requires_services, wait_for

pytestmark = [requires_services, pytest.mark.e2e, pytest.mark.timeout(180)]


def finished_runs(job, **filters):
    return list(JobRun.objects.filter(job=job, finished_at__isnull=False, **filters).order_by("pk"))


def test_a_real_worker_runs_a_queued_job_and_records_every_step(celery_processes, make_job):
    job = make_job(steps='examples.echo {"message": "one"}\nexamples.echo {"message": "two"}')
    celery_processes.start("worker", "--concurrency=1")
    run = job_run_now(job=job)
    wait_for(lambda: finished_runs(job), timeout=60, describe=f"run {run.pk}\n{celery_processes.logs()}")
    run.refresh_from_db()
    assert (run.trigger, run.status) == ("manual", "succeeded")
    assert run.worker.startswith(celery_processes.queue)
    steps = list(StepRun.objects.filter(run=run).order_by("position").values_list("status", "result"))
    assert steps == [("succeeded", "one"), ("succeeded", "two")]


def test_a_real_beat_dispatches_an_every_minute_job_within_70_seconds(celery_processes, make_job):
    job = make_job(cron="* * * * *", steps='examples.echo {"message": "tick"}')
    celery_processes.start("worker", "--concurrency=1")
    celery_processes.start("beat")
    runs = wait_for(
        lambda: finished_runs(job, trigger="schedule"),
        timeout=75,
        interval=1,
        describe=f"a scheduled run\n{celery_processes.logs()}",
    )
    assert runs[0].status == "succeeded"
    assert StepRun.objects.get(run=runs[0]).result == "tick"
    # Beat wrote the service's own entries to the database at start-up: no manual step.
    assert PeriodicTask.objects.filter(name="scheduler.reap_lost_runs", enabled=True).exists()
    sync_entry = PeriodicTask.objects.get(name="alloysync.sync", task="alloysync.sync")
    assert sync_entry.interval.every == settings.ALLOY_SYNC_INTERVAL


def test_overlapping_runs_of_one_job_are_skipped_across_worker_processes(celery_processes, make_job):
    job = make_job(steps='examples.sleep {"seconds": 4}')
    celery_processes.start("worker", "--concurrency=2")
    celery_app.send_task("scheduler.run_job", args=[job.pk])
    celery_app.send_task("scheduler.run_job", args=[job.pk])
    runs = wait_for(
        lambda: len(finished_runs(job)) == 2 and finished_runs(job),
        timeout=60,
        describe=f"two finished runs\n{celery_processes.logs()}",
    )
    assert sorted((run.status, run.error) for run in runs) == [
        ("skipped", "previous run still running"),
        ("succeeded", ""),
    ]


def test_a_worker_enforces_the_job_time_limit(celery_processes, make_job):
    job = make_job(steps='examples.sleep {"seconds": 60}\nexamples.echo {"message": "never"}')
    celery_processes.start("worker", "--concurrency=1", env={"JOB_TIME_LIMIT": "2"})
    job_run_now(job=job)
    (run,) = wait_for(lambda: finished_runs(job), timeout=40, describe=celery_processes.logs())
    assert run.status == "failed"
    assert list(run.steps.values_list("status", "error")) == [
        ("failed", "time limit of 2 s exceeded"),
        ("skipped", ""),
    ]


def test_a_run_whose_worker_is_killed_ends_failed_worker_lost(celery_processes, make_job):
    job = make_job(steps='examples.sleep {"seconds": 60}')
    doomed = celery_processes.start("worker", "--pool=solo")
    job_run_now(job=job)
    wait_for(
        lambda: StepRun.objects.filter(run__job=job, status="running").exists(),
        timeout=30,
        describe=f"the step to start\n{celery_processes.logs()}",
    )
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    # A fresh worker runs the reaper task; heartbeats stop with the dead worker.
    celery_processes.start("worker", "--concurrency=1", env={"JOB_LOST_AFTER": "3"})
    celery_app.send_task("scheduler.reap_lost_runs", countdown=4)
    (run,) = wait_for(lambda: finished_runs(job), timeout=40, describe=celery_processes.logs())
    assert run.status == "failed"
    assert run.error.startswith("worker lost")
    assert list(run.steps.values_list("status", flat=True)) == ["failed"]


@pytest.mark.parametrize(("level", "logged"), [("INFO", True), ("WARNING", False)])
def test_a_worker_logs_its_runs_at_the_level_log_level_sets_without_any_loglevel_option(
    celery_processes, make_job, level, logged
):
    # Celery used to set the root level to its own --loglevel (default WARNING) over LOG_LEVEL.
    job = make_job(steps='examples.echo {"message": "logged"}')
    celery_processes.start("worker", "--concurrency=1", env={"LOG_LEVEL": level})
    run = job_run_now(job=job)
    wait_for(lambda: finished_runs(job), timeout=60, describe=f"run {run.pk}\n{celery_processes.logs()}")
    line = f"run {run.pk} of job {job.pk} succeeded (manual)"
    wait_for(lambda: (line in celery_processes.logs()) or not logged, timeout=10, describe=celery_processes.logs())
    assert (line in celery_processes.logs()) is logged, celery_processes.logs()
