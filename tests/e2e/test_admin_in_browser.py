"""An operator's round in a real browser: headless Chromium (Debian's) driven by Playwright.

Screenshots go to ``screenshots/`` under pytest's basetemp; their paths are printed (``pytest -s``).
"""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone

from alloysync.models import SyncRun
from scheduler.models import Job, JobRun, StepRun
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


# The narrowest screen the admin's lists must fit without scrolling sideways.
WIDTH = 1280


@pytest.fixture
def screenshots(tmp_path_factory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "screenshots"
    folder.mkdir(exist_ok=True)
    return folder


def shoot(page, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")  # noqa: T201 - the test output names where to look


def assert_fits(page) -> None:
    """Neither the page nor the list's own box scrolls sideways at WIDTH pixels."""
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    overflow = page.evaluate(
        "(() => { const box = document.querySelector('.results');"
        " return box ? box.scrollWidth - box.clientWidth : 0; })()"
    )
    assert overflow <= 0, f"the list is {overflow} px wider than its box at {WIDTH} px"


def log_in(page, live_server) -> None:
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "correct-horse-battery")
    page.click("input[type=submit]")


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
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
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


def add_history(job: Job) -> None:
    """Finished runs, some failed, lasting 1 to 200 seconds, and syncs: what the lists and bars show."""
    now = timezone.now()
    for number in range(12):
        started = now - timedelta(hours=number + 1)
        status = "failed" if number % 4 == 0 else "succeeded"
        JobRun.objects.create(
            job=job,
            trigger="schedule",
            status=status,
            started_at=started,
            finished_at=started + timedelta(seconds=1 + number * 17),
        )
    for number in range(3):
        started = now - timedelta(minutes=5 * number + 5)
        SyncRun.objects.create(
            trigger="schedule",
            mode="incremental",
            status="failed" if number == 1 else "succeeded",
            started_at=started,
            finished_at=started + timedelta(seconds=1.5 + 90 * number),
            items_read=100_000,
            created=12,
            updated=345,
            removed=3,
            invalid=2,
            message="read 100,000 items in 1,000 pages: 12 created, 345 updated, 3 removed, 2 invalid",
        )


def test_an_operator_pauses_resumes_and_runs_with_arguments_from_the_jobs_page(
    page, live_server, celery_processes, make_job, django_user_model, screenshots
):
    ops = django_user_model.objects.create_superuser("ops", "ops@example.org", "correct-horse-battery")
    job = make_job(
        name="Gully report for the northern district",
        cron="30 2 * * 1-5",
        timezone="Europe/London",
        steps='examples.echo {"message": "built"}\nexamples.echo {"message": "sent"}',
    )
    make_job(name="From Alloy: road sweeping", source=Job.Source.ALLOY, external_id="642062376be3a0036bbbb64b")
    add_history(job)
    celery_processes.start("worker", "--concurrency=1")
    log_in(page, live_server)

    page.goto(f"{live_server.url}/admin/scheduler/job/")
    shoot(page, screenshots, "1-jobs")
    assert_fits(page)
    assert page.locator(".paused-mark").count() == 0  # nothing paused: no mark on any row
    for title in ("paused", "failing", "has sync error", "removed"):
        assert page.locator("#changelist-filter").get_by_text(f"By {title}").count() == 1
    assert re.search(r"\d{4}-\d\d-\d\d 02:30 (GMT|BST) Europe/London", page.locator("#result_list").inner_text())

    page.click(f"#result_list a[href$='/admin/scheduler/job/{job.pk}/change/']")
    page.wait_for_url(f"**/admin/scheduler/job/{job.pk}/change/")
    tools = page.locator(".object-tools a.job-tool").all_inner_texts()
    assert [tool.lower() for tool in tools] == ["pause…", "run now", "run with arguments…"]
    assert page.locator("svg.run-bars a").count() == 12  # a link per run
    preview = page.locator(".field-cron_preview li").all_inner_texts()
    assert len(preview) == 5 and all(re.search(r"02:30 (GMT|BST)$", when) for when in preview)
    shoot(page, screenshots, "2-job-page")

    # Pause: an empty note (spaces, which the browser's own check lets through) is refused beside the field.
    page.click("a.job-tool:text('Pause…')")
    page.fill("textarea[name=note]", "   ")
    page.click("input[name=pause]")
    assert "A pause needs a note" in page.locator(".form-row.errors .errorlist").inner_text()
    shoot(page, screenshots, "3-pause-note-required")
    job.refresh_from_db()
    assert not job.is_paused
    page.fill("textarea[name=note]", "culvert works until Friday")
    page.click("input[name=pause]")
    assert f"Paused {job.name}." in page.locator(".messagelist").inner_text()
    state = page.locator(".field-pause_state").inner_text()
    assert "Paused by ops at" in state and "UTC" in state and "culvert works until Friday" in state
    assert "Paused: culvert works until Friday" in page.locator(".field-history").inner_text()
    shoot(page, screenshots, "4-paused")
    job.refresh_from_db()
    assert job.is_paused and job.paused_by == ops

    page.goto(f"{live_server.url}/admin/scheduler/job/?paused=yes")
    assert page.locator(".paused-mark").count() == 1

    page.goto(f"{live_server.url}/admin/scheduler/job/{job.pk}/change/")
    page.click("a.job-tool:text('Resume')")
    page.click("input[name=resume]")
    assert f"Resumed {job.name}." in page.locator(".messagelist").inner_text()
    job.refresh_from_db()
    assert not job.is_paused

    # Run with arguments: bad JSON refused beside its step, then edited and queued.
    page.click("a.job-tool:text('Run with arguments…')")
    assert '"built"' in page.input_value("textarea[name=step_1]")
    page.fill("textarea[name=step_2]", '{"mesage": "typo"}')
    page.click("input[name=run]")
    assert "arguments do not fit examples.echo" in page.locator("#row-step_2 .errorlist").inner_text()
    shoot(page, screenshots, "5-run-with-arguments-refused")
    page.fill("textarea[name=step_1]", '{"message": "rebuilt by hand"}')
    page.fill("textarea[name=step_2]", '{"message": "sent again"}')
    page.click("input[name=run]")
    assert "Queued run" in page.locator(".messagelist").inner_text()
    run = JobRun.objects.get(job=job, trigger="manual")
    assert run.requested_by == ops
    wait_for(lambda: JobRun.objects.filter(pk=run.pk, status="succeeded").exists(), timeout=60)
    recorded = list(StepRun.objects.filter(run=run).order_by("position").values_list("kwargs", "result"))
    assert recorded == [({"message": "rebuilt by hand"}, "rebuilt by hand"), ({"message": "sent again"}, "sent again")]

    page.goto(f"{live_server.url}/admin/scheduler/jobrun/")
    assert page.locator("#result_list .status-badge.status-failed").count() == 3
    assert re.search(r"\d+ min \d+ s", page.locator("#result_list").inner_text())
    shoot(page, screenshots, "6-runs")
    assert_fits(page)

    page.goto(f"{live_server.url}/admin/alloysync/syncrun/")
    shoot(page, screenshots, "7-syncs")
    assert_fits(page)

    page.goto(f"{live_server.url}/admin/dashboard/")
    assert page.locator("svg").count() >= 1
    shoot(page, screenshots, "8-dashboard")


HOSTILE_NAME = (
    "hostile\nname <!channel> @here [click](https://evil.example) \u202eevil <script>alert(1)</script> " + "X" * 100
)[:200]


def assert_column_on_screen(page, header: str) -> None:
    box = page.locator("th", has_text=header).first.bounding_box()
    assert box is not None and box["x"] + box["width"] <= WIDTH, f"{header!r} is off-screen at {WIDTH} px: {box}"


def test_one_long_hostile_name_keeps_every_column_on_screen_and_reads_in_order(
    page, live_server, make_job, django_user_model, screenshots
):
    # A name of 100 unbroken X's pushed every other column off-screen; U+202E showed the rest reversed.
    django_user_model.objects.create_superuser("ops", "ops@example.org", "correct-horse-battery")
    job = make_job(name="placeholder")
    Job.objects.filter(pk=job.pk).update(name=HOSTILE_NAME, failure_streak=3, sync_error="E" * 300)
    JobRun.objects.create(job=job, status=JobRun.Status.FAILED, error="/" + "Y" * 400 + "\nValueError: boom")
    make_job(name="Gully report")
    log_in(page, live_server)

    page.goto(f"{live_server.url}/admin/scheduler/job/")
    shoot(page, screenshots, "jobs-with-a-hostile-name")
    assert_fits(page)
    for header in ("Source", "Schedule", "Next run", "Paused", "Last run", "Sync error"):
        assert_column_on_screen(page, header)
    listed = page.locator("#result_list").inner_text()
    assert "\u202e" not in listed and "evil <script>alert(1)</script> XXXX" in listed

    page.goto(f"{live_server.url}/admin/dashboard/")
    shoot(page, screenshots, "dashboard-with-a-hostile-name")
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    for header in ("Failed in a row", "Last error"):
        assert_column_on_screen(page, header)
    failing = page.locator("#dashboard-failing").inner_text()
    assert "\u202e" not in failing and "evil <script>alert(1)</script> XXXX" in failing
