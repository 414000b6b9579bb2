"""/api/v1/syncs/: the sync history, and starting a sync (``alloysync.run_sync``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_field, inline_serializer
from kombu.exceptions import OperationalError as KombuOperationalError
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from alloysync.health import alloy_configured
from alloysync.models import SyncRun
from alloysync.sync_lease import SYNC_LEASE, SYNC_LEASE_TTL
from alloysync.tasks import SYNC_QUEUED_LEASE, SYNC_QUEUED_TTL
from alloysync.tasks import sync as sync_task
from scheduler.api.errors import Conflict, Unavailable
from scheduler.api.pagination import NewestFirstCursorPagination
from scheduler.api.parsers import JSONParser
from scheduler.api.schema import BAD_REQUEST, COMMON_ERRORS, ERROR
from scheduler.api.serializers import StrictBooleanField, url_of
from scheduler.api.views import ID_PARAMETER, ID_REGEX, PAGE_PARAMETERS, object_id, refuse_unknown_parameters
from scheduler.leases import lease_drop, lease_hold, lease_holder
from scheduler.models import Lease


class SyncRunSerializer(serializers.ModelSerializer[SyncRun]):
    url = serializers.SerializerMethodField()
    # The model's field, declared: DRF pops it from the class, so Serializer.errors is untouched.
    errors = serializers.ListField(  # type: ignore[assignment]
        child=serializers.DictField(child=serializers.CharField(allow_null=True)),
        help_text='Invalid items: [{"item_id", "title", "message"}].',
    )

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "url",
            "trigger",
            "mode",
            "status",
            "started_at",
            "finished_at",
            "items_read",
            "created",
            "updated",
            "unchanged",
            "removed",
            "invalid",
            "requests",
            "errors",
            "message",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, run: SyncRun) -> str:
        return url_of(self.context, "api:syncrun-detail", run.pk)


class SyncRequestSerializer(serializers.Serializer[dict[str, Any]]):
    """``POST /syncs/``: ``{}`` for the schedule's choice (incremental unless a full read is due), or
    ``{"full": true}`` to read every item, as ``sync_alloy --full``."""

    full = StrictBooleanField(default=False, help_text="Read every item (a complete read): true or false.")

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            unknown = [str(key)[:50] for key in data if key not in self.fields]
            if unknown:
                raise serializers.ValidationError({key: ["unknown field"] for key in unknown})
        return cast(dict[str, Any], super().to_internal_value(data))


QUEUED = inline_serializer(
    "SyncQueued",
    {
        "queued": serializers.BooleanField(),
        "full": serializers.BooleanField(),
        "task": serializers.CharField(),
        "task_id": serializers.CharField(),
        "syncs_url": serializers.URLField(),
    },
)


def sync_under_way() -> str | None:
    """Why a sync cannot start now (one is running, or holds the lease, or is queued), or None."""
    now = timezone.now()
    # A record still "running" whose process died is finished by the next sync; only a recent one counts.
    recent = now - timedelta(seconds=SYNC_LEASE_TTL)
    running = SyncRun.objects.filter(status=SyncRun.Status.RUNNING, started_at__gt=recent).order_by("-pk").first()
    if running is not None:
        return f"Sync {running.pk} is running; try again when it has finished."
    if Lease.objects.filter(name=SYNC_LEASE, expires_at__gt=now).exists():
        return "A sync is running (it holds the alloy-sync lease); try again when it has finished."
    queued = Lease.objects.filter(name=SYNC_QUEUED_LEASE, expires_at__gt=now).first()
    if queued is not None:
        return (
            f"A sync is queued (since {queued.acquired_at.isoformat()}) and no worker has run it yet; "
            f"try again when it has run (or after {SYNC_QUEUED_TTL:g} s if no worker takes it)."
        )
    return None


class SyncPagination(NewestFirstCursorPagination):
    time_field = "started_at"


class SyncRunViewSet(viewsets.GenericViewSet[SyncRun]):
    """Syncs from Alloy, newest first; POST starts one."""

    parser_classes = [JSONParser]
    queryset = SyncRun.objects.all()
    serializer_class = SyncRunSerializer
    pagination_class = SyncPagination
    lookup_value_regex = ID_REGEX
    action_permissions = {"create": ["alloysync.view_syncrun", "alloysync.run_sync"]}

    @extend_schema(
        summary="List syncs, newest first",
        responses={200: SyncRunSerializer(many=True), **BAD_REQUEST, **COMMON_ERRORS},
    )
    def list(self, request: Request) -> Response:
        refuse_unknown_parameters(request, PAGE_PARAMETERS["cursor"])
        page = self.paginate_queryset(SyncRun.objects.all())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="One sync",
        parameters=[ID_PARAMETER],
        responses={
            200: SyncRunSerializer,
            404: OpenApiResponse(ERROR, description="No sync with this id."),
            **COMMON_ERRORS,
        },
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        run = SyncRun.objects.filter(pk=object_id(pk)).first()
        if run is None:
            raise NotFound("No sync with this id.")
        return Response(self.get_serializer(run).data)

    @extend_schema(
        summary="Start a sync",
        description=(
            "Queues a sync for a worker and answers at once; its record appears in the list when it "
            "starts. 409 while another sync runs or one queued here has not run yet (for at most "
            f"{SYNC_QUEUED_TTL:g} s if no worker takes it); 503 when Alloy is not configured."
        ),
        request=SyncRequestSerializer,
        examples=[
            OpenApiExample("The schedule's choice", value={}, request_only=True),
            OpenApiExample("A complete read", value={"full": True}, request_only=True),
        ],
        responses={
            202: QUEUED,
            **BAD_REQUEST,
            409: OpenApiResponse(ERROR, description="A sync is running or queued: detail says which."),
            503: OpenApiResponse(ERROR, description="Alloy is not configured: detail names the settings."),
            **COMMON_ERRORS,
        },
    )
    def create(self, request: Request) -> Response:
        body = SyncRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if not alloy_configured():
            raise Unavailable("Alloy is not configured: set ALLOY_API_KEY and ALLOY_JOB_DESIGN to sync.")
        busy = sync_under_way()
        if busy:
            raise Conflict(busy)
        # Taken before sending, so two requests close together cannot both queue a sync (the second
        # would be skipped by the worker, with no record, after its 202); the task drops it when done.
        holder = lease_holder()
        if not lease_hold(name=SYNC_QUEUED_LEASE, holder=holder, ttl=SYNC_QUEUED_TTL):
            raise Conflict(sync_under_way() or "A sync is queued; try again when it has run.")
        full = bool(body.validated_data["full"])
        try:
            result = sync_task.apply_async(kwargs={"trigger": SyncRun.Trigger.API, "full": full, "queued_as": holder})
        except (KombuOperationalError, OSError) as exc:
            lease_drop(name=SYNC_QUEUED_LEASE, holder=holder)  # nothing queued: nothing to wait for
            raise Unavailable(
                f"The sync was not queued: the broker did not take the message ({type(exc).__name__}). "
                "Try again once the broker is back."
            ) from None
        except Exception:
            lease_drop(name=SYNC_QUEUED_LEASE, holder=holder)
            raise
        data = {
            "queued": True,
            "full": full,
            "task": sync_task.name,
            "task_id": str(result.id),
            "syncs_url": reverse("api:syncrun-list", request=request),
        }
        return Response(data, status=status.HTTP_202_ACCEPTED)
