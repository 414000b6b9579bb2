"""Sync history and what alloysync owes Alloy, in the admin: both read-only."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from alloysync.models import ItemState, SyncRun

# What a sync did, as counted in SyncRun; shown in the list and on each run's page.
COUNTS = ["items_read", "created", "updated", "unchanged", "removed", "invalid", "requests"]
# A run's page: all of it read-only, since a sync's record is history. A tuple of names, which both
# ``fields`` and ``readonly_fields`` accept as they are typed.
DETAIL_FIELDS = (
    "trigger",
    "mode",
    "status",
    "started_at",
    "finished_at",
    "duration",
    *COUNTS,
    "message",
    "invalid_items",
)


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin[SyncRun]):
    list_display = ["id", "trigger", "mode", "status", "started_at", "duration", *COUNTS, "message_short"]
    list_filter = ["status", "trigger", "mode"]
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


class _WritePending(admin.SimpleListFilter):
    title = "write to Alloy"
    parameter_name = "pending"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Pending"), ("failing", "Failing"), ("no", "Up to date")]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() == "yes":
            return queryset.filter(dirty_since__isnull=False)
        if self.value() == "failing":
            return queryset.exclude(last_error="").filter(dirty_since__isnull=False)
        if self.value() == "no":
            return queryset.filter(dirty_since__isnull=True)
        return queryset


@admin.register(ItemState)
class ItemStateAdmin(admin.ModelAdmin[ItemState]):
    """What alloysync has written, or still owes, onto each Alloy item; written by workers only."""

    list_display = ["item_id", "shown_status", "dirty_since", "attempts", "next_attempt_at", "error_short", "refusal"]
    list_filter = [_WritePending]
    search_fields = ["item_id"]
    readonly_fields = [field.name for field in ItemState._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Alloy shows")
    def shown_status(self, state: ItemState) -> str:
        # The status word as last written or read, whatever the attribute's code.
        words = {"invalid", "paused", "failed", "succeeded", "scheduled"}
        return next((value for value in state.written.values() if value in words), "")

    @admin.display(description="Last error")
    def error_short(self, state: ItemState) -> str:
        return state.last_error[:120]
