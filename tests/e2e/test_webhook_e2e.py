"""End to end: an Alloy workflow calls POST /alloy/webhook over HTTP; a real worker reads the item.

The fake Alloy's workflow makes the calls (as Alloy's Http Request action would) to Django's live
server; the read runs in a real ``celery worker`` on PostgreSQL and Redis. No beat runs: whatever
changes here was pushed, not polled.
"""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest

from alloysync.fake_alloy import SAMPLE_CRON_ATTRIBUTE, FakeAlloyServer, Workflow, sample_alloy_settings
from alloysync.models import PendingItemRead, SyncRun
from alloysync.sync import alloy_sync
from config.env_secrets import Secret
from scheduler.models import Job
from tests.alloysync.helpers import job_item
from tests.helpers import ALLOY_TEST_KEY, requires_services, wait_for

pytestmark = [requires_services, pytest.mark.e2e, pytest.mark.timeout(180)]

# The first wait of each test includes the worker's start, which takes seconds on a busy machine.

SECRET = "wh-e2e-7f3a9c1d5b2e4f6a8c0d2e4f6a8b0c1d"


def item_id(n: int) -> str:
    return f"{n:024x}"


@pytest.fixture
def alloy(settings, live_server):
    """A fake Alloy holding three synced jobs, whose workflow calls this live server's webhook."""
    items = [job_item(f"job {n}", cron=f"{n} * * * *", n=n) for n in (1, 2, 3)]
    with FakeAlloyServer(items, api_key=ALLOY_TEST_KEY) as server:
        for name, value in sample_alloy_settings(server.url, ALLOY_TEST_KEY).items():
            setattr(settings, name, value)
        settings.ALLOY_API_KEY = Secret(ALLOY_TEST_KEY)
        settings.ALLOY_WEBHOOK_SECRET = Secret(SECRET)
        assert alloy_sync(trigger=SyncRun.Trigger.COMMAND).run.created == 3
        server.workflow = Workflow(url=f"{live_server.url}/alloy/webhook", secret=SECRET)
        server.clear_requests()
        yield server


@pytest.fixture
def worker(celery_processes, alloy):
    celery_processes.start("worker", "--concurrency=1", env=sample_alloy_settings(alloy.url, ALLOY_TEST_KEY))
    return celery_processes


def item_gets(server: FakeAlloyServer, n: int) -> int:
    return sum(1 for request in server.requests if (request.method, request.path) == ("GET", f"/api/item/{item_id(n)}"))


def wait_showing_logs(condition, processes, what: str, timeout: float = 60) -> None:
    """wait_for, failing with the workers' logs as they are at the end of the wait."""
    try:
        wait_for(condition, timeout=timeout, describe=what)
    except pytest.fail.Exception as exc:
        pytest.fail(f"{exc}\n{processes.logs()}")


def finished_run() -> SyncRun:
    """The one sync the webhook caused, once finished: its jobs change inside it, its record just after."""
    runs = SyncRun.objects.filter(trigger="webhook")
    wait_for(lambda: runs.filter(finished_at__isnull=False).exists(), timeout=10, describe="the sync's record")
    return runs.get()


def job(n: int) -> Job:
    return Job.objects.get(source="alloy", external_id=item_id(n))


def test_an_edit_in_alloy_reaches_its_job_within_seconds_and_a_delete_removes_only_that_job(alloy, worker):
    alloy.edit_item(item_id(2), {SAMPLE_CRON_ATTRIBUTE: "0 9 * * *"})
    assert alloy.wait_for_workflow()
    assert [(call.event, call.outcome) for call in alloy.workflow_calls] == [("edit", 202)]
    wait_showing_logs(lambda: job(2).cron == "0 9 * * *", worker, "the edit applied")
    run = finished_run()
    assert (run.mode, run.status, run.updated, run.items_read) == ("items", "succeeded", 1, 1)
    assert item_gets(alloy, 2) == 1 and not PendingItemRead.objects.exists()

    alloy.remove_item(item_id(1))
    wait_showing_logs(lambda: job(1).removed_at is not None, worker, "the removal", timeout=30)
    assert job(1).periodic_task is None
    assert job(2).periodic_task is not None and job(3).periodic_task is not None


def test_a_storm_of_200_calls_about_one_item_is_one_read(alloy, celery_processes, live_server):
    alloy.workflow = None  # the storm comes from here, all at once
    alloy.edit_item(item_id(3), {SAMPLE_CRON_ATTRIBUTE: "0 7 * * *"})
    headers = {"Authorization": f"Bearer {SECRET}"}

    def call(_: int) -> int:
        with httpx.Client(base_url=live_server.url, timeout=10) as client:
            return client.post("/alloy/webhook", json={"itemId": item_id(3)}, headers=headers).status_code

    # The worker starts after the storm: however long the calls take here, their read waits in the
    # broker, and every call after the first found the item already pending.
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(call, range(200))) == {202}
    assert PendingItemRead.objects.count() == 1
    celery_processes.start("worker", "--concurrency=1", env=sample_alloy_settings(alloy.url, ALLOY_TEST_KEY))
    wait_showing_logs(lambda: job(3).cron == "0 7 * * *", celery_processes, "the storm's read")
    wait_for(lambda: not PendingItemRead.objects.exists(), timeout=10, describe="the row forgotten")
    assert item_gets(alloy, 3) == 1
    assert SyncRun.objects.filter(trigger="webhook").count() == 1


def test_a_call_naming_no_item_runs_an_incremental_sync(alloy, worker, live_server):
    alloy.workflow = None
    alloy.edit_item(item_id(1), {SAMPLE_CRON_ATTRIBUTE: "0 6 * * *"})
    response = httpx.post(f"{live_server.url}/alloy/webhook", headers={"Authorization": f"Bearer {SECRET}"}, timeout=10)
    assert (response.status_code, response.json()) == (202, {"accepted": [], "read": "queued"})
    wait_showing_logs(lambda: job(1).cron == "0 6 * * *", worker, "the sync")
    run = finished_run()
    assert (run.trigger, run.mode, run.status, run.updated) == ("webhook", "incremental", "succeeded", 1)


def test_a_wrong_secret_over_http_changes_nothing(alloy, worker, live_server):
    alloy.workflow = Workflow(url=f"{live_server.url}/alloy/webhook", secret="not-the-secret")
    alloy.edit_item(item_id(2), {SAMPLE_CRON_ATTRIBUTE: "0 5 * * *"})
    assert alloy.wait_for_workflow()
    assert [(call.event, call.outcome) for call in alloy.workflow_calls] == [("edit", 401)]
    assert not PendingItemRead.objects.exists()
    assert job(2).cron == "2 * * * *"
