"""What the API shows of jobs and runs, and the bodies it accepts. Field names follow the models'
(public, in the README), so a report written against the database reads the API the same way."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from scheduler.cron import CronError, describe_cron, next_fire
from scheduler.models import Job, JobRun, StepRun

# Longest pause note kept: a note is a sentence or two; a megabyte is a mistake.
MAX_NOTE_CHARS = 2000


class StepSerializer(serializers.Serializer[dict[str, Any]]):
    function = serializers.CharField()
    kwargs = serializers.DictField(child=serializers.JSONField())


class LastRunSerializer(serializers.Serializer[Job]):
    """The job's newest run, from the list's annotations (no query of its own)."""

    id = serializers.IntegerField()
    url = serializers.URLField()
    status = serializers.ChoiceField(choices=JobRun.Status.choices)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


# Rows' URLs: each view's URL is reversed once per request with this id, which each row's id then
# replaces. Reversing per row (three a job) was a third of a 50-job page's time.
_PLACEHOLDER_ID = 918273645546372819


def url_of(context: Mapping[str, Any], view_name: str, pk: int) -> str:
    """The absolute URL of ``view_name`` for object ``pk``, as DRF's ``reverse`` makes it, from a
    template kept in the serializer's ``context`` (a dict, one per request)."""
    templates: dict[str, str] = cast(dict[str, Any], context).setdefault("url_templates", {})
    template = templates.get(view_name)
    if template is None:
        template = reverse(view_name, args=[_PLACEHOLDER_ID], request=context.get("request"))
        templates[view_name] = template
    return template.replace(str(_PLACEHOLDER_ID), str(pk))


def list_url(context: Mapping[str, Any], view_name: str) -> str:
    """The absolute URL of the list ``view_name``, reversed once per request."""
    templates: dict[str, str] = cast(dict[str, Any], context).setdefault("url_templates", {})
    if view_name not in templates:
        templates[view_name] = reverse(view_name, request=context.get("request"))
    return templates[view_name]


