"""Sending recorded alerts: e-mail to ``JOB_ALERT_EMAILS``, a JSON POST to ``JOB_ALERT_WEBHOOK_URL``.

Each channel is recorded once it has the alert (``emailed_at``, ``posted_at``), so a retry sends only
what is still missing. A failed send is logged and kept in ``last_error``; the webhook's URL holds its
token and never appears in either. ``alerts_send_pending`` is beat's sweep: alerts a worker never
got (the broker was away) or could not send, tried again up to ``ALERT_MAX_ATTEMPTS`` times.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from scheduler.alert_text import webhook_text
from scheduler.leases import lease_drop, lease_hold, lease_holder
from scheduler.models import Alert
from scheduler.storable import storable_text
from scheduler.webhook_post import PostFailed, post_status

logger = logging.getLogger(__name__)

#: Seconds one webhook post may take in all (connect, send, status and headers); a dead or
#: trickling endpoint costs a worker at most this much, never a run.
WEBHOOK_DEADLINE = 10.0
#: Worst case of one try of one alert: the webhook's deadline plus the mail's EMAIL_TIMEOUT (10 s).
ATTEMPT_WORST_SECONDS = 20
#: Seconds a sender holds its claim on an alert (lease ``alert-<id>``): above send_alert's hard
#: time limit (40 s), so a killed sender's claim lapses only once it is surely gone.
CLAIM_TTL = 45.0
#: The sweep starts no new send after this many seconds, so a pass ends within about
#: SWEEP_START_BUDGET + ATTEMPT_WORST_SECONDS (30 s).
SWEEP_START_BUDGET = 10.0
#: Tries of one alert (worker retries and sweeps together) before it is left, logged, in the admin.
ALERT_MAX_ATTEMPTS = 50
#: Alerts the sweep tries at most per pass (each may wait WEBHOOK_DEADLINE and EMAIL_TIMEOUT).
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

    Three steps, and no transaction (nor row lock) is open while anything goes over the network:
    a short committed claim (the lease ``alert-<id>`` for ``CLAIM_TTL`` seconds, and the try counted
    in ``attempts``), the sends, then a short write of what each channel did (``emailed_at``,
    ``posted_at``, ``last_error``). A send killed midway is counted all the same, so
    ``ALERT_MAX_ATTEMPTS`` holds. An alert another worker is sending, given up, sent, or gone is
    left alone (empty Delivery).
    """
    name = f"alert-{alert_id}"
    holder = lease_holder()
    alert = _claim(alert_id, name, holder, skip)
    if alert is None:
        return Delivery()
    try:
        delivery = _deliver(alert, skip)
        _record(alert, delivery)
    finally:
        lease_drop(name=name, holder=holder)
    for channel, why in delivery.failed.items():
        logger.warning(
            "alert %s: %s not sent (try %d): %s",
            alert.pk,
            channel,
            alert.attempts,
            why,
            extra={"alert_id": alert.pk, "channel": channel},
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


def _claim(alert_id: int, name: str, holder: str, skip: frozenset[str]) -> Alert | None:
    """Take the alert for this sender and count the try, committed before anything is sent; None if
    there is nothing for this sender to do (another holds it, nothing missing, tried enough, gone)."""
    with transaction.atomic():
        if not lease_hold(name=name, holder=holder, ttl=CLAIM_TTL):
            return None
        alert = Alert.objects.filter(pk=alert_id, attempts__lt=ALERT_MAX_ATTEMPTS).first()
        if alert is None or not _missing(alert, skip):
            lease_drop(name=name, holder=holder)
            return None
        Alert.objects.filter(pk=alert_id).update(attempts=F("attempts") + 1)
        alert.attempts += 1
    return alert


def _missing(alert: Alert, skip: frozenset[str]) -> list[str]:
    wanted = (
        (EMAIL, settings.JOB_ALERT_EMAILS, alert.emailed_at),
        (WEBHOOK, settings.JOB_ALERT_WEBHOOK_URL, alert.posted_at),
    )
    return [channel for channel, on, sent_at in wanted if on and sent_at is None and channel not in skip]


def _record(alert: Alert, delivery: Delivery) -> None:
    """Write what the sends did; only the channels that took it are stamped, so nothing is cleared."""
    alert.last_error = storable_text(
        "; ".join(f"{channel}: {why}" for channel, why in delivery.failed.items()), LAST_ERROR_MAX_CHARS
    )
    done: dict[str, object] = {"last_error": alert.last_error}
    if EMAIL in delivery.sent:
        done["emailed_at"] = alert.emailed_at
    if WEBHOOK in delivery.sent:
        done["posted_at"] = alert.posted_at
    Alert.objects.filter(pk=alert.pk).update(**done)


def _deliver(alert: Alert, skip: frozenset[str]) -> Delivery:
    delivery = Delivery()
    missing = _missing(alert, skip)
    if EMAIL in missing:
        try:
            # The SMTP backend waits at most EMAIL_TIMEOUT (settings: 10 s) on each socket operation.
            send_mail(alert.subject, alert.text, settings.DEFAULT_FROM_EMAIL, list(settings.JOB_ALERT_EMAILS))
        # smtplib's errors are OSErrors, as are socket errors; a header the backend refuses is a ValueError.
        except (OSError, ValueError) as exc:
            delivery.failed[EMAIL] = f"{type(exc).__name__}: {storable_text(str(exc), 300)}"
        else:
            alert.emailed_at = timezone.now()
            delivery.sent.append(EMAIL)
    if WEBHOOK in missing:
        problem = webhook_post(alert.text)
        if problem:
            delivery.failed[WEBHOOK] = problem
        else:
            alert.posted_at = timezone.now()
            delivery.sent.append(WEBHOOK)
    return delivery


def webhook_post(text: str) -> str | None:
    """POST ``{"text": text}`` (escaped for Slack) to ``JOB_ALERT_WEBHOOK_URL``; None if it took it
    (any 2xx), else why not. The whole exchange ends within ``WEBHOOK_DEADLINE`` seconds, however
    slowly the endpoint answers; its body is never read and redirects are not followed. The reason
    never quotes the URL: only the error's type or the answer's status is kept."""
    url = settings.JOB_ALERT_WEBHOOK_URL
    if url is None:
        return "JOB_ALERT_WEBHOOK_URL is not set"
    body = json.dumps({"text": webhook_text(text)}).encode()
    try:
        status = post_status(url.reveal(), body, deadline_seconds=WEBHOOK_DEADLINE)
    except PostFailed as exc:
        return f"not reached ({exc})"
    except ValueError as exc:  # a URL it cannot use
        return f"unusable URL ({type(exc).__name__})"
    if not 200 <= status < 300:
        return f"answered HTTP {status}"
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
    minute, not one per pending alert. No new send starts after ``SWEEP_START_BUDGET`` seconds, so
    a pass holds its worker for at most that plus one try (``ATTEMPT_WORST_SECONDS``).
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
    stop_at = time.monotonic() + SWEEP_START_BUDGET
    for alert_id in ids:
        if dead.issuperset(channels) or time.monotonic() >= stop_at:
            break
        delivery = alert_send(alert_id, skip=frozenset(dead))
        dead |= set(delivery.failed)
        done += bool(delivery.sent) and not delivery.failed
    return done
