"""Sync history. Field names are public (the README's "Syncing from Alloy"): operators query them."""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Q


class SyncRun(models.Model):
    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        COMMAND = "command", "Command"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        REFUSED = "refused", "Refused"

    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
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
