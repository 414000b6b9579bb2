"""GET /metrics for Prometheus: the scheduler's and the Alloy side's collectors in one registry."""

from django.http import Http404, HttpRequest, HttpResponse


def metrics_view(request: HttpRequest) -> HttpResponse:
    raise Http404("metrics are not enabled")
