"""The sync against the fake Alloy over a real socket: what users notice about their schedules."""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connection
from django.db.models.functions import Now
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks

from alloysync.fake_alloy import SAMPLE_CRON_ATTRIBUTE, SAMPLE_FLAG_ATTRIBUTE, SAMPLE_STEPS_ATTRIBUTE
from alloysync.models import SyncRun
from alloysync.sync import SYNC_LEASE, SyncAlreadyRunning, alloy_sync, alloy_sync_plan
from config.env_secrets import Secret
from scheduler.leases import lease_hold
from scheduler.models import Job, JobRun, Lease
from scheduler.runner import job_run_execute
from scheduler.services import job_pause
from tests.alloysync.helpers import API_KEY, job_item, sample_items

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]

WRITE_TO_JOBS = re.compile(r'^\s*(INSERT|UPDATE|DELETE)\b.*"(scheduler_job|django_celery_beat_\w+)"', re.I | re.S)


def sync(**kwargs):
    # These tests are about full reads and their rules; test_incremental_sync.py covers the others.
    kwargs.setdefault("trigger", SyncRun.Trigger.COMMAND)
    kwargs.setdefault("mode", SyncRun.Mode.FULL)
    return alloy_sync(**kwargs).run


def alloy_jobs():
    return {job.external_id: job for job in Job.objects.filter(source="alloy").select_related("periodic_task__crontab")}


def test_first_sync_creates_jobs_with_the_right_crontab_and_zone(alloy):
    for item in sample_items():
        alloy.put_item(item)
    run = sync()
    assert run.status == "succeeded"
    assert run.summary() == "read 12 items: 8 created, 0 updated, 0 unchanged, 0 removed, 4 invalid"
    jobs = alloy_jobs()
    assert len(jobs) == 8
    gullies = jobs["65f0c1a0e4d0a1b2c3d4e501"]
    crontab = gullies.periodic_task.crontab
    assert gullies.name == "Nightly gully report"
    assert (crontab.minute, crontab.hour, crontab.day_of_week, str(crontab.timezone)) == (
        "30",
        "2",
        "*",
        "Europe/London",
    )
    assert gullies.periodic_task.enabled and gullies.periodic_task.task == "scheduler.run_job"
    assert jobs["65f0c1a0e4d0a1b2c3d4e502"].timezone == "UTC"  # no zone attribute: JOB_DEFAULT_TIMEZONE
    assert "65f0c1a0e4d0a1b2c3d4e50d" not in jobs  # flag switched off
    assert {e["item_id"] for e in run.errors} == {f"65f0c1a0e4d0a1b2c3d4e50{c}" for c in "9abc"}
    assert run.requests == 1
    assert run.finished_at >= run.started_at


def test_a_second_sync_writes_nothing_and_does_not_reload_beat(alloy):
    for n in range(1, 31):
        alloy.put_item(job_item(f"job {n}", cron=f"{n} * * * *", n=n))
    sync()
    last_update = PeriodicTasks.last_change()
    with CaptureQueriesContext(connection) as few:
        run = sync()
    assert run.summary() == "read 30 items: 0 created, 0 updated, 30 unchanged, 0 removed, 0 invalid"
    assert PeriodicTasks.last_change() == last_update
    assert [q["sql"] for q in few if WRITE_TO_JOBS.match(q["sql"])] == []
    for n in range(31, 331):
        alloy.put_item(job_item(f"job {n}", cron=f"{n % 60} * * * *", n=n))
    sync()
    with CaptureQueriesContext(connection) as many:
        sync()
    assert len(many) == len(few)  # constant, whatever the number of items


def test_an_edit_changes_exactly_that_job(alloy):
    for n in range(1, 6):
        alloy.put_item(job_item(f"job {n}", n=n))
    sync()
    before = {external_id: (job.cron, job.updated_at) for external_id, job in alloy_jobs().items()}
    alloy.edit_item(f"{3:024x}", {SAMPLE_CRON_ATTRIBUTE: "0 */2 * * *"})
    last_update = PeriodicTasks.last_change()
    run = sync()
    assert (run.updated, run.unchanged) == (1, 4)
    after = alloy_jobs()
    changed = {external_id for external_id, job in after.items() if (job.cron, job.updated_at) != before[external_id]}
    assert changed == {f"{3:024x}"}
    assert after[f"{3:024x}"].periodic_task.crontab.hour == "*/2"
    assert PeriodicTasks.last_change() > last_update


