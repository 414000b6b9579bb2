"""End to end: a real worker runs a failing job, records its alert, and its own scheduler.send_alert task
posts it to a webhook (a real HTTP server in this process) and mails it (console backend: the log).

PostgreSQL and Redis; no beat: runs are sent as beat and "run now" send them.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from config import celery_app
from scheduler.models import Alert, JobRun
from scheduler.services import job_run_now
from tests.helpers import free_port, requires_services, wait_for
from tests.scheduler.alert_webhook import WebhookRecorder

pytestmark = [requires_services, pytest.mark.e2e, pytest.mark.timeout(180)]


def worker_env(url: str) -> dict[str, str]:
    return {
        "JOB_ALERT_WEBHOOK_URL": url,
        "JOB_ALERT_EMAILS": "ops@example.org",
        "EMAIL_URL": "consolemail://",
        "SITE_URL": "https://alloysync.example.org",
    }


def wait_logged(condition, processes, what: str, timeout: float = 60) -> object:
    try:
        return wait_for(condition, timeout=timeout, describe=what)
    except pytest.fail.Exception as exc:
        pytest.fail(f"{exc}\n{processes.logs()}")


def test_a_failing_scheduled_run_has_its_alert_posted_and_mailed_by_the_worker(celery_processes, make_job):
    job = make_job(name="Gully feed", steps='examples.fail {"message": "feed down"}')
    with WebhookRecorder() as webhook:
        celery_processes.start("worker", "--concurrency=1", env=worker_env(webhook.url))
        due = timezone.now().replace(microsecond=0)
        celery_app.send_task("scheduler.run_job", args=[job.pk], kwargs={"due_at": due.isoformat()})
        wait_logged(lambda: webhook.posts, celery_processes, "the webhook's post")
        run = JobRun.objects.get(job=job)
        assert (run.trigger, run.status) == ("schedule", "failed")
        text = webhook.texts[0]
        assert text.startswith(f'Job "Gully feed" (job {job.pk}) started failing.')
        assert "Error: step 1 (examples.fail) failed: RuntimeError: feed down" in text
        assert text.endswith(f"https://alloysync.example.org/admin/scheduler/jobrun/{run.pk}/change/")
        alert = wait_logged(
            lambda: Alert.objects.filter(posted_at__isnull=False, emailed_at__isnull=False).first(),
            celery_processes,
            "the alert recorded as sent",
        )
        assert (alert.kind, alert.run_id, alert.attempts, alert.last_error) == ("failing", run.pk, 1, "")
    logs = celery_processes.logs()
    assert f'Subject: [alloysync] FAILING: "Gully feed" (job {job.pk})' in logs  # the console "mail"
    assert "T0KEN" not in logs  # the webhook's URL is a secret: never logged


def test_a_dead_webhook_is_retried_by_the_worker_with_backoff_until_it_answers(celery_processes, make_job):
    job = make_job(name="Gully feed", steps='examples.fail {"message": "feed down"}')
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook/T0KEN-s3cret-w3bhook"
    celery_processes.start("worker", "--concurrency=1", env=worker_env(url))
    started = timezone.now()
    run = job_run_now(job=job)
    wait_logged(lambda: JobRun.objects.filter(pk=run.pk, status="failed").exists(), celery_processes, "the failed run")
    failed = wait_logged(
        lambda: Alert.objects.filter(attempts__gte=1, last_error__startswith="webhook").first(),
        celery_processes,
        "a failed send recorded",
    )
    run.refresh_from_db()
    assert (run.finished_at - started).total_seconds() < 30  # the run never waited on the webhook
    assert failed.last_error == "webhook: not reached (ConnectError)" and failed.emailed_at is not None
    wait_logged(
        lambda: f"alert {failed.pk}: webhook not sent (try 1): not reached (ConnectError)" in celery_processes.logs(),
        celery_processes,
        "the failed send's log line",
        timeout=10,
    )
    with WebhookRecorder(port=port) as webhook:  # the endpoint comes back: a retry gets through
        wait_logged(lambda: webhook.posts, celery_processes, "a retried post", timeout=90)
        alert = wait_logged(
            lambda: Alert.objects.filter(pk=failed.pk, posted_at__isnull=False).first(),
            celery_processes,
            "the alert recorded as posted",
        )
    assert alert.attempts >= 2 and alert.last_error == ""
    assert len(webhook.posts) == 1 and webhook.texts[0].startswith('Job "Gully feed"')
    assert "T0KEN" not in celery_processes.logs()
