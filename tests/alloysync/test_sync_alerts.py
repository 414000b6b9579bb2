"""Alerts about the Alloy sync: ALLOY_SYNC_ALERT_AFTER failures in a row, the recovery, jobs newly refused.

Real syncs against the fake Alloy over a socket; a wrong API key makes a sync fail as a revoked key
would. Mail goes to Django's locmem outbox, the webhook to a real HTTP server in a thread.
"""

from __future__ import annotations

import pytest
from django.core import mail
from django.utils import timezone

from alloysync.models import SyncRun
from alloysync.sync import alloy_sync
from alloysync.sync_alerts import sync_run_alerts
from config.env_secrets import Secret
from scheduler.alert_channels import alert_send
from scheduler.models import Alert, Job
from tests.alloysync.helpers import API_KEY, job_item
from tests.scheduler.alert_webhook import WebhookRecorder

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]


@pytest.fixture
def webhook(settings):
    with WebhookRecorder() as recorder:
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        settings.JOB_ALERT_EMAILS = ["ops@example.org"]
        settings.JOB_ALERT_WEBHOOK_URL = Secret(recorder.url)
        settings.SITE_URL = "https://alloysync.example.org"
        settings.ALLOY_SYNC_ALERT_AFTER = 3
        yield recorder


def sync() -> SyncRun:
    return alloy_sync(trigger=SyncRun.Trigger.SCHEDULE, mode=SyncRun.Mode.FULL).run


def deliver() -> None:
    for alert_id in Alert.objects.filter(emailed_at__isnull=True).order_by("id").values_list("pk", flat=True):
        alert_send(alert_id)


def alert_kinds() -> list[str]:
    return list(Alert.objects.order_by("id").values_list("kind", flat=True))


def test_the_sync_alerts_once_at_n_failures_in_a_row_and_once_when_it_recovers(settings, alloy, webhook):
    alloy.put_item(job_item("Gullies", n=1))
    assert sync().status == "succeeded"
    settings.ALLOY_API_KEY = Secret("0" * 8 + API_KEY[8:])  # revoked: every request answered 401
    first, second = sync(), sync()
    assert (first.status, second.status) == ("failed", "failed")
    assert alert_kinds() == []  # two failures: not yet
    third = sync()
    deliver()
    assert alert_kinds() == ["sync_failing"]
    assert len(mail.outbox) == 1 and len(webhook.posts) == 1
    assert mail.outbox[0].subject == "[alloysync] SYNC FAILING: the Alloy sync failed 3 times in a row"
    text = mail.outbox[0].body
    assert "The Alloy sync has failed 3 times in a row." in text
    assert f"Last error: {third.message.splitlines()[0][:100]}" in text
    assert "Failing since: " in text and " UTC" in text
    assert text.splitlines()[-1] == f"https://alloysync.example.org/admin/alloysync/syncrun/{third.pk}/change/"
    assert API_KEY[8:] not in text
    sync()
    sync()
    assert alert_kinds() == ["sync_failing"]  # still failing: nothing more
    settings.ALLOY_API_KEY = Secret(API_KEY)
    recovered = sync()
    assert recovered.status == "succeeded"
    deliver()
    assert alert_kinds() == ["sync_failing", "sync_recovered"]
    assert len(mail.outbox) == 2 and len(webhook.posts) == 2
    assert f"sync {recovered.pk} succeeded after 5 failed syncs in a row" in mail.outbox[1].body
    assert mail.outbox[1].subject == "[alloysync] SYNC RECOVERED: the Alloy sync works again"
    sync()
    assert alert_kinds() == ["sync_failing", "sync_recovered"]


def test_failures_fewer_than_n_say_nothing_not_even_when_they_end(settings, alloy, webhook):
    alloy.put_item(job_item("Gullies", n=1))
    sync()
    settings.ALLOY_API_KEY = Secret("0" * 8 + API_KEY[8:])
    sync()
    sync()
    settings.ALLOY_API_KEY = Secret(API_KEY)
    sync()
    assert alert_kinds() == []


def finished(status: str) -> SyncRun:
    now = timezone.now()
    run = SyncRun.objects.create(
        trigger="schedule", status=status, started_at=now, finished_at=now, message=f"{status} on purpose"
    )
    sync_run_alerts(run)
    return run


@pytest.fixture
def alloy_configured(settings):
    settings.ALLOY_API_KEY = Secret(API_KEY)
    settings.ALLOY_JOB_DESIGN = "designs_scheduledJobs_65f0c0ffee0000000000abcd"


def test_a_deployment_without_alloy_is_never_told_its_sync_fails(settings, webhook):
    # Local jobs only: the scheduled sync fails for want of settings, and health says "not configured".
    settings.ALLOY_API_KEY, settings.ALLOY_JOB_DESIGN = None, ""
    for _ in range(5):
        assert alloy_sync(trigger=SyncRun.Trigger.SCHEDULE).run.status == "failed"
    assert alert_kinds() == []


def test_refused_syncs_neither_count_as_failures_nor_end_a_run_of_them(webhook, alloy_configured):
    finished("failed")
    finished("refused")
    finished("failed")
    assert alert_kinds() == []
    finished("refused")
    finished("failed")
    assert alert_kinds() == ["sync_failing"]
    finished("refused")
    finished("succeeded")
    assert alert_kinds() == ["sync_failing", "sync_recovered"]


def test_a_job_whose_definition_turns_invalid_is_told_once_per_change(alloy, webhook):
    alloy.put_item(job_item("Gullies", n=1))
    sync()
    job = Job.objects.get(external_id=f"{1:024x}")
    alloy.put_item(job_item("Gullies", cron="61 2 * * *", n=1))
    run = sync()
    deliver()
    assert alert_kinds() == ["invalid"]
    alert = Alert.objects.get()
    assert alert.job == job and len(mail.outbox) == 1 and len(webhook.posts) == 1
    assert alert.subject == f'[alloysync] INVALID: "Gullies" (job {job.pk})'
    assert "its new definition in Alloy was refused; the last valid definition keeps running." in alert.text
    assert "Error: " in alert.text and "61" in alert.text
    assert "Next run: " in alert.text and " 02:30 UTC" in alert.text  # the last valid definition's
    assert f"https://alloysync.example.org/admin/scheduler/job/{job.pk}/change/" in alert.text
    assert alert.text.splitlines()[-1] == f"https://alloysync.example.org/admin/alloysync/syncrun/{run.pk}/change/"
    sync()  # still refused: not news
    alloy.put_item(job_item("Gullies", cron="0 25 * * *", n=1))
    sync()  # refused for another reason: still the same state
    assert alert_kinds() == ["invalid"]
    alloy.put_item(job_item("Gullies", n=1))
    sync()  # fixed: the job shows no error, nothing to alert
    alloy.put_item(job_item("Gullies", cron="bad", n=1))
    sync()
    assert alert_kinds() == ["invalid", "invalid"]


def test_many_jobs_refused_at_once_make_one_summary_alert(alloy, webhook):
    for n in range(1, 9):
        alloy.put_item(job_item(f"job {n}", n=n))
    sync()
    for n in range(1, 9):
        alloy.put_item(job_item(f"job {n}", steps="reports.renamed_function", n=n))
    sync()
    deliver()
    alert = Alert.objects.get()
    assert alert.kind == "invalid" and alert.job is None
    assert alert.subject == "[alloysync] INVALID: 8 job definitions refused"
    assert alert.text.count("\n- ") == 6  # the first five, and "and 3 more"
    assert "- and 3 more" in alert.text
    assert len(mail.outbox) == 1 and len(webhook.posts) == 1
