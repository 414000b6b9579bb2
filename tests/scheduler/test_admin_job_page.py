"""A job's own page in the admin: pause, resume, run now and run with arguments as buttons, each checking
its permission on GET and POST; who did what (the admin log) and the pause note with its author; the cron
preview, the registered functions, the time limit, and errors beside the field they are about."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.models import Job, JobRun, StepRun
from scheduler.services import job_pause

pytestmark = pytest.mark.django_db


def page_url(job: Job, name: str) -> str:
    return reverse(f"admin:scheduler_job_{name}", args=[job.pk])


def change_url(job: Job) -> str:
    return reverse("admin:scheduler_job_change", args=[job.pk])


@pytest.fixture
def ops(django_user_model):
    return django_user_model.objects.create_superuser("ops", "ops@example.org", "a-long-test-password")


@pytest.fixture
def ops_client(client, ops):
    client.force_login(ops)
    return client


def staff_holding(django_user_model, *codenames):
    user = django_user_model.objects.create_user(f"staff-{'-'.join(codenames) or 'none'}", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="scheduler", codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def log_messages(job: Job) -> list[str]:
    entries = LogEntry.objects.filter(object_id=str(job.pk), content_type__model="job").order_by("id")
    return [entry.get_change_message() for entry in entries]


def test_the_jobs_page_offers_pause_run_now_and_run_with_arguments_and_resume_only_when_paused(ops_client, make_job):
    job = make_job()
    page = ops_client.get(change_url(job)).content.decode()
    assert "Pause…" in page and "Run now" in page and "Run with arguments…" in page
    assert page_url(job, "resume") not in page
    job_pause(job=job, note="bridge closed")
    page = ops_client.get(change_url(job)).content.decode()
    assert page_url(job, "resume") in page and page_url(job, "pause") not in page


def test_pause_refuses_an_empty_note_beside_the_field_then_pauses_and_records_who_and_why(ops_client, make_job):
    job = make_job()
    assert ops_client.get(page_url(job, "pause")).status_code == 200

    for empty in ("", "   \n "):
        refused = ops_client.post(page_url(job, "pause"), {"note": empty})
        assert refused.status_code == 200
        assert "A pause needs a note" in str(refused.context["form"].errors["note"])
        assert 'class="errorlist' in refused.content.decode()
    job.refresh_from_db()
    assert not job.is_paused

    done = ops_client.post(page_url(job, "pause"), {"note": "culvert works until Friday"}, follow=True)
    assert done.redirect_chain[-1][0] == change_url(job)
    assert f"Paused {job.name}." in messages_of(done)
    job.refresh_from_db()
    assert job.is_paused and job.pause_note == "culvert works until Friday"
    assert job.paused_by.username == "ops" and job.paused_at is not None
    assert log_messages(job) == ["Paused: culvert works until Friday"]
    page = done.content.decode()
    assert "<strong>Paused</strong> by ops at" in page and "culvert works until Friday" in page
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</td><td>ops</td><td>Paused: culvert works", page)


def test_the_pause_note_is_read_only_in_the_form(ops_client, make_job):
    job = make_job()
    page = ops_client.get(change_url(job)).content.decode()
    assert 'name="pause_note"' not in page


def test_a_job_paused_by_alloysync_itself_names_auto_pause_as_its_author(ops_client, make_job):
    job = make_job()
    job_pause(job=job, note="auto-paused after 3 consecutive failures (last: boom)", by=None)
    page = ops_client.get(change_url(job)).content.decode()
    assert "Paused</strong> by alloysync (auto-pause) at" in page
    assert "auto-paused after 3 consecutive failures" in page


def test_resume_clears_the_pause_and_is_logged(ops_client, make_job):
    job = make_job()
    job_pause(job=job, note="storm")
    confirm = ops_client.get(page_url(job, "resume")).content.decode()
    assert "Paused by" in confirm and "storm" in confirm
    done = ops_client.post(page_url(job, "resume"), follow=True)
    assert f"Resumed {job.name}." in messages_of(done)
    job.refresh_from_db()
    assert not job.is_paused and job.pause_note == "" and job.paused_by is None
    assert log_messages(job) == ["Resumed (the pause note was: storm)"]


def test_resuming_a_job_that_is_not_paused_says_so_instead_of_failing(ops_client, make_job):
    job = make_job()
    assert "This job is not paused." in ops_client.get(page_url(job, "resume")).content.decode()
    done = ops_client.post(page_url(job, "resume"), follow=True)
    assert done.status_code == 200
    assert any("Not resumed" in text and "is not paused" in text for text in messages_of(done))
    assert log_messages(job) == []


def test_resume_from_the_list_names_the_jobs_that_were_not_paused(ops_client, make_job):
    running, paused = make_job(name="running one"), make_job(name="paused one")
    job_pause(job=paused, note="x")
    done = ops_client.post(
        reverse("admin:scheduler_job_changelist"),
        {"action": "resume_jobs", "_selected_action": [running.pk, paused.pk]},
        follow=True,
    )
    assert "Resumed 1 job(s)." in messages_of(done)
    assert "Not paused, so not resumed: running one." in messages_of(done)


def test_pausing_from_the_list_needs_a_note_and_is_logged_per_job(ops_client, make_job):
    job = make_job()
    data = {"action": "pause_jobs", "_selected_action": [job.pk], "apply": "Pause"}
    refused = ops_client.post(reverse("admin:scheduler_job_changelist"), {**data, "note": " "})
    assert "A pause needs a note" in refused.content.decode()
    job.refresh_from_db()
    assert not job.is_paused
    ops_client.post(reverse("admin:scheduler_job_changelist"), {**data, "note": "flooding"})
    assert log_messages(job) == ["Paused: flooding"]


def test_run_now_from_the_jobs_page_queues_a_run_recording_who_asked(
    ops_client, ops, make_job, django_capture_on_commit_callbacks
):
    job = make_job()
    assert ops_client.get(page_url(job, "run")).status_code == 200
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        done = ops_client.post(page_url(job, "run"), follow=True)
    run = JobRun.objects.get(job=job)
    assert (run.trigger, run.status, run.requested_by) == ("manual", "queued", ops)
    assert len(callbacks) == 1
    assert f'Queued run <a href="{reverse("admin:scheduler_jobrun_change", args=[run.pk])}">{run.pk}</a>.' in (
        messages_of(done)
    )
    assert log_messages(job) == [f"Ran now: run {run.pk} queued"]


def test_run_with_arguments_is_prefilled_with_each_steps_arguments_as_json(ops_client, make_job):
    job = make_job(steps='examples.echo {"message": "built"}\nexamples.sleep {"seconds": 0}')
    form = ops_client.get(page_url(job, "run_with_arguments")).context["form"]
    assert [form[name].value() for name in ("step_1", "step_2")] == [
        '{\n  "message": "built"\n}',
        '{\n  "seconds": 0\n}',
    ]
    page = ops_client.get(page_url(job, "run_with_arguments")).content.decode()
    assert "Step 1: examples.echo" in page and "examples.echo(message: str)" in page


def test_run_with_arguments_queues_a_run_with_those_arguments_and_who_asked(
    ops_client, ops, make_job, django_capture_on_commit_callbacks
):
    job = make_job(steps='examples.echo {"message": "built"}\nexamples.echo {"message": "sent"}')
    with django_capture_on_commit_callbacks(execute=False):
        done = ops_client.post(
            page_url(job, "run_with_arguments"),
            {"step_1": '{"message": "again"}', "step_2": ' {"message": ""} '},
            follow=True,
        )
    run = JobRun.objects.get(job=job)
    assert (run.trigger, run.status, run.requested_by) == ("manual", "queued", ops)
    steps = list(StepRun.objects.filter(run=run).order_by("position").values_list("function", "kwargs"))
    assert steps == [("examples.echo", {"message": "again"}), ("examples.echo", {"message": ""})]
    job.refresh_from_db()
    assert job.steps[0]["kwargs"] == {"message": "built"}  # the job's own steps do not change
    assert any(f">{run.pk}</a>." in message for message in messages_of(done))
    assert log_messages(job) == [
        f'Ran now with arguments: run {run.pk} queued (step 1: {{"message": "again"}}; step 2: {{"message": ""}})'
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"message": ', "arguments are not valid JSON"),
        ('["message"]', "arguments must be a JSON object"),
        ('{"mesage": "typo"}', "arguments do not fit examples.echo(message: str)"),
        ("{}", "missing a required argument: &#x27;message&#x27;"),
    ],
)
def test_run_with_arguments_refuses_what_a_step_would_refuse_beside_that_steps_field(
    ops_client, make_job, text, expected
):
    job = make_job(steps='examples.sleep {"seconds": 0}\nexamples.echo {"message": "sent"}')
    refused = ops_client.post(page_url(job, "run_with_arguments"), {"step_1": '{"seconds": 0}', "step_2": text})
    assert refused.status_code == 200
    errors = refused.context["form"].errors
    assert list(errors) == ["step_2"]
    assert expected in str(errors["step_2"])
    assert not JobRun.objects.filter(job=job).exists()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_run_with_arguments_never_fails_on_any_text(ops_client, make_job, text):
    job = Job.objects.filter(name="any text").first() or make_job(name="any text")
    response = ops_client.post(page_url(job, "run_with_arguments"), {"step_1": text})
    assert response.status_code in (200, 302)
    if response.status_code == 200:
        assert response.context["form"].errors
    JobRun.objects.filter(job=job).delete()


@pytest.mark.parametrize("name", ["run", "run_with_arguments"])
def test_running_needs_the_run_jobs_permission_on_get_and_post(django_user_model, make_job, name):
    job = make_job()
    editor = staff_holding(django_user_model, "view_job", "change_job")
    assert editor.get(page_url(job, name)).status_code == 403
    assert editor.post(page_url(job, name), {"step_1": '{"message": "x"}'}).status_code == 403
    assert not JobRun.objects.exists()
    page = editor.get(change_url(job)).content.decode()
    assert page_url(job, "run") not in page and page_url(job, "run_with_arguments") not in page
    runner = staff_holding(django_user_model, "view_job", "run_job")
    assert runner.get(page_url(job, name)).status_code == 200


@pytest.mark.parametrize("name", ["pause", "resume"])
def test_pause_and_resume_need_the_change_permission_on_get_and_post(django_user_model, make_job, name):
    job = make_job()
    if name == "resume":
        job_pause(job=job, note="x")
    runner = staff_holding(django_user_model, "view_job", "run_job")
    assert runner.get(page_url(job, name)).status_code == 403
    assert runner.post(page_url(job, name), {"note": "y"}).status_code == 403
    job.refresh_from_db()
    assert job.is_paused is (name == "resume")
    assert page_url(job, name) not in runner.get(change_url(job)).content.decode()


def test_a_missing_job_is_a_404_not_a_500(ops_client):
    for name in ("pause", "resume", "run", "run_with_arguments"):
        assert ops_client.get(reverse(f"admin:scheduler_job_{name}", args=[987654])).status_code == 404


def test_edits_are_recorded_and_shown_on_the_jobs_page(ops_client, make_job):
    job = make_job(name="gullies")
    data = {"name": "gullies", "cron": "0 4 * * *", "timezone": "UTC", "steps_text": 'examples.echo {"message": "hi"}'}
    assert ops_client.post(change_url(job), {**data, "time_limit": ""}).status_code == 302
    assert log_messages(job) == ["Changed Cron."]
    page = ops_client.get(change_url(job)).content.decode()
    assert "<td>ops</td><td>Changed Cron.</td>" in page


def test_the_change_form_previews_the_crons_next_five_times_in_the_jobs_zone(ops_client, make_job):
    job = make_job(cron="30 2 * * *", timezone="Europe/London")
    page = ops_client.get(change_url(job)).content.decode()
    preview = re.findall(r"<li>\w{3} (\d{4}-\d\d-\d\d) 02:30 (GMT|BST)</li>", page)
    assert len(preview) == 5
    assert len({day for day, _zone in preview}) == 5
    assert "<small>in Europe/London</small>" in page


def test_a_stored_cron_that_cannot_be_read_shows_why_instead_of_a_preview(ops_client, make_job):
    job = make_job()
    Job.objects.filter(pk=job.pk).update(cron="61 * * * *")  # as an old row might hold
    page = ops_client.get(change_url(job)).content.decode()
    assert "cron &#x27;61 * * * *&#x27;: minute &#x27;61&#x27;" in page


def test_the_add_form_lists_the_registered_functions_with_their_signatures(ops_client):
    page = ops_client.get(reverse("admin:scheduler_job_add")).content.decode()
    assert "<code>examples.echo(message: str) -&gt; str</code>" in page
    assert "<code>examples.sleep(seconds: float) -&gt; float</code>" in page


def test_form_errors_stand_beside_the_field_they_are_about(ops_client):
    response = ops_client.post(
        reverse("admin:scheduler_job_add"),
        {"name": "bad", "cron": "0 0 31 2 *", "timezone": "Nowhere/Town", "steps_text": "os.system", "time_limit": "0"},
    )
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"cron", "timezone", "steps_text", "time_limit"}
    assert "never fires" in str(errors["cron"])
    assert "not a known IANA zone" in str(errors["timezone"])
    assert "step 1: function &#x27;os.system&#x27; is not registered" in str(errors["steps_text"])
    assert "time limit must be a whole number of seconds from 1 to 31622400, got 0" in str(errors["time_limit"])
    assert not Job.objects.exists()


@pytest.mark.parametrize(("value", "saved"), [("120", 120), ("", None), ("31622400", 31622400)])
def test_a_local_jobs_time_limit_is_set_in_the_form(ops_client, make_job, value, saved):
    job = make_job()
    data = {
        "name": job.name,
        "cron": job.cron,
        "timezone": job.timezone,
        "steps_text": 'examples.echo {"message": "hi"}',
    }
    assert ops_client.post(change_url(job), {**data, "time_limit": value}).status_code == 302
    job.refresh_from_db()
    assert job.time_limit == saved


@pytest.mark.parametrize("value", ["0", "-5", "31622401", "1.5", "ten"])
def test_a_time_limit_out_of_range_is_refused_beside_its_field(ops_client, make_job, value):
    job = make_job()
    data = {
        "name": job.name,
        "cron": job.cron,
        "timezone": job.timezone,
        "steps_text": 'examples.echo {"message": "hi"}',
    }
    response = ops_client.post(change_url(job), {**data, "time_limit": value})
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["time_limit"]
    job.refresh_from_db()
    assert job.time_limit is None


def test_an_alloy_jobs_page_is_a_view_without_delete_save_or_editable_fields(ops_client, make_job):
    job = make_job(name="from alloy", source=Job.Source.ALLOY, external_id="642062376be3a0036bbbb64b")
    page = ops_client.get(change_url(job)).content.decode()
    for control in ('name="cron"', 'name="time_limit"', 'name="pause_note"', "_addanother", "_save", "deletelink"):
        assert control not in page
    assert "Pause…" in page and "Run with arguments…" in page
    assert ops_client.post(change_url(job), {"name": "hijacked", "cron": "* * * * *"}).status_code == 403
    assert ops_client.post(reverse("admin:scheduler_job_delete", args=[job.pk]), {"post": "yes"}).status_code == 403
    job.refresh_from_db()
    assert (job.name, job.cron) == ("from alloy", "30 2 * * *")


def test_jobs_cannot_be_deleted_in_bulk_from_the_list(ops_client, make_job):
    make_job()
    page = ops_client.get(reverse("admin:scheduler_job_changelist")).content.decode()
    assert 'value="delete_selected"' not in page


def test_a_local_job_keeps_save_and_add_another_and_delete(ops_client, make_job):
    page = ops_client.get(change_url(make_job())).content.decode()
    assert "_addanother" in page and "deletelink" in page


def test_the_jobs_page_shows_its_run_bars(ops_client, make_job):
    job = make_job()
    now = timezone.now()
    run = JobRun.objects.create(
        job=job, trigger="command", status="failed", started_at=now - timedelta(seconds=3), finished_at=now
    )
    page = ops_client.get(change_url(job)).content.decode()
    assert '<svg class="run-bars"' in page
    assert reverse("admin:scheduler_jobrun_change", args=[run.pk]) in page


@pytest.mark.parametrize(
    "url_name",
    [
        "django_celery_beat_crontabschedule",
        "django_celery_beat_intervalschedule",
        "django_celery_beat_clockedschedule",
        "django_celery_beat_solarschedule",
    ],
)
def test_beats_schedule_pages_are_read_only_even_for_superusers(ops_client, url_name):
    assert ops_client.get(reverse(f"admin:{url_name}_changelist")).status_code == 200
    assert ops_client.get(reverse(f"admin:{url_name}_add")).status_code == 403


def test_a_shared_crontab_row_cannot_be_edited_or_deleted_under_the_jobs_using_it(ops_client, make_job):
    first, second = make_job(name="first"), make_job(name="second")
    crontab = first.periodic_task.crontab
    assert second.periodic_task.crontab == crontab  # one row for both: what editing it would move
    url = reverse("admin:django_celery_beat_crontabschedule_change", args=[crontab.pk])
    page = ops_client.get(url).content.decode()
    assert 'name="minute"' not in page
    assert ops_client.post(url, {"minute": "0", "hour": "*"}).status_code == 403
    delete = reverse("admin:django_celery_beat_crontabschedule_delete", args=[crontab.pk])
    assert ops_client.post(delete, {"post": "yes"}).status_code == 403
    assert CrontabSchedule.objects.get(pk=crontab.pk).minute == "30"


def post_time_limit(client, job, value):
    data = {
        "name": job.name,
        "cron": job.cron,
        "timezone": job.timezone,
        "steps_text": 'examples.echo {"message": "hi"}',
    }
    return client.post(change_url(job), {**data, "time_limit": value})


def test_the_time_limit_field_says_one_rule_from_1_to_a_year(ops_client, make_job):
    # -1 used to say "greater than or equal to 0", and 0 was then refused by the service's rule.
    job = make_job()
    page = ops_client.get(change_url(job)).content.decode()
    assert re.search(r'name="time_limit"[^>]*min="1"', page)
    assert re.search(r'name="time_limit"[^>]*max="31622400"', page)
    for value, shown in (("-1", "-1"), ("0", "0"), ("31622401", "31622401"), ("٣", "'٣'"), ("1.5", "'1.5'")):
        errors = post_time_limit(ops_client, job, value).context["adminform"].form.errors["time_limit"]
        assert errors == [f"time limit must be a whole number of seconds from 1 to 31622400, got {shown}"], value


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.integers(-(10**15), 10**15).map(str), st.text(max_size=12)))
def test_any_typed_time_limit_is_saved_in_range_or_refused_with_the_one_rule(ops_client, make_job, value):
    job = Job.objects.first() or make_job()
    Job.objects.filter(pk=job.pk).update(time_limit=None)
    response = post_time_limit(ops_client, job, value)
    job.refresh_from_db()
    if response.status_code == 302:
        assert job.time_limit is None or 1 <= job.time_limit <= 31622400
        assert value.strip() == "" or value.strip().lstrip("+").isascii()
    else:
        errors = response.context["adminform"].form.errors
        assert list(errors) == ["time_limit"], errors
        assert str(errors["time_limit"][0]).startswith(
            "time limit must be a whole number of seconds from 1 to 31622400"
        )
        assert job.time_limit is None
