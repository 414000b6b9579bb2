"""What the admin's dashboard shows, each part one or two queries whatever the number of jobs and runs.

Selectors only: reading, never writing. The view (``scheduler.dashboard_views``) puts them on a page;
``scheduler.charts`` draws the pictures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncHour
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from scheduler.health import Check, UnknownHealthCheck, run_health_checks
from scheduler.models import RUN_JOB_TASK, Job, JobRun, ScheduleState

# The runs-per-hour chart's span, and how far ahead "due soon" looks.
HOURS_SHOWN = 48
DUE_WITHIN = timedelta(hours=24)
# Rows listed under "failing now" and "due soon"; the counts above them cover every row.
LIST_LIMIT = 20
# The health checks the dashboard shows: beat's and the Alloy sync's. Named, not imported: the sync's
# check is registered by the alloysync app (scheduler never imports it) and absent without it.
DASHBOARD_CHECKS = ("beat", "alloy_sync")


@dataclass(frozen=True)
class HourCounts:
    """Runs created in the hour starting at ``start`` (aware), by status name."""

    start: datetime
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def runs_per_hour(*, now: datetime, hours: int = HOURS_SHOWN, zone: tzinfo | None = None) -> list[HourCounts]:
    """Runs created in each of the last ``hours`` hours (the current one last), counted by status.

    Hours are whole hours in ``zone`` (default: the current time zone), every hour present even
    without runs. One query, walking the ``created_at`` index.
    """
    zone = zone or timezone.get_current_timezone()
    current = now.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    starts = [current - timedelta(hours=back) for back in range(hours - 1, -1, -1)]
    rows = (
        JobRun.objects.filter(created_at__gte=starts[0])
        .annotate(hour=TruncHour("created_at", tzinfo=zone))
        .values_list("hour", "status")
        .annotate(n=Count("*"))
        .order_by()
    )
    by_hour: dict[datetime, dict[str, int]] = {start: {} for start in starts}
    for hour, status, n in rows:
        counts = by_hour.get(hour.astimezone(zone))
        if counts is not None:  # a run created "in the future" by a skewed clock is left out
            counts[status] = counts.get(status, 0) + n
    return [HourCounts(start, by_hour[start]) for start in starts]


def failing_jobs(*, limit: int = LIST_LIMIT) -> tuple[int, list[Job]]:
    """How many jobs are failing now (``failure_streak`` above 0), and the ``limit`` longest-failing.

    Each job listed carries ``last_failed_run_id`` and ``last_error`` (its latest failed run's). Two
    queries, on the partial index ``job_failing`` and, per listed job, the runs' (job, created_at) index.
    """
    failing = Job.objects.filter(failure_streak__gt=0)
    last_failed = JobRun.objects.of_job_newest_first(OuterRef("pk")).filter(status=JobRun.Status.FAILED)
    listed = (
        failing.annotate(
            last_failed_run_id=Subquery(last_failed.values("pk")[:1]),
            last_error=Subquery(last_failed.values("error")[:1]),
        )
        .only("id", "name", "timezone", "failure_streak")
        .order_by("-failure_streak", "name", "id")[:limit]
    )
    return failing.count(), list(listed)


def _due(now: datetime) -> QuerySet[ScheduleState]:
    # Overdue rows (beat behind or stopped) count too: they run as soon as beat can send them.
    # Paused jobs and beat's own entries (the sync, alerts) are left out by a small NOT IN list rather
    # than a join: joining 50,000 due rows to their tasks and jobs took 130 ms; this about 15 ms.
    not_jobs = PeriodicTask.objects.filter(Q(enabled=False) | ~Q(task=RUN_JOB_TASK)).values("pk")
    return ScheduleState.objects.filter(next_due_at__lte=now + DUE_WITHIN).exclude(periodic_task_id__in=not_jobs)


def due_soon(*, now: datetime, limit: int = LIST_LIMIT) -> tuple[int, list[ScheduleState]]:
    """How many job runs fall due in the next 24 hours (or are overdue), and the first ``limit``.

    Each row listed comes with ``periodic_task.job``. Two queries on the ``next_due_at`` index.
    """
    # The list joins instead: walking the index in due order, it stops after ``limit`` rows.
    listed = (
        ScheduleState.objects.filter(
            next_due_at__lte=now + DUE_WITHIN,
            periodic_task__enabled=True,
            periodic_task__task=RUN_JOB_TASK,
            periodic_task__job__isnull=False,
        )
        .select_related("periodic_task__job")
        .order_by("next_due_at", "periodic_task_id")[:limit]
    )
    return _due(now).count(), list(listed)


def health() -> dict[str, Check]:
    """Beat's and the sync's health checks, by name, as /healthz runs them (a check absent is left out)."""
    try:
        _, report = run_health_checks(list(DASHBOARD_CHECKS))
    except UnknownHealthCheck:
        # Without the alloysync app there is no sync check: show what there is.
        _, report = run_health_checks(["beat"])
    return {
        name: Check(bool(result["ok"]), str(result["detail"]))
        for name, result in report.items()
        if isinstance(result, dict)
    }
