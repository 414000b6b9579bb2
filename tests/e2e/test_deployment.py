"""The whole product with real processes: fake Alloy, celery beat and worker, PostgreSQL and Redis."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from alloysync.models import SyncRun
from scheduler.models import Job, JobRun, Lease
from tests.alloysync.helpers import job_item
from tests.helpers import next_minute, requires_services, sleep_until, wait_for

pytestmark = [requires_services, pytest.mark.e2e, pytest.mark.slow]


def scheduled_runs(job, **filters):
    return JobRun.objects.filter(job=job, trigger=JobRun.Trigger.SCHEDULE, **filters).exclude(finished_at=None)


@pytest.mark.timeout(300)
def test_beat_syncs_from_alloy_a_worker_runs_the_job_and_a_pause_stops_it(
    celery_processes, alloy_env, client, django_user_model
):
    server, env = alloy_env
    server.put_item(job_item("Every minute", cron="* * * * *", steps='examples.echo {"message": "tick"}', n=1))
    server.put_item(job_item("Broken", cron="61 * * * *", n=2))
    celery_processes.start("worker", "--concurrency=2", env=env)
    celery_processes.start("beat", env=env)

    sync = wait_for(
        lambda: SyncRun.objects.filter(trigger="schedule", status="succeeded").first(),
        timeout=60,
        describe=f"a scheduled sync\n{celery_processes.logs()}",
    )
    assert (sync.created, sync.invalid) == (1, 1)
    job = Job.objects.get(external_id=f"{1:024x}")
    run = wait_for(lambda: scheduled_runs(job).first(), timeout=80, describe=celery_processes.logs())
    assert run.status == "succeeded"
    assert list(run.steps.values_list("function", "status", "result")) == [("examples.echo", "succeeded", "tick")]

    client.force_login(django_user_model.objects.create_superuser("ops", "ops@example.org", "x" * 16))
    action = {"action": "pause_jobs", "_selected_action": [job.pk], "apply": "Pause", "note": "resurfacing"}
    client.post(reverse("admin:scheduler_job_changelist"), action)
    paused_at = timezone.now()
    job.refresh_from_db()
    assert job.is_paused
    sleep_until(next_minute(paused_at) + timedelta(seconds=15))
    assert not scheduled_runs(job, created_at__gt=paused_at).exists(), celery_processes.logs()
    assert SyncRun.objects.filter(started_at__gt=paused_at, status="succeeded").exists()  # syncs went on
    job.refresh_from_db()
    assert job.is_paused and job.pause_note == "resurfacing"  # and none of them resumed it


@pytest.mark.timeout(420)
def test_two_beats_send_each_run_once_and_the_follower_takes_over(celery_processes, make_job):
    job = make_job(cron="* * * * *", steps='examples.echo {"message": "tick"}')
    beat_env = {"BEAT_LEASE_TTL": "10"}
    celery_processes.start("worker", "--concurrency=2")
    beats = {process.pid: process for process in (celery_processes.start("beat", env=beat_env) for _ in range(2))}
    lease = wait_for(lambda: Lease.objects.filter(name="beat").first(), timeout=30, describe=celery_processes.logs())
    leader_pid = int(lease.holder.split(":")[1])
    assert leader_pid in beats

    started = timezone.now()
    first_boundary = next_minute(started)
    sleep_until(first_boundary + timedelta(minutes=1, seconds=5))  # two due times with both beats up
    beats[leader_pid].send_signal(signal.SIGKILL)
    beats[leader_pid].wait()
    killed_at = timezone.now()
    sleep_until(next_minute(killed_at) + timedelta(minutes=1, seconds=10))  # two more after the kill

    minutes = Counter(
        run.created_at.replace(second=0, microsecond=0) for run in scheduled_runs(job, created_at__gte=first_boundary)
    )
    assert len(minutes) >= 4, (minutes, celery_processes.logs())
    assert set(minutes.values()) == {1}, (minutes, celery_processes.logs())
    follower_pid = next(pid for pid in beats if pid != leader_pid)
    assert Lease.objects.get(name="beat").holder.split(":")[1] == str(follower_pid)
    assert any(minute > killed_at for minute in minutes)
