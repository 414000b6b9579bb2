"""Claiming what is due: lock the due ``ScheduleState`` rows, advance them, and say what to send.

A due time is handed out once: the rows are locked (SKIP LOCKED) and advanced in the transaction that
claims them, so two beats claiming at the same moment never share one. Runs missed while no beat ran
are sent once for the latest of them, or recorded as skipped when that is too long ago.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django_celery_beat.models import PeriodicTask

from scheduler.beat.pickup import interval_length, next_due_after
from scheduler.bulksql import update_column
from scheduler.cron import CronError, crontab_expression, latest_fire, next_fire
from scheduler.metrics import counters_add, missed_run_counts
from scheduler.models import RUN_JOB_TASK, Job, JobRun, ScheduleState
from scheduler.time_limits import celery_hard_time_limit

logger = logging.getLogger(__name__)

# Seconds one claim may spend deciding; what is left stays due, and beat ticks again at once.
CLAIM_BUDGET = 2.0


@dataclass(frozen=True)
class Dispatch:
    """One message for beat to send."""

    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Claim:
    """What one claim decided: the messages to send (after commit) and when to look again."""

    dispatches: list[Dispatch]
    skipped: int  # job runs missed long ago, recorded as skipped instead of sent
    more_due: bool  # the batch was full: tick again at once
    next_due_at: datetime | None  # the earliest due time still ahead, within the horizon


def schedule_claim_due(
    *, now: datetime, horizon: datetime, catchup_window: timedelta, limit: int = 500, budget: float = CLAIM_BUDGET
) -> Claim:
    """Claim the tasks due by ``now`` and advance their due times, in one transaction.

    Rows are locked (SKIP LOCKED) and advanced before commit, so a due time is handed out once even
    if another beat claims at the same moment; the caller sends after commit (at most once: a crash
    in between loses that send rather than repeating it). A job that missed due times while no beat
    ran is sent once for the latest of them if that is within ``catchup_window``, else recorded as
    skipped. After ``budget`` seconds (at least one row is always done) the rest of the batch is left
    due for the next call, which the result asks for at once (``more_due``).
    """
    # A look without locks or joins first: most ticks find nothing due and only need the wake-up time.
    earliest = (
        ScheduleState.objects.filter(next_due_at__lte=horizon)
        .order_by("next_due_at")
        .values_list("next_due_at", flat=True)
        .first()
    )
    if earliest is None or earliest > now:
        return Claim([], 0, False, earliest)
    with transaction.atomic():
        states = list(
            ScheduleState.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("periodic_task__crontab", "periodic_task__interval", "periodic_task__clocked")
            .select_related("periodic_task__solar")
            .filter(next_due_at__lte=horizon)
            .order_by("next_due_at")[:limit]
        )
        due_times = [(state, _claimed_due_at(state)) for state in states]
        due = [(state, due_at) for state, due_at in due_times if due_at <= now]
        ahead = [due_at for _, due_at in due_times if due_at > now]
        plan = _ClaimPlan(now, catchup_window, _own_time_limits([state.pk for state, _ in due]))
        deadline, done = time.monotonic() + budget, 0
        for state, due_at in due:
            try:
                plan.add(state.periodic_task, due_at)
            except (ValueError, TypeError, KeyError, IndexError, ArithmeticError, AttributeError):
                # A row beat cannot read (say, malformed args) must not block everything due after it.
                logger.exception("periodic task %s cannot be scheduled; unscheduling it", state.pk)
                plan.unscheduled.append(state.pk)
            done += 1
            if time.monotonic() > deadline:
                break
        plan.write()
    more = done < len(due) or (len(states) == limit and not ahead)
    return Claim(plan.dispatches, len(plan.skipped_runs), more, min(ahead, default=None))


def _claimed_due_at(state: ScheduleState) -> datetime:
    """The due time of a row claimed by ``next_due_at <= horizon``, which an empty one never matches."""
    if state.next_due_at is None:
        raise RuntimeError(f"schedule state {state.pk} was claimed without a due time")
    return state.next_due_at


def _own_time_limits(periodic_task_ids: list[int]) -> dict[int, int]:
    """The jobs' own time limits (seconds) by periodic task id, for those that have one: one query."""
    if not periodic_task_ids:
        return {}
    limited = Job.objects.filter(periodic_task_id__in=periodic_task_ids, time_limit__isnull=False)
    rows = limited.values_list("periodic_task_id", "time_limit")
    return {task_id: limit for task_id, limit in rows if task_id is not None and limit is not None}


