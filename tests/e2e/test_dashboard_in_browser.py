"""The admin's pictures in a real browser: the dashboard's charts and a job's run bars, drawn with no network.

Screenshots of both pages are saved in the test's temporary directory; their paths are printed (run
pytest with ``-s`` to see them, or look under pytest's basetemp).
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.db import connections
from django.utils import timezone

from scheduler.models import Job, JobRun, ScheduleState
from tests.e2e.test_admin_in_browser import CHROMIUM, CHROMIUM_ARGS
from tests.helpers import requires_services

pytestmark = [requires_services, pytest.mark.e2e, pytest.mark.timeout(180)]

PASSWORD = "correct-horse-battery"


@pytest.fixture
def browser_page(monkeypatch, live_server):
    """A 1280 px wide page that may reach the live server only: any other request is refused and noted."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium"):
        pytest.skip("needs Debian's chromium (apt-get install chromium), as .ci/run installs")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    allowed = urlsplit(live_server.url).netloc
    elsewhere: list[str] = []

    def only_the_server(route, request):
        if urlsplit(request.url).netloc == allowed:
            route.continue_()
        else:
            elsewhere.append(request.url)
            route.abort()

    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)
        page.route("**/*", only_the_server)
        try:
            yield page
            assert elsewhere == [], f"the pages asked for something off the server: {elsewhere}"
        finally:
            browser.close()
            connections.close_all()


def add_runs(job: Job, statuses: list[str]) -> list[JobRun]:
    """Runs of ``statuses`` (oldest first), one every 20 minutes up to now; returned newest first."""
    now = timezone.now()
    runs = []
    for back, status in enumerate(reversed(statuses)):
        created = now - timedelta(minutes=20 * back + 1)
        run = JobRun.objects.create(job=job, trigger=JobRun.Trigger.SCHEDULE, status=status, error="")
        finished = None if status in ("running", "queued") else created + timedelta(seconds=back + 1)
        started = None if status in ("queued", "skipped") else created
        JobRun.objects.filter(pk=run.pk).update(created_at=created, started_at=started, finished_at=finished)
        runs.append(run)
    return runs


def test_the_dashboard_and_a_jobs_run_bars_draw_in_the_browser(
    browser_page, live_server, make_job, django_user_model, tmp_path
):
    page = browser_page
    django_user_model.objects.create_superuser("ops", "ops@example.org", PASSWORD)
    job = make_job(name="Gully <report>", timezone="Europe/London")
    statuses = ["succeeded"] * 40 + ["failed"] * 6 + ["skipped", "succeeded", "failed", "running"]
    newest = add_runs(job, statuses)[0]  # add_runs makes the newest first
    Job.objects.filter(pk=job.pk).update(failure_streak=1)
    other = make_job(name="Culvert check")
    add_runs(other, ["succeeded", "failed"])
    ScheduleState.objects.create(
        periodic_task=job.periodic_task, next_due_at=timezone.now() + timedelta(hours=3), task_changed_at=timezone.now()
    )

    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.click("#dashboard-link a")  # the admin's front page links the dashboard
    page.wait_for_url("**/admin/dashboard/")

    chart = page.locator("svg.runs-per-hour")
    chart.wait_for(state="visible")
    box = chart.bounding_box()
    assert box is not None and box["width"] > 600 and box["height"] > 100  # drawn, not an empty box
    assert page.locator("svg.runs-per-hour rect.hour-bar").count() >= 3  # every hour with runs, by outcome
    assert page.locator("svg.runs-per-hour rect.run-failed").count() >= 2
    assert "Failing now: 1 job" in page.locator("#dashboard-failing").inner_text()
    assert "Gully <report>" in page.locator("#dashboard-failing").inner_text()  # shown as text, not markup
    assert "Due in the next 24 hours: 1 run" in page.locator("#dashboard-due").inner_text()
    assert "beat" in page.locator("#dashboard-health").inner_text()
    dashboard_shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(dashboard_shot), full_page=True)

    page.click("#dashboard-failing a:has-text('Gully <report>')")
    page.wait_for_url(f"**/admin/scheduler/job/{job.pk}/change/")
    page.locator("svg.run-bars").wait_for(state="visible")
    bars = page.locator("svg.run-bars rect.run-bar")
    assert bars.count() == 50
    assert page.locator("svg.run-bars rect.run-failed").count() == 7
    assert page.locator("svg.run-bars").bounding_box()["width"] > 300
    job_shot = tmp_path / "job-run-bars.png"
    page.screenshot(path=str(job_shot), full_page=True)
    print(f"\nscreenshots: {dashboard_shot} {job_shot}")  # noqa: T201 - the test output names them

    page.locator("svg.run-bars a").last.click()
    page.wait_for_url(f"**/admin/scheduler/jobrun/{newest.pk}/change/")  # each bar links to its run