def test_an_edit_of_an_unrelated_attribute_writes_nothing(alloy):
    alloy.put_item(job_item(n=1))
    sync()
    old_signature = alloy.get(f"{1:024x}")["signature"]
    alloy.edit_item(f"{1:024x}", {"attributes_itemsSubtitle": "edited by someone"})
    assert alloy.get(f"{1:024x}")["signature"] != old_signature
    last_update = PeriodicTasks.last_change()
    with CaptureQueriesContext(connection) as queries:
        run = sync()
    assert run.unchanged == 1
    assert [q["sql"] for q in queries if WRITE_TO_JOBS.match(q["sql"])] == []
    assert PeriodicTasks.last_change() == last_update


def test_a_removed_item_unschedules_its_job_and_a_returning_one_comes_back(alloy, settings):
    settings.ALLOY_MAX_REMOVAL_FRACTION = 1
    for n in range(1, 4):
        alloy.put_item(job_item(f"job {n}", n=n))
    sync()
    job = alloy_jobs()[f"{2:024x}"]
    job_run_execute(job=job, trigger=JobRun.Trigger.COMMAND)
    gone = alloy.get(f"{2:024x}")
    alloy.remove_item(f"{2:024x}")
    run = sync()
    assert run.removed == 1
    job.refresh_from_db()
    assert job.periodic_task is None and job.removed_at is not None
    assert job.runs.count() == 1  # history stays
    alloy.put_item(gone)
    run = sync()
    assert run.created == 1
    job.refresh_from_db()
    assert job.periodic_task is not None and job.removed_at is None
    assert job.runs.count() == 1


def test_an_item_no_longer_flagged_as_a_job_is_removed(alloy, settings):
    settings.ALLOY_MAX_REMOVAL_FRACTION = 1
    alloy.put_item(job_item(n=1))
    alloy.put_item(job_item(n=2))
    sync()
    alloy.edit_item(f"{1:024x}", {SAMPLE_FLAG_ATTRIBUTE: False})
    assert sync().removed == 1
    assert alloy_jobs()[f"{1:024x}"].removed_at is not None


def test_a_partial_read_removes_nothing(alloy, fast_client):
    for n in range(1, 21):
        alloy.put_item(job_item(f"job {n}", n=n))
    sync(client=fast_client_with_page_size(fast_client, 5))
    for n in range(1, 6):
        alloy.remove_item(f"{n:024x}")  # would be removed by a complete read
    alloy.faults.fail_page(3, "broken", times=None)  # pages 1 and 2 arrive, page 3 breaks off every time
    run = sync(client=fast_client)
    assert run.status == "failed"
    assert "Alloy is unavailable" in run.message
    assert (run.items_read, run.removed) == (10, 0)
    assert all(job.periodic_task is not None for job in alloy_jobs().values())


def fast_client_with_page_size(client, page_size):
    client.page_size = page_size
    return client


def test_a_malformed_page_fails_the_sync_and_changes_nothing(alloy):
    alloy.put_item(job_item(n=1))
    sync()
    alloy.edit_item(f"{1:024x}", {SAMPLE_CRON_ATTRIBUTE: "0 5 * * *"})
    alloy.faults.fail_page(1, "malformed")
    run = sync()
    assert run.status == "failed"
    assert "not JSON" in run.message
    assert alloy_jobs()[f"{1:024x}"].cron == "30 2 * * *"


def test_a_malformed_item_is_its_own_error_and_keeps_its_job(alloy):
    alloy.put_item(job_item(n=1))
    alloy.put_item(job_item("kept", n=2))
    sync()
    bad = job_item("kept", cron="0 5 * * *", n=2)
    bad["attributes"].append({"value": "an attribute without a code"})
    alloy.put_item(bad)
    alloy.put_item(job_item(n=3))
    run = sync()
    assert run.summary() == "read 3 items: 1 created, 0 updated, 1 unchanged, 0 removed, 1 invalid"
    [error] = run.errors
    assert error["item_id"] == f"{2:024x}"
    assert "malformed (page 1, item 1): attributes[" in error["message"]
    kept = alloy_jobs()[f"{2:024x}"]
    assert kept.cron == "30 2 * * *" and kept.periodic_task is not None and "malformed" in kept.sync_error


def test_mass_removal_is_refused_then_allowed(alloy):
    for n in range(1, 11):
        alloy.put_item(job_item(f"job {n}", n=n))
    sync()
    for n in range(1, 7):
        alloy.remove_item(f"{n:024x}")
    alloy.edit_item(f"{10:024x}", {SAMPLE_CRON_ATTRIBUTE: "0 5 * * *"})
    refused = sync()
    assert refused.status == "refused"
    assert "would remove 6 of 10 live jobs, more than ALLOY_MAX_REMOVAL_FRACTION=0.5" in refused.message
    assert all(job.periodic_task is not None for job in alloy_jobs().values())
    assert alloy_jobs()[f"{10:024x}"].cron == "30 2 * * *"  # refused means nothing applied
    allowed = sync(allow_mass_removal=True)
    assert (allowed.status, allowed.removed, allowed.updated) == ("succeeded", 6, 1)
    assert sum(job.periodic_task is not None for job in alloy_jobs().values()) == 4


