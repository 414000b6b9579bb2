"""One hostile item is one item's error: every other item is still created, changed or removed.

Run on PostgreSQL and on SQLite: PostgreSQL refuses values (NUL, over-long text) that SQLite keeps,
and before these checks one such item made every sync write nothing.
"""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection, connections
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from alloysync.models import SyncRun
from alloysync.sync import SYNC_LEASE, alloy_sync, alloy_sync_plan
from scheduler.leases import lease_hold
from scheduler.models import Job, Lease
from tests.alloysync.helpers import job_item

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]

DEEP_KWARGS = '{"message": "x", "deep": ' + "[" * 1000 + "]" * 1000 + "}"
HOSTILE_ITEMS = {
    "nul in the title": job_item("a\u0000b", n=101),
    "nul in a kwargs value": job_item("nul kwargs", steps='examples.echo {"message": "a\\u0000b"}', n=102),
    "NaN in kwargs": job_item("nan", steps='examples.echo {"message": NaN}', n=103),
    "a day-of-week field longer than its column": job_item("long dow", cron="0 0 * * " + ",".join(["1"] * 33), n=104),
    "kwargs nested 1,000 deep": job_item("deep", steps=f"examples.echo {DEEP_KWARGS}", n=105),
    "an unpaired surrogate in the title": job_item("a\ud800b", n=106),
    "an item id longer than a job can hold": {**job_item("long id", n=107), "itemId": "f" * 65},
    "a 5,000-digit number in kwargs": job_item("big", steps='examples.echo {"message": ' + "9" * 5000 + "}", n=108),
    "a zone that is a folder of zones": job_item("folder zone", timezone="Europe", n=109),
    "the host's own zone": job_item("host zone", timezone="localtime", n=110),
    "a zone with leap seconds, not IANA's name": job_item("right zone", timezone="right/UTC", n=111),
    "an item id of spaces": {**job_item("spaces", n=112), "itemId": "   "},
    "more steps than a job may have": job_item(
        "loop", steps="\n".join(['examples.echo {"message": "x"}'] * 101), n=113
    ),
}
EXPECTED_MESSAGES = {
    "nul in the title": "name holds a NUL character",
    "nul in a kwargs value": "argument message holds a NUL character",
    "NaN in kwargs": "argument message is nan",
    "a day-of-week field longer than its column": "day-of-week field",
    "kwargs nested 1,000 deep": "nested too deeply",
    "an unpaired surrogate in the title": "unpaired surrogate",
    "an item id longer than a job can hold": "longer than the 64 characters",
    "a 5,000-digit number in kwargs": "more digits than",
    "a zone that is a folder of zones": "'Europe' is not a known IANA zone",
    "the host's own zone": "'localtime' is not a known IANA zone",
    "a zone with leap seconds, not IANA's name": "'right/UTC' is not a known IANA zone",
    "an item id of spaces": "is only spaces",
    "more steps than a job may have": "there are 101 steps, more than the 100 a job may have",
}


def good_items(count: int) -> list[dict]:
    return [job_item(f"good {n}", cron=f"{n} * * * *", n=n) for n in range(1, count + 1)]


def sync(mode: str | None = SyncRun.Mode.FULL) -> SyncRun:
    # A full read unless a test says otherwise: most tests here are about its rules.
    return alloy_sync(trigger=SyncRun.Trigger.COMMAND, mode=mode).run


@pytest.mark.parametrize("kind", sorted(HOSTILE_ITEMS))
def test_one_hostile_item_is_its_own_error_and_the_others_are_scheduled(alloy, kind):
    for item in [*good_items(3), HOSTILE_ITEMS[kind]]:
        alloy.put_item(item)
    run = sync()
    assert run.status == "succeeded", run.message
    assert run.summary() == "read 4 items: 3 created, 0 updated, 0 unchanged, 0 removed, 1 invalid"
    assert set(Job.objects.values_list("name", flat=True)) == {"good 1", "good 2", "good 3"}
    [error] = SyncRun.objects.get(pk=run.pk).errors  # as stored, read back
    assert EXPECTED_MESSAGES[kind] in error["message"]
    assert "\x00" not in json.dumps(error) and len(error["message"]) < 2000


@pytest.mark.parametrize("kind", sorted(HOSTILE_ITEMS))
def test_a_hostile_item_arriving_between_full_reads_is_its_own_error_and_removes_nothing(alloy, kind):
    for item in good_items(3):
        alloy.put_item(item)
    sync()
    alloy.put_item(HOSTILE_ITEMS[kind])
    run = sync(mode=None)  # as beat's syncs run: incremental
    assert (run.mode, run.status, run.invalid, run.removed) == ("incremental", "succeeded", 1, 0), run.message
    assert set(Job.objects.filter(periodic_task__isnull=False).values_list("name", flat=True)) == {
        "good 1",
        "good 2",
        "good 3",
    }
    assert EXPECTED_MESSAGES[kind] in SyncRun.objects.get(pk=run.pk).errors[0]["message"]
    assert sync(mode=None).mode == "incremental"  # held as a refused item: the count agrees


