"""django-celery-beat's periodic task admin, with a permission on every action.

Its own admin (django-celery-beat 2.9.0) names no permission on its actions, and Django filters an
action by permission only when the action names one: any staff user allowed only to *view* periodic
tasks could enable, disable, toggle and run them from the list, and so pause, resume or set off a
job. The same admin is registered again here, each action naming what it needs: ``change`` to enable,
disable or toggle (the enabled box is a job's pause state), and the project's "run jobs now"
permission to send a task at once.

A job's own periodic task is handled as the job's admin handles it: *run* queues a manual run through
``job_run_now`` (recorded as run by hand, not as a scheduled run with no due time), *enable* (and
*toggle* of a paused one) resumes the job, clearing its pause note, and *disable* (or *toggle* of a
running one) does not pause it but says to pause it from its own page: a pause needs a note and an
author, which this list cannot ask for.

A job's own periodic task is read-only here, every field of it, and cannot be deleted from here. Its
crontab, args (the job's id), task, queue and enabled box are the job's: a crontab changed here made
beat run the job on that schedule while the job's page still showed its own cron, and a task deleted
here would unschedule the job silently. Its page is a view; a POST to it is refused (403), and a
delete (its page or the list's bulk action) is refused as Django refuses any delete it has no
permission for. Schedules change on the job's page. Tasks that belong to no job stay editable.

Its schedule pages (crontab, interval, clocked, solar) are read-only for everyone, superusers included.
A CrontabSchedule row is shared by every job with the same cron and zone: editing it there would
silently move all of them while each job's own cron still said the old time, and deleting it would
delete their periodic tasks with it (a cascade). A job's schedule changes only through the job.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.safestring import SafeString
from django_celery_beat import admin as celery_beat_admin
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule

from scheduler.admin_helpers import ADMIN_CSS, acting_user, name_cell
from scheduler.models import RUN_JOB_PERMISSION, Job
from scheduler.services import RunNotQueued, job_resume, job_run_now

# django-celery-beat's admin, whose action descriptions (translated) are kept.
_Base = celery_beat_admin.PeriodicTaskAdmin


class PeriodicTaskAdmin(celery_beat_admin.PeriodicTaskAdmin):  # type: ignore[misc]  # an untyped library class
    """django-celery-beat's admin, each action requiring a permission and a job's task read-only."""

    # Its name holds the job's name: shown cleaned and isolated, wrapping (see scheduler.admin_helpers).
    list_display = ["name_shown", *(column for column in _Base.list_display if column != "name")]
    list_display_links = ["name_shown"]

    class Media:
        css = {"all": [ADMIN_CSS]}

    @admin.display(description=PeriodicTask._meta.get_field("name").verbose_name, ordering="name")
    def name_shown(self, task: PeriodicTask) -> SafeString:
        return name_cell(task.name)

    def has_run_permission(self, request: HttpRequest) -> bool:
        """Whether the user may send tasks now: the ``run`` that ``run_tasks`` names."""
        return request.user.has_perm(RUN_JOB_PERMISSION)

    @admin.action(description=_Base.enable_tasks.short_description, permissions=["change"])
    def enable_tasks(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for job in _jobs_of(queryset):
            if job.is_paused:
                job_resume(job=job)
        super().enable_tasks(request, queryset)

    @admin.action(description=_Base.disable_tasks.short_description, permissions=["change"])
    def disable_tasks(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        jobs = _jobs_of(queryset)
        self._refuse_pausing(request, [job for job in jobs if not job.is_paused])
        others = _not_jobs(queryset, jobs)
        if others.exists():
            super().disable_tasks(request, others)

    @admin.action(description=_Base.toggle_tasks.short_description, permissions=["change"])
    def toggle_tasks(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        jobs = _jobs_of(queryset)
        paused = [job for job in jobs if job.is_paused]
        for job in paused:
            job_resume(job=job)
        self._refuse_pausing(request, [job for job in jobs if job not in paused])
        others = _not_jobs(queryset, jobs)
        if others.exists():
            super().toggle_tasks(request, others)

    def _refuse_pausing(self, request: HttpRequest, jobs: list[Job]) -> None:
        # A pause needs a note and an author, which this list cannot ask for: the job's page can.
        if jobs:
            names = ", ".join(job.name for job in jobs)
            self.message_user(
                request,
                f"Not paused: {names}. Pause a job from its own page (Jobs), with a note saying why.",
                messages.WARNING,
            )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A job's task is the job's schedule: changed through the job only (see the module's doc).
        # Without an object (the list and its actions) the user's own permission decides.
        if obj is not None and _belongs_to_a_job(obj):
            return False
        return bool(super().has_change_permission(request, obj))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Django asks this of each object a delete would remove, the bulk action's too: one job's
        # task in the selection refuses the whole delete, saying which.
        if obj is not None and _belongs_to_a_job(obj):
            return False
        return bool(super().has_delete_permission(request, obj))

    @admin.action(description=_Base.run_tasks.short_description, permissions=["run"])
    def run_tasks(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        jobs = _jobs_of(queryset)
        queued = 0
        for job in jobs:
            try:
                job_run_now(job=job, requested_by=acting_user(request))
                queued += 1
            except RunNotQueued as exc:
                self.message_user(request, f"{job}: run {exc.run.pk} failed: {exc.run.error}", messages.ERROR)
        if queued:
            self.message_user(request, f"Queued a manual run of {queued} job(s).", messages.SUCCESS)
        others = _not_jobs(queryset, jobs)
        if others.exists():
            super().run_tasks(request, others)


def _belongs_to_a_job(task: PeriodicTask) -> bool:
    return Job.objects.filter(periodic_task=task).exists()


def _jobs_of(queryset: QuerySet[Any]) -> list[Job]:
    """The jobs whose periodic tasks are selected."""
    return list(Job.objects.select_related("periodic_task").filter(periodic_task__in=queryset))


class ReadOnlyScheduleMixin:
    """A schedule admin that shows rows and the tasks using them, and changes nothing (see the module's doc)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# django-celery-beat's admin for each schedule model, made read-only.
SCHEDULE_ADMINS: dict[type[Any], type[admin.ModelAdmin[Any]]] = {
    model: type(f"ReadOnly{base.__name__}", (ReadOnlyScheduleMixin, base), {})
    for model, base in (
        (CrontabSchedule, celery_beat_admin.CrontabScheduleAdmin),
        (IntervalSchedule, celery_beat_admin.IntervalScheduleAdmin),
        (ClockedSchedule, celery_beat_admin.ClockedScheduleAdmin),
        (SolarSchedule, celery_beat_admin.SolarScheduleAdmin),
    )
}


def _not_jobs(queryset: QuerySet[Any], jobs: list[Job]) -> QuerySet[Any]:
    """The selected periodic tasks that belong to no job."""
    return queryset.exclude(pk__in=[job.periodic_task_id for job in jobs])


def register(site: admin.AdminSite) -> None:
    """Put these admins in place of django-celery-beat's own on ``site``."""
    for model, model_admin in [(PeriodicTask, PeriodicTaskAdmin), *SCHEDULE_ADMINS.items()]:
        if site.is_registered(model):
            site.unregister(model)
        site.register(model, model_admin)
