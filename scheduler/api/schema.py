"""The error responses the OpenAPI schema documents, shared by every view (``scheduler.api.errors``'s shape)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ERROR = inline_serializer(
    "Error",
    {
        "detail": serializers.CharField(),
        "errors": serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False),
    },
)
#: The errors every authenticated endpoint may answer.
COMMON_ERRORS: dict[int, OpenApiResponse] = {
    401: OpenApiResponse(ERROR, description="No token or session, or an unknown or revoked token."),
    403: OpenApiResponse(ERROR, description="The user lacks the permission this needs."),
    429: OpenApiResponse(ERROR, description="Over API_RATE_LIMIT requests this minute; see Retry-After."),
}
NOT_FOUND = {404: OpenApiResponse(ERROR, description="No job or run with this id.")}
BAD_REQUEST = {400: OpenApiResponse(ERROR, description="The body or query is not valid; errors names each field.")}
CONFLICT = {409: OpenApiResponse(ERROR, description="Not possible in the job's state; detail says why.")}


class TokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """``Authorization: Token <key>`` (``Bearer <key>`` as well) in the schema's security schemes."""

    target_class = "scheduler.api.auth.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "An API token from the admin or `manage.py api_token USER`: `Token <key>`.",
        }


class SessionScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """The admin's session cookie, for the browsable API."""

    target_class = "scheduler.api.auth.SessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
