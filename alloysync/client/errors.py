"""What can go wrong talking to Alloy: a small hierarchy that says whether a retry can help.

``AlloyError`` and its subclasses are what callers see. ``TransientFault`` is the retry loop's own
marker for one failed attempt and never leaves ``AlloyClient``. The functions below turn an HTTP
answer that is not a success into the right error, quoting Alloy's error body but never the key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

Redact = Callable[[str], str]


class AlloyError(Exception):
    """Talking to Alloy failed. ``permanent`` says whether retrying the same call can help."""

    default_permanent = True

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        category: str | None = None,
        permanent: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.category = category
        self.permanent = self.default_permanent if permanent is None else permanent


class AlloyAuthError(AlloyError):
    """401/403: the key is missing, wrong, expired, or its user may not do this."""


class AlloyRequestError(AlloyError):
    """Another 4xx: Alloy understood us and said no (bad query, unknown item, stale signature...)."""


class AlloyUnavailableError(AlloyError):
    """Timeouts, connection failures, 5xx or 429 that outlasted every retry."""

    default_permanent = False

    def __init__(self, message: str, *, attempts: int, elapsed: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.attempts = attempts
        self.elapsed = elapsed


class AlloyResponseError(AlloyError):
    """Alloy answered, but not with what we can read (not JSON, wrong shape)."""


class TransientFault(Exception):
    """One attempt failed in a way a retry may fix; internal to the client's retry loop.

    ``wait_hint`` is the seconds the server asked us to wait (429), or None to back off.
    """

    def __init__(
        self,
        cause: str,
        *,
        status_code: int | None = None,
        category: str | None = None,
        wait_hint: float | None = None,
    ) -> None:
        super().__init__(cause)
        self.cause = cause
        self.status_code = status_code
        self.category = category
        self.wait_hint = wait_hint


def error_for_status(response: httpx.Response, method: str, path: str, redact: Redact) -> AlloyError:
    """The error for a final answer that is not a 2xx: auth (401/403), request (4xx) or response (1xx/3xx).

    ``redact`` removes the key from any server text quoted in the message.
    """
    status = response.status_code
    category, message = error_details(response, redact)
    detail = describe(status, category, message)
    if status in (401, 403):
        return AlloyAuthError(
            f"Alloy refused {method} {path} ({detail}). Check ALLOY_API_KEY, and that the key's user "
            "can read the design (and edit its items, for updates).",
            status_code=status,
            category=category,
        )
    if 400 <= status < 500:
        hint = " Check ALLOY_JOB_DESIGN and the attribute codes (ALLOY_*_ATTRIBUTE)." if "/aqs/" in path else ""
        return AlloyRequestError(
            f"Alloy rejected {method} {path} ({detail}).{hint}", status_code=status, category=category
        )
    # 1xx/3xx: we follow no redirects (they could carry the key elsewhere) and expect none.
    location = response.headers.get("location", "")
    return AlloyResponseError(
        f"Alloy answered {method} {path} with HTTP {status}{f' to {location}' if location else ''}; "
        "check ALLOY_BASE_URL.",
        status_code=status,
    )


def unavailable_error(
    fault: TransientFault, method: str, path: str, attempts: int, elapsed: float
) -> AlloyUnavailableError:
    """The error for a call whose last attempt (of ``attempts``, over ``elapsed`` seconds) was ``fault``."""
    return AlloyUnavailableError(
        f"Alloy is unavailable: {method} {path} gave up after {attempts} "
        f"{'attempt' if attempts == 1 else 'attempts'} over {elapsed:.1f} s; last cause: {fault.cause}.",
        attempts=attempts,
        elapsed=elapsed,
        status_code=fault.status_code,
        category=fault.category,
    )


def error_details(response: httpx.Response, redact: Redact) -> tuple[str | None, str | None]:
    """Alloy's error ``category`` and ``message``, when the body is its error JSON."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, redact(snippet(response)) or None
    if not isinstance(body, dict):
        return None, None
    category, message = body.get("category"), body.get("message")
    return (
        category if isinstance(category, str) and category else None,
        redact(message) if isinstance(message, str) and message else None,
    )


def describe(status: int, category: str | None, message: str | None) -> str:
    """``HTTP 400 AqsInvalidQuery: <Alloy's message>``, leaving out what the body did not say."""
    text = f"HTTP {status}"
    if category:
        text += f" {category}"
    return f"{text}: {message}" if message else text


def snippet(response: httpx.Response, limit: int = 80) -> str:
    """The body's first ``limit`` bytes, quoted, for messages about answers that are not JSON."""
    text = response.content[:limit].decode("utf-8", "replace").strip()
    return repr(text) if text else "empty body"
