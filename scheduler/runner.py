"""The runner: a job's steps, in order, in this process, each recorded.

A scheduled run (and a ``run_job`` one) is created already running, with its step runs: the unique
indexes that allow one run per due time and one running run per job make that INSERT the claim. A
queued run ("run now") is claimed with a compare-and-set on its status, guarded by the same index.
Whichever process loses the race records its run as skipped. On PostgreSQL a run's first writes and
its last ones are one statement each (``run_record``): each autocommitted write waits for the disk. A failed step
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
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from scheduler.metrics import CounterAdd, counters_add, run_end_counts, run_start_counts
from scheduler.models import Job, JobRun, StepRun
from scheduler.run_guards import heartbeat, run_fail_if, run_outcome_tell
from scheduler.run_record import RunEnd, run_end_supported, run_end_with_step, run_start_with_steps
from scheduler.step_outcome import StepOutcome, exception_summary, failed_outcome, step_call
from scheduler.storable import storable_text
from scheduler.time_limits import run_time_limit
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
    steps: list[JSONObject] | None = None,
) -> JobRun:
    """Run ``job`` now in this process and return its finished JobRun.

    ``run`` is a queued run made earlier (admin "run now"), whose pending step runs, if it has any,
    say what to run (the arguments an operator gave); otherwise a run is created, already running.
    ``due_at`` is the scheduled time a beat sent this run for: a second message for the same due time
    (two beats, a redelivery) finds that run recorded and does nothing. ``steps`` replaces the job's
    steps for this run only (checked by the caller: ``jobspec.steps_with_kwargs``). ``time_limit``
    (seconds) overrides the job's own limit and JOB_TIME_LIMIT.
    """
    limit = time_limit if time_limit is not None else run_time_limit(job.time_limit)
    worker = storable_text(worker or default_worker_name(), _WORKER_MAX_CHARS)  # configuration, not checked
    if run is None:
        return _start_and_run(job, trigger, worker, due_at, steps or job.steps, limit=limit, on_step=on_step)
    run.job = job  # the job already read: whoever looks at run.job after (alerts) reads no row again
    skip_reason = _reason_not_to_run(job, run.trigger)
    if skip_reason:
        return _finish_skipped(run, skip_reason)
    claim = _claim(run, worker)
    if claim is RunClaim.JOB_BUSY:
        return _finish_skipped(run, "previous run still running")
    if claim is RunClaim.TAKEN:
        # Another delivery of the same message claimed this run first; it is theirs to finish.
        logger.warning("run %s of job %s was already claimed; not running it twice", run.pk, job.pk)
        run.refresh_from_db()
        return run
    return _run_claimed(run, job, lambda: _queued_step_runs(run, steps or job.steps), limit=limit, on_step=on_step)


def _start_and_run(
    job: Job,
    trigger: str,
    worker: str,
    due_at: datetime | None,
    steps: list[JSONObject],
    *,
    limit: float,
    on_step: StepCallback | None,
) -> JobRun:
    """Create the run already claimed (running) and run it; or record why it did not run.

    One INSERT does the claim: the unique indexes refuse a second run for the same due time and a
    second running run of the job, so no queued row needs a compare-and-set after it.
    """
    skip_reason = _reason_not_to_run(job, trigger)
    if skip_reason:
        return _record_skipped(job, trigger, due_at, skip_reason)
    now = timezone.now()
    run = JobRun(
        job=job, trigger=trigger, status=JobRun.Status.RUNNING, due_at=due_at, started_at=now, heartbeat_at=now,
        worker=worker,
    )  # fmt: skip
    step_runs = _step_runs_for(run, steps, started_at=now)
    together = run_end_supported() and bool(step_runs)
    lag = run_start_counts(source=job.source, trigger=trigger, started_at=now, due_at=due_at)
    try:
        with _refusable():
            if together:
                run_start_with_steps(run, step_runs, lag)  # one statement, one wait for the disk
            elif lag:
                with transaction.atomic():  # counted with the INSERT that claims the run, or not at all
                    run.save(force_insert=True)
                    counters_add(lag)
            else:
                run.save(force_insert=True)
    except IntegrityError:
        recorded = _recorded_for_due_time(job, due_at)
        if recorded is not None:
            return recorded
        # jobrun_one_running_per_job: another run of this job is running.
        return _record_skipped(job, trigger, due_at, "previous run still running")

    def made() -> list[StepRun]:
        return step_runs if together else _save_step_runs(step_runs)

    return _run_claimed(run, job, made, limit=limit, on_step=on_step)


def _recorded_for_due_time(job: Job, due_at: datetime | None) -> JobRun | None:
    """The run already recorded for this due time, if a second message for it arrived."""
    if due_at is None:
        return None
    recorded = JobRun.objects.filter(job=job, due_at=due_at).first()
    if recorded is not None:
        logger.warning("job %s already has a run for due time %s; not running it again", job.pk, due_at)
    return recorded


def _reason_not_to_run(job: Job, trigger: str) -> str:
    if trigger != JobRun.Trigger.SCHEDULE:
        return ""  # an operator asked for this run explicitly
    if job.periodic_task is None:
        return "job was removed"
    if not job.periodic_task.enabled:
        return "job is paused"
    return ""


def _claim(run: JobRun, worker: str) -> RunClaim:
    """Take the queued run for ``worker`` with a compare-and-set on its status."""
    now = timezone.now()
    try:
        with _refusable():
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


def _step_runs_for(run: JobRun, steps: list[JSONObject], *, started_at: datetime | None = None) -> list[StepRun]:
    """The steps copied into the run (not saved), so history shows what actually ran even after edits;
    the first one already running since ``started_at`` if given (no UPDATE to start it)."""
    step_runs = [
        # str(): a stored step's function is a name (checked when the job was saved); a CharField
        # would store str() of anything else all the same.
        StepRun(run=run, position=position, function=str(step["function"]), kwargs=step.get("kwargs") or {})
        for position, step in enumerate(steps, start=1)
    ]
    if step_runs and started_at is not None:
        step_runs[0].status, step_runs[0].started_at = StepRun.Status.RUNNING, started_at
    return step_runs


def _save_step_runs(step_runs: list[StepRun]) -> list[StepRun]:
    if len(step_runs) == 1:
        step_runs[0].save(force_insert=True)  # bulk_create would wrap its one INSERT in a transaction
        return step_runs
    return StepRun.objects.bulk_create(step_runs)


def _queued_step_runs(run: JobRun, steps: list[JSONObject]) -> list[StepRun]:
    """A queued run's step runs: those made when it was queued (with the arguments asked for), else
    the job's steps copied now (a run queued without them)."""
    existing = list(run.steps.filter(status=StepRun.Status.PENDING).order_by("position"))
    return existing or _save_step_runs(_step_runs_for(run, steps))


