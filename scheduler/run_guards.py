"""What keeps a running run honest: its time limit, and a heartbeat that tells a live worker from a
dead one.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from django.db import connection
from django.utils import timezone

from scheduler.models import JobRun

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
