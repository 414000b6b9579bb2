"""Beat defends itself: no due time in the past is stored or sent twice, one bad row stops nothing,
and a tick does a bounded amount of work. The inputs are the faults found at clock changes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from config import celery_app
from scheduler.beat import JobScheduler
from scheduler.beat import pickup as pickup_module
from scheduler.beat.claim import schedule_claim_due
from scheduler.beat.pickup import schedule_pick_up_changes
from scheduler.models import Job, ScheduleState
from scheduler.services import job_save
from tests.scheduler.beat.helpers import FakeClock, Sent, due_of

pytestmark = pytest.mark.django_db

LONDON_REPEATED_HOUR = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 01:10 GMT, the second 01:10 that day


def job_runs(sent: Sent) -> list[tuple[int, str]]:
    """The run_job messages among what beat sent (it also sends the service's own entries)."""
    return [(args[0], kwargs["due_at"]) for task, args, kwargs in sent if task == "scheduler.run_job"]


def test_a_job_made_inside_a_repeated_hour_is_not_sent_at_once_nor_again_and_again(
    make_job: Callable[..., Job], clock: FakeClock, sent: Sent
) -> None:
    with time_machine.travel(LONDON_REPEATED_HOUR, tick=False) as traveller:
        job = make_job(cron="30 1 * * *", timezone="Europe/London")
        beat = JobScheduler(app=celery_app, clock=clock, max_interval=5)
        for _ in range(24):  # two minutes of ticks
            beat.tick()
            traveller.shift(5)
            clock.advance(5)
    assert job_runs(sent) == []
    assert due_of(job) == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)


def test_a_job_changed_by_a_sync_inside_a_repeated_hour_runs_once_that_day(
    make_job: Callable[..., Job], clock: FakeClock, sent: Sent
) -> None:
    with time_machine.travel(LONDON_REPEATED_HOUR - timedelta(hours=2), tick=False) as traveller:
        job = make_job(cron="30 1 * * *", timezone="Europe/London")
        beat = JobScheduler(app=celery_app, clock=clock, max_interval=5)
        beat.tick()
        traveller.move_to(datetime(2026, 10, 25, 0, 30, tzinfo=UTC))  # 01:30 BST
        beat.tick()
        traveller.move_to(LONDON_REPEATED_HOUR)
        # The sync's write after a title edit in Alloy: the PeriodicTask's name and date_changed move.
        job.periodic_task.name = f"job {job.pk}: renamed in Alloy"
        job.periodic_task.save()
        for _ in range(24):  # two minutes of ticks
            beat.tick()
            traveller.shift(5)
            clock.advance(5)
    assert job_runs(sent) == [(job.pk, "2026-10-25T00:30:00+00:00")]  # not again at 01:30 GMT
    assert due_of(job) == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)