def test_a_pause_survives_every_later_sync_while_changes_still_apply(alloy):
    alloy.put_item(job_item(n=1))
    sync()
    job = alloy_jobs()[f"{1:024x}"]
    job_pause(job=job, note="works on the A12")
    alloy.edit_item(f"{1:024x}", {SAMPLE_CRON_ATTRIBUTE: "45 3 * * *"})
    sync()
    sync()
    job = alloy_jobs()[f"{1:024x}"]
    assert job.is_paused and job.pause_note == "works on the A12"
    assert (job.cron, job.periodic_task.crontab.minute) == ("45 3 * * *", "45")


def test_a_pause_from_the_periodic_task_box_survives_too(alloy):
    alloy.put_item(job_item(n=1))
    sync()
    task = alloy_jobs()[f"{1:024x}"].periodic_task
    task.enabled = False
    task.save()
    alloy.edit_item(f"{1:024x}", {SAMPLE_STEPS_ATTRIBUTE: 'examples.echo {"message": "changed"}'})
    sync()
    assert PeriodicTask.objects.get(pk=task.pk).enabled is False


def test_an_invalid_item_keeps_its_last_good_definition_and_shows_the_error(alloy):
    alloy.put_item(job_item(n=1, cron="30 2 * * *"))
    sync()
    alloy.edit_item(f"{1:024x}", {SAMPLE_CRON_ATTRIBUTE: "99 * * * *"})
    run = sync()
    assert run.invalid == 1
    job = alloy_jobs()[f"{1:024x}"]
    assert job.cron == "30 2 * * *" and job.periodic_task.crontab.minute == "30"
    assert "minute '99' is out of range" in job.sync_error
    again = sync()  # still invalid, same error: nothing to write
    assert again.invalid == 1
    alloy.edit_item(f"{1:024x}", {SAMPLE_CRON_ATTRIBUTE: "0 4 * * *"})
    sync()
    job = alloy_jobs()[f"{1:024x}"]
    assert (job.cron, job.sync_error) == ("0 4 * * *", "")


def test_a_new_invalid_item_creates_nothing(alloy):
    alloy.put_item(job_item(n=1, steps="reports.nope"))
    run = sync()
    assert run.errors == [
        {
            "item_id": f"{1:024x}",
            "title": "Nightly gully report",
            "message": "step 1: function 'reports.nope' is not registered",
        }
    ]
    assert not Job.objects.exists()


def test_jobs_with_the_same_cron_share_crontab_rows(alloy):
    for n in range(1, 21):
        alloy.put_item(job_item(f"job {n}", cron=["*/5 * * * *", "0 9 * * 1-5"][n % 2], n=n))
    sync()
    assert CrontabSchedule.objects.count() == 2


def test_a_429_is_waited_out_and_counted(alloy, fast_client):
    alloy.put_item(job_item(n=1))
    alloy.faults.rate_limit_next(1, header="retry-after", seconds=3)
    run = sync(client=fast_client)
    assert run.status == "succeeded" and run.created == 1
    assert fast_client.waits == [3.0]
    assert run.requests == 2


@pytest.mark.parametrize("header", ["reset", "none"])
def test_a_429_without_retry_after_still_succeeds(alloy, fast_client, header):
    alloy.put_item(job_item(n=1))
    alloy.faults.rate_limit_next(2, header=header, seconds=2)
    run = sync(client=fast_client)
    assert run.status == "succeeded"
    assert len(fast_client.waits) == 2 and all(0 < wait <= 60 for wait in fast_client.waits)


def test_5xx_then_success(alloy, fast_client):
    alloy.put_item(job_item(n=1))
    alloy.faults.fail_next(3, status=503)
    run = sync(client=fast_client)
    assert (run.status, run.created, run.requests) == ("succeeded", 1, 4)


def test_a_timeout_then_success(alloy, fast_client):
    alloy.put_item(job_item(n=1))
    alloy.faults.hang_next(1, seconds=3)  # the client gives up after 1 s
    run = sync(client=fast_client)
    assert (run.status, run.created, run.requests) == ("succeeded", 1, 2)


def test_a_401_fails_with_a_message_about_the_key_and_never_shows_it(alloy, settings):
    alloy.put_item(job_item(n=1))
    settings.ALLOY_API_KEY = Secret("0badc0de-0000-4000-8000-000000000000")
    run = sync()
    assert run.status == "failed"
    assert "Check ALLOY_API_KEY" in run.message
    assert "0badc0de" not in run.message and API_KEY not in run.message
    assert not Job.objects.exists()


