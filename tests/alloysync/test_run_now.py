"""Run now from Alloy: the run-now attribute read true queues exactly one run, and is set back to false."""

from __future__ import annotations

import pytest
from django.utils import timezone

from alloysync.models import ItemState
from alloysync.run_now import run_now_observe
from alloysync.write_back import write_back_observe, write_back_pass
from scheduler.models import JobRun
from scheduler.services import job_remove
from tests.alloysync.test_write_back import (
    MESSAGE,
    RUN_NOW,
    add_item,
    alloy_job,
    enable_write_back,
    observation,
    shown,
    writer_client,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def write_back_on(alloy, settings):
    return enable_write_back(alloy, settings)


@pytest.fixture
def client(alloy):
    with writer_client(alloy) as made:
        yield made


def read(alloy, item_id: str, *, read_at=None) -> int:
    """What a sync does after each read: observe for write-back, then for run now."""
    seen = [observation(alloy, item_id)]
    write_back_observe(seen, [], read_at=read_at)
    return run_now_observe(seen, read_at=read_at)


def alloy_runs(job) -> list[JobRun]:
    return list(JobRun.objects.filter(job=job, trigger=JobRun.Trigger.ALLOY))


def test_true_read_twice_before_the_write_lands_is_one_run_and_a_later_click_is_a_second(
    write_back_on, make_job, client
):
    item_id = add_item(write_back_on, 1)
    job = alloy_job(make_job, item_id)
    write_back_on.edit_item(item_id, {RUN_NOW: True})
    assert read(write_back_on, item_id) == 1
    assert read(write_back_on, item_id) == 0  # the same request, read again
    write_back_on.edit_item(item_id, {"attributes_itemsTitle": "edited meanwhile"})
    assert read(write_back_on, item_id) == 0  # another signature, still the pending request
    assert [run.status for run in alloy_runs(job)] == ["queued"]

    assert write_back_pass(client=client).written == [item_id]
    assert shown(write_back_on, item_id)[RUN_NOW] is False
    assert ItemState.objects.get(item_id=item_id).run_now_pending is False
    assert read(write_back_on, item_id) == 0  # our own false, read back

    write_back_on.edit_item(item_id, {RUN_NOW: True})  # the user asks again
    assert read(write_back_on, item_id) == 1
    assert len(alloy_runs(job)) == 2


def test_a_stale_read_arriving_after_our_false_landed_queues_nothing(write_back_on, make_job, client):
    item_id = add_item(write_back_on, 1)
    job = alloy_job(make_job, item_id)
    write_back_on.edit_item(item_id, {RUN_NOW: True})
    assert read(write_back_on, item_id) == 1
    # A read begins, sees a user's unrelated edit with the attribute still true...
    write_back_on.edit_item(item_id, {"attributes_itemsTitle": "edited meanwhile"})
    stale, read_at = observation(write_back_on, item_id), timezone.now()
    # ...our false lands, and only then is that read applied.
    write_back_pass(client=client)
    write_back_observe([stale], [], read_at=read_at)
    assert run_now_observe([stale], read_at=read_at) == 0
    assert len(alloy_runs(job)) == 1
    # The same stale read without its time is still recognised when it carries the queuing signature.
    assert read(write_back_on, item_id) == 0


def test_a_read_showing_false_ends_the_pending_request(write_back_on, make_job):
    item_id = add_item(write_back_on, 1)
    alloy_job(make_job, item_id)
    write_back_on.edit_item(item_id, {RUN_NOW: True})
    assert read(write_back_on, item_id) == 1
    write_back_on.edit_item(item_id, {RUN_NOW: False})  # the user cleared it before our write
    assert read(write_back_on, item_id) == 0
    assert ItemState.objects.get(item_id=item_id).run_now_pending is False
    write_back_on.edit_item(item_id, {RUN_NOW: True})
    assert read(write_back_on, item_id) == 1


def test_an_item_without_a_job_gets_no_run_and_is_told_so(write_back_on, client):
    item_id = add_item(write_back_on, 1, cron="61 * * * *", **{RUN_NOW: True})
    ItemState.objects.create(item_id=item_id, refusal="cron '61 * * * *': minute '61' is out of range (0-59)")
    assert read(write_back_on, item_id) == 0
    assert not JobRun.objects.exists()
    write_back_pass(client=client)
    values = shown(write_back_on, item_id)
    assert values[RUN_NOW] is False
    assert values[MESSAGE].startswith("run now ignored: no job to run; cron '61 * * * *'")


def test_a_removed_job_gets_no_run(write_back_on, make_job, client):
    item_id = add_item(write_back_on, 1, **{RUN_NOW: True})
    job = alloy_job(make_job, item_id)
    job_remove(job=job)
    assert read(write_back_on, item_id) == 0
    assert not JobRun.objects.exists()
    write_back_pass(client=client)
    assert shown(write_back_on, item_id)[RUN_NOW] is False


def test_a_paused_job_does_not_run_when_asked_from_alloy_and_the_item_says_why(write_back_on, make_job, client):
    # Pause belongs to operators: someone who can edit the item in Alloy is not one.
    from scheduler.services import job_pause

    item_id = add_item(write_back_on, 1, **{RUN_NOW: True})
    job = alloy_job(make_job, item_id)
    job_pause(job=job, note="do not run: the gully contractor is on site")
    assert read(write_back_on, item_id) == 0
    assert not JobRun.objects.exists()
    write_back_pass(client=client)
    values = shown(write_back_on, item_id)
    assert values[RUN_NOW] is False
    assert values[MESSAGE] == "run now ignored: paused by an operator: do not run: the gully contractor is on site"


def test_without_the_run_now_setting_nothing_is_queued(write_back_on, make_job, settings):
    settings.ALLOY_RUN_NOW_ATTRIBUTE = ""
    item_id = add_item(write_back_on, 1, **{RUN_NOW: True})
    alloy_job(make_job, item_id)
    assert run_now_observe([observation(write_back_on, item_id)]) == 0
    assert not JobRun.objects.exists()
