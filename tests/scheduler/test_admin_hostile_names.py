"""Hostile job names on the admin's pages and the dashboard (D8): no reordering, nothing raw, wrapping.

A name from an Alloy item may hold U+202E (shows the rest of the line reversed), newlines, markup
and one unbroken word of 100 characters.
"""

import re

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.models import Job, JobRun
from scheduler.plain_text import one_line, without_bidi_controls

pytestmark = pytest.mark.django_db

BIDI_CONTROLS = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
HOSTILE = (
    "hostile\nname <!channel> @here [click](https://evil.example) \u202eevil <script>alert(1)</script> " + "X" * 100
)[:200]


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("ops", "ops@example.org", "a-long-test-password")
    client.force_login(user)
    return client


def failing_job(make_job, name: str) -> Job:
    job = make_job(name=name)
    JobRun.objects.create(job=job, status=JobRun.Status.FAILED, error="\u202eboom " + "Y" * 500)
    Job.objects.filter(pk=job.pk).update(failure_streak=3)
    return job


def pages(client, job: Job) -> dict[str, str]:
    urls = {
        "job list": reverse("admin:scheduler_job_changelist"),
        "job page": reverse("admin:scheduler_job_change", args=[job.pk]),
        "run list": reverse("admin:scheduler_jobrun_changelist"),
        "periodic tasks": reverse("admin:django_celery_beat_periodictask_changelist"),
        "dashboard": reverse("admin-dashboard"),
    }
    return {label: client.get(url).content.decode() for label, url in urls.items()}


@pytest.mark.parametrize("source", [Job.Source.ALLOY, Job.Source.LOCAL])
def test_a_hostile_name_shows_escaped_isolated_and_without_its_override(superuser_client, make_job, source):
    job = failing_job(make_job, HOSTILE)
    Job.objects.filter(pk=job.pk).update(source=source, external_id="item-1" if source == Job.Source.ALLOY else "")
    for label, page in pages(superuser_client, job).items():
        # A local job's name field holds the name as stored, to edit; the text around it is cleaned.
        page = re.sub(r'<input type="text" name="name" value="[^"]*"', "", page)
        # The list's checkboxes are labelled (for screen readers, never drawn) with the periodic task's
        # name as django-celery-beat's model gives it.
        page = re.sub(r'aria-label="Select this object for an action - [^"]*"', "", page)
        assert "\u202e" not in page, label
        assert "<script>alert(1)" not in page, label
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, label
        # A periodic task's name is "job <id>: <name>" cut to its 200 characters: a long id takes a few X.
        assert "X" * 90 in page, label
    shown = pages(superuser_client, job)
    isolated = ["job list", "run list", "periodic tasks", "dashboard"]
    # An Alloy job's name is text on its page (a local job's is the form's field).
    for label in [*isolated, "job page"] if source == Job.Source.ALLOY else isolated:
        assert '<bdi class="plain-name">' in shown[label], label


def test_every_project_page_includes_the_wrapping_stylesheet(superuser_client, make_job):
    job = failing_job(make_job, HOSTILE)
    for label, page in pages(superuser_client, job).items():
        assert "scheduler/admin.css" in page, label


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.text(
        alphabet=st.sampled_from(list(BIDI_CONTROLS) + list("ab XY\n\t<&>\u05d0\u0627")), min_size=1, max_size=60
    ).filter(lambda text: text.strip(BIDI_CONTROLS + " \n\t"))
)
def test_no_bidi_control_of_any_name_reaches_the_job_list_or_dashboard(superuser_client, make_job, name):
    Job.objects.all().delete()
    failing_job(make_job, name)
    for url in (reverse("admin:scheduler_job_changelist"), reverse("admin-dashboard")):
        page = superuser_client.get(url).content.decode()
        assert not set(BIDI_CONTROLS) & set(page)


@given(st.text(max_size=300))
def test_the_cleaners_leave_no_bidi_control_and_bound_the_length(text):
    assert not set(BIDI_CONTROLS) & set(one_line(text, 50))
    assert len(one_line(text, 50)) <= 50
    assert "\n" not in one_line(text, 50)
    assert not set(BIDI_CONTROLS) & set(without_bidi_controls(text))


def test_a_runs_page_shows_its_errors_without_bidi_controls_and_wrapping(superuser_client, make_job):
    job = make_job()
    run = JobRun.objects.create(job=job, status=JobRun.Status.FAILED, error="step 1 failed: \u202eboom " + "Z" * 300)
    run.steps.create(position=1, function="examples.echo", status="failed", error="Traceback\n\u2067" + "Q" * 300)
    page = superuser_client.get(reverse("admin:scheduler_jobrun_change", args=[run.pk])).content.decode()
    assert not set(BIDI_CONTROLS) & set(page)
    assert page.count('<pre class="run-error"') == 2
    assert "step 1 failed: boom " + "Z" * 300 in page and "Traceback\n" + "Q" * 300 in page
    assert "scheduler/admin.css" in page
