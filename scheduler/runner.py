"""The runner: a job's steps, in order, in this process, each recorded.

A run is claimed with a compare-and-set on its status, guarded by a partial unique index that allows
one running run per job: whichever process loses that race records its run as skipped. A failed step
stops the run and the rest are marked skipped. A heartbeat thread keeps ``heartbeat_at`` fresh so
``job_runs_reap_lost`` can tell a dead worker from a slow step.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from scheduler import registry
from scheduler.models import Job, JobRun, StepRun
from scheduler.run_guards import JobTimeLimitExceeded, heartbeat, time_limit_alarm
from scheduler.types import JSONObject, JSONValue

logger = logging.getLogger(__name__)

StepCallback = Callable[[StepRun], None]


class RunClaim(Enum):
    """The outcome of trying to take a queued run for this process."""

    CLAIMED = "claimed"  # this process owns the run now
    TAKEN = "taken"  # another delivery of the same message claimed it first
    JOB_BUSY = "job busy"  # another run of the same job is running


@dataclass(frozen=True)
class StepFailure:
    """The step that stopped a run: its position, function and a one-line account of why."""

    position: int
    function: str
    summary: str

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
    step_runs = _create_step_runs(run, job.steps)
    limit = time_limit if time_limit is not None else settings.JOB_TIME_LIMIT
    with heartbeat(run.pk, settings.JOB_HEARTBEAT_INTERVAL):
        failure = _run_steps(step_runs, deadline=time.monotonic() + limit, limit=limit, on_step=on_step)
    return _finish(run, failure)


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


def _run_steps(
    step_runs: list[StepRun], *, deadline: float, limit: float, on_step: StepCallback | None
) -> StepFailure | None:
    """Run steps in order; return what stopped the run, or None if every step succeeded."""
    for index, step_run in enumerate(step_runs):
        summary = _run_step(step_run, deadline=deadline, limit=limit)
        if on_step:
            on_step(step_run)
        if summary is not None:
            _skip_steps(step_runs[index + 1 :], on_step)
            return StepFailure(step_run.position, step_run.function, summary)
    return None


def _run_step(step_run: StepRun, *, deadline: float, limit: float) -> str | None:
    """Run one step and record it; return a one-line reason if it failed (the record keeps the traceback)."""
    step_run.status, step_run.started_at = StepRun.Status.RUNNING, timezone.now()
    step_run.save(update_fields=["status", "started_at"])
    summary = None
    try:
        function = registry.get_job_function(step_run.function)
        with time_limit_alarm(deadline - time.monotonic(), limit):
            value = function.func(**step_run.kwargs)
    except JobTimeLimitExceeded:
        summary = step_run.error = f"time limit of {limit:g} s exceeded"
    except registry.UnknownJobFunction as exc:
        summary = step_run.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - any error in job code fails the step, with its traceback kept
        step_run.error = traceback.format_exc()
        summary = "".join(traceback.format_exception_only(exc)).strip().splitlines()[-1]
    else:
        step_run.result = json_safe_result(value)
    step_run.status = StepRun.Status.FAILED if summary is not None else StepRun.Status.SUCCEEDED
    step_run.finished_at = timezone.now()
    step_run.save(update_fields=["status", "finished_at", "result", "error"])
    return summary


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
    updated = JobRun.objects.filter(pk=run.pk, status=JobRun.Status.RUNNING).update(
        status=status, finished_at=now, error=error
    )
    if not updated:
        logger.warning("run %s finished after it was marked lost; keeping the recorded outcome", run.pk)
        run.refresh_from_db()
        return run
    run.status, run.finished_at, run.error = status, now, error
    _log_run(run)
    return run


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


def json_safe_result(value: object) -> JSONValue:
    """The value as JSON-safe data, or its repr; truncated past JOB_RESULT_MAX_BYTES."""
    try:
        text = json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False)
    except (TypeError, ValueError):
        text = json.dumps(repr(value))
    limit = settings.JOB_RESULT_MAX_BYTES
    size = len(text.encode())
    if size > limit:
        return {"truncated": True, "bytes": size, "preview": text[: limit // 2]}
    safe: JSONValue = json.loads(text)  # text was dumped just above, so it loads as JSON values
    return safe


def job_runs_reap_lost(*, now: datetime | None = None) -> list[int]:
    """Mark runs whose heartbeat went silent as failed ("worker lost"); return their ids."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.JOB_LOST_AFTER)
    stale = JobRun.objects.filter(status=JobRun.Status.RUNNING, heartbeat_at__lt=cutoff)
    reaped = []
    for run_id, worker in stale.values_list("pk", "worker"):
        error = f"worker lost: no heartbeat from {worker or 'its worker'} for over {settings.JOB_LOST_AFTER:g} s"
        with transaction.atomic():
            # Compare-and-set: a heartbeat that lands meanwhile means the worker is alive after all.
            updated = JobRun.objects.filter(pk=run_id, status=JobRun.Status.RUNNING, heartbeat_at__lt=cutoff).update(
                status=JobRun.Status.FAILED,
                finished_at=now,
                error=error,
            )
            if updated:
                steps = StepRun.objects.filter(run_id=run_id)
                steps.filter(status=StepRun.Status.RUNNING).update(
                    status=StepRun.Status.FAILED, finished_at=now, error="worker lost"
                )
                steps.filter(status=StepRun.Status.PENDING).update(status=StepRun.Status.SKIPPED)
                reaped.append(run_id)
    if reaped:
        logger.warning("marked %d lost run(s) failed: %s", len(reaped), reaped)
    return reaped
