"""/api/v1/: the job engine's views (scheduler.api) and the syncs' (alloysync.api), one router, and
the OpenAPI schema with its browsable docs."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
