"""The admin's dashboard: runs per hour, jobs failing now, runs due soon, beat's and the sync's health.

Mounted in config/urls.py inside ``admin.site.admin_view`` (staff only, login otherwise). It shows run
history, so it also needs the permission to view runs; without it: 403. A fixed number of queries
per page whatever the number of jobs and runs (tests/scheduler/test_dashboard.py holds this).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from scheduler import dashboard
from scheduler.charts import runs_per_hour_chart, time_text, zone_or_utc
from scheduler.models import Job, ScheduleState
from scheduler.plain_text import cut, one_line, without_bidi_controls

# Who may see the dashboard: it is mostly run history.
VIEW_RUNS_PERMISSION = "scheduler.view_jobrun"
# Characters of a failing job's last error shown; the run's page has all of it.
ERROR_SHOWN = 300


@dataclass(frozen=True)
class FailingRow:
    name: str  # one line, bidi controls removed (the template isolates it too)
    url: str
    streak: int
    error: str
    run_url: str | None


@dataclass(frozen=True)
class DueRow:
    name: str
    url: str
    due: str  # in the job's own zone, with the zone named


@never_cache
@require_GET
def dashboard_view(request: HttpRequest) -> TemplateResponse:
    """The dashboard page (GET only); 403 without permission to view runs."""
    if not request.user.has_perm(VIEW_RUNS_PERMISSION):
        raise PermissionDenied
    now = timezone.now()
    failing_count, failing = dashboard.failing_jobs()
    due_count, due = dashboard.due_soon(now=now)
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "hours_shown": dashboard.HOURS_SHOWN,
        "zone_name": timezone.get_current_timezone_name(),
        "runs_chart": runs_per_hour_chart(dashboard.runs_per_hour(now=now)),
        "failing_count": failing_count,
        "failing": [_failing_row(job) for job in failing],
        "due_count": due_count,
        "due": [_due_row(state) for state in due],
        "health": dashboard.health(),
        "checked_at": time_text(now, zone_or_utc(timezone.get_current_timezone_name())),
    }
    return TemplateResponse(request, "admin/scheduler/dashboard.html", context)


def _failing_row(job: Job) -> FailingRow:
    # Annotations made by dashboard.failing_jobs, which the model's type does not have: read by name.
    run_id: int | None = getattr(job, "last_failed_run_id", None)
    error: str = getattr(job, "last_error", None) or ""
    return FailingRow(
        name=one_line(job.name, 200),
        url=reverse("admin:scheduler_job_change", args=[job.pk]),
        streak=job.failure_streak,
        # Its lines kept (a traceback's), without the bidi controls that would reverse them.
        error=cut(without_bidi_controls(error[: ERROR_SHOWN * 2]), ERROR_SHOWN),
        run_url=reverse("admin:scheduler_jobrun_change", args=[run_id]) if run_id else None,
    )


def _due_row(state: ScheduleState) -> DueRow:
    job: Job = state.periodic_task.job
    return DueRow(
        name=one_line(job.name, 200),
        url=reverse("admin:scheduler_job_change", args=[job.pk]),
        due=time_text(state.next_due_at, zone_or_utc(job.timezone)),
    )
