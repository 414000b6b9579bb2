"""Who a request is: an API token (``Authorization: Token <key>``, or ``Bearer <key>``), else the
admin's session (the browsable API and the docs). Only the key's hash is looked up, never logged."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from scheduler.api_tokens import TokenUse, token_authenticate

# The schemes accepted: DRF's own word, and the one most HTTP clients send for a bearer secret.
_SCHEMES = (b"token", b"bearer")
_REFUSED = "Invalid or revoked API token."


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Token <key>`` or ``Bearer <key>``; 401 for an unknown or revoked key, an
    inactive user, or another scheme (Basic). A request without the header falls through to the session."""

    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[Any, TokenUse] | None:
        header = authentication.get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() not in _SCHEMES:
            # Credentials in another scheme (Basic, Digest...): saying none were given would mislead.
            raise exceptions.AuthenticationFailed(
                "The Authorization scheme must be Token or Bearer: 'Token <key>' (an API token, not a password)."
            )
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "The Authorization header must be one 'Token <key>' (one header, no spaces in the key)."
            )
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_REFUSED) from None
        use = token_authenticate(key)
        if use is None:
            raise exceptions.AuthenticationFailed(_REFUSED)
        user = get_user_model().objects.filter(pk=use.user_id, is_active=True).first()
        if user is None:
            raise exceptions.AuthenticationFailed("The token's user is inactive.")
        return user, use

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) to a request with no credentials or bad ones.
        return f'{self.keyword} realm="api"'


class SessionAuthentication(authentication.SessionAuthentication):
    """The admin's login, for the browsable API and the docs; CSRF is enforced for unsafe methods
    (DRF's rule), so a page on another site cannot make a signed-in operator's browser run a job."""