class JobSerializer(serializers.ModelSerializer[Job]):
    url = serializers.SerializerMethodField(help_text="This job in the API.")
    runs_url = serializers.SerializerMethodField(help_text="This job's runs, newest first.")
    cron_description = serializers.SerializerMethodField(help_text="The cron expression in plain English.")
    steps = StepSerializer(many=True, help_text="Functions run in order, each with its keyword arguments.")
    next_run_at = serializers.SerializerMethodField(
        help_text="When beat next sends the job (UTC), by the job's cron in its time zone; null if paused or removed."
    )
    paused = serializers.SerializerMethodField(help_text="True while the job is paused (an operator's, or auto-pause).")
    paused_by = serializers.SerializerMethodField(help_text="Username of who paused it; null for auto-pause.")
    last_run = serializers.SerializerMethodField(help_text="The newest run, whatever its trigger; null if never run.")

    class Meta:
        model = Job
        fields = [
            "id",
            "url",
            "name",
            "source",
            "external_id",
            "cron",
            "cron_description",
            "timezone",
            "steps",
            "next_run_at",
            "paused",
            "pause_note",
            "paused_by",
            "paused_at",
            "last_run",
            "runs_url",
            "sync_error",
            "time_limit",
            "failure_streak",
            "removed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Job) -> dict[str, Any]:
        """The fields above, built directly: DRF's field-by-field walk cost about 0.7 ms a job (most
        of a 50-job page's time). ``test_the_fast_representation_is_drf_s_own`` holds the two equal."""
        job = instance
        return {
            "id": job.pk,
            "url": self.get_url(job),
            "name": job.name,
            "source": job.source,
            "external_id": job.external_id,
            "cron": job.cron,
            "cron_description": self.get_cron_description(job),
            "timezone": job.timezone,
            "steps": [
                {"function": str(step["function"]), "kwargs": dict(step.get("kwargs") or {})} for step in job.steps
            ],
            "next_run_at": self.get_next_run_at(job),
            "paused": self.get_paused(job),
            "pause_note": job.pause_note,
            "paused_by": self.get_paused_by(job),
            "paused_at": _iso(job.paused_at),
            "last_run": self.get_last_run(job),
            "runs_url": self.get_runs_url(job),
            "sync_error": job.sync_error,
            "time_limit": job.time_limit,
            "failure_streak": job.failure_streak,
            "removed_at": _iso(job.removed_at),
            "created_at": _iso(job.created_at),
            "updated_at": _iso(job.updated_at),
        }

    def drf_representation(self, instance: Job) -> dict[str, Any]:
        """DRF's own representation of the declared fields, against which the fast one is tested."""
        return dict(super().to_representation(instance))

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, job: Job) -> str:
        return url_of(self.context, "api:job-detail", job.pk)

    @extend_schema_field(OpenApiTypes.URI)
    def get_runs_url(self, job: Job) -> str:
        return f"{list_url(self.context, 'api:jobrun-list')}?job={job.pk}"

    def get_cron_description(self, job: Job) -> str:
        return _described(job.cron)

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_next_run_at(self, job: Job) -> datetime | None:
        if job.periodic_task is None or not job.periodic_task.enabled:
            return None
        # Jobs often share a schedule: a page works out each (cron, zone) once, at one "now".
        cache: dict[tuple[str, str], datetime | None] = cast(dict[str, Any], self.context).setdefault(
            "next_fire_cache", {}
        )
        if (job.cron, job.timezone) not in cache:
            try:
                when: datetime | None = next_fire(job.cron, job.timezone, self.context.get("now") or timezone.now())
            except (CronError, ValueError):
                when = None  # validated when saved; a listing must not fail over one job
            cache[job.cron, job.timezone] = when
        return cache[job.cron, job.timezone]

    def get_paused(self, job: Job) -> bool:
        return job.is_paused

    @extend_schema_field(OpenApiTypes.STR)
    def get_paused_by(self, job: Job) -> str | None:
        if not job.is_paused or job.paused_by is None:
            return None
        return str(job.paused_by.get_username())

    @extend_schema_field(LastRunSerializer(allow_null=True))
    def get_last_run(self, job: Job) -> dict[str, Any] | None:
        # Annotations (JobViewSet.get_queryset), which the model's type does not have: read by name.
        run_id: int | None = getattr(job, "last_run_id", None)
        if run_id is None:
            return None
        return {
            "id": run_id,
            "url": url_of(self.context, "api:jobrun-detail", run_id),
            "status": getattr(job, "last_run_status", None),
            "created_at": _iso(getattr(job, "last_run_created_at", None)),
            "started_at": _iso(getattr(job, "last_run_started_at", None)),
            "finished_at": _iso(getattr(job, "last_run_finished_at", None)),
        }


@lru_cache(maxsize=4096)
def _described(cron: str) -> str:
    """describe_cron, remembered: it takes most of a millisecond, and the answer never changes."""
    return describe_cron(cron)


# One field for every annotation's time: making a field per value cost more than formatting it.
_DATETIME = serializers.DateTimeField()


def _iso(value: datetime | None) -> str | None:
    return _DATETIME.to_representation(value) if value is not None else None


class StepRunSerializer(serializers.ModelSerializer[StepRun]):
    kwargs = serializers.DictField(child=serializers.JSONField(), help_text="The arguments this run used.")
    result = serializers.JSONField(allow_null=True, help_text="The JSON-safe return value, cut past a size cap.")

    class Meta:
        model = StepRun
        fields = ["position", "function", "kwargs", "status", "started_at", "finished_at", "result", "error"]
        read_only_fields = fields


class JobRunSerializer(serializers.ModelSerializer[JobRun]):
    url = serializers.SerializerMethodField(help_text="This run in the API.")
    job_url = serializers.SerializerMethodField(help_text="The run's job in the API.")
    job_name = serializers.CharField(source="job.name", read_only=True)
    requested_by = serializers.SerializerMethodField(help_text="Username of who asked (manual and api runs).")

    class Meta:
        model = JobRun
        fields = [
            "id",
            "url",
            "job",
            "job_name",
            "job_url",
            "trigger",
            "status",
            "created_at",
            "due_at",
            "started_at",
            "finished_at",
            "requested_by",
            "worker",
            "error",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, run: JobRun) -> str:
        return url_of(self.context, "api:jobrun-detail", run.pk)

    @extend_schema_field(OpenApiTypes.URI)
    def get_job_url(self, run: JobRun) -> str:
        return url_of(self.context, "api:job-detail", run.job_id)

    @extend_schema_field(OpenApiTypes.STR)
    def get_requested_by(self, run: JobRun) -> str | None:
        return str(run.requested_by.get_username()) if run.requested_by else None


