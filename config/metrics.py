"""GET /metrics for Prometheus: the scheduler's and the Alloy side's collectors in one registry.

The totals are in the database, so any one web process answers for the whole deployment: scrape one.
Enabled by METRICS_TOKEN: unset, /metrics is 404; set, a request must carry
``Authorization: Bearer <METRICS_TOKEN>`` (compared in constant time, never logged), else 401.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import CollectorRegistry

from alloysync.metrics import AlloyCollector
from scheduler.metrics import SchedulerCollector

_BEARER = "bearer "


def metrics_registry() -> CollectorRegistry:
    """Every metric /metrics shows: the job engine's and the Alloy side's, read from the database."""
    registry = CollectorRegistry(auto_describe=False)  # describing would collect (query) once more
    registry.register(SchedulerCollector())
    registry.register(AlloyCollector())
    return registry


# Not a form: a scraper sends no CSRF token, and a POST should hear 405, not "CSRF verification failed".
@csrf_exempt
@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token is None:
        raise Http404("metrics are not enabled")
    if not _authorized(request.headers.get("Authorization", ""), token.reveal()):
        response = HttpResponse("a bearer token (METRICS_TOKEN) is required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # generate_latest writes the classic text format (0.0.4), which every Prometheus reads; the
    # library's CONTENT_TYPE_LATEST names 1.0.0 since 0.22, which Prometheus 2 does not know.
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_PLAIN_0_0_4)


def _authorized(header: str, token: str) -> bool:
    # The scheme is case-insensitive (RFC 9110 11.1), as for the API and the webhook.
    if header[: len(_BEARER)].lower() != _BEARER:
        return False
    # Bytes: compare_digest refuses non-ASCII text, and a header may hold any (latin-1) characters.
    given = header[len(_BEARER) :].strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, token.encode("utf-8"))
