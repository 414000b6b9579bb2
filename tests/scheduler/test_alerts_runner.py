"""Alerts through the runner itself: job_run_execute keeps the failure streak and calls the hook."""

from __future__ import annotations

import pytest
from django.core import mail

from config.env_secrets import Secret
from scheduler.alert_channels import alert_send
from scheduler.models import Alert, Job, JobRun
from scheduler.runner import job_run_execute
from tests.scheduler.alert_webhook import WebhookRecorder

pytestmark = pytest.mark.django_db

PASSING = [{"function": "examples.echo", "kwargs": {"message": "fixed"}}]


@pytest.fixture
def webhook(settings):
    with WebhookRecorder() as recorder:
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        settings.JOB_ALERT_EMAILS = ["ops@example.org"]
        settings.JOB_ALERT_WEBHOOK_URL = Secret(recorder.url)
        settings.JOB_AUTO_PAUSE_AFTER = 3
        yield recorder


def run(job: Job, trigger: str = JobRun.Trigger.SCHEDULE, **kwargs) -> JobRun:
    job = Job.objects.select_related("periodic_task").get(pk=job.pk)  # as the task loads it
    finished = job_run_execute(job=job, trigger=trigger, **kwargs)
    for alert_id in Alert.objects.filter(emailed_at__isnull=True).values_list("pk", flat=True):
        alert_send(alert_id)  # what the worker's scheduler.send_alert does
    return finished


def test_runs_through_the_runner_alert_on_each_change_and_auto_pause_at_n(webhook, make_job):
    job = make_job(name="Gully feed", steps='examples.fail {"message": "feed down"}')
    first = run(job)
    assert first.status == "failed"
    assert list(Alert.objects.values_list("kind", "run_id")) == [("failing", first.pk)]
    assert "Error: step 1 (examples.fail) failed: RuntimeError: feed down" in mail.outbox[0].body
    run(job, trigger=JobRun.Trigger.MANUAL)
    assert Alert.objects.count() == 1 and len(webhook.posts) == 1
    fixed = run(job, trigger=JobRun.Trigger.MANUAL, steps=PASSING)
    assert fixed.status == "succeeded"
    assert Alert.objects.order_by("id").last().kind == "recovered" and len(webhook.posts) == 2
    for _ in range(2):
        run(job)
    assert not Job.objects.select_related("periodic_task").get(pk=job.pk).is_paused
    third = run(job)
    paused = Job.objects.select_related("periodic_task").get(pk=job.pk)
    assert paused.is_paused and paused.failure_streak == 3
    assert paused.pause_note == (
        "auto-paused after 3 consecutive failures (last: step 1 (examples.fail) failed: RuntimeError: feed down)"
    )
    assert list(Alert.objects.order_by("id").values_list("kind", flat=True)) == [
        "failing",
        "recovered",
        "failing",
        "auto_paused",
    ]
    assert Alert.objects.get(kind="auto_paused").run_id == third.pk
    skipped = run(job)  # beat's next message for a paused job
    assert (skipped.status, skipped.error) == ("skipped", "job is paused")
    assert Alert.objects.count() == 4 and len(mail.outbox) == 4 and len(webhook.posts) == 4
