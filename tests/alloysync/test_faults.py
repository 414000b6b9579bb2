"""Alloy misbehaving for real, over the socket: every fault ends in a clear outcome and loses no job."""

import socket
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from alloysync.client import MIN_WAIT_SECONDS
from alloysync.client import client as client_module
from alloysync.fake_alloy import SAMPLE_CRON_ATTRIBUTE, SAMPLE_STEPS_ATTRIBUTE
from alloysync.fake_alloy.hostile import hostile_page
from alloysync.models import SyncRun
from alloysync.sync import alloy_sync
from scheduler.models import Job
from tests.alloysync.helpers import job_item

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]


def sync(**kwargs):
    return alloy_sync(trigger=SyncRun.Trigger.COMMAND, **kwargs).run


def scheduled_jobs():
    return {job.external_id: job for job in Job.objects.filter(periodic_task__isnull=False)}


@pytest.fixture
def three_jobs(alloy):
    for n in range(1, 4):
        alloy.put_item(job_item(f"job {n}", n=n))
    assert sync().created == 3
    return alloy


def test_a_5xx_burst_longer_than_the_retry_budget_fails_the_sync_and_keeps_every_job(three_jobs, fast_client):
    three_jobs.remove_item(f"{1:024x}")
    three_jobs.faults.fail_next(1000, status=502)
    run = sync(client=fast_client)
    assert run.status == "failed"
    assert "Alloy is unavailable" in run.message and "HTTP 502" in run.message
    assert len(scheduled_jobs()) == 3
    assert sum(fast_client.waits) <= 30  # the retry budget bounds the wait


def test_a_429_storm_is_waited_out_within_the_budget_then_fails_cleanly(three_jobs, fast_client):
    three_jobs.faults.rate_limit_next(1000, header="retry-after", seconds=7)
    run = sync(client=fast_client)
    assert run.status == "failed" and "HTTP 429" in run.message
    assert fast_client.waits and set(fast_client.waits) == {7.0}
    assert len(scheduled_jobs()) == 3


def test_a_page_that_always_breaks_off_fails_the_sync_and_removes_nothing(three_jobs, fast_client):
    three_jobs.remove_item(f"{2:024x}")
    three_jobs.faults.fail_page(1, "broken", times=None)
    run = sync(client=fast_client)
    assert run.status == "failed" and run.removed == 0
    assert len(scheduled_jobs()) == 3


def test_wrong_value_types_make_the_item_invalid_and_keep_its_job(three_jobs):
    three_jobs.edit_item(f"{1:024x}", {SAMPLE_CRON_ATTRIBUTE: 1234})
    three_jobs.edit_item(f"{2:024x}", {SAMPLE_STEPS_ATTRIBUTE: {"function": "examples.echo"}})
    run = sync()
    assert (run.status, run.invalid, run.unchanged) == ("succeeded", 2, 1)
    messages = {error["item_id"]: error["message"] for error in run.errors}
    assert "holds a number, not text" in messages[f"{1:024x}"]
    assert "holds an object, not text or a list" in messages[f"{2:024x}"]
    jobs = scheduled_jobs()
    assert len(jobs) == 3 and jobs[f"{1:024x}"].cron == "30 2 * * *"


def test_a_2mb_attribute_and_non_ascii_text_sync_intact(alloy):
    message = "Ω" * (1024 * 1024)  # 2 MB of UTF-8
    alloy.put_item(
        job_item("Réseau d'égouts — Zürich ✓ 下水道", steps=f'examples.echo {{"message": "{message}"}}', n=1)
    )
    run = sync()
    assert (run.status, run.created) == ("succeeded", 1)
    job = Job.objects.get()
    assert job.name == "Réseau d'égouts — Zürich ✓ 下水道"
    assert job.steps[0]["kwargs"]["message"] == message
    assert sync().unchanged == 1  # and it compares equal next time: no rewrite


@pytest.fixture(scope="module")
def _bomb_built():
    hostile_page("gzip-bomb")  # built once, before a client with a 1 s timeout waits for it


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("gzip-bomb", "larger than 32 MiB once decompressed"),
        ("deep", "nested deeper than 200 levels"),
        ("huge-number", "holds a number 5,000 characters long"),
    ],
)
def test_a_page_built_to_exhaust_the_client_fails_the_sync_cleanly_and_removes_nothing(
    three_jobs, fast_client, _bomb_built, fault, message
):
    three_jobs.remove_item(f"{1:024x}")
    three_jobs.faults.fail_page(1, fault, times=None)
    run = sync(client=fast_client)
    assert run.status == "failed" and run.removed == 0
    assert run.message.startswith("Alloy's answer to POST /api/aqs/query ") and message in run.message
    assert len(scheduled_jobs()) == 3


def test_nan_and_infinity_in_one_item_make_that_item_invalid_not_the_sync(three_jobs):
    three_jobs.faults.fail_page(1, "nan", times=None)  # every attribute of the first item
    run = sync()
    assert (run.status, run.invalid, run.unchanged, run.removed) == ("succeeded", 1, 2, 0)
    assert run.errors[0]["item_id"] == f"{1:024x}"
    assert len(scheduled_jobs()) == 3  # the spoiled item's job keeps its last good definition


def test_a_429_storm_saying_retry_after_minus_one_costs_a_handful_of_requests(three_jobs, fast_client):
    # Before: no wait at all between attempts, so the 30 s budget (counted in waits asked) never ran out.
    three_jobs.faults.rate_limit_next(100_000, header="none", retry_after="-1")
    run = sync(client=fast_client)
    assert run.status == "failed" and "Retry-After '-1' ignored" in run.message
    assert 2 <= run.requests <= 8
    assert min(fast_client.waits) >= MIN_WAIT_SECONDS
    assert len(scheduled_jobs()) == 3


def closed_port():
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("where", ["closed port", "unknown host"])
@pytest.mark.parametrize("dry_run", [False, True])
def test_sync_alloy_by_hand_with_a_wrong_base_url_fails_at_once_saying_so(alloy, settings, where, dry_run):
    port = closed_port()
    settings.ALLOY_BASE_URL = f"http://127.0.0.1:{port}" if where == "closed port" else "https://nonexistent.invalid"
    expected = f"127.0.0.1:{port}" if where == "closed port" else "nonexistent.invalid:443"
    started = time.monotonic()

    with pytest.raises(CommandError) as caught:
        call_command("sync_alloy", *(["--dry-run"] if dry_run else []))

    assert time.monotonic() - started < 5  # before: retried for 65 s
    message = str(caught.value)
    assert f"Cannot reach Alloy at {expected}: " in message and "Check ALLOY_BASE_URL." in message
    if not dry_run:
        assert SyncRun.objects.get().message.startswith(f"Cannot reach Alloy at {expected}")


def test_the_scheduled_sync_still_retries_a_host_it_cannot_reach_briefly(alloy, settings, monkeypatch):
    monkeypatch.setattr(client_module, "UNREACHED_RETRY_SECONDS", 2.5)  # 10 s in production
    settings.ALLOY_BASE_URL = f"http://127.0.0.1:{closed_port()}"
    run = alloy_sync(trigger=SyncRun.Trigger.SCHEDULE).run
    assert run.status == "failed" and "Cannot reach Alloy" in run.message
    assert run.requests >= 2
