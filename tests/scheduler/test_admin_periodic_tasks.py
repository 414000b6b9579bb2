"""A job's periodic task cannot be changed or deleted through django-celery-beat's pages (D7).

The job's page is where its schedule changes; a crontab set on its task there made beat run the job
on that schedule while the job's page still showed its own cron.
"""

import json

import pytest
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.models import Job

pytestmark = pytest.mark.django_db

PERIODIC_TASKS = reverse("admin:django_celery_beat_periodictask_changelist")


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("ops", "ops@example.org", "a-long-test-password")
    client.force_login(user)
    return client


def change_url(task_id: int) -> str:
    return reverse("admin:django_celery_beat_periodictask_change", args=[task_id])


def task_state(task_id: int) -> tuple[object, ...]:
    task = PeriodicTask.objects.get(pk=task_id)
    return (task.crontab_id, task.args, task.kwargs, task.task, task.queue, task.enabled, task.name, task.interval_id)


def every_minute() -> CrontabSchedule:
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute="*", hour="*", day_of_month="*", month_of_year="*", day_of_week="*", timezone="UTC"
    )
    return schedule


def test_a_jobs_periodic_task_page_shows_no_editable_field(superuser_client, make_job):
    job = make_job(cron="0 0 1 1 *")
    page = superuser_client.get(change_url(job.periodic_task_id)).content.decode()
    for field in ("crontab", "args", "task", "queue", "enabled", "kwargs", "name", "interval"):
        assert f'name="{field}"' not in page
    assert 'name="_save"' not in page


def test_posting_every_minute_to_a_jobs_task_is_refused_and_the_job_keeps_its_cron(superuser_client, make_job):
    job = make_job(cron="0 0 1 1 *")
    before = task_state(job.periodic_task_id)
    form = {"name": "x", "task": "scheduler.run_job", "crontab": every_minute().pk, "args": "[999]", "enabled": "on"}
    answer = superuser_client.post(change_url(job.periodic_task_id), form)
    assert answer.status_code == 403
    assert task_state(job.periodic_task_id) == before
    job.refresh_from_db()
    assert job.cron == "0 0 1 1 *"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    changes=st.dictionaries(
        st.sampled_from(["crontab", "args", "kwargs", "task", "queue", "enabled", "name", "interval", "one_off"]),
        st.one_of(st.text(max_size=30), st.integers(-5, 10**6).map(str), st.just("on"), st.just(json.dumps([1]))),
        min_size=1,
    )
)
def test_no_post_to_a_jobs_task_changes_it(superuser_client, make_job, changes):
    job = Job.objects.first() or make_job()
    before = task_state(job.periodic_task_id)
    answer = superuser_client.post(change_url(job.periodic_task_id), changes)
    assert answer.status_code == 403
    assert task_state(job.periodic_task_id) == before


def test_a_jobs_periodic_task_cannot_be_deleted_from_its_page(superuser_client, make_job):
    job = make_job()
    delete_url = reverse("admin:django_celery_beat_periodictask_delete", args=[job.periodic_task_id])
    assert superuser_client.get(delete_url).status_code == 403
    assert superuser_client.post(delete_url, {"post": "yes"}).status_code == 403
    job.refresh_from_db()
    assert job.periodic_task is not None


def test_the_bulk_delete_refuses_a_selection_holding_a_jobs_task(superuser_client, make_job):
    job = make_job()
    other = PeriodicTask.objects.create(name="not a job", task="celery.backend_cleanup", crontab=every_minute())
    selection = {"action": "delete_selected", "_selected_action": [job.periodic_task_id, other.pk]}
    page = superuser_client.post(PERIODIC_TASKS, selection).content.decode()
    assert "permission to delete" in page  # the confirmation page names what cannot be deleted
    assert superuser_client.post(PERIODIC_TASKS, {**selection, "post": "yes"}).status_code == 403
    assert PeriodicTask.objects.filter(pk__in=[job.periodic_task_id, other.pk]).count() == 2


def test_a_task_of_no_job_stays_editable_and_deletable(superuser_client):
    other = PeriodicTask.objects.create(name="not a job", task="celery.backend_cleanup", crontab=every_minute())
    page = superuser_client.get(change_url(other.pk)).content.decode()
    assert 'name="crontab"' in page and 'name="_save"' in page
    delete_url = reverse("admin:django_celery_beat_periodictask_delete", args=[other.pk])
    superuser_client.post(delete_url, {"post": "yes"})
    assert not PeriodicTask.objects.filter(pk=other.pk).exists()


def test_the_list_actions_still_work_on_a_jobs_task(superuser_client, make_job):
    from scheduler.services import job_pause

    job = make_job()
    job_pause(job=job, note="roadworks")
    superuser_client.post(PERIODIC_TASKS, {"action": "enable_tasks", "_selected_action": [job.periodic_task_id]})
    job.refresh_from_db()
    job.periodic_task.refresh_from_db()
    assert not job.is_paused
