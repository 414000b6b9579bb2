"""The runner: a job's steps, in order, in this process, each recorded.

A run is claimed with a compare-and-set on its status, guarded by a partial unique index that allows
one running run per job: whichever process loses that race records its run as skipped. A failed step
stops the run and the rest are marked skipped. A heartbeat thread keeps ``heartbeat_at`` fresh so
``run_guards.job_runs_reap_lost`` can tell a dead worker from a slow step.

Once claimed, a run leaves this process terminal whatever happens: a step's outcome is made storable
before it is saved (``step_outcome``), a save the database still refuses is replaced by a plain
failure, and anything else that stops the runner marks the run failed before it propagates. Only a
process that dies outright leaves the run to the reaper.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from scheduler.events import job_state_changed_send
from scheduler.models import Job, JobRun, StepRun
from scheduler.run_guards import heartbeat, run_fail_if
from scheduler.step_outcome import StepOutcome, exception_summary, failed_outcome, step_call
from scheduler.storable import storable_text
from scheduler.types import JSONObject

logger = logging.getLogger(__name__)

StepCallback = Callable[[StepRun], None]

_WORKER_MAX_CHARS = 255  # JobRun.worker's column


class RunClaim(Enum):
    """The outcome of trying to take a queued run for this process."""

    CLAIMED = "claimed"  # this process owns the run now
    TAKEN = "taken"  # another delivery of the same message claimed it first
    JOB_BUSY = "job busy"  # another run of the same job is running


@dataclass(frozen=True)
class StepFailure:
    """The step that stopped a run: its position, function and a one-line account of why; ``stop``
    is the KeyboardInterrupt or SystemExit to raise again once the run is recorded."""

    position: int
    function: str
    summary: str
    stop: BaseException | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"step {self.position} ({self.function}) failed: {self.summary}"


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def job_run_execute(
    *,
    job: Job,
    trigger: str,
    run: JobRun | None = None,
    worker: str | None = None,
    on_step: StepCallback | None = None,
    time_limit: float | None = None,
    due_at: datetime | None = None,
) -> JobRun:
    """Run ``job`` now in this process and return its finished JobRun.

    ``run`` is a queued run made earlier (admin "run now"); otherwise one is created. ``due_at`` is
    the scheduled time a beat sent this run for: a second message for the same due time (two beats,
    a redelivery) finds that run recorded and does nothing.
    """
    if run is None:
        try:
            with transaction.atomic():
                run = JobRun.objects.create(job=job, trigger=trigger, status=JobRun.Status.QUEUED, due_at=due_at)
        except IntegrityError:
            logger.warning("job %s already has a run for due time %s; not running it again", job.pk, due_at)
            return JobRun.objects.get(job=job, due_at=due_at)
    skip_reason = _reason_not_to_run(job, run)
    if skip_reason:
        return _finish_skipped(run, skip_reason)
    claim = _claim(run, worker or default_worker_name())
    if claim is RunClaim.JOB_BUSY:
        return _finish_skipped(run, "previous run still running")
    if claim is RunClaim.TAKEN:
        # Another delivery of the same message claimed this run first; it is theirs to finish.
        logger.warning("run %s of job %s was already claimed; not running it twice", run.pk, job.pk)
        run.refresh_from_db()
        return run
    limit = time_limit if time_limit is not None else settings.JOB_TIME_LIMIT
    return _run_claimed(run, job.steps, limit=limit, on_step=on_step)


def _reason_not_to_run(job: Job, run: JobRun) -> str:
    if run.trigger != JobRun.Trigger.SCHEDULE:
        return ""  # an operator asked for this run explicitly
    if job.periodic_task is None:
        return "job was removed"
    if not job.periodic_task.enabled:
        return "job is paused"
    return ""


def _claim(run: JobRun, worker: str) -> RunClaim:
    """Take the queued run for ``worker`` with a compare-and-set on its status."""
    now = timezone.now()
    worker = storable_text(worker, _WORKER_MAX_CHARS)  # a host name is configuration, not checked
    try:
        with transaction.atomic():
            updated = JobRun.objects.filter(pk=run.pk, status=JobRun.Status.QUEUED).update(
                status=JobRun.Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker
            )
    except IntegrityError:
        # jobrun_one_running_per_job: another run of this job is running.
        return RunClaim.JOB_BUSY
    if not updated:
        return RunClaim.TAKEN
    run.status, run.started_at, run.heartbeat_at, run.worker = JobRun.Status.RUNNING, now, now, worker
    return RunClaim.CLAIMED


def _create_step_runs(run: JobRun, steps: list[JSONObject]) -> list[StepRun]:
    # The job's steps are copied into the run, so history shows what actually ran even after edits.
    return StepRun.objects.bulk_create(
        # str(): a stored step's function is a name (checked when the job was saved); a CharField
        # would store str() of anything else all the same.
        StepRun(run=run, position=position, function=str(step["function"]), kwargs=step.get("kwargs") or {})
        for position, step in enumerate(steps, start=1)
    )


def _run_claimed(run: JobRun, steps: list[JSONObject], *, limit: float, on_step: StepCallback | None) -> JobRun:
    """Run the claimed run's steps and record how it ended; every way out of here leaves it terminal.

    A KeyboardInterrupt or SystemExit from a step (Ctrl-C in ``run_job``, job code calling
    ``sys.exit``, Celery's own shutdown exceptions in a solo pool) is raised again once the run is
    recorded failed, so a process told to stop does stop.
    """
    owner_pid = os.getpid()
    try:
        step_runs = _create_step_runs(run, steps)
        with heartbeat(run.pk, settings.JOB_HEARTBEAT_INTERVAL):
            failure = _run_steps(
                step_runs, owner_pid=owner_pid, deadline=time.monotonic() + limit, limit=limit, on_step=on_step
            )
        finished = _finish(run, failure)
    except BaseException as exc:
        _fail_abandoned(run, exc)
        raise
    if failure is not None and failure.stop is not None:
        raise failure.stop
    return finished


def _run_steps(
    step_runs: list[StepRun], *, owner_pid: int, deadline: float, limit: float, on_step: StepCallback | None
) -> StepFailure | None:
    """Run steps in order; return what stopped the run, or None if every step succeeded."""
    for index, step_run in enumerate(step_runs):
        outcome = _run_step(step_run, owner_pid=owner_pid, deadline=deadline, limit=limit)
        if on_step:
            on_step(step_run)
        if not outcome.succeeded:
            _skip_steps(step_runs[index + 1 :], on_step)
            return StepFailure(step_run.position, step_run.function, outcome.summary, outcome.stop)
    return None


def _run_step(step_run: StepRun, *, owner_pid: int, deadline: float, limit: float) -> StepOutcome:
    """Run one step and record it; return its outcome as recorded."""
    step_run.status, step_run.started_at = StepRun.Status.RUNNING, timezone.now()
    step_run.save(update_fields=["status", "started_at"])
    outcome = step_call(step_run.function, step_run.kwargs, owner_pid=owner_pid, deadline=deadline, limit=limit)
    try:
        _save_step(step_run, outcome)
    except Exception as exc:  # the database refused the values: keep the fact, drop them
        logger.exception("step %s of run %s: its outcome could not be stored", step_run.position, step_run.run_id)
        refused = failed_outcome(f"its outcome could not be stored: {exception_summary(exc)}")
        outcome = StepOutcome(succeeded=False, error=refused.error, summary=refused.summary, stop=outcome.stop)
        _save_step(step_run, outcome)
    return outcome


def _save_step(step_run: StepRun, outcome: StepOutcome) -> None:
    step_run.status = StepRun.Status.SUCCEEDED if outcome.succeeded else StepRun.Status.FAILED
    step_run.result, step_run.error, step_run.finished_at = outcome.result, outcome.error, timezone.now()
    with _refusable():
        step_run.save(update_fields=["status", "finished_at", "result", "error"])


@contextmanager
def _refusable() -> Iterator[None]:
    """Let the write inside be refused without spoiling what follows, so a plain record can still be
    written: a savepoint inside a caller's transaction (tests, a caller's atomic block); nothing in
    autocommit, where a refused statement spoils nothing, and a transaction would cost round trips."""
    if not transaction.get_connection().in_atomic_block:
        yield
        return
    with transaction.atomic():
        yield


def _skip_steps(step_runs: list[StepRun], on_step: StepCallback | None) -> None:
    if not step_runs:
        return
    StepRun.objects.filter(pk__in=[s.pk for s in step_runs]).update(status=StepRun.Status.SKIPPED)
    for step_run in step_runs:
        step_run.status = StepRun.Status.SKIPPED
        if on_step:
            on_step(step_run)


def _finish(run: JobRun, failure: StepFailure | None) -> JobRun:
    status = JobRun.Status.FAILED if failure else JobRun.Status.SUCCEEDED
    error = str(failure) if failure else ""
    now = timezone.now()
    # Compare-and-set: if the reaper already declared this run lost, its verdict stands.
    with _refusable():
        updated = JobRun.objects.filter(pk=run.pk, status=JobRun.Status.RUNNING).update(
            status=status, finished_at=now, error=error
        )
    if not updated:
        logger.warning("run %s finished after it was marked lost; keeping the recorded outcome", run.pk)
        run.refresh_from_db()
        return run
    run.status, run.finished_at, run.error = status, now, error
    _log_run(run)
    job_state_changed_send([run.job_id])
    return run


def _fail_abandoned(run: JobRun, exc: BaseException) -> None:
    """Mark ``run`` failed because the runner itself stopped (a database error, an interrupt between
    steps). Never raises: the caller raises ``exc`` again, and if the database is gone the reaper
    ends the run later."""
    error = f"the runner stopped before the run's outcome was recorded: {exception_summary(exc)}"
    now = timezone.now()
    try:
        running = JobRun.objects.filter(pk=run.pk, status=JobRun.Status.RUNNING)
        if run_fail_if(running, run_id=run.pk, now=now, error=error, step_error=error):
            run.status, run.finished_at, run.error = JobRun.Status.FAILED, now, error
            _log_run(run)
            job_state_changed_send([run.job_id])
    except Exception:  # the original error matters more; it propagates
        logger.exception("run %s could not be marked failed; the lost-run check will end it", run.pk)


def _log_run(run: JobRun) -> None:
    seconds = (run.finished_at - run.started_at).total_seconds() if run.started_at and run.finished_at else 0.0
    log = logger.info if run.status != JobRun.Status.FAILED else logger.warning
    log(
        "run %s of job %s %s (%s) in %.2f s%s",
        run.pk,
        run.job_id,
        run.status,
        run.trigger,
        seconds,
        f": {run.error}" if run.error else "",
        extra={
            "run_id": run.pk,
            "job_id": run.job_id,
            "status": run.status,
            "trigger": run.trigger,
            "seconds": seconds,
        },
    )


def _finish_skipped(run: JobRun, reason: str) -> JobRun:
    now = timezone.now()
    JobRun.objects.filter(pk=run.pk).update(status=JobRun.Status.SKIPPED, finished_at=now, error=reason)
    run.status, run.finished_at, run.error = JobRun.Status.SKIPPED, now, reason
    _log_run(run)
    return run
