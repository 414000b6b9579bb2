"""Sync history and what alloysync owes Alloy, in the admin: both read-only."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from alloysync.models import ItemState, SyncRun
from scheduler.admin_helpers import site_time, site_time_cell, status_badge
from scheduler.charts import duration_text

# What a sync did, as counted in SyncRun; shown in the list and on each run's page.
COUNTS = ["items_read", "created", "updated", "unchanged", "removed", "invalid", "requests"]
# A run's page: all of it read-only, since a sync's record is history. A tuple of names, which both
# ``fields`` and ``readonly_fields`` accept as they are typed.
DETAIL_FIELDS = (
    "trigger",
    "mode",
    "status_shown",
    "started",
    "finished",
    "duration_shown",
    *COUNTS,
    "message",
    "invalid_items",
)


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin[SyncRun]):
    # Fits 1280 px: trigger and mode share a column, as do the changes; "unchanged" and "requests" are on
    # the run's page.
    list_display = [
        *("id", "kind", "status_shown", "started", "duration_shown"),
        *("read", "changes", "invalid", "message_short"),
    ]
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
        return run.message[:60] + ("…" if len(run.message) > 60 else "")

    @admin.display(description="Sync", ordering="trigger")
    def kind(self, run: SyncRun) -> SafeString:
        # The mode's code, not its long label: the label is on the run's page and in the filter.
        return format_html("{}<br><small>{}</small>", run.get_trigger_display(), run.mode)

    @admin.display(description="Status", ordering="status")
    def status_shown(self, run: SyncRun) -> SafeString:
        # Sync outcomes share the job runs' colours: failed red, succeeded green.
        return status_badge(run.status, run.get_status_display())

    @admin.display(description="Started", ordering="started_at")
    def started(self, run: SyncRun) -> SafeString:
        return site_time_cell(run.started_at)

    @admin.display(description="Finished", ordering="finished_at")
    def finished(self, run: SyncRun) -> str:
        return site_time(run.finished_at)

    @admin.display(description="Duration")
    def duration_shown(self, run: SyncRun) -> SafeString:
        return format_html('<span style="white-space:nowrap">{}</span>', duration_text(run.duration))

    @admin.display(description="Read", ordering="items_read")
    def read(self, run: SyncRun) -> str:
        return f"{run.items_read:,}"

    @admin.display(description="Changes")
    def changes(self, run: SyncRun) -> SafeString:
        # One short line each: the list's headers do not wrap, so three count columns cost more than one.
        return format_html(
            '<span style="white-space:nowrap">{} created<br>{} updated<br>{} removed</span>',
            f"{run.created:,}",
            f"{run.updated:,}",
            f"{run.removed:,}",
        )

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


# ItemState's time fields and what shows each with its zone.
TIMES = {"dirty_since": "dirty", "next_attempt_at": "next_attempt", "written_at": "written_time"}


@admin.register(ItemState)
class ItemStateAdmin(admin.ModelAdmin[ItemState]):
    """What alloysync has written, or still owes, onto each Alloy item; written by workers only."""

    list_display = ["item_id", "shown_status", "dirty", "attempts", "next_attempt", "error_short", "refusal"]
    list_filter = [_WritePending]
    search_fields = ["item_id"]
    # Every field, its times shown with their zone.
    readonly_fields = [TIMES.get(field.name, field.name) for field in ItemState._meta.fields if field.name != "id"]

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

    @admin.display(description="Owed since", ordering="dirty_since")
    def dirty(self, state: ItemState) -> SafeString:
        return site_time_cell(state.dirty_since)

    @admin.display(description="Next attempt", ordering="next_attempt_at")
    def next_attempt(self, state: ItemState) -> SafeString:
        return site_time_cell(state.next_attempt_at)

    @admin.display(description="Written at", ordering="written_at")
    def written_time(self, state: ItemState) -> str:
        return site_time(state.written_at)

    @admin.display(description="Last error")
    def error_short(self, state: ItemState) -> str:
        return state.last_error[:120]
