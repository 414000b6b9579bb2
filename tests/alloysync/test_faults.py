"""Alloy misbehaving for real, over the socket: every fault ends in a clear outcome and loses no job."""

import pytest

from alloysync.fake_alloy import SAMPLE_CRON_ATTRIBUTE, SAMPLE_STEPS_ATTRIBUTE
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
