"""/api/v1/: the job engine's views (scheduler.api) and the syncs' (alloysync.api), one router, and
the OpenAPI schema with Swagger UI (/api/v1/docs/). Namespace ``api``: ``reverse("api:job-detail", args=[id])``.

The schema and the docs need a signed-in user or a token, as every other path here: it names no secret, but it
describes this deployment to whoever asks, and nobody without an account needs it.
"""

from django.urls import URLPattern, URLResolver, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated
from rest_framework.routers import SimpleRouter

from alloysync.api import SyncRunViewSet
from scheduler.api import urls as scheduler_api_urls
from scheduler.api.views import ApiRootView, NotFoundView

app_name = "api"

router = SimpleRouter()
scheduler_api_urls.register(router)
router.register("syncs", SyncRunViewSet, basename="syncrun")

urlpatterns: list[URLPattern | URLResolver] = [
    path("", ApiRootView.as_view(), name="root"),
    path("schema/", SpectacularAPIView.as_view(permission_classes=[IsAuthenticated]), name="schema"),
    # Swagger UI from the project's own static files (drf-spectacular-sidecar): no CDN needed.
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="api:schema", permission_classes=[IsAuthenticated]),
        name="docs",
    ),
    *router.urls,
    # Last: whatever else is asked under /api/v1/ is a JSON 404, not Django's HTML (or debug) page.
    re_path(r"^.*$", NotFoundView.as_view(), name="not-found"),
]