class _ClaimPlan:
    """What to send, skip and advance for one claimed batch, then the writes for it."""

    def __init__(self, now: datetime, catchup_window: timedelta, time_limits: dict[int, int]) -> None:
        self.now = now
        self.catchup_window = catchup_window
        # A job's own limit may be longer than JOB_TIME_LIMIT: Celery's backstop must not come first.
        self.time_limits = time_limits
        self.dispatches: list[Dispatch] = []
        self.skipped_runs: list[JobRun] = []
        self.sent_ids: list[int] = []
        self.next_due: list[tuple[int, datetime]] = []
        self.unscheduled: list[int] = []
        self.one_offs: list[int] = []

    def add(self, task: PeriodicTask, due_at: datetime) -> None:
        if not task.enabled or (task.expires and task.expires <= self.now):
            self.unscheduled.append(task.pk)
            return
        run_for = max(due_at, self._latest_due(task, due_at))  # never a due time before the claimed one
        is_job = task.task == RUN_JOB_TASK
        if is_job and run_for < self.now - self.catchup_window:
            self.skipped_runs.append(_missed_run(task, run_for, self.catchup_window, self.now))
        else:
            self.dispatches.append(_dispatch(task, run_for if is_job else None, self.time_limits.get(task.pk)))
            self.sent_ids.append(task.pk)
        if task.one_off:
            self.one_offs.append(task.pk)
            self.unscheduled.append(task.pk)
            return
        following = (
            next_due_after(task, after=max(self.now, run_for), previous=run_for)
            if not task.interval_id
            else self._next_interval(task, run_for)
        )
        if following is None:
            self.unscheduled.append(task.pk)
        else:
            self.next_due.append((task.pk, following))

    def _latest_due(self, task: PeriodicTask, due_at: datetime) -> datetime:
        """``due_at``, or the latest due time since it if beat missed several (it was down)."""
        if not task.crontab_id:
            return due_at
        expression, zone = crontab_expression(task.crontab), str(task.crontab.timezone)
        try:
            if next_fire(expression, zone, due_at) > self.now:
                return due_at
            return latest_fire(expression, zone, self.now) or due_at
        except CronError:
            return due_at  # crontab row broken behind beat's back: send this one, next_due drops it

    def _next_interval(self, task: PeriodicTask, run_for: datetime) -> datetime:
        every = interval_length(task.interval.every, task.interval.period)
        # Anchored to the due time while on time; after an outage, counted again from now.
        return run_for + every if run_for + every > self.now else self.now + every

    def write(self) -> None:
        update_column(ScheduleState, "next_due_at", self.next_due)
        if self.unscheduled:
            ScheduleState.objects.filter(pk__in=self.unscheduled).update(next_due_at=None)
        if self.sent_ids:
            PeriodicTask.objects.filter(pk__in=self.sent_ids).update(
                last_run_at=self.now, total_run_count=F("total_run_count") + 1
            )
        if self.one_offs:
            PeriodicTask.objects.filter(pk__in=self.one_offs).update(enabled=False, date_changed=self.now)
        if self.skipped_runs:
            JobRun.objects.bulk_create(self.skipped_runs, ignore_conflicts=True)
            # In the claim's transaction, like the runs: counted with them or not at all. A run
            # ignored as a conflict had its due time recorded (and counted) already: a rare double.
            counters_add(missed_run_counts(self.skipped_runs))


def _dispatch(task: PeriodicTask, due_at: datetime | None, time_limit: int | None = None) -> Dispatch:
    kwargs = json.loads(task.kwargs or "{}")
    if due_at is not None:
        kwargs["due_at"] = due_at.isoformat()
    options: dict[str, Any] = {"headers": json.loads(task.headers or "{}"), "periodic_task_name": task.name}
    for option in ("queue", "exchange", "routing_key", "priority"):
        if getattr(task, option) is not None:
            options[option] = getattr(task, option)
    if task.expire_seconds is not None:
        options["expires"] = task.expire_seconds
    if time_limit is not None:
        # https://docs.celeryq.dev/en/stable/reference/celery.app.task.html#celery.app.task.Task.apply_async
        options["time_limit"] = celery_hard_time_limit(time_limit)
    return Dispatch(task.task, json.loads(task.args or "[]"), kwargs, options)


def _missed_run(task: PeriodicTask, due_at: datetime, window: timedelta, now: datetime) -> JobRun:
    job_id = json.loads(task.args)[0]
    reason = (
        f"missed: due at {due_at:%Y-%m-%d %H:%M} UTC while no beat was running, more than "
        f"JOB_CATCHUP_WINDOW ({window.total_seconds():g} s) ago, so not run"
    )
    return JobRun(
        job_id=job_id, trigger=JobRun.Trigger.SCHEDULE, status=JobRun.Status.SKIPPED, due_at=due_at,
        finished_at=now, error=reason,
    )  # fmt: skip
