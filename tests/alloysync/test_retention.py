"""Retention of sync records: old ones go with every prune, what the sync and operators rely on stays."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from alloysync.models import SyncRun
from alloysync.retention import KEEP_LATEST_SYNCS
from scheduler.retention import history_prune

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def add_syncs(
    ages_in_days: Sequence[float], *, status: str = SyncRun.Status.SUCCEEDED, mode: str = SyncRun.Mode.INCREMENTAL
) -> list[SyncRun]:
    """Sync records started ``ages_in_days`` ago (before NOW), finished a second later unless running."""
    syncs = []
    for age in ages_in_days:
        started = NOW - timedelta(days=age)
        finished = None if status == SyncRun.Status.RUNNING else started + timedelta(seconds=1)
        syncs.append(
            SyncRun.objects.create(
                trigger=SyncRun.Trigger.SCHEDULE, mode=mode, status=status, started_at=started, finished_at=finished
            )
        )
    return syncs


def ids(syncs: Sequence[SyncRun]) -> set[int]:
    return {sync.pk for sync in syncs}


@pytest.fixture
def retention(settings):
    settings.JOB_RUN_RETENTION_DAYS = 90
    settings.SYNC_RUN_RETENTION_DAYS = 30
    return settings


def test_old_sync_records_go_but_the_latest_20_the_last_failure_and_the_last_success_of_each_mode_stay(retention):
    last_full = add_syncs([60], mode=SyncRun.Mode.FULL)  # incremental syncs measure from it
    older_full = add_syncs([61], mode=SyncRun.Mode.FULL)
    last_items = add_syncs([70], mode=SyncRun.Mode.ITEMS)
    last_refused = add_syncs([40], status=SyncRun.Status.REFUSED)
    older_failed = add_syncs([45], status=SyncRun.Status.FAILED)
    running = add_syncs([50], status=SyncRun.Status.RUNNING)  # a stuck record is the sync's to settle
    recent = add_syncs([0.01 * n for n in range(1, KEEP_LATEST_SYNCS - 5)] + [29])  # newer than 30 days
    latest_old = add_syncs([31, 32, 33, 34, 35])  # with the recent ones: the latest 20
    stale = add_syncs([36 + n for n in range(10)] + [400])

    [_, outcome] = history_prune(now=NOW)

    kept = last_full + last_items + last_refused + running + recent + latest_old
    assert set(SyncRun.objects.values_list("pk", flat=True)) == ids(kept)
    assert outcome.removed == {"sync records": len(stale + older_full + older_failed)}


def test_a_recent_failure_lets_older_ones_go(retention):
    add_syncs([0.01 * n for n in range(1, KEEP_LATEST_SYNCS + 1)])
    recent_failure = add_syncs([1], status=SyncRun.Status.FAILED)
    add_syncs([40, 41], status=SyncRun.Status.FAILED)
    history_prune(now=NOW)
    assert set(SyncRun.objects.filter(status=SyncRun.Status.FAILED).values_list("pk", flat=True)) == ids(recent_failure)


def test_the_command_reports_sync_records_and_dry_run_writes_nothing(retention, capsys):
    add_syncs([0.01 * n for n in range(1, KEEP_LATEST_SYNCS + 1)])
    add_syncs([40, 41, 42])
    call_command("prune_history", "--dry-run")
    assert "sync records older than 30 days" in capsys.readouterr().out
    assert SyncRun.objects.count() == KEEP_LATEST_SYNCS + 3
    call_command("prune_history")
    out = capsys.readouterr().out
    assert "sync records older than 30 days (before " in out
    assert "removed 3 sync records" in out
    assert SyncRun.objects.count() == KEEP_LATEST_SYNCS


def test_sync_retention_0_keeps_every_record(retention, capsys):
    retention.SYNC_RUN_RETENTION_DAYS = 0
    syncs = add_syncs([400 + n for n in range(30)])
    call_command("prune_history")
    assert "sync records: SYNC_RUN_RETENTION_DAYS is 0, keeping everything" in capsys.readouterr().out
    assert set(SyncRun.objects.values_list("pk", flat=True)) == ids(syncs)