def test_every_hostile_item_at_once_still_schedules_the_good_ones_and_is_recorded(alloy):
    for item in [*good_items(5), *HOSTILE_ITEMS.values()]:
        alloy.put_item(item)
    run = sync()
    assert run.status == "succeeded"
    assert (run.created, run.invalid) == (5, len(HOSTILE_ITEMS))
    stored = SyncRun.objects.get(pk=run.pk)
    assert stored.status == "succeeded" and len(stored.errors) == len(HOSTILE_ITEMS)


def test_a_hostile_item_that_had_a_job_keeps_the_job_and_shows_why(alloy):
    alloy.put_item(job_item("report", n=1))
    sync()
    alloy.put_item(job_item("report", steps='examples.echo {"message": NaN}', n=1))
    run = sync()
    job = Job.objects.get(external_id=f"{1:024x}")
    assert run.status == "succeeded" and run.invalid == 1
    assert job.periodic_task is not None and job.steps == [
        {"function": "examples.echo", "kwargs": {"message": "gullies"}}
    ]
    assert "is nan" in job.sync_error


def test_a_float_that_storage_turns_into_an_integer_is_unchanged_on_the_next_sync(alloy):
    alloy.put_item(job_item("big number", steps='examples.sleep {"seconds": 1e20}', n=1))
    assert sync().created == 1
    last_change = PeriodicTasks.last_change()
    run = sync()
    assert run.summary() == "read 1 items: 0 created, 0 updated, 1 unchanged, 0 removed, 0 invalid"
    assert PeriodicTasks.last_change() == last_change  # beat was not told to reload
    assert Job.objects.get().steps[0]["kwargs"] == {"seconds": 10**20}


def test_an_invalid_item_whose_title_holds_a_nul_is_recorded_and_the_sync_ends(alloy):
    alloy.put_item(job_item("bad\u0000title", cron="not a cron", n=1))
    alloy.put_item(job_item("good", n=2))
    run = sync()
    stored = SyncRun.objects.get(pk=run.pk)
    assert stored.status == "succeeded" and stored.created == 1 and stored.invalid == 1
    assert stored.errors[0]["title"].startswith("bad") and "\x00" not in stored.errors[0]["title"]
    assert not SyncRun.objects.filter(status="running").exists()


def test_a_job_deleted_in_the_admin_while_the_sync_reads_is_left_alone_and_the_rest_applied(alloy):
    for n in (1, 2, 3):
        alloy.put_item(job_item(f"job {n}", n=n))
    sync()
    for n in (1, 2, 3):
        alloy.put_item(job_item(f"job {n} renamed", n=n))
    doomed = Job.objects.get(external_id=f"{2:024x}")

    def delete_meanwhile(pages: int, items: int) -> None:
        Job.objects.filter(pk=doomed.pk).delete()

    outcome = alloy_sync(trigger=SyncRun.Trigger.COMMAND, mode=SyncRun.Mode.FULL, on_page=delete_meanwhile)
    assert outcome.run.status == "succeeded", outcome.run.message
    assert outcome.run.updated == 2
    assert set(Job.objects.values_list("name", flat=True)) == {"job 1 renamed", "job 3 renamed"}
    assert f"ids {doomed.pk}" in outcome.run.message and "next sync creates them again" in outcome.run.message
    assert sync().created == 1  # and so it does


@pytest.mark.parametrize("setting", ["ALLOY_STEPS_ATTRIBUTE", "ALLOY_CRON_ATTRIBUTE", "ALLOY_TITLE_ATTRIBUTE"])
def test_a_misspelt_attribute_code_fails_the_sync_naming_the_setting_and_changes_nothing(alloy, settings, setting):
    for item in good_items(3):
        alloy.put_item(item)
    sync()
    setattr(settings, setting, "attributes_jobsStepz")
    run = sync()
    assert run.status == "failed"
    assert f"{setting}='attributes_jobsStepz'" in run.message and "nothing was changed" in run.message
    assert Job.objects.filter(periodic_task__isnull=False).count() == 3
    assert not Job.objects.exclude(sync_error="").exists()


def test_a_misspelt_zone_attribute_is_a_note_not_a_failure(alloy, settings):
    alloy.put_item(job_item("report", n=1))
    settings.ALLOY_TIMEZONE_ATTRIBUTE = "attributes_jobsZone"
    run = sync()
    assert run.status == "succeeded" and run.created == 1
    assert "ALLOY_TIMEZONE_ATTRIBUTE='attributes_jobsZone'" in run.message


def test_the_dry_run_refuses_a_misspelt_attribute_too(alloy, settings):
    from alloysync.plan import SyncConfigError

    alloy.put_item(job_item("report", n=1))
    settings.ALLOY_CRON_ATTRIBUTE = "attributes_cronn"
    with pytest.raises(SyncConfigError, match="ALLOY_CRON_ATTRIBUTE='attributes_cronn'"):
        alloy_sync_plan()


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit, MemoryError])
def test_a_sync_interrupted_mid_read_ends_failed_saying_why_and_releases_its_lease(alloy, interrupt):
    alloy.put_item(job_item("report", n=1))

    def interrupted(pages: int, items: int) -> None:
        raise interrupt()

    with pytest.raises(interrupt):
        alloy_sync(trigger=SyncRun.Trigger.COMMAND, on_page=interrupted)
    run = SyncRun.objects.get()
    assert run.status == "failed" and run.finished_at is not None
    assert run.message.startswith(f"stopped by {interrupt.__name__}")
    assert not Job.objects.exists()
    assert lease_hold(name=SYNC_LEASE, holder="next-sync:1:x", ttl=60)


