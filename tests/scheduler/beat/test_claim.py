"""Claiming what is due: sent once with its due time, catch-up after an outage, de-duplication."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django_celery_beat.models import ClockedSchedule, IntervalSchedule, PeriodicTask

from scheduler.beat.claim import schedule_claim_due
from scheduler.models import Job, JobRun, ScheduleState
from scheduler.runner import job_run_execute
from tests.scheduler.beat.helpers import HOUR, NOW, claim, due_of, pick_up

pytestmark = pytest.mark.django_db


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


def test_a_job_with_its_own_time_limit_is_sent_with_celery_s_hard_limit_past_it(make_job, settings):
    # Celery's hard limit kills the worker process: for a job allowed longer than JOB_TIME_LIMIT it
    # must come after the job's own limit, not at JOB_TIME_LIMIT + 60 s.
    settings.JOB_TIME_LIMIT = 600
    long_job, plain_job = make_job(name="long", cron="0 12 * * *"), make_job(name="plain", cron="0 12 * * *")
    Job.objects.filter(pk=long_job.pk).update(time_limit=7200)
    pick_up(now=NOW - HOUR)
    sent = {d.args[0]: d.options for d in claim().dispatches}
    assert sent[long_job.pk]["time_limit"] == 7260
    assert "time_limit" not in sent[plain_job.pk]  # the task's own default: JOB_TIME_LIMIT + 60 s


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


def test_runs_missed_longer_ago_than_the_window_count_as_skipped_in_metrics(make_job):
    from scheduler.metrics import JOB_RUNS, counters_read

    make_job(cron="0 9 * * *", source=Job.Source.ALLOY, external_id="65f0c1a0e4d0a1b2c3d4e5f0")
    make_job(cron="0 10 * * *")
    pick_up(now=datetime(2026, 6, 1, 8, 0, tzinfo=UTC))  # both due; beat comes back at 12:00:30
    assert claim().skipped == 2
    counted = {(labels["source"], labels["outcome"]): count for labels, count, _ in counters_read([JOB_RUNS])[JOB_RUNS]}
    assert counted == {("alloy", "skipped"): 1, ("local", "skipped"): 1}
