"""How long a run may take: the job's own limit or JOB_TIME_LIMIT, and Celery's backstop past it."""

from __future__ import annotations

import math

from django.conf import settings

#: Seconds past a run's own time limit before Celery's hard limit kills the worker process: the runner
#: stops an over-long step itself, the hard limit is only the backstop for a step stuck where a signal
#: cannot reach it (the killed run is then reaped as "worker lost").
HARD_TIME_LIMIT_GRACE = 60


def run_time_limit(job_time_limit: int | None) -> float:
    """Seconds a run of a job may take: the job's own limit, else JOB_TIME_LIMIT."""
    return job_time_limit if job_time_limit is not None else settings.JOB_TIME_LIMIT


def celery_hard_time_limit(limit: float) -> int:
    """Celery's hard time limit for a run allowed ``limit`` seconds: whole seconds, as Celery types
    it, rounded up so a fractional limit never brings the backstop closer than the grace."""
    return math.ceil(limit) + HARD_TIME_LIMIT_GRACE
