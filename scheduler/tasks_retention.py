"""Celery task that prunes run history past its retention: an interface over ``scheduler.retention``."""

import logging

from celery import shared_task

from scheduler.retention import PruneAlreadyRunning, history_prune

logger = logging.getLogger(__name__)

# Beat sends it daily; pruning millions of rows takes minutes (see the README's figures). Killed past
# this, the batch under way rolls back, the lease lapses, and tomorrow's prune carries on.
PRUNE_TIME_LIMIT = 6 * 3600


@shared_task(name="scheduler.prune_history", time_limit=PRUNE_TIME_LIMIT)
def prune_history() -> str:
    """Delete runs and sync records past JOB_RUN_RETENTION_DAYS / SYNC_RUN_RETENTION_DAYS; one line a part."""
    try:
        outcomes = history_prune()
    except PruneAlreadyRunning as exc:
        logger.info("prune_history: %s", exc)
        return str(exc)
    lines = [outcome.describe() for outcome in outcomes]
    for line in lines:
        logger.info("prune_history: %s", line)
    return "; ".join(lines)
