"""The sync's health: how long since the last successful sync, against ALLOY_SYNC_INTERVAL."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from alloysync.models import SyncRun
from scheduler.health import Check


def sync_check() -> Check:
    if not (settings.ALLOY_API_KEY and settings.ALLOY_JOB_DESIGN):
        return Check(True, "Alloy sync not configured (ALLOY_API_KEY, ALLOY_JOB_DESIGN)")
    last = SyncRun.objects.filter(status=SyncRun.Status.SUCCEEDED).order_by("-finished_at").first()
    allowed = sync_stale_after()
    if last is None:
        return Check(False, "no successful sync yet")
    age = (timezone.now() - last.finished_at).total_seconds()
    if age > allowed:
        return Check(False, f"last successful sync {age:.0f} s ago, more than {allowed:.0f} s")
    return Check(True, f"last successful sync {age:.0f} s ago")


def sync_stale_after() -> float:
    # Two missed or failed syncs in a row are tolerated before the service reports itself unhealthy.
    return 2 * settings.ALLOY_SYNC_INTERVAL + 60
