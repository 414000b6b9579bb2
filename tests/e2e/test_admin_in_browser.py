"""An operator's round in a real browser: headless Chromium (Debian's) driven by Playwright."""

from __future__ import annotations

import shutil

import pytest
from django.db import connections

from scheduler.models import Job, JobRun
from tests.helpers import requires_services, wait_for

pytestmark = [requires_services, pytest.mark.e2e, pytest.mark.timeout(180)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Debian's Chromium as root, with nothing reaching out to the network at start-up.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(monkeypatch, tmp_path):
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium"):
        pytest.skip("needs Debian's chromium (apt-get install chromium), as .ci/run installs")
    # Playwright's sync API runs an event loop in this thread; the ORM calls made here between
    # browser steps are ordinary blocking calls, which is safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            page.screenshot(path=str(tmp_path / "last-page.png"))
            browser.close()
            # ORM calls made while Playwright's loop ran used a connection of their own context.
            connections.close_all()


def choose_action(page, job: Job, action: str) -> None:
    page.check(f"input[name=_selected_action][value='{job.pk}']")
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")


def test_an_operator_pauses_resumes_and_runs_a_job_in_the_admin(
    page, live_server, celery_processes, make_job, django_user_model
):
    django_user_model.objects.create_superuser("ops", "ops@example.org", "correct-horse-battery")
    job = make_job(name="Gully report", steps='examples.echo {"message": "built"}\nexamples.echo {"message": "sent"}')
    celery_processes.start("worker", "--concurrency=1")

    page.goto(f"{live_server.url}/admin/scheduler/job/")
    assert "/admin/login/" in page.url  # anonymous users are sent to the login page
    page.fill("#id_username", "ops")
    page.fill("#id_password", "correct-horse-battery")
    page.click("input[type=submit]")
    assert page.locator("#result_list").inner_text().count("Gully report") == 1

    choose_action(page, job, "pause_jobs")
    page.fill("textarea[name=note]", "culvert works until Friday")
    page.click("input[name=apply]")
    assert "Paused 1 job(s)." in page.locator(".messagelist").inner_text()
    job.refresh_from_db()
    assert job.is_paused and job.pause_note == "culvert works until Friday"

    choose_action(page, job, "resume_jobs")
    assert "Resumed 1 job(s)." in page.locator(".messagelist").inner_text()
    job.refresh_from_db()
    assert not job.is_paused

    choose_action(page, job, "run_now")
    assert "Queued 1 run(s):" in page.locator(".messagelist").inner_text()
    run = JobRun.objects.get(job=job, trigger="manual")
    wait_for(lambda: JobRun.objects.filter(pk=run.pk).exclude(finished_at=None).exists(), timeout=60)

    page.goto(f"{live_server.url}/admin/scheduler/jobrun/?job__id__exact={job.pk}")
    page.click(f"#result_list a[href*='/admin/scheduler/jobrun/{run.pk}/change/']")
    detail = page.locator("#content").inner_text()
    assert "Status:\nSucceeded" in detail
    assert "step 1 examples.echo (succeeded)" in detail and "step 2 examples.echo (succeeded)" in detail
    assert '"built"' in detail and '"sent"' in detail
