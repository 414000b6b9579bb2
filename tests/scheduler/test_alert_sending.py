"""Sending an alert never holds the database, and never holds a worker for long: a short committed claim
(the try counted first), the network sends with no transaction open, then a short record of the result.

Real HTTP servers in threads (tests/scheduler/alert_webhook.py), including endpoints that trickle
their body or their headers one byte at a time; real PostgreSQL or SQLite.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.core import mail
from django.db import DatabaseError, connection, transaction

from config.env_secrets import Secret
from scheduler import alert_channels
from scheduler.alert_channels import ALERT_MAX_ATTEMPTS, CLAIM_TTL, alert_send, alerts_send_pending
from scheduler.models import Alert, Job, Lease
from tests.scheduler.alert_webhook import WebhookRecorder

ON_POSTGRESQL = connection.vendor == "postgresql"


@pytest.fixture
def channels(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.JOB_ALERT_EMAILS = ["ops@example.org"]
    settings.SITE_URL = "https://alloysync.example.org"
    return settings


def hook(settings, recorder: WebhookRecorder) -> WebhookRecorder:
    settings.JOB_ALERT_WEBHOOK_URL = Secret(recorder.url)
    return recorder


def new_alert(job: Job | None = None) -> Alert:
    return Alert.objects.create(kind=Alert.Kind.FAILING, job=job, subject="[alloysync] FAILING: x", text="x failed")


@pytest.mark.django_db
def test_an_endpoint_that_trickles_its_headers_ends_the_send_at_the_deadline_with_the_error_kept_and_the_try_counted(
    channels, monkeypatch
):
    monkeypatch.setattr(alert_channels, "WEBHOOK_DEADLINE", 1.5)
    with WebhookRecorder(mode="slow-headers", interval=0.3) as recorder:
        hook(channels, recorder)
        alert = new_alert()
        started = time.monotonic()
        delivery = alert_send(alert.pk)
        took = time.monotonic() - started
    assert took < 2.5  # a per-read timeout would wait for all 200 bytes: a minute
    assert delivery.failed == {"webhook": "not reached (ReadTimeout)"}
    alert.refresh_from_db()
    assert (alert.attempts, alert.posted_at, alert.last_error) == (1, None, "webhook: not reached (ReadTimeout)")
    assert alert.emailed_at is not None and len(mail.outbox) == 1  # the mail went all the same
    assert not Lease.objects.filter(name=f"alert-{alert.pk}").exists()  # the claim is gone with the send


@pytest.mark.django_db
def test_an_endpoint_that_trickles_its_body_has_taken_the_alert_and_its_body_is_never_waited_for(channels):
    with WebhookRecorder(mode="trickle", interval=3) as recorder:  # 100 bytes, 3 s apart: 5 minutes
        hook(channels, recorder)
        alert = new_alert()
        started = time.monotonic()
        assert alert_send(alert.pk).failed == {}  # its 200 says it took it: the body is left unread
        assert time.monotonic() - started < 1
    alert.refresh_from_db()
    assert (alert.attempts, alert.last_error, len(recorder.posts)) == (1, "", 1) and alert.posted_at


@pytest.mark.django_db
def test_a_redirect_is_not_followed(channels):
    with WebhookRecorder(status=302) as recorder:
        hook(channels, recorder)
        alert = new_alert()
        assert alert_send(alert.pk).failed == {"webhook": "answered HTTP 302"}
        assert len(recorder.posts) == 1


@pytest.mark.django_db(transaction=True)
def test_while_the_webhook_is_posting_another_connection_can_lock_the_alert_and_write(channels):
    job = Job.objects.create(name="written meanwhile")
    seen: dict[str, object] = {}

    def meanwhile() -> None:  # the endpoint's thread: its own database connection
        try:
            if ON_POSTGRESQL:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()"
                    )
                    seen["idle_in_transaction"] = cursor.fetchone()[0]
            started = time.monotonic()
            with transaction.atomic():
                list(Alert.objects.select_for_update(nowait=True).filter(job=job))
                Job.objects.filter(pk=job.pk).update(name="written while the alert was being posted")
            seen["write_seconds"] = time.monotonic() - started
        except DatabaseError as exc:  # kept for the assertion: "database is locked", NOWAIT refused
            seen["error"] = repr(exc)
        finally:
            connection.close()

    with WebhookRecorder(delay=1.0) as recorder:
        hook(channels, recorder)
        recorder.on_post = meanwhile
        alert = new_alert(job)
        assert alert_send(alert.pk).failed == {}
    assert "error" not in seen, seen["error"]  # e.g. "database is locked", or a row lock NOWAIT refused
    assert seen["write_seconds"] < 0.5
    if ON_POSTGRESQL:
        assert seen["idle_in_transaction"] == 0
    assert Job.objects.get(pk=job.pk).name == "written while the alert was being posted"


class Interrupted(BaseException):
    """Stands for Celery's time limit striking mid-send (SoftTimeLimitExceeded, or the process killed)."""


