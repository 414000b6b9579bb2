"""The operators' surface: jobs (view, pause, resume, run now), run history with steps.

Every action that changes or runs something names the permission it needs (``@admin.action(permissions=...)``):
Django then neither offers it to nor runs it for a user without that permission, however the request
is made. ``tests/test_admin_permissions.py`` walks every action and custom URL of every admin to hold this.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from scheduler import periodic_task_admin, services
from scheduler.cron import CronError, describe_cron, next_fire
from scheduler.jobspec import JobSpec, JobSpecError, job_spec_build, steps_as_text
from scheduler.models import RUN_JOB_PERMISSION, Job, JobRun, StepRun

# What get_fields returns, as django-stubs types it: field names, or groups of names shown on one line.
FieldGroups = list[str | list[str] | tuple[str, ...]]


class JobForm(forms.ModelForm[Job]):
    steps_text = forms.CharField(
        label="Steps",
        widget=forms.Textarea(attrs={"rows": 6, "cols": 90, "style": "font-family: monospace"}),
        help_text="One registered function a line, optionally followed by JSON keyword arguments, e.g. "
        '<code>examples.echo {"message": "hello"}</code>. Blank lines and lines starting with # are ignored.',
    )

    class Meta:
        model = Job
        fields = ["name", "cron", "timezone", "pause_note"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["steps_text"].initial = steps_as_text(self.instance.steps)
        self.spec: JobSpec | None = None  # built by clean() once the fields are valid

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean() returns, without the None its stub allows
        if self.errors:
            return cleaned
        try:
            self.spec = job_spec_build(
                name=cleaned["name"],
                cron=cleaned["cron"],
                timezone=cleaned["timezone"],
                steps=cleaned["steps_text"],
            )
        except JobSpecError as exc:
            raise forms.ValidationError(exc.errors) from None
        return cleaned


class PauseForm(forms.Form):
    note = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), help_text="Why; shown on the job."
    )


@admin.register(Job)
class JobAdmin(admin.ModelAdmin[Job]):
    form = JobForm
    list_display = [
        "name",
        "source",
        "cron",
        "cron_description",
        "timezone",
        "next_run",
        "paused",
        "last_run",
        "external_id",
        "sync_error_short",
    ]
    list_filter = ["source", "periodic_task__enabled", ("removed_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "external_id"]
    actions = ["pause_jobs", "resume_jobs", "run_now"]
    readonly_fields = [
        "source",
        "external_id",
        "cron_description",
        "next_run",
        "paused",
        "last_run",
        "runs_link",
        "sync_error",
        "removed_at",
        "created_at",
        "updated_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Job]:
        latest = JobRun.objects.filter(job=OuterRef("pk")).order_by("-created_at", "-id")
        return (
            super()
            .get_queryset(request)
            .select_related("periodic_task")
            .annotate(
                last_run_id=Subquery(latest.values("pk")[:1]),
                last_run_status=Subquery(latest.values("status")[:1]),
                last_run_at=Subquery(latest.values("created_at")[:1]),
            )
        )

    def get_fields(self, request: HttpRequest, obj: Job | None = None) -> FieldGroups:
        editable: FieldGroups = ["name", "cron", "timezone", "steps_text", "pause_note"]
        if obj is None:
            return editable[:4]
        if obj.source == Job.Source.ALLOY:
            return ["name", "cron", "timezone", "steps_display", "pause_note", *self.readonly_fields]
        return [*editable, *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Job | None = None) -> list[str]:
        if obj is not None and obj.source == Job.Source.ALLOY:
            # Alloy owns the definition; operators may only pause, note and run.
            return ["name", "cron", "timezone", "steps_display", *self.readonly_fields]
        return self.readonly_fields

    def get_form(
        self, request: HttpRequest, obj: Job | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm[Job]]:
        if obj is not None and obj.source == Job.Source.ALLOY:
            kwargs["form"] = forms.ModelForm
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request: HttpRequest, obj: Job, form: forms.ModelForm[Job], change: bool) -> None:
        if obj.source == Job.Source.ALLOY:
            obj.save(update_fields=["pause_note", "updated_at"])
            return
        # get_form gives a local job a JobForm, and only a valid one is saved: its clean() built the spec.
        if not isinstance(form, JobForm) or form.spec is None:
            raise TypeError(f"a local job is saved from a valid JobForm, not {type(form).__name__}")
        services.job_save(job=obj, spec=form.spec)

    @admin.display(description="Schedule in words")
    def cron_description(self, job: Job) -> str:
        return describe_cron(job.cron)

    @admin.display(description="Next run")
    def next_run(self, job: Job) -> str:
        if job.periodic_task is None:
            return "removed"
        if not job.periodic_task.enabled:
            return "paused"
        try:
            when = next_fire(job.cron, job.timezone, timezone.now())
        except CronError:
            return "never"  # validated when saved, so unexpected; a display must never break the page
        # Beat's due time (UTC), shown in the zone the job's cron is read in.
        return f"{when.astimezone(ZoneInfo(job.timezone)):%Y-%m-%d %H:%M %Z}"

    @admin.display(description="Paused", boolean=True)
    def paused(self, job: Job) -> bool | None:
        return None if job.periodic_task is None else not job.periodic_task.enabled

    @admin.display(description="Last run")
    def last_run(self, job: Job) -> str:
        # Annotations from get_queryset, which the model's type does not have: read by name.
        run_id: int | None = getattr(job, "last_run_id", None)
        if run_id is None:
            return "never"
        status: str | None = getattr(job, "last_run_status", None)
        created_at: datetime | None = getattr(job, "last_run_at", None)
        url = reverse("admin:scheduler_jobrun_change", args=[run_id])
        when = timezone.localtime(created_at).strftime("%Y-%m-%d %H:%M")
        return format_html('<a href="{}">{}</a> {}', url, status, when)

    @admin.display(description="Runs")
    def runs_link(self, job: Job) -> str:
        url = reverse("admin:scheduler_jobrun_changelist") + f"?job__id__exact={job.pk}"
        return format_html('<a href="{}">run history</a>', url)

    @admin.display(description="Steps")
    def steps_display(self, job: Job) -> str:
        return format_html("<pre>{}</pre>", steps_as_text(job.steps))

    @admin.display(description="Sync error")
    def sync_error_short(self, job: Job) -> str:
        return job.sync_error[:120]

    def has_run_permission(self, request: HttpRequest) -> bool:
        """Whether the user may run jobs now: the action's ``permissions=["run"]`` asks this."""
        return request.user.has_perm(RUN_JOB_PERMISSION)

    @admin.action(description="Pause selected jobs (with a note)", permissions=["change"])
    def pause_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> HttpResponse | None:
        scheduled = queryset.exclude(periodic_task=None)
        if "apply" in request.POST:
            form = PauseForm(request.POST)
            if form.is_valid():
                for job in scheduled:
                    services.job_pause(job=job, note=form.cleaned_data["note"], by=request.user)
                self.message_user(request, f"Paused {scheduled.count()} job(s).", messages.SUCCESS)
                return None
        else:
            form = PauseForm()
        context = {
            **self.admin_site.each_context(request),
            "title": "Pause jobs",
            "jobs": scheduled,
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/scheduler/job/pause_confirmation.html", context)

    @admin.action(description="Resume selected jobs", permissions=["change"])
    def resume_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        scheduled = [job for job in queryset.exclude(periodic_task=None) if job.is_paused]
        for job in scheduled:
            services.job_resume(job=job)
        self.message_user(request, f"Resumed {len(scheduled)} job(s).", messages.SUCCESS)

    @admin.action(description="Run selected jobs now", permissions=["run"])
    def run_now(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        runs = [services.job_run_now(job=job, requested_by=request.user) for job in queryset]
        self.message_user(
            request, f"Queued {len(runs)} run(s): {', '.join(str(run.pk) for run in runs)}.", messages.SUCCESS
        )


# Run history is never edited: every field shown is read-only. Tuples of names, which both ``fields``
# and ``readonly_fields`` accept as they are typed.
STEP_RUN_FIELDS = ("position", "function", "kwargs", "status", "started_at", "finished_at", "result", "error_display")
JOB_RUN_FIELDS = (
    *("job", "trigger", "status", "created_at", "started_at", "finished_at"),
    *("heartbeat_at", "worker", "error"),
)


class StepRunInline(admin.TabularInline[StepRun, JobRun]):
    model = StepRun
    extra = 0
    can_delete = False
    fields = STEP_RUN_FIELDS
    readonly_fields = STEP_RUN_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Error")
    def error_display(self, step: StepRun) -> str:
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", step.error) if step.error else ""


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin[JobRun]):
    list_display = ["id", "job", "trigger", "status", "created_at", "started_at", "finished_at", "duration", "worker"]
    list_filter = ["status", "trigger", ("job", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["job__name", "job__external_id"]
    list_select_related = ["job"]
    date_hierarchy = "created_at"
    inlines = [StepRunInline]
    fields = JOB_RUN_FIELDS
    readonly_fields = JOB_RUN_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


periodic_task_admin.register(admin.site)
