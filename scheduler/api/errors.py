"""Every error the API returns is JSON of one shape, like the admin's messages:

``{"detail": "one sentence for a person", "errors": {"field": ["what is wrong with it"]}}``

``errors`` is present for validation errors only; nested fields are named with dots
(``kwargs.examples.echo``), and a problem with the request as a whole is under ``non_field_errors``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler (status, WWW-Authenticate, Retry-After), its body made the one shape above."""
    if isinstance(exc, RequestDataTooBig):
        # Django's own size check (request.body read somewhere before the parser): the same 413.
        exc = too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    response = exception_handler(exc, context)
    if response is None:
        return None  # not an API error: Django's 500, logged as any other
    if isinstance(exc, exceptions.ValidationError):
        errors = flat_errors(exc.detail)
        first_field, messages = next(iter(errors.items()), ("non_field_errors", ["invalid input"]))
        where = "" if first_field == "non_field_errors" else f"{first_field}: "
        response.data = {"detail": f"Invalid request: {where}{messages[0]}", "errors": errors}
    elif not (isinstance(response.data, dict) and set(response.data) == {"detail"}):
        response.data = {"detail": str(response.data)}
    return response


def flat_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"dotted.field": ["message", ...]}``."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            flat.update(flat_errors(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        flat = {}
        for index, item in enumerate(detail):
            flat.update(flat_errors(item, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    messages = [str(item) for item in detail] if isinstance(detail, list) else [str(detail)]
    return {prefix or "non_field_errors": messages} if messages else {}


class Conflict(exceptions.APIException):
    """409: asked of something in a state where it cannot be done (a removed job, a sync under way)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "Not possible in the current state."
    default_code = "conflict"


class Unavailable(exceptions.APIException):
    """503: this deployment cannot do it as configured; the message names the setting."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Not available in this deployment."
    default_code = "unavailable"


class PayloadTooLarge(exceptions.APIException):
    """413: the body is longer than this server reads (``DATA_UPLOAD_MAX_MEMORY_SIZE``)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def too_large(limit: int | None) -> PayloadTooLarge:
    """The 413 naming the limit, in bytes and the setting's name."""
    return PayloadTooLarge(
        f"The request body is over {limit} bytes, the most this server reads (DATA_UPLOAD_MAX_MEMORY_SIZE)."
    )
