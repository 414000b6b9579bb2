"""The project's URLs: health for load balancers, the admin for operators."""

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from scheduler.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
]
