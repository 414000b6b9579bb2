"""Retention of sync records: the part of every prune (``scheduler.retention``) that alloysync adds.

Registered from ``AlloysyncConfig.ready``, so the daily ``scheduler.prune_history`` task and
``manage.py prune_history`` prune sync records too, while the job engine still knows nothing of Alloy.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings

from alloysync.models import SyncRun
from scheduler.retention import PruneContext, PruneOutcome, rows_prune

#: The latest sync records kept whatever their age, as each job keeps its latest runs.
KEEP_LATEST_SYNCS = 20


def sync_runs_prune(context: PruneContext) -> PruneOutcome:
    """Delete sync records started more than SYNC_RUN_RETENTION_DAYS ago, except those ``sync_runs_kept`` names."""
    days = settings.SYNC_RUN_RETENTION_DAYS
    outcome = PruneOutcome("sync records", "SYNC_RUN_RETENTION_DAYS", days, None, {"sync records": 0})
    if days == 0:
        return outcome
    started = time.monotonic()
    outcome.cutoff = cutoff = context.now - timedelta(days=days)
    kept = sync_runs_kept()
    removed = rows_prune(
        context, SyncRun.objects.all(), "started_at", cutoff, kept=kept, keep_statuses=[SyncRun.Status.RUNNING]
    )
    outcome.removed = {"sync records": removed[SyncRun]}
    outcome.seconds = time.monotonic() - started
    return outcome


def sync_runs_kept() -> set[int]:
    """Ids of sync records that stay whatever their age: the latest ``KEEP_LATEST_SYNCS``, the last
    failed or refused one, and the last successful one of each mode.

    The last successful full sync is what an incremental sync measures itself from (its start and
    settings fingerprint), so deleting it would silently turn every sync into a full read.
    """
    newest = SyncRun.objects.order_by("-started_at", "-id")
    kept = set(newest.values_list("pk", flat=True)[:KEEP_LATEST_SYNCS])
    unhappy = newest.filter(status__in=[SyncRun.Status.FAILED, SyncRun.Status.REFUSED]).values_list("pk", flat=True)
    kept.update(unhappy[:1])
    for mode in SyncRun.Mode.values:
        kept.update(newest.filter(status=SyncRun.Status.SUCCEEDED, mode=mode).values_list("pk", flat=True)[:1])
    return kept
