"""Operators see in the admin what alloysync still owes Alloy, and why a write keeps failing."""

from __future__ import annotations

import pytest
from django.utils import timezone

from alloysync.models import ItemState

pytestmark = pytest.mark.django_db


def test_the_item_states_page_lists_pending_and_failing_writes(admin_client):
    now = timezone.now()
    ItemState.objects.create(item_id="a" * 24, written={"status": "succeeded"})
    ItemState.objects.create(item_id="b" * 24, dirty_since=now, attempts=3, last_error="HTTP 503 from Alloy")
    ItemState.objects.create(item_id="c" * 24, dirty_since=now)
    page = admin_client.get("/admin/alloysync/itemstate/?pending=failing").content.decode()
    assert "b" * 24 in page and "HTTP 503 from Alloy" in page
    assert "a" * 24 not in page and "c" * 24 not in page
    pending = admin_client.get("/admin/alloysync/itemstate/?pending=yes").content.decode()
    assert "b" * 24 in pending and "c" * 24 in pending and "a" * 24 not in pending
    everything = admin_client.get("/admin/alloysync/itemstate/").content.decode()
    assert "succeeded" in everything


def test_sync_runs_can_be_filtered_by_mode(admin_client):
    from alloysync.models import SyncRun

    now = timezone.now()
    SyncRun.objects.create(trigger="schedule", mode="incremental", status="succeeded", started_at=now, message="inc")
    SyncRun.objects.create(trigger="webhook", mode="items", status="succeeded", started_at=now, message="by id")
    page = admin_client.get("/admin/alloysync/syncrun/?mode=items").content.decode()
    assert "by id" in page and ">inc<" not in page
