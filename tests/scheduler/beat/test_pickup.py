"""Following changed periodic tasks: new, paused, edited, bulk-written and removed rows get their due time."""

from datetime import UTC, datetime, timedelta

import pytest
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from scheduler.beat.pickup import schedule_pick_up_changes
from scheduler.changes import JobChanges, jobs_apply_changes
from scheduler.jobspec import job_spec_build
from scheduler.models import ScheduleState
from scheduler.services import job_pause, job_remove, job_resume, job_save
from tests.scheduler.beat.helpers import NOW, STEPS, due_of, pick_up

pytestmark = pytest.mark.django_db


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
