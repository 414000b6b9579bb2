"""Beat's scheduler: cost per tick follows what changed and what is due, not how many jobs exist.

django-celery-beat's DatabaseScheduler holds every entry in memory, checks them all on every tick and
reloads them all when any row changes. ``JobScheduler`` keeps the same PeriodicTask rows as the
schedule of record (the admin and the sync work unchanged) and an indexed next-due time per task in
the database (``ScheduleState``). Each tick:

1. renews the leader lease (every third of its lifetime); a beat without it only waits;
2. picks up the rows changed since the last tick (by ``date_changed``; every 15 s it also looks a
   minute further back, for late commits) and recomputes their due time;
3. claims what is due, advancing those rows in the same transaction, and sends it.

Any number of beats may run; one sends. A follower that takes over reads the due times the leader
left in the database, so nothing due is sent twice and nothing is reloaded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from celery.beat import ScheduleEntry, Scheduler
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from django_celery_beat.schedulers import ModelEntry

from scheduler.beat.claim import Dispatch, schedule_claim_due
from scheduler.beat.pickup import PICKUP_OVERLAP, schedule_cursor, schedule_pick_up_changes
from scheduler.leases import BEAT_LEASE, lease_hold, lease_holder, lease_release

logger = logging.getLogger(__name__)


class JobScheduler(Scheduler):
    """Celery beat's scheduler (``CELERY_BEAT_SCHEDULER = "scheduler.beat:JobScheduler"``): sends
    what is due while it holds the ``beat`` lease; holds nothing in memory."""

    #: Claimed and sent per transaction; a full batch makes the next tick come at once.
    batch_size = 500
    #: Seconds of work one tick may do (half picking up changes, half claiming); the rest waits for
    #: the next tick, which comes at once. Keeps the lease renewed and the loop responsive whatever
    #: one tick meets.
    tick_budget = 4.0
    #: Every tick reads the rows changed after the newest one seen; this often it also looks back
    #: PICKUP_OVERLAP, for rows committed late (a long sync) or stamped by a slow clock.
    look_back_every = 15.0
    #: This often, every row is compared with its state (one query returning only the rows that
    #: differ): a safety net for rows written behind beat's back with an old date_changed.
    reconcile_every = 3600.0

    def __init__(self, *args: Any, clock: Callable[[], float] = time.monotonic, **kwargs: Any) -> None:
        """Celery's arguments (``app``, ``max_interval``...); ``clock`` gives the seconds that pace
        lease renewal, look-back and reconcile (monotonic; tests pass their own)."""
        self.clock = clock
        self.holder = lease_holder()
        self.is_leader = False
        self._renewed_at = 0.0
        self._looked_back_at = 0.0
        self._reconciled_at = clock()
        self._changes_since: datetime | None = None
        self._started = False
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        """The service's own entries (CELERY_BEAT_SCHEDULE) become PeriodicTask rows, as with
        DatabaseScheduler, so they show in the admin and are scheduled like the rest."""
        for name, entry in self.app.conf.beat_schedule.items():
            ModelEntry.from_entry(name, app=self.app, **entry)

    # celery-types declares ``schedule`` a plain attribute; in Celery it is a property (get/set
    # ``self.data``), and this one is read-only on purpose: nothing is ever put in it.
    @property
    def schedule(self) -> dict[str, ScheduleEntry]:  # type: ignore[override]
        return {}  # nothing is held in memory: the database is the schedule

    @property
    def _max_sleep(self) -> float:
        """``max_interval``: Celery's ``__init__`` always sets it (the argument, beat_max_loop_interval
        or Scheduler's 300 s default); only the argument is ever None, which the stub does not tell."""
        if self.max_interval is None:
            raise RuntimeError("beat's max_interval is unset; Scheduler.__init__ was not run")
        return self.max_interval

    @property
    def info(self) -> str:
        return f"    . leader lease holder -> {self.holder}"

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """One pass: renew the lease, pick up changes, claim and send what is due.

        Returns the seconds beat sleeps before the next tick: 0 when more is due at once, else until
        the next due time, at most ``max_interval``. Never raises for a lost database.
        """
        # One connection for the life of beat (no per-tick reconnect); a failed one is replaced.
        try:
            if not self._hold_lease():
                return min(self._max_sleep, settings.BEAT_LEASE_TTL / 3)
            return self._dispatch_due()
        except DatabaseError:
            # The database restarts or fails over: send nothing blind, reconnect and try again.
            logger.exception("beat %s cannot reach the database; retrying", self.holder)
            self.is_leader = False
            connection.close()
            return self._max_sleep

    def _dispatch_due(self) -> float:
        now = timezone.now()
        if not self._started:
            # Resume from the newest change already picked up (by any beat), instead of comparing
            # every row: start-up then costs the same for a thousand jobs as for fifty thousand.
            self._changes_since, self._started = schedule_cursor(), True
        if self.clock() - self._reconciled_at >= self.reconcile_every:
            self._changes_since, self._reconciled_at = None, self.clock()
        look_back = timedelta(0)
        if self.clock() - self._looked_back_at >= self.look_back_every:
            look_back, self._looked_back_at = PICKUP_OVERLAP, self.clock()
        since = self._changes_since
        picked, self._changes_since = schedule_pick_up_changes(
            since=since, now=now, look_back=look_back, budget=self.tick_budget / 2
        )
        if picked:
            logger.info("beat picked up %d changed periodic task(s)", picked)
        if picked and self._changes_since == since:
            # A full batch, or the budget ran out: more changed rows may wait, and due times come
            # after they are all known (a pause among them must not be sent).
            return 0
        claim = schedule_claim_due(
            now=now,
            horizon=now + timedelta(seconds=self._max_sleep),
            catchup_window=timedelta(seconds=settings.JOB_CATCHUP_WINDOW),
            limit=self.batch_size,
            budget=self.tick_budget / 2,
        )
        self._send(claim.dispatches)
        if claim.skipped:
            logger.warning("beat recorded %d run(s) missed too long ago as skipped", claim.skipped)
        if claim.more_due:
            return 0
        if claim.next_due_at is None:
            return self._max_sleep
        return max(0.0, min(self._max_sleep, (claim.next_due_at - timezone.now()).total_seconds()))

    def _send(self, dispatches: list[Dispatch]) -> None:
        if not dispatches:
            return
        with self.app.producer_or_acquire() as producer:
            for dispatch in dispatches:
                try:
                    self.app.send_task(
                        dispatch.task, dispatch.args, dispatch.kwargs, producer=producer, **dispatch.options
                    )
                except Exception:  # one unsendable message must not stop the others
                    logger.exception("beat could not send %s%s", dispatch.task, dispatch.args)
        logger.info("beat sent %d due task(s)", len(dispatches))

    def _hold_lease(self) -> bool:
        ttl = settings.BEAT_LEASE_TTL
        if self.is_leader and self.clock() - self._renewed_at < ttl / 3:
            return True  # renewed recently enough: spare the database a write on every tick
        leader = lease_hold(name=BEAT_LEASE, holder=self.holder, ttl=ttl)
        if leader:
            self._renewed_at = self.clock()
        if leader and not self.is_leader:
            logger.info("beat %s is now the leader and sends due tasks", self.holder)
        elif self.is_leader and not leader:
            logger.warning("beat %s lost the leader lease; waiting", self.holder)
        self.is_leader = leader
        return leader

    def sync(self) -> None:
        """Nothing to write back: due times are advanced when claimed."""

    def close(self) -> None:
        if self.is_leader:
            try:
                lease_release(name=BEAT_LEASE, holder=self.holder)
            except DatabaseError:
                logger.exception("beat %s could not release its lease; it lapses by itself", self.holder)
        super().close()
