"""Celery tasks: thin interfaces over the sync service."""

import logging

from celery import shared_task

# Imported for their tasks: the worker registers what alloysync.tasks imports.
from alloysync import tasks_webhook, tasks_write_back  # noqa: F401
from alloysync.models import SyncRun
from alloysync.sync import SyncAlreadyRunning, alloy_sync

logger = logging.getLogger(__name__)

# A sync renews its lease while it reads; this limit stops one that hangs beyond any reason.
SYNC_TIME_LIMIT = 25 * 60


@shared_task(name="alloysync.sync", time_limit=SYNC_TIME_LIMIT)
def sync(trigger: str = SyncRun.Trigger.SCHEDULE, full: bool = False) -> str:
    """The scheduled sync (beat sends it every ALLOY_SYNC_INTERVAL seconds), or one a webhook or the API
    asked for (``trigger="webhook"`` or ``"api"``); incremental unless a full read is due or ``full``."""
    if trigger not in (SyncRun.Trigger.SCHEDULE, SyncRun.Trigger.WEBHOOK, SyncRun.Trigger.API):
        trigger = SyncRun.Trigger.SCHEDULE  # a message from elsewhere cannot record itself as anything else
    try:
        outcome = alloy_sync(trigger=trigger, mode=SyncRun.Mode.FULL if full is True else None)
    except SyncAlreadyRunning as exc:
        logger.info("alloysync.sync: %s", exc)
        return "skipped: another sync is running"
    return outcome.run.status
