"""The admin's lists read right at a glance: a "Paused" mark only on paused jobs, filters named for what
operators ask, durations as people say them, every time with its zone, failed runs in red."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from alloysync.models import SyncRun
from scheduler.admin import next_fire_times
from scheduler.models import Job, JobRun
from scheduler.services import job_pause, job_remove

pytestmark = pytest.mark.django_db

JOBS = reverse("admin:scheduler_job_changelist")
RUNS = reverse("admin:scheduler_jobrun_changelist")
SYNCS = reverse("admin:alloysync_syncrun_changelist")


@pytest.fixture
def ops_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("ops", "ops@example.org", "a-long-password-1"))
    return client


def listed_names(client, query: str) -> set[str]:
    response = client.get(JOBS + query)
    return {str(job) for job in response.context["cl"].result_list}


def test_only_paused_jobs_carry_the_paused_mark(ops_client, make_job):
    make_job(name="running one")
    paused = make_job(name="paused one")
    job_pause(job=paused, note="roadworks")
    page = ops_client.get(JOBS).content.decode()
    assert page.count('class="paused-mark"') == 1
    row = next(row for row in page.split("<tr") if "paused one" in row)
    assert 'class="paused-mark" title="roadworks"' in row
    assert "icon-no.svg" not in page and "icon-yes.svg" not in page  # no red cross on running jobs


def test_the_filters_are_named_paused_failing_has_sync_error_and_removed(ops_client, make_job):
    plain = make_job(name="plain")
    paused = make_job(name="paused")
    job_pause(job=paused, note="x")
    failing = make_job(name="failing")
    Job.objects.filter(pk=failing.pk).update(failure_streak=2)
    refused = make_job(name="refused")
    Job.objects.filter(pk=refused.pk).update(sync_error="cron '61 * * * *': minute '61' is out of range")
    removed = make_job(name="removed")
    job_remove(job=removed)

    page = ops_client.get(JOBS).content.decode()
    for title in ("paused", "failing", "has sync error", "removed"):
        assert f"By {title}" in page
    everyone = {"plain", "paused", "failing", "refused", "removed"}
    assert listed_names(ops_client, "?paused=yes") == {"paused"}
    assert listed_names(ops_client, "?paused=no") == {"plain", "failing", "refused"}
    assert listed_names(ops_client, "?failing=yes") == {"failing"}
    assert listed_names(ops_client, "?failing=no") == everyone - {"failing"}
    assert listed_names(ops_client, "?sync_error=yes") == {"refused"}
    assert listed_names(ops_client, "?removed=yes") == {"removed"}
    assert listed_names(ops_client, "?removed=no") == everyone - {"removed"}
    assert plain.pk  # made through the service, as the admin makes them


def test_the_next_run_is_shown_in_the_jobs_zone_with_the_zone_named(ops_client, make_job):
    make_job(name="london", cron="30 2 * * *", timezone="Europe/London")
    make_job(name="utc", cron="30 2 * * *", timezone="UTC")
    page = ops_client.get(JOBS).content.decode()
    assert re.search(r"\d{4}-\d\d-\d\d 02:30 (GMT|BST)</span> <small>Europe/London</small>", page)
    assert re.search(r"\d{4}-\d\d-\d\d 02:30 UTC</span>", page)


def test_a_failing_jobs_last_run_is_a_red_badge_saying_how_many_in_a_row(ops_client, make_job):
    job = make_job()
    JobRun.objects.create(job=job, trigger="schedule", status="failed")
    Job.objects.filter(pk=job.pk).update(failure_streak=3)
    page = ops_client.get(JOBS).content.decode()
    assert re.search(r'class="status-badge status-failed" style="background:#c62828;[^"]*">Failed \(3 in a row\)', page)


def make_run(job: Job, status: str, seconds: float) -> JobRun:
    started = datetime(2026, 11, 30, 2, 30, tzinfo=UTC)
    run = JobRun.objects.create(
        job=job, trigger="schedule", status=status, started_at=started, finished_at=started + timedelta(seconds=seconds)
    )
    return run


def test_the_run_list_shows_durations_as_people_say_them_times_with_their_zone_and_failures_in_red(
    ops_client, make_job
):
    job = make_job()
    quick, slow = make_run(job, "succeeded", 1.2), make_run(job, "failed", 184)
    page = ops_client.get(RUNS).content.decode()
    assert ">1.2 s<" in page and ">3 min 4 s<" in page
    assert "2026-11-30 02:30:00 UTC" in page
    assert page.count('class="status-badge status-failed"') == 1
    assert page.count('class="status-badge status-succeeded"') == 1
    JobRun.objects.filter(pk=slow.pk).update(due_at=datetime(2026, 11, 30, 2, 30, tzinfo=UTC))
    detail = ops_client.get(reverse("admin:scheduler_jobrun_change", args=[slow.pk])).content.decode()
    assert "3 min 4 s" in detail and "2026-11-30 02:33:04 UTC" in detail
    assert "Due (scheduled runs)" in detail and "2026-11-30 02:30:00 UTC" in detail
    assert quick.pk != slow.pk


def test_the_sync_list_shows_durations_and_times_with_their_zone(ops_client):
    started = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    SyncRun.objects.create(
        trigger="schedule",
        mode="full",
        status="succeeded",
        started_at=started,
        finished_at=started + timedelta(seconds=184),
    )
    SyncRun.objects.create(
        trigger="command",
        mode="full",
        status="failed",
        started_at=started,
        finished_at=started + timedelta(seconds=0.4),
    )
    SyncRun.objects.filter(status="failed").update(items_read=100_000, created=12, updated=345, removed=3)
    page = ops_client.get(SYNCS).content.decode()
    assert ">3 min 4 s<" in page and ">0.4 s<" in page
    assert ">100,000<" in page and "12 created<br>345 updated<br>3 removed" in page
    assert "2026-11-30 02:00:00 UTC" in page
    assert page.count('class="status-badge status-failed"') == 1


def test_next_fire_times_gives_five_times_in_the_jobs_zone_across_a_clock_change():
    after = datetime(2026, 10, 23, 12, 0, tzinfo=UTC)
    times = next_fire_times("30 1 * * 0", "Europe/London", after)
    assert [f"{when:%Y-%m-%d %H:%M %Z}" for when in times] == [
        "2026-10-25 01:30 BST",
        "2026-11-01 01:30 GMT",
        "2026-11-08 01:30 GMT",
        "2026-11-15 01:30 GMT",
        "2026-11-22 01:30 GMT",
    ]


def test_what_alloysync_owes_alloy_shows_its_times_with_their_zone(ops_client):
    from alloysync.models import ItemState

    owed = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    state = ItemState.objects.create(item_id="b" * 24, dirty_since=owed, next_attempt_at=owed + timedelta(minutes=5))
    page = ops_client.get(reverse("admin:alloysync_itemstate_changelist")).content.decode()
    assert "2026-11-30 02:00:00 UTC" in page and "2026-11-30 02:05:00 UTC" in page
    detail = ops_client.get(reverse("admin:alloysync_itemstate_change", args=[state.pk])).content.decode()
    assert "2026-11-30 02:05:00 UTC" in detail
