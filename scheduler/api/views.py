"""/api/v1/jobs/ and /api/v1/runs/: thin views over the scheduler's services and selectors.

Each view names the permission its actions need (``action_permissions``, read by
``scheduler.api.permissions.ModelPermissions``); reads need ``view_job`` / ``view_jobrun``.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.urls import Resolver404, resolve
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from scheduler import services
from scheduler.api.errors import Conflict, Unavailable
from scheduler.api.pagination import JobPagination, NewestFirstCursorPagination, plain_number
from scheduler.api.parsers import JSONParser
from scheduler.api.schema import BAD_REQUEST, COMMON_ERRORS, CONFLICT, NOT_FOUND
from scheduler.api.serializers import (
    JobFilterSerializer,
    JobRunDetailSerializer,
    JobRunSerializer,
    JobSerializer,
    PauseRequestSerializer,
    RunFilterSerializer,
    RunRequestSerializer,
)
from scheduler.jobspec import JobSpecError, step_index
from scheduler.models import RUN_JOB_PERMISSION, Job, JobRun
from scheduler.types import JSONObject

#: Largest id a database's bigint holds; beyond it, no such row.
MAX_ID = 2**63 - 1
#: What a URL's id may look like to be routed at all (the schema types it integer); anything else is
#: the catch-all's JSON 404, and object_id refuses the rest ("01", too large).
ID_REGEX = "[0-9]+"
#: The path's id in the schema: an integer (the regex alone makes drf-spectacular say string).
ID_PARAMETER = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The id, a whole number from 1.")


class ApiView(APIView):
    """What every view of the API shares: JSON bodies read without ever failing with a 500."""

    parser_classes = [JSONParser]


def object_id(text: str) -> int:
    """A URL's id as a number; 404 (as for an id with no row) when it is not one a row can have."""
    if not plain_number(text) or len(text) > 19 or not 1 <= int(text) <= MAX_ID:
        raise NotFound("No such id: ids are whole numbers from 1, written plainly (no leading zero).")
    return int(text)


#: Query parameters every list reads besides its filters: the renderer's, and its pages'.
PAGE_PARAMETERS = {"jobs": {"format", "page", "page_size"}, "cursor": {"format", "cursor", "page_size"}}


def refuse_unknown_parameters(request: Request, allowed: set[str]) -> None:
    """400 naming each query parameter the list does not read: a misspelt filter (``?pasued=true``)
    ignored silently would list every row as if filtered."""
    unknown = [name for name in request.query_params if name not in allowed]
    if unknown:
        known = ", ".join(sorted(allowed - {"format"}))
        raise ValidationError({name[:50]: [f"unknown query parameter; this list reads {known}"] for name in unknown})


def query_filters(
    serializer_class: type[serializers.Serializer[Any]], request: Request, paging: set[str]
) -> dict[str, Any]:
    """A list's filters from the query string, checked; 400 naming each bad or unknown parameter."""
    names = list[str](serializer_class().fields)
    refuse_unknown_parameters(request, {*names, *paging})
    known = {name: request.query_params[name] for name in names if name in request.query_params}
    filters = serializer_class(data=known)
    filters.is_valid(raise_exception=True)
    return dict(filters.validated_data)


def api_user(request: Request) -> AbstractBaseUser:
    user = request.user
    if not isinstance(user, AbstractBaseUser):
        raise PermissionDenied  # the permission class lets no anonymous user this far
    return user


def _ran_now_message(run: JobRun, step_kwargs: list[object] | None) -> str:
    """What the job's history says of a run queued: as the admin's own entry reads, arguments and all."""
    if step_kwargs is None:
        return f"Ran now: run {run.pk} queued"
    shown = "; ".join(f"step {n}: {json.dumps(kwargs, sort_keys=True)}" for n, kwargs in enumerate(step_kwargs, 1))
    return f"Ran now with arguments: run {run.pk} queued ({shown})"


def _log_change(request: Request, job: Job, message: str) -> None:
    """Record what a token's user did in the admin's log, beside what operators do on the job's page,
    so "who paused this?" has one answer wherever it was done. Marked as done through the API."""
    LogEntry.objects.log_actions(
        user_id=api_user(request).pk,
        queryset=[job],
        action_flag=CHANGE,
        change_message=f"{message} (through the API)"[:2000],
        single_object=True,
    )