def test_a_due_time_in_the_past_from_the_cron_maths_is_logged_once_and_never_resent(
    make_job: Callable[..., Job], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
    job = make_job(cron="* * * * *")
    schedule_pick_up_changes(since=None, now=now)
    ScheduleState.objects.filter(periodic_task_id=job.periodic_task_id).update(next_due_at=now - timedelta(seconds=30))
    # Cron maths gone wrong, as cronsim's was inside a repeated hour: always 40 minutes ago.
    monkeypatch.setattr(pickup_module, "next_fire", lambda expression, zone, after: after - timedelta(minutes=40))
    sent = []
    with caplog.at_level(logging.ERROR):
        for second in range(0, 120, 5):
            claim = schedule_claim_due(
                now=now + timedelta(seconds=second), horizon=now + timedelta(seconds=second + 5),
                catchup_window=timedelta(hours=1),
            )  # fmt: skip
            sent += claim.dispatches
    assert len(sent) == 1
    assert due_of(job) is None  # no later due time could be had: unscheduled, not re-sent
    assert caplog.text.count(f"periodic task {job.periodic_task_id}: computed due time") == 1


def test_one_unreadable_crontab_row_does_not_stop_the_others(
    make_job: Callable[..., Job], caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
    good = make_job(name="good", cron="*/5 * * * *")
    bad = make_job(name="bad", cron="0 3 * * *", timezone="Asia/Tokyo")
    # A row edited by hand in django-celery-beat's own admin, past the project's checks.
    CrontabSchedule.objects.filter(pk=bad.periodic_task.crontab_id).update(minute="61")
    PeriodicTask.objects.filter(pk=bad.periodic_task_id).update(date_changed=now)
    with caplog.at_level(logging.WARNING):
        schedule_pick_up_changes(since=None, now=now)
    assert due_of(good) == datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
    assert due_of(bad) is None
    assert f"periodic task {bad.periodic_task_id} is never due" in caplog.text


def test_a_tick_out_of_time_leaves_the_rest_for_the_next_tick_and_sends_each_once(
    make_job: Callable[..., Job], clock: FakeClock, sent: Sent
) -> None:
    jobs = [make_job(name=f"job {n}", cron="* * * * *") for n in range(5)]
    with time_machine.travel(datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC), tick=False) as traveller:
        beat = JobScheduler(app=celery_app, clock=clock, max_interval=5)
        beat.tick_budget = 0  # every pickup and claim does one row, then asks for another tick
        assert beat.tick() == 0
        for _ in range(10):
            beat.tick()
        assert all(due_of(job) == datetime(2026, 6, 1, 12, 1, tzinfo=UTC) for job in jobs)
        traveller.move_to(datetime(2026, 6, 1, 12, 1, 0, tzinfo=UTC))
        # Enough ticks for the five jobs and the service's own entries (sync, write-back, reads...).
        waits = [beat.tick() for _ in range(15)]
    assert waits[:4] == [0, 0, 0, 0]  # one job a tick, at once
    assert sorted(job_runs(sent)) == [(job.pk, "2026-06-01T12:01:00+00:00") for job in jobs]


def test_a_catch_up_across_lord_howes_change_is_for_the_right_due_time(make_job: Callable[..., Job]) -> None:
    job = make_job(cron="30 * * * *", timezone="Australia/Lord_Howe")
    before_outage = datetime(2026, 10, 3, 13, 0, tzinfo=UTC)  # 23:30 +10:30
    schedule_pick_up_changes(since=None, now=before_outage - timedelta(minutes=1))
    assert due_of(job) == before_outage
    # Beat was down from then until 15:40Z; the latest missed due time is 02:30 +11:00 (15:30Z).
    claim = schedule_claim_due(
        now=datetime(2026, 10, 3, 15, 40, tzinfo=UTC), horizon=datetime(2026, 10, 3, 15, 45, tzinfo=UTC),
        catchup_window=timedelta(hours=6),
    )  # fmt: skip
    assert [d.kwargs["due_at"] for d in claim.dispatches] == ["2026-10-03T15:30:00+00:00"]
    assert due_of(job) == datetime(2026, 10, 3, 16, 30, tzinfo=UTC)


def test_a_job_made_on_chathams_change_day_first_runs_on_time(make_job: Callable[..., Job]) -> None:
    created = datetime(2026, 4, 4, 13, 45, tzinfo=UTC)  # 03:30 +13:45, in the hour about to repeat
    with time_machine.travel(created, tick=False):
        job = make_job(cron="0 */2 * * *", timezone="Pacific/Chatham")
        schedule_pick_up_changes(since=None, now=created)
    assert due_of(job) == datetime(2026, 4, 4, 15, 15, tzinfo=UTC)  # 04:00 +12:45


def test_an_edited_job_keeps_a_due_time_that_had_come(make_job: Callable[..., Job]) -> None:
    # The defence must not drop a due time already reached and not yet claimed (a rename by a sync).
    now = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
    job = make_job(cron="* * * * *")
    schedule_pick_up_changes(since=None, now=now - timedelta(minutes=1))
    assert due_of(job) == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    job_save(job=job, spec=job_spec(job))
    schedule_pick_up_changes(since=None, now=now)
    assert due_of(job) == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def job_spec(job: Job):
    from scheduler.jobspec import job_spec_build

    return job_spec_build(name=job.name + " (renamed)", cron=job.cron, timezone=job.timezone, steps=job.steps)
