"""Alerts in the admin: what was told, when, on which channel, and why a send failed. Read-only.

Registered from ``SchedulerConfig.ready`` (the job and run admin is another module's). An alert is a
record of what operators were told: nobody edits or adds one; the sweep retries the unsent.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from scheduler.admin_helpers import site_time
from scheduler.alert_channels import ALERT_MAX_ATTEMPTS, alert_is_pending
from scheduler.models import Alert

DETAIL_FIELDS = (
    "kind",
    "subject",
    "job_link",
    "run_link",
    "created",
    "emailed",
    "posted",
    "attempts",
    "delivery",
    "last_error",
    "text",
)


class AlertAdmin(admin.ModelAdmin[Alert]):
    list_display = ["created", "kind", "subject", "emailed", "posted", "delivery"]
    list_filter = ["kind"]
    search_fields = ["subject"]
    date_hierarchy = "created_at"
    list_select_related = ["job"]
    fields = DETAIL_FIELDS
    readonly_fields = DETAIL_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Created", ordering="created_at")
    def created(self, alert: Alert) -> str:
        return site_time(alert.created_at)

    @admin.display(description="E-mailed", ordering="emailed_at")
    def emailed(self, alert: Alert) -> str:
        return site_time(alert.emailed_at)

    @admin.display(description="Webhook took it", ordering="posted_at")
    def posted(self, alert: Alert) -> str:
        return site_time(alert.posted_at)

    @admin.display(description="Delivery")
    def delivery(self, alert: Alert) -> SafeString:
        """Sent, still being tried (with why), or given up: what an operator needs to know of a send."""
        if not alert_is_pending(alert):
            return format_html("{}", "sent" if (alert.emailed_at or alert.posted_at) else "recorded (no channel)")
        if not alert.attempts:
            return format_html("{}", "queued")
        if alert.attempts >= ALERT_MAX_ATTEMPTS:
            return format_html('<strong style="color:#c62828">given up after {} tries</strong>', alert.attempts)
        return format_html('<span style="color:#c62828">{} tries so far</span>', alert.attempts)

    @admin.display(description="Job")
    def job_link(self, alert: Alert) -> SafeString | str:
        if alert.job_id is None:
            return "—"
        url = reverse("admin:scheduler_job_change", args=[alert.job_id])
        return format_html('<a href="{}">{}</a>', url, alert.job or f"job {alert.job_id}")

    @admin.display(description="Run")
    def run_link(self, alert: Alert) -> SafeString | str:
        if alert.run_id is None:
            return "—"
        return format_html(
            '<a href="{}">run {}</a>', reverse("admin:scheduler_jobrun_change", args=[alert.run_id]), alert.run_id
        )


def register(site: admin.AdminSite) -> None:
    if not site.is_registered(Alert):
        site.register(Alert, AlertAdmin)