def jobs_with_last_run() -> QuerySet[Job]:
    """Jobs with what a listing shows, in a fixed number of queries whatever their runs: the newest
    run's fields by subqueries on the (job, -created_at) index, the periodic task and pauser joined."""
    latest = JobRun.objects.of_job_newest_first(OuterRef("pk"))
    return (
        Job.objects.select_related("periodic_task", "paused_by")
        .annotate(
            last_run_id=Subquery(latest.values("pk")[:1]),
            last_run_status=Subquery(latest.values("status")[:1]),
            last_run_created_at=Subquery(latest.values("created_at")[:1]),
            last_run_started_at=Subquery(latest.values("started_at")[:1]),
            last_run_finished_at=Subquery(latest.values("finished_at")[:1]),
        )
        .order_by("pk")
    )


JOB_FILTER_PARAMETERS = [
    OpenApiParameter("source", str, enum=Job.Source.values, description="alloy or local"),
    OpenApiParameter(
        "paused", bool, description="true: only paused jobs; false: only jobs not paused (removed ones are neither)."
    ),
    OpenApiParameter("failing", bool, description="true: only jobs whose latest runs failed (failure_streak above 0)."),
    OpenApiParameter(
        "removed", bool, description="true: only removed jobs (item gone, or no schedule left); false: only live ones."
    ),
]


