"""Celery task that writes each job's state back onto its Alloy item: an interface over ``write_back``."""

import logging

from celery import shared_task

from alloysync.write_back import write_back_pass

logger = logging.getLogger(__name__)

# A pass sends at most ALLOY_WRITE_RATE edits, each bounded by ALLOY_TIMEOUT; this stops one that hangs.
WRITE_BACK_TIME_LIMIT = 15 * 60


@shared_task(name="alloysync.write_back", time_limit=WRITE_BACK_TIME_LIMIT)
def write_back() -> str:
    """Write what is due as far as the rate budget allows, then end (beat sends it every
    WRITE_BACK_INTERVAL seconds; what is left waits for the next tick)."""
    return str(write_back_pass())
