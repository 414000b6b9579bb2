import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler.models import JobRun, StepRun
from scheduler.run_guards import job_runs_reap_lost
from scheduler.runner import job_run_execute
from scheduler.services import job_pause, job_remove

pytestmark = pytest.mark.django_db

THREE_STEPS = """
examples.echo {"message": "one"}
examples.echo {"message": "two"}
examples.echo {"message": "three"}
"""


def run(job, trigger=JobRun.Trigger.COMMAND, **kwargs):
    return job_run_execute(job=job, trigger=trigger, **kwargs)


def test_steps_run_in_order_and_results_are_recorded(make_job):
    job = make_job(steps=THREE_STEPS)
    seen = []
    result = run(job, on_step=lambda step: seen.append((step.position, step.status)))
    assert result.status == JobRun.Status.SUCCEEDED
    steps = list(StepRun.objects.filter(run=result).order_by("position"))
    assert [(s.function, s.kwargs, s.status, s.result) for s in steps] == [
        ("examples.echo", {"message": "one"}, "succeeded", "one"),
        ("examples.echo", {"message": "two"}, "succeeded", "two"),
        ("examples.echo", {"message": "three"}, "succeeded", "three"),
    ]
    assert seen == [(1, "succeeded"), (2, "succeeded"), (3, "succeeded")]
    assert steps[0].finished_at <= steps[1].started_at <= steps[1].finished_at <= steps[2].started_at
    stored = JobRun.objects.get(pk=result.pk)
    assert stored.started_at <= steps[0].started_at and stored.finished_at >= steps[2].finished_at
    assert stored.worker


def test_a_failed_step_stops_the_run_keeps_its_traceback_and_skips_the_rest(make_job):
    job = make_job(
        steps='examples.echo {"message": "one"}\nexamples.fail {"message": "gully feed down"}\n'
        'examples.echo {"message": "never"}'
    )
    result = run(job)
    assert result.status == JobRun.Status.FAILED
    assert result.error == "step 2 (examples.fail) failed: RuntimeError: gully feed down"
    steps = list(StepRun.objects.filter(run=result).order_by("position"))
    assert [s.status for s in steps] == ["succeeded", "failed", "skipped"]
    assert "Traceback (most recent call last)" in steps[1].error
    assert "raise RuntimeError(message)" in steps[1].error
    assert steps[2].started_at is None


def test_a_run_due_while_the_previous_one_runs_is_skipped_not_started(make_job):
    job = make_job()
    JobRun.objects.create(job=job, trigger=JobRun.Trigger.SCHEDULE, status=JobRun.Status.RUNNING)
    result = run(job, trigger=JobRun.Trigger.SCHEDULE)
    assert result.status == JobRun.Status.SKIPPED
    assert result.error == "previous run still running"
    assert not StepRun.objects.filter(run=result).exists()


def test_an_over_long_step_is_stopped_and_the_run_failed(make_job):
    job = make_job(steps='examples.sleep {"seconds": 30}\nexamples.echo {"message": "after"}')
    started = time.monotonic()
    result = run(job, time_limit=0.5)
    assert time.monotonic() - started < 5
    assert result.status == JobRun.Status.FAILED
    steps = list(StepRun.objects.filter(run=result).order_by("position"))
    assert [s.status for s in steps] == ["failed", "skipped"]
    assert steps[0].error == "time limit of 0.5 s exceeded"


def test_the_time_limit_covers_the_whole_run_not_each_step(make_job):
    job = make_job(
        steps='examples.sleep {"seconds": 0.4}\nexamples.sleep {"seconds": 0.4}\nexamples.echo {"message": "x"}'
    )
    result = run(job, time_limit=0.6)
    statuses = list(StepRun.objects.filter(run=result).order_by("position").values_list("status", flat=True))
    assert statuses == ["succeeded", "failed", "skipped"]


def test_a_step_that_catches_exception_cannot_swallow_the_time_limit(make_job):
    from scheduler.registry import _registry, job_function

    @job_function("tests.stubborn")
    def stubborn() -> str:
        try:
            time.sleep(30)
        except Exception:  # noqa: BLE001 - this is what the test is about
            return "swallowed"
        return "slept"

    try:
        job = make_job(steps="tests.stubborn")
        result = run(job, time_limit=0.3)
        assert result.status == JobRun.Status.FAILED
    finally:
        _registry.pop("tests.stubborn")


def test_a_run_whose_worker_died_is_marked_failed_worker_lost(make_job):
    job = make_job(steps=THREE_STEPS)
    stale = timezone.now() - timedelta(minutes=10)
    lost = JobRun.objects.create(
        job=job, trigger="schedule", status="running", started_at=stale, heartbeat_at=stale, worker="w1:123"
    )
    StepRun.objects.create(run=lost, position=1, function="examples.echo", status="succeeded")
    StepRun.objects.create(run=lost, position=2, function="examples.echo", status="running")
    StepRun.objects.create(run=lost, position=3, function="examples.echo", status="pending")
    alive = JobRun.objects.create(
        job=make_job(name="other"), trigger="schedule", status="running", heartbeat_at=timezone.now()
    )
    assert job_runs_reap_lost() == [lost.pk]
    lost.refresh_from_db()
    alive.refresh_from_db()
    assert lost.status == "failed"
    assert lost.error.startswith("worker lost: no heartbeat from w1:123")
    assert lost.finished_at is not None
    assert list(lost.steps.order_by("position").values_list("status", flat=True)) == ["succeeded", "failed", "skipped"]
    assert alive.status == "running"
    # The job is free to run again.
    assert run(job, trigger=JobRun.Trigger.SCHEDULE).status == JobRun.Status.SUCCEEDED


def test_a_scheduled_run_of_a_paused_or_removed_job_is_skipped(make_job):
    paused = make_job(name="paused")
    job_pause(job=paused, note="x")
    assert run(paused, trigger=JobRun.Trigger.SCHEDULE).error == "job is paused"
    removed = make_job(name="removed")
    job_remove(job=removed)
    assert run(removed, trigger=JobRun.Trigger.SCHEDULE).error == "job was removed"
    # An operator's explicit run still goes ahead.
    assert run(paused, trigger=JobRun.Trigger.MANUAL).status == JobRun.Status.SUCCEEDED


def test_a_queued_run_is_run_once_even_if_delivered_twice(make_job):
    job = make_job()
    queued = JobRun.objects.create(job=job, trigger=JobRun.Trigger.MANUAL)
    first = run(job, trigger=JobRun.Trigger.MANUAL, run=queued)
    again = run(job, trigger=JobRun.Trigger.MANUAL, run=JobRun.objects.get(pk=queued.pk))
    assert first.status == again.status == JobRun.Status.SUCCEEDED
    assert StepRun.objects.filter(run=queued).count() == 1


def test_a_step_naming_an_unregistered_function_fails_without_importing_it(make_job):
    job = make_job()
    job.steps = [{"function": "this.s", "kwargs": {}}]  # e.g. a function removed from the registry since
    job.save()
    result = run(job)
    assert result.status == JobRun.Status.FAILED
    assert result.error == "step 1 (this.s) failed: function 'this.s' is not registered"
    assert "this" not in sys.modules
