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

from scheduler.events import job_state_changed_send
from scheduler.models import JobRun, StepRun

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
    reaped, jobs = [], []
    for run_id, worker, job_id in stale.values_list("pk", "worker", "job_id"):
        error = f"worker lost: no heartbeat from {worker or 'its worker'} for over {settings.JOB_LOST_AFTER:g} s"
        # A heartbeat that lands meanwhile means the worker is alive after all.
        still_silent = JobRun.objects.filter(pk=run_id, status=JobRun.Status.RUNNING, heartbeat_at__lt=cutoff)
        if run_fail_if(still_silent, run_id=run_id, now=now, error=error, step_error="worker lost"):
            reaped.append(run_id)
            jobs.append(job_id)
    if reaped:
        logger.warning("marked %d lost run(s) failed: %s", len(reaped), reaped)
        job_state_changed_send(jobs)
    return reaped


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
    return True
