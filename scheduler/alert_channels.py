"""Sending recorded alerts: e-mail to ``JOB_ALERT_EMAILS``, a JSON POST to ``JOB_ALERT_WEBHOOK_URL``.

Each channel is recorded once it has the alert (``emailed_at``, ``posted_at``), so a retry sends only
what is still missing. A failed send is logged and kept in ``last_error``; the webhook's URL holds its
token and never appears in either. ``alerts_send_pending`` is beat's sweep: alerts a worker never
got (the broker was away) or could not send, tried again up to ``ALERT_MAX_ATTEMPTS`` times.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from scheduler.alert_text import webhook_text
from scheduler.models import Alert
from scheduler.storable import storable_text

logger = logging.getLogger(__name__)

#: Seconds the webhook may take to answer; a dead endpoint costs a worker this much, never a run.
WEBHOOK_TIMEOUT = 5.0
#: Tries of one alert (worker retries and sweeps together) before it is left, logged, in the admin.
ALERT_MAX_ATTEMPTS = 50
#: Alerts the sweep tries at most per pass (each may wait WEBHOOK_TIMEOUT and EMAIL_TIMEOUT).
SWEEP_BATCH = 20
#: An alert younger than this is the queued task's to send; the sweep leaves it alone.
SWEEP_AFTER = timedelta(seconds=60)
#: Characters of last_error kept.
LAST_ERROR_MAX_CHARS = 1000

EMAIL = "e-mail"
WEBHOOK = "webhook"


class AlertNotSent(Exception):
    """A channel could not take the alert; the message says which and why (never the webhook's URL)."""


@dataclass
class Delivery:
    """What one try of one alert did: channels that took it, and those that failed with why."""

    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def channels_configured() -> list[str]:
    """The channels alerts go to, as settings configure them."""
    return [name for name, on in ((EMAIL, settings.JOB_ALERT_EMAILS), (WEBHOOK, settings.JOB_ALERT_WEBHOOK_URL)) if on]


def alert_send(alert_id: int, *, skip: frozenset[str] = frozenset()) -> Delivery:
    """Send the alert on each configured channel that does not have it yet, except those in ``skip``.

    Records each channel that took it, counts the try and keeps the failures in ``last_error``. The
    row is locked while sending (PostgreSQL), so a task and the sweep never send the same alert at
    once; an alert locked by another worker, or gone, is left alone (empty Delivery).
    """
    with transaction.atomic():
        locked = Alert.objects.select_for_update(skip_locked=True).filter(pk=alert_id)
        alert = locked.first()
        if alert is None:
            return Delivery()
        delivery = _deliver(alert, skip)
        if not delivery.sent and not delivery.failed:
            return delivery  # nothing was missing (sent meanwhile) or only skipped channels were
        alert.attempts += 1
        alert.last_error = storable_text(
            "; ".join(f"{name}: {why}" for name, why in delivery.failed.items()), LAST_ERROR_MAX_CHARS
        )
        alert.save(update_fields=["emailed_at", "posted_at", "attempts", "last_error"])
    for name, why in delivery.failed.items():
        logger.warning(
            "alert %s: %s not sent (try %d): %s",
            alert.pk,
            name,
            alert.attempts,
            why,
            extra={"alert_id": alert.pk, "channel": name},
        )
    if delivery.failed and alert.attempts >= ALERT_MAX_ATTEMPTS:
        logger.error(
            "alert %s: given up after %d tries; it stays in the admin (Alerts) with its error: %s",
            alert.pk,
            alert.attempts,
            alert.subject,
            extra={"alert_id": alert.pk},
        )
    return delivery


def _deliver(alert: Alert, skip: frozenset[str]) -> Delivery:
    delivery = Delivery()
    now = timezone.now()
    if settings.JOB_ALERT_EMAILS and alert.emailed_at is None and EMAIL not in skip:
        try:
            send_mail(alert.subject, alert.text, settings.DEFAULT_FROM_EMAIL, list(settings.JOB_ALERT_EMAILS))
        # smtplib's errors are OSErrors, as are socket errors; a header the backend refuses is a ValueError.
        except (OSError, ValueError) as exc:
            delivery.failed[EMAIL] = f"{type(exc).__name__}: {storable_text(str(exc), 300)}"
        else:
            alert.emailed_at = now
            delivery.sent.append(EMAIL)
    if settings.JOB_ALERT_WEBHOOK_URL and alert.posted_at is None and WEBHOOK not in skip:
        problem = webhook_post(alert.text)
        if problem:
            delivery.failed[WEBHOOK] = problem
        else:
            alert.posted_at = timezone.now()
            delivery.sent.append(WEBHOOK)
    return delivery


def webhook_post(text: str) -> str | None:
    """POST ``{"text": text}`` (escaped for Slack) to ``JOB_ALERT_WEBHOOK_URL``; None if it took it
    (any 2xx), else why not. The reason never quotes the URL: httpx's own messages do, so only the
    exception's type or the answer's status is kept."""
    url = settings.JOB_ALERT_WEBHOOK_URL
    if url is None:
        return "JOB_ALERT_WEBHOOK_URL is not set"
    try:
        response = httpx.post(
            url.reveal(), json={"text": webhook_text(text)}, timeout=WEBHOOK_TIMEOUT, follow_redirects=False
        )
    except httpx.HTTPError as exc:
        return f"not reached ({type(exc).__name__})"
    except ValueError as exc:  # a URL httpx cannot use
        return f"unusable URL ({type(exc).__name__})"
    if not response.is_success:
        return f"answered HTTP {response.status_code}"
    return None


def alerts_pending() -> Q:
    """Alerts some configured channel has not taken yet (nothing, if no channel is configured)."""
    pending = Q(pk__in=[])
    if settings.JOB_ALERT_EMAILS:
        pending |= Q(emailed_at__isnull=True)
    if settings.JOB_ALERT_WEBHOOK_URL:
        pending |= Q(posted_at__isnull=True)
    return pending


def alert_is_pending(alert: Alert) -> bool:
    """True if a configured channel has not taken ``alert`` yet (as ``alerts_pending``, for one row)."""
    return bool(
        (settings.JOB_ALERT_EMAILS and alert.emailed_at is None)
        or (settings.JOB_ALERT_WEBHOOK_URL and alert.posted_at is None)
    )


def alerts_send_pending() -> int:
    """Beat's sweep: try again alerts older than ``SWEEP_AFTER`` that a channel has not taken and
    that have been tried fewer than ``ALERT_MAX_ATTEMPTS`` times; returns how many were sent in full.

    Least-tried first, so one alert a channel keeps refusing does not hold the others back. A channel
    that fails once in a pass is not tried again in that pass: a dead endpoint costs one timeout a
    minute, not one per pending alert.
    """
    channels = channels_configured()
    if not channels:
        return 0
    ids = list(
        Alert.objects.filter(
            alerts_pending(), attempts__lt=ALERT_MAX_ATTEMPTS, created_at__lte=timezone.now() - SWEEP_AFTER
        )
        .order_by("attempts", "created_at", "id")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    dead: set[str] = set()
    done = 0
    for alert_id in ids:
        if dead.issuperset(channels):
            break
        delivery = alert_send(alert_id, skip=frozenset(dead))
        dead |= set(delivery.failed)
        done += bool(delivery.sent) and not delivery.failed
    return done
