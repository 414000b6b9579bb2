"""Beat's scheduler: django-celery-beat's DatabaseScheduler behind a leader lease.

Any number of beats may run; only the one holding the ``beat`` lease sends due tasks. The leader
renews the lease every tick (at most every ``beat_max_loop_interval`` seconds, 5 here); the others
try to take it at the same pace and do nothing else. If the leader dies, its lease lapses after
``BEAT_LEASE_TTL`` seconds and the first follower to try takes over, re-reading the schedule from the
database (where the old leader saved each entry's last run right after sending it).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django_celery_beat.schedulers import DatabaseScheduler

from scheduler.leases import lease_hold, lease_release

logger = logging.getLogger(__name__)

LEASE_NAME = "beat"


class LeaderDatabaseScheduler(DatabaseScheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.is_leader = False
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._hold_lease():
            return min(self.max_interval, settings.BEAT_LEASE_TTL / 3)
        return super().tick(*args, **kwargs)

    def _hold_lease(self) -> bool:
        try:
            close_old_connections()
            leader = lease_hold(name=LEASE_NAME, holder=self.holder, ttl=settings.BEAT_LEASE_TTL)
        except DatabaseError:
            # Without the database no beat can know it leads; dispatching blind could double-send.
            logger.exception("beat %s could not reach the database to renew its lease; not sending", self.holder)
            leader = False
        if leader and not self.is_leader:
            logger.info("beat %s is now the leader and sends due tasks", self.holder)
            # Re-read every entry: the previous leader's last-run times are in the database.
            self._initial_read = True
            self._heap = None
        elif self.is_leader and not leader:
            logger.warning("beat %s lost the leader lease; waiting", self.holder)
        elif not leader and not self.is_leader:
            logger.debug("beat %s waits: another beat holds the lease", self.holder)
        self.is_leader = leader
        return leader

    def close(self) -> None:
        if self.is_leader:
            try:
                lease_release(name=LEASE_NAME, holder=self.holder)
            except DatabaseError:
                logger.exception("beat %s could not release its lease; it lapses by itself", self.holder)
        super().close()
