"""Celery tasks that read the items Alloy's workflows named: a thin interface over alloysync.webhook_reads."""

import logging

from celery import shared_task

from alloysync.webhook_reads import pending_items_read

logger = logging.getLogger(__name__)

# A read is at most READ_BATCH GETs, each retried within the client's own limits; past this it hangs.
READ_ITEMS_TIME_LIMIT = 10 * 60


@shared_task(name="alloysync.read_items", time_limit=READ_ITEMS_TIME_LIMIT)
def read_items() -> str:
    """Read the pending items: sent by the webhook a second after a call, and by beat every 30 s."""
    outcome = pending_items_read()
    if outcome is None:
        return "nothing to read"  # beat's every 30 s, mostly: not worth a log line
    logger.info("alloysync.read_items: %s", outcome)
    return outcome
