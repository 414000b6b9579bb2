"""Faults injected for real: PostgreSQL and the broker down under running processes, beat killed,
a thousand jobs due at once. PostgreSQL and Redis are the machine's own servers, restarted; CI runs
these one at a time. RabbitMQ is not restarted (other people's runs use it): on amqp:// the processes
reach it through a relay that the test cuts, which they see as the server going away."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from alloysync.models import SyncRun
from scheduler.models import Job, JobRun, StepRun
from tests.alloysync.helpers import job_item
from tests.helpers import (
    PROJECT_DIR,
    CeleryProcesses,
    broker_relay,
    database_url_for_children,
    next_minute,
    requires_services,
    sleep_until,
    uses_amqp,
    wait_for,
)

pytestmark = [requires_services, pytest.mark.e2e, pytest.mark.slow]

REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
    "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
]  # fmt: skip


def run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def restart_postgresql() -> None:
    if not shutil.which("pg_ctlcluster"):
        pytest.skip("needs pg_ctlcluster to restart the local PostgreSQL")
    version = os.listdir("/etc/postgresql")[0]
    run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"])
    connection.close()  # this process's connection died with the server


def stop_redis() -> None:
    if not shutil.which("redis-server"):
        pytest.skip("needs redis-server to restart the local Redis")
    run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"])


def start_redis() -> None:
    os.makedirs("/var/lib/redis", exist_ok=True)
    os.makedirs("/var/log/redis", exist_ok=True)
    run(REDIS_START)
    wait_for(lambda: subprocess.run(["redis-cli", "ping"], capture_output=True).returncode == 0, timeout=30)


def runs_by_due_time(job: Job) -> Counter:
    return Counter(
        JobRun.objects.filter(job=job, trigger="schedule").exclude(status="skipped").values_list("due_at", flat=True)
    )


@pytest.mark.timeout(180)
def test_postgresql_restarted_during_a_sync_fails_that_sync_cleanly_and_the_next_succeeds(transactional_db, alloy_env):
    server, env = alloy_env
    for n in range(1, 31):
        server.put_item(job_item(f"job {n}", n=n))
    server.faults.latency = 0.7  # seven pages of five: the read takes about five seconds
    child_env = {**os.environ, **env, "DATABASE_URL": database_url_for_children(), "ALLOY_PAGE_SIZE": "5"}
    sync = subprocess.Popen(
        [sys.executable, "manage.py", "sync_alloy"],
        cwd=PROJECT_DIR,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: len(server.requests) >= 2, timeout=30, describe="the sync to be reading")
    restart_postgresql()
    out, err = sync.communicate(timeout=120)
    assert sync.returncode == 1, out + err
    assert "the database failed during the sync; nothing was changed" in err, err
    failed = SyncRun.objects.get()
    assert failed.status == "failed" and failed.message.startswith("database error")
    assert not Job.objects.exists()  # no half-written state
    server.faults.latency = 0
    retry = subprocess.run(
        [sys.executable, "manage.py", "sync_alloy"],
        cwd=PROJECT_DIR,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert retry.returncode == 0, retry.stdout + retry.stderr
    assert "read 30 items: 30 created" in retry.stdout
    assert Job.objects.count() == 30


@contextmanager
def broker_outage(processes: CeleryProcesses) -> Iterator[Callable[[float], None]]:
    """``outage(seconds)``: the broker away for that long, for the processes started afterwards.

    Redis: the machine's server shut down (losing what it held) and started again. RabbitMQ: the
    processes reach it through a relay, cut for the outage; the server itself keeps running.
    """
    if not uses_amqp():

        def restart_redis(seconds: float) -> None:
            stop_redis()
            try:
                time.sleep(seconds)
            finally:
                start_redis()

        yield restart_redis
        return
    with broker_relay() as relay:
        processes.env["CELERY_BROKER_URL"] = relay.url

        def cut_relay(seconds: float) -> None:
            relay.cut()
            try:
                time.sleep(seconds)
            finally:
                relay.restore()

        yield cut_relay
        processes.stop_all()  # before the relay closes: their last words go to the broker


@pytest.mark.timeout(300)
def test_broker_down_while_beat_and_worker_run_the_next_due_runs_happen(celery_processes, make_job):
    job = make_job(cron="* * * * *", steps='examples.echo {"message": "tick"}')
    with broker_outage(celery_processes) as outage:
        celery_processes.start("worker", "--concurrency=1")
        celery_processes.start("beat")
        first = next_minute(timezone.now() + timedelta(seconds=5))
        sleep_until(first + timedelta(seconds=12))
        assert runs_by_due_time(job)[first] == 1, celery_processes.logs()
        outage(8)
        later = [first + timedelta(minutes=1), first + timedelta(minutes=2)]
        sleep_until(later[-1] + timedelta(seconds=15))
    runs = runs_by_due_time(job)
    assert all(runs[due] == 1 for due in later), (runs, celery_processes.logs())
    assert StepRun.objects.filter(run__job=job, run__due_at__in=later, status="succeeded").count() == 2
    if uses_amqp():  # the outage reached the worker (Redis' restart is certain to)
        assert "Connection to broker lost" in celery_processes.logs()


@pytest.mark.timeout(300)
def test_beat_killed_and_restarted_sends_every_due_time_once(celery_processes, make_job):
    job = make_job(cron="* * * * *", steps='examples.echo {"message": "tick"}')
    env = {"BEAT_LEASE_TTL": "10"}
    celery_processes.start("worker", "--concurrency=1")
    first_beat = celery_processes.start("beat", env=env)
    first = next_minute(timezone.now() + timedelta(seconds=5))
    sleep_until(first + timedelta(seconds=8))
    first_beat.send_signal(signal.SIGKILL)
    first_beat.wait()
    celery_processes.start("beat", env=env)  # waits out the dead beat's lease, then takes over
    later = [first + timedelta(minutes=1), first + timedelta(minutes=2)]
    sleep_until(later[-1] + timedelta(seconds=15))
    runs = runs_by_due_time(job)
    assert [runs[due] for due in (first, *later)] == [1, 1, 1], (runs, celery_processes.logs())
    assert sum(runs.values()) == 3 + sum(1 for due in runs if due > later[-1])  # nothing sent twice


@pytest.mark.timeout(420)
def test_a_thousand_jobs_due_in_the_same_minute_each_run_exactly_once_on_two_workers(celery_processes):
    from scheduler.changes import JobChanges, jobs_apply_changes
    from scheduler.jobspec import job_spec_build

    due = next_minute(timezone.now() + timedelta(seconds=20))
    spec = job_spec_build(
        name="load", cron=f"{due.minute} {due.hour} * * *", timezone="UTC", steps='examples.echo {"message": "x"}'
    )
    jobs_apply_changes(JobChanges(source="alloy", create=[(f"{n:024x}", spec) for n in range(1000)]))
    for _ in range(2):  # two worker processes
        celery_processes.start("worker", "--concurrency=1")
    celery_processes.start("beat")
    wait_for(
        lambda: JobRun.objects.filter(due_at=due, finished_at__isnull=False).count() >= 1000,
        timeout=due.timestamp() - time.time() + 240,
        interval=2,
        describe=f"1,000 runs\n{celery_processes.logs()[-5000:]}",
    )
    time.sleep(5)  # anything sent twice would show up now
    per_job = Counter(JobRun.objects.filter(due_at=due).values_list("job_id", flat=True))
    assert len(per_job) == 1000 and set(per_job.values()) == {1}
    assert JobRun.objects.filter(due_at=due, status="succeeded").count() == 1000
    assert len({worker.split(":")[0] for worker in JobRun.objects.values_list("worker", flat=True)}) == 2
