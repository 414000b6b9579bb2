"""Items named by Alloy's workflows, waiting to be read: recorded by the webhook, queued once per burst.

A call is a hint ("item X changed: read it"), not a change: it only records ``PendingItemRead`` rows
and queues a worker. One row per item, so a burst of calls about one item is one read; a read is
queued only when a row is new, a second after the call, so that the rest of a burst lands in it. A
call about an item already pending moves its ``requested_at`` on instead: a read under way then keeps
the row, and the item is read again afterwards (the edit may have come after that read's GET).

Every failure to queue is covered by beat's ``alloysync.read_items`` entry (every 30 s), which reads
whatever is pending; and by polling, which stays the source of truth.
"""

from __future__ import annotations

import functools
import logging
import operator
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from alloysync.models import PendingItemRead, SyncRun
from alloysync.sync import SyncAlreadyRunning, alloy_sync_items
from scheduler.leases import lease_hold, lease_holder

logger = logging.getLogger(__name__)

READ_ITEMS_TASK = "alloysync.read_items"
SYNC_TASK = "alloysync.sync"
#: Seconds between a call and its read: calls about other items in the meantime join that read.
READ_DELAY = 1
#: Calls naming no item queue at most one sync in this many seconds (the lease below says when).
WEBHOOK_SYNC_SPACING = 10.0
WEBHOOK_SYNC_LEASE = "alloy-webhook-sync"
#: Items one read takes, one GET each; the rest are read next, at once. Alloy allows about 100 GETs
#: a minute and the client paces the second half of that budget over the minute, so 50 go at once and
#: a read never holds the sync's lease (and so the scheduled sync) for long.
READ_BATCH = 50
#: Seconds before a read that found another sync running tries again; at most one such retry is
#: queued per this many seconds (the lease below), however many reads found the sync running.
BUSY_RETRY_DELAY = 5.0
READ_RETRY_LEASE = "alloy-webhook-read-retry"
# One quick retry of the publish, no more: the caller is a web request answering "accepted at once",
# and a lost message only delays the read until beat's sweep.
_PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}


def pending_reads_record(*, item_ids: Sequence[str]) -> bool:
    """Record that ``item_ids`` changed; True if one was not pending yet, and so a read was queued.

    The read is sent once the rows are committed. Two calls racing about a new item may both queue a
    read; the second finds nothing left to read, so that costs a task, not a request to Alloy.
    """
    now = timezone.now()
    with transaction.atomic():
        pending = set(PendingItemRead.objects.filter(item_id__in=item_ids).values_list("item_id", flat=True))
        if pending:
            # A read may be under way: it deletes only rows whose requested_at it saw, so this keeps them.
            PendingItemRead.objects.filter(item_id__in=pending).update(requested_at=now)
        new = [PendingItemRead(item_id=item_id, requested_at=now) for item_id in item_ids if item_id not in pending]
        PendingItemRead.objects.bulk_create(new, ignore_conflicts=True)
        if new:
            transaction.on_commit(pending_reads_queue)
    return bool(new)


def pending_items_read() -> str | None:
    """Read the items pending longest (at most ``READ_BATCH``) and apply them as a sync does.

    Returns what happened, for the task's log line; None if nothing was pending. Rows are deleted only
    after a read that did not fail, and only those whose ``requested_at`` is still what this read saw:
    a call that came during the read (its GET may have been answered before the edit) leaves its row,
    and another read follows at once. A failed read (Alloy away, a wrong key) keeps every row and queues nothing:
    beat's entry tries again in 30 s, so an outage costs a failed SyncRun every 30 s, not a spin.
    """
    pending = dict(
        PendingItemRead.objects.order_by("requested_at", "item_id").values_list("item_id", "requested_at")[:READ_BATCH]
    )
    if not pending:
        return None
    try:
        run = alloy_sync_items(list(pending), trigger=SyncRun.Trigger.WEBHOOK).run
    except SyncAlreadyRunning:
        queued = lease_hold(name=READ_RETRY_LEASE, holder=lease_holder(), ttl=BUSY_RETRY_DELAY)
        if queued:
            pending_reads_queue(countdown=BUSY_RETRY_DELAY)
        return f"another sync is running: {len(pending)} item(s) stay pending" + (
            f", read again in {BUSY_RETRY_DELAY:g} s" if queued else ""
        )
    if run.status == SyncRun.Status.FAILED:
        return f"sync {run.pk} failed: {len(pending)} item(s) stay pending for beat's next alloysync.read_items"
    # Refused (the read would remove too many jobs) is a recorded decision an operator acts on, as for
    # a scheduled sync: reading again would only repeat it.
    _forget(pending)
    if PendingItemRead.objects.exists():
        pending_reads_queue()
    return f"sync {run.pk} {run.status}: read {len(pending)} item(s)"


def _forget(read: dict[str, datetime]) -> None:
    """Delete the rows read, unless a call moved their requested_at on meanwhile (compare-and-delete)."""
    by_time: dict[datetime, list[str]] = defaultdict(list)
    for item_id, requested_at in read.items():
        by_time[requested_at].append(item_id)  # one call's items share one time: a few groups
    unchanged = [Q(requested_at=requested_at, item_id__in=ids) for requested_at, ids in by_time.items()]
    PendingItemRead.objects.filter(functools.reduce(operator.or_, unchanged)).delete()


def pending_reads_queue(*, countdown: float = READ_DELAY) -> bool:
    """Ask a worker to read the pending items in ``countdown`` seconds; False if the broker is away."""
    return _send(READ_ITEMS_TASK, countdown=countdown)


def webhook_sync_queue() -> bool:
    """Queue an incremental sync for a call that names no item; False if one was queued lately.

    Workflows fire per event, so a bulk edit in Alloy can send hundreds of such calls in a second: a
    lease taken for ``WEBHOOK_SYNC_SPACING`` lets the first through and folds the rest into it (the
    sync's own lease would make the extra ones exit at once, but each would still be a message and a
    worker's trip to the database). A change the folded calls announced is read by that sync or by the
    next scheduled one.
    """
    if not lease_hold(name=WEBHOOK_SYNC_LEASE, holder=lease_holder(), ttl=WEBHOOK_SYNC_SPACING):
        return False
    # Like beat's entry: a sync still queued when the next scheduled one is due is pointless.
    transaction.on_commit(
        lambda: _send(
            SYNC_TASK,
            countdown=READ_DELAY,
            expires=settings.ALLOY_SYNC_INTERVAL,
            kwargs={"trigger": SyncRun.Trigger.WEBHOOK},  # the history says who asked
        )
    )
    return True


def _send(task: str, *, countdown: float, expires: float | None = None, kwargs: dict[str, str] | None = None) -> bool:
    try:
        current_app.send_task(
            task, kwargs=kwargs, countdown=countdown, expires=expires, retry=True, retry_policy=_PUBLISH_RETRY
        )
    except (OperationalError, OSError) as exc:
        # The exception's text may quote the broker's address; its type is enough to act on.
        logger.warning(
            "alloysync webhook: could not queue %s (%s); beat's alloysync.read_items entry and the "
            "scheduled sync pick the change up instead",
            task,
            type(exc).__name__,
        )
        return False
    return True
