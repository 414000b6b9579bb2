"""What keeps a running run honest: its time limit, a heartbeat that tells a live worker from a
dead one and the check that ends runs whose heartbeat stopped, and the rule that only the process
that started a run records it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from scheduler.alerts import job_run_alerts
from scheduler.events import job_state_changed_send
from scheduler.metrics import counters_add, run_end_counts
from scheduler.models import Job, JobRun, StepRun

logger = logging.getLogger("scheduler.runner")


class JobTimeLimitExceeded(BaseException):
    """Raised inside a step when the run's time limit passes.

    A BaseException, so that a step's own ``except Exception`` cannot swallow it.
    """


@contextmanager
def time_limit_alarm(seconds: float, limit: float) -> Iterator[None]:
    """Raise JobTimeLimitExceeded in this thread after ``seconds``.

    Uses SIGALRM, which only the main thread can receive. Celery's prefork and solo pools and
    ``manage.py run_job`` run jobs there; elsewhere the task's hard time limit is the backstop.
    """
    if seconds <= 0:
        raise JobTimeLimitExceeded
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise JobTimeLimitExceeded

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def heartbeat(run_id: int, interval: float) -> Iterator[None]:
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(interval):
                JobRun.objects.filter(pk=run_id, status=JobRun.Status.RUNNING).update(heartbeat_at=timezone.now())
        except Exception:
            logger.exception("heartbeat for run %s failed", run_id)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"heartbeat-run-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def call_as_owner(owner_pid: int, func: Callable[..., object], kwargs: Mapping[str, Any]) -> object:
    """Return or raise what ``func(**kwargs)`` does, in the process ``owner_pid`` that runs the run.

    A step may fork (``os.fork()``, a library that daemonizes), and then both processes come back
    here. A forked child must not record anything: it would write a second, false outcome, and the
    database connection it inherited is the parent's socket, which it can neither use nor close
    without breaking the parent's session. So the child exits at once with ``os._exit``, which runs
    no ``finally``, ``atexit`` or finalizer that could touch that connection: status 0 if ``func``
    returned, the code it passed to ``sys.exit``, else 1.
    """
    try:
        value = func(**kwargs)
    except BaseException as exc:
        if os.getpid() != owner_pid:
            _exit_forked_child(owner_pid, exc)
        raise
    if os.getpid() != owner_pid:
        _exit_forked_child(owner_pid, None)
    return value


def _exit_forked_child(owner_pid: int, exc: BaseException | None) -> None:
    code = 0 if exc is None else 1
    if isinstance(exc, SystemExit):
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if exc is not None:
        # Straight to the file descriptor: logging's locks may have been held by another thread at fork.
        note = (
            f"process {os.getpid()}, forked by a job step, ended with {type(exc).__qualname__}; "
            f"only the run's own process {owner_pid} records the run\n"
        )
        with suppress(OSError):  # no stderr: the exit status still tells
            os.write(2, note.encode("ascii", "backslashreplace"))
    os._exit(code & 0xFF)


def job_runs_reap_lost(*, now: datetime | None = None) -> list[int]:
    """Mark runs whose heartbeat went silent as failed ("worker lost"); return their ids."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.JOB_LOST_AFTER)
    stale = JobRun.objects.filter(status=JobRun.Status.RUNNING, heartbeat_at__lt=cutoff)
    reaped = []
    for run_id, worker in stale.values_list("pk", "worker"):
        error = f"worker lost: no heartbeat from {worker or 'its worker'} for over {settings.JOB_LOST_AFTER:g} s"
        # A heartbeat that lands meanwhile means the worker is alive after all.
        still_silent = JobRun.objects.filter(pk=run_id, status=JobRun.Status.RUNNING, heartbeat_at__lt=cutoff)
        if run_fail_if(still_silent, run_id=run_id, now=now, error=error, step_error="worker lost"):
            reaped.append(run_id)
    if reaped:
        logger.warning("marked %d lost run(s) failed: %s", len(reaped), reaped)
        for run in JobRun.objects.filter(pk__in=reaped).select_related("job"):
            run_outcome_tell(run, run.job)
    return reaped


def run_outcome_tell(run: JobRun, job: Job | None = None, *, counted: tuple[int, bool] | None = None) -> None:
    """After ``run`` ended succeeded or failed: keep its job's failure streak, then tell whoever follows
    job states (``job_state_changed``) and the alerts. Skipped runs change nothing and are not told.

    Costs one query (the streak's update) when nothing else changed, none if ``counted`` (streak,
    recovered) says what the run's own end already did to it. ``job``, if given, is the run's
    job as loaded: its ``failure_streak`` is brought up to date. Never raises what the alerts raise:
    the run is recorded already, and an alert's trouble must not turn it into an error.
    """
    if counted is None:
        streak, recovered = job_failure_streak_record(run.job_id, failed=run.status == JobRun.Status.FAILED)
    else:
        streak, recovered = counted  # counted already, with the run's end (scheduler.run_record)
    if job is not None:
        job.failure_streak = streak
    job_state_changed_send([run.job_id], sources={job.pk: job.source} if job is not None else None)
    try:
        job_run_alerts(run, streak=streak, recovered=recovered)
    except Exception:
        logger.exception("alerts for run %s of job %s failed", run.pk, run.job_id)


def job_failure_streak_record(job_id: int, *, failed: bool) -> tuple[int, bool]:
    """Count a finished run into its job's failure streak, atomically; return (the new streak, whether
    this success ended a streak). One statement either way, and a success on a passing job writes nothing."""
    if not failed:
        recovered = Job.objects.filter(pk=job_id, failure_streak__gt=0).update(failure_streak=0)
        return 0, recovered > 0
    table, column = (
        connection.ops.quote_name(Job._meta.db_table),
        connection.ops.quote_name(Job._meta.pk.column or "id"),
    )
    with connection.cursor() as cursor:
        # RETURNING (PostgreSQL; SQLite 3.35+): the increment and the value it made in one statement,
        # so two runs finishing together each learn their own count.
        cursor.execute(
            f"UPDATE {table} SET failure_streak = failure_streak + 1 WHERE {column} = %s RETURNING failure_streak",  # noqa: S608
            [job_id],
        )
        row = cursor.fetchone()
    return (int(row[0]) if row else 0), False


def run_fail_if(running: QuerySet[JobRun], *, run_id: int, now: datetime, error: str, step_error: str) -> bool:
    """Fail the run if ``running`` still selects it, with its running step failed and the rest
    skipped; return whether it did. A compare-and-set: whoever ended the run first is kept."""
    with transaction.atomic():
        if not running.update(status=JobRun.Status.FAILED, finished_at=now, error=error):
            return False
        steps = StepRun.objects.filter(run_id=run_id)
        steps.filter(status=StepRun.Status.RUNNING).update(
            status=StepRun.Status.FAILED, finished_at=now, error=step_error
        )
        steps.filter(status=StepRun.Status.PENDING).update(status=StepRun.Status.SKIPPED)
        _count_failed(run_id, now)  # with the status change it counts, so once whoever ends the run
    return True


def _count_failed(run_id: int, now: datetime) -> None:
    run = JobRun.objects.filter(pk=run_id).values_list("trigger", "started_at", "job__source")
    trigger, started_at, source = run[0]
    counters_add(
        run_end_counts(
            source=source, trigger=trigger, outcome=JobRun.Status.FAILED, started_at=started_at, finished_at=now
        )
    )
