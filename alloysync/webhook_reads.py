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

import logging
from collections.abc import Sequence

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from alloysync.models import PendingItemRead
from scheduler.leases import lease_hold, lease_holder

logger = logging.getLogger(__name__)

READ_ITEMS_TASK = "alloysync.read_items"
SYNC_TASK = "alloysync.sync"
#: Seconds between a call and its read: calls about other items in the meantime join that read.
READ_DELAY = 1
#: Calls naming no item queue at most one sync in this many seconds (the lease below says when).
WEBHOOK_SYNC_SPACING = 10.0
WEBHOOK_SYNC_LEASE = "alloy-webhook-sync"
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
    transaction.on_commit(lambda: _send(SYNC_TASK, countdown=READ_DELAY, expires=settings.ALLOY_SYNC_INTERVAL))
    return True


def _send(task: str, *, countdown: float, expires: float | None = None) -> bool:
    try:
        current_app.send_task(task, countdown=countdown, expires=expires, retry=True, retry_policy=_PUBLISH_RETRY)
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
