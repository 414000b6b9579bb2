"""The bulk write path the sync uses must produce exactly what the one-at-a-time services produce."""

import json

import pytest
from django.forms.models import model_to_dict
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from scheduler.changes import JOB_INSERT_COLUMNS, PERIODIC_TASK_INSERT_COLUMNS, JobChanges, jobs_apply_changes
from scheduler.jobspec import job_spec_build
from scheduler.models import Job
from scheduler.services import job_create

pytestmark = pytest.mark.django_db


def spec(cron="30 2 * * *", name="Gullies", steps='examples.echo {"message": "x"}'):
    return job_spec_build(name=name, cron=cron, timezone="Europe/London", steps=steps)


@pytest.mark.parametrize(
    ("model", "columns"), [(Job, JOB_INSERT_COLUMNS), (PeriodicTask, PERIODIC_TASK_INSERT_COLUMNS)]
)
def test_fast_inserts_name_every_not_null_column(model, columns):
    # Model defaults are not applied by COPY; a library upgrade adding a NOT NULL column must fail here.
    required = {f.column for f in model._meta.concrete_fields if not f.null and not f.primary_key}
    assert required <= set(columns)


def test_bulk_created_jobs_match_jobs_made_one_at_a_time():
    one = job_create(spec=spec(), source="alloy", external_id="a" * 24)
    jobs_apply_changes(JobChanges(source="alloy", create=[("b" * 24, spec())]))
    bulk = Job.objects.get(external_id="b" * 24)
    ignore = {"id", "external_id", "periodic_task"}
    assert {k: v for k, v in model_to_dict(bulk).items() if k not in ignore} == {
        k: v for k, v in model_to_dict(one).items() if k not in ignore
    }
    assert bulk.created_at is not None and bulk.removed_at is None
    ignore_task = {"id", "name", "args", "description", "date_changed"}
    one_task, bulk_task = model_to_dict(one.periodic_task), model_to_dict(bulk.periodic_task)
    assert {k: v for k, v in bulk_task.items() if k not in ignore_task} == {
        k: v for k, v in one_task.items() if k not in ignore_task
    }
    assert json.loads(bulk.periodic_task.args) == [bulk.pk]
    assert bulk.periodic_task.name == f"job {bulk.pk}: Gullies"
    assert bulk.periodic_task.description == f"Runs job {bulk.pk} (alloy {'b' * 24})"


def test_bulk_changes_tell_beat_once_and_an_empty_change_not_at_all():
    jobs_apply_changes(JobChanges(source="alloy", create=[(f"{n:024x}", spec(name=f"job {n}")) for n in range(50)]))
    before = PeriodicTasks.last_change()
    jobs_apply_changes(JobChanges(source="alloy"))
    assert PeriodicTasks.last_change() == before


def test_bulk_update_keeps_pause_and_moves_the_schedule():
    job = job_create(spec=spec(), source="alloy", external_id="c" * 24)
    job.periodic_task.enabled = False
    job.periodic_task.save()
    jobs_apply_changes(JobChanges(source="alloy", update=[(job.pk, spec(cron="0 5 * * *", name="Renamed"))]))
    job.refresh_from_db()
    assert (job.name, job.cron, job.periodic_task.crontab.hour) == ("Renamed", "0 5 * * *", "5")
    assert job.periodic_task.enabled is False
    assert job.periodic_task.name == f"job {job.pk}: Renamed"


def test_a_row_with_a_misspelt_column_is_refused_by_name_and_nothing_is_written():
    from django.db import transaction

    from scheduler.bulksql import insert_rows

    row = {column: "" for column in JOB_INSERT_COLUMNS if column != "timezone"} | {"time_zone": "UTC"}
    # As in the sync, the caller's transaction is rolled back (on PostgreSQL, mid-COPY).
    with (
        pytest.raises(ValueError, match=r"missing columns \['timezone'\], unknown columns \['time_zone'\]"),
        transaction.atomic(),
    ):
        insert_rows(Job, JOB_INSERT_COLUMNS, [row])
    assert not Job.objects.exists()
