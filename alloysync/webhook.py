"""``POST /alloy/webhook``: an Alloy workflow's Http Request action says an item changed.

Enabled by ``ALLOY_WEBHOOK_SECRET``; without it the URL answers 404 like any unknown one. The call
must carry ``Authorization: Bearer <secret>``. It is answered at once (202) and never waits on Alloy:
the named items are recorded and a worker reads them (``alloysync.webhook_reads``). Alloy does not act
on the answer, nor retry, nor promise delivery, so polling stays the source of truth: a lost call only
delays a change until the next sync.

Nothing about a refused call is recorded, and neither the Authorization header nor the body is ever
logged: only the item ids a call names.
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from alloysync.webhook_calls import MAX_BODY_BYTES, WebhookCallError, item_ids_from_call
from alloysync.webhook_reads import pending_reads_record, webhook_sync_queue

logger = logging.getLogger(__name__)

# Ids quoted in one log line; a call may name a thousand.
_LOGGED_IDS = 10


@csrf_exempt
@never_cache
def alloy_webhook(request: HttpRequest) -> JsonResponse | HttpResponseNotAllowed:
    """202 with the ids accepted; 401, 405, 411, 413 or 400 (naming the problem) changing nothing."""
    secret = settings.ALLOY_WEBHOOK_SECRET  # a config.env_secrets.Secret, or None: the webhook is off
    if secret is None:
        raise Http404
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not _authorized(request.META.get("HTTP_AUTHORIZATION", ""), secret.reveal()):
        response = _error(401, "Authorization: Bearer <ALLOY_WEBHOOK_SECRET> is missing or wrong")
        response["WWW-Authenticate"] = 'Bearer realm="alloysync"'
        return response
    body = _body(request)
    if isinstance(body, JsonResponse):
        return body
    try:
        item_ids = item_ids_from_call(body, _query_pairs(request))
    except WebhookCallError as exc:
        logger.info("alloysync webhook: refused a call: %s", exc)
        return _error(400, str(exc))
    return _accept(item_ids)


def _authorized(header: str, secret: str) -> bool:
    """Whether ``header`` is ``Bearer <secret>``; the token is compared in constant time.

    The scheme is matched without regard to case (RFC 9110 says it is case-insensitive, and a person
    types it into the workflow); only the token is secret.
    """
    scheme, _, token = header.partition(" ")
    # Encoded leniently: a header is any text a client sends, and comparing must never raise.
    matches = hmac.compare_digest(token.strip().encode("utf-8", "surrogatepass"), secret.encode())
    return matches and scheme.lower() == "bearer"


def _body(request: HttpRequest) -> bytes | JsonResponse:
    """The body, read at most ``MAX_BODY_BYTES`` + 1 bytes; or the answer refusing it.

    A declared length over the limit is refused before anything is read. A chunked body has none:
    gunicorn de-chunks it (``wsgi.input_terminated``) and it is read from the server's stream, bounded
    the same way; a server that does not (the development server) would hand Django an empty body, so
    that is refused as 411 rather than taken for a call naming nothing.
    """
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return _too_large()
    if not declared and request.META.get("HTTP_TRANSFER_ENCODING"):
        if not request.META.get("wsgi.input_terminated"):
            return _error(411, "send the body with a Content-Length")
        data: bytes = request.META["wsgi.input"].read(MAX_BODY_BYTES + 1)
    else:
        data = request.read(MAX_BODY_BYTES + 1)
    return _too_large() if len(data) > MAX_BODY_BYTES else data


def _query_pairs(request: HttpRequest) -> list[tuple[str, str]]:
    """Every (name, value) of the query string, a repeated name (``?itemId=a&itemId=b``) each time."""
    return [(name, str(value)) for name, values in request.GET.lists() for value in values]


def _accept(item_ids: list[str]) -> JsonResponse:
    if item_ids:
        queued = pending_reads_record(item_ids=item_ids)
        shown = ", ".join(item_ids[:_LOGGED_IDS]) + (
            f" and {len(item_ids) - _LOGGED_IDS} more" if len(item_ids) > _LOGGED_IDS else ""
        )
        logger.info(
            "alloysync webhook: %d item(s) to read (%s)%s",
            len(item_ids),
            shown,
            "" if queued else ", joining a read already pending",
        )
    else:
        queued = webhook_sync_queue()
        logger.info(
            "alloysync webhook: a call naming no item%s",
            ": sync queued" if queued else ", folded into a sync queued lately",
        )
    return JsonResponse({"accepted": item_ids, "read": "queued"}, status=202)


def _too_large() -> JsonResponse:
    return _error(413, f"the body is larger than {MAX_BODY_BYTES:,} bytes; name the items only")


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)
