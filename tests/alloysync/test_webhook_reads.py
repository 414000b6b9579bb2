"""The read behind the webhook: pending items read from the fake Alloy and applied as a sync does.

The service is called directly here (tests/e2e/test_webhook_e2e.py runs it in a real worker).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from alloysync import webhook_reads
from alloysync.fake_alloy import SAMPLE_CRON_ATTRIBUTE
from alloysync.models import PendingItemRead, SyncRun
from alloysync.sync import SYNC_LEASE, alloy_sync, alloy_sync_items
from alloysync.webhook_reads import BUSY_RETRY_DELAY, READ_BATCH, pending_items_read, pending_reads_record
from config import celery_app
from config.env_secrets import Secret
from scheduler.leases import lease_hold
from scheduler.models import Job
from tests.alloysync.helpers import job_item

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]

SECRET = "wh-3b9f1c2d7e4a5b6c8d9e0f1a2b3c4d5e"


def item_id(n: int) -> str:
    return f"{n:024x}"


@pytest.fixture
def sent(monkeypatch):
    messages: list[tuple[str, dict]] = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, **options: messages.append((name, options)))
    return messages


@pytest.fixture
def synced(alloy):
    """Three jobs from the fake Alloy, synced; the fake's request log cleared."""
    for n in (1, 2, 3):
        alloy.put_item(job_item(f"job {n}", cron=f"{n} * * * *", n=n))
    assert alloy_sync(trigger=SyncRun.Trigger.COMMAND).run.created == 3
    alloy.clear_requests()
    return alloy


def gets(alloy) -> list[str]:
    return [request.path for request in alloy.requests if request.method == "GET"]


def pending() -> list[str]:
    return sorted(PendingItemRead.objects.values_list("item_id", flat=True))


def jobs() -> dict[str, Job]:
    return {job.external_id: job for job in Job.objects.filter(source="alloy")}


def test_a_pending_edited_item_is_read_by_id_applied_and_forgotten(synced, sent):
    synced.edit_item(item_id(2), {SAMPLE_CRON_ATTRIBUTE: "0 9 * * *"})
    pending_reads_record(item_ids=[item_id(2)])
    outcome = pending_items_read()
    run = SyncRun.objects.first()
    assert (run.trigger, run.mode, run.status, run.updated) == ("webhook", "items", "succeeded", 1)
    assert outcome == f"sync {run.pk} succeeded: read 1 item(s)"
    assert gets(synced) == [f"/api/item/{item_id(2)}"]
    assert jobs()[item_id(2)].cron == "0 9 * * *"
    assert pending() == [] and sent == []


def test_an_item_alloy_no_longer_has_removes_that_one_job_and_nothing_else(synced, sent):
    synced.remove_item(item_id(1))
    synced.remove_item(item_id(3))  # gone too, but no webhook named it: polling's business
    pending_reads_record(item_ids=[item_id(1), item_id(2)])
    pending_items_read()
    run = SyncRun.objects.first()
    assert (run.removed, run.unchanged) == (1, 1)
    removed = {external_id for external_id, job in jobs().items() if job.periodic_task_id is None}
    assert removed == {item_id(1)}


def test_nothing_pending_reads_nothing(synced, sent):
    assert pending_items_read() is None
    assert synced.requests == [] and not SyncRun.objects.filter(trigger="webhook").exists()


def test_a_storm_of_calls_about_one_item_is_one_get(client, settings, synced, sent, django_capture_on_commit_callbacks):
    settings.ALLOY_WEBHOOK_SECRET = Secret(SECRET)
    synced.edit_item(item_id(2), {SAMPLE_CRON_ATTRIBUTE: "0 9 * * *"})
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(200):
            response = client.post(
                "/alloy/webhook",
                data=json.dumps({"itemId": item_id(2)}),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {SECRET}",
            )
            assert response.status_code == 202
    assert [name for name, _ in sent] == ["alloysync.read_items"]
    pending_items_read()
    assert gets(synced) == [f"/api/item/{item_id(2)}"]
    assert jobs()[item_id(2)].cron == "0 9 * * *"


def test_a_call_during_the_read_keeps_its_row_and_queues_another_read(synced, sent, monkeypatch):
    def read_while_a_call_arrives(item_ids, **kwargs):
        outcome = alloy_sync_items(item_ids, **kwargs)
        pending_reads_record(item_ids=[item_id(1)])  # the item is edited again just after its GET
        return outcome

    monkeypatch.setattr(webhook_reads, "alloy_sync_items", read_while_a_call_arrives)
    pending_reads_record(item_ids=[item_id(1), item_id(2)])
    pending_items_read()
    assert pending() == [item_id(1)]
    assert [(name, options["countdown"]) for name, options in sent] == [("alloysync.read_items", 1)]


def test_while_another_sync_runs_the_rows_stay_and_one_retry_is_queued(synced, sent):
    assert lease_hold(name=SYNC_LEASE, holder="worker-2:4242:abcd", ttl=300)
    pending_reads_record(item_ids=[item_id(1)])
    first, second = pending_items_read(), pending_items_read()
    assert first == f"another sync is running: 1 item(s) stay pending, read again in {BUSY_RETRY_DELAY:g} s"
    assert second == "another sync is running: 1 item(s) stay pending"  # one retry is enough
    assert [(name, options["countdown"]) for name, options in sent] == [("alloysync.read_items", BUSY_RETRY_DELAY)]
    assert pending() == [item_id(1)] and synced.requests == []


def test_a_failed_read_keeps_the_rows_records_the_failure_and_queues_nothing(synced, sent, settings):
    settings.ALLOY_API_KEY = Secret("0" * 36)  # Alloy answers 401: fails at once, no retries
    pending_reads_record(item_ids=[item_id(1)])
    outcome = pending_items_read()
    run = SyncRun.objects.first()
    assert (run.trigger, run.status) == ("webhook", "failed")
    assert outcome.startswith(f"sync {run.pk} failed: 1 item(s) stay pending")
    assert pending() == [item_id(1)] and sent == []


def test_a_backlog_is_read_in_batches_each_queuing_the_next(synced, sent, monkeypatch):
    assert READ_BATCH == 50
    monkeypatch.setattr(webhook_reads, "READ_BATCH", 3)  # past 50 GETs a minute the client paces them
    pending_reads_record(item_ids=[item_id(n) for n in range(1, 6)])
    pending_items_read()
    assert len(pending()) == 2
    assert [name for name, _ in sent] == ["alloysync.read_items"]
    pending_items_read()
    assert pending() == []
    assert len(gets(synced)) == 5


def test_the_items_pending_longest_are_read_first(synced, sent, monkeypatch):
    monkeypatch.setattr(webhook_reads, "READ_BATCH", 1)
    PendingItemRead.objects.create(item_id=item_id(1), requested_at=timezone.now())
    PendingItemRead.objects.create(item_id=item_id(2), requested_at=timezone.now() - timedelta(minutes=1))
    pending_items_read()
    assert gets(synced) == [f"/api/item/{item_id(2)}"]
