"""Leases: one holder at a time, kept by renewing, lost by lapsing. Beat elects its leader with one
(``beat``); the Alloy sync keeps to one at a time with another (``alloy-sync``)."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, ExpressionWrapper, F, Q, Value, When
from django.db.models.functions import Now

from scheduler.models import Lease

#: The lease whose holder is the one beat that sends due tasks.
BEAT_LEASE = "beat"


def lease_holder() -> str:
    """A new holder name for this process, ``host:pid:token``, e.g. ``"web-1:4242:9f3c2a1b"``.

    Host and pid tell an operator which process holds a lease; the random token keeps two holders
    in one process (two schedulers in a test, a sync run twice from one shell) from renewing each
    other's lease.
    """
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_hold(*, name: str, holder: str, ttl: float) -> bool:
    """Take or renew the lease for ``ttl`` seconds; True if ``holder`` now holds it.

    A compare-and-set on the row: it succeeds if ``holder`` already has the lease or the lease has
    lapsed. Another process that renews first keeps it, and this call returns False.
    """
    expires = ExpressionWrapper(Now() + Value(timedelta(seconds=ttl)), output_field=DateTimeField())
    renewed = Lease.objects.filter(Q(holder=holder) | Q(expires_at__lte=Now()), name=name).update(
        acquired_at=Case(When(holder=holder, then=F("acquired_at")), default=Now()),
        holder=holder,
        renewed_at=Now(),
        expires_at=expires,
    )
    if renewed:
        return True
    try:
        with transaction.atomic():
            Lease.objects.create(name=name, holder=holder, acquired_at=Now(), renewed_at=Now(), expires_at=expires)
    except IntegrityError:
        return False  # someone else holds it (or took it first)
    return True


def lease_release(*, name: str, holder: str) -> None:
    """Let the lease lapse now, so a waiting process takes over at its next try."""
    Lease.objects.filter(name=name, holder=holder).update(expires_at=Now())


def lease_drop(*, name: str, holder: str) -> None:
    """Delete the lease row if ``holder`` still holds it: for short-lived leases named per object
    (``alert-<id>``), which would otherwise leave one lapsed row each behind."""
    Lease.objects.filter(name=name, holder=holder).delete()