class JobRunDetailSerializer(JobRunSerializer):
    steps = StepRunSerializer(many=True, read_only=True)

    class Meta(JobRunSerializer.Meta):
        fields = [*JobRunSerializer.Meta.fields, "steps"]
        read_only_fields = fields


class StrictBooleanField(serializers.BooleanField):
    """A JSON ``true`` or ``false``, nothing DRF would read as one ("yes", 1, "on"): the schema says boolean."""

    default_error_messages = {"invalid": "must be true or false (a JSON boolean)."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictCharField(serializers.CharField):
    """A JSON string, not a number DRF would turn into one: the schema says string."""

    default_error_messages = {"invalid": "must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class JobFilterSerializer(serializers.Serializer[dict[str, Any]]):
    """``GET /jobs/`` query: each filter optional; booleans as true/false (also 1/0, yes/no)."""

    # A declared field, popped from the class by DRF: not the Field.source attribute mypy sees.
    source = serializers.ChoiceField(choices=Job.Source.choices, required=False)  # type: ignore[assignment]
    paused = serializers.BooleanField(required=False, allow_null=True, default=None)
    failing = serializers.BooleanField(required=False, allow_null=True, default=None)
    removed = serializers.BooleanField(required=False, allow_null=True, default=None)


@extend_schema_field(OpenApiTypes.INT)
class IdField(serializers.Field):  # type: ignore[type-arg]
    """An id in a query string: ASCII digits, no sign, spaces or leading zero, 1 to 2**63 - 1, as a
    URL's id (DRF's IntegerField takes fullwidth digits and " 1", which no id is written as)."""

    default_error_messages = {"invalid": "must be an id: a whole number from 1, in ASCII digits, no leading zero."}

    def to_internal_value(self, data: Any) -> int:
        text = str(data)
        if not (text.isascii() and text.isdigit() and not text.startswith("0")) or len(text) > 19:
            self.fail("invalid")
        if int(text) > 2**63 - 1:
            self.fail("invalid")
        return int(text)

    def to_representation(self, value: Any) -> int:
        return int(value)


class RunFilterSerializer(serializers.Serializer[dict[str, Any]]):
    """``GET /runs/`` query."""

    job = IdField(required=False, help_text="A job's id.")
    status = serializers.ChoiceField(choices=JobRun.Status.choices, required=False)
    trigger = serializers.ChoiceField(choices=JobRun.Trigger.choices, required=False)


class RunRequestSerializer(serializers.Serializer[dict[str, Any]]):
    """``POST /jobs/{id}/runs/``: ``{"kwargs": {STEP: {...}}}``, or an empty body for the stored arguments.

    STEP is the step's number from 1 (``"2"``) or its function's name when only one step calls it
    (``"examples.echo"``), as ``run_job --kwargs STEP=JSON`` reads it. A step given replaces that
    step's stored keyword arguments for this run only; steps not given keep theirs.
    """

    kwargs = serializers.DictField(
        child=serializers.DictField(child=serializers.JSONField()),
        required=False,
        help_text=(
            'Per step: {"1": {"message": "hi"}} or {"examples.echo": {"message": "hi"}}. A key is the step\'s '
            'number written plainly ("1", not "01", "+1" or " 1 ") or its function\'s name exactly.'
        ),
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        _refuse_unknown_fields(self, data)
        return cast(dict[str, Any], super().to_internal_value(data))


class PauseRequestSerializer(serializers.Serializer[dict[str, Any]]):
    """``POST /jobs/{id}/pause/``: why, for whoever finds the job paused."""

    note = StrictCharField(max_length=MAX_NOTE_CHARS, help_text="Why the job is paused (required).")

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        _refuse_unknown_fields(self, data)
        return cast(dict[str, Any], super().to_internal_value(data))


def _refuse_unknown_fields(serializer: serializers.Serializer[Any], data: Any) -> None:
    # A misspelt field ("kwarg") ignored silently would run the job with arguments nobody meant.
    if isinstance(data, dict):
        unknown = [str(key)[:50] for key in data if key not in serializer.fields]
        if unknown:
            raise serializers.ValidationError({key: ["unknown field"] for key in unknown})
