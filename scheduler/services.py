"""Write operations on jobs: create, update, pause, resume, remove, run now.

Every path that changes a job's schedule goes through here (the admin, the Alloy sync, tests), so the
rules hold everywhere: CrontabSchedule rows are shared, an existing schedule's ``enabled`` flag (the
operators' pause) is never touched by a definition change, and a removed job keeps its history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from celery import current_app
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks

from scheduler.bulksql import db_datetime, db_json, insert_rows, update_column
from scheduler.cron import CrontabFields
from scheduler.jobspec import JobSpec
from scheduler.models import RUN_JOB_TASK, Job, JobRun, ScheduleState


def periodic_task_name(job_id: int, name: str) -> str:
    # PeriodicTask.name is unique; job names need not be, the id makes it so.
    return f"job {job_id}: {name}"[:200]


def _task_description(job_id: int, source: str, external_id: str) -> str:
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


def _apply_spec(job: Job, spec: JobSpec) -> None:
    job.name = spec.name
    job.cron = spec.cron
    job.timezone = spec.timezone
    job.steps = spec.steps_json()
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
            description=_task_description(job.pk, job.source, job.external_id),
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
    _apply_spec(job, spec)
    job.removed_at = None
    if job.pk is None:
        job.save()  # the PeriodicTask's arguments carry the job's id
    _schedule_job(job, spec)
    job.save()
    return job


def job_pause(*, job: Job, note: str = "") -> None:
    if job.periodic_task is None:
        raise ValueError(f"job {job} is removed and has no schedule to pause")
    with transaction.atomic():
        job.pause_note = note
        job.save(update_fields=["pause_note", "updated_at"])
        job.periodic_task.enabled = False
        # date_changed too (auto_now only saves when listed): beat picks up changes by it.
        job.periodic_task.save(update_fields=["enabled", "date_changed"])


def job_resume(*, job: Job) -> None:
    if job.periodic_task is None:
        raise ValueError(f"job {job} is removed and has no schedule to resume")
    with transaction.atomic():
        job.pause_note = ""
        job.save(update_fields=["pause_note", "updated_at"])
        job.periodic_task.enabled = True
        job.periodic_task.save(update_fields=["enabled", "date_changed"])


@transaction.atomic
def job_remove(*, job: Job) -> None:
    """Stop scheduling the job; the Job row and its run history stay."""
    task = job.periodic_task
    job.periodic_task = None
    job.removed_at = timezone.now()
    job.save(update_fields=["periodic_task", "removed_at", "updated_at"])
    if task is not None:
        task.delete()


def job_run_now(*, job: Job, trigger: str = JobRun.Trigger.MANUAL) -> JobRun:
    """Queue a run for a worker; the message is sent only once the queued row is committed."""
    with transaction.atomic():
        run = JobRun.objects.create(job=job, trigger=trigger, status=JobRun.Status.QUEUED)
        transaction.on_commit(lambda: current_app.send_task(RUN_JOB_TASK, args=[job.pk], kwargs={"run_id": run.pk}))
    return run


@dataclass
class JobChanges:
    """What a sync decided for one source's jobs, to be written in one go by ``jobs_apply_changes``."""

    source: str
    create: list[tuple[str, JobSpec]] = field(default_factory=list)  # (external id, spec)
    update: list[tuple[int, JobSpec]] = field(default_factory=list)  # (job id, spec); removed jobs return
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (job id, error); definition kept
    remove: list[int] = field(default_factory=list)  # job ids

    def __bool__(self) -> bool:
        return bool(self.create or self.update or self.invalid or self.remove)


_BATCH = 2000
JOB_INSERT_COLUMNS = (
    "name", "source", "external_id", "cron", "timezone", "steps", "sync_error", "pause_note", "created_at", "updated_at"
)  # fmt: skip
PERIODIC_TASK_INSERT_COLUMNS = (
    "name", "task", "crontab_id", "args", "kwargs", "headers", "description",
    "one_off", "enabled", "total_run_count", "date_changed",
)  # fmt: skip


@dataclass(frozen=True)
class _Scheduled:
    """A job that needs its PeriodicTask pointed at (or created for) a spec's crontab."""

    job_id: int
    name: str
    external_id: str
    periodic_task_id: int | None
    spec: JobSpec


@transaction.atomic
def jobs_apply_changes(changes: JobChanges) -> None:
    """Write a sync's decisions in bulk, in one transaction, and tell beat once.

    Bulk writes bypass the PeriodicTask signals beat relies on, hence the single
    ``PeriodicTasks.update_changed()`` at the end. ``enabled`` is never written: pauses stay.
    """
    if not changes:
        return
    now = timezone.now()
    scheduled = [*_create_jobs(changes, now), *_update_jobs(changes, now)]
    _schedule_in_bulk(scheduled, changes.source, now)
    Job.objects.bulk_update(
        [Job(pk=job_id, sync_error=message, updated_at=now) for job_id, message in changes.invalid],
        ["sync_error", "updated_at"],
        batch_size=_BATCH,
    )
    _unschedule_in_bulk(changes.remove, now)
    PeriodicTasks.update_changed()


