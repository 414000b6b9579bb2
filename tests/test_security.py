"""Nobody in: staff logins, CSRF, production settings, secrets kept out of logs and errors."""

import os
import secrets
import subprocess
import sys

import pytest
from django.test import Client
from django.urls import reverse

from tests.helpers import PROJECT_DIR

pytestmark = pytest.mark.django_db

PRIVATE_URLS = [
    "/",
    "/admin/",
    "/admin/scheduler/job/",
    "/admin/scheduler/job/add/",
    "/admin/scheduler/jobrun/",
    "/admin/alloysync/syncrun/",
    "/admin/django_celery_beat/periodictask/",
    "/admin/django_celery_beat/crontabschedule/",
    "/admin/auth/user/",
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_every_page_but_health_needs_a_staff_login(client, django_user_model, url):
    login = reverse("admin:login")
    response = client.get(url, follow=True)
    assert response.redirect_chain and response.redirect_chain[-1][0].startswith(login)
    client.force_login(django_user_model.objects.create_user("clerk", password="a-long-password-1"))  # not staff
    response = client.get(url, follow=True)
    assert response.redirect_chain and response.redirect_chain[-1][0].startswith(login)


def test_health_is_open_without_a_login_and_tells_it_only_the_status(client):
    response = client.get("/healthz")
    assert response.status_code in (200, 503)
    assert set(response.json()) == {"status", "failing"}  # no hosts, pids, messages or times


def test_admin_actions_need_a_csrf_token(django_user_model, make_job):
    staff = Client(enforce_csrf_checks=True)
    staff.force_login(django_user_model.objects.create_superuser("ops", "ops@example.org", "a-long-password-1"))
    job = make_job()
    response = staff.post(
        reverse("admin:scheduler_job_changelist"), {"action": "run_now", "_selected_action": [job.pk]}
    )
    assert response.status_code == 403
    assert not job.runs.exists()


def test_production_settings_pass_djangos_deploy_checks():
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    env.update(DJANGO_DEBUG="false", DJANGO_SECRET_KEY=secrets.token_urlsafe(50))
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
