"""JobScheduler itself, in this process, against the test database: what it sends, its lease, its timers.

Only the broker is replaced: ``send_task`` records what beat would send. The monotonic clock that
paces renewal, look-back and reconcile is injected, so the tests move it instead of sleeping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.db.models.functions import Now
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from config import celery_app
from scheduler.beat import JobScheduler
from scheduler.beat.pickup import schedule_cursor
from scheduler.models import Job, JobRun, Lease, ScheduleState
from tests.scheduler.beat.helpers import FakeClock, Sent

pytestmark = pytest.mark.django_db


def make_due(*jobs: Job) -> datetime:
    """Make ``jobs`` (every minute) due now, as if their due time had come: returns that time."""
    due = timezone.now().replace(second=0, microsecond=0)
    ScheduleState.objects.filter(periodic_task__job__in=jobs).update(next_due_at=due)
    return due


def due_of(job: Job) -> datetime | None:
    return ScheduleState.objects.get(periodic_task_id=job.periodic_task_id).next_due_at


def write_behind_its_back(job: Job, *, stamped: datetime) -> None:
    """Pause the job's task with a bulk write stamped ``stamped``, as a late or careless writer would."""
    PeriodicTask.objects.filter(pk=job.periodic_task_id).update(enabled=False, date_changed=stamped)


def test_it_sends_what_is_due_once(make_job: Callable[..., Job], clock: FakeClock, sent: Sent) -> None:
    job = make_job(cron="* * * * *")
    beat = JobScheduler(app=celery_app, clock=clock, max_interval=5)
    assert 0 < beat.tick() <= 5  # picked up; due at the next minute
    assert sent == []
    due = make_due(job)
    beat.tick()
    beat.tick()
    assert sent == [("scheduler.run_job", [job.pk], {"due_at": due.isoformat()})]
    assert due_of(job) == due + timedelta(minutes=1)


def test_a_beat_that_loses_the_lease_stops_sending_says_so_and_takes_it_back_later(
    make_job: Callable[..., Job],
    beat: JobScheduler,
    clock: FakeClock,
    sent: Sent,
    caplog: pytest.LogCaptureFixture,
) -> None:
    job = make_job(cron="* * * * *")
    beat.tick()
    # Another beat took over (say, this one stalled past the lease's lifetime) and holds it.
    Lease.objects.filter(name="beat").update(holder="other:1:00000000", expires_at=timezone.now() + timedelta(hours=1))
    due = make_due(job)
    clock.advance(settings.BEAT_LEASE_TTL / 3)  # time to renew
    with caplog.at_level(logging.INFO):
        assert beat.tick() == min(5, settings.BEAT_LEASE_TTL / 3)
    assert not beat.is_leader and sent == []
    assert f"beat {beat.holder} lost the leader lease; waiting" in caplog.text

    Lease.objects.filter(name="beat").update(expires_at=Now())  # the other one died
    clock.advance(1)
    with caplog.at_level(logging.INFO):
        beat.tick()
    assert beat.is_leader and f"beat {beat.holder} is now the leader" in caplog.text
    assert sent == [("scheduler.run_job", [job.pk], {"due_at": due.isoformat()})]


def test_a_second_beat_sends_nothing_while_the_first_holds_the_lease(
    make_job: Callable[..., Job], beat: JobScheduler, clock: FakeClock, sent: Sent
) -> None:
    job = make_job(cron="* * * * *")
    beat.tick()
    make_due(job)
    follower = JobScheduler(app=celery_app, clock=clock, max_interval=5)
    follower.tick()
    assert not follower.is_leader and sent == []
    beat.tick()
    assert [message[1] for message in sent] == [[job.pk]]


def test_every_look_back_interval_it_picks_up_a_row_stamped_before_its_cursor(
    make_job: Callable[..., Job], beat: JobScheduler, clock: FakeClock
) -> None:
    job = make_job(cron="0 * * * *")
    beat.tick()
    assert due_of(job) is not None
    # A long transaction stamped this row before the newest change seen and committed after it.
    write_behind_its_back(job, stamped=schedule_cursor() - timedelta(seconds=30))
    clock.advance(1)
    beat.tick()
    assert due_of(job) is not None  # not yet: this tick only reads past the cursor
    clock.advance(beat.look_back_every)
    beat.tick()
    assert due_of(job) is None


