"""Project-wide request rules that no one view should have to remember."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.utils.cache import patch_cache_control, patch_vary_headers

_API_PREFIX = "/api/"
# Views that read a de-chunked body from the server's stream themselves (gunicorn's
# wsgi.input_terminated), bounded: Alloy's workflows may send chunked bodies.
_READS_CHUNKED = ("/alloy/webhook",)


class RequestBodyRules:
    """Refuse request bodies Django would silently read as empty, and API POSTs missing their trailing
    slash (Django's redirect loses them); keep API answers out of caches.

    Under WSGI Django reads a body only by its Content-Length: a chunked body (no Content-Length)
    reads as empty, so ``POST /api/v1/jobs/{id}/runs/`` with new arguments ran the job with its
    stored ones. Such a request is refused with 411, JSON, except by the webhook, which reads the
    body gunicorn de-chunked from its stream, bounded (``alloysync.webhook``).
    API answers depend on the caller's token: ``Vary: Authorization`` and ``private, no-store``, so
    no shared cache serves one caller's answer to another.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        response: HttpResponse
        if _unsafe_without_slash(request):
            # Django's APPEND_SLASH answers a 301 that clients follow as a GET (405, nothing done), or
            # with DEBUG a 500: say what to send instead.
            response = JsonResponse(
                {"detail": f"Not found: API URLs end in a slash; send this {request.method} to {request.path}/"},
                status=404,
            )
        elif chunked and not request.path.startswith(_READS_CHUNKED):
            response = JsonResponse(
                {"detail": "Send the body with a Content-Length: a chunked body (Transfer-Encoding) is not read."},
                status=411,
            )
        else:
            response = self.get_response(request)
        if request.path.startswith(_API_PREFIX):
            patch_vary_headers(response, ["Authorization"])
            patch_cache_control(response, private=True, no_store=True)
        return response


def _unsafe_without_slash(request: HttpRequest) -> bool:
    """A POST (or other unsafe method) to an API URL missing only its trailing slash."""
    path = request.path_info
    if request.method in ("GET", "HEAD", "OPTIONS") or not path.startswith(_API_PREFIX) or path.endswith("/"):
        return False
    try:
        match = resolve(f"{path}/")
    except Resolver404:
        return False
    return match.url_name != "not-found"  # the API's catch-all: no such URL, slash or not