@pytest.mark.django_db
def test_a_send_interrupted_after_the_claim_still_counts_the_try_and_frees_the_alert(channels, monkeypatch):
    with WebhookRecorder() as recorder:
        hook(channels, recorder)
        alert = new_alert()

        def interrupted(text: str) -> str | None:
            raise Interrupted

        monkeypatch.setattr(alert_channels, "webhook_post", interrupted)
        with pytest.raises(Interrupted):
            alert_send(alert.pk)
        alert.refresh_from_db()
        assert alert.attempts == 1 and alert.posted_at is None  # counted: the cap holds for killed sends
        monkeypatch.undo()
        assert alert_send(alert.pk).failed == {}  # not left claimed: the next try sends at once
    alert.refresh_from_db()
    assert alert.attempts == 2 and alert.posted_at is not None and len(recorder.posts) == 1


@pytest.mark.django_db
def test_an_alert_at_the_cap_is_not_sent_again_even_by_its_task(channels):
    with WebhookRecorder(status=500) as recorder:
        hook(channels, recorder)
        alert = new_alert()
        Alert.objects.filter(pk=alert.pk).update(attempts=ALERT_MAX_ATTEMPTS, emailed_at=alert.created_at)
        assert alert_send(alert.pk).failed == {}
    assert recorder.posts == [] and Alert.objects.get(pk=alert.pk).attempts == ALERT_MAX_ATTEMPTS


@pytest.mark.django_db
def test_a_claim_held_by_another_sender_is_left_alone(channels):
    from scheduler.leases import lease_hold

    with WebhookRecorder() as recorder:
        hook(channels, recorder)
        alert = new_alert()
        assert lease_hold(name=f"alert-{alert.pk}", holder="other-worker", ttl=CLAIM_TTL)
        assert alert_send(alert.pk).sent == []
    assert recorder.posts == [] and Alert.objects.get(pk=alert.pk).attempts == 0


@pytest.mark.skipif(not ON_POSTGRESQL, reason="two connections writing at once: PostgreSQL (SQLite: one writer)")
@pytest.mark.django_db(transaction=True)
def test_two_senders_at_once_send_the_alert_once(channels):
    with WebhookRecorder(delay=0.5) as recorder:
        hook(channels, recorder)
        alert = new_alert()
        start = threading.Barrier(2)

        def send() -> None:
            try:
                start.wait()
                alert_send(alert.pk)
            finally:
                connection.close()

        threads = [threading.Thread(target=send) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    stored = Alert.objects.get(pk=alert.pk)
    assert len(recorder.posts) == 1 and len(mail.outbox) == 1
    assert stored.attempts == 1 and stored.posted_at is not None


@pytest.mark.django_db
def test_the_sweep_starts_no_send_after_its_budget(channels, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    monkeypatch.setattr(alert_channels, "SWEEP_START_BUDGET", 0.5)
    with WebhookRecorder(delay=0.3) as recorder:
        hook(channels, recorder)
        for _ in range(6):
            new_alert()
        Alert.objects.update(created_at=timezone.now() - timedelta(minutes=5))
        started = time.monotonic()
        sent = alerts_send_pending()
        took = time.monotonic() - started
    assert 1 <= sent < 6 and took < 0.5 + 0.3 * 2
    assert Alert.objects.filter(posted_at__isnull=True).count() == 6 - sent  # the next pass sends the rest


def test_an_alert_holds_a_worker_process_for_well_under_a_minute():
    from scheduler.tasks_alerts import send_alert, send_alerts

    worst_try = alert_channels.WEBHOOK_DEADLINE + 10  # plus the mail's EMAIL_TIMEOUT
    assert worst_try == alert_channels.ATTEMPT_WORST_SECONDS
    assert worst_try < send_alert.soft_time_limit < send_alert.time_limit <= 40
    assert alert_channels.SWEEP_START_BUDGET + worst_try < send_alerts.soft_time_limit < send_alerts.time_limit <= 40
    assert send_alert.time_limit < CLAIM_TTL  # a claim lapses only once its killed sender is gone


@pytest.mark.django_db
def test_the_webhook_goes_through_the_environments_http_proxy_as_httpx_would(channels, monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    with WebhookRecorder() as proxy:
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
        channels.JOB_ALERT_WEBHOOK_URL = Secret("http://hooks.example.invalid/hook/T0KEN")
        alert = new_alert()
        assert alert_send(alert.pk).failed == {}
    assert proxy.paths == ["http://hooks.example.invalid/hook/T0KEN"]  # asked of the proxy, in absolute form
