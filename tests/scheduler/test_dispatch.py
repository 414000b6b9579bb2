"""Beat's database work: picking up changes, claiming due tasks, catch-up and de-duplication."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask

from scheduler.dispatch import schedule_claim_due, schedule_pick_up_changes
from scheduler.jobspec import job_spec_build
from scheduler.models import JobRun, ScheduleState
from scheduler.runner import job_run_execute
from scheduler.services import JobChanges, job_pause, job_remove, job_resume, job_save, jobs_apply_changes

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
STEPS = 'examples.echo {"message": "x"}'


def pick_up(now=NOW, since=None):
    return schedule_pick_up_changes(since=since, now=now)


def claim(now=NOW, window=HOUR):
    return schedule_claim_due(now=now, horizon=now + timedelta(seconds=5), catchup_window=window)


def due_of(job):
    return ScheduleState.objects.get(periodic_task_id=job.periodic_task_id).next_due_at


def test_a_new_job_is_picked_up_with_its_next_due_time(make_job):
    job = make_job(cron="*/15 * * * *")
    assert pick_up()[0] >= 1
    assert due_of(job) == datetime(2026, 6, 1, 12, 15, tzinfo=UTC)
    assert pick_up(since=NOW)[0] == 0  # nothing changed since: nothing to do


def test_pause_resume_edit_and_removal_are_picked_up(make_job):
    job = make_job(cron="0 * * * *")
    _, cursor = pick_up()
    job_pause(job=job, note="x")
    _, cursor = pick_up(since=cursor)
    assert due_of(job) is None
    job_resume(job=job)
    _, cursor = pick_up(since=cursor)
    assert due_of(job) == datetime(2026, 6, 1, 13, 0, tzinfo=UTC)
    job_save(
        job=job,
        spec=job_spec_build(name="x", cron="45 12 * * *", timezone="UTC", steps='examples.echo {"message": "x"}'),
    )
    pick_up(since=cursor)
    assert due_of(job) == datetime(2026, 6, 1, 12, 45, tzinfo=UTC)
    task_id = job.periodic_task_id
    job_remove(job=job)
    assert not ScheduleState.objects.filter(periodic_task_id=task_id).exists()


def test_changes_from_a_bulk_sync_are_picked_up_and_bulk_removal_drops_the_state(make_job):
    jobs_apply_changes(
        JobChanges(
            source="alloy",
            create=[
                (
                    f"{n:024x}",
                    job_spec_build(
                        name=f"j{n}", cron="5 12 * * *", timezone="UTC", steps='examples.echo {"message": "x"}'
                    ),
                )
                for n in range(3)
            ],
        )
    )
    _, cursor = pick_up()
    assert ScheduleState.objects.filter(next_due_at=datetime(2026, 6, 1, 12, 5, tzinfo=UTC)).count() == 3
    from scheduler.models import Job

    ids = list(Job.objects.filter(source="alloy").values_list("pk", flat=True))
    jobs_apply_changes(
        JobChanges(
            source="alloy",
            update=[
                (
                    ids[0],
                    job_spec_build(
                        name="j0", cron="7 12 * * *", timezone="UTC", steps='examples.echo {"message": "x"}'
                    ),
                )
            ],
            remove=[ids[1]],
        )
    )
    pick_up(since=cursor)
    assert sorted(ScheduleState.objects.values_list("next_due_at", flat=True)) == [
        datetime(2026, 6, 1, 12, 5, tzinfo=UTC),
        datetime(2026, 6, 1, 12, 7, tzinfo=UTC),
    ]


def test_editing_a_shared_crontab_row_reschedules_its_tasks(make_job):
    job = make_job(cron="0 * * * *")
    _, cursor = pick_up()
    crontab = CrontabSchedule.objects.get(pk=job.periodic_task.crontab_id)
    crontab.minute = "20"
    crontab.save()  # as in django-celery-beat's admin
    pick_up(since=cursor)
    assert due_of(job) == datetime(2026, 6, 1, 12, 20, tzinfo=UTC)


def test_a_due_job_is_claimed_once_sent_with_its_due_time_and_advanced(make_job):
    job = make_job(cron="0 12 * * *")
    pick_up(now=NOW - HOUR)
    first = claim()
    assert [(d.task, d.args, d.kwargs) for d in first.dispatches] == [
        ("scheduler.run_job", [job.pk], {"due_at": "2026-06-01T12:00:00+00:00"})
    ]
    assert due_of(job) == datetime(2026, 6, 2, 12, 0, tzinfo=UTC)
    assert claim().dispatches == []  # a second beat at the same moment finds nothing
    task = PeriodicTask.objects.get(pk=job.periodic_task_id)
    assert task.total_run_count == 1 and task.last_run_at == NOW


def test_nothing_is_sent_before_it_is_due_and_the_tick_knows_when_to_wake(make_job):
    job = make_job(cron="1 12 * * *")
    pick_up(now=NOW - HOUR)
    result = schedule_claim_due(now=NOW, horizon=NOW + timedelta(minutes=2), catchup_window=HOUR)
    assert result.dispatches == []
    assert result.next_due_at == due_of(job) == datetime(2026, 6, 1, 12, 1, tzinfo=UTC)


def test_after_an_outage_a_job_runs_once_for_its_latest_missed_time_within_the_window(make_job):
    job = make_job(cron="*/10 * * * *")
    pick_up(now=NOW - 5 * HOUR / 10)  # due at 11:40; beat then stays down until 12:00:30
    result = claim()
    assert [d.kwargs["due_at"] for d in result.dispatches] == ["2026-06-01T12:00:00+00:00"]
    assert due_of(job) == datetime(2026, 6, 1, 12, 10, tzinfo=UTC)
    assert not JobRun.objects.exists()


def test_runs_missed_longer_ago_than_the_window_are_recorded_as_skipped(make_job):
    job = make_job(cron="0 9 * * *")
    pick_up(now=datetime(2026, 6, 1, 8, 0, tzinfo=UTC))  # due 09:00; beat comes back at 12:00:30
    result = claim()
    assert result.dispatches == [] and result.skipped == 1
    run = JobRun.objects.get(job=job)
    assert (run.status, run.trigger, run.due_at) == ("skipped", "schedule", datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    assert run.error.startswith("missed: due at 2026-06-01 09:00 UTC while no beat was running")
    assert due_of(job) == datetime(2026, 6, 2, 9, 0, tzinfo=UTC)


def test_the_same_due_time_runs_once_even_if_sent_twice(make_job):
    job = make_job()
    due = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    first = job_run_execute(job=job, trigger=JobRun.Trigger.SCHEDULE, due_at=due)
    again = job_run_execute(job=job, trigger=JobRun.Trigger.SCHEDULE, due_at=due)
    assert first.pk == again.pk and first.status == "succeeded"
    assert JobRun.objects.filter(job=job).count() == 1


def test_a_paused_job_that_was_due_is_not_sent(make_job):
    job = make_job(cron="0 12 * * *")
    pick_up(now=NOW - HOUR)
    PeriodicTask.objects.filter(pk=job.periodic_task_id).update(enabled=False)  # bulk, unseen by pick-up
    assert claim().dispatches == []
    assert due_of(job) is None


def test_interval_entries_run_on_their_interval_and_once_after_an_outage():
    every = IntervalSchedule.objects.create(every=300, period="seconds")
    task = PeriodicTask.objects.create(name="alloysync.sync", task="alloysync.sync", interval=every)
    pick_up(now=NOW)
    assert ScheduleState.objects.get(pk=task.pk).next_due_at == NOW + timedelta(seconds=300)
    later = NOW + timedelta(hours=3)
    result = claim(now=later)
    assert [(d.task, d.kwargs) for d in result.dispatches] == [("alloysync.sync", {})]
    assert ScheduleState.objects.get(pk=task.pk).next_due_at == later + timedelta(seconds=300)


def test_a_one_off_clocked_task_runs_once_and_is_disabled():
    clocked = ClockedSchedule.objects.create(clocked_time=NOW - timedelta(seconds=10))
    task = PeriodicTask.objects.create(name="once", task="scheduler.reap_lost_runs", clocked=clocked, one_off=True)
    pick_up(now=NOW - HOUR)
    assert len(claim().dispatches) == 1
    task.refresh_from_db()
    assert task.enabled is False
    assert claim(now=NOW + HOUR).dispatches == []


@pytest.mark.django_db(transaction=True)
def test_two_beats_claiming_at_once_never_share_a_due_time(make_job):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: row locks with SKIP LOCKED")
    jobs = [make_job(name=f"j{n}", cron="0 12 * * *") for n in range(200)]
    pick_up(now=NOW - HOUR)
    results = []

    def beat():
        results.append(schedule_claim_due(now=NOW, horizon=NOW, catchup_window=HOUR, limit=50))
        connection.close()

    for _ in range(4):
        threads = [threading.Thread(target=beat) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    sent = [d.args[0] for result in results for d in result.dispatches]
    assert sorted(sent) == sorted(job.pk for job in jobs)


def test_a_job_deleted_in_the_admin_takes_its_schedule_with_it(make_job, admin_client):
    from django.urls import reverse

    job = make_job()
    pick_up()
    task_id = job.periodic_task_id
    admin_client.post(reverse("admin:scheduler_job_delete", args=[job.pk]), {"post": "yes"})
    assert not PeriodicTask.objects.filter(pk=task_id).exists()
    assert not ScheduleState.objects.filter(pk=task_id).exists()


def test_a_change_committed_late_is_caught_by_the_look_back(make_job):
    job = make_job(cron="0 * * * *")
    _, cursor = pick_up()
    # A long transaction stamped this row before the cursor and committed after it.
    stamped = cursor - timedelta(seconds=30)
    PeriodicTask.objects.filter(pk=job.periodic_task_id).update(enabled=False, date_changed=stamped)
    assert schedule_pick_up_changes(since=cursor, now=NOW, look_back=timedelta(0))[0] == 0
    assert schedule_pick_up_changes(since=cursor, now=NOW)[0] == 1
    assert due_of(job) is None


def test_a_big_change_is_picked_up_in_batches_without_losing_rows(make_job):
    jobs_apply_changes(
        JobChanges(
            source="alloy",
            create=[
                (f"{n:024x}", job_spec_build(name=f"j{n}", cron="0 13 * * *", timezone="UTC", steps=STEPS))
                for n in range(5)
            ],
        )
    )  # all five stamped with the same time
    picked, cursor = schedule_pick_up_changes(since=None, now=NOW, limit=2)
    assert (picked, cursor) == (2, None)
    while picked:
        picked, cursor = schedule_pick_up_changes(since=cursor, now=NOW, look_back=timedelta(0), limit=2)
    assert ScheduleState.objects.filter(next_due_at=datetime(2026, 6, 1, 13, 0, tzinfo=UTC)).count() == 5
