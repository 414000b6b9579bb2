import json

import pytest
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks

from scheduler.jobspec import job_spec_build
from scheduler.models import Job
from scheduler.services import job_pause, job_remove, job_resume, job_save

pytestmark = pytest.mark.django_db


def test_a_new_job_gets_a_periodic_task_with_its_crontab_and_zone(make_job):
    job = make_job(cron="30 2 * * 1-5", timezone="Europe/London")
    task = job.periodic_task
    assert task.task == "scheduler.run_job"
    assert json.loads(task.args) == [job.pk]
    assert task.enabled
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_month, crontab.month_of_year, crontab.day_of_week) == (
        "30",
        "2",
        "*",
        "*",
        "1-5",
    )
    assert str(crontab.timezone) == "Europe/London"


def test_jobs_with_the_same_cron_and_zone_share_one_crontab_row(make_job):
    first = make_job(name="a", cron="*/5 * * * *")
    second = make_job(name="b", cron="*/5 * * * *")
    third = make_job(name="c", cron="*/5 * * * *", timezone="Europe/London")
    assert first.periodic_task.crontab_id == second.periodic_task.crontab_id
    assert third.periodic_task.crontab_id != first.periodic_task.crontab_id
    assert CrontabSchedule.objects.filter(minute="*/5").count() == 2


def test_editing_a_job_moves_its_schedule_and_tells_beat(make_job):
    job = make_job(cron="30 2 * * *")
    before = PeriodicTasks.last_change()
    spec = job_spec_build(name="renamed", cron="0 * * * *", timezone="UTC", steps='examples.echo {"message": "x"}')
    job_save(job=job, spec=spec)
    task = PeriodicTask.objects.get(pk=job.periodic_task_id)
    assert (task.crontab.minute, task.crontab.hour) == ("0", "*")
    assert task.name == f"job {job.pk}: renamed"
    assert PeriodicTasks.last_change() > before


def test_pause_survives_an_edit_until_an_explicit_resume(make_job):
    job = make_job()
    job_pause(job=job, note="bridge closed for works")
    spec = job_spec_build(name=job.name, cron="0 3 * * *", timezone="UTC", steps='examples.echo {"message": "x"}')
    job_save(job=Job.objects.get(pk=job.pk), spec=spec)
    job.refresh_from_db()
    assert job.is_paused
    assert job.pause_note == "bridge closed for works"
    assert job.periodic_task.crontab.hour == "3"
    job_resume(job=job)
    job.refresh_from_db()
    assert not job.is_paused
    assert job.pause_note == ""


def test_removing_a_job_keeps_the_job_and_drops_its_schedule(make_job):
    job = make_job()
    task_id = job.periodic_task_id
    job_remove(job=job)
    job.refresh_from_db()
    assert job.periodic_task is None
    assert job.removed_at is not None
    assert not PeriodicTask.objects.filter(pk=task_id).exists()


def test_a_removed_job_comes_back_with_a_new_schedule(make_job):
    job = make_job()
    job_remove(job=job)
    spec = job_spec_build(name=job.name, cron="0 4 * * *", timezone="UTC", steps='examples.echo {"message": "x"}')
    job_save(job=job, spec=spec)
    job.refresh_from_db()
    assert job.removed_at is None
    assert job.periodic_task.enabled
    assert job.periodic_task.crontab.hour == "4"


def test_pausing_a_removed_job_is_refused(make_job):
    job = make_job()
    job_remove(job=job)
    with pytest.raises(ValueError, match="is removed"):
        job_pause(job=job, note="works")


def test_external_ids_are_unique_per_source(make_job):
    from django.db import IntegrityError, transaction

    make_job(source=Job.Source.ALLOY, external_id="642062376be3a0036bbbb64b")
    make_job(source=Job.Source.LOCAL, name="local one")
    make_job(source=Job.Source.LOCAL, name="local two")  # empty external ids do not collide
    with pytest.raises(IntegrityError), transaction.atomic():
        make_job(source=Job.Source.ALLOY, external_id="642062376be3a0036bbbb64b")


def test_a_periodic_task_s_name_is_one_clean_line_whatever_the_job_s_name(make_job):
    # Beat logs the task's name and django-celery-beat's pages show it: no bidi override, no line break.
    job = make_job(name="gully \u202eevil\u202c\nreport")
    assert job.periodic_task.name == f"job {job.pk}: gully evil report"


def test_a_periodic_task_s_name_fits_its_column_whatever_the_job_s_id(make_job):
    job = make_job(name="X" * 200)
    assert len(job.periodic_task.name) == 200 and job.periodic_task.name.endswith("X…")