def test_a_sync_that_lost_its_lease_before_writing_changes_nothing(alloy):
    alloy.put_item(job_item("report", n=1))

    def another_sync_takes_over(pages: int, items: int) -> None:
        # As if this sync had been silent past its TTL and another had taken the lease.
        Lease.objects.filter(name=SYNC_LEASE).update(holder="other-host:2:y")

    outcome = alloy_sync(trigger=SyncRun.Trigger.COMMAND, on_page=another_sync_takes_over)
    assert outcome.run.status == "failed"
    assert "lost its lease" in outcome.run.message and "changed nothing" in outcome.run.message
    assert not Job.objects.exists() and not PeriodicTask.objects.filter(task="scheduler.run_job").exists()


@pytest.mark.django_db(transaction=True)
def test_the_lease_is_renewed_while_a_slow_page_is_in_flight(alloy, settings, monkeypatch):
    monkeypatch.setattr("alloysync.sync_lease.SYNC_LEASE_TTL", 1.2)  # renewed every 0.2 s
    settings.ALLOY_TIMEOUT = 10
    alloy.put_item(job_item("report", n=1))
    alloy.faults.hang_next(seconds=3)  # far longer than the lease's TTL
    outcome: list[SyncRun] = []

    def sync_in_a_thread() -> None:
        try:
            outcome.append(sync())
        finally:
            connections.close_all()

    thread = threading.Thread(target=sync_in_a_thread)
    thread.start()
    try:
        for _ in range(10):  # for two seconds, past the TTL, no one else can take the lease
            thread.join(0.2)
            assert not lease_hold(name=SYNC_LEASE, holder="second-sync:2:z", ttl=60)
    finally:
        thread.join(30)
    assert outcome[0].status == "succeeded" and outcome[0].created == 1


@pytest.mark.django_db(transaction=True)
def test_a_sync_whose_lease_is_taken_while_a_page_is_in_flight_stops_and_changes_nothing(alloy, settings, monkeypatch):
    monkeypatch.setattr("alloysync.sync_lease.SYNC_LEASE_TTL", 1.2)
    settings.ALLOY_TIMEOUT = 10
    settings.ALLOY_PAGE_SIZE = 1
    for n in (1, 2):
        alloy.put_item(job_item(f"job {n}", n=n))
    seen: list[int] = []

    def take_over_after_the_first_page(pages: int, items: int) -> None:
        seen.append(pages)
        if pages == 1:
            Lease.objects.filter(name=SYNC_LEASE).update(holder="other-host:2:y")
            alloy.faults.hang_next(seconds=2)  # page 2 is slow: the keeper notices meanwhile

    outcome = alloy_sync(trigger=SyncRun.Trigger.COMMAND, on_page=take_over_after_the_first_page)
    assert outcome.run.status == "failed" and "lost its lease" in outcome.run.message
    assert not Job.objects.exists()


def test_the_lease_keeper_closes_its_own_connection():
    from alloysync.sync_lease import LeaseKeeper, SyncLease

    keeper = LeaseKeeper(SyncLease())
    keeper.start()
    keeper.stop()
    assert not keeper.is_alive()
    assert connection.connection is None or connection.is_usable()  # the test's own one is untouched


def test_a_sync_whose_checks_missed_a_value_writes_the_other_items(alloy, monkeypatch):
    monkeypatch.setattr("scheduler.jobspec.text_problem", lambda text: None)  # a check with a gap
    for n in range(1, 6):
        alloy.put_item(job_item(f"good {n}", n=n))
    alloy.put_item(job_item("nul\x00title", n=6))
    run = alloy_sync(trigger=SyncRun.Trigger.COMMAND).run
    assert run.status == "succeeded"
    assert {f"good {n}" for n in range(1, 6)} <= set(Job.objects.values_list("name", flat=True))
    if connection.vendor == "postgresql":
        assert run.summary() == "read 6 items: 5 created, 0 updated, 0 unchanged, 0 removed, 1 invalid"
        [error] = SyncRun.objects.get(pk=run.pk).errors
        assert error["item_id"] == f"{6:024x}" and error["message"].startswith("the database refused to create")
        assert "\x00" not in error["title"]
    else:
        assert run.created == 6


def test_sync_alloy_escapes_control_characters_from_alloy_on_the_terminal(alloy, capsys):
    from django.core.management import call_command

    alloy.put_item({**job_item("bell\x07title", cron="bad", n=1), "itemId": "id\u2028with\x1bescape"})
    call_command("sync_alloy")
    out = capsys.readouterr().out
    assert "invalid id\\u2028with\\x1bescape 'bell\\x07title'" in out
    assert "\x1b" not in out and "\u2028" not in out and "\x07" not in out  # captured output has no colours
