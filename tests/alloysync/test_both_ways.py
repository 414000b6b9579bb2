"""Alloy both ways, through the sync: what a sync reads is written back, and alloysync's own edits
never come back as changes. Fake Alloy over a real socket; write-back passes run in the test."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alloysync.client import AlloyItem
from alloysync.fake_alloy import SAMPLE_CRON_ATTRIBUTE, SAMPLE_DESIGN_CODE, ApiError
from alloysync.fake_alloy.samples import attribute_value
from alloysync.item_states import item_observation
from alloysync.models import ItemState, SyncRun
from alloysync.sync import alloy_sync, alloy_sync_items
from alloysync.write_back import write_back_observe, write_back_pass
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


# --- whatever Alloy holds on an item, the sync and the writer keep going (both databases) ---------------

HOSTILE_VALUES = {
    "NUL in text": "typed\x00by a user",
    "NaN": float("nan"),
    "an object holding NUL": {"note": "a\x00b", "deeper": [{"x": "\x00"}]},
    "an unpaired surrogate": "\ud800 left alone",
    "200,000 characters": "x" * 200_000,
    "a deep list": [[[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]]],
    "a huge number": 10**300,
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_VALUES))
def test_a_hostile_value_in_a_write_back_attribute_is_written_over_and_stops_nothing(both_ways, kind):
    alloy = both_ways
    alloy.put_item(job_item("hostile", n=3, **{MESSAGE: HOSTILE_VALUES[kind], STATUS: HOSTILE_VALUES[kind]}))
    run = sync()
    assert run.status == "succeeded", run.message
    assert Job.objects.filter(external_id=GOOD, periodic_task__isnull=False).exists()
    write_back_pass()
    hostile = f"{3:024x}"
    assert shown(alloy, hostile, STATUS) in ("scheduled", "invalid")  # NaN makes the whole item invalid
    assert isinstance(shown(alloy, hostile, MESSAGE), str) and "\x00" not in shown(alloy, hostile, MESSAGE)
    again = sync()  # and the next read of it, after our write, is quiet
    assert again.status == "succeeded", again.message


def test_a_signature_or_collection_too_long_to_keep_is_read_again_before_writing(both_ways):
    alloy = both_ways
    alloy.put_item({**job_item("long signature", n=3), "signature": "s" * 500})
    assert sync().status == "succeeded"
    assert ItemState.objects.get(item_id=f"{3:024x}").signature == ""
    write_back_pass()
    assert shown(alloy, f"{3:024x}", STATUS) == "scheduled"


def test_an_item_whose_id_no_row_can_hold_is_counted_and_never_written_to(both_ways):
    alloy = both_ways
    alloy.put_item(job_item("too long an id", n=3) | {"itemId": "f" * 100})
    first = sync()
    assert (first.status, first.invalid) == ("succeeded", 2)
    assert sync().mode == "incremental"  # counted as held: no full read every minute
    write_back_pass()
    assert shown(alloy, "f" * 100, STATUS) is None


def test_a_404_that_is_not_alloys_item_not_found_removes_no_job(both_ways):
    alloy = both_ways
    sync()
    alloy.faults.fail_next(1, status=404)  # a proxy's or maintenance page's 404, not ItemNotFound
    run = alloy_sync_items([GOOD]).run
    assert (run.status, run.removed, run.invalid) == ("succeeded", 0, 1)
    assert Job.objects.get(external_id=GOOD).periodic_task is not None


@pytest.mark.parametrize("count", [403, "3", None, True, -1, 1e20, 10**400])
def test_a_count_alloy_refuses_or_garbles_fails_the_sync_before_anything_changes(both_ways, monkeypatch, count):
    alloy = both_ways
    sync()
    alloy.edit_item(GOOD, {SAMPLE_CRON_ATTRIBUTE: "0 5 * * *"})

    def statistics(body):
        if count == 403:
            raise ApiError(403, "UserUnauthorized", "The key may not count.")
        return {"results": [{"value": {"type": "Count", "value": count}}]}

    monkeypatch.setattr(alloy, "statistics", statistics)
    run = sync()
    assert (run.mode, run.status, run.updated) == ("incremental", "failed", 0)
    assert len(run.message) < 400
    assert Job.objects.get(external_id=GOOD).cron == "30 2 * * *"  # a failed read changes nothing


ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(status=ANY_JSON, message=ANY_JSON, signature=st.text(max_size=100), collection=st.text(max_size=50))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_value_alloy_holds_on_an_item_is_noted_for_write_back_without_a_database_error(
    both_ways, status, message, signature, collection
):
    item = AlloyItem(
        f"{7:024x}", SAMPLE_DESIGN_CODE, collection, signature, MappingProxyType({STATUS: status, MESSAGE: message})
    )
    seen = item_observation(item, (STATUS, MESSAGE, LAST_RUN, NEXT_RUN, RUN_NOW))
    assert seen is not None
    write_back_observe([seen], [])  # raises on PostgreSQL if anything unstorable got through
    row = ItemState.objects.get(item_id=f"{7:024x}")
    assert row.written[STATUS] is not None or status is None
    assert len(row.signature) <= 64 and len(row.collection) <= 32
    ItemState.objects.all().delete()
