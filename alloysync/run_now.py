"""Run now from Alloy: an item read with ALLOY_RUN_NOW_ATTRIBUTE true queues exactly one run.

The request is acknowledged by writing the attribute back to false, through the same paced writer as
every other state (``write_back``): while ``ItemState.run_now_pending`` is set, the false is wanted.

When is a true read a *new* request? Reads are applied one at a time (they share the sync's lease),
in the order they began, so:

- while a request is pending, every true read is that request, whatever the signature (the user
  cannot have set it true again without it having been seen false in between, or our false landing);
- a read showing false ends the request (the user cleared it, or our write landed and was read);
- our write of false landing ends it too, and from then on a true read is a new request, unless
  it is *stale*: begun before our write landed (``read_at`` before ``ItemState.written_at``), or
  showing the very signature that queued the run (``run_now_signature``: the same read again).
  The one race left, a read without ``read_at`` that began before our write and saw a signature
  other than the queuing one, cannot be told from a new click without that time; callers pass it.

An item with no job to run (invalid and never valid, or a removed job) gets no run; the attribute
is still set back to false, and the message says the request was ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from alloysync.item_states import ItemObservation
from alloysync.models import ItemState
from alloysync.write_back_state import WriteBackCodes
from scheduler.models import Job, JobRun
from scheduler.services import job_run_now

logger = logging.getLogger(__name__)

__all__ = ["run_now_observe"]


def run_now_observe(
    observations: Sequence[ItemObservation], *, read_at: datetime | None = None, now: datetime | None = None
) -> int:
    """Queue one run (trigger ``alloy``) for each item newly read with the run-now attribute true, and
    end the pending requests of items read with it false. Returns the number of runs queued.

    ``read_at``: when the read that made these observations began (see the module's account of stale
    reads). Costs one query when no observation shows the attribute true and none is pending.
    """
    code = WriteBackCodes.from_settings().run_now
    if not code or not observations:
        return 0
    now = now or timezone.now()
    by_id = {observation.item_id: observation for observation in observations}
    rows = {row.item_id: row for row in ItemState.objects.filter(item_id__in=list(by_id))}
    requests: list[ItemObservation] = []
    ended: list[str] = []
    for item_id, observation in by_id.items():
        row = rows.get(item_id)
        if observation.values.get(code) is True:
            if row is None or _is_new_request(row, observation, read_at):
                requests.append(observation)
        elif row is not None and row.run_now_pending:
            ended.append(item_id)
    if ended:
        ItemState.objects.filter(item_id__in=ended, run_now_pending=True).update(run_now_pending=False)
    return _queue_runs(requests, now) if requests else 0


def _is_new_request(row: ItemState, observation: ItemObservation, read_at: datetime | None) -> bool:
    if row.run_now_pending:
        return False  # the pending request, read again before our false landed
    if read_at is not None and row.written_at is not None and read_at < row.written_at:
        return False  # begun before our last write landed: Alloy shows the past
    return observation.signature != row.run_now_signature  # the same read that queued, seen again


def _queue_runs(requests: list[ItemObservation], now: datetime) -> int:
    jobs = {
        job.external_id: job
        for job in Job.objects.select_related("periodic_task").filter(
            source=Job.Source.ALLOY, external_id__in=[o.item_id for o in requests], periodic_task__isnull=False
        )
    }
    ItemState.objects.bulk_create([ItemState(item_id=o.item_id) for o in requests], ignore_conflicts=True)
    queued = 0
    for observation in requests:
        job = jobs.get(observation.item_id)
        with transaction.atomic():
            # Compare-and-set, so that the run is queued once even if another reader got here first;
            # the run's message is sent only once this commits (job_run_now).
            taken = ItemState.objects.filter(item_id=observation.item_id, run_now_pending=False).update(
                run_now_pending=True, run_now_signature=observation.signature
            )
            if not taken:
                continue
            ItemState.objects.filter(item_id=observation.item_id, dirty_since__isnull=True).update(dirty_since=now)
            if job is None:
                logger.info("run now from Alloy ignored for item %s: no job to run", observation.item_id)
                continue
            if job.is_paused:
                # Pause belongs to operators; whoever can edit the item in Alloy is not one.
                logger.info("run now from Alloy ignored for item %s: job %s is paused", observation.item_id, job.pk)
                continue
            run = job_run_now(job=job, trigger=JobRun.Trigger.ALLOY)
            queued += 1
            logger.info("run now from Alloy: queued run %s of job %s (item %s)", run.pk, job.pk, observation.item_id)
    return queued