class JobViewSet(viewsets.GenericViewSet[Job]):
    """Jobs: read them; run one now, with arguments if wanted; pause and resume."""

    parser_classes = [JSONParser]
    queryset = Job.objects.all()
    serializer_class = JobSerializer
    pagination_class = JobPagination
    lookup_value_regex = ID_REGEX
    action_permissions = {
        "runs": ["scheduler.view_job", RUN_JOB_PERMISSION],
        "pause": ["scheduler.view_job", "scheduler.change_job"],
        "resume": ["scheduler.view_job", "scheduler.change_job"],
    }

    def get_queryset(self) -> QuerySet[Job]:
        return jobs_with_last_run()

    def get_object(self) -> Job:
        job = self.get_queryset().filter(pk=object_id(str(self.kwargs["pk"]))).first()
        if job is None:
            raise NotFound("No job with this id.")
        return job

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "now": timezone.now()}

    @extend_schema(
        summary="List jobs",
        parameters=JOB_FILTER_PARAMETERS,
        responses={200: JobSerializer(many=True), **BAD_REQUEST, **COMMON_ERRORS},
    )
    def list(self, request: Request) -> Response:
        filters = query_filters(JobFilterSerializer, request, PAGE_PARAMETERS["jobs"])
        jobs = self.get_queryset()
        if filters.get("source") == Job.Source.ALLOY:
            # Every Alloy job has its item id: the page's count then reads the (source, external_id)
            # unique index, not every job (29-56 ms at 100,000 jobs, half of them Alloy's).
            jobs = jobs.filter(source=Job.Source.ALLOY).exclude(external_id="")
        elif "source" in filters:
            jobs = jobs.filter(source=filters["source"])
        if filters.get("paused") is not None:
            jobs = jobs.filter(periodic_task__enabled=not filters["paused"])
        if filters.get("failing") is not None:
            jobs = jobs.filter(Q(failure_streak__gt=0) if filters["failing"] else Q(failure_streak=0))
        if filters.get("removed") is not None:
            # Removed as /metrics counts it: marked so, or without a schedule (its periodic task gone).
            removed = Q(removed_at__isnull=False) | Q(periodic_task__isnull=True)
            jobs = jobs.filter(removed if filters["removed"] else ~removed)
        page = self.paginate_queryset(jobs)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="One job", parameters=[ID_PARAMETER], responses={200: JobSerializer, **NOT_FOUND, **COMMON_ERRORS}
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        summary="Run the job now",
        parameters=[ID_PARAMETER],
        description=(
            "Queues one run (trigger `api`, requested by the token's user) and answers at once. "
            "`kwargs` replaces the keyword arguments of the steps it names, for this run only, checked "
            "exactly as the admin's run with arguments checks them. A paused job runs too (as the "
            "admin's run now): a pause stops the schedule, not an operator. A removed job cannot run."
        ),
        request=RunRequestSerializer,
        examples=[
            OpenApiExample("Step 1's message", value={"kwargs": {"1": {"message": "hi"}}}, request_only=True),
            OpenApiExample("The stored arguments", value={}, request_only=True),
        ],
        responses={202: JobRunDetailSerializer, **BAD_REQUEST, **NOT_FOUND, **CONFLICT, **COMMON_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def runs(self, request: Request, pk: str) -> Response:
        job = self.get_object()
        body = RunRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if job.removed_at is not None or job.periodic_task is None:
            raise Conflict(f"Job {job.pk} is removed: it has no schedule, and can no longer run.")
        step_kwargs = _step_kwargs(job, body.validated_data.get("kwargs"))
        try:
            run = services.job_run_now(
                job=job, trigger=JobRun.Trigger.API, requested_by=api_user(request), step_kwargs=step_kwargs
            )
        except JobSpecError as exc:
            raise ValidationError({"kwargs": exc.errors}) from None
        except services.RunNotQueued as exc:
            # Recorded failed, saying so (GET its URL): a client must not wait on a run that never left.
            raise Unavailable(f"Run {exc.run.pk} failed: {exc.run.error}. Try again once the broker is back.") from None
        _log_change(request, job, _ran_now_message(run, step_kwargs))
        run = JobRun.objects.select_related("job", "requested_by").prefetch_related("steps").get(pk=run.pk)
        data = JobRunDetailSerializer(run, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})

    @extend_schema(
        summary="Pause the job",
        parameters=[ID_PARAMETER],
        description="Stops its schedule until resumed; syncs never resume it. `note` says why (required).",
        request=PauseRequestSerializer,
        examples=[OpenApiExample("Why", value={"note": "Alloy outage until 14:00"}, request_only=True)],
        responses={200: JobSerializer, **BAD_REQUEST, **NOT_FOUND, **CONFLICT, **COMMON_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        job = self.get_object()
        body = PauseRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if job.is_paused:
            raise Conflict(f"Job {job.pk} is already paused: resume it first to pause it with another note.")
        try:
            services.job_pause(job=job, note=body.validated_data["note"], by=api_user(request))
        except services.JobStateError as exc:
            raise Conflict(str(exc)) from None
        _log_change(request, job, f"Paused: {job.pause_note}")
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        summary="Resume the job",
        parameters=[ID_PARAMETER],
        request=None,
        responses={200: JobSerializer, **NOT_FOUND, **CONFLICT, **COMMON_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        job = self.get_object()
        note = job.pause_note
        try:
            services.job_resume(job=job)
        except services.JobStateError as exc:
            raise Conflict(str(exc)) from None
        _log_change(request, job, f"Resumed (the pause note was: {note})" if note else "Resumed")
        return Response(self.get_serializer(self.get_object()).data)


def _step_kwargs(job: Job, given: dict[str, JSONObject] | None) -> list[object] | None:
    """Each step's kwargs for this run: those ``given`` (by step number or function name), the stored
    ones for the rest; None when nothing is given. 400 naming each key that names no single step."""
    if not given:
        return None
    stored: list[JSONObject] = job.steps
    step_kwargs: list[object] = [step.get("kwargs") or {} for step in stored]
    errors: dict[str, list[str]] = {}
    named: dict[int, str] = {}
    for key, kwargs in given.items():
        try:
            index = step_index(stored, _step_key(key))
        except ValueError as exc:
            errors[f"kwargs.{key[:50]}"] = [str(exc)]
            continue
        if index in named:
            errors[f"kwargs.{key[:50]}"] = [f"step {index + 1} is given twice (also as {named[index]!r})"]
            continue
        named[index] = key[:50]
        step_kwargs[index] = kwargs
    if errors:
        raise ValidationError(errors)
    return step_kwargs


def _step_key(key: str) -> str:
    """``key`` as ``step_index`` reads it, when it is a step's number written plainly (ASCII digits, no
    sign, spaces or leading zero) or anything else (a function's name, matched exactly).

    Raises ValueError for a number written otherwise: "01" or a 30-digit number is no step anyone
    meant, and reading it as 1 would hide a client's bug."""
    if key.isascii() and key.isdigit():
        if key.startswith("0"):
            raise ValueError(
                f"write the step's number plainly ({int(key[:6]) or 1}, not {key[:10]!r}): no leading zero"
            )
        if len(key) > 6:
            raise ValueError("the job has no step with a number that large")
    return key


RUN_FILTER_PARAMETERS = [
    OpenApiParameter("job", int, description="Only this job's runs (its id)."),
    OpenApiParameter("status", str, enum=JobRun.Status.values),
    OpenApiParameter("trigger", str, enum=JobRun.Trigger.values),
]


class JobRunViewSet(viewsets.GenericViewSet[JobRun]):
    """Runs, newest first, with their steps' arguments, results and errors."""

    parser_classes = [JSONParser]
    queryset = JobRun.objects.all()
    serializer_class = JobRunSerializer
    pagination_class = NewestFirstCursorPagination
    lookup_value_regex = ID_REGEX

    def get_queryset(self) -> QuerySet[JobRun]:
        return JobRun.objects.select_related("job", "requested_by")

    @extend_schema(
        summary="List runs, newest first",
        parameters=RUN_FILTER_PARAMETERS,
        responses={200: JobRunSerializer(many=True), **BAD_REQUEST, **COMMON_ERRORS},
    )
    def list(self, request: Request) -> Response:
        filters = query_filters(RunFilterSerializer, request, PAGE_PARAMETERS["cursor"])
        runs = self.get_queryset()
        if "job" in filters:
            # By the job's index, whatever its history: see of_job_newest_first's docstring.
            runs = JobRun.objects.of_job_newest_first(filters["job"]).select_related("job", "requested_by")
        if "status" in filters:
            runs = runs.filter(status=filters["status"])
        if "trigger" in filters:
            runs = runs.filter(trigger=filters["trigger"])
        page = self.paginate_queryset(runs)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="One run with its steps",
        parameters=[ID_PARAMETER],
        responses={200: JobRunDetailSerializer, **NOT_FOUND, **COMMON_ERRORS},
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        run = self.get_queryset().prefetch_related("steps").filter(pk=object_id(pk)).first()
        if run is None:
            raise NotFound("No run with this id.")
        return Response(JobRunDetailSerializer(run, context=self.get_serializer_context()).data)


class ApiRootView(ApiView):
    """The API's entry points; in a browser, the browsable API (sign in through the admin first)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        def link(name: str) -> str:
            return reverse(name, request=request)

        return Response(
            {
                "jobs": link("api:job-list"),
                "runs": link("api:jobrun-list"),
                "syncs": link("api:syncrun-list"),
                "schema": link("api:schema"),
                "docs": link("api:docs"),
            }
        )


class NotFoundView(ApiView):
    """Any path under /api/v1/ that no view serves, whatever the method: a JSON 404 (never Django's
    HTML page or, with DEBUG, its list of URL patterns). GET or HEAD of a known path written without
    its trailing slash is sent to it (301), as before; any other method is told to add the slash, since
    clients re-send a redirected POST as a GET."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    throttle_classes: list[Any] = []
    schema = None  # no operation of the API: not in the OpenAPI schema

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        path = request.path
        if not path.endswith("/") and _served(f"{path}/"):
            if request.method in ("GET", "HEAD"):
                query = request.META.get("QUERY_STRING", "")
                raise _Redirect(f"{path}/?{query}" if query else f"{path}/")
            raise NotFound(f"No such path: add the trailing slash ({path[:200]}/).")
        raise NotFound("No such path in this API; GET /api/v1/ lists its entry points.")

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, _Redirect):
            return Response(status=status.HTTP_301_MOVED_PERMANENTLY, headers={"Location": exc.location})
        return super().handle_exception(exc)


class _Redirect(Exception):
    def __init__(self, location: str) -> None:
        self.location = location


def _served(path: str) -> bool:
    """True if a view other than NotFoundView serves ``path``."""
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return getattr(match.func, "view_class", None) is not NotFoundView
