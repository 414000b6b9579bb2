"""Beat's work as plain functions over the database: follow changed periodic tasks, claim what is due.

The PeriodicTask rows (with their crontab or interval and ``enabled``) stay the schedule of record:
the admin and the Alloy sync write only those. ``ScheduleState`` holds, per task, the next due time,
indexed, derived from the row as of its ``date_changed``. A tick therefore costs what changed and what
is due, never the size of the whole schedule.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Max
from django_celery_beat.models import PeriodicTask

from scheduler.bulksql import update_column
from scheduler.due import crontab_expression, crontab_latest, crontab_next, interval_length
from scheduler.models import JobRun, ScheduleState

logger = logging.getLogger(__name__)

RUN_JOB_TASK = "scheduler.run_job"
# Rows are picked up by date_changed, which writers stamp with their own clock, and commit later than
# they stamp (a big sync's transaction takes seconds): now and then, look back this far behind the
# newest change seen. Rows already picked up are skipped by comparing date_changed with the state.
PICKUP_OVERLAP = timedelta(seconds=60)
# Changed rows recomputed per call; a bigger change (a first sync, beat's first start) takes several.
PICKUP_BATCH = 5000


@dataclass(frozen=True)
class Dispatch:
    """One message for beat to send."""

    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Claim:
    dispatches: list[Dispatch]
    skipped: int  # job runs missed long ago, recorded as skipped instead of sent
    more_due: bool  # the batch was full: tick again at once
    next_due_at: datetime | None  # the earliest due time still ahead, within the horizon


def schedule_cursor() -> datetime | None:
    """The newest change already picked up: where a starting beat resumes following changes."""
    return ScheduleState.objects.aggregate(newest=Max("task_changed_at"))["newest"]


def schedule_pick_up_changes(
    *, since: datetime | None, now: datetime, look_back: timedelta = PICKUP_OVERLAP, limit: int = PICKUP_BATCH
) -> tuple[int, datetime | None]:
    """Recompute the due time of periodic tasks changed since ``since - look_back``, not yet picked up.

    ``since=None`` (beat's start) looks at every task. Returns how many were picked up and the cursor
    for the next call; after a full batch (``limit``) the cursor stays put, since rows stamped with
    the same time as the last one taken may remain.
    """
    changed = PeriodicTask.objects.exclude(schedule_state__task_changed_at=F("date_changed"))
    if since is not None:
        changed = changed.filter(date_changed__gt=since - look_back)
    # Ids first, with one join: the common answer is "none", and it should cost next to nothing.
    ids = list(changed.order_by("date_changed").values_list("pk", flat=True)[:limit])
    if not ids:
        return 0, since or now
    related = ("crontab", "interval", "clocked", "solar", "schedule_state")
    tasks = list(PeriodicTask.objects.select_related(*related).filter(pk__in=ids).order_by("date_changed"))
    states = [
        ScheduleState(
            periodic_task_id=task.pk, next_due_at=_due_after_change(task, now), task_changed_at=task.date_changed
        )
        for task in tasks
    ]
    ScheduleState.objects.bulk_create(
        states, update_conflicts=True, unique_fields=["periodic_task"], update_fields=["next_due_at", "task_changed_at"]
    )
    if len(tasks) == limit:
        return len(tasks), since
    newest = max(task.date_changed for task in tasks)
    return len(tasks), max(newest, since) if since else newest


def _due_after_change(task: PeriodicTask, now: datetime) -> datetime | None:
    current = getattr(task, "schedule_state", None)
    if task.enabled and current and current.next_due_at and current.next_due_at <= now:
        # Due and not yet claimed when the row changed (say, renamed by a sync): it still runs.
        return current.next_due_at
    return next_due(task, after=now)


def next_due(task: PeriodicTask, *, after: datetime) -> datetime | None:
    """When ``task`` is next due strictly after ``after``; None if disabled, expired or never."""
    if not task.enabled or (task.expires and task.expires <= after):
        return None
    start = max(after, task.start_time) if task.start_time else after
    if task.crontab_id:
        due = crontab_next(crontab_expression(task.crontab), str(task.crontab.timezone), start)
    elif task.interval_id:
        every = interval_length(task.interval.every, task.interval.period)
        due = max(task.last_run_at + every, start) if task.last_run_at else start + every
    elif task.clocked_id:
        due = task.clocked.clocked_time if not task.last_run_at else None
    elif task.solar_id:
        due = start + task.solar.schedule.remaining_estimate(task.last_run_at or start)
    else:
        due = None
    if due is not None and task.expires and due > task.expires:
        return None
    return due


def schedule_claim_due(*, now: datetime, horizon: datetime, catchup_window: timedelta, limit: int = 500) -> Claim:
    """Claim the tasks due by ``now`` and advance their due times, in one transaction.

    Rows are locked (SKIP LOCKED) and advanced before commit, so a due time is handed out once even
    if another beat claims at the same moment; the caller sends after commit (at most once: a crash
    in between loses that send rather than repeating it). A job that missed due times while no beat
    ran is sent once for the latest of them if that is within ``catchup_window``, else recorded as
    skipped.
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
        due = [state for state in states if state.next_due_at <= now]
        ahead = [state.next_due_at for state in states if state.next_due_at > now]
        plan = _ClaimPlan(now, catchup_window)
        for state in due:
            try:
                plan.add(state.periodic_task, state.next_due_at)
            except (ValueError, TypeError, KeyError, IndexError):
                # A row beat cannot read (say, malformed args) must not block everything due after it.
                logger.exception("periodic task %s cannot be scheduled; unscheduling it", state.pk)
                plan.unscheduled.append(state.pk)
        plan.write()
    return Claim(plan.dispatches, len(plan.skipped_runs), len(states) == limit and not ahead, min(ahead, default=None))


class _ClaimPlan:
    """What to send, skip and advance for one claimed batch, then the writes for it."""

    def __init__(self, now: datetime, catchup_window: timedelta) -> None:
        self.now = now
        self.catchup_window = catchup_window
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
        run_for = self._latest_due(task, due_at)
        is_job = task.task == RUN_JOB_TASK
        if is_job and run_for < self.now - self.catchup_window:
            self.skipped_runs.append(_missed_run(task, run_for, self.catchup_window, self.now))
        else:
            self.dispatches.append(_dispatch(task, run_for if is_job else None))
            self.sent_ids.append(task.pk)
        if task.one_off:
            self.one_offs.append(task.pk)
            self.unscheduled.append(task.pk)
            return
        following = (
            next_due(task, after=max(self.now, run_for)) if not task.interval_id else self._next_interval(task, run_for)
        )
        if following is None:
            self.unscheduled.append(task.pk)
        else:
            self.next_due.append((task.pk, following))

    def _latest_due(self, task: PeriodicTask, due_at: datetime) -> datetime:
        """``due_at``, or the latest due time since it if beat missed several (it was down)."""
        if not task.crontab_id:
            return due_at
        following = crontab_next(crontab_expression(task.crontab), str(task.crontab.timezone), due_at)
        if following is None or following > self.now:
            return due_at
        return crontab_latest(crontab_expression(task.crontab), str(task.crontab.timezone), self.now) or due_at

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
        JobRun.objects.bulk_create(self.skipped_runs, ignore_conflicts=True)


def _dispatch(task: PeriodicTask, due_at: datetime | None) -> Dispatch:
    kwargs = json.loads(task.kwargs or "{}")
    if due_at is not None:
        kwargs["due_at"] = due_at.isoformat()
    options: dict[str, Any] = {"headers": json.loads(task.headers or "{}"), "periodic_task_name": task.name}
    for option in ("queue", "exchange", "routing_key", "priority"):
        if getattr(task, option) is not None:
            options[option] = getattr(task, option)
    if task.expire_seconds is not None:
        options["expires"] = task.expire_seconds
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
