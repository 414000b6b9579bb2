"""A source's decisions for many jobs, written in bulk: what the Alloy sync applies after a read.

``JobChanges`` says what to create, update, mark invalid and remove; ``jobs_apply_changes`` writes it
in one transaction with COPY and one-statement updates (``scheduler.bulksql``), and tells beat once.
The rules are those of ``scheduler.services``, which writes one job at a time: shared crontab rows,
an operator's pause never touched, a removed job's history kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks

from scheduler.bulksql import db_datetime, db_json, insert_rows, update_column
from scheduler.cron import CrontabFields
from scheduler.jobspec import JobSpec
from scheduler.models import RUN_JOB_TASK, Job, ScheduleState
from scheduler.services import job_spec_apply, periodic_task_description, periodic_task_name


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

    def __len__(self) -> int:
        return len(self.create) + len(self.update) + len(self.invalid) + len(self.remove)

    def halves(self) -> tuple[JobChanges, JobChanges]:
        """The changes cut in two, in order: creates, updates, invalid marks, removals."""
        entries: list[tuple[ChangeKind, Any]] = [
            *(("create", entry) for entry in self.create),
            *(("update", entry) for entry in self.update),
            *(("invalid", entry) for entry in self.invalid),
            *(("remove", entry) for entry in self.remove),
        ]
        middle = len(entries) // 2
        return self._of(entries[:middle]), self._of(entries[middle:])

    def _of(self, entries: list[tuple[ChangeKind, Any]]) -> JobChanges:
        part = JobChanges(source=self.source)
        for kind, entry in entries:
            getattr(part, kind).append(entry)
        return part


ChangeKind = Literal["create", "update", "invalid", "remove"]


_BATCH = 2000
JOB_INSERT_COLUMNS = (
    "name", "source", "external_id", "cron", "timezone", "steps", "time_limit", "sync_error", "pause_note",
    "failure_streak", "created_at", "updated_at",
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
def jobs_apply_changes(changes: JobChanges) -> list[int]:
    """Write a sync's decisions in bulk, in one transaction, and tell beat once.

    Bulk writes bypass the PeriodicTask signals beat relies on, hence the single
    ``PeriodicTasks.update_changed()`` at the end. ``enabled`` is never written: pauses stay.
    Returns the ids of jobs to update that were deleted since the sync read them (an operator
    deleted one in the admin meanwhile): they are left alone, and the rest written.
    """
    if not changes:
        return []
    now = timezone.now()
    vanished: list[int] = []
    scheduled = [*_create_jobs(changes, now), *_update_jobs(changes, now, vanished)]
    _schedule_in_bulk(scheduled, changes.source, now)
    Job.objects.bulk_update(
        [Job(pk=job_id, sync_error=message, updated_at=now) for job_id, message in changes.invalid],
        ["sync_error", "updated_at"],
        batch_size=_BATCH,
    )
    _unschedule_in_bulk(changes.remove, now)
    PeriodicTasks.update_changed()
    return vanished


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
            "time_limit": spec.time_limit,
            "sync_error": "",
            "pause_note": "",
            "failure_streak": 0,
            "created_at": stamp,
            "updated_at": stamp,
        }
        for external_id, spec in changes.create
    )
    insert_rows(Job, JOB_INSERT_COLUMNS, rows)
    ids = _ids_by(Job.objects.filter(source=changes.source), "external_id", [eid for eid, _ in changes.create])
    return [_Scheduled(ids[external_id], spec.name, external_id, None, spec) for external_id, spec in changes.create]


def _update_jobs(changes: JobChanges, now: datetime, vanished: list[int]) -> list[_Scheduled]:
    if not changes.update:
        return []
    # Locked, so that a job cannot vanish between this read and the writes below.
    current = Job.objects.select_for_update().filter(pk__in=[job_id for job_id, _ in changes.update])
    known = {
        pk: (external_id, task_id)
        for pk, external_id, task_id in current.values_list("pk", "external_id", "periodic_task_id")
    }
    vanished += [job_id for job_id, _ in changes.update if job_id not in known]
    updates = [(job_id, spec) for job_id, spec in changes.update if job_id in known]
    jobs = [_job_from_spec(Job(pk=job_id, removed_at=None, updated_at=now), spec) for job_id, spec in updates]
    fields = ["name", "cron", "timezone", "steps", "time_limit", "sync_error", "removed_at", "updated_at"]
    Job.objects.bulk_update(jobs, fields, batch_size=_BATCH)
    return [_Scheduled(job_id, spec.name, *known[job_id], spec) for job_id, spec in updates]


def _ids_by(queryset: QuerySet[Any], field_name: str, values: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for start in range(0, len(values), _BATCH):
        chunk = values[start : start + _BATCH]
        ids.update(queryset.filter(**{f"{field_name}__in": chunk}).values_list(field_name, "pk"))
    return ids


def _job_from_spec(job: Job, spec: JobSpec) -> Job:
    job_spec_apply(job, spec)
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
            "description": periodic_task_description(entry.job_id, source, entry.external_id),
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
