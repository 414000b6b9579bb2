"""End to end: runs on two real worker processes, /metrics scraped from a live server; the counts are
the runs made, not zero and not double."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from config import celery_app
from config.env_secrets import Secret
from scheduler.models import JobRun
from scheduler.services import job_run_now
from tests.helpers import requires_services, wait_for
from tests.metrics.helpers import TOKEN, samples, value

pytestmark = [requires_services, pytest.mark.e2e, pytest.mark.timeout(240)]

OK_JOBS, FAILING_JOBS = 5, 3


def _workers_ready(celery_processes, count: int) -> bool:
    return celery_processes.logs().count(" ready.") >= count


def test_metrics_from_two_workers_count_every_run_once(celery_processes, make_job, live_server, settings):
    settings.METRICS_TOKEN = Secret(TOKEN)
    ok = [make_job(name=f"ok {n}", steps='examples.sleep {"seconds": 0.3}') for n in range(OK_JOBS)]
    failing = [make_job(name=f"bad {n}", steps='examples.fail {"message": "no"}') for n in range(FAILING_JOBS)]
    celery_processes.start("worker", "--concurrency=1")
    celery_processes.start("worker", "--concurrency=1")
    wait_for(
        lambda: _workers_ready(celery_processes, 2), timeout=60, describe=f"two workers\n{celery_processes.logs()}"
    )

    due = (timezone.now() - timedelta(seconds=1)).replace(microsecond=0)
    for job in ok + failing:  # as beat sends them: trigger schedule, with the due time
        celery_app.send_task("scheduler.run_job", args=[job.pk], kwargs={"due_at": due.isoformat()})
    for job in ok[:2]:  # the same message again (two beats, a redelivery): no second run, no second count
        celery_app.send_task("scheduler.run_job", args=[job.pk], kwargs={"due_at": due.isoformat()})
    for job in ok:
        job_run_now(job=job)  # "run now": trigger manual
    expected_runs = 2 * OK_JOBS + FAILING_JOBS

    finished = JobRun.objects.filter(finished_at__isnull=False)
    wait_for(
        lambda: finished.count() == expected_runs and not JobRun.objects.exclude(finished_at__isnull=False).exists(),
        timeout=120,
        describe=f"{expected_runs} finished runs\n{celery_processes.logs()}",
    )
    workers = {worker.rsplit(":", 1)[0] for worker in finished.values_list("worker", flat=True)}
    assert len(workers) == 2, workers  # both worker processes ran runs
    # Redelivered messages may still be in flight: let them arrive and find their run recorded.
    wait_for(lambda: celery_processes.logs().count("not running it again") >= 2, timeout=30,
             describe=f"the repeated messages\n{celery_processes.logs()}")  # fmt: skip

    response = httpx.get(f"{live_server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200
    found = samples(response.text)
    runs = "alloysync_job_runs_total"
    assert value(found, runs, source="local", trigger="schedule", outcome="succeeded") == OK_JOBS
    assert value(found, runs, source="local", trigger="schedule", outcome="failed") == FAILING_JOBS
    assert value(found, runs, source="local", trigger="manual", outcome="succeeded") == OK_JOBS
    assert sum(count for (name, _), count in found.items() if name == runs) == expected_runs
    # The database agrees: one count per run recorded.
    recorded = Counter(finished.values_list("trigger", "status"))
    assert recorded == {
        ("schedule", "succeeded"): OK_JOBS,
        ("schedule", "failed"): FAILING_JOBS,
        ("manual", "succeeded"): OK_JOBS,
    }
    assert value(found, "alloysync_job_run_duration_seconds_count", source="local") == expected_runs
    assert value(found, "alloysync_job_run_duration_seconds_bucket", source="local", le="0.1") == FAILING_JOBS
    assert value(found, "alloysync_job_run_lag_seconds_count", source="local") == OK_JOBS + FAILING_JOBS
    assert value(found, "alloysync_jobs", state="failing") == FAILING_JOBS
    assert value(found, "alloysync_jobs", state="scheduled") == OK_JOBS

    unauthorized = httpx.get(f"{live_server.url}/metrics", timeout=10)
    assert unauthorized.status_code == 401
