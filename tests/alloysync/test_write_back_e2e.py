"""End to end with a real worker: a run finishes in the worker, and the write-back task lands its state on the item."""

from __future__ import annotations

import pytest

from config import celery_app
from scheduler.models import Job, JobRun
from scheduler.services import job_run_now
from tests.alloysync.helpers import job_item
from tests.helpers import requires_services, wait_for

pytestmark = [requires_services, pytest.mark.e2e, pytest.mark.timeout(180)]

STATUS = "attributes_scheduledJobsStatus_65f0c0ffee0000000000ab01"
MESSAGE = "attributes_scheduledJobsMessage_65f0c0ffee0000000000ab02"


def shown(server, item_id: str, code: str):
    item = server.get(item_id) or {}
    return next((a.get("value") for a in item.get("attributes", []) if a["attributeCode"] == code), None)


def test_a_run_in_a_real_worker_is_written_onto_its_item_by_the_write_back_task(celery_processes, alloy_env, make_job):
    server, env = alloy_env
    item_id = server.put_item(job_item("Nightly", n=1))["itemId"]
    job = make_job(source=Job.Source.ALLOY, external_id=item_id, steps='examples.fail {"message": "disk full"}')
    env = {**env, "ALLOY_STATUS_ATTRIBUTE": STATUS, "ALLOY_MESSAGE_ATTRIBUTE": MESSAGE, "ALLOY_WRITE_RATE": "30"}
    celery_processes.start("worker", "--concurrency=1", env=env)
    job_run_now(job=job)
    wait_for(
        lambda: JobRun.objects.filter(job=job, finished_at__isnull=False).exists(),
        timeout=60,
        describe=celery_processes.logs(),
    )
    celery_app.send_task("alloysync.write_back")
    wait_for(lambda: shown(server, item_id, STATUS) == "failed", timeout=60, describe=celery_processes.logs())
    message = shown(server, item_id, MESSAGE)
    assert message.startswith("last run failed at ") and message.endswith(
        "step 1 (examples.fail): RuntimeError: disk full"
    )
    assert [r.method for r in server.requests if r.path == f"/api/item/{item_id}"] == ["GET", "PUT"]
