import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from scheduler.models import Job, JobRun, StepRun
from scheduler.runner import job_run_execute

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:scheduler_job_changelist")


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("ops", "ops@example.org", "a-long-test-password")
    client.force_login(user)
    return client


def staff_holding(django_user_model, *codenames):
    """A logged-in client for a staff user with exactly these scheduler permissions."""
    user = django_user_model.objects.create_user(f"staff-{'-'.join(codenames)}", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="scheduler", codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_anonymous_users_are_sent_to_the_login_page(client):
    for url in (CHANGELIST, reverse("admin:scheduler_jobrun_changelist"), reverse("admin:index")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_the_job_list_shows_schedule_words_next_run_and_last_run(staff_client, make_job):
    job = make_job(name="gullies", cron="30 2 * * *", timezone="Europe/London")
    job_run_execute(job=job, trigger=JobRun.Trigger.COMMAND)
    page = staff_client.get(CHANGELIST).content.decode()
    assert "gullies" in page
    assert "At 02:30" in page
    assert "Europe/London" in page
    assert "BST" in page or "GMT" in page  # next run shown in the job's zone
    assert "succeeded" in page


def test_pause_asks_for_a_note_then_pauses(staff_client, make_job):
    job = make_job()
    data = {"action": "pause_jobs", "_selected_action": [job.pk]}
    confirm = staff_client.post(CHANGELIST, data)
    assert confirm.status_code == 200
    assert "Pause jobs" in confirm.content.decode()
    job.refresh_from_db()
    assert not job.is_paused
    done = staff_client.post(CHANGELIST, {**data, "apply": "Pause", "note": "road closed"}, follow=True)
    assert "Paused 1 job(s)." in done.content.decode()
    job.refresh_from_db()
    assert job.is_paused
    assert job.pause_note == "road closed"


def test_resume_clears_the_pause(staff_client, make_job):
    from scheduler.services import job_pause

    job = make_job()
    job_pause(job=job, note="x")
    staff_client.post(CHANGELIST, {"action": "resume_jobs", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert not job.is_paused
    assert job.pause_note == ""


def test_run_now_queues_a_manual_run_and_sends_it_after_commit(
    staff_client, make_job, django_capture_on_commit_callbacks
):
    job = make_job()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(CHANGELIST, {"action": "run_now", "_selected_action": [job.pk]}, follow=True)
    run = JobRun.objects.get(job=job)
    assert (run.trigger, run.status) == ("manual", "queued")
    assert f"Queued 1 run(s): {run.pk}." in response.content.decode()
    assert len(callbacks) == 1


def test_an_operator_creates_a_local_job_with_validated_fields(staff_client):
    response = staff_client.post(
        reverse("admin:scheduler_job_add"),
        {
            "name": "local one",
            "cron": "*/10 * * * *",
            "timezone": "UTC",
            "steps_text": 'examples.echo {"message": "hi"}',
        },
    )
    assert response.status_code == 302
    job = Job.objects.get(name="local one")
    assert job.source == "local"
    assert job.steps == [{"function": "examples.echo", "kwargs": {"message": "hi"}}]
    assert job.periodic_task.crontab.minute == "*/10"


def test_the_form_refuses_what_the_service_refuses_with_the_same_messages(staff_client):
    response = staff_client.post(
        reverse("admin:scheduler_job_add"),
        {"name": "bad", "cron": "0 0 31 2 *", "timezone": "Nowhere/Town", "steps_text": "os.system"},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "never fires: day-of-month &#x27;31&#x27; does not occur in month &#x27;2&#x27;" in page
    assert "time zone &#x27;Nowhere/Town&#x27; is not a known IANA zone" in page
    assert "step 1: function &#x27;os.system&#x27; is not registered" in page
    assert not Job.objects.exists()


def test_run_history_shows_steps_and_tracebacks(staff_client, make_job):
    job = make_job(steps='examples.fail {"message": "culvert sensor offline"}')
    run = job_run_execute(job=job, trigger=JobRun.Trigger.COMMAND)
    page = staff_client.get(reverse("admin:scheduler_jobrun_change", args=[run.pk])).content.decode()
    assert "examples.fail" in page
    assert "Traceback (most recent call last)" in page
    assert "RuntimeError: culvert sensor offline" in page
    listing = staff_client.get(reverse("admin:scheduler_jobrun_changelist") + "?status__exact=failed").content.decode()
    assert f">{run.pk}<" in listing
    ok_only = staff_client.get(
        reverse("admin:scheduler_jobrun_changelist") + "?status__exact=succeeded"
    ).content.decode()
    assert f">{run.pk}<" not in ok_only
    assert StepRun.objects.get(run=run).status == "failed"


def test_a_viewer_sees_jobs_but_no_pause_resume_or_run_and_a_posted_run_is_refused(django_user_model, make_job):
    viewer = staff_holding(django_user_model, "view_job")
    job = make_job(name="gullies")
    page = viewer.get(CHANGELIST).content.decode()
    assert "gullies" in page
    assert not any(f'value="{action}"' in page for action in ("pause_jobs", "resume_jobs", "run_now"))
    for action in ("pause_jobs", "run_now"):
        viewer.post(CHANGELIST, {"action": action, "_selected_action": [job.pk], "apply": "Pause", "index": "0"})
    job.refresh_from_db()
    assert not job.is_paused
    assert not job.runs.exists()


def test_changing_jobs_allows_pause_and_resume_but_running_needs_its_own_permission(django_user_model, make_job):
    editor = staff_holding(django_user_model, "view_job", "change_job")
    job = make_job()
    page = editor.get(CHANGELIST).content.decode()
    assert 'value="pause_jobs"' in page and 'value="resume_jobs"' in page and 'value="run_now"' not in page
    editor.post(CHANGELIST, {"action": "pause_jobs", "_selected_action": [job.pk], "apply": "Pause", "note": "x"})
    editor.post(CHANGELIST, {"action": "run_now", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.is_paused
    assert not job.runs.exists()


def test_the_run_jobs_now_permission_allows_run_now_and_nothing_else(
    django_user_model, make_job, django_capture_on_commit_callbacks
):
    runner = staff_holding(django_user_model, "view_job", "run_job")
    job = make_job()
    page = runner.get(CHANGELIST).content.decode()
    assert 'value="run_now"' in page and 'value="pause_jobs"' not in page
    with django_capture_on_commit_callbacks(execute=False):
        runner.post(CHANGELIST, {"action": "run_now", "_selected_action": [job.pk]})
    assert JobRun.objects.get(job=job).trigger == "manual"


PERIODIC_TASKS = reverse("admin:django_celery_beat_periodictask_changelist")


def test_run_on_a_jobs_periodic_task_queues_a_manual_run_not_a_scheduled_one(
    staff_client, make_job, django_capture_on_commit_callbacks
):
    job = make_job()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        page = staff_client.post(
            PERIODIC_TASKS, {"action": "run_tasks", "_selected_action": [job.periodic_task_id]}, follow=True
        ).content.decode()
    run = JobRun.objects.get(job=job)
    assert (run.trigger, run.status) == ("manual", "queued")  # it was recorded as "schedule", no due time
    assert "Queued a manual run of 1 job(s)." in page
    assert len(callbacks) == 1


def test_enabling_a_paused_jobs_periodic_task_resumes_the_job_and_clears_its_note(staff_client, make_job):
    from scheduler.services import job_pause

    job = make_job()
    job_pause(job=job, note="roadworks")
    staff_client.post(PERIODIC_TASKS, {"action": "enable_tasks", "_selected_action": [job.periodic_task_id]})
    job.refresh_from_db()
    job.periodic_task.refresh_from_db()
    assert not job.is_paused and job.pause_note == ""


def test_disabling_a_jobs_periodic_task_does_not_pause_it_without_a_note(staff_client, make_job):
    job = make_job(name="gullies")
    for action in ("disable_tasks", "toggle_tasks"):
        page = staff_client.post(
            PERIODIC_TASKS, {"action": action, "_selected_action": [job.periodic_task_id]}, follow=True
        ).content.decode()
        assert "Not paused: gullies. Pause a job from its own page (Jobs), with a note saying why." in page
        job.refresh_from_db()
        job.periodic_task.refresh_from_db()
        assert not job.is_paused


def test_toggling_a_paused_jobs_periodic_task_resumes_the_job(staff_client, make_job):
    from scheduler.services import job_pause

    job = make_job()
    job_pause(job=job, note="roadworks")
    staff_client.post(PERIODIC_TASKS, {"action": "toggle_tasks", "_selected_action": [job.periodic_task_id]})
    job.refresh_from_db()
    job.periodic_task.refresh_from_db()
    assert not job.is_paused and job.pause_note == ""


def test_a_jobs_periodic_task_has_its_enabled_box_read_only(staff_client, make_job):
    job = make_job()
    url = reverse("admin:django_celery_beat_periodictask_change", args=[job.periodic_task_id])
    assert 'name="enabled"' not in staff_client.get(url).content.decode()


def test_a_pause_from_before_pauses_were_recorded_says_so_instead_of_naming_an_author(staff_client, make_job):
    job = make_job()
    job.periodic_task.enabled = False
    job.periodic_task.save(update_fields=["enabled"])
    page = staff_client.get(reverse("admin:scheduler_job_change", args=[job.pk])).content.decode()
    assert "<strong>Paused</strong> (who and when not recorded): no note" in page
    assert "auto-pause" not in page
