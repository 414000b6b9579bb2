"""Following changed periodic tasks: each changed row gets its next due time recomputed.

The PeriodicTask rows (with their crontab or interval and ``enabled``) stay the schedule of record:
the admin and the Alloy sync write only those. ``ScheduleState`` holds, per task, the next due time,
indexed, derived from the row as of its ``date_changed``. A tick therefore costs what changed and what
is due, never the size of the whole schedule.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.db.models import F, Max
from django_celery_beat.models import PeriodicTask

from scheduler.cron import CronError, crontab_expression, next_fire
from scheduler.models import ScheduleState

logger = logging.getLogger(__name__)

# Rows are picked up by date_changed, which writers stamp with their own clock, and commit later than
# they stamp (a big sync's transaction takes seconds): now and then, look back this far behind the
# newest change seen. Rows already picked up are skipped by comparing date_changed with the state.
PICKUP_OVERLAP = timedelta(seconds=60)
# Changed rows recomputed per call; a bigger change (a first sync, beat's first start) takes several.
PICKUP_BATCH = 5000
# Seconds one call may spend recomputing due times; the rest waits for the next tick (the cursor stays).
PICKUP_BUDGET = 2.0
# Due times already reported as wrong, so each is logged once however often beat meets it.
_reported: set[tuple[int, datetime]] = set()

_INTERVAL_PERIODS = {"days", "hours", "minutes", "seconds", "microseconds"}


def schedule_cursor() -> datetime | None:
    """The newest change already picked up: where a starting beat resumes following changes."""
    newest: datetime | None = ScheduleState.objects.aggregate(newest=Max("task_changed_at"))["newest"]
    return newest


def schedule_pick_up_changes(
    *,
    since: datetime | None,
    now: datetime,
    look_back: timedelta = PICKUP_OVERLAP,
    limit: int = PICKUP_BATCH,
    budget: float = PICKUP_BUDGET,
) -> tuple[int, datetime | None]:
    """Recompute the due time of periodic tasks changed since ``since - look_back``, not yet picked up.

    ``since=None`` (beat's start) looks at every task. Returns how many were picked up and the cursor
    for the next call; after a full batch (``limit``), or once ``budget`` seconds are spent (at least
    one row is always done), the cursor stays put, since rows stamped with the same time as the last
    one taken may remain. A row whose due time cannot be computed is logged and left unscheduled.
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
    deadline = time.monotonic() + budget
    states: list[ScheduleState] = []
    for task in tasks:
        due = _due_after_change_or_none(task, now)
        states.append(ScheduleState(periodic_task_id=task.pk, next_due_at=due, task_changed_at=task.date_changed))
        if time.monotonic() > deadline:
            break
    ScheduleState.objects.bulk_create(
        states, update_conflicts=True, unique_fields=["periodic_task"], update_fields=["next_due_at", "task_changed_at"]
    )
    if len(tasks) == limit or len(states) < len(tasks):
        return len(states), since
    newest = max(task.date_changed for task in tasks)
    return len(tasks), max(newest, since) if since else newest


def _due_after_change_or_none(task: PeriodicTask, now: datetime) -> datetime | None:
    try:
        return _due_after_change(task, now)
    except (ValueError, TypeError, KeyError, ArithmeticError, AttributeError):
        # One row beat cannot read (a solar row with a bad place, say) must not stop the others.
        logger.exception("periodic task %s cannot be scheduled; leaving it unscheduled", task.pk)
        return None


def _due_after_change(task: PeriodicTask, now: datetime) -> datetime | None:
    current: ScheduleState | None = getattr(task, "schedule_state", None)  # the reverse one-to-one, if any
    if task.enabled and current and current.next_due_at and current.next_due_at <= now:
        # Due and not yet claimed when the row changed (say, renamed by a sync): it still runs.
        return current.next_due_at
    return next_due_after(task, after=now, previous=None)


def next_due_after(task: PeriodicTask, *, after: datetime, previous: datetime | None) -> datetime | None:
    """``next_due``, defended: a crontab due time at or before ``after`` or ``previous`` is never returned.

    Cron maths that answered with the past (as cronsim did inside a repeated hour) would make beat send
    the same due time on every tick. Such an answer is logged once, and the next minute tried instead.
    """
    due = next_due(task, after=after)
    floor = max(after, previous) if previous is not None else after
    if due is None or not task.crontab_id or due > floor:
        return due
    if (task.pk, due) not in _reported:
        _reported.add((task.pk, due))
        logger.error(
            "periodic task %s: computed due time %s is not after %s; skipping ahead instead of sending it again",
            *(task.pk, due.isoformat(), floor.isoformat()),
        )
    retry = next_due(task, after=floor + timedelta(minutes=1))
    return retry if retry is not None and retry > floor else None


def next_due(task: PeriodicTask, *, after: datetime) -> datetime | None:
    """When ``task`` is next due strictly after ``after`` (aware, UTC); None if disabled, expired or never.

    A crontab is read with ``scheduler.cron.next_fire`` in the crontab's zone; one it cannot read
    (a row edited by hand outside the project's validation) is never due, and logged.
    """
    if not task.enabled or (task.expires and task.expires <= after):
        return None
    start = max(after, task.start_time) if task.start_time else after
    if task.crontab_id:
        due = _crontab_due(task, start)
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


def _crontab_due(task: PeriodicTask, after: datetime) -> datetime | None:
    try:
        return next_fire(crontab_expression(task.crontab), str(task.crontab.timezone), after)
    except CronError as exc:
        logger.warning("periodic task %s is never due: %s", task.pk, exc)
        return None


def interval_length(every: int, period: str) -> timedelta:
    """An IntervalSchedule's ``every`` and ``period`` ("seconds", "days"...) as a timedelta.

    Raises ValueError for an unknown period or an ``every`` that is not positive.
    """
    if period not in _INTERVAL_PERIODS or every <= 0:
        raise ValueError(f"not an interval: every {every} {period}")
    return timedelta(**{period: every})
