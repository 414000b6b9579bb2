"""End to end: a step that exits or forks inside a real prefork worker. The run is recorded truthfully
(not left for the reaper as "worker lost"), and the worker runs the next job."""

import pytest

from scheduler.models import JobRun, StepRun
from scheduler.services import job_run_now
from tests.helpers import requires_services, wait_for
from tests.scheduler import hostile_jobs  # noqa: F401 - registers the functions the jobs name

pytestmark = [requires_services, pytest.mark.e2e, pytest.mark.timeout(180)]

HOSTILE_MODULES = {"JOB_MODULES": "jobs.examples,tests.scheduler.hostile_jobs"}


def finished_run(job, processes):
    return wait_for(
        lambda: JobRun.objects.filter(job=job, finished_at__isnull=False).first(),
        timeout=60,
        describe=f"a finished run of {job.name}\n{processes.logs()}",
    )


def test_a_step_calling_sys_exit_fails_its_run_at_once_and_the_worker_runs_the_next_job(celery_processes, make_job):
    exits = make_job(name="exits", steps='hostile.exit {"code": 3}\nexamples.echo {"message": "never"}')
    after = make_job(name="after", steps='examples.echo {"message": "still here"}')
    celery_processes.start("worker", "--concurrency=1", env=HOSTILE_MODULES)
    job_run_now(job=exits)
    run = finished_run(exits, celery_processes)
    assert (run.status, run.error) == ("failed", "step 1 (hostile.exit) failed: called sys.exit(3)")
    assert list(run.steps.order_by("position").values_list("status", flat=True)) == ["failed", "skipped"]
    # The pool process exited as told; the worker replaced it and goes on.
    job_run_now(job=after)
    assert finished_run(after, celery_processes).status == "succeeded"


def test_a_step_that_forks_in_a_worker_is_recorded_once_by_the_worker(celery_processes, make_job):
    job = make_job(name="forks", steps='hostile.fork {"child": "return"}\nexamples.echo {"message": "after"}')
    celery_processes.start("worker", "--concurrency=1", env=HOSTILE_MODULES)
    job_run_now(job=job)
    run = finished_run(job, celery_processes)
    assert run.status == "succeeded"
    steps = list(StepRun.objects.filter(run=run).order_by("position").values_list("status", "result"))
    assert steps == [("succeeded", {"child exit status": 0}), ("succeeded", "after")]
    assert JobRun.objects.filter(job=job).count() == 1
