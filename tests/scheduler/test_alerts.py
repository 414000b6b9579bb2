"""Alerts on a job's state changes: one e-mail and one webhook post per change, none per repeated failure;
auto-pause once the last JOB_AUTO_PAUSE_AFTER scheduled runs all failed, exactly then.

Runs are recorded as the runner records them; ``finish`` then keeps the job's failure streak as the
runner does and calls the runner's hook (``job_run_alerts``), and ``deliver`` does what the worker's
``scheduler.send_alert`` does (``alert_send``). Mail goes to Django's locmem outbox, the webhook to a
real HTTP server in a thread.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from config import celery_app
from config.env_secrets import Secret
from scheduler.alert_channels import ALERT_MAX_ATTEMPTS, alert_send, alerts_send_pending
from scheduler.alerts import SEND_ALERT_TASK, alert_queue, job_run_alerts
from scheduler.models import Alert, Job, JobRun
from scheduler.services import JobStateError, job_pause, job_resume
from tests.helpers import broker_unreachable, free_port
from tests.scheduler.alert_webhook import WebhookRecorder

pytestmark = pytest.mark.django_db

ERROR = "step 1 (examples.fail) failed: RuntimeError: gully feed down"


@pytest.fixture
def webhook():
    with WebhookRecorder() as recorder:
        yield recorder


@pytest.fixture
def channels(settings, webhook):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.JOB_ALERT_EMAILS = ["ops@example.org", "oncall@example.org"]
    settings.JOB_ALERT_WEBHOOK_URL = Secret(webhook.url)
    settings.SITE_URL = "https://alloysync.example.org"
    settings.JOB_AUTO_PAUSE_AFTER = 0
    return webhook


@pytest.fixture
def job(make_job):
    return make_job(
        name="Gully report",
        cron="30 2 * * *",
        timezone="Europe/London",
        steps='examples.fail {"message": "gully feed down"}',
    )


def finish(job: Job, status: str, trigger: str = JobRun.Trigger.SCHEDULE, error: str = ERROR) -> JobRun:
    """Record a finished run of ``job`` and tell the alert hook, keeping the streak as the runner does."""
    now = timezone.now()
    run = JobRun.objects.create(
        job=job,
        trigger=trigger,
        status=status,
        started_at=now - timedelta(seconds=2),
        finished_at=now,
        error=error if status == JobRun.Status.FAILED else "",
        due_at=now if trigger == JobRun.Trigger.SCHEDULE else None,
    )
    before = Job.objects.get(pk=job.pk).failure_streak
    streak = before + 1 if status == JobRun.Status.FAILED else 0
    Job.objects.filter(pk=job.pk).update(failure_streak=streak)
    job_run_alerts(run, streak=streak, recovered=status == JobRun.Status.SUCCEEDED and before > 0)
    return run


def fail(job: Job, trigger: str = JobRun.Trigger.SCHEDULE, error: str = ERROR) -> JobRun:
    return finish(job, JobRun.Status.FAILED, trigger, error)


def succeed(job: Job, trigger: str = JobRun.Trigger.SCHEDULE) -> JobRun:
    return finish(job, JobRun.Status.SUCCEEDED, trigger)


def deliver() -> None:
    """What the worker's scheduler.send_alert does for each alert queued."""
    for alert_id in Alert.objects.order_by("id").values_list("pk", flat=True):
        alert_send(alert_id)


def kinds(job: Job) -> list[str]:
    return list(Alert.objects.filter(job=job).order_by("id").values_list("kind", flat=True))


def test_a_job_that_starts_failing_sends_one_email_and_one_webhook_naming_job_step_error_next_run_and_link(
    channels, job
):
    run = fail(job)
    deliver()
    assert len(mail.outbox) == 1 and len(channels.posts) == 1
    message = mail.outbox[0]
    assert message.subject == f'[alloysync] FAILING: "Gully report" (job {job.pk})'
    assert message.to == ["ops@example.org", "oncall@example.org"]
    text = message.body
    assert f'Job "Gully report" (job {job.pk}) started failing.' in text
    assert "Error: step 1 (examples.fail) failed: RuntimeError: gully feed down" in text
    # 02:30 in London, with the zone named: GMT in November, BST in summer.
    assert "Next run: " in text and " 02:30 " in text and "(Europe/London)" in text
    link = f"https://alloysync.example.org/admin/scheduler/jobrun/{run.pk}/change/"
    assert text.splitlines()[-1] == link  # a bare URL on its own line: a link in Slack and Teams alike
    # The same lines, a blank line apart (Teams' markdown would run single lines together).
    assert channels.posts == [{"text": text.replace("\n", "\n\n")}]
    alert = Alert.objects.get()
    assert (alert.kind, alert.job, alert.run, alert.attempts, alert.last_error) == ("failing", job, run, 1, "")
    assert alert.emailed_at and alert.posted_at


