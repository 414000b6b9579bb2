"""Leases: one holder at a time, kept by renewing, lost by lapsing. Used to elect one beat leader."""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, ExpressionWrapper, F, Q, Value, When
from django.db.models.functions import Now

from scheduler.models import BeatLease


def lease_hold(*, name: str, holder: str, ttl: float) -> bool:
    """Take or renew the lease for ``ttl`` seconds; True if ``holder`` now holds it.

    A compare-and-set on the row: it succeeds if ``holder`` already has the lease or the lease has
    lapsed. Another process that renews first keeps it, and this call returns False.
    """
    expires = ExpressionWrapper(Now() + Value(timedelta(seconds=ttl)), output_field=DateTimeField())
    renewed = BeatLease.objects.filter(Q(holder=holder) | Q(expires_at__lte=Now()), name=name).update(
        acquired_at=Case(When(holder=holder, then=F("acquired_at")), default=Now()),
        holder=holder,
        renewed_at=Now(),
        expires_at=expires,
    )
    if renewed:
        return True
    try:
        with transaction.atomic():
            BeatLease.objects.create(name=name, holder=holder, acquired_at=Now(), renewed_at=Now(), expires_at=expires)
    except IntegrityError:
        return False  # someone else holds it (or took it first)
    return True


def lease_release(*, name: str, holder: str) -> None:
    """Let the lease lapse now, so a waiting process takes over at its next try."""
    BeatLease.objects.filter(name=name, holder=holder).update(expires_at=Now())
