"""When to retry a call to Alloy, and how long to wait: the rate-limit and retry policy.

Transient faults (timeouts, transport errors, 5xx and 429) are retried. Waits honour ``Retry-After``,
then Alloy's ``X-Rate-Limit-Reset``, then back off exponentially with jitter; each wait and the total
time spent retrying are capped.
"""

from __future__ import annotations

import email.utils
import logging
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


def rate_limit_wait(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """Seconds a 429 asks us to wait, or None when the response gives no usable hint."""
    now = now or datetime.now(UTC)
    retry_after = headers.get("retry-after")
    if retry_after:
        seconds = _retry_after_seconds(retry_after, now)
        if seconds is not None:
            return seconds
    reset = headers.get("x-rate-limit-reset")
    when = parse_alloy_timestamp(reset) if reset else None
    if when is None:
        return None
    seconds = (when - now).total_seconds()
    # A reset already in the past means our clocks disagree: fall back to backing off.
    return seconds if seconds > 0 else None


def _retry_after_seconds(value: str, now: datetime) -> float | None:
    """``Retry-After`` as seconds: either delay-seconds or an HTTP date (RFC 9110)."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class RetryBudget:
    """Tenacity's stop/wait/sleep for one call, capping each wait and the total time spent.

    Elapsed time counts real time outside sleeps plus the waits asked for, so an injected fake
    ``sleep`` (tests) sees the same budget as real time. A budget of 0 seconds means one attempt.
    """

    def __init__(self, max_seconds: float, sleep: Callable[[float], None]) -> None:
        self.max_seconds = max_seconds
        self._sleep = sleep
        self._started = time.monotonic()
        self._real_slept = 0.0
        self._asked_slept = 0.0
        self._backoff = tenacity.wait_exponential_jitter(
            max=MAX_WAIT_SECONDS, jitter=BACKOFF_JITTER_SECONDS, multiplier=BACKOFF_INITIAL_SECONDS
        )

    def retrying(self, method: str, path: str) -> tenacity.Retrying:
        """A tenacity loop for ``method path`` that retries ``TransientFault`` within this budget.

        It re-raises the last ``TransientFault`` when the budget runs out, and logs each retry.
        """
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientFault),
            wait=self.wait,
            stop=self.stop,
            sleep=self.sleep,
            before_sleep=lambda state: _log_retry(method, path, state),
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

    def wait(self, state: tenacity.RetryCallState) -> float:
        """Seconds before the next attempt: the server's hint, else backoff; never above MAX_WAIT_SECONDS."""
        fault = state.outcome.exception() if state.outcome else None
        hint = fault.wait_hint if isinstance(fault, TransientFault) else None
        seconds = self._backoff(state) if hint is None else hint
        return min(seconds, MAX_WAIT_SECONDS)

    def stop(self, state: tenacity.RetryCallState) -> bool:
        """Whether to give up rather than start a wait that would end beyond the budget."""
        return self.elapsed + state.upcoming_sleep > self.max_seconds


def _log_retry(method: str, path: str, state: tenacity.RetryCallState) -> None:
    fault = state.outcome.exception() if state.outcome else None
    cause = fault.cause if isinstance(fault, TransientFault) else repr(fault)
    logger.warning(
        "Alloy %s %s failed (%s); retrying in %.1f s (attempt %d).",
        method,
        path,
        cause,
        state.upcoming_sleep,
        state.attempt_number + 1,
    )