def test_a_second_failure_sends_nothing_and_recovery_sends_one_of_each(channels, job):
    fail(job)
    fail(job)
    fail(job, trigger=JobRun.Trigger.MANUAL)
    deliver()
    assert kinds(job) == ["failing"]
    assert len(mail.outbox) == 1 and len(channels.posts) == 1
    run = succeed(job, trigger=JobRun.Trigger.MANUAL)
    deliver()
    assert kinds(job) == ["failing", "recovered"]
    assert len(mail.outbox) == 2 and len(channels.posts) == 2
    assert mail.outbox[1].subject == f'[alloysync] RECOVERED: "Gully report" (job {job.pk})'
    assert "recovered: its latest run succeeded" in channels.texts[1]
    assert channels.texts[1].endswith(f"/admin/scheduler/jobrun/{run.pk}/change/")
    succeed(job)
    deliver()
    assert len(mail.outbox) == 2 and len(channels.posts) == 2  # still passing: nothing to say
    fail(job)
    deliver()
    assert kinds(job) == ["failing", "recovered", "failing"]  # failing again is a new change


def test_nothing_to_tell_costs_the_run_path_no_query(settings, job, django_assert_num_queries):
    settings.JOB_AUTO_PAUSE_AFTER = 5
    run = JobRun.objects.create(job=job, trigger=JobRun.Trigger.SCHEDULE, status=JobRun.Status.FAILED)
    manual = JobRun.objects.create(job=job, trigger=JobRun.Trigger.MANUAL, status=JobRun.Status.FAILED)
    with django_assert_num_queries(0):
        job_run_alerts(run, streak=0, recovered=False)  # a success after a success
        job_run_alerts(run, streak=2, recovered=False)  # still failing
        job_run_alerts(run, streak=4, recovered=False)  # still failing, below the auto-pause
        job_run_alerts(manual, streak=7, recovered=False)  # manual runs never auto-pause
    assert not Alert.objects.exists()