def _run_claimed(
    run: JobRun,
    job: Job,
    make_step_runs: Callable[[], list[StepRun]],
    *,
    limit: float,
    on_step: StepCallback | None,
) -> JobRun:
    """Run the claimed run's steps and record how it ended; every way out of here leaves it terminal.

    A KeyboardInterrupt or SystemExit from a step (Ctrl-C in ``run_job``, job code calling
    ``sys.exit``, Celery's own shutdown exceptions in a solo pool) is raised again once the run is
    recorded failed, so a process told to stop does stop.
    """
    owner_pid = os.getpid()
    try:
        step_runs = make_step_runs()
        with heartbeat(run.pk, settings.JOB_HEARTBEAT_INTERVAL):
            failure, last = _run_steps(
                step_runs, owner_pid=owner_pid, deadline=time.monotonic() + limit, limit=limit, on_step=on_step
            )
        finished, failure = _finish(run, job, failure, last, on_step)
    except BaseException as exc:
        _fail_abandoned(run, job, exc)
        raise
    if failure is not None and failure.stop is not None:
        raise failure.stop
    return finished


@dataclass
class _LastStep:
    """The run's last step, called but not yet recorded: ``_finish`` records it with the run."""

    step_run: StepRun
    outcome: StepOutcome


def _run_steps(
    step_runs: list[StepRun], *, owner_pid: int, deadline: float, limit: float, on_step: StepCallback | None
) -> tuple[StepFailure | None, _LastStep | None]:
    """Run steps in order; return what stopped the run (None if every step succeeded) and, where the
    database can record it together with the run's end, the last step's outcome, not yet recorded."""
    together = run_end_supported()
    for index, step_run in enumerate(step_runs):
        outcome = _call_step(step_run, owner_pid=owner_pid, deadline=deadline, limit=limit)
        if together and index == len(step_runs) - 1:
            return _failure_of(step_run, outcome), _LastStep(step_run, outcome)
        outcome = _record_step(step_run, outcome)
        if on_step:
            on_step(step_run)
        if not outcome.succeeded:
            _skip_steps(step_runs[index + 1 :], on_step)
            return _failure_of(step_run, outcome), None
    return None, None


