"""The operators' surface: jobs (view, pause, resume, run now, run with arguments), run history with steps.

Every action that changes or runs something names the permission it needs (``@admin.action(permissions=...)``):
Django then neither offers it to nor runs it for a user without that permission, however the request
is made. The job's own pages (pause, resume, run now, run with arguments) check the same permissions in
their views, on GET and POST alike. ``tests/test_admin_permissions.py`` walks every action and custom URL
of every admin to hold this.

Who did what: pause, resume, run now and run with arguments are written to Django's admin log
(``LogEntry``), as edits already are, and the job's page shows the latest entries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from scheduler import api_token_admin, periodic_task_admin, registry, services  # noqa: F401 (api_token_admin registers itself)
from scheduler.admin_helpers import ADMIN_CSS, acting_user, name_cell, site_time, site_time_cell, status_badge
from scheduler.charts import duration_text, job_run_bars
from scheduler.cron import CronError, describe_cron, next_fire
from scheduler.jobspec import (
    JobSpec,
    JobSpecError,
    job_spec_build,
    step_kwargs_parse,
    step_kwargs_texts,
    steps_as_text,
    time_limit_parse,
)
from scheduler.models import MAX_TIME_LIMIT, RUN_JOB_PERMISSION, Job, JobRun, StepRun
from scheduler.plain_text import one_line, without_bidi_controls
from scheduler.types import JSONObject

if TYPE_CHECKING:  # django-stubs' name for what get_fieldsets returns; it exists only in the stubs
    from django.contrib.admin.options import _FieldsetSpec

# What get_fields returns, as django-stubs types it: field names, or groups of names shown on one line.
FieldGroups = list[str | list[str] | tuple[str, ...]]

# At 1280 px the navigation sidebar takes a quarter of the width that the lists' columns need; the
# index page and the breadcrumbs reach every model as well.
admin.site.enable_nav_sidebar = False

# Cron previews: how many next times the job's page lists.
PREVIEW_COUNT = 5
# Entries of the admin log shown on a job's page; the full list is one link away (History).
HISTORY_COUNT = 10
# Who paused a job when nobody did: alloysync's auto-pause after repeated failures.
AUTO_PAUSE_AUTHOR = "alloysync (auto-pause)"


def next_fire_times(cron: str, zone_name: str, after: datetime, count: int = PREVIEW_COUNT) -> list[datetime]:
    """The next ``count`` fire times after ``after``, as aware datetimes in ``zone_name``.

    Raises CronError when the expression or zone cannot be used, or nothing fires.
    """
    zone = ZoneInfo(zone_name)
    times: list[datetime] = []
    for _ in range(count):
        after = next_fire(cron, zone_name, after)
        times.append(after.astimezone(zone))
    return times


def _zone_time(when: datetime, zone_name: str) -> SafeString:
    """``2026-12-01 02:30 GMT`` with the IANA zone's name beside it when the abbreviation is not that name."""
    local = f"{when:%Y-%m-%d %H:%M %Z}"
    if when.tzname() == zone_name:
        return format_html('<span style="white-space:nowrap">{}</span>', local)
    return format_html('<span style="white-space:nowrap">{}</span> <small>{}</small>', local, zone_name)


# Where a message from job_spec_build belongs on the form: every message starts with what it is about.
_MESSAGE_FIELDS = (("cron", "cron"), ("time zone", "timezone"), ("time limit", "time_limit"), ("name", "name"))


def _field_of(message: str) -> str:
    return next((field for prefix, field in _MESSAGE_FIELDS if message.startswith(prefix)), "steps_text")


class TimeLimitField(forms.IntegerField):
    """A job's time limit typed in the form: ASCII digits from 1 to MAX_TIME_LIMIT, or empty.

    Every refusal is the service's own message (``time_limit_parse``), so -1 and 0 are refused with the
    same rule; the widget's ``min`` is 1, so a browser's own check says the same. Other digits
    (``٣``, ``²``), which ``int()`` would read, are refused: nobody means them as seconds.
    """

    def __init__(self, **kwargs: Any) -> None:
        # The model field offers min_value=0 (a PositiveIntegerField); a limit of 0 is refused.
        super().__init__(**{**kwargs, "min_value": 1, "max_value": MAX_TIME_LIMIT})

    def to_python(self, value: Any) -> int | None:
        text = str(value).strip() if value is not None else ""
        if not text:
            return None
        try:
            if not re.fullmatch(r"[+-]?[0-9]{1,12}", text):
                raise ValueError(
                    f"time limit must be a whole number of seconds from 1 to {MAX_TIME_LIMIT}, got {text[:20]!r}"
                )
            return time_limit_parse(int(text))
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