def test_the_reconcile_picks_up_a_row_written_behind_its_back_with_an_old_stamp(
    make_job: Callable[..., Job], beat: JobScheduler, clock: FakeClock
) -> None:
    job = make_job(cron="0 * * * *")
    beat.tick()
    write_behind_its_back(job, stamped=timezone.now() - timedelta(hours=2))
    clock.advance(beat.look_back_every)
    beat.tick()
    assert due_of(job) is not None  # too old for the look-back
    clock.advance(beat.reconcile_every)
    beat.tick()
    assert due_of(job) is None


def test_a_full_batch_makes_it_tick_again_at_once(make_job: Callable[..., Job], beat: JobScheduler, sent: Sent) -> None:
    jobs = [make_job(name=f"j{n}", cron="* * * * *") for n in range(3)]
    beat.batch_size = 2
    beat.tick()
    make_due(*jobs)
    assert beat.tick() == 0
    assert len(sent) == 2
    assert beat.tick() > 0
    assert sorted(message[1][0] for message in sent) == sorted(job.pk for job in jobs)


def test_it_sleeps_until_the_next_due_time_and_never_longer_than_max_interval(
    make_job: Callable[..., Job], beat: JobScheduler
) -> None:
    job = make_job(cron="* * * * *")
    beat.tick()
    ScheduleState.objects.filter(pk=job.periodic_task_id).update(next_due_at=timezone.now() + timedelta(seconds=2))
    assert 0 < beat.tick() <= 2
    ScheduleState.objects.update(next_due_at=None)  # nothing scheduled at all
    assert beat.tick() == beat.max_interval


def test_a_run_missed_longer_ago_than_the_catchup_window_is_recorded_skipped_and_logged(
    make_job: Callable[..., Job], beat: JobScheduler, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    missed = (timezone.now() - timedelta(hours=2)).replace(second=0, microsecond=0)
    job = make_job(cron=f"{missed.minute} {missed.hour} * * *")  # daily: its latest due time is two hours ago
    beat.tick()
    ScheduleState.objects.filter(pk=job.periodic_task_id).update(next_due_at=missed)  # beat was down since
    beat.tick()
    assert sent == []
    assert JobRun.objects.get(job=job).status == JobRun.Status.SKIPPED
    assert "beat recorded 1 run(s) missed too long ago as skipped" in caplog.text


def test_one_message_that_cannot_be_sent_does_not_stop_the_others(
    make_job: Callable[..., Job],
    beat: JobScheduler,
    sent: Sent,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = make_job(name="a", cron="* * * * *"), make_job(name="b", cron="* * * * *")
    beat.tick()
    make_due(first, second)
    record = celery_app.send_task

    def send_task(name: str, args: list[Any], kwargs: dict[str, Any], **options: Any) -> None:
        if args == [first.pk]:
            raise ConnectionError("broker refused the message")
        record(name, args, kwargs, **options)

    monkeypatch.setattr(celery_app, "send_task", send_task)
    beat.tick()
    assert [message[1] for message in sent] == [[second.pk]]
    assert f"beat could not send scheduler.run_job[{first.pk}]" in caplog.text


@pytest.mark.django_db(transaction=True)  # the tick closes the connection, which a test transaction cannot survive
def test_a_database_error_in_a_tick_drops_leadership_and_waits_the_longest_interval(
    beat: JobScheduler, caplog: pytest.LogCaptureFixture
) -> None:
    def database_gone(execute: Callable[..., Any], *args: Any) -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    with connection.execute_wrapper(database_gone):
        assert beat.tick() == beat.max_interval
    assert not beat.is_leader
    assert f"beat {beat.holder} cannot reach the database; retrying" in caplog.text
    beat.tick()  # the database is back: its own lease is still there to renew
    assert beat.is_leader


def test_a_beat_that_cannot_release_its_lease_at_close_says_it_will_lapse(
    beat: JobScheduler, caplog: pytest.LogCaptureFixture
) -> None:
    def database_gone(execute: Callable[..., Any], *args: Any) -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    with connection.execute_wrapper(database_gone):
        beat.close()
    assert f"beat {beat.holder} could not release its lease; it lapses by itself" in caplog.text


def test_a_beat_stopped_cleanly_releases_the_lease_at_once(beat: JobScheduler, clock: FakeClock) -> None:
    beat.close()
    follower = JobScheduler(app=celery_app, clock=clock, max_interval=5)
    follower.tick()
    assert follower.is_leader
    assert Lease.objects.get(name="beat").holder == follower.holder
    follower.close()


def test_it_holds_no_schedule_in_memory_and_names_its_holder(beat: JobScheduler) -> None:
    assert beat.schedule == {}
    assert beat.holder in beat.info
    beat.sync()  # nothing to write back: due times were advanced when claimed
