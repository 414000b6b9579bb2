"""Write operations on jobs: create, update, pause, resume, remove, run now.

Every path that changes a job's schedule goes through here (the admin, the Alloy sync, tests), so the
rules hold everywhere: CrontabSchedule rows are shared, an existing schedule's ``enabled`` flag (the
operators' pause) is never touched by a definition change, and a removed job keeps its history.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, cast

from celery import current_app
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from kombu.exceptions import OperationalError as KombuOperationalError

from scheduler.cron import CrontabFields
from scheduler.events import job_state_changed_send
from scheduler.jobspec import JobSpec, step_kwargs_parse, step_kwargs_texts, steps_with_kwargs
from scheduler.metrics import counters_add, run_end_counts
from scheduler.models import RUN_JOB_TASK, Job, JobRun, StepRun
from scheduler.plain_text import one_line
from scheduler.time_limits import celery_hard_time_limit, run_time_limit
from scheduler.types import JSONObject

logger = logging.getLogger(__name__)


def periodic_task_name(job_id: int, name: str) -> str:
    # PeriodicTask.name is unique; job names need not be, the id makes it so. One clean line: beat
    # logs it, and django-celery-beat's pages show it (a name from Alloy may hold bidi controls).
    prefix = f"job {job_id}: "
    return prefix + one_line(name, 200 - len(prefix))


def periodic_task_description(job_id: int, source: str, external_id: str) -> str:
    return f"Runs job {job_id} ({source} {external_id})".replace(" )", ")")


def crontab_schedule_get_or_create(*, fields: CrontabFields, timezone_name: str) -> CrontabSchedule:
    """The shared CrontabSchedule row for these fields and zone, created if missing.

    The table has no unique constraint, so duplicates made by an earlier race may exist: use the
    oldest rather than fail with MultipleObjectsReturned.
    """
    lookup = {
        "minute": fields.minute,
        "hour": fields.hour,
        "day_of_month": fields.day_of_month,
        "month_of_year": fields.month_of_year,
        "day_of_week": fields.day_of_week,
        "timezone": timezone_name,
    }
    existing = CrontabSchedule.objects.filter(**lookup).order_by("pk").first()
    return existing or CrontabSchedule.objects.create(**lookup)


def job_spec_apply(job: Job, spec: JobSpec) -> None:
    """Copy a definition onto the job's fields (not saved) and clear any error the source showed."""
    job.name = spec.name
    job.cron = spec.cron
    job.timezone = spec.timezone
    job.steps = spec.steps_json()
    job.time_limit = spec.time_limit
    job.sync_error = ""


def _schedule_job(job: Job, spec: JobSpec) -> None:
    """Point the job's PeriodicTask at the spec's crontab, creating the task if the job has none."""
    crontab = crontab_schedule_get_or_create(fields=spec.crontab, timezone_name=spec.timezone)
    task = job.periodic_task
    if task is None:
        job.periodic_task = PeriodicTask.objects.create(
            name=periodic_task_name(job.pk, job.name),
            task=RUN_JOB_TASK,
            crontab=crontab,
            args=json.dumps([job.pk]),
            description=periodic_task_description(job.pk, job.source, job.external_id),
        )
        return
    task.name = periodic_task_name(job.pk, job.name)
    task.crontab = crontab
    # save() (not a queryset update) so django-celery-beat's signal tells beat to reload.
    task.save(update_fields=["name", "crontab", "date_changed"])


def job_create(*, spec: JobSpec, source: str = Job.Source.LOCAL, external_id: str = "") -> Job:
    return job_save(job=Job(source=source, external_id=external_id), spec=spec)


@transaction.atomic
def job_save(*, job: Job, spec: JobSpec) -> Job:
    """Apply a definition to a new or existing job and schedule it.

    A paused job stays paused; a removed job is scheduled again.
    """
    job_spec_apply(job, spec)
    job.removed_at = None
    if job.pk is None:
        job.save()  # the PeriodicTask's arguments carry the job's id
    _schedule_job(job, spec)
    job.save()
    return job


class RunNotQueued(Exception):
    """The broker did not take a run's message (down, unreachable): the run is recorded failed, saying
    so (``run.error``), and nothing runs. Callers answer 503 (API) or show the error (admin)."""

    def __init__(self, run: JobRun) -> None:
        super().__init__(f"run {run.pk} {run.error}")
        self.run = run


class JobStateError(ValueError):
    """A pause, resume or run that cannot be done as asked; the message says why, for the operator."""


def job_pause(*, job: Job, note: str, by: AbstractBaseUser | None = None) -> None:
    """Pause the job as an operator (``by``) or alloysync itself (``by`` None: auto-pause) would.

    Only a resume ends a pause; syncs never do. ``note`` says why and is required: whoever finds the
    job paused must be able to tell why. Raises JobStateError for a removed job or an empty note.
    """
    if job.periodic_task is None:
        raise JobStateError(f"job {job} is removed and has no schedule to pause")
    if not note.strip():
        raise JobStateError("a pause needs a note saying why (whoever finds the job paused will read it)")
    with transaction.atomic():
        # By id: any user model will do (the admin passes request.user as AbstractBaseUser).
        job.pause_note, job.paused_by_id, job.paused_at = note.strip(), by.pk if by else None, timezone.now()
        job.save(update_fields=["pause_note", "paused_by", "paused_at", "updated_at"])
        job.periodic_task.enabled = False
        # date_changed too (auto_now only saves when listed): beat picks up changes by it.
        job.periodic_task.save(update_fields=["enabled", "date_changed"])
    job_state_changed_send([job.pk])


