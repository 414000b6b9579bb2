"""The beat scheduler with real processes: changes made through the sync and the admin take effect
at the right next minute, without restarting beat."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from alloysync.fake_alloy import SAMPLE_CRON_ATTRIBUTE
from alloysync.models import SyncRun
from scheduler.models import Job, JobRun
from tests.alloysync.helpers import job_item
from tests.helpers import next_minute, requires_services, sleep_until, wait_for

pytestmark = [requires_services, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(420)]

EVERY_MINUTE = "* * * * *"
NEVER_IN_THIS_TEST = "0 0 1 1 *"


def ran_at(minute) -> set[str]:
    return set(
        JobRun.objects.filter(trigger="schedule", due_at=minute, status="succeeded").values_list("job__name", flat=True)
    )


def wait_for_sync_after(moment, processes) -> None:
    wait_for(
        lambda: SyncRun.objects.filter(started_at__gt=moment, status="succeeded").exists(),
        timeout=30,
        describe=f"a sync after {moment}\n{processes.logs()}",
    )


def admin_local_job(client, name: str, cron: str, job: Job | None = None) -> None:
    url = reverse("admin:scheduler_job_change", args=[job.pk]) if job else reverse("admin:scheduler_job_add")
    data = {"name": name, "cron": cron, "timezone": "UTC", "steps_text": 'examples.echo {"message": "hi"}'}
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]


def admin_action(client, action: str, job: Job, **extra: str) -> None:
    client.post(reverse("admin:scheduler_job_changelist"), {"action": action, "_selected_action": [job.pk], **extra})


def test_edits_pauses_resumes_and_removals_apply_at_the_next_minute_without_a_beat_restart(
    celery_processes, alloy_env, client, django_user_model
):
    server, env = alloy_env
    server.put_item(job_item("A edited in Alloy", cron=NEVER_IN_THIS_TEST, n=1))
    server.put_item(job_item("B paused then resumed in the admin", cron=EVERY_MINUTE, n=2))
    server.put_item(job_item("C removed from Alloy", cron=EVERY_MINUTE, n=3))
    client.force_login(django_user_model.objects.create_superuser("ops", "ops@example.org", "x" * 16))
    celery_processes.start("worker", "--concurrency=2", env=env)
    celery_processes.start("beat", env=env)
    wait_for(lambda: Job.objects.filter(source="alloy").count() == 3, timeout=60, describe=celery_processes.logs())
    admin_local_job(client, "D edited in the admin", EVERY_MINUTE)
    admin_local_job(client, "E deleted in the admin", EVERY_MINUTE)
    jobs = {job.name[0]: job for job in Job.objects.all()}

    first = next_minute(timezone.now() + timedelta(seconds=10))
    sleep_until(first + timedelta(seconds=12))
    assert ran_at(first) == {jobs[k].name for k in "BCDE"}, celery_processes.logs()

    changed_at = timezone.now()
    server.edit_item(f"{1:024x}", {SAMPLE_CRON_ATTRIBUTE: EVERY_MINUTE})
    server.remove_item(f"{3:024x}")
    admin_action(client, "pause_jobs", jobs["B"], apply="Pause", note="resurfacing")
    admin_local_job(client, jobs["D"].name, NEVER_IN_THIS_TEST, job=jobs["D"])
    client.post(reverse("admin:scheduler_job_delete", args=[jobs["E"].pk]), {"post": "yes"})
    wait_for_sync_after(changed_at, celery_processes)
    second = first + timedelta(minutes=1)
    assert timezone.now() < second - timedelta(seconds=3), "the changes took too long to test the next minute"
    sleep_until(second + timedelta(seconds=12))
    assert ran_at(second) == {jobs["A"].name}, celery_processes.logs()

    admin_action(client, "resume_jobs", jobs["B"])
    admin_local_job(client, jobs["D"].name, EVERY_MINUTE, job=jobs["D"])
    third = second + timedelta(minutes=1)
    sleep_until(third + timedelta(seconds=12))
    assert ran_at(third) == {jobs[k].name for k in "ABD"}, celery_processes.logs()
    assert not Job.objects.filter(pk=jobs["E"].pk).exists()
