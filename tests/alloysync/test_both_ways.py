"""Alloy both ways, through the sync: what a sync reads is written back, and alloysync's own edits
never come back as changes. Fake Alloy over a real socket; write-back passes run in the test."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alloysync.fake_alloy import SAMPLE_CRON_ATTRIBUTE
from alloysync.fake_alloy.samples import attribute_value
from alloysync.models import ItemState, SyncRun
from alloysync.sync import alloy_sync
from alloysync.write_back import write_back_pass
from scheduler.models import Job, JobRun
from scheduler.runner import job_run_execute
from tests.alloysync.helpers import job_item

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]

STATUS = "attributes_scheduledJobsStatus_65f0c0ffee0000000000ab01"
MESSAGE = "attributes_scheduledJobsMessage_65f0c0ffee0000000000ab02"
LAST_RUN = "attributes_scheduledJobsLastRun_65f0c0ffee0000000000ab03"
NEXT_RUN = "attributes_scheduledJobsNextRun_65f0c0ffee0000000000ab04"
RUN_NOW = "attributes_scheduledJobsRunNow_65f0c0ffee0000000000ab05"
GOOD, BAD = f"{1:024x}", f"{2:024x}"


@pytest.fixture
def both_ways(alloy, settings):
    settings.ALLOY_STATUS_ATTRIBUTE, settings.ALLOY_MESSAGE_ATTRIBUTE = STATUS, MESSAGE
    settings.ALLOY_LAST_RUN_ATTRIBUTE, settings.ALLOY_NEXT_RUN_ATTRIBUTE = LAST_RUN, NEXT_RUN
    settings.ALLOY_RUN_NOW_ATTRIBUTE = RUN_NOW
    settings.ALLOY_SYNC_LOOK_BACK = 0
    settings.ALLOY_WRITE_RATE = 100
    alloy.put_item(job_item("gullies", cron="30 2 * * *", n=1))
    alloy.put_item(job_item("broken", cron="61 * * * *", n=2))
    return alloy


def sync():
    return alloy_sync(trigger=SyncRun.Trigger.SCHEDULE).run


def shown(alloy, item_id, code):
    return attribute_value(alloy.get(item_id), code)


def puts(alloy):
    return [request for request in alloy.requests if request.method == "PUT"]


def test_each_items_state_reaches_alloy_and_alloysyncs_own_edits_change_nothing(both_ways):
    alloy = both_ways
    assert sync().mode == "full"
    write_back_pass()
    assert shown(alloy, GOOD, STATUS) == "scheduled"
    assert shown(alloy, GOOD, NEXT_RUN).endswith("Z") and shown(alloy, GOOD, LAST_RUN) is None
    assert shown(alloy, BAD, STATUS) == "invalid"
    assert "minute" in shown(alloy, BAD, MESSAGE) and "not scheduled until the item is fixed" in shown(
        alloy, BAD, MESSAGE
    )
    job_run_execute(job=Job.objects.get(external_id=GOOD), trigger=JobRun.Trigger.COMMAND)
    write_back_pass()
    assert shown(alloy, GOOD, STATUS) == "succeeded"
    assert shown(alloy, GOOD, LAST_RUN).endswith("Z")
    # Our edits changed both items' signatures and edit times: the next sync reads them again,
    # finds every job unchanged, and neither it nor the next pass writes anything.
    alloy.clear_requests()
    states = list(ItemState.objects.order_by("item_id").values())
    with CaptureQueriesContext(connection) as queries:
        run = sync()
    assert (run.mode, run.items_read, run.unchanged, run.updated, run.invalid) == ("incremental", 2, 1, 0, 1)
    written = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert not [sql for sql in written if "scheduler_job" in sql or "alloysync_itemstate" in sql]
    assert list(ItemState.objects.order_by("item_id").values()) == states
    write_back_pass()
    assert puts(alloy) == []


def test_a_fixed_item_shows_its_new_state_after_the_next_sync(both_ways):
    alloy = both_ways
    sync()
    write_back_pass()
    alloy.edit_item(BAD, {SAMPLE_CRON_ATTRIBUTE: "0 6 * * *"})
    run = sync()
    assert (run.mode, run.created) == ("incremental", 1)
    write_back_pass()
    assert shown(alloy, BAD, STATUS) == "scheduled"
    assert ItemState.objects.get(item_id=BAD).refusal == ""


def test_run_now_set_in_alloy_runs_the_job_once_and_is_set_back_to_false(both_ways):
    alloy = both_ways
    sync()
    alloy.edit_item(GOOD, {RUN_NOW: True})
    sync()
    sync()  # read true again before our write of false lands: no second run
    runs = JobRun.objects.filter(job__external_id=GOOD, trigger="alloy")
    assert runs.count() == 1
    write_back_pass()
    assert shown(alloy, GOOD, RUN_NOW) is False
    sync()
    assert runs.count() == 1
    alloy.edit_item(GOOD, {RUN_NOW: True})  # asked again, after our write
    sync()
    assert runs.count() == 2