def test_missing_settings_fail_naming_the_variable(alloy, settings):
    settings.ALLOY_JOB_DESIGN = ""
    settings.ALLOY_CRON_ATTRIBUTE = ""
    run = sync()
    assert run.status == "failed"
    assert (
        run.message
        == "cannot sync with Alloy: set ALLOY_JOB_DESIGN, ALLOY_CRON_ATTRIBUTE (see the README's configuration)"
    )


def test_more_than_100_pages_are_read_in_windows(alloy, fast_client):
    for n in range(1, 251):
        alloy.put_item(job_item(f"job {n}", n=n))
    run = sync(client=fast_client_with_page_size(fast_client, 2))
    assert run.created == 250
    assert run.requests == 126  # 125 full pages and one empty page after the last full one
    pages = [page for method, path, page in alloy.requests if path == "/api/aqs/query"]
    assert max(pages) == 100
    assert len(alloy_jobs()) == 250


def test_a_sync_started_while_another_runs_exits_at_once(alloy):
    assert lease_hold(name=SYNC_LEASE, holder="worker-2:4242:abcd", ttl=300)  # another sync, alive
    with pytest.raises(SyncAlreadyRunning, match=r"another sync is running \(worker-2:4242:abcd, since"):
        sync()
    assert alloy.requests == []
    assert not SyncRun.objects.exists()


def test_a_sync_whose_process_died_stops_blocking_once_its_lease_lapses(alloy):
    alloy.put_item(job_item(n=1))
    lease_hold(name=SYNC_LEASE, holder="dead-host:1:dead", ttl=300)
    stale = SyncRun.objects.create(trigger="schedule", status="running", started_at=timezone.now())
    Lease.objects.filter(name=SYNC_LEASE).update(expires_at=Now())  # as if 300 s had passed
    assert sync().status == "succeeded"
    stale.refresh_from_db()
    assert stale.status == "failed" and stale.message.startswith("abandoned")
    assert not Lease.objects.filter(name=SYNC_LEASE, expires_at__gt=Now()).exists()  # released


def test_a_dry_run_shows_the_plan_and_writes_nothing(alloy):
    for item in sample_items():
        alloy.put_item(item)
    plan = alloy_sync_plan()
    assert (plan.created, len(plan.errors)) == (8, 4)
    assert not Job.objects.exists() and not SyncRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_syncs_one_runs_the_other_exits(alloy):
    if connection.vendor == "sqlite":
        pytest.skip("needs PostgreSQL: concurrent writers from two threads on one in-memory SQLite database")
    alloy.put_item(job_item(n=1))
    alloy.faults.latency = 1.5
    results = {}

    def first():
        results["first"] = sync()
        connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        while not SyncRun.objects.filter(status="running").exists():
            pass
        with pytest.raises(SyncAlreadyRunning):
            sync()
    finally:
        thread.join()
    assert results["first"].status == "succeeded"
    assert Job.objects.count() == 1
    assert SyncRun.objects.count() == 1


def test_an_item_skipped_because_another_vanished_mid_read_is_not_removed(alloy, fast_client):
    # Alloy pages by offset: deleting item 2 after page 1 was sent shifts item 6 onto page 1,
    # so the first read never sees it. Only item 2 is really gone, and the next sync removes it.
    for n in range(1, 16):
        alloy.put_item(job_item(f"job {n}", n=n))
    sync(client=fast_client_with_page_size(fast_client, 5))

    def delete_item_2_once(page):
        if page == 1 and alloy.get(f"{2:024x}"):
            alloy.remove_item(f"{2:024x}")

    alloy.after_page = delete_item_2_once
    run = sync(client=fast_client)
    assert (run.items_read, run.removed) == (14, 0)  # item 6 was skipped, and is not removed
    assert all(job.periodic_task is not None for job in alloy_jobs().values())
    assert sync(client=fast_client).removed == 1
    jobs = alloy_jobs()
    assert jobs[f"{2:024x}"].periodic_task is None
    assert jobs[f"{6:024x}"].periodic_task is not None


def test_the_same_item_on_two_pages_is_read_once(alloy, fast_client):
    for n in range(1, 11):
        alloy.put_item(job_item(f"job {n}", n=n * 2))  # even ids leave room to insert before them

    def insert_before_page_2(page):
        if page == 1 and not alloy.get(f"{1:024x}"):
            alloy.put_item(job_item("newcomer", n=1))  # shifts item 10 onto page 2 as well

    alloy.after_page = insert_before_page_2
    run = sync(client=fast_client_with_page_size(fast_client, 5))
    assert run.status == "succeeded"
    assert run.items_read == 10  # the newcomer sorts first and was not on page 1 when it was read
    assert len(alloy_jobs()) == 10
