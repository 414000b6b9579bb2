"""The project's URLs: health for load balancers, Alloy's workflows' webhook, the admin for operators."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from scheduler.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("alloy/", include("alloysync.urls")),
    path("admin/", admin.site.urls),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
]
