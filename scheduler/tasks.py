"""Celery tasks: thin interfaces that load by id and call the runner."""

import logging
import os
from datetime import datetime

from celery import Task, shared_task
from django.conf import settings

from scheduler import tasks_alerts, tasks_retention  # noqa: F401
from scheduler.models import RUN_JOB_TASK, Job, JobRun
from scheduler.run_guards import job_runs_reap_lost
from scheduler.runner import job_run_execute
from scheduler.time_limits import celery_hard_time_limit

logger = logging.getLogger(__name__)

# The runner stops an over-long step itself; Celery's hard limit is the backstop for a step stuck where
# a signal cannot reach it (the killed run is then reaped as "worker lost"). This is the default, for
# messages that carry no limit of their own: "run now" sends the job's (scheduler.services.job_run_now).
_HARD_TIME_LIMIT = celery_hard_time_limit(settings.JOB_TIME_LIMIT)


@shared_task(name=RUN_JOB_TASK, bind=True, time_limit=_HARD_TIME_LIMIT)
def run_job(
    self: Task[[int, int | None, str | None], str | None],
    job_id: int,
    run_id: int | None = None,
    due_at: str | None = None,
) -> str | None:
    """Run a job's steps. Beat sends ``job_id`` and the ``due_at`` it is for; "run now" its ``run_id``."""
    job = Job.objects.select_related("periodic_task").filter(pk=job_id).first()
    if job is None:
        logger.warning("run_job: job %s no longer exists; nothing to run", job_id)
        return None
    run = JobRun.objects.filter(pk=run_id, job=job).first() if run_id is not None else None
    trigger = run.trigger if run else JobRun.Trigger.SCHEDULE
    worker = f"{self.request.hostname or 'worker'}:{os.getpid()}"
    due = datetime.fromisoformat(due_at) if due_at else None
    return job_run_execute(job=job, trigger=trigger, run=run, worker=worker, due_at=due).status


@shared_task(name="scheduler.reap_lost_runs")
def reap_lost_runs() -> int:
    """Mark runs whose worker died as failed, so none stays "running" forever."""
    return len(job_runs_reap_lost())