def test_an_alert_is_queued_for_a_worker_only_once_committed(channels, job, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        fail(job)
        assert Alert.objects.count() == 1
    assert len(callbacks) == 1  # the queueing, held until the run's alert row is committed
    assert len(mail.outbox) == 0 and channels.posts == []  # the run itself never sends


def test_a_broker_that_is_away_costs_the_run_no_error_and_the_sweep_sends_the_alert(
    channels, job, caplog, django_capture_on_commit_callbacks
):
    with (
        caplog.at_level(logging.WARNING),
        broker_unreachable(celery_app),
        django_capture_on_commit_callbacks(execute=True),
    ):
        fail(job)  # raises nothing: the run is recorded, its alert too
    alert = Alert.objects.get()
    assert f"alert {alert.pk}: could not be queued (OperationalError); beat's scheduler.send_alerts sends it" in (
        caplog.text
    )
    assert "127.0.0.1:1" not in caplog.text  # the broker's address is left out too
    Alert.objects.filter(pk=alert.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    assert alerts_send_pending() == 1
    assert len(mail.outbox) == 1 and len(channels.posts) == 1


def test_with_no_channel_the_alert_is_still_recorded_and_logged(settings, job, caplog):
    settings.JOB_ALERT_EMAILS = []
    settings.JOB_ALERT_WEBHOOK_URL = None
    with caplog.at_level(logging.WARNING, logger="scheduler.alerts"):
        fail(job)
    alert = Alert.objects.get()
    assert f'alert {alert.pk}: [alloysync] FAILING: "Gully report" (job {job.pk})' in caplog.text
    assert alert_queue(alert.pk) is False  # nothing to send it on: no task is queued
    assert alerts_send_pending() == 0


def test_a_dead_webhook_keeps_the_error_and_the_log_line_and_the_sweep_sends_it_once_it_is_back(
    settings, channels, job, caplog
):
    port = free_port()  # nothing listens here: connection refused
    dead_url = f"http://127.0.0.1:{port}/hook/T0KEN-s3cret-w3bhook"
    settings.JOB_ALERT_WEBHOOK_URL = Secret(dead_url)
    with caplog.at_level(logging.WARNING):
        fail(job)
        deliver()
    alert = Alert.objects.get()
    assert len(mail.outbox) == 1 and alert.emailed_at  # the mail went all the same
    assert alert.posted_at is None and alert.attempts == 1
    assert alert.last_error == "webhook: not reached (ConnectError)"
    assert f"alert {alert.pk}: webhook not sent (try 1): not reached (ConnectError)" in caplog.text
    assert "T0KEN" not in caplog.text and "T0KEN" not in alert.last_error  # the URL is a secret

    # The sweep leaves a fresh alert to its task; an older one it sends once the endpoint answers.
    with WebhookRecorder(port=port) as revived:
        assert alerts_send_pending() == 0
        Alert.objects.filter(pk=alert.pk).update(created_at=timezone.now() - timedelta(minutes=2))
        assert alerts_send_pending() == 1
        assert alerts_send_pending() == 0  # sent: never again
    alert.refresh_from_db()
    assert alert.posted_at and alert.attempts == 2 and alert.last_error == ""
    assert len(revived.posts) == 1 and len(mail.outbox) == 1  # the mail is not sent twice


def test_a_webhook_answering_an_error_is_recorded_and_retried_up_to_the_cap(settings, channels, job):
    channels.status = 500
    fail(job)
    deliver()
    alert = Alert.objects.get()
    assert alert.last_error == "webhook: answered HTTP 500" and alert.posted_at is None
    Alert.objects.filter(pk=alert.pk).update(
        created_at=timezone.now() - timedelta(minutes=5), attempts=ALERT_MAX_ATTEMPTS - 1
    )
    assert alerts_send_pending() == 0
    Alert.objects.filter(pk=alert.pk).update(attempts=ALERT_MAX_ATTEMPTS)
    posts = len(channels.posts)
    alerts_send_pending()
    assert len(channels.posts) == posts  # given up: left in the admin with its error
    assert len(mail.outbox) == 1


def test_a_slow_webhook_costs_the_worker_its_timeout_not_the_run(settings, channels, job, monkeypatch):
    monkeypatch.setattr("scheduler.alert_channels.WEBHOOK_DEADLINE", 0.3)
    channels.delay = 2.0
    started = timezone.now()
    fail(job)  # the run path: records, never sends
    assert (timezone.now() - started).total_seconds() < 0.5
    deliver()
    assert Alert.objects.get().last_error == "webhook: not reached (ReadTimeout)"


def test_the_send_alert_task_retries_with_backoff_and_jitter_within_bounds():
    from scheduler.alert_channels import AlertNotSent
    from scheduler.tasks_alerts import send_alert

    assert send_alert.name == SEND_ALERT_TASK
    assert send_alert.autoretry_for == (AlertNotSent,)
    assert send_alert.retry_backoff and send_alert.retry_jitter
    assert 0 < send_alert.max_retries <= 10 and send_alert.retry_backoff_max <= 600


def test_an_alert_sent_on_one_channel_is_not_sent_again_there_when_the_other_is_retried(channels, job):
    channels.status = 503
    fail(job)
    deliver()
    channels.status = 200
    deliver()
    assert len(mail.outbox) == 1
    assert len(channels.posts) == 2 and channels.posts[0] == channels.posts[1]  # the 503, then the retry
    alert = Alert.objects.get()
    assert alert.attempts == 2 and alert.posted_at and alert.last_error == ""
    deliver()
    assert len(channels.posts) == 2 and Alert.objects.get().attempts == 2


def test_resume_after_an_auto_pause_gives_the_job_fresh_chances(settings, channels, job):
    settings.JOB_AUTO_PAUSE_AFTER = 2
    fail(job)
    fail(job)
    job.refresh_from_db()
    assert job.is_paused
    job_resume(job=job)
    fail(job)  # streak 3: the last two scheduled runs failed, but one of them before the pause
    job.refresh_from_db()
    assert not job.is_paused
    fail(job)
    job.refresh_from_db()
    assert job.is_paused
    assert kinds(job) == ["failing", "auto_paused", "auto_paused"]


# --- auto-pause ---------------------------------------------------------------------------------


def paused(job: Job) -> bool:
    return Job.objects.select_related("periodic_task").get(pk=job.pk).is_paused


@pytest.mark.parametrize("threshold", [2, 3, 5])
def test_a_job_is_paused_at_exactly_n_failed_scheduled_runs_not_one_before(settings, channels, job, threshold):
    settings.JOB_AUTO_PAUSE_AFTER = threshold
    for _ in range(threshold - 1):
        fail(job)
    assert not paused(job)
    last = fail(job, error="step 1 (examples.fail) failed: RuntimeError: feed down at 02:30\nTraceback ...")
    assert paused(job)
    stored = Job.objects.get(pk=job.pk)
    assert stored.pause_note == (
        f"auto-paused after {threshold} consecutive failures "
        "(last: step 1 (examples.fail) failed: RuntimeError: feed down at 02:30)"
    )
    assert stored.paused_by is None and stored.paused_at is not None  # alloysync paused it, not a person
    assert kinds(job) == ["failing", "auto_paused"]
    deliver()
    assert len(mail.outbox) == 2 and len(channels.posts) == 2
    text = Alert.objects.get(kind="auto_paused").text
    assert f"was paused after {threshold} scheduled runs failed in a row" in text
    assert "Next run: none while paused (resume it in the admin)" in text
    assert text.splitlines()[-1].endswith(f"/admin/scheduler/jobrun/{last.pk}/change/")


def test_only_a_resume_ends_an_auto_pause(settings, channels, job):
    settings.JOB_AUTO_PAUSE_AFTER = 2
    fail(job)
    fail(job)
    succeed(job, trigger=JobRun.Trigger.MANUAL)  # an operator's test run passes: still paused
    assert paused(job)
    assert kinds(job) == ["failing", "auto_paused", "recovered"]
    assert "Next run: none while paused" in Alert.objects.get(kind="recovered").text
    job_resume(job=Job.objects.get(pk=job.pk))
    assert not paused(job)
    with pytest.raises(JobStateError):
        job_resume(job=Job.objects.get(pk=job.pk))


def test_with_n_1_the_first_scheduled_failure_pauses_with_one_alert_not_two(settings, channels, job):
    settings.JOB_AUTO_PAUSE_AFTER = 1
    fail(job)
    assert paused(job)
    assert kinds(job) == ["auto_paused"]  # it says the job failed, too


def test_manual_failures_do_not_count_towards_auto_pause(settings, channels, job):
    settings.JOB_AUTO_PAUSE_AFTER = 3
    fail(job)
    fail(job, trigger=JobRun.Trigger.MANUAL)
    fail(job, trigger=JobRun.Trigger.API)
    fail(job)  # streak 4, two scheduled failures
    assert not paused(job)
    fail(job)
    assert paused(job)


def test_with_n_1_a_manual_failure_alerts_but_does_not_pause(settings, channels, job):
    settings.JOB_AUTO_PAUSE_AFTER = 1
    fail(job, trigger=JobRun.Trigger.MANUAL)
    assert not paused(job)
    assert kinds(job) == ["failing"]


def test_a_success_in_between_starts_the_count_again(settings, channels, job):
    settings.JOB_AUTO_PAUSE_AFTER = 3
    fail(job)
    fail(job)
    succeed(job)
    fail(job)
    fail(job)
    assert not paused(job)
    fail(job)
    assert paused(job)


def test_auto_pause_off_never_pauses(settings, channels, job):
    settings.JOB_AUTO_PAUSE_AFTER = 0
    for _ in range(12):
        fail(job)
    assert not paused(job)
    assert kinds(job) == ["failing"]


def test_a_job_an_operator_paused_is_left_as_they_paused_it(settings, channels, job):
    settings.JOB_AUTO_PAUSE_AFTER = 2
    fail(job)
    job_pause(job=Job.objects.get(pk=job.pk), note="fixing the feed")
    fail(job)  # a scheduled run already under way when they paused
    stored = Job.objects.get(pk=job.pk)
    assert stored.pause_note == "fixing the feed"
    assert kinds(job) == ["failing"]


# --- admin ----------------------------------------------------------------------------------------


def test_the_admin_lists_alerts_read_only_with_how_each_send_went(admin_client, settings, channels, job):
    fail(job)
    deliver()
    channels.status = 500
    succeed(job)
    deliver()
    page = admin_client.get("/admin/scheduler/alert/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "FAILING: &quot;Gully report&quot;" in body and "RECOVERED" in body
    assert "sent" in body and "1 tries so far" in body
    alert = Alert.objects.get(kind="recovered")
    detail = admin_client.get(f"/admin/scheduler/alert/{alert.pk}/change/").content.decode()
    assert "webhook: answered HTTP 500" in detail and "recovered: its latest run succeeded" in detail
    assert 'name="_save"' not in detail  # nothing to edit
    assert admin_client.get("/admin/scheduler/alert/add/").status_code == 403


def test_the_alert_list_costs_a_fixed_number_of_queries(admin_client, channels, job, django_assert_max_num_queries):
    for _ in range(3):
        fail(job)
        succeed(job)
    admin_client.get("/admin/scheduler/alert/")
    with django_assert_max_num_queries(12) as few:
        admin_client.get("/admin/scheduler/alert/")
    for _ in range(10):
        fail(job)
        succeed(job)
    with django_assert_max_num_queries(len(few)):
        admin_client.get("/admin/scheduler/alert/")
