"""Sync history in the admin: newest first, read-only."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from alloysync.models import SyncRun

# What a sync did, as counted in SyncRun; shown in the list and on each run's page.
COUNTS = ["items_read", "created", "updated", "unchanged", "removed", "invalid", "requests"]
# A run's page: all of it read-only, since a sync's record is history. A tuple of names, which both
# ``fields`` and ``readonly_fields`` accept as they are typed.
DETAIL_FIELDS = ("trigger", "status", "started_at", "finished_at", "duration", *COUNTS, "message", "invalid_items")


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin[SyncRun]):
    list_display = ["id", "trigger", "status", "started_at", "duration", *COUNTS, "message_short"]
    list_filter = ["status", "trigger"]
    date_hierarchy = "started_at"
    fields = DETAIL_FIELDS
    readonly_fields = DETAIL_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Message")
    def message_short(self, run: SyncRun) -> str:
        return run.message[:120]

    @admin.display(description="Invalid items")
    def invalid_items(self, run: SyncRun) -> str:
        if not run.errors:
            return "none"
        rows = ((e.get("item_id", ""), e.get("title", ""), e.get("message", "")) for e in run.errors)
        return format_html("<ul>{}</ul>", format_html_join("", "<li><code>{}</code> {}: {}</li>", rows))