def job_resume(*, job: Job) -> None:
    """Schedule a paused job again. Raises JobStateError if it is removed or not paused."""
    if job.periodic_task is None:
        raise JobStateError(f"job {job} is removed and has no schedule to resume")
    if job.periodic_task.enabled:
        raise JobStateError(f"job {job} is not paused")
    with transaction.atomic():
        job.pause_note, job.paused_by, job.paused_at = "", None, None
        job.save(update_fields=["pause_note", "paused_by", "paused_at", "updated_at"])
        job.periodic_task.enabled = True
        job.periodic_task.save(update_fields=["enabled", "date_changed"])
    job_state_changed_send([job.pk])


@transaction.atomic
def job_remove(*, job: Job) -> None:
    """Stop scheduling the job; the Job row and its run history stay."""
    task = job.periodic_task
    job.periodic_task = None
    job.removed_at = timezone.now()
    job.save(update_fields=["periodic_task", "removed_at", "updated_at"])
    if task is not None:
        task.delete()


def job_run_now(
    *,
    job: Job,
    trigger: str = JobRun.Trigger.MANUAL,
    requested_by: AbstractBaseUser | None = None,
    step_kwargs: Sequence[object] | None = None,
) -> JobRun:
    """Queue a run for a worker; the message is sent only once the queued row is committed.

    ``step_kwargs``: one mapping per step, in order, replacing each step's kwargs for this run only;
    checked against each function's signature exactly as a job's steps are, before anything is
    queued (JobSpecError, one message per bad step). A broker that does not take the message ends the
    run failed, saying so, and raises RunNotQueued (at once when no outer transaction holds the send).
    The run's step runs are made here, so the run
    shows the arguments it uses from the moment it is queued. The message carries Celery's hard time
    limit for the job's own limit, so a job allowed longer than JOB_TIME_LIMIT is not killed early.
    """
    steps = job.steps if step_kwargs is None else steps_with_kwargs(job.steps, step_kwargs)
    hard_limit = celery_hard_time_limit(run_time_limit(job.time_limit))
    not_sent: list[JobRun] = []
    with transaction.atomic():
        run = JobRun.objects.create(
            job=job, trigger=trigger, status=JobRun.Status.QUEUED, requested_by=cast(Any, requested_by)
        )
        StepRun.objects.bulk_create(
            StepRun(run=run, position=position, function=str(step["function"]), kwargs=step.get("kwargs") or {})
            for position, step in enumerate(steps, start=1)
        )
        transaction.on_commit(lambda: _run_send(job, run, hard_limit, not_sent))
    if not_sent:  # sent at once (no outer transaction) and refused: the caller must say so
        raise RunNotQueued(run)
    return run


def _run_send(job: Job, run: JobRun, hard_limit: int, not_sent: list[JobRun]) -> None:
    """Send ``run`` to a worker; if the broker does not take it, record the run failed, saying so.

    Never raises: it runs after a commit, where an exception would land in whatever committed (a sync
    queuing Alloy's run-now requests). Without this a refused send left the run "queued" for ever:
    nothing else ends a run that never reached a worker.
    """
    try:
        current_app.send_task(RUN_JOB_TASK, args=[job.pk], kwargs={"run_id": run.pk}, time_limit=hard_limit)
    except (KombuOperationalError, OSError) as exc:
        # The kind of failure, not its text: that names the broker's host (as alerts' sends do).
        error = f"not queued: the broker did not take the message ({type(exc).__name__}); nothing ran"
        now = timezone.now()
        with transaction.atomic():
            if JobRun.objects.filter(pk=run.pk, status=JobRun.Status.QUEUED).update(
                status=JobRun.Status.FAILED, finished_at=now, error=error
            ):
                counters_add(
                    run_end_counts(
                        source=job.source, trigger=run.trigger, outcome="failed", started_at=None, finished_at=now
                    )
                )
        run.status, run.finished_at, run.error = JobRun.Status.FAILED, now, error
        logger.error("run %s of job %s %s", run.pk, job.pk, error)
        not_sent.append(run)


def run_arguments_initial(job: Job) -> list[str]:
    """Each step's current kwargs as indented JSON, in step order: what "run now with arguments" shows."""
    return step_kwargs_texts(job.steps)


def run_arguments_parse(job: Job, texts: Sequence[str]) -> list[JSONObject]:
    """The kwargs typed for each step (JSON text, one per step, in order; blank is ``{}``), checked as
    ``job_run_now`` checks them; pass the result as its ``step_kwargs``.

    Raises JobSpecError whose ``errors`` hold one message per bad step (``step 2 (examples.echo):
    arguments are not valid JSON: ...``), or one if the number of texts is not the number of steps.
    """
    return step_kwargs_parse(job.steps, texts)
