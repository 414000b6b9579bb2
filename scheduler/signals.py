"""Keep beat's view of the schedule complete when rows change behind the services' back.

Beat follows PeriodicTask.date_changed. Editing a CrontabSchedule (or interval, clocked, solar) row in
django-celery-beat's admin changes every task that uses it without touching those tasks' rows, so
the tasks are stamped here.
"""

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule

from scheduler.models import Job

_SCHEDULE_FIELDS = {
    CrontabSchedule: "crontab",
    IntervalSchedule: "interval",
    ClockedSchedule: "clocked",
    SolarSchedule: "solar",
}


def stamp_tasks_of_schedule(sender: type, instance: Any, created: bool, **kwargs: Any) -> None:
    if created:
        return  # a new schedule row has no tasks yet
    PeriodicTask.objects.filter(**{_SCHEDULE_FIELDS[sender]: instance}).update(date_changed=timezone.now())


def delete_schedule_of_deleted_job(sender: type, instance: Job, **kwargs: Any) -> None:
    """A job deleted in the admin takes its PeriodicTask with it; otherwise beat would go on sending it."""
    if instance.periodic_task_id:
        PeriodicTask.objects.filter(pk=instance.periodic_task_id).delete()


def connect() -> None:
    for model in _SCHEDULE_FIELDS:
        post_save.connect(stamp_tasks_of_schedule, sender=model, dispatch_uid=f"scheduler-stamp-{model.__name__}")
    post_delete.connect(delete_schedule_of_deleted_job, sender=Job, dispatch_uid="scheduler-delete-job-schedule")