def _failure_of(step_run: StepRun, outcome: StepOutcome) -> StepFailure | None:
    if outcome.succeeded:
        return None
    return StepFailure(step_run.position, step_run.function, outcome.summary, outcome.stop)


def _call_step(step_run: StepRun, *, owner_pid: int, deadline: float, limit: float) -> StepOutcome:
    """Mark the step running (the first step of a new run already is) and call it."""
    if step_run.status != StepRun.Status.RUNNING:
        step_run.status, step_run.started_at = StepRun.Status.RUNNING, timezone.now()
        step_run.save(update_fields=["status", "started_at"])
    return step_call(step_run.function, step_run.kwargs, owner_pid=owner_pid, deadline=deadline, limit=limit)


def _record_step(step_run: StepRun, outcome: StepOutcome) -> StepOutcome:
    """Record a step's outcome; return it as recorded (a plain failure if the database refused it)."""
    try:
        _save_step(step_run, outcome)
    except Exception as exc:  # the database refused the values: keep the fact, drop them
        logger.exception("step %s of run %s: its outcome could not be stored", step_run.position, step_run.run_id)
        outcome = _refused_outcome(exc, outcome)
        _save_step(step_run, outcome)
    return outcome


def _refused_outcome(exc: Exception, outcome: StepOutcome) -> StepOutcome:
    refused = failed_outcome(f"its outcome could not be stored: {exception_summary(exc)}")
    return StepOutcome(succeeded=False, error=refused.error, summary=refused.summary, stop=outcome.stop)


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


def _finish(
    run: JobRun, job: Job, failure: StepFailure | None, last: _LastStep | None, on_step: StepCallback | None
) -> tuple[JobRun, StepFailure | None]:
    """Record how the run ended (and ``last``, its last step, if not yet recorded); return the run and
    what stopped it, as recorded."""
    if last is not None:
        ended = _finish_with_step(run, failure, last)
        if ended is None:
            last.outcome = _record_step(last.step_run, last.outcome)
            failure = _failure_of(last.step_run, last.outcome)  # a plain failure if its values were refused
        if on_step:
            on_step(last.step_run)
        if ended is not None:
            return _finished(run, job, failure, ended, now=last.step_run.finished_at), failure
    return _finish_alone(run, job, failure), failure


def _finish_with_step(run: JobRun, failure: StepFailure | None, last: _LastStep) -> RunEnd | None:
    """The run's end and its last step's outcome in one statement; None if the database refused it,
    having written nothing: the caller then writes them one by one, to learn which value it refuses."""
    step_run, outcome = last.step_run, last.outcome
    now = timezone.now()
    try:
        with _refusable():
            ended = run_end_with_step(
                run_id=run.pk,
                status=JobRun.Status.FAILED if failure else JobRun.Status.SUCCEEDED,
                error=str(failure) if failure else "",
                step_id=step_run.pk,
                step_status=StepRun.Status.SUCCEEDED if outcome.succeeded else StepRun.Status.FAILED,
                step_result=outcome.result,
                step_error=outcome.error,
                now=now,
                counts=_end_counts(run, failure, now),
            )
    except (DatabaseError, ValueError, TypeError):  # a value refused: one by one, it gets a plain record
        logger.info("run %s: its end could not be recorded in one statement; recording it step by step", run.pk)
        return None
    step_run.status = StepRun.Status.SUCCEEDED if outcome.succeeded else StepRun.Status.FAILED
    step_run.result, step_run.error, step_run.finished_at = outcome.result, outcome.error, now
    return ended


