"""Sync history. Field names are public (the README's "Syncing from Alloy"): operators query them."""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Q


class SyncRun(models.Model):
    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        COMMAND = "command", "Command"
        WEBHOOK = "webhook", "Alloy webhook"
        API = "api", "API"

    class Mode(models.TextChoices):
        FULL = "full", "Full (every item)"
        INCREMENTAL = "incremental", "Incremental (items edited since the previous sync)"
        ITEMS = "items", "Items (named by a webhook)"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        REFUSED = "refused", "Refused"

    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    mode = models.CharField(
        max_length=16, choices=Mode.choices, default=Mode.FULL, help_text="What was read: every item, or only some."
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    settings_digest = models.CharField(
        max_length=64,
        blank=True,
        help_text="Fingerprint of the ALLOY_* settings that decide what an item means; a change calls for a full read.",
    )
    items_read = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0, help_text="Jobs created, or scheduled again after removal.")
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0, help_text="HTTP requests made to Alloy, retries included.")
    errors = models.JSONField(default=list, blank=True, help_text='Invalid items: [{"item_id", "title", "message"}].')
    message = models.TextField(blank=True)

    class Meta:
        constraints = [
            # At most one record says "running". The lock itself is the ``alloy-sync`` lease; this
            # index is a backstop should two syncs ever both believe they hold it.
            models.UniqueConstraint(fields=["status"], condition=Q(status="running"), name="syncrun_one_running")
        ]
        indexes = [models.Index(fields=["-started_at"]), models.Index(fields=["status", "-finished_at"])]
        ordering = ["-started_at", "-id"]
        # Starting a sync is neither adding a record by hand nor a view: the API's POST /api/v1/syncs/.
        permissions = [("run_sync", "Can start an Alloy sync")]

    def __str__(self) -> str:
        return f"sync {self.pk} ({self.status})"

    @property
    def duration(self) -> timedelta | None:
        return self.finished_at - self.started_at if self.finished_at else None

    def summary(self) -> str:
        return (
            f"read {self.items_read} items: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.removed} removed, {self.invalid} invalid"
        )


class ItemState(models.Model):
    """What alloysync knows of one Alloy item beyond its job: why it was refused, what alloysync last
    wrote onto it, and whether that is still to be written.

    One row per item that has a job's state to show in Alloy, or a refusal to remember (an invalid item
    that never became a job has no Job row to hold its error). Written by syncs, runs finishing and the
    write-back worker; never by a web request's Alloy call.
    """

    item_id = models.CharField(max_length=64, unique=True)
    refusal = models.TextField(blank=True, help_text="Why the item's latest definition was refused; empty if valid.")
    written = models.JSONField(
        default=dict, blank=True, help_text="Attribute code -> value, as alloysync last wrote or read them in Alloy."
    )
    signature = models.CharField(max_length=64, blank=True, help_text="The item's signature after that write or read.")
    collection = models.CharField(max_length=32, blank=True)
    dirty_since = models.DateTimeField(
        null=True, blank=True, help_text="Since when the state shown in Alloy may be out of date; empty: up to date."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="After a failed write: not before this.")
    attempts = models.PositiveIntegerField(default=0, help_text="Failed writes in a row.")
    last_error = models.TextField(blank=True)
    written_at = models.DateTimeField(null=True, blank=True)
    run_now_pending = models.BooleanField(
        default=False, help_text="A run was queued for the run-now attribute; it is not yet read back as false."
    )
    run_now_signature = models.CharField(
        max_length=64,
        blank=True,
        help_text="The item's signature when that run was queued: the same read again is no new request.",
    )

    class Meta:
        indexes = [models.Index(fields=["dirty_since"], condition=Q(dirty_since__isnull=False), name="itemstate_dirty")]

    def __str__(self) -> str:
        return f"item {self.item_id}"


class PendingItemRead(models.Model):
    """An item an Alloy workflow said changed, waiting for a worker to read it. One row per item: a burst
    of calls about the same item is one read."""

    item_id = models.CharField(max_length=64, primary_key=True)
    requested_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"read {self.item_id}"


class RateBudget(models.Model):
    """Alloy's rate limit for one endpoint as it last reported it (X-Rate-Limit-Remaining and -Reset),
    shared by every process of the deployment so that together they slow down before a 429."""

    endpoint = models.CharField(max_length=128, primary_key=True, help_text='e.g. "POST /api/aqs/query"')
    remaining = models.IntegerField()
    reset_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.endpoint}: {self.remaining} left until {self.reset_at:%H:%M:%S}"


class ItemEdit(models.Model):
    """One edit alloysync sent to Alloy, kept a few minutes: ALLOY_WRITE_RATE counts these over the last minute."""

    sent_at = models.DateTimeField(db_index=True)
    item_id = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"edit of {self.item_id} at {self.sent_at:%H:%M:%S}"
