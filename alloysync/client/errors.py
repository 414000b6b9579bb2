"""What can go wrong talking to Alloy: a small hierarchy that says whether a retry can help.

``AlloyError`` and its subclasses are what callers see. ``TransientFault`` is the retry loop's own
marker for one failed attempt and never leaves ``AlloyClient``. The functions below turn an HTTP
answer that is not a success into the right error, quoting Alloy's error body but never the key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alloysync.client.answers import Answer

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


class AlloyUnreachableError(AlloyUnavailableError):
    """No connection could be made to a host this client never reached: often a wrong ALLOY_BASE_URL.

    ``host`` and ``port`` are where the client tried to connect.
    """

    def __init__(self, message: str, *, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.host = host
        self.port = port


class AlloyResponseError(AlloyError):
    """Alloy answered, but not with what we can read (not JSON, wrong shape, too big or too deep)."""


class TransientFault(Exception):
    """One attempt failed in a way a retry may fix; internal to the client's retry loop.

    ``wait_hint`` is the seconds the server asked us to wait (429, 503), or None to back off.
    ``unreached`` marks a failure to connect to a host this client has never had an answer from.
    """

    def __init__(
        self,
        cause: str,
        *,
        status_code: int | None = None,
        category: str | None = None,
        wait_hint: float | None = None,
        unreached: bool = False,
    ) -> None:
        super().__init__(cause)
        self.cause = cause
        self.status_code = status_code
        self.category = category
        self.wait_hint = wait_hint
        self.unreached = unreached


def error_for_status(
    answer: Answer, method: str, path: str, details: tuple[str | None, str | None], redact: Redact
) -> AlloyError:
    """The error for a final answer that is not a 2xx: auth (401/403), request (4xx) or response (1xx/3xx).

    ``details`` is Alloy's error category and message from the body (``answers.error_details``),
    already redacted; ``redact`` removes the key from anything else quoted.
    """
    status = answer.status_code
    category, message = details
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
    location = redact(answer.headers.get("location", ""))[:200]
    return AlloyResponseError(
        f"Alloy answered {method} {path} with HTTP {status}{f' to {location}' if location else ''}; "
        "check ALLOY_BASE_URL.",
        status_code=status,
    )


def unavailable_error(
    fault: TransientFault, method: str, path: str, attempts: int, elapsed: float, gave_up: str | None = None
) -> AlloyUnavailableError:
    """The error for a call whose last attempt (of ``attempts``, over ``elapsed`` seconds) was ``fault``.

    ``gave_up`` says why the retrying stopped early, when it did.
    """
    why = f"; {gave_up}" if gave_up else ""
    return AlloyUnavailableError(
        f"Alloy is unavailable: {method} {path} gave up after {attempts} "
        f"{'attempt' if attempts == 1 else 'attempts'} over {elapsed:.1f} s; last cause: {fault.cause}{why}.",
        attempts=attempts,
        elapsed=elapsed,
        status_code=fault.status_code,
        category=fault.category,
    )


def unreachable_error(
    fault: TransientFault, host: str, port: int, attempts: int, elapsed: float
) -> AlloyUnreachableError:
    """The error for a call that never connected to ``host``:``port`` (``fault`` says why)."""
    tries = f" ({attempts} attempts over {elapsed:.1f} s)" if attempts > 1 else ""
    return AlloyUnreachableError(
        f"Cannot reach Alloy at {host}:{port}: {fault.cause}{tries}. Check ALLOY_BASE_URL.",
        host=host,
        port=port,
        attempts=attempts,
        elapsed=elapsed,
    )


def describe(status: int, category: str | None, message: str | None) -> str:
    """``HTTP 400 AqsInvalidQuery: <Alloy's message>``, leaving out what the body did not say."""
    text = f"HTTP {status}"
    if category:
        text += f" {category}"
    return f"{text}: {message}" if message else text
