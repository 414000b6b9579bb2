"""One sync at a time: the ``alloy-sync`` lease, taken at the start, renewed while Alloy is read,
confirmed in the transaction that writes.

A lease rather than a lock held open: a sync whose process died (or whose database restarted under
it) stops blocking the next one after ``SYNC_LEASE_TTL``, not forever.
"""

from __future__ import annotations

import logging
import threading

from django.db import DatabaseError, connections

from scheduler.leases import lease_hold, lease_holder, lease_release

logger = logging.getLogger(__name__)

SYNC_LEASE = "alloy-sync"
#: Seconds a sync's lease lasts unless renewed; renewed every sixth of that while the sync runs.
SYNC_LEASE_TTL = 300.0


class SyncAlreadyRunning(Exception):
    """Another sync holds the lease."""


class SyncLeaseLost(Exception):
    """Another sync took the lease while this one ran (this one's renewals did not arrive in time)."""


class SyncLease:
    """A sync's hold on the ``alloy-sync`` lease."""

    def __init__(self) -> None:
        self.holder = lease_holder()

    def take(self) -> bool:
        """Take or renew the lease; False if another sync holds it."""
        return lease_hold(name=SYNC_LEASE, holder=self.holder, ttl=SYNC_LEASE_TTL)

    def release(self) -> None:
        lease_release(name=SYNC_LEASE, holder=self.holder)


class LeaseKeeper(threading.Thread):
    """Renews a sync's lease every sixth of its TTL while the sync waits on Alloy.

    A thread, because the waits that matter happen inside one request (a slow page, a retry's
    sleep), where the sync's own code does not run. Should another sync have taken the lease all the
    same (a database away for longer than the TTL), ``lost`` is set; the sync stops at its next page
    and changes nothing.
    """

    def __init__(self, lease: SyncLease) -> None:
        super().__init__(name="alloy-sync-lease", daemon=True)
        self.lease = lease
        self.lost = False
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self._stopping.wait(SYNC_LEASE_TTL / 6):
                self._renew()
        finally:
            connections.close_all()  # this thread's own connections only: they are per thread

    def _renew(self) -> None:
        try:
            if not self.lease.take():
                self.lost = True
                self._stopping.set()
        except DatabaseError as exc:
            # The sync will meet the same database; the lease itself lapses only after its TTL.
            logger.warning("could not renew the sync lease: %s", type(exc).__name__)

    def stop(self) -> None:
        """Stop renewing; returns once the thread has finished (a renewal under way completes)."""
        self._stopping.set()
        if self.is_alive():
            self.join()