def _finished(run: JobRun, job: Job, failure: StepFailure | None, ended: RunEnd, *, now: datetime | None) -> JobRun:
    if not ended.finished:
        logger.warning("run %s finished after it was marked lost; keeping the recorded outcome", run.pk)
        run.refresh_from_db()
        return run
    run.status = JobRun.Status.FAILED if failure else JobRun.Status.SUCCEEDED
    run.finished_at, run.error = now, str(failure) if failure else ""
    _log_run(run)
    run_outcome_tell(run, job, counted=(ended.streak, ended.recovered))
    return run


def _finish_alone(run: JobRun, job: Job, failure: StepFailure | None) -> JobRun:
    status = JobRun.Status.FAILED if failure else JobRun.Status.SUCCEEDED
    error = str(failure) if failure else ""
    now = timezone.now()
    # Compare-and-set: if the reaper already declared this run lost, its verdict stands (and counted it).
    with transaction.atomic():
        updated = JobRun.objects.filter(pk=run.pk, status=JobRun.Status.RUNNING).update(
            status=status, finished_at=now, error=error
        )
        if updated:
            counters_add(_end_counts(run, failure, now))
    if not updated:
        logger.warning("run %s finished after it was marked lost; keeping the recorded outcome", run.pk)
        run.refresh_from_db()
        return run
    run.status, run.finished_at, run.error = status, now, error
    _log_run(run)
    run_outcome_tell(run, job)
    return run


def _end_counts(run: JobRun, failure: StepFailure | None, now: datetime) -> list[CounterAdd]:
    outcome = JobRun.Status.FAILED if failure else JobRun.Status.SUCCEEDED
    return run_end_counts(
        source=run.job.source, trigger=run.trigger, outcome=outcome, started_at=run.started_at, finished_at=now
    )


def _fail_abandoned(run: JobRun, job: Job, exc: BaseException) -> None:
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
            run_outcome_tell(run, job)
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
    """End a queued run that will not run; the step runs made when it was queued are skipped too."""
    now = timezone.now()
    with transaction.atomic():
        # Still queued: a second delivery of the message skips (and counts) it once, and never a run
        # another delivery claimed meanwhile.
        skipped = JobRun.objects.filter(pk=run.pk, status=JobRun.Status.QUEUED).update(
            status=JobRun.Status.SKIPPED, finished_at=now, error=reason
        )
        if skipped:
            counters_add(_skipped_counts(run, now))
    if not skipped:
        run.refresh_from_db()
        return run
    run.steps.filter(status=StepRun.Status.PENDING).update(status=StepRun.Status.SKIPPED)
    run.status, run.finished_at, run.error = JobRun.Status.SKIPPED, now, reason
    _log_run(run)
    return run


def _record_skipped(job: Job, trigger: str, due_at: datetime | None, reason: str) -> JobRun:
    """Record a run that did not start, in one INSERT; the run already recorded for ``due_at`` if any."""
    now = timezone.now()
    run = JobRun(job=job, trigger=trigger, status=JobRun.Status.SKIPPED, due_at=due_at, finished_at=now, error=reason)
    try:
        # Counted with its INSERT, so once whatever redelivers it; a savepoint in a caller's transaction.
        with transaction.atomic():
            run.save(force_insert=True)
            counters_add(_skipped_counts(run, now))
    except IntegrityError:
        recorded = _recorded_for_due_time(job, due_at)
        if recorded is None:
            raise
        return recorded
    _log_run(run)
    return run


def _skipped_counts(run: JobRun, now: datetime) -> list[CounterAdd]:
    return run_end_counts(
        source=run.job.source, trigger=run.trigger, outcome=JobRun.Status.SKIPPED, started_at=None, finished_at=now
    )
