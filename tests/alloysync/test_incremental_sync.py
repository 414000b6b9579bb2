"""Incremental syncs and reads of named items, against the fake Alloy over a real socket.

Between full reads a sync asks Alloy only for items edited since the previous sync began, then for
the count of items that are jobs; what users notice is that every kind of change still reaches its
job at the next sync, for a handful of requests whatever the number of items.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import PeriodicTasks

from alloysync.fake_alloy import SAMPLE_CRON_ATTRIBUTE, SAMPLE_DESIGN_CODE, SAMPLE_FLAG_ATTRIBUTE, make_item
from alloysync.models import ItemState, SyncRun
from alloysync.sync import SYNC_LEASE, SyncAlreadyRunning, alloy_sync, alloy_sync_items
from scheduler.leases import lease_hold
from scheduler.models import Job
from tests.alloysync.helpers import job_item

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]

WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.I)
QUERY, COUNT = ("POST", "/api/aqs/query"), ("POST", "/api/aqs/statistics")


@pytest.fixture(autouse=True)
def no_look_back(settings):
    # The look-back re-reads recent edits on purpose; most tests here want exactly what changed.
    settings.ALLOY_SYNC_LOOK_BACK = 0
    settings.ALLOY_FULL_SYNC_INTERVAL = 86400


def sync(**kwargs):
    kwargs.setdefault("trigger", SyncRun.Trigger.SCHEDULE)
    return alloy_sync(**kwargs).run


def item_id(n: int) -> str:
    return f"{n:024x}"


def jobs():
    return {job.external_id: job for job in Job.objects.filter(source="alloy").select_related("periodic_task")}


def calls(alloy):
    return [(request.method, request.path) for request in alloy.requests]


def fill(alloy, count):
    for n in range(1, count + 1):
        alloy.put_item(job_item(f"job {n}", cron=f"{n % 60} * * * *", n=n))


@pytest.mark.parametrize("count", [10, 350])
def test_a_no_change_incremental_sync_makes_at_most_3_requests_and_writes_nothing(alloy, count):
    fill(alloy, count)
    first = sync()
    assert (first.mode, first.created) == ("full", count)
    alloy.clear_requests()
    last_change = PeriodicTasks.last_change()
    with CaptureQueriesContext(connection) as queries:
        run = sync()
    assert (run.mode, run.status, run.requests) == ("incremental", "succeeded", 2)
    assert calls(alloy) == [QUERY, COUNT]
    assert (run.items_read, run.created, run.updated, run.removed) == (0, 0, 0, 0)
    writes = [q["sql"] for q in queries if WRITES.match(q["sql"]) and "alloysync_syncrun" not in q["sql"]]
    # The lease, and the metrics' counts of this sync and its requests (/metrics), are bookkeeping.
    writes = [sql for sql in writes if "scheduler_lease" not in sql and "scheduler_metriccounter" not in sql]
    assert writes == []
    assert PeriodicTasks.last_change() == last_change


def test_an_edit_reaches_its_job_at_the_next_sync_reading_only_that_item(alloy):
    fill(alloy, 150)
    sync()
    alloy.edit_item(item_id(7), {SAMPLE_CRON_ATTRIBUTE: "15 4 * * *"})
    run = sync()
    assert (run.mode, run.items_read, run.updated, run.unchanged) == ("incremental", 1, 1, 0)
    assert jobs()[item_id(7)].cron == "15 4 * * *"


def test_an_edit_of_an_unrelated_attribute_is_read_and_changes_nothing(alloy):
    fill(alloy, 3)
    sync()
    alloy.edit_item(item_id(2), {"attributes_itemsSubtitle": "someone else's note"})
    run = sync()
    assert (run.mode, run.items_read, run.unchanged, run.updated) == ("incremental", 1, 1, 0)


def test_an_unflagged_item_loses_its_job_at_the_next_sync(alloy):
    fill(alloy, 4)
    sync()
    alloy.edit_item(item_id(2), {SAMPLE_FLAG_ATTRIBUTE: False})
    run = sync()
    assert (run.mode, run.removed) == ("incremental", 1)
    assert jobs()[item_id(2)].periodic_task is None
    assert sum(job.periodic_task is not None for job in jobs().values()) == 3


def test_an_archived_item_loses_its_job_and_comes_back_when_restored(alloy):
    fill(alloy, 4)
    sync()
    archived = alloy.get(item_id(3))
    archived["collection"] = "Archive"
    alloy.put_item(archived)
    run = sync()
    assert (run.mode, run.removed) == ("incremental", 1)
    assert jobs()[item_id(3)].removed_at is not None
    archived["collection"] = "Live"
    alloy.put_item(archived)
    run = sync()
    assert (run.mode, run.created) == ("incremental", 1)
    assert jobs()[item_id(3)].periodic_task is not None


def test_a_hard_delete_is_caught_by_the_count_and_the_same_sync_reads_everything(alloy):
    fill(alloy, 5)
    sync()
    alloy.remove_item(item_id(4))  # invisible to an edit-time query
    alloy.clear_requests()
    run = sync()
    assert (run.mode, run.status, run.removed) == ("full", "succeeded", 1)
    assert "Alloy counts 4 items that are jobs, alloysync holds 5" in run.message
    assert calls(alloy)[:2] == [QUERY, COUNT]
    assert jobs()[item_id(4)].periodic_task is None
    # Once alloysync holds what Alloy counts, syncs are incremental again.
    assert sync().mode == "incremental"


def test_a_sync_under_way_shows_the_mode_it_is_reading_in(alloy):
    fill(alloy, 5)
    sync()
    alloy.edit_item(item_id(2), {SAMPLE_CRON_ATTRIBUTE: "0 3 * * *"})
    alloy.remove_item(item_id(4))  # the count disagrees: the same sync goes on to a full read
    seen: list[str] = []
    sync(on_page=lambda pages, items: seen.append(SyncRun.objects.get(status="running").mode))
    assert seen == ["incremental", "full"]


def test_a_partial_full_read_after_a_count_mismatch_still_removes_nothing(alloy):
    fill(alloy, 250)
    sync()
    for n in range(1, 4):
        alloy.remove_item(item_id(n))
    # The incremental read is one page (nothing changed); the full read it falls back to breaks
    # off at page 2 every time (a 400: not retried).
    alloy.faults.fail_page(2, 400, times=None)
    run = sync()
    assert (run.mode, run.status, run.removed) == ("full", "failed", 0)
    assert all(job.periodic_task is not None for job in jobs().values())
    assert sync().mode == "full"  # the mismatch is still there: the next sync reads everything again


def test_a_failed_incremental_read_changes_nothing_and_the_next_one_still_sees_the_edit(alloy):
    fill(alloy, 3)
    sync()
    alloy.edit_item(item_id(1), {SAMPLE_CRON_ATTRIBUTE: "5 5 * * *"})
    alloy.faults.fail_page(1, 400, times=1)
    failed = sync()
    assert (failed.mode, failed.status) == ("incremental", "failed")
    assert jobs()[item_id(1)].cron != "5 5 * * *"
    run = sync()
    assert (run.status, run.updated) == ("succeeded", 1)
    assert jobs()[item_id(1)].cron == "5 5 * * *"


def test_an_invalid_item_without_a_job_is_held_so_the_count_still_agrees(alloy):
    fill(alloy, 2)
    sync()
    alloy.put_item(job_item("broken", cron="61 * * * *", n=9))
    run = sync()
    assert (run.mode, run.invalid, run.created) == ("incremental", 1, 0)
    assert "minute" in ItemState.objects.get(item_id=item_id(9)).refusal
    assert sync().mode == "incremental"  # 3 flagged items, 2 jobs + 1 refused: no full read
    alloy.edit_item(item_id(9), {SAMPLE_CRON_ATTRIBUTE: "1 * * * *"})
    fixed = sync()
    assert (fixed.mode, fixed.created) == ("incremental", 1)
    assert ItemState.objects.get(item_id=item_id(9)).refusal == ""


def test_a_full_read_is_due_after_the_full_sync_interval_and_on_request(alloy, settings):
    fill(alloy, 2)
    assert sync().mode == "full"  # none has succeeded yet
    assert sync().mode == "incremental"
    assert sync(mode="full").mode == "full"
    settings.ALLOY_FULL_SYNC_INTERVAL = 0
    assert sync().mode == "full"


def test_the_look_back_reads_again_edits_just_before_the_previous_start(alloy, settings):
    settings.ALLOY_SYNC_LOOK_BACK = 300
    fill(alloy, 3)
    sync()
    run = sync()  # the items were created within the last 300 s: read again, unchanged
    assert (run.mode, run.items_read, run.unchanged, run.updated) == ("incremental", 3, 3, 0)


def test_named_items_are_read_by_id_and_applied(alloy):
    fill(alloy, 3)
    sync()
    alloy.edit_item(item_id(2), {SAMPLE_CRON_ATTRIBUTE: "0 9 * * *"})
    alloy.clear_requests()
    outcome = alloy_sync_items([item_id(2), item_id(2)])
    run = outcome.run
    assert (run.mode, run.trigger, run.status, run.updated) == ("items", "webhook", "succeeded", 1)
    assert calls(alloy) == [("GET", f"/api/item/{item_id(2)}")]
    assert jobs()[item_id(2)].cron == "0 9 * * *"


def test_a_named_item_alloy_no_longer_has_removes_that_one_job(alloy):
    fill(alloy, 3)
    sync()
    alloy.remove_item(item_id(1))
    run = alloy_sync_items([item_id(1), item_id(2)]).run
    assert (run.mode, run.removed, run.unchanged) == ("items", 1, 1)
    assert jobs()[item_id(1)].periodic_task is None
    assert jobs()[item_id(2)].periodic_task is not None


def test_a_named_item_of_another_design_or_unknown_creates_nothing(alloy):
    alloy.put_item(make_item({"attributes_itemsTitle": "a gully"}, design_code="designs_gullies"))
    other = next(item["itemId"] for item in alloy.items if item["designCode"] == "designs_gullies")
    run = alloy_sync_items([other, "0" * 24]).run
    assert (run.status, run.created, run.removed) == ("succeeded", 0, 0)
    assert not Job.objects.exists()
    assert SAMPLE_DESIGN_CODE  # the sample design is the job design in these settings


def test_named_items_wait_while_another_sync_runs(alloy):
    assert lease_hold(name=SYNC_LEASE, holder="worker-2:4242:abcd", ttl=300)
    with pytest.raises(SyncAlreadyRunning):
        alloy_sync_items([item_id(1)])
    assert alloy.requests == []


def test_a_change_of_settings_that_give_items_their_meaning_calls_for_a_full_read(alloy, settings):
    fill(alloy, 3)
    sync()
    settings.JOB_DEFAULT_TIMEZONE = "Europe/London"  # every job without a zone of its own changes
    run = sync()
    assert (run.mode, run.updated) == ("full", 3)
    assert {job.timezone for job in jobs().values()} == {"Europe/London"}
    assert sync().mode == "incremental"


def test_one_named_item_alloy_refuses_to_read_is_its_error_and_the_others_are_applied(alloy):
    fill(alloy, 3)
    sync()
    alloy.edit_item(item_id(2), {SAMPLE_CRON_ATTRIBUTE: "0 9 * * *"})
    alloy.faults.fail_next(1, status=403)  # the first GET is refused, as for an item the key may not read
    run = alloy_sync_items([item_id(3), item_id(2)]).run
    assert (run.status, run.invalid, run.updated) == ("succeeded", 1, 1)
    assert "Alloy refused to read it" in run.errors[0]["message"]
    assert jobs()[item_id(3)].periodic_task is not None and jobs()[item_id(3)].sync_error == ""
    assert jobs()[item_id(2)].cron == "0 9 * * *"
