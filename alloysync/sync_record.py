"""A sync's ``SyncRun``: opened when the sync holds the lease, finished whatever happens.

Finishing cannot fail on the values it records: item ids, titles and messages come from Alloy and
may hold anything, so each is made storable and capped first (``scheduler.storable``), the list of
invalid items is capped, and a record the database still refuses is saved without its details.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, transaction
from django.utils import timezone

from alloysync.metrics import sync_counted
from alloysync.models import SyncRun
from alloysync.plan import SyncPlan
from alloysync.sync_alerts import sync_run_alerts
from alloysync.sync_lease import SYNC_LEASE, SyncAlreadyRunning, SyncLease
from scheduler.models import Lease
from scheduler.storable import storable_text

# The sync's one line per sync keeps the logger name operators filter on.
logger = logging.getLogger("alloysync.sync")

#: Invalid items listed in one record; the count (``invalid``) covers them all.
MAX_LISTED_ERRORS = 1000
#: Characters kept of a record's message and of each listed item's message.
MAX_MESSAGE_CHARS = 4000


def sync_run_start(*, trigger: str, lease: SyncLease, mode: str = SyncRun.Mode.FULL) -> SyncRun:
    """Take the sync lease and record a running SyncRun; raise SyncAlreadyRunning if another holds it."""
    if not lease.take():
        holder = Lease.objects.filter(name=SYNC_LEASE).values_list("holder", "acquired_at").first()
        since = f" ({holder[0]}, since {holder[1]:%Y-%m-%d %H:%M:%S} UTC)" if holder else ""
        raise SyncAlreadyRunning(f"another sync is running{since}; this one did nothing")
    now = timezone.now()
    # Whoever holds the lease is the only sync alive: one still marked running died on the way.
    for pk, abandoned_mode in SyncRun.objects.filter(status=SyncRun.Status.RUNNING).values_list("pk", "mode"):
        with transaction.atomic():  # counted failed with the change that ends it
            abandoned = SyncRun.objects.filter(pk=pk, status=SyncRun.Status.RUNNING).update(
                status=SyncRun.Status.FAILED, finished_at=now, message="abandoned: the process running it stopped"
            )
            if abandoned:
                sync_counted(mode=abandoned_mode, status=SyncRun.Status.FAILED)
    return SyncRun.objects.create(trigger=trigger, mode=mode, started_at=now, status=SyncRun.Status.RUNNING)


def sync_run_mode_record(run: SyncRun, mode: str) -> None:
    """Record the mode as soon as the sync has chosen it: a sync under way shows what it is doing."""
    if run.mode != mode:
        run.mode = mode
        SyncRun.objects.filter(pk=run.pk).update(mode=mode)


def sync_run_finish(
    run: SyncRun, plan: SyncPlan, *, earlier: SyncPlan | None = None, requests: int, status: str, message: str
) -> SyncRun:
    """Record how the sync ended and log one line; counts of changes only if they were applied.

    ``earlier`` is a partial read this sync applied before it went on to a full one (``plan``): its
    reads and changes are counted too; the full read's invalid items are the whole list.
    """
    finished_at = timezone.now()
    run.status, run.finished_at, run.requests = status, finished_at, requests
    run.message = _message(message, plan)
    run.items_read, run.unchanged, run.invalid = plan.items_read, plan.unchanged, len(plan.errors)
    run.errors = [_storable_error(error) for error in plan.errors[:MAX_LISTED_ERRORS]]
    applied = status == SyncRun.Status.SUCCEEDED
    run.created = plan.created if applied else 0
    run.updated = plan.updated if applied else 0
    run.removed = len(plan.changes.remove) if applied else 0
    if earlier is not None:  # applied, or there would have been no full read after it
        run.items_read += earlier.items_read
        run.created += earlier.created
        run.updated += earlier.updated
        run.removed += len(earlier.changes.remove)
    with transaction.atomic():  # counted with the record of its end: once
        _save(run)
        _count(run)
    _log(run, requests)
    sync_run_alerts(run)  # failing N times in a row, or working again: told once per change
    return run


def _message(message: str, plan: SyncPlan) -> str:
    if len(plan.errors) > MAX_LISTED_ERRORS:
        listed = f"the first {MAX_LISTED_ERRORS} of {len(plan.errors)} invalid items are listed"
        message = f"{message}; {listed}" if message else listed
    return storable_text(message, MAX_MESSAGE_CHARS)


def _storable_error(error: dict[str, str]) -> dict[str, str]:
    return {
        "item_id": storable_text(error["item_id"], 100),
        "title": storable_text(error["title"], 300),
        "message": storable_text(error["message"], MAX_MESSAGE_CHARS),
    }


def _save(run: SyncRun) -> None:
    try:
        with transaction.atomic():  # a savepoint inside a caller's transaction: the retry below still runs
            run.save()
    except DatabaseError as exc:
        # Not foreseen (every value was made storable): keep the outcome, drop the details.
        logger.exception("sync %s: its record was refused; saving it without details", run.pk)
        run.errors = []
        run.message = storable_text(f"{run.message[:200]} (details could not be recorded: {type(exc).__name__})", 400)
        run.save()


def _count(run: SyncRun) -> None:
    try:
        with transaction.atomic():  # a savepoint: the record stands if the count is refused
            sync_counted(mode=run.mode, status=run.status)
    except DatabaseError:
        logger.exception("sync %s: could not be counted into the metrics", run.pk)


def _log(run: SyncRun, requests: int) -> None:
    applied = run.status == SyncRun.Status.SUCCEEDED
    log = logger.info if applied else logger.warning
    seconds = run.duration.total_seconds() if run.duration else 0.0
    # LogRecord owns "created": the counts go out under names of their own.
    counted = ("items_read", "created", "updated", "unchanged", "removed", "invalid")
    counts = {f"sync_{name}": getattr(run, name) for name in counted}
    log(
        "sync %s %s in %.1f s: %s, %d requests%s",
        *(run.pk, run.status, seconds, run.summary(), requests, f": {run.message}" if run.message else ""),
        extra={"sync_id": run.pk, "status": run.status, "seconds": seconds, "requests": requests, **counts},
    )
