"""When to retry a call to Alloy, and how long to wait: the rate-limit and retry policy.

Transient faults (timeouts, transport errors, 5xx and 429) are retried. Waits honour ``Retry-After``
(on 429 and 503), then Alloy's ``X-Rate-Limit-Reset`` (on 429), then back off exponentially with
jitter. A hint is a request, not an order: one that is not a sane number of seconds ahead (zero,
negative, past, NaN, garbage, days away) is ignored, every wait is kept between ``MIN_WAIT_SECONDS``
and ``MAX_WAIT_SECONDS``, and a hint longer than what is left of the budget ends the retrying at once
instead of sleeping past it. So no answer can make the client retry in a tight loop or hang on.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import tenacity

from alloysync.client.errors import TransientFault

# The package's name, as before it was split: log filters may select on it.
logger = logging.getLogger("alloysync.client")

# No single wait longer than this, whatever the server asks for.
MAX_WAIT_SECONDS = 60.0
# Exponential backoff when the server gives no hint: 1 s, 2 s, 4 s ... plus up to 1 s of jitter.
BACKOFF_INITIAL_SECONDS = 1.0
BACKOFF_JITTER_SECONDS = 1.0
# No wait shorter than the back-off's first, whatever the server asks for: "retry now" cannot storm.
MIN_WAIT_SECONDS = BACKOFF_INITIAL_SECONDS
# A hint further ahead than this is nonsense (a date decades away, an overflowing number): ignored.
MAX_HINT_SECONDS = 24 * 3600.0
# Connection failures to a host this client never reached are retried this long at most: a wrong
# ALLOY_BASE_URL is far likelier than an outage at the very first request.
UNREACHED_RETRY_SECONDS = 10.0
# Statuses whose Retry-After is honoured (RFC 9110 section 10.2.3 names 503 and 3xx; RFC 6585, 429).
RETRY_AFTER_STATUSES = frozenset({429, 503})
# HTTP statuses a retry may fix: rate limiting and server faults.
RETRYABLE_STATUSES = frozenset({429}) | frozenset(range(500, 600))

# An ISO-8601 timestamp with any number of fractional digits; Alloy sends seven
# ("2021-03-16T11:08:08.0232125Z"), which datetime.fromisoformat rejects before Python 3.11.
_TIMESTAMP_RE = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?\s*(Z|[+-]\d{2}:?\d{2})?\s*$",
    re.IGNORECASE,
)


def parse_alloy_timestamp(text: str) -> datetime | None:
    """An aware datetime from an ISO-8601 timestamp with any number of fractional digits, else None.

    Fractions beyond microseconds are truncated; a timestamp without a zone is taken as UTC.
    """
    match = _TIMESTAMP_RE.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    offset = "+00:00" if zone is None or zone.upper() == "Z" else zone
    base = f"{year}-{month}-{day}T{hour}:{minute}:{second}.{micro:06d}{offset}"
    try:
        return datetime.fromisoformat(base)
    except ValueError:  # e.g. month 13: shaped like a timestamp but not one
        return None


def retry_hint(status: int, headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """Seconds an answer with ``status`` asks us to wait before retrying, or None for no usable hint.

    ``Retry-After`` (delay-seconds or an HTTP date) counts on 429 and 503; Alloy's
    ``X-Rate-Limit-Reset`` on 429 only, since Alloy sends it on every answer. Usable means finite,
    at least ``MIN_WAIT_SECONDS`` and at most ``MAX_HINT_SECONDS`` ahead; anything else is None, so
    the back-off applies.
    """
    if status not in RETRY_AFTER_STATUSES:
        return None
    now = now or datetime.now(UTC)
    retry_after = headers.get("retry-after")
    seconds = _retry_after_seconds(retry_after, now) if retry_after else None
    if seconds is not None and _usable(seconds):
        return seconds
    reset = headers.get("x-rate-limit-reset") if status == 429 else None
    when = parse_alloy_timestamp(reset) if reset else None
    seconds = (when - now).total_seconds() if when is not None else None
    return seconds if seconds is not None and _usable(seconds) else None


def rate_limit_wait(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """Seconds a 429 with these headers asks us to wait, or None when it gives no usable hint."""
    return retry_hint(429, headers, now)


def ignored_hint(status: int, headers: httpx.Headers, hint: float | None, redact: Callable[[str], str]) -> str:
    """``"; Retry-After '-1' ignored"`` when the answer has a Retry-After that gives no usable hint, else ``""``.

    For the retry log: an operator sees why the client backs off instead of doing as asked.
    """
    value = headers.get("retry-after")
    if status not in RETRY_AFTER_STATUSES or value is None or hint is not None:
        return ""
    return f"; Retry-After {redact(value)[:40]!r} ignored"


def choose_wait(hint: float | None, backoff: float) -> float:
    """Seconds to wait before the next attempt: ``hint`` if given, else ``backoff``, kept within bounds.

    Always finite and between ``MIN_WAIT_SECONDS`` and ``MAX_WAIT_SECONDS``.
    """
    seconds = backoff if hint is None else hint
    if not math.isfinite(seconds):
        return MAX_WAIT_SECONDS
    return min(max(seconds, MIN_WAIT_SECONDS), MAX_WAIT_SECONDS)


def backoff_seconds(attempt: int) -> float:
    """The wait after failed attempt ``attempt`` (1-based) without a hint: 1 s, 2 s, 4 s ... plus jitter.

    At most ``MAX_WAIT_SECONDS``, for any attempt number.
    """
    doublings = min(max(attempt - 1, 0), 16)  # 2**16 s is far past the cap: no overflow, however many attempts
    jitter = random.uniform(0, BACKOFF_JITTER_SECONDS)  # noqa: S311 - spreads retries, not a secret
    return min(BACKOFF_INITIAL_SECONDS * float(2**doublings) + jitter, MAX_WAIT_SECONDS)


def _usable(seconds: float) -> bool:
    # 0, negative, past or a few milliseconds: "retry now", which is how a broken server makes a client
    # storm it. Such a hint is no hint, so the back-off (which grows) applies rather than the floor.
    return math.isfinite(seconds) and MIN_WAIT_SECONDS <= seconds <= MAX_HINT_SECONDS


def _retry_after_seconds(value: str, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now`` (negative if past): delay-seconds or an HTTP date, else None."""
    value = value.strip()
    if len(value) > 64:  # no honest value is this long; and float() of a long digit string is slow
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return (when - now).total_seconds()
    except OverflowError:
        return None


