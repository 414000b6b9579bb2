"""Write-back: each job's state lands on its Alloy item, paced, coalesced, never lost, never read as a change.

Against the fake Alloy over a real socket; the writer's clock is injected where the rate is tested.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alloysync.client import AlloyClient
from alloysync.item_states import ItemObservation
from alloysync.models import ItemEdit, ItemState
from alloysync.write_back import (
    CLAIM_SECONDS,
    write_back_codes,
    write_back_mark_jobs,
    write_back_observe,
    write_back_pass,
)
from scheduler.models import Job, JobRun
from scheduler.runner import job_run_execute
from scheduler.services import job_pause, job_remove
from tests.alloysync.helpers import API_KEY, job_item

pytestmark = pytest.mark.django_db

STATUS = "attributes_scheduledJobsStatus_65f0c0ffee0000000000ab01"
MESSAGE = "attributes_scheduledJobsMessage_65f0c0ffee0000000000ab02"
LAST_RUN = "attributes_scheduledJobsLastRun_65f0c0ffee0000000000ab03"
NEXT_RUN = "attributes_scheduledJobsNextRun_65f0c0ffee0000000000ab04"
RUN_NOW = "attributes_scheduledJobsRunNow_65f0c0ffee0000000000ab05"


def enable_write_back(alloy, settings):
    """Every write-back attribute configured, at the default rate: what the tests of this feature start from."""
    settings.ALLOY_STATUS_ATTRIBUTE = STATUS
    settings.ALLOY_MESSAGE_ATTRIBUTE = MESSAGE
    settings.ALLOY_LAST_RUN_ATTRIBUTE = LAST_RUN
    settings.ALLOY_NEXT_RUN_ATTRIBUTE = NEXT_RUN
    settings.ALLOY_RUN_NOW_ATTRIBUTE = RUN_NOW
    settings.ALLOY_WRITE_RATE = 30
    return alloy


def writer_client(alloy) -> AlloyClient:
    """A client as the writer makes one (one attempt per request), whose retry waits are not slept."""
    return AlloyClient(alloy.url, API_KEY, timeout=2, max_retry_seconds=0, sleep=lambda s: None)


@pytest.fixture
def write_back_on(alloy, settings):
    return enable_write_back(alloy, settings)


@pytest.fixture
def client(alloy) -> Iterator[AlloyClient]:
    with writer_client(alloy) as made:
        yield made


def add_item(alloy, n: int, **attributes: Any) -> str:
    return alloy.put_item(job_item(n=n, **attributes))["itemId"]


def alloy_job(make_job, item_id: str, **kwargs: Any) -> Job:
    return make_job(source=Job.Source.ALLOY, external_id=item_id, **kwargs)


def observation(alloy, item_id: str) -> ItemObservation:
    item = alloy.get(item_id)
    values = {entry["attributeCode"]: entry.get("value") for entry in item["attributes"]}
    return ItemObservation(
        item_id, item["signature"], item.get("collection", "Live"), {c: values.get(c) for c in write_back_codes()}
    )


def shown(alloy, item_id: str) -> dict[str, Any]:
    item = alloy.get(item_id)
    values = {entry["attributeCode"]: entry.get("value") for entry in item["attributes"]}
    return {code: values.get(code) for code in (STATUS, MESSAGE, LAST_RUN, NEXT_RUN, RUN_NOW)}


def puts(alloy) -> list[str]:
    return [r.path for r in alloy.requests if r.method == "PUT"]


def record_run(job: Job, status: str, *, started: datetime, seconds: float = 3.1, error: str = "") -> JobRun:
    return JobRun.objects.create(
        job=job,
        trigger=JobRun.Trigger.SCHEDULE,
        status=status,
        started_at=started,
        finished_at=started + timedelta(seconds=seconds),
        error=error,
    )


def observe_and_write(alloy, item_id: str, client: AlloyClient, **kwargs: Any):
    write_back_observe([observation(alloy, item_id)], [item_id])
    return write_back_pass(client=client, **kwargs)


# --- each state, as the item shows it ----------------------------------------------------------


def test_a_valid_job_without_runs_shows_scheduled_and_its_next_run(write_back_on, make_job, client):
    item_id = add_item(write_back_on, 1)
    alloy_job(make_job, item_id, cron="30 2 * * *", timezone="Europe/London")
    outcome = observe_and_write(write_back_on, item_id, client)
    assert outcome.written == [item_id]
    values = shown(write_back_on, item_id)
    assert values[STATUS] == "scheduled"
    assert values[MESSAGE].startswith("scheduled; next run ") and values[MESSAGE].endswith(" 02:30 Europe/London")
    assert values[LAST_RUN] is None
    next_run = datetime.fromisoformat(values[NEXT_RUN].replace("Z", "+00:00"))
    assert next_run > timezone.now() and values[NEXT_RUN].endswith(".000Z")


def test_a_failed_last_run_shows_failed_with_the_step_and_the_first_line_of_its_error(write_back_on, make_job, client):
    item_id = add_item(write_back_on, 1)
    job = alloy_job(make_job, item_id, timezone="Europe/London")
    started = datetime(2026, 7, 1, 1, 30, tzinfo=UTC)
    record_run(job, "succeeded", started=started - timedelta(days=1))
    record_run(job, "failed", started=started, error="step 2 (reports.email) failed: SMTPError: refused\nsecond line")
    observe_and_write(write_back_on, item_id, client)
    values = shown(write_back_on, item_id)
    assert values[STATUS] == "failed"
    assert values[MESSAGE] == (
        "last run failed at 2026-07-01 02:30 Europe/London after 3.1 s: step 2 (reports.email): SMTPError: refused"
    )
    assert values[LAST_RUN] == "2026-07-01T01:30:00.000Z"


def test_a_succeeded_last_run_shows_succeeded_and_skipped_runs_do_not_count(write_back_on, make_job, client):
    item_id = add_item(write_back_on, 1)
    job = alloy_job(make_job, item_id)
    started = datetime(2026, 7, 1, 2, 30, tzinfo=UTC)
    record_run(job, "succeeded", started=started, seconds=75)
    record_run(job, "skipped", started=started + timedelta(hours=1))
    observe_and_write(write_back_on, item_id, client)
    values = shown(write_back_on, item_id)
    assert values[STATUS] == "succeeded"
    assert values[MESSAGE].startswith("last run succeeded at 2026-07-01 02:30 UTC after 1 min 15 s; next run ")
    assert values[LAST_RUN] == "2026-07-01T02:30:00.000Z"


def test_a_paused_job_shows_paused_with_the_note_before_its_last_outcome(write_back_on, make_job, client):
    item_id = add_item(write_back_on, 1)
    job = alloy_job(make_job, item_id)
    record_run(job, "failed", started=timezone.now() - timedelta(hours=1), error="boom")
    job_pause(job=job, note="supplier outage until Monday")
    observe_and_write(write_back_on, item_id, client)
    values = shown(write_back_on, item_id)
    assert values[STATUS] == "paused"
    assert values[MESSAGE] == "paused by an operator: supplier outage until Monday"
    assert values[NEXT_RUN] is None


def test_an_invalid_definition_of_a_job_shows_invalid_and_that_the_last_valid_one_keeps_running(
    write_back_on, make_job, client
):
    item_id = add_item(write_back_on, 1)
    job = alloy_job(make_job, item_id)
    job_pause(job=job, note="x")  # invalid is news before a pause
    Job.objects.filter(pk=job.pk).update(sync_error="cron '61 * * * *': minute '61' is out of range (0-59)")
    observe_and_write(write_back_on, item_id, client)
    values = shown(write_back_on, item_id)
    assert values[STATUS] == "invalid"
    assert values[MESSAGE] == (
        "cron '61 * * * *': minute '61' is out of range (0-59); the last valid definition keeps running"
    )


def test_an_invalid_item_without_a_job_shows_invalid_and_not_scheduled(write_back_on, client):
    item_id = add_item(write_back_on, 1, cron="61 * * * *")
    ItemState.objects.create(item_id=item_id, refusal="cron '61 * * * *': minute '61' is out of range (0-59)")
    observe_and_write(write_back_on, item_id, client)
    values = shown(write_back_on, item_id)
    assert values[STATUS] == "invalid"
    assert values[MESSAGE] == (
        "cron '61 * * * *': minute '61' is out of range (0-59); not scheduled until the item is fixed"
    )
    assert values[NEXT_RUN] is None


def test_a_removed_job_shows_it_is_not_scheduled(write_back_on, make_job, client):
    item_id = add_item(write_back_on, 1)
    job = alloy_job(make_job, item_id)
    job_remove(job=job)
    observe_and_write(write_back_on, item_id, client)
    values = shown(write_back_on, item_id)
    assert values[MESSAGE] == "not scheduled: the item is no longer a job"
    assert values[NEXT_RUN] is None


# --- what is sent, and when ----------------------------------------------------------------------


def test_only_the_write_back_attributes_are_sent_and_the_rest_of_the_item_is_untouched(write_back_on, make_job, client):
    item_id = add_item(write_back_on, 1)
    alloy_job(make_job, item_id)
    before = write_back_on.get(item_id)
    observe_and_write(write_back_on, item_id, client)
    after = write_back_on.get(item_id)
    others = {
        e["attributeCode"]: e.get("value")
        for e in after["attributes"]
        if e["attributeCode"] not in {STATUS, MESSAGE, LAST_RUN, NEXT_RUN, RUN_NOW}
    }
    assert others == {e["attributeCode"]: e.get("value") for e in before["attributes"]}
    assert after["signature"] != before["signature"]
    row = ItemState.objects.get(item_id=item_id)
    assert (row.signature, row.dirty_since, row.attempts) == (after["signature"], None, 0)


def test_a_signature_mismatch_is_read_again_and_written_once_more(write_back_on, make_job, client):
    item_id = add_item(write_back_on, 1)
    alloy_job(make_job, item_id)
    write_back_observe([observation(write_back_on, item_id)], [item_id])
    write_back_on.edit_item(item_id, {"attributes_itemsTitle": "renamed meanwhile"})  # a user edit
    write_back_on.clear_requests()
    outcome = write_back_pass(client=client)
    assert outcome.written == [item_id]
    assert [(r.method, r.path) for r in write_back_on.requests] == [
        ("PUT", f"/api/item/{item_id}"),
        ("GET", f"/api/item/{item_id}"),
        ("PUT", f"/api/item/{item_id}"),
    ]
    assert shown(write_back_on, item_id)[STATUS] == "scheduled"
    assert ItemEdit.objects.filter(item_id=item_id).count() == 2  # both PUTs count against the rate


def test_writes_never_exceed_the_rate_over_any_sliding_minute(write_back_on, make_job, client, settings):
    settings.ALLOY_WRITE_RATE = 5
    ids = [add_item(write_back_on, n) for n in range(20)]
    for item_id in ids:
        alloy_job(make_job, item_id)
    write_back_observe([observation(write_back_on, i) for i in ids], ids)
    start = timezone.now()
    sent_at: list[datetime] = []
    for second in range(0, 600, 7):  # a pass every 7 s of an injected clock, for ten minutes
        moment = start + timedelta(seconds=second)
        before = len(puts(write_back_on))
        write_back_pass(client=client, now=lambda moment=moment: moment)
        sent_at += [moment] * (len(puts(write_back_on)) - before)
    assert len(sent_at) == 20 and not ItemState.objects.filter(dirty_since__isnull=False).exists()
    for moment in sent_at:
        in_window = [t for t in sent_at if moment <= t < moment + timedelta(seconds=60)]
        assert len(in_window) <= 5


def test_oldest_dirty_items_are_written_first(write_back_on, make_job, client, settings):
    settings.ALLOY_WRITE_RATE = 2  # room for one write a minute: the second is kept for a mismatch's retry
    ids = [add_item(write_back_on, n) for n in range(3)]
    for n, item_id in enumerate(ids):
        alloy_job(make_job, item_id)
        write_back_observe([observation(write_back_on, item_id)], [], now=timezone.now() - timedelta(minutes=10 - n))
    write_back_pass(client=client)
    assert puts(write_back_on) == [f"/api/item/{ids[0]}"]


def test_ten_runs_before_a_pass_are_one_put_with_the_latest_state(write_back_on, make_job, client):
    item_id = add_item(write_back_on, 1)
    job = alloy_job(make_job, item_id)
    write_back_observe([observation(write_back_on, item_id)], [])
    for n in range(10):
        if n == 9:
            Job.objects.filter(pk=job.pk).update(steps=[{"function": "examples.fail", "kwargs": {"message": "no"}}])
            job.refresh_from_db()
        job_run_execute(job=job, trigger=JobRun.Trigger.COMMAND)
    write_back_on.clear_requests()
    write_back_pass(client=client)
    assert puts(write_back_on) == [f"/api/item/{item_id}"]
    last = JobRun.objects.filter(job=job).order_by("-pk").first()
    assert last is not None and last.status == "failed"
    values = shown(write_back_on, item_id)
    assert values[STATUS] == "failed"
    assert values[LAST_RUN].startswith(last.started_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"))


def test_a_state_alloy_already_shows_is_not_written_again(write_back_on, make_job, client):
    item_id = add_item(write_back_on, 1)
    alloy_job(make_job, item_id)
    observe_and_write(write_back_on, item_id, client)
    write_back_on.clear_requests()
    outcome = observe_and_write(write_back_on, item_id, client)  # marked as changed, nothing new
    assert outcome.unchanged == [item_id] and puts(write_back_on) == []


def test_alloysyncs_own_edit_observed_again_is_no_change_and_costs_one_query(write_back_on, make_job, client):
    item_id = add_item(write_back_on, 1)
    alloy_job(make_job, item_id)
    observe_and_write(write_back_on, item_id, client)
    after_write = observation(write_back_on, item_id)
    with CaptureQueriesContext(connection) as queries:
        write_back_observe([after_write], [])
    assert len(queries) == 1
    assert ItemState.objects.get(item_id=item_id).dirty_since is None


def test_a_sync_after_our_write_changes_no_job_and_writes_nothing(write_back_on, make_job, client):
    from alloysync.models import SyncRun
    from alloysync.sync import alloy_sync

    item_id = add_item(write_back_on, 1)
    alloy_sync(trigger=SyncRun.Trigger.COMMAND, mode="full")
    job = Job.objects.get(external_id=item_id)
    updated_at = job.updated_at
    observe_and_write(write_back_on, item_id, client)
    run = alloy_sync(trigger=SyncRun.Trigger.COMMAND, mode="full").run
    assert (run.status, run.updated, run.created) == ("succeeded", 0, 0)
    assert Job.objects.get(pk=job.pk).updated_at == updated_at
    write_back_on.clear_requests()
    assert write_back_pass(client=client).written == [] and puts(write_back_on) == []


def test_a_user_changing_our_attribute_gets_it_written_back(write_back_on, make_job, client):
    item_id = add_item(write_back_on, 1)
    alloy_job(make_job, item_id)
    observe_and_write(write_back_on, item_id, client)
    write_back_on.edit_item(item_id, {STATUS: "whatever"})
    outcome = observe_and_write(write_back_on, item_id, client)
    assert outcome.written == [item_id] and shown(write_back_on, item_id)[STATUS] == "scheduled"


# --- failures ------------------------------------------------------------------------------------


def test_a_state_that_could_not_be_written_is_written_once_alloy_is_back(write_back_on, make_job, client):
    item_id = add_item(write_back_on, 1)
    job = alloy_job(make_job, item_id)
    write_back_observe([observation(write_back_on, item_id)], [item_id])
    write_back_on.faults.fail_next(1, 503)
    failed = write_back_pass(client=client)
    assert list(failed.failed) == [item_id] and "503" in failed.failed[item_id]
    row = ItemState.objects.get(item_id=item_id)
    assert row.dirty_since is not None and row.attempts == 1 and row.next_attempt_at > timezone.now()
    assert write_back_pass(client=client).written == []  # backing off
    record_run(job, "succeeded", started=timezone.now())  # a newer state meanwhile
    write_back_mark_jobs([job.pk])
    later = timezone.now() + timedelta(minutes=5)
    assert write_back_pass(client=client, now=lambda: later).written == [item_id]
    assert shown(write_back_on, item_id)[STATUS] == "succeeded"
    row.refresh_from_db()
    assert (row.attempts, row.last_error, row.dirty_since) == (0, "", None)


def test_a_stopped_alloy_keeps_the_state_dirty_and_it_lands_when_alloy_returns(write_back_on, make_job):
    item_id = add_item(write_back_on, 1)
    alloy_job(make_job, item_id)
    write_back_observe([observation(write_back_on, item_id)], [item_id])
    url = write_back_on.url
    write_back_on.stop()
    with AlloyClient(url, API_KEY, timeout=1, max_retry_seconds=0, sleep=lambda s: None) as down:
        assert list(write_back_pass(client=down).failed) == [item_id]
    write_back_on.start()
    later = timezone.now() + timedelta(minutes=5)
    with AlloyClient(url, API_KEY, timeout=1, max_retry_seconds=0, sleep=lambda s: None) as up:
        assert write_back_pass(client=up, now=lambda: later).written == [item_id]
    assert shown(write_back_on, item_id)[STATUS] == "scheduled"


def test_a_deleted_item_is_given_up(write_back_on, make_job, client):
    item_id = add_item(write_back_on, 1)
    alloy_job(make_job, item_id)
    write_back_observe([observation(write_back_on, item_id)], [item_id])
    write_back_on.remove_item(item_id)
    assert write_back_pass(client=client).gone == [item_id]
    row = ItemState.objects.get(item_id=item_id)
    assert row.dirty_since is None and row.next_attempt_at is None and "not found" in row.last_error


def test_a_locked_item_keeps_its_error_and_backs_off_for_hours(write_back_on, make_job, client):
    item_id = write_back_on.put_item({**job_item(n=1), "context": "Core"})["itemId"]
    alloy_job(make_job, item_id)
    outcome = observe_and_write(write_back_on, item_id, client)
    assert list(outcome.failed) == [item_id]
    row = ItemState.objects.get(item_id=item_id)
    assert row.dirty_since is not None and "403" in row.last_error
    assert row.next_attempt_at > timezone.now() + timedelta(hours=1)


def test_a_writer_that_died_mid_write_leaves_the_item_to_the_next_pass(write_back_on, make_job, client):
    item_id = add_item(write_back_on, 1)
    alloy_job(make_job, item_id)
    ItemState.objects.create(
        item_id=item_id, dirty_since=None, next_attempt_at=timezone.now() - timedelta(seconds=1)
    )  # claimed by a writer that never came back
    assert write_back_pass(client=client).written == [item_id]
    assert CLAIM_SECONDS >= 60


def test_a_mark_made_while_an_item_is_being_written_is_written_by_the_next_pass(write_back_on, make_job, client):
    item_id = add_item(write_back_on, 1)
    job = alloy_job(make_job, item_id)
    write_back_observe([observation(write_back_on, item_id)], [item_id])

    original = client.update_item

    def update_then_run(*args: Any, **kwargs: Any) -> Any:
        item = original(*args, **kwargs)
        record_run(job, "failed", started=timezone.now(), error="late")
        write_back_mark_jobs([job.pk])
        return item

    client.update_item = update_then_run  # type: ignore[method-assign]
    assert write_back_pass(client=client).written == [item_id]
    client.update_item = original  # type: ignore[method-assign]
    assert write_back_pass(client=client).written == [item_id]
    assert shown(write_back_on, item_id)[STATUS] == "failed"


# --- marking -------------------------------------------------------------------------------------


def test_a_finished_run_marks_its_item_in_at_most_two_queries(write_back_on, make_job):
    item_id = add_item(write_back_on, 1)
    job = alloy_job(make_job, item_id)
    ItemState.objects.create(item_id=item_id)
    with CaptureQueriesContext(connection) as queries:
        write_back_mark_jobs([job.pk])
    assert len(queries) == 2
    assert ItemState.objects.get(item_id=item_id).dirty_since is not None
    with CaptureQueriesContext(connection) as queries:
        write_back_mark_jobs([job.pk])  # already dirty: keeps its place
    assert len(queries) == 1


def test_the_runner_marks_alloy_jobs_only(write_back_on, make_job):
    item_id = add_item(write_back_on, 1)
    alloy = alloy_job(make_job, item_id)
    local = make_job(name="local")
    job_run_execute(job=local, trigger=JobRun.Trigger.COMMAND)
    assert not ItemState.objects.exists()
    job_run_execute(job=alloy, trigger=JobRun.Trigger.COMMAND)
    assert ItemState.objects.get(item_id=item_id).dirty_since is not None


def test_pause_marks_the_item(write_back_on, make_job):
    item_id = add_item(write_back_on, 1)
    job = alloy_job(make_job, item_id)
    job_pause(job=job, note="n")
    assert ItemState.objects.get(item_id=item_id).dirty_since is not None


def test_with_write_back_off_nothing_is_marked_observed_or_sent(alloy, make_job, client):
    item_id = add_item(alloy, 1)
    job = alloy_job(make_job, item_id)
    assert write_back_codes() == ()
    with CaptureQueriesContext(connection) as queries:
        write_back_mark_jobs([job.pk])
        write_back_observe([ItemObservation(item_id, "s", "Live", {})], [item_id])
    assert len(queries) == 0
    assert not write_back_pass(client=client).written and not ItemState.objects.exists()


def test_an_observation_read_before_our_write_landed_is_ignored(write_back_on, make_job, client):
    item_id = add_item(write_back_on, 1)
    alloy_job(make_job, item_id)
    stale = observation(write_back_on, item_id)
    read_at = timezone.now()
    observe_and_write(write_back_on, item_id, client)
    write_back_observe([stale], [], read_at=read_at)
    row = ItemState.objects.get(item_id=item_id)
    assert row.dirty_since is None and row.signature == write_back_on.get(item_id)["signature"]
