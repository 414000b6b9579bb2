"""Gauges read at scrape time: jobs by state, the beat leader, the write-back backlog, the last sync."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alloysync.models import ItemState, SyncRun
from scheduler.models import Job, Lease
from scheduler.services import job_pause
from tests.metrics.helpers import scrape, value

pytestmark = pytest.mark.django_db


def test_every_job_state_is_shown_even_at_zero(client, settings):
    found = scrape(client, settings)
    for state in ("removed", "invalid", "paused", "failing", "scheduled"):
        assert ("alloysync_jobs", frozenset({("state", state)})) in found
        assert value(found, "alloysync_jobs", state=state) == 0


def test_each_job_is_counted_once_in_its_first_state(client, settings, make_job):
    make_job(name="scheduled")
    failing = make_job(name="failing")
    Job.objects.filter(pk=failing.pk).update(failure_streak=2)
    paused_and_failing = make_job(name="paused")
    Job.objects.filter(pk=paused_and_failing.pk).update(failure_streak=1)
    job_pause(job=Job.objects.get(pk=paused_and_failing.pk), note="maintenance")
    invalid_and_paused = make_job(name="invalid")
    job_pause(job=invalid_and_paused, note="x")
    Job.objects.filter(pk=invalid_and_paused.pk).update(sync_error="cron refused")
    removed = make_job(name="removed")
    Job.objects.filter(pk=removed.pk).update(removed_at=timezone.now(), periodic_task=None, sync_error="gone")
    found = scrape(client, settings)
    assert {state: value(found, "alloysync_jobs", state=state) for state in
            ("removed", "invalid", "paused", "failing", "scheduled")} == {
        "removed": 1, "invalid": 1, "paused": 1, "failing": 1, "scheduled": 1,
    }  # fmt: skip


def _lease(expires_in: float) -> None:
    now = timezone.now()
    Lease.objects.update_or_create(
        name="beat",
        defaults={"holder": "host:1:abc", "acquired_at": now, "renewed_at": now,
                  "expires_at": now + timedelta(seconds=expires_in)},
    )  # fmt: skip


def test_the_beat_leader_is_one_only_while_a_lease_is_unexpired(client, settings):
    assert value(scrape(client, settings), "alloysync_beat_leader") == 0
    _lease(60)
    assert value(scrape(client, settings), "alloysync_beat_leader") == 1
    _lease(-1)
    assert value(scrape(client, settings), "alloysync_beat_leader") == 0


def test_the_backlog_counts_items_still_to_be_written(client, settings):
    now = timezone.now()
    ItemState.objects.create(item_id="a" * 24, dirty_since=now)
    ItemState.objects.create(item_id="b" * 24, dirty_since=now)
    ItemState.objects.create(item_id="c" * 24)
    assert value(scrape(client, settings), "alloysync_write_back_backlog") == 2


def test_the_last_successful_sync_is_absent_until_one_succeeds(client, settings):
    now = timezone.now()
    SyncRun.objects.create(trigger="schedule", started_at=now, finished_at=now, status="failed")
    found = scrape(client, settings)
    assert not any(name.startswith("alloysync_last_successful_sync") for name, _ in found)
    assert not any(name.startswith("alloysync_seconds_since_last_successful_sync") for name, _ in found)
    done = now - timedelta(minutes=5)
    SyncRun.objects.create(trigger="schedule", started_at=done, finished_at=done, status="succeeded")
    SyncRun.objects.create(
        trigger="schedule", started_at=done, finished_at=done - timedelta(hours=1), status="succeeded"
    )
    found = scrape(client, settings)
    assert value(found, "alloysync_last_successful_sync_timestamp_seconds") == pytest.approx(done.timestamp())
    assert 299 <= value(found, "alloysync_seconds_since_last_successful_sync") < 330
