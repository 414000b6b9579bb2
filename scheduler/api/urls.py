"""The job engine's routes: /jobs/ (with /runs/, /pause/, /resume/ on each) and /runs/."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from scheduler.api.views import JobRunViewSet, JobViewSet


def register(router: SimpleRouter) -> None:
    router.register("jobs", JobViewSet, basename="job")
    router.register("runs", JobRunViewSet, basename="jobrun")
