"""Celery tasks: thin interfaces over the sync service."""

import logging

from celery import shared_task

# Imported for their tasks: the worker registers what alloysync.tasks imports.
from alloysync import tasks_webhook, tasks_write_back  # noqa: F401
from alloysync.models import SyncRun
from alloysync.sync import SyncAlreadyRunning, alloy_sync
from scheduler.leases import lease_drop

logger = logging.getLogger(__name__)

# A sync renews its lease while it reads; this limit stops one that hangs beyond any reason.
SYNC_TIME_LIMIT = 25 * 60


#: The lease a sync the API queued holds until a worker has run it: a second POST /syncs/ meanwhile is
#: a 409, not a 202 for a sync that would be skipped ("another sync is running") with no record.
SYNC_QUEUED_LEASE = "alloy-sync-queued"
#: Seconds the queued lease lasts: a message lost (a broker restarted, no worker) blocks the API's syncs
#: this long at most; a worker that picks the message up later runs it all the same.
SYNC_QUEUED_TTL = 120.0


@shared_task(name="alloysync.sync", time_limit=SYNC_TIME_LIMIT)
def sync(trigger: str = SyncRun.Trigger.SCHEDULE, full: bool = False, queued_as: str | None = None) -> str:
    """The scheduled sync (beat sends it every ALLOY_SYNC_INTERVAL seconds), or one a webhook or the API
    asked for (``trigger="webhook"`` or ``"api"``); incremental unless a full read is due or ``full``.

    ``queued_as``: the holder of the ``SYNC_QUEUED_LEASE`` the API took for this sync, released when the
    sync has ended (run, failed or skipped); while it runs, its own lease answers the API's 409.
    """
    if trigger not in (SyncRun.Trigger.SCHEDULE, SyncRun.Trigger.WEBHOOK, SyncRun.Trigger.API):
        trigger = SyncRun.Trigger.SCHEDULE  # a message from elsewhere cannot record itself as anything else
    try:
        outcome = alloy_sync(trigger=trigger, mode=SyncRun.Mode.FULL if full is True else None)
    except SyncAlreadyRunning as exc:
        logger.info("alloysync.sync: %s", exc)
        return "skipped: another sync is running"
    finally:
        if isinstance(queued_as, str):
            lease_drop(name=SYNC_QUEUED_LEASE, holder=queued_as)
    return outcome.run.status