class JobForm(forms.ModelForm[Job]):
    steps_text = forms.CharField(
        label="Steps",
        widget=forms.Textarea(attrs={"rows": 6, "cols": 90, "style": "font-family: monospace"}),
        help_text="One registered function a line, optionally followed by JSON keyword arguments, e.g. "
        '<code>examples.echo {"message": "hello"}</code>. Blank lines and lines starting with # are ignored.',
    )

    class Meta:
        model = Job
        fields = ["name", "cron", "timezone", "time_limit"]
        field_classes = {"time_limit": TimeLimitField}
        help_texts = {
            "time_limit": f"Seconds a run may take before it is stopped and failed, 1 to {MAX_TIME_LIMIT:,}; "
            f"empty: JOB_TIME_LIMIT ({settings.JOB_TIME_LIMIT:,} s)."
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["steps_text"].initial = steps_as_text(self.instance.steps)
        self.spec: JobSpec | None = None  # built by clean() once the fields are valid

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean() returns, without the None its stub allows
        # A time limit refused by its field still lets the definition be checked: every message at once.
        if any(field in self.errors for field in ("name", "cron", "timezone", "steps_text")):
            return cleaned
        try:
            self.spec = job_spec_build(
                name=cleaned["name"],
                cron=cleaned["cron"],
                timezone=cleaned["timezone"],
                steps=cleaned["steps_text"],
                time_limit=cleaned.get("time_limit"),
            )
        except JobSpecError as exc:
            # Each message beside the field it is about, as the service words it.
            for message in exc.errors:
                if _field_of(message) not in self.errors:
                    self.add_error(_field_of(message), message)
        return cleaned


class PauseForm(forms.Form):
    note = forms.CharField(
        required=True,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why; shown on the job to whoever finds it paused.",
        error_messages={"required": "A pause needs a note saying why: whoever finds the job paused will read it."},
    )


class RunWithArgumentsForm(forms.Form):
    """One JSON text a step, prefilled with the step's stored keyword arguments; checked as steps are."""

    def __init__(self, *args: Any, job: Job, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.job = job
        self.step_kwargs: list[JSONObject] = []  # filled by clean()
        for index, (step, text) in enumerate(zip(job.steps, step_kwargs_texts(job.steps), strict=True)):
            function = str(step["function"])
            self.fields[f"step_{index + 1}"] = forms.CharField(
                label=f"Step {index + 1}: {function}",
                required=False,
                initial=text,
                widget=forms.Textarea(attrs={"rows": 6, "cols": 80, "style": "font-family: monospace"}),
                help_text=_signature_text(function),
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        texts = [cleaned.get(f"step_{number}") or "" for number in range(1, len(self.job.steps) + 1)]
        try:
            self.step_kwargs = step_kwargs_parse(self.job.steps, texts)
        except JobSpecError as exc:
            for message in exc.errors:
                # "step N (function): ..." beside step N's text; anything else (the total size) above them all.
                number = message.removeprefix("step ").split(" ", 1)[0].rstrip(":")
                field = f"step_{number}" if message.startswith("step ") and f"step_{number}" in self.fields else None
                self.add_error(field, message)
        return cleaned


def _signature_text(function: str) -> str:
    try:
        job_function = registry.get_job_function(function)
    except registry.UnknownJobFunction as exc:
        return str(exc)
    return f"{job_function.name}{job_function.signature}"


class _YesNoFilter(admin.SimpleListFilter):
    """A filter with "Yes" and "No", each a condition on jobs."""

    yes: Q
    no: Q

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(self.yes)
        if self.value() == "no":
            return queryset.filter(self.no)
        return queryset


class PausedFilter(_YesNoFilter):
    title = "paused"
    parameter_name = "paused"
    yes = Q(periodic_task__enabled=False)
    no = Q(periodic_task__enabled=True)


class FailingFilter(_YesNoFilter):
    title = "failing"
    parameter_name = "failing"
    yes = Q(failure_streak__gt=0)
    no = Q(failure_streak=0)


class SyncErrorFilter(_YesNoFilter):
    title = "has sync error"
    parameter_name = "sync_error"
    yes = ~Q(sync_error="")
    no = Q(sync_error="")


class RemovedFilter(_YesNoFilter):
    title = "removed"
    parameter_name = "removed"
    yes = Q(removed_at__isnull=False)
    no = Q(removed_at__isnull=True)


@dataclass(frozen=True)
class JobTool:
    """A button on the job's page: its label, the URL name it opens, and who may use it."""

    label: str
    url_name: str
    allowed: Callable[[HttpRequest, Job], bool]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin[Job]):
    form = JobForm
    list_display = ["name_shown", "source", "schedule", "next_run", "paused", "last_run", "sync_error_short"]
    list_display_links = ["name_shown"]
    list_filter = ["source", PausedFilter, FailingFilter, SyncErrorFilter, RemovedFilter]
    search_fields = ["name", "external_id"]
    actions = ["pause_jobs", "resume_jobs", "run_now"]
    readonly_fields = [
        "source",
        "external_id",
        "cron_description",
        "cron_preview",
        "available_functions",
        "next_run",
        "pause_state",
        "last_run",
        "failure_streak",
        "run_bars",
        "runs_link",
        "sync_error",
        "removed",
        "history",
        "created",
        "updated",
    ]
    change_form_template = "admin/scheduler/job/change_form.html"

    class Media:
        css = {"all": [ADMIN_CSS]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Job]:
        latest = JobRun.objects.of_job_newest_first(OuterRef("pk"))
        return (
            super()
            .get_queryset(request)
            .select_related("periodic_task", "paused_by")
            .annotate(
                last_run_id=Subquery(latest.values("pk")[:1]),
                last_run_status=Subquery(latest.values("status")[:1]),
                last_run_at=Subquery(latest.values("created_at")[:1]),
            )
        )

    def get_fieldsets(self, request: HttpRequest, obj: Job | None = None) -> _FieldsetSpec:
        if obj is None:
            return [(None, {"fields": ["name", "cron", "timezone", "steps_text", "available_functions", "time_limit"]})]
        definition: FieldGroups
        if obj.source == Job.Source.ALLOY:
            # The name as text, cleaned and isolated as in the list (the form's own field would show it raw).
            definition = [
                *("name_shown", "cron", "cron_description", "cron_preview", "timezone"),
                *("steps_display", "time_limit"),
            ]
        else:
            definition = [
                *("name", "cron", "cron_description", "cron_preview", "timezone"),
                *("steps_text", "available_functions", "time_limit"),
            ]
        return [
            (None, {"fields": definition}),
            (
                "State",
                {"fields": ["pause_state", "next_run", "last_run", "failure_streak", "sync_error", "removed"]},
            ),
            ("Runs", {"fields": ["run_bars", "runs_link"]}),
            ("Who did what", {"fields": ["history"]}),
            ("Record", {"fields": ["source", "external_id", "created", "updated"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Job | None = None) -> list[str]:
        if obj is not None and obj.source == Job.Source.ALLOY:
            # Alloy owns the definition (time limit included); operators may pause, resume and run.
            return ["name_shown", "cron", "timezone", "steps_display", "time_limit", *self.readonly_fields]
        return self.readonly_fields

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        # A job from Alloy has nothing to edit here: its page is a view, with pause, resume and run as buttons.
        if obj is not None and obj.source == Job.Source.ALLOY:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        # Alloy decides whether its jobs exist: one deleted here would come back at the next sync.
        if obj is not None and obj.source == Job.Source.ALLOY:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # A bulk delete cannot tell Alloy's jobs from local ones in the selection; delete one at a time.
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request: HttpRequest, obj: Job, form: forms.ModelForm[Job], change: bool) -> None:
        # Only local jobs are saved here (has_change_permission refuses Alloy's), from a valid JobForm,
        # whose clean() built the spec.
        if not isinstance(form, JobForm) or form.spec is None:
            raise TypeError(f"a local job is saved from a valid JobForm, not {type(form).__name__}")
        services.job_save(job=obj, spec=form.spec)

    # The job's own pages (object tools on its change page).

    def get_urls(self) -> list[URLPattern]:
        info = (self.opts.app_label, self.opts.model_name)
        views: dict[str, Callable[..., HttpResponse]] = {
            "pause": self.pause_view,
            "resume": self.resume_view,
            "run": self.run_view,
            "run_with_arguments": self.run_with_arguments_view,
        }
        pages = [
            path(
                f"<path:object_id>/{name.replace('_', '-')}/",
                self.admin_site.admin_view(view),
                name="{}_{}_{}".format(*info, name),
            )
            for name, view in views.items()
        ]
        return [*pages, *super().get_urls()]

    def _may_change(self, request: HttpRequest, job: Job) -> bool:
        # Pause and resume are allowed to whoever may change jobs, Alloy's included (the per-object
        # check above only says there is nothing to edit on an Alloy job's form).
        return super().has_change_permission(request, job)

    def _may_run(self, request: HttpRequest, job: Job) -> bool:
        return self.has_run_permission(request)

    def job_tools(self, request: HttpRequest, job: Job) -> list[dict[str, str]]:
        """The buttons shown on the job's page: only those the user may use and that apply now."""
        tools = [
            JobTool(
                "Pause…",
                "pause",
                lambda r, j: self._may_change(r, j) and j.periodic_task is not None and not j.is_paused,
            ),
            JobTool("Resume", "resume", lambda r, j: self._may_change(r, j) and j.is_paused),
            JobTool("Run now", "run", self._may_run),
            JobTool("Run with arguments…", "run_with_arguments", self._may_run),
        ]
        return [
            {"label": tool.label, "url": reverse(f"admin:scheduler_job_{tool.url_name}", args=[job.pk])}
            for tool in tools
            if tool.allowed(request, job)
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        job = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if job is not None:
            context["job_tools"] = self.job_tools(request, job)
        return super().change_view(request, object_id, form_url, context)

    def _job_or_404(self, request: HttpRequest, object_id: str) -> Job:
        job = self.get_object(request, object_id)
        if job is None:
            raise Http404(f"no job with id {object_id!r}")
        return job

    def _job_page(self, request: HttpRequest, job: Job, title: str, template: str, **context: Any) -> TemplateResponse:
        full = {
            **self.admin_site.each_context(request),
            "title": title,
            "job": job,
            "opts": self.opts,
            "original": job,
            "change_url": reverse("admin:scheduler_job_change", args=[job.pk]),
            **context,
        }
        return TemplateResponse(request, f"admin/scheduler/job/{template}", full)

    def _back_to_job(self, job: Job) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:scheduler_job_change", args=[job.pk]))

    def pause_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        job = self._job_or_404(request, object_id)
        if not self._may_change(request, job):
            raise PermissionDenied
        form = PauseForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            note = form.cleaned_data["note"]
            try:
                services.job_pause(job=job, note=note, by=acting_user(request))
            except services.JobStateError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return self._back_to_job(job)
            self.log_change(request, job, f"Paused: {note}")
            self.message_user(request, f"Paused {job}.", messages.SUCCESS)
            return self._back_to_job(job)
        return self._job_page(request, job, f"Pause {job}", "pause.html", form=form)

    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        job = self._job_or_404(request, object_id)
        if not self._may_change(request, job):
            raise PermissionDenied
        if request.method == "POST":
            note = job.pause_note
            try:
                services.job_resume(job=job)
            except services.JobStateError as exc:
                self.message_user(request, f"Not resumed: {exc}.", messages.ERROR)
                return self._back_to_job(job)
            self.log_change(request, job, f"Resumed (the pause note was: {note})" if note else "Resumed")
            self.message_user(request, f"Resumed {job}.", messages.SUCCESS)
            return self._back_to_job(job)
        return self._job_page(request, job, f"Resume {job}", "resume.html")

    def run_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        job = self._job_or_404(request, object_id)
        if not self._may_run(request, job):
            raise PermissionDenied
        if request.method == "POST":
            try:
                run = services.job_run_now(job=job, requested_by=acting_user(request))
            except services.RunNotQueued as exc:
                self.message_user(request, f"Run {exc.run.pk} failed: {exc.run.error}", messages.ERROR)
                return self._back_to_job(job)
            self.log_change(request, job, f"Ran now: run {run.pk} queued")
            self._run_queued_message(request, run)
            return self._back_to_job(job)
        return self._job_page(request, job, f"Run {job} now", "run.html")

    def run_with_arguments_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        job = self._job_or_404(request, object_id)
        if not self._may_run(request, job):
            raise PermissionDenied
        form = RunWithArgumentsForm(request.POST if request.method == "POST" else None, job=job)
        if request.method == "POST" and form.is_valid():
            try:
                run = services.job_run_now(job=job, step_kwargs=form.step_kwargs, requested_by=acting_user(request))
            except services.RunNotQueued as exc:
                self.message_user(request, f"Run {exc.run.pk} failed: {exc.run.error}", messages.ERROR)
                return self._back_to_job(job)
            shown = "; ".join(f"step {n}: {json.dumps(kw, sort_keys=True)}" for n, kw in enumerate(form.step_kwargs, 1))
            self.log_change(request, job, f"Ran now with arguments: run {run.pk} queued ({shown})"[:2000])
            self._run_queued_message(request, run)
            return self._back_to_job(job)
        return self._job_page(request, job, f"Run {job} with arguments", "run_with_arguments.html", form=form)

    def _run_queued_message(self, request: HttpRequest, run: JobRun) -> None:
        url = reverse("admin:scheduler_jobrun_change", args=[run.pk])
        self.message_user(request, format_html('Queued run <a href="{}">{}</a>.', url, run.pk), messages.SUCCESS)

    # Columns and read-only fields.

    @admin.display(description="Name", ordering="name")
    def name_shown(self, job: Job) -> SafeString:
        return name_cell(job.name)

    @admin.display(description="Schedule", ordering="cron")
    def schedule(self, job: Job) -> SafeString:
        return format_html("<code>{}</code><br><small>{}</small>", job.cron, describe_cron(job.cron))

    @admin.display(description="Schedule in words")
    def cron_description(self, job: Job) -> str:
        return describe_cron(job.cron)

    @admin.display(description="Next five runs")
    def cron_preview(self, job: Job) -> SafeString:
        try:
            times = next_fire_times(job.cron, job.timezone, timezone.now())
        except (CronError, ValueError) as exc:
            return format_html('<span class="errornote">{}</span>', str(exc))
        items = format_html_join("", "<li>{}</li>", ((f"{when:%a %Y-%m-%d %H:%M %Z}",) for when in times))
        return format_html("<ul>{}</ul><small>in {}</small>", items, job.timezone)

    @admin.display(description="Registered functions")
    def available_functions(self, job: Job) -> SafeString:
        rows = ((name, str(registry.get_job_function(name).signature)) for name in registry.registered_names())
        listed = format_html_join("", "<li><code>{}{}</code></li>", rows)
        return format_html('<ul style="margin-left:0">{}</ul>', listed) if listed else format_html("{}", "none")

    @admin.display(description="Next run")
    def next_run(self, job: Job) -> SafeString | str:
        if job.periodic_task is None:
            return "removed"
        if not job.periodic_task.enabled:
            return "paused"
        try:
            when = next_fire(job.cron, job.timezone, timezone.now())
        except CronError:
            return "never"  # validated when saved, so unexpected; a display must never break the page
        # Beat's due time (UTC), shown in the zone the job's cron is read in, that zone named.
        return _zone_time(when.astimezone(ZoneInfo(job.timezone)), job.timezone)

    @admin.display(description="Paused")
    def paused(self, job: Job) -> SafeString | str:
        if not job.is_paused:
            return ""
        return format_html(
            '<span class="paused-mark" title="{}" style="background:#ef6c00;color:#fff;padding:1px 7px;'
            'border-radius:9px;font-weight:600">paused</span>',
            job.pause_note,
        )

    @admin.display(description="Pause")
    def pause_state(self, job: Job) -> SafeString | str:
        if job.periodic_task is None:
            return "removed: no schedule"
        if not job.is_paused:
            return "not paused: runs on schedule"
        if job.paused_at is None:
            # Paused before pauses were recorded (the periodic task's enabled box): nobody to name.
            return format_html("<strong>Paused</strong> (who and when not recorded): {}", job.pause_note or "no note")
        author = job.paused_by.get_username() if job.paused_by else AUTO_PAUSE_AUTHOR
        return format_html(
            "<strong>Paused</strong> by {} at {}:<br>{}", author, site_time(job.paused_at), job.pause_note
        )

    @admin.display(description="Last run")
    def last_run(self, job: Job) -> SafeString | str:
        # Annotations from get_queryset, which the model's type does not have: read by name.
        run_id: int | None = getattr(job, "last_run_id", None)
        if run_id is None:
            return "never"
        status: str = getattr(job, "last_run_status", "") or ""
        created_at: datetime | None = getattr(job, "last_run_at", None)
        url = reverse("admin:scheduler_jobrun_change", args=[run_id])
        label = JobRun.Status(status).label if status in JobRun.Status.values else status
        if status == JobRun.Status.FAILED and job.failure_streak > 1:
            label = f"{label} ({job.failure_streak} in a row)"
        return format_html(
            '<a href="{}">{}</a> <span style="white-space:nowrap">{}</span>',
            url,
            status_badge(status, label),
            site_time(created_at),
        )

    @admin.display(description="Last 50 runs")
    def run_bars(self, job: Job) -> SafeString:
        return job_run_bars(job)

    @admin.display(description="Runs")
    def runs_link(self, job: Job) -> str:
        url = reverse("admin:scheduler_jobrun_changelist") + f"?job__id__exact={job.pk}"
        return format_html('<a href="{}">run history</a>', url)

    @admin.display(description="Steps")
    def steps_display(self, job: Job) -> str:
        return format_html("<pre>{}</pre>", steps_as_text(job.steps))

    @admin.display(description="Sync error")
    def sync_error_short(self, job: Job) -> str:
        return one_line(job.sync_error, 80)

    @admin.display(description="Created")
    def created(self, job: Job) -> str:
        return site_time(job.created_at)

    @admin.display(description="Last changed")
    def updated(self, job: Job) -> str:
        return site_time(job.updated_at)

    @admin.display(description="Removed")
    def removed(self, job: Job) -> str:
        return site_time(job.removed_at) if job.removed_at else "no"

    @admin.display(description="Latest changes")
    def history(self, job: Job) -> SafeString | str:
        if job.pk is None:
            return ""
        entries = (
            LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Job), object_id=str(job.pk))
            .select_related("user")
            .order_by("-action_time", "-id")[:HISTORY_COUNT]
        )
        rows = [
            (site_time(entry.action_time), entry.user.get_username(), entry.get_change_message() or str(entry))
            for entry in entries
        ]
        url = reverse("admin:scheduler_job_history", args=[job.pk])
        if not rows:
            return format_html('None yet. <a href="{}">History</a>', url)
        table = format_html_join("", '<tr><td style="white-space:nowrap">{}</td><td>{}</td><td>{}</td></tr>', rows)
        return format_html(
            '<table class="job-history"><thead><tr><th>When</th><th>Who</th><th>What</th></tr></thead>'
            '<tbody>{}</tbody></table><a href="{}">full history</a>',
            table,
            url,
        )

    # Actions on the list.

    def has_run_permission(self, request: HttpRequest) -> bool:
        """Whether the user may run jobs now: the action's ``permissions=["run"]`` asks this."""
        return request.user.has_perm(RUN_JOB_PERMISSION)

    @admin.action(description="Pause selected jobs (with a note)", permissions=["change"])
    def pause_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> HttpResponse | None:
        scheduled = queryset.exclude(periodic_task=None)
        if "apply" in request.POST:
            form = PauseForm(request.POST)
            if form.is_valid():
                note = form.cleaned_data["note"]
                for job in scheduled:
                    services.job_pause(job=job, note=note, by=acting_user(request))
                    self.log_change(request, job, f"Paused: {note}")
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
        jobs = list(queryset.exclude(periodic_task=None))
        paused = [job for job in jobs if job.is_paused]
        for job in paused:
            services.job_resume(job=job)
            self.log_change(request, job, "Resumed")
        self.message_user(request, f"Resumed {len(paused)} job(s).", messages.SUCCESS)
        not_paused = [job.name for job in jobs if not job.is_paused and job not in paused]
        if not_paused:
            self.message_user(request, f"Not paused, so not resumed: {', '.join(not_paused)}.", messages.WARNING)

    @admin.action(description="Run selected jobs now", permissions=["run"])
    def run_now(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        runs = []
        for job in queryset:
            try:
                runs.append(services.job_run_now(job=job, requested_by=acting_user(request)))
            except services.RunNotQueued as exc:
                self.message_user(request, f"{job}: run {exc.run.pk} failed: {exc.run.error}", messages.ERROR)
        for run in runs:
            self.log_change(request, run.job, f"Ran now: run {run.pk} queued")
        if runs:
            self.message_user(
                request, f"Queued {len(runs)} run(s): {', '.join(str(run.pk) for run in runs)}.", messages.SUCCESS
            )


# Run history is never edited: every field shown is read-only. Tuples of names, which both ``fields``
# and ``readonly_fields`` accept as they are typed.
STEP_RUN_FIELDS = (
    "position",
    "function",
    "kwargs",
    "status_shown",
    "started",
    "duration_shown",
    "result",
    "error_display",
)
JOB_RUN_FIELDS = (
    *("job", "trigger", "status_shown", "requested_by", "due", "created", "started", "finished", "duration_shown"),
    *("heartbeat", "worker", "error_display"),
)


def error_block(error: str) -> str:
    """An error or traceback from job code as a block: its lines kept, long lines wrapped (admin.css),
    bidi controls removed so no line shows reversed."""
    if not error:
        return ""
    return format_html('<pre class="run-error" style="white-space: pre-wrap">{}</pre>', without_bidi_controls(error))


class _RunDisplays:
    """Columns and fields shared by job runs and step runs: status badge, times with their zone, duration."""

    @admin.display(description="Status", ordering="status")
    def status_shown(self, run: JobRun | StepRun) -> SafeString:
        return status_badge(run.status, run.get_status_display())

    @admin.display(description="Started", ordering="started_at")
    def started(self, run: JobRun | StepRun) -> SafeString:
        return site_time_cell(run.started_at)

    @admin.display(description="Finished", ordering="finished_at")
    def finished(self, run: JobRun | StepRun) -> str:
        return site_time(run.finished_at)

    @admin.display(description="Duration")
    def duration_shown(self, run: JobRun | StepRun) -> SafeString:
        duration: timedelta | None = None
        if run.started_at and run.finished_at:
            duration = run.finished_at - run.started_at
        return format_html('<span style="white-space:nowrap">{}</span>', duration_text(duration))


class StepRunInline(_RunDisplays, admin.TabularInline[StepRun, JobRun]):
    model = StepRun
    extra = 0
    can_delete = False
    fields = STEP_RUN_FIELDS
    readonly_fields = STEP_RUN_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Error")
    def error_display(self, step: StepRun) -> str:
        return error_block(step.error)


@admin.register(JobRun)
class JobRunAdmin(_RunDisplays, admin.ModelAdmin[JobRun]):
    # Fits 1280 px: when it was queued is on the run's page (and the list is in that order).
    list_display = ["id", "job_shown", "trigger", "status_shown", "started", "duration_shown", "requested_by"]
    list_filter = ["status", "trigger", ("job", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["job__name", "job__external_id"]
    list_select_related = ["job", "requested_by"]
    date_hierarchy = "created_at"
    inlines = [StepRunInline]
    fields = JOB_RUN_FIELDS
    readonly_fields = JOB_RUN_FIELDS

    class Media:
        css = {"all": [ADMIN_CSS]}

    @admin.display(description="Job", ordering="job__name")
    def job_shown(self, run: JobRun) -> SafeString:
        return name_cell(run.job.name)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Error")
    def error_display(self, run: JobRun) -> str:
        return error_block(run.error)

    @admin.display(description="Queued", ordering="created_at")
    def created(self, run: JobRun) -> str:
        return site_time(run.created_at)

    @admin.display(description="Due (scheduled runs)")
    def due(self, run: JobRun) -> str:
        return site_time(run.due_at)

    @admin.display(description="Last heartbeat")
    def heartbeat(self, run: JobRun) -> str:
        return site_time(run.heartbeat_at)


periodic_task_admin.register(admin.site)
