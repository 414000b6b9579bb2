"""One rate budget for the whole deployment: Alloy's limits are per tenant, not per process.

Beat, every worker and every command each hold a client; left to themselves, each paces by its own
answers and together they still exceed the minute. ``DatabasePacer`` keeps each endpoint's budget
(``RateBudget``: what Alloy last said was left, and when it resets) in the database, so a request any
process sends counts against the one budget, by the same policy as ``LocalPacer``
(``alloysync.client.pacing``). ``shared_pacer()`` is the one a process passes to its clients.

Pacing is advisory: a database error never fails a request. The pacer then paces by what this
process has seen (its own ``LocalPacer``) and says so once in the log.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Least

from alloysync.client.pacing import SAME_WINDOW_SECONDS, LocalPacer, Pacer, PacingPolicy, utc_now
from alloysync.models import RateBudget

logger = logging.getLogger(__name__)


class DatabasePacer:
    """Paces every process of a deployment against one budget per endpoint, kept in ``RateBudget``.

    ``before`` takes one request from the endpoint's row with a conditional UPDATE (never below the
    reserve, so two processes cannot both take the last one) and returns the policy's wait;
    ``after`` stores what Alloy said. Inside a transaction it paces locally: the row would stay
    locked until that transaction ended, holding up every other process. ``fallbacks`` counts the
    calls the database could not serve.
    """

    def __init__(self, policy: PacingPolicy | None = None, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.policy = policy or PacingPolicy()
        self._clock = clock
        # What this process has seen: the fallback, and each endpoint's limit (the table has no column for it).
        self._local = LocalPacer(self.policy, clock=clock)
        self._warned = threading.Event()
        self.fallbacks = 0

    def __repr__(self) -> str:
        return "DatabasePacer()"

    def before(self, endpoint: str) -> float:
        if connection.in_atomic_block:
            return self._local.before(endpoint)
        try:
            wait = self._take(endpoint, self._clock())
        except DatabaseError as exc:
            self._fell_back("take a request from", endpoint, exc)
            return self._local.before(endpoint)
        self._local.before(endpoint)  # keep the fallback's count in step
        return wait

    def after(self, endpoint: str, remaining: int | None, reset_at: datetime | None) -> None:
        self._local.after(endpoint, remaining, reset_at)
        if remaining is None or reset_at is None or connection.in_atomic_block:
            return
        try:
            self._store(endpoint, remaining, reset_at, self._clock())
        except DatabaseError as exc:
            self._fell_back("store", endpoint, exc)

    def _take(self, endpoint: str, now: datetime) -> float:
        limit = self._local.limit(endpoint)
        live = RateBudget.objects.filter(endpoint=endpoint, reset_at__gt=now)
        # Conditional: of two processes that read the same count, only one takes the last request
        # above the reserve; the other finds the row at the reserve and waits for the reset.
        took = live.filter(remaining__gt=self.policy.reserve(limit)).update(
            remaining=F("remaining") - 1, updated_at=now
        )
        row = live.values_list("remaining", "reset_at").first()
        if row is None:
            return 0.0  # nothing known, or the window is over: the budget is whole again
        remaining, reset_at = row
        # The count before our take (others may have taken since: a slightly shorter spread, no more).
        return self.policy.wait(remaining + 1 if took else remaining, reset_at, now, limit)

    def _store(self, endpoint: str, remaining: int, reset_at: datetime, now: datetime) -> None:
        # The rules of alloysync.client.pacing.merged_budget, as conditional UPDATEs.
        rows = RateBudget.objects.filter(endpoint=endpoint)
        same_window = timedelta(seconds=SAME_WINDOW_SECONDS)
        current = rows.filter(reset_at__gt=now, reset_at__range=(reset_at - same_window, reset_at + same_window))
        # Within one window Alloy's count only goes down, and requests in flight are not in it yet.
        if current.update(remaining=Least(F("remaining"), Value(remaining)), updated_at=now):
            return
        # A later window, or one that is over, is replaced; a row of a later window than this answer's stays.
        if rows.filter(Q(reset_at__lt=reset_at) | Q(reset_at__lte=now)).update(
            remaining=remaining, reset_at=reset_at, updated_at=now
        ):
            return
        if rows.exists():
            return
        try:
            with transaction.atomic():
                RateBudget.objects.create(endpoint=endpoint, remaining=remaining, reset_at=reset_at, updated_at=now)
        except IntegrityError:
            pass  # another process stored the endpoint first; its figures are as fresh as ours

    def _fell_back(self, action: str, endpoint: str, exc: DatabaseError) -> None:
        self.fallbacks += 1
        if self._warned.is_set():
            logger.debug("Could not %s the shared rate budget of %s: %s", action, endpoint, exc)
            return
        self._warned.set()
        logger.warning(
            "Could not %s the shared rate budget of %s (%s: %s); pacing by this process's own answers.",
            action,
            endpoint,
            type(exc).__name__,
            exc,
        )


@functools.cache
def shared_pacer() -> Pacer:
    """The process's pacer, shared through the database with every other process of the deployment."""
    return DatabasePacer()


__all__ = ["DatabasePacer", "shared_pacer"]