def _create_jobs(changes: JobChanges, now: datetime) -> list[_Scheduled]:
    if not changes.create:
        return []
    stamp = db_datetime(now)
    rows = (
        {
            "name": spec.name,
            "source": changes.source,
            "external_id": external_id,
            "cron": spec.cron,
            "timezone": spec.timezone,
            "steps": db_json(spec.steps_json()),
            "sync_error": "",
            "pause_note": "",
            "created_at": stamp,
            "updated_at": stamp,
        }
        for external_id, spec in changes.create
    )
    insert_rows(Job, JOB_INSERT_COLUMNS, rows)
    ids = _ids_by(Job.objects.filter(source=changes.source), "external_id", [eid for eid, _ in changes.create])
    return [_Scheduled(ids[external_id], spec.name, external_id, None, spec) for external_id, spec in changes.create]


def _update_jobs(changes: JobChanges, now: datetime) -> list[_Scheduled]:
    if not changes.update:
        return []
    current = Job.objects.filter(pk__in=[job_id for job_id, _ in changes.update])
    known = {
        pk: (external_id, task_id)
        for pk, external_id, task_id in current.values_list("pk", "external_id", "periodic_task_id")
    }
    jobs = [_job_from_spec(Job(pk=job_id, removed_at=None, updated_at=now), spec) for job_id, spec in changes.update]
    fields = ["name", "cron", "timezone", "steps", "sync_error", "removed_at", "updated_at"]
    Job.objects.bulk_update(jobs, fields, batch_size=_BATCH)
    return [_Scheduled(job_id, spec.name, *known[job_id], spec) for job_id, spec in changes.update]


def _ids_by(queryset: QuerySet[Any], field_name: str, values: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for start in range(0, len(values), _BATCH):
        chunk = values[start : start + _BATCH]
        ids.update(queryset.filter(**{f"{field_name}__in": chunk}).values_list(field_name, "pk"))
    return ids


def _job_from_spec(job: Job, spec: JobSpec) -> Job:
    _apply_spec(job, spec)
    return job


def _crontab_ids(specs: list[JobSpec]) -> dict[tuple[str, ...], int]:
    """Ids of the shared CrontabSchedule rows these specs need, creating the missing ones."""
    wanted = {_crontab_key(spec.crontab, spec.timezone) for spec in specs}
    if not wanted:
        return {}
    fields = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week", "timezone")
    ids: dict[tuple[str, ...], int] = {}
    existing = CrontabSchedule.objects.filter(timezone__in={key[-1] for key in wanted}).order_by("-pk")
    for pk, *values in existing.values_list("pk", *fields):
        ids[(*values[:-1], str(values[-1]))] = pk  # ordered newest first: the oldest duplicate wins
    missing = [dict(zip(fields, key, strict=True)) for key in wanted - ids.keys()]
    for row in CrontabSchedule.objects.bulk_create([CrontabSchedule(**values) for values in missing]):
        ids[_crontab_key(row, str(row.timezone))] = row.pk
    return ids


def _crontab_key(fields: CrontabFields | CrontabSchedule, timezone_name: str) -> tuple[str, ...]:
    return (fields.minute, fields.hour, fields.day_of_month, fields.month_of_year, fields.day_of_week, timezone_name)


def _schedule_in_bulk(scheduled: list[_Scheduled], source: str, now: datetime) -> None:
    """Point existing PeriodicTasks at their new crontab; create the missing ones."""
    crontab_ids = _crontab_ids([entry.spec for entry in scheduled])

    def crontab_of(entry: _Scheduled) -> int:
        return crontab_ids[_crontab_key(entry.spec.crontab, entry.spec.timezone)]

    existing = [
        PeriodicTask(pk=e.periodic_task_id, name=_task_name(e), crontab_id=crontab_of(e), date_changed=now)
        for e in scheduled
        if e.periodic_task_id
    ]
    PeriodicTask.objects.bulk_update(existing, ["name", "crontab", "date_changed"], batch_size=_BATCH)
    new = [entry for entry in scheduled if not entry.periodic_task_id]
    if not new:
        return
    stamp = db_datetime(now)
    rows = (
        {
            "name": _task_name(entry),
            "task": RUN_JOB_TASK,
            "crontab_id": crontab_of(entry),
            "args": json.dumps([entry.job_id]),
            "kwargs": "{}",
            "headers": "{}",
            "description": _task_description(entry.job_id, source, entry.external_id),
            "one_off": False,
            "enabled": True,
            "total_run_count": 0,
            "date_changed": stamp,
        }
        for entry in new
    )
    insert_rows(PeriodicTask, PERIODIC_TASK_INSERT_COLUMNS, rows)
    task_ids = _ids_by(PeriodicTask.objects.all(), "name", [_task_name(entry) for entry in new])
    update_column(Job, "periodic_task_id", [(entry.job_id, task_ids[_task_name(entry)]) for entry in new])


def _task_name(entry: _Scheduled) -> str:
    return periodic_task_name(entry.job_id, entry.name)


def _unschedule_in_bulk(job_ids: list[int], now: datetime) -> None:
    if not job_ids:
        return
    jobs = Job.objects.filter(pk__in=job_ids)
    task_ids = [task_id for task_id in jobs.values_list("periodic_task_id", flat=True) if task_id]
    jobs.update(periodic_task=None, removed_at=now, updated_at=now)
    ScheduleState.objects.filter(periodic_task_id__in=task_ids).delete()
    # _raw_delete: one DELETE, without the per-row signals that would tell beat once per task; beat is
    # told once by the caller. Nothing else references these rows once the jobs and states let go.
    PeriodicTask.objects.filter(pk__in=task_ids)._raw_delete(PeriodicTask.objects.db)
