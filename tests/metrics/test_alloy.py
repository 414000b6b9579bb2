"""Sync and Alloy request metrics, from real syncs against the fake Alloy over a socket."""

from __future__ import annotations

import pytest
from django.db import DatabaseError

import alloysync.metrics
from alloysync.metrics import alloy_requests_flush, alloy_response_tally
from alloysync.models import SyncRun
from alloysync.sync import alloy_sync
from tests.alloysync.helpers import sample_items
from tests.metrics.helpers import scrape, value

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_a_sync_counts_itself_and_each_request_with_its_retries(client, settings, alloy):
    for item in sample_items():
        alloy.put_item(item)
    alloy.faults.fail_next(1, status=503)
    alloy.faults.rate_limit_next(1, seconds=0)
    run = alloy_sync(trigger=SyncRun.Trigger.COMMAND, mode=SyncRun.Mode.FULL).run
    assert run.status == "succeeded"
    found = scrape(client, settings)
    assert value(found, "alloysync_syncs_total", mode="full", outcome="succeeded") == 1
    requests = {
        dict(labels)["status"]: count
        for (name, labels), count in found.items()
        if name == "alloysync_alloy_requests_total" and dict(labels)["endpoint"] == "/api/aqs/query"
    }
    assert requests == {"503": 1, "429": 1, "200": 1}
    assert sum(requests.values()) == run.requests
    assert value(found, "alloysync_alloy_rate_limited_total", endpoint="/api/aqs/query") == 1


def test_a_failed_sync_still_counts_its_requests(client, settings, alloy):
    alloy.faults.fail_next(100, status=401)
    run = alloy_sync(trigger=SyncRun.Trigger.COMMAND, mode=SyncRun.Mode.FULL).run
    assert run.status == "failed"
    found = scrape(client, settings)
    assert value(found, "alloysync_syncs_total", mode="full", outcome="failed") == 1
    assert value(found, "alloysync_alloy_requests_total", endpoint="/api/aqs/query", status="401") == 1


def test_an_unreachable_alloy_counts_as_error(client, settings, alloy):
    settings.ALLOY_BASE_URL = "http://127.0.0.1:1"
    run = alloy_sync(trigger=SyncRun.Trigger.COMMAND, mode=SyncRun.Mode.FULL).run
    assert run.status == "failed"
    assert (
        value(scrape(client, settings), "alloysync_alloy_requests_total", endpoint="/api/aqs/query", status="error")
        >= 1
    )


def test_a_database_refusing_the_tally_keeps_it_and_logs_once(client, settings, monkeypatch, caplog):
    def refuse(counts):
        raise DatabaseError("down")

    monkeypatch.setattr(alloysync.metrics, "_flush_failed_logged", False)
    monkeypatch.setattr(alloysync.metrics, "counters_add", refuse)
    alloy_response_tally("/api/item/{id}", "200")
    alloy_requests_flush()
    alloy_response_tally("/api/item/{id}", "200")
    alloy_requests_flush()  # neither raises
    assert caplog.text.count("could not be counted") == 1
    monkeypatch.undo()
    alloy_requests_flush()
    assert (
        value(scrape(client, settings), "alloysync_alloy_requests_total", endpoint="/api/item/{id}", status="200") == 2
    )


def test_a_sync_whose_process_died_counts_failed_once_in_its_own_mode(client, settings, alloy):
    from django.utils import timezone

    SyncRun.objects.create(trigger="schedule", mode="items", started_at=timezone.now(), status="running")
    run = alloy_sync(trigger=SyncRun.Trigger.COMMAND, mode=SyncRun.Mode.FULL).run
    assert (run.mode, run.status) == ("full", "succeeded")
    found = scrape(client, settings)
    assert value(found, "alloysync_syncs_total", mode="items", outcome="failed") == 1
    assert value(found, "alloysync_syncs_total", mode="full", outcome="succeeded") == 1
