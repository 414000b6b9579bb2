"""The admin's dashboard: who may see it, what it shows, and a fixed number of queries whatever the data."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.dashboard import failing_jobs, runs_per_hour
from scheduler.models import Job, JobRun, ScheduleState
from scheduler.plain_text import one_line

URL = "/admin/dashboard/"


def add_run(job: Job, status: str, *, created: datetime, error: str = "") -> JobRun:
    run = JobRun.objects.create(job=job, trigger=JobRun.Trigger.SCHEDULE, status=status, error=error)
    JobRun.objects.filter(pk=run.pk).update(created_at=created, started_at=created, finished_at=created)
    return run


def set_due(job: Job, due: datetime) -> None:
    ScheduleState.objects.update_or_create(
        periodic_task=job.periodic_task, defaults={"next_due_at": due, "task_changed_at": timezone.now()}
    )


def fail(job: Job, streak: int, error: str) -> JobRun:
    Job.objects.filter(pk=job.pk).update(failure_streak=streak)
    return add_run(job, JobRun.Status.FAILED, created=timezone.now() - timedelta(minutes=5), error=error)


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("ops", "ops@example.org", "correct-horse-battery")


@pytest.fixture
def ops_client(client, staff):
    client.force_login(staff)
    return client


def test_only_staff_who_may_view_runs_see_the_dashboard(client, django_user_model):
    assert client.get(URL).status_code == 302  # anonymous: to the login page
    clerk = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    client.force_login(clerk)
    assert client.get(URL).status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="view_jobrun"))
    assert client.get(URL).status_code == 200
    client.force_login(django_user_model.objects.create_user("member", password="x"))
    assert client.get(URL).status_code == 302  # not staff: the admin's login page, as for every admin page


def test_the_admin_index_links_the_dashboard(ops_client):
    assert f'href="{URL}"' in ops_client.get("/admin/").content.decode()


def test_runs_per_hour_are_counted_by_outcome_in_the_right_hours(make_job):
    job = make_job()
    now = datetime(2026, 11, 30, 12, 20, tzinfo=ZoneInfo("UTC"))
    for minutes, status in [
        (5, "succeeded"),
        (10, "succeeded"),
        (15, "failed"),
        (70, "failed"),
        (48 * 60 + 30, "failed"),
    ]:
        add_run(job, status, created=now - timedelta(minutes=minutes))

    hours = runs_per_hour(now=now, zone=ZoneInfo("UTC"))

    assert len(hours) == 48
    assert hours[-1].start == datetime(2026, 11, 30, 12, tzinfo=ZoneInfo("UTC"))
    assert hours[-1].counts == {"succeeded": 2, "failed": 1}
    assert hours[-2].counts == {"failed": 1}
    assert sum(hour.total for hour in hours) == 4  # the run 48.5 hours ago is outside the chart


def test_runs_per_hour_follow_a_half_hour_zone(make_job):
    # Kolkata is UTC+5:30: its hours start at half past UTC hours; truncation must happen in that zone.
    job = make_job()
    kolkata = ZoneInfo("Asia/Kolkata")
    now = datetime(2026, 11, 30, 12, 50, tzinfo=kolkata)
    add_run(job, "succeeded", created=datetime(2026, 11, 30, 12, 5, tzinfo=kolkata))
    add_run(job, "failed", created=datetime(2026, 11, 30, 11, 55, tzinfo=kolkata))

    hours = runs_per_hour(now=now, zone=kolkata)

    assert hours[-1].start == datetime(2026, 11, 30, 12, tzinfo=kolkata) and hours[-1].counts == {"succeeded": 1}
    assert hours[-2].counts == {"failed": 1}


def test_the_page_shows_stacked_bars_failing_jobs_due_runs_and_health(ops_client, make_job):
    quiet = make_job(name="Quiet job", timezone="Europe/London")
    broken = make_job(name="Broken <b>job</b>", timezone="America/New_York")
    now = timezone.now()
    add_run(quiet, "succeeded", created=now - timedelta(hours=3))
    run = fail(broken, 4, "ValueError: <script>alert(1)</script>")
    set_due(quiet, now + timedelta(hours=2))
    set_due(broken, now + timedelta(hours=30))  # beyond the next 24 hours

    page = ops_client.get(URL).content.decode()

    assert page.count('class="hour-bar run-succeeded"') == 1 and page.count('class="hour-bar run-failed"') == 1
    failing = page[page.index('id="dashboard-failing"') : page.index('id="dashboard-due"')]
    assert "Failing now: 1 job<" in failing and "Quiet job" not in failing
    assert "Broken &lt;b&gt;job&lt;/b&gt;" in failing and "<b>job" not in failing
    assert "&lt;script&gt;" in failing and "<script>" not in failing
    assert f'href="/admin/scheduler/jobrun/{run.pk}/change/"' in failing
    assert re.search(r"<td>4</td>", failing)
    due = page[page.index('id="dashboard-due"') : page.index('id="dashboard-health"')]
    assert "Due in the next 24 hours: 1 run<" in due and "Quiet job" in due and "Broken" not in due
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (GMT|BST)", due)  # in the job's own zone
    health = page[page.index('id="dashboard-health"') :]
    assert "beat" in health and "no beat has started" in health and "health-bad" in health


def test_paused_jobs_and_beats_own_entries_are_not_due_runs(ops_client, make_job):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from scheduler.services import job_pause

    job = make_job(name="Paused job")
    set_due(job, timezone.now() + timedelta(hours=1))
    job_pause(job=job, note="works")
    every_minute = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    sync = PeriodicTask.objects.create(name="sync", task="alloysync.sync_alloy", interval=every_minute)
    ScheduleState.objects.create(
        periodic_task=sync, next_due_at=timezone.now() + timedelta(minutes=1), task_changed_at=timezone.now()
    )

    page = ops_client.get(URL).content.decode()

    assert "Due in the next 24 hours: 0 runs" in page and "Nothing is due." in page


def test_failing_jobs_are_listed_longest_streak_first_with_their_latest_error(make_job):
    short = make_job(name="short")
    long = make_job(name="long")
    fail(short, 1, "first")
    fail(long, 9, "old error")
    fail(long, 9, "new error")

    count, jobs = failing_jobs()

    assert count == 2
    assert [job.name for job in jobs] == ["long", "short"]
    assert jobs[0].last_error == "new error"  # type: ignore[attr-defined]


def fill(make_job, n: int) -> None:
    """``n`` jobs, each failing, with ``n`` runs (created now) and due within the day."""
    now = timezone.now()
    for i in range(n):
        job = make_job(name=f"job {i}")
        set_due(job, now + timedelta(minutes=i + 1))
        Job.objects.filter(pk=job.pk).update(failure_streak=1)
        JobRun.objects.bulk_create(
            JobRun(
                job=job,
                trigger="schedule",
                status="failed" if k % 3 else "succeeded",
                error="boom",
            )
            for k in range(n)
        )


def queries_for_page(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL)
    assert response.status_code == 200
    return len(queries)


def test_the_page_makes_as_many_queries_for_50_jobs_as_for_5(ops_client, make_job):
    fill(make_job, 5)
    few = queries_for_page(ops_client)
    fill(make_job, 45)
    many = queries_for_page(ops_client)
    assert many == few
    assert few <= 12


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=200),
    # No NUL: PostgreSQL refuses it, and every error is stored through storable_text, which drops it.
    error=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=400),
)
def test_hostile_job_names_and_errors_are_shown_as_text(ops_client, make_job, name, error):
    Job.objects.all().delete()
    job = make_job(name="placeholder")
    Job.objects.filter(pk=job.pk).update(name=name)
    fail(job, 1, error + "<script>alert(1)</script>")
    set_due(job, timezone.now() + timedelta(hours=1))

    page = ops_client.get(URL).content.decode()

    failing = page[page.index('id="dashboard-failing"') : page.index('id="dashboard-health"')]
    assert "<script" not in failing
    # Once failing, once due: as text, in the link, isolated, on one line without bidi controls.
    assert failing.count(f'<bdi class="plain-name">{escape(one_line(name, 200))}</bdi></a>') == 2