class RetryBudget:
    """Tenacity's stop/wait/sleep for one call, capping each wait and the total time spent.

    Elapsed time counts real time outside sleeps plus the waits asked for, so an injected fake
    ``sleep`` (tests) sees the same budget as real time. A budget of 0 seconds means one attempt.
    Faults marked ``unreached`` (no connection to a host this client never reached) get at most
    ``unreached_seconds``. When a server's hint is longer than the budget left, the retrying stops
    and ``gave_up`` says why.
    """

    def __init__(
        self,
        max_seconds: float,
        sleep: Callable[[float], None],
        *,
        unreached_seconds: float | None = None,
    ) -> None:
        self.max_seconds = max_seconds
        self.unreached_seconds = max_seconds if unreached_seconds is None else min(unreached_seconds, max_seconds)
        self.gave_up: str | None = None
        self._sleep = sleep
        self._started = time.monotonic()
        self._real_slept = 0.0
        self._asked_slept = 0.0

    def retrying(self, method: str, path: str) -> tenacity.Retrying:
        """A tenacity loop for ``method path`` that retries ``TransientFault`` within this budget.

        It re-raises the last ``TransientFault`` when the budget runs out, and logs each retry.
        """
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientFault),
            wait=self.wait,
            stop=self.stop,
            sleep=self.sleep,
            before_sleep=lambda state: self._before_sleep(method, path, state),
            reraise=True,
        )

    @property
    def elapsed(self) -> float:
        """Seconds spent on this call so far, counting the waits asked for rather than slept."""
        return time.monotonic() - self._started - self._real_slept + self._asked_slept

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` with the injected sleep, keeping the books ``elapsed`` reads."""
        started = time.monotonic()
        self._sleep(float(seconds))
        self._real_slept += time.monotonic() - started
        self._asked_slept += float(seconds)

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` that are not retrying (pacing before a request): they don't use up the budget."""
        started = time.monotonic()
        self._sleep(float(seconds))
        self._real_slept += time.monotonic() - started

    def wait(self, state: tenacity.RetryCallState) -> float:
        """Seconds before the next attempt: see ``wait_for``."""
        return self.wait_for(_fault(state), state.attempt_number)

    def wait_for(self, fault: TransientFault | None, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): the fault's hint, else backoff.

        Always finite and within [MIN_WAIT_SECONDS, MAX_WAIT_SECONDS], whatever the server sent.
        """
        hint = fault.wait_hint if fault is not None else None
        return choose_wait(hint, backoff_seconds(attempt))

    def stop(self, state: tenacity.RetryCallState) -> bool:
        """Whether to give up rather than start a wait that would end beyond the budget."""
        fault = _fault(state)
        limit = self.unreached_seconds if fault is not None and fault.unreached else self.max_seconds
        left = limit - self.elapsed
        hint = fault.wait_hint if fault is not None else None
        if hint is not None and hint > left:
            # Waiting less than asked would most likely be refused again: say so and stop now.
            self.gave_up = (
                f"Alloy asked for {hint:.0f} s before a retry, more than the {max(left, 0):.0f} s left of "
                f"this call's {limit:g} s retry budget, so alloysync did not wait"
            )
            return True
        return state.upcoming_sleep > left

    def _before_sleep(self, method: str, path: str, state: tenacity.RetryCallState) -> None:
        fault = _fault(state)
        logger.warning(
            "Alloy %s %s failed (%s); retrying in %.1f s (attempt %d).",
            method,
            path,
            fault.cause if fault is not None else "unknown",
            state.upcoming_sleep,
            state.attempt_number + 1,
        )


def _fault(state: tenacity.RetryCallState) -> TransientFault | None:
    fault = state.outcome.exception() if state.outcome else None
    return fault if isinstance(fault, TransientFault) else None
