"""The project's URLs: health for load balancers, Alloy's workflows' webhook, the REST API and metrics for
other systems, the admin for operators."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from config.metrics import metrics_view
from scheduler.dashboard_views import dashboard_view
from scheduler.views import healthz

# The admin's front page links the dashboard (contrib.admin's own index.html comes first in INSTALLED_APPS).
admin.site.index_template = "admin/scheduler/index.html"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("alloy/", include("alloysync.urls")),
    path("api/v1/", include("config.api_urls")),
    path("metrics", metrics_view, name="metrics"),
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="admin-dashboard"),
    path("admin/", admin.site.urls),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
]
